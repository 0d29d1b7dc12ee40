/*
 * cli/cmd_serve.c - `certpilot serve-challenges`: the http-01 responder of a
 * fleet.  Every host behind a name runs it; whichever host orders a
 * certificate publishes its key authorizations in the shared store
 * (flow/solve.c), and the responder on the host the CA happens to reach
 * answers from there.  It holds no lock and writes nothing: it can run next
 * to issue and renew, and stops cleanly on SIGTERM or SIGINT.
 */
#include "cli/cli.h"

#include <arpa/inet.h>
#include <getopt.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *f)
{
    fputs("usage: certpilot serve-challenges [--http-port N] [--http-address ADDR]\n"
          "                                  [--config FILE] [--state-dir DIR] [-v] [-q]\n"
          "                                  --store etcd://HOST:PORT[,...]/PREFIX\n"
          "                                  [--store-key-file FILE] [store options]\n"
          "\n"
          "Answers the CA's http-01 requests (GET /.well-known/acme-challenge/TOKEN) with\n"
          "the key authorizations any host of the fleet published in the shared store,\n"
          "until SIGTERM or SIGINT.  One log line per answered token; unknown tokens get\n"
          "404.\n"
          "Run it on every host the names resolve to; `certpilot issue --http-shared` then\n"
          "orders from any of them without a web server or port of its own.\n"
          "--store-key-file may be left out: key authorizations are not sealed, so a host\n"
          "that only answers challenges need not hold the key to the private keys.\n"
          "\n"
          "  --http-port N        port to listen on (default: 80)\n"
          "  --http-address ADDR  the one numeric IPv4/IPv6 address to listen on (default:\n"
          "                       all, IPv6 included)\n"
          "  --config FILE        defaults such as state-dir and the store options (default\n"
          "                       /etc/certpilot/config, if it exists)\n"
          "\n"
          "exit status: 0 stopped by a signal, 64 usage error, 69 the store is unreachable,\n"
          "74 the port cannot be bound, 78 no shared store given or a store key that is not\n"
          "the store's.\n",
          f);
}

struct serve {
    struct cli_common common;
    struct cli_conf defaults;
    int port;
    const char *addr;
};

static int parse_args(struct serve *sv, int argc, char **argv)
{
    static const struct option opts[] = {
        {"http-port", required_argument, NULL, 'p'},
        {"http-address", required_argument, NULL, 2013},
        {"config", required_argument, NULL, 2010},
        {"help", no_argument, NULL, 'h'},
        CLI_COMMON_LONGOPTS,
        {NULL, 0, NULL, 0},
    };
    int ch;
    if (cli_options_exact(argc, argv, ":hvq", opts, "serve-challenges") != 0)
        return CLI_EXIT_USAGE;
    optind = 1;
    opterr = 0;
    while ((ch = getopt_long(argc, argv, ":hvq", opts, NULL)) != -1) {
        switch (ch) {
        case 'p': {
            char *end;
            long v = strtol(optarg, &end, 10);
            if (*optarg == '\0' || *end != '\0' || v < 1 || v > 65535) {
                cli_error("--http-port \"%s\" is not a port number (1-65535)", optarg);
                return CLI_EXIT_USAGE;
            }
            sv->port = (int)v;
            break;
        }
        case 2013: {
            unsigned char buf[sizeof(struct in6_addr)];
            if (inet_pton(AF_INET, optarg, buf) != 1 && inet_pton(AF_INET6, optarg, buf) != 1) {
                cli_error("--http-address \"%s\" is not a numeric IPv4 or IPv6 address (leave "
                          "it out to listen on all addresses)",
                          optarg);
                return CLI_EXIT_USAGE;
            }
            sv->addr = optarg;
            break;
        }
        case 2010: break; /* read by cli_defaults_load() */
        case 'h': usage(stdout); return -1;
        default:
            if (cli_common_option(&sv->common, ch, optarg))
                break;
            cli_error("unknown option or missing value: \"%s\" (see certpilot serve-challenges "
                      "--help)",
                      argv[optind - 1]);
            return CLI_EXIT_USAGE;
        }
    }
    if (optind < argc) {
        cli_error("unexpected argument \"%s\" (see certpilot serve-challenges --help)",
                  argv[optind]);
        return CLI_EXIT_USAGE;
    }
    return 0;
}

/* On the server's thread, after each answer. */
static void served(void *ctx, const char *token)
{
    (void)ctx;
    cli_log(CLI_LOG_NOTICE, "answered http-01 token %s", token);
}

int cmd_serve_challenges(int argc, char **argv)
{
    struct serve sv = {0};
    struct cp_err err = {0};
    struct flow_responder *r = NULL;
    int status;

    cli_common_init(&sv.common);
    sv.port = 80;
    status = cli_defaults_load(argc, argv, &sv.defaults, &sv.common);
    if (status == 0)
        status = parse_args(&sv, argc, argv);
    if (status != 0)
        goto out;
    cli_output_setup(&sv.common);
    /* Key authorizations are not sealed: a host that only answers
     * challenges need not hold the key that opens every private key. */
    sv.common.store_key_optional = true;
    status = cli_common_finish(&sv.common);
    if (status != 0)
        goto out;
    if (!store_shared(sv.common.store)) {
        cli_error("serve-challenges answers from a store the fleet shares, but %s is this "
                  "host's own: give --store etcd://HOST:PORT/PREFIX (the URL issue and renew "
                  "use on every host)",
                  store_where(sv.common.store));
        status = CLI_EXIT_CONFIG;
        goto out;
    }

    /* The signals are taken by sigwait() below, never delivered: blocked
     * before the server's threads start (they block everything anyway). */
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);

    enum cp_code rc =
        flow_responder_start(sv.common.store, sv.addr, sv.port, served, NULL, &r, &err);
    if (rc != CP_OK) {
        status = cli_acme_fail(rc, &err, NULL);
        goto out;
    }
    cli_log(CLI_LOG_NOTICE, "serving http-01 challenges from %s on %s port %d",
            store_where(sv.common.store), sv.addr ? sv.addr : "all addresses", sv.port);
    int sig = 0;
    for (;;) {
        if (sigwait(&stop, &sig) != 0)
            continue;
        if (sig != SIGHUP) /* nothing to reload: the store is read per request */
            break;
    }
    cli_log(CLI_LOG_NOTICE, "stopping (signal %d)", sig);
    flow_responder_stop(r);
    status = 0;
out:
    cli_common_clear(&sv.common);
    cli_conf_clear(&sv.defaults);
    return status < 0 ? 0 : status;
}
