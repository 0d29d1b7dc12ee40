/*
 * cli/cli.h - the command line: the only layer that parses argv, prints and
 * chooses exit statuses.  Libraries below (caa/, acme/, hooks/) report through
 * struct cp_err and never print.
 */
#ifndef CP_CLI_CLI_H
#define CP_CLI_CLI_H

#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>

#include "caa/caa.h"

/* Exit statuses.  They are a contract: scripts test them (see README). */
enum cli_exit {
    CLI_EXIT_OK = 0,
    CLI_EXIT_CAA_DENIED = 1,   /* caa check: at least one identifier refused by CAA */
    CLI_EXIT_CAA_DNS = 2,      /* caa check: no refusal, but a DNS failure */
    CLI_EXIT_USAGE = 64,       /* bad option or argument (sysexits EX_USAGE) */
    CLI_EXIT_UNAVAILABLE = 69, /* a needed local service is unusable, e.g. DNS set-up */
    CLI_EXIT_SOFTWARE = 70     /* internal error: a bug */
};

/* "certpilot: " + message on stderr. */
void cli_error(const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 1, 2)))
#endif
    ;

/* Print a JSON value on stdout, indented, with a final newline. */
void cli_print_json(const json_t *v);

/* The CAA report of `caa check` and of the issuance preflight. */
json_t *cli_caa_report_json(const struct caa_report *r, const struct caa_params *p);
void cli_caa_report_text(FILE *f, const struct caa_report *r, const struct caa_params *p);

int cmd_caa(int argc, char **argv);

#endif
