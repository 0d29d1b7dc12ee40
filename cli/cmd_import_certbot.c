/*
 * cli/cmd_import_certbot.c - `certpilot import certbot` (being written).
 */
#include "cli/cli.h"

int cmd_import_certbot(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    cli_error("import certbot: not available yet");
    return CLI_EXIT_SOFTWARE;
}
