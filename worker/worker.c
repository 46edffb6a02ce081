/* Placeholder: the worker lands with issue 3. */
#include "common/err.h"
