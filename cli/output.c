#include "cli/cli.h"

#include <stdarg.h>

void cli_error(const char *fmt, ...)
{
    va_list ap;
    fputs("certpilot: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

void cli_print_json(const json_t *v)
{
    json_dumpf(v, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    fputc('\n', stdout);
}
