/*
 * cli/cmd_import.c - `certpilot import certbot|dehydrated`: which importer,
 * and the report every importer ends with.
 */
#include "cli/cli.h"

#include <string.h>

static void usage(FILE *f)
{
    fputs("usage: certpilot import certbot [--config-dir DIR] [options]\n"
          "       certpilot import dehydrated [--basedir DIR] [options]\n"
          "\n"
          "Copy another ACME client's accounts (keeping their URLs), certificates (keys,\n"
          "certificates and settings: nothing is reissued) and hooks into certpilot.  The\n"
          "other client's files are only read.  --dry-run says what would be imported.\n"
          "Run 'certpilot import certbot --help' for the options.\n",
          f);
}

int cmd_import(int argc, char **argv)
{
    if (argc < 2) {
        cli_error("import: say what to import from: certbot or dehydrated");
        usage(stderr);
        return CLI_EXIT_USAGE;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        usage(stdout);
        return CLI_EXIT_OK;
    }
    if (strcmp(argv[1], "certbot") == 0)
        return cmd_import_certbot(argc - 1, argv + 1);
    if (strcmp(argv[1], "dehydrated") == 0)
        return cmd_import_dehydrated(argc - 1, argv + 1);
    cli_error("import: \"%s\" is not a client certpilot imports from: use certbot or dehydrated",
              argv[1]);
    return CLI_EXIT_USAGE;
}

int cli_import_report(const struct flow_import_report *r, const char *from,
                      const struct cli_common *c)
{
    size_t count[4] = {0};
    for (size_t i = 0; i < r->n; i++)
        count[r->items[i].action]++;
    int status = count[FLOW_IMPORT_CONFLICT] + count[FLOW_IMPORT_SKIPPED] ? CLI_EXIT_IMPORT_PARTIAL
                                                                          : CLI_EXIT_OK;
    const char *outcome = status != CLI_EXIT_OK    ? "partial"
                          : r->dry                 ? "dry_run"
                          : count[FLOW_IMPORT_NEW] ? "imported"
                                                   : "unchanged";
    if (c->json) {
        json_t *items = json_array();
        for (size_t i = 0; i < r->n; i++) {
            const struct flow_import_item *it = &r->items[i];
            json_array_append_new(items,
                                  json_pack("{s:s, s:s?, s:s?, s:s, s:s?}", "kind", it->kind,
                                            "name", it->name, "source", it->source, "action",
                                            flow_import_action_name(it->action), "why", it->why));
        }
        cli_json_result(
            json_pack("{s:s, s:b, s:o}", "from", from, "dry_run", r->dry, "items", items), outcome,
            status);
        return status;
    }
    if (c->quiet) { /* what was not imported, and why: the rest went as planned */
        for (size_t i = 0; i < r->n; i++) {
            const struct flow_import_item *it = &r->items[i];
            if (it->action == FLOW_IMPORT_CONFLICT || it->action == FLOW_IMPORT_SKIPPED)
                cli_error("%s %s %s: %s (%s)", it->kind, it->name ? it->name : "",
                          it->action == FLOW_IMPORT_SKIPPED ? "not imported" : "left alone",
                          it->why ? it->why : "", it->source ? it->source : "");
        }
        return status;
    }
    static const char *const verb[2][4] = {
        {"imported", "already there", "left alone", "not imported"},
        {"would import", "already there", "would leave alone", "cannot import"}};
    for (size_t i = 0; i < r->n; i++) {
        const struct flow_import_item *it = &r->items[i];
        printf("%-11s %-18s %s%s%s\n", it->kind, verb[r->dry][it->action], it->name ? it->name : "",
               it->why ? ": " : "", it->why ? it->why : "");
        if (it->source != NULL)
            printf("%-11s %-18s from %s\n", "", "", it->source);
    }
    printf("%s: %zu new, %zu already there, %zu left alone, %zu not importable%s\n", from,
           count[FLOW_IMPORT_NEW], count[FLOW_IMPORT_SAME], count[FLOW_IMPORT_CONFLICT],
           count[FLOW_IMPORT_SKIPPED], r->dry ? " (dry run: nothing written)" : "");
    return status;
}
