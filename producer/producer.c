/* Placeholder: libhookq's producer lands with issue 2 (see include/hookq/hookq.h). */
#include "hookq/hookq.h"
