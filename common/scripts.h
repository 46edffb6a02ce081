/* Lua scripts, one atomic operation each, embedded from common/scripts/ (one .lua file per script)
 * at build time (cmake/HqEmbed.cmake). Callers use EVALSHA and fall back to
 * EVAL on NOSCRIPT (a restarted Redis has an empty script cache). */
#ifndef HQ_COMMON_SCRIPTS_H
#define HQ_COMMON_SCRIPTS_H

#include <stddef.h>

/* SHA1 hex (41 bytes with NUL) of a script's source, for EVALSHA. */
void hq_script_sha1(const char *src, char out[41]);

#endif
