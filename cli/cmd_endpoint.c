/* Placeholder until this command lands; exits 2 so nothing mistakes it for done. */
#include "cli/cmd.h"

int hq_cmd_endpoint(int argc, char **argv)
{
    (void)argc;
    return hq_cli_fail(2, argv[0], "not built yet");
}
