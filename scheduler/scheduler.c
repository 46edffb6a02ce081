/* Placeholder: the scheduler lands with issue 4. */
#include "common/err.h"
