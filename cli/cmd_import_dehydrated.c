/*
 * cli/cmd_import_dehydrated.c - `certpilot import dehydrated` (being written).
 */
#include "cli/cli.h"

int cmd_import_dehydrated(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    cli_error("import dehydrated: not available yet");
    return CLI_EXIT_SOFTWARE;
}
