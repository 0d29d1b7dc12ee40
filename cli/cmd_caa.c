/*
 * cli/cmd_caa.c - `certpilot caa check`: would the CA refuse these names because
 * of CAA, and why.  Nothing is sent to any CA.
 */
#include "cli/cli.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *f)
{
    fputs("usage: certpilot caa check [--resolver IP[:PORT]]... [--ca-identity DOMAIN]\n"
          "                           [--account-uri URI] [--method http-01|dns-01|tls-alpn-01]\n"
          "                           [--timeout SECONDS] [--tries N] [--json] [-q] IDENTIFIER...\n"
          "\n"
          "Checks the CAA records of each IDENTIFIER (a DNS name, '*.' for a wildcard) the way\n"
          "Let's Encrypt does, and explains any refusal with the record to publish.\n"
          "\n"
          "  --resolver IP[:PORT]  recursive resolver to ask (repeatable; default: "
          "/etc/resolv.conf)\n"
          "  --ca-identity DOMAIN  issuer domain the CA looks for (default: letsencrypt.org)\n"
          "  --account-uri URI     your ACME account URL, matched against accounturi=\n"
          "  --method TYPE         challenge type that will be used (default: http-01)\n"
          "  --timeout SECONDS     time allowed for each DNS query, all tries, from when it\n"
          "                        is sent; all go out at once, at most 512 (default: 10)\n"
          "  --tries N             attempts per query within that time (default: 2)\n"
          "  --json                print one JSON object instead of text\n"
          "  -q, --quiet           print nothing: the exit status is the answer\n"
          "\n"
          "exit status: 0 all allowed, 1 at least one refused by CAA, 2 no refusal but a DNS\n"
          "failure, 64 usage error, 69 DNS set-up failed.\n",
          f);
}

int cli_option_error(int ch, char **argv, const char *command, const char *operands)
{
    if (ch == ':') {
        cli_error("option \"%s\" needs a value (see certpilot %s --help)", argv[optind - 1],
                  command);
        return CLI_EXIT_USAGE;
    }
    /* In a cluster like "-a.test" getopt has not moved past the word yet. */
    const char *bad = argv[optind - 1][0] == '-' ? argv[optind - 1] : argv[optind];
    cli_error("unknown option \"%s\" (%s cannot start with '-'; see certpilot %s --help)", bad,
              operands, command);
    return CLI_EXIT_USAGE;
}

int cli_caa_option(struct caa_params *p, int opt, const char *arg)
{
    switch (opt) {
    case CLI_OPT_CA_IDENTITY:
        if (!cli_ca_identity_valid(arg)) {
            cli_error("--ca-identity \"%s\" is not an issuer domain name (e.g. letsencrypt.org)",
                      arg);
            return -1;
        }
        p->ca_identity = arg;
        return 1;
    case CLI_OPT_ACCOUNT_URI:
        if (*arg == '\0') {
            cli_error("--account-uri needs your account URL, e.g. "
                      "https://acme-v02.api.letsencrypt.org/acme/acct/123456");
            return -1;
        }
        p->account_uri = arg;
        return 1;
    case CLI_OPT_METHOD:
        if (flow_method_index(arg) < 0) {
            cli_error("--method \"%s\" is not one of http-01, dns-01, tls-alpn-01, dns-persist-01",
                      arg);
            return -1;
        }
        p->method = arg;
        return 1;
    default: return 0;
    }
}

static int caa_check_main(int argc, char **argv)
{
    static const struct option longopts[] = {
        CLI_CAA_LONGOPTS, CLI_OUTPUT_LONGOPTS, {"help", no_argument, NULL, 'h'},
        CLI_DNS_LONGOPTS, {NULL, 0, NULL, 0},
    };
    struct cli_dns dns;
    struct caa_params params = {.ca_identity = "letsencrypt.org", .method = "http-01"};
    struct cli_common out; /* the output options only */
    int ch;

    cli_common_init(&out);
    if (cli_options_exact(argc, argv, ":hvq", longopts, "caa check") != 0)
        return CLI_EXIT_USAGE;
    optind = 1;
    opterr = 0; /* report unknown options ourselves, naming the argument */
    cli_dns_init(&dns);
    while ((ch = getopt_long(argc, argv, ":hvq", longopts, NULL)) != -1) {
        int handled = cli_dns_option(&dns, ch, optarg);
        if (handled == 0)
            handled = cli_caa_option(&params, ch, optarg);
        if (handled < 0)
            return CLI_EXIT_USAGE;
        if (handled > 0)
            continue;
        if (cli_common_option(&out, ch, optarg))
            continue;
        switch (ch) {
        case 'h': usage(stdout); return CLI_EXIT_OK;
        default: return cli_option_error(ch, argv, "caa check", "identifiers");
        }
    }
    if (optind >= argc) {
        cli_error("caa check needs at least one identifier, e.g. certpilot caa check example.com");
        return CLI_EXIT_USAGE;
    }
    cli_output_setup(&out);

    struct cp_err err = {0};
    struct caa_report *report = NULL;
    enum cp_code rc = caa_check((const char *const *)argv + optind, (size_t)(argc - optind),
                                &dns.ropts, &params, &report, &err);
    switch (rc) {
    case CP_OK: break;
    case CP_EINVAL: cli_error("%s", err.msg); return CLI_EXIT_USAGE;
    case CP_EDNS: cli_error("%s", err.msg); return CLI_EXIT_UNAVAILABLE;
    default: cli_error("%s: %s", cp_code_name(rc), err.msg); return CLI_EXIT_SOFTWARE;
    }

    int status = CLI_EXIT_OK;
    for (size_t i = 0; i < caa_report_count(report); i++) {
        enum caa_status s = caa_report_result(report, i)->status;
        if (s == CAA_DENIED)
            status = CLI_EXIT_CAA_DENIED;
        else if (s == CAA_ERROR && status == CLI_EXIT_OK)
            status = CLI_EXIT_CAA_DNS;
    }
    if (out.json) {
        json_t *j = cli_caa_report_json(report, &params);
        if (j == NULL) {
            caa_report_free(report);
            cli_error("out of memory building JSON output");
            return CLI_EXIT_SOFTWARE;
        }
        cli_json_result(j,
                        status == CLI_EXIT_OK           ? "allowed"
                        : status == CLI_EXIT_CAA_DENIED ? "refused"
                                                        : "dns_error",
                        status);
    } else {
        cli_caa_report_text(stdout, report, &params);
    }
    caa_report_free(report);
    return status;
}

int cmd_caa(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? CLI_EXIT_USAGE : CLI_EXIT_OK;
    }
    if (strcmp(argv[1], "check") == 0)
        return caa_check_main(argc - 1, argv + 1);
    cli_error("unknown caa command \"%s\" (try: certpilot caa check NAME)", argv[1]);
    return CLI_EXIT_USAGE;
}
