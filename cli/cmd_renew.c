/*
 * cli/cmd_renew.c - `certpilot renew` and `certpilot list`.
 *
 * renew walks STATE/certs/, and for each certificate asks flow/lineage.c
 * whether it is due: inside the CA's ARI window (RFC 9773) at a point picked
 * at random once per window and kept in status.json, or, when the CA offers
 * no ARI, once less than a third of its lifetime remains.  A due certificate
 * goes through the same engine as `issue` (CAA preflight first), with the
 * settings of its renewal.conf.  Nothing is asked of the network when
 * nothing is due and the cached ARI answer is still fresh (a client for a CA
 * is opened only when its window must be asked for), so a timer firing every
 * few hours costs little.  One certificate failing does not stop the others.
 */
#define _DEFAULT_SOURCE /* DT_DIR */
#include "cli/cli.h"

#include <dirent.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/civil.h"

#include "common/file.h"

#define CERT_FILE_MAX        (256 * 1024)
#define LOCK_TIMEOUT_DEFAULT 60 /* seconds */
#define CLIENTS_MAX          8
#define HOOKS_MAX            64

/* The ACME clients of this run, one per CA (directory URL and CA bundle). */
struct clients {
    struct {
        char *server, *bundle;
        struct acme_client *client; /* NULL: could not be reached */
    } c[CLIENTS_MAX];
    size_t n;
    bool verbose;
};

static struct acme_client *client_for(struct clients *cl, const char *server, const char *bundle)
{
    for (size_t i = 0; i < cl->n; i++)
        if (strcmp(cl->c[i].server, server) == 0 &&
            strcmp(cl->c[i].bundle, bundle ? bundle : "") == 0)
            return cl->c[i].client;
    struct cli_common common;
    cli_common_init(&common);
    common.server = server;
    common.ca_bundle = bundle;
    common.verbose = cl->verbose;
    struct acme_client *client = NULL;
    if (cli_client_open(&common, &client) != 0)
        client = NULL;
    if (cl->n < CLIENTS_MAX) {
        cl->c[cl->n].server = strdup(server);
        cl->c[cl->n].bundle = strdup(bundle ? bundle : "");
        cl->c[cl->n++].client = client;
    }
    return client;
}

static void clients_free(struct clients *cl)
{
    for (size_t i = 0; i < cl->n; i++) {
        free(cl->c[i].server);
        free(cl->c[i].bundle);
        acme_client_free(cl->c[i].client);
    }
    cl->n = 0;
}

/* Options of renew and list. */
struct renew {
    struct cli_common common;
    const char *config;
    const char *only[256];
    size_t nonly;
    bool force, dry_run;
    const char *dry_mode; /* --dry-run=check|order; NULL: bare --dry-run (as for issue) */
    int refused;          /* certificates whose dry-run order was refused (production CA) */
    int unavailable;      /* ... that failed because the shared store could not be reached */
    int locked;           /* ... because another host holds its lock (or this one lost it) */
    const char *pre_hook, *post_hook, *deploy_hook;
    unsigned lock_timeout;
    struct cli_args extra; /* --resolver/--timeout/--tries for every certificate */
    struct cli_conf defaults;
    /* this run */
    const char
        *ran_hooks[HOOKS_MAX]; /* pre-hooks run, post-hooks to run, dehydrated hooks started */
    size_t nran;
    const char *post[HOOKS_MAX];
    size_t npost;
    const char *started[HOOKS_MAX];
    size_t nstarted;
    char hooks_dir[4200]; /* hooks.d next to the defaults file */
    bool ran_pre_dir;     /* hooks.d/pre ran: hooks.d/post runs at the end */
};

/* Remember a hook for this run (a copy: the certificate's settings go away). */
static void remember(const char **list, size_t *n, const char *hook)
{
    char *copy = *n < HOOKS_MAX ? strdup(hook) : NULL;
    if (copy != NULL)
        list[(*n)++] = copy;
}

static void forget(const char **list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free((char *)list[i]);
}

static bool listed(const char *const *list, size_t n, const char *s)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(list[i], s) == 0)
            return true;
    return false;
}

static void renew_usage(FILE *f)
{
    fputs("usage: certpilot renew [--cert-name NAME]... [--force-renewal]\n"
          "         [--dry-run[=check|order]]\n"
          "         [--pre-hook CMD] [--post-hook CMD] [--deploy-hook CMD]\n"
          "         [--lock-timeout SECONDS] [--config FILE]\n"
          "         [--resolver IP[:PORT]]... [--timeout SECONDS] [--tries N]\n"
          "         [--state-dir DIR] [-v] [-q/--quiet] [--json]\n"
          "Renews each certificate of the state directory that is due: inside the CA's\n"
          "renewal window (ARI) when the CA offers one, else when less than a third of\n"
          "its lifetime is left.  Each uses the settings issue saved in its renewal.conf;\n"
          "the CAA preflight runs before every order.\n"
          "  --force-renewal     renew the selected certificates even if not due\n"
          "  --dry-run[=MODE]    each selected certificate, due or not, as issue --dry-run\n"
          "                      does: check (the default; =order for letsencrypt-staging)\n"
          "                      or order (a real order, its certificate thrown away;\n"
          "                      refused for letsencrypt).  The state directory is not\n"
          "                      written and no hook runs; says what a real run would do\n"
          "  --pre-hook CMD      run once before the first renewal attempt of this run\n"
          "  --post-hook CMD     run once at the end, when something was attempted\n"
          "  --deploy-hook CMD   run after each renewed certificate (RENEWED_LINEAGE,\n"
          "                      RENEWED_DOMAINS); these three replace the stored ones;\n"
          "                      CMD is words (no shell) or sh:COMMAND-LINE (/bin/sh -c)\n"
          "  --config FILE       defaults; hooks.d/{pre,post,deploy}/ next to it run with\n"
          "                      the pre-, post- and deploy hooks (default /etc/certpilot)\n"
          "  -q, --quiet         print only errors (for timers)\n"
          "  --lock-timeout S    wait at most S seconds for another run (default 60)\n"
          "Exit: 0 every due certificate renewed (or none due), 1 at least one failed,\n"
          "64 every failure a --dry-run=order refused for letsencrypt, 69 every failure\n"
          "the shared store (--store) unreachable, 75 another run holds the lock (or, on\n"
          "a shared store, every failure a lineage lock another host holds or this run\n"
          "lost).\n",
          f);
}

static int renew_args(struct renew *r, int argc, char **argv, bool list)
{
    static const struct option opts[] = {
        {"cert-name", required_argument, NULL, 'n'},
        {"force-renewal", no_argument, NULL, 'f'},
        {"dry-run", optional_argument, NULL, 'D'},
        {"pre-hook", required_argument, NULL, 2007},
        {"post-hook", required_argument, NULL, 2008},
        {"deploy-hook", required_argument, NULL, 2009},
        {"config", required_argument, NULL, 2010},
        {"lock-timeout", required_argument, NULL, 2011},
        {"help", no_argument, NULL, 'h'},
        CLI_COMMON_LONGOPTS,
        CLI_DNS_LONGOPTS,
        {NULL, 0, NULL, 0},
    };
    char arg[4200];
    int ch;
    if (cli_options_exact(argc, argv, ":hvq", opts, list ? "list" : "renew") != 0)
        return CLI_EXIT_USAGE;
    optind = 1;
    opterr = 0;
    while ((ch = getopt_long(argc, argv, ":hvq", opts, NULL)) != -1) {
        bool renew_only = ch != 'h' && ch != 1003 && ch != 1004 && ch != 'v' && ch != 'q' &&
                          ch != 2010 && !CLI_STORE_OPTION(ch);
        if (list && renew_only) {
            cli_error("list takes --state-dir, --config, --json, -q and -v only");
            return CLI_EXIT_USAGE;
        }
        switch (ch) {
        case 'n':
            if (!store_name_valid(optarg) || r->nonly == 256) {
                cli_error("--cert-name \"%s\": use letters, digits, '.', '-' and '_'", optarg);
                return CLI_EXIT_USAGE;
            }
            r->only[r->nonly++] = optarg;
            break;
        case 'f': r->force = true; break;
        case 'D':
            if (optarg != NULL && strcmp(optarg, "check") != 0 && strcmp(optarg, "order") != 0) {
                cli_error("--dry-run=%s: use --dry-run, --dry-run=check or --dry-run=order",
                          optarg);
                return CLI_EXIT_USAGE;
            }
            r->dry_run = true;
            r->dry_mode = optarg;
            break;
        case 2007: r->pre_hook = optarg; break;
        case 2008: r->post_hook = optarg; break;
        case 2009: r->deploy_hook = optarg; break;
        case 2010: r->config = optarg; break;
        case 2011: {
            char *end;
            long v = strtol(optarg, &end, 10);
            if (*optarg == '\0' || *end != '\0' || v < 0 || v > 86400) {
                cli_error("--lock-timeout \"%s\" is not a number of seconds (0-86400)", optarg);
                return CLI_EXIT_USAGE;
            }
            r->lock_timeout = (unsigned)v;
            break;
        }
        case CLI_OPT_RESOLVER:
        case CLI_OPT_TIMEOUT:
        case CLI_OPT_TRIES:
            snprintf(arg, sizeof arg, "--%s=%s",
                     ch == CLI_OPT_RESOLVER  ? "resolver"
                     : ch == CLI_OPT_TIMEOUT ? "timeout"
                                             : "tries",
                     optarg);
            if (cli_args_add(&r->extra, arg, NULL) != CP_OK)
                return CLI_EXIT_SOFTWARE;
            break;
        case 'h': renew_usage(stdout); return -1;
        case 1001:
        case 1002:
            cli_error("renew takes the CA from each certificate's renewal.conf: edit "
                      "\"server\" / \"ca-bundle\" there");
            return CLI_EXIT_USAGE;
        default:
            if (cli_common_option(&r->common, ch, optarg))
                break;
            cli_error("unknown option or missing value: \"%s\" (see certpilot %s --help)",
                      argv[optind - 1], list ? "list" : "renew");
            return CLI_EXIT_USAGE;
        }
    }
    if (optind < argc) {
        cli_error("unexpected argument \"%s\"", argv[optind]);
        return CLI_EXIT_USAGE;
    }
    struct cp_err err = {0};
    const char *const hooks[] = {r->pre_hook, r->post_hook, r->deploy_hook};
    for (size_t i = 0; i < 3; i++)
        if (hooks[i] != NULL && flow_hook_command_check(hooks[i], &err) != CP_OK) {
            cli_error("--%s: %s", (const char *[]){"pre-hook", "post-hook", "deploy-hook"}[i],
                      err.msg);
            return CLI_EXIT_USAGE;
        }
    const char *path = r->config ? r->config : CLI_DEFAULT_CONFIG;
    if (cli_conf_load(path, r->config == NULL, &r->defaults, &err) != CP_OK) {
        cli_error("%s", err.msg);
        return CLI_EXIT_CONFIG;
    }
    /* The state directory: --state-dir, else the defaults file's, else the default. */
    const char *state = cli_conf_get(&r->defaults, "state-dir");
    if (r->common.state_dir == NULL && state != NULL)
        r->common.state_dir = state;
    cli_common_store_defaults(&r->common, &r->defaults);
    if (cli_hooks_dir(r->config, r->hooks_dir, sizeof r->hooks_dir) == NULL) {
        cli_error("--config %s: the path is too long", r->config);
        return CLI_EXIT_CONFIG;
    }
    r->common.server = CLI_LE_PRODUCTION; /* unused; cli_common_finish wants one */
    return cli_common_finish(&r->common);
}

/* The arguments issue would get for certificate `name`: defaults file,
 * renewal.conf, then this run's own. */
static int cert_args(struct renew *r, const char *name, struct cli_args *a)
{
    char arg[4400];
    struct cp_err err = {0};
    struct cli_conf conf = {0};
    enum cp_code rc = cli_conf_load_lineage(r->common.store, name, &conf, &err);
    if (rc == CP_OK)
        rc = cli_args_add(a, "renew", NULL);
    if (rc == CP_OK)
        rc = cli_issue_settings_args(&r->defaults, &conf, NULL, a, &err);
    cli_conf_clear(&conf);
    snprintf(arg, sizeof arg, "--cert-name=%s", name);
    if (rc == CP_OK)
        rc = cli_args_add(a, arg, NULL);
    snprintf(arg, sizeof arg, "--state-dir=%s", r->common.state_dir);
    if (rc == CP_OK)
        rc = cli_args_add(a, arg, NULL);
    if (rc == CP_OK)
        rc = cli_common_store_args(&r->common, a);
    if (rc == CP_OK && r->common.verbose)
        rc = cli_args_add(a, "-v", NULL);
    snprintf(arg, sizeof arg, "--dry-run%s%s", r->dry_mode ? "=" : "",
             r->dry_mode ? r->dry_mode : "");
    if (rc == CP_OK && r->dry_run)
        rc = cli_args_add(a, arg, NULL);
    for (size_t i = 0; rc == CP_OK && i < r->extra.argc; i++)
        rc = cli_args_add(a, r->extra.argv[i], NULL);
    if (rc != CP_OK) {
        cli_error("%s", err.msg[0] ? err.msg : "out of memory");
        return CLI_EXIT_CONFIG;
    }
    return 0;
}

/* When the time between renew_at and expiry is shorter than two runs of the
 * systemd timer: a warning saying so (true), for list and renew. */
static bool window_warning(const struct flow_lineage_cert *c, char *buf, size_t size)
{
    if (!flow_lineage_window_short(c, FLOW_TIMER_INTERVAL))
        return false;
    long long window = c->not_after - c->renew_at;
    snprintf(buf, size,
             "only %lld minutes between renewal and expiry: certpilot-renew.timer runs every %d "
             "hours, too seldom for this certificate (run renew more often)",
             window > 0 ? window / 60 : 0, FLOW_TIMER_HOURS);
    return true;
}

/*
 * One certificate as `list` shows it and `renew --json` reports it: the same
 * fields under the same names (renew adds "outcome", "exit_status" and
 * "message" for its run).  `names` is taken; `not_after` is the current
 * certificate's expiry (0: none readable).
 */
static json_t *cert_json(struct cp_store *st, const struct flow_lineage_cert *c, json_t *names,
                         long long not_after, long long now)
{
    char expiry[32], renew_at[32], last_at[32], revoked[256] = "";
    long long last = (long long)json_integer_value(json_object_get(c->status, "last_attempt"));
    cp_time_str(not_after, expiry);
    cp_time_str(c->renew_at, renew_at);
    cp_time_str(last, last_at);
    json_t *o =
        json_pack("{s:s, s:o, s:s?, s:I, s:s?, s:b, s:s, s:s?, s:s?, s:s?}", "cert_name", c->name,
                  "names", names ? names : json_array(), "not_after", not_after ? expiry : NULL,
                  "days_left", (json_int_t)(not_after ? (not_after - now) / 86400 : 0), "renew_at",
                  c->renew_at ? renew_at : NULL, "due", c->due, "why", c->why, "last_result",
                  json_string_value(json_object_get(c->status, "last_result")), "last_attempt",
                  last ? last_at : NULL, "last_message",
                  json_string_value(json_object_get(c->status, "last_message")));
    json_t *profile = json_object_get(c->status, "profile"); /* the CA's, when one was used */
    json_object_set_new(o, "profile", json_is_string(profile) ? json_incref(profile) : json_null());
    char warning[300];
    if (o != NULL && window_warning(c, warning, sizeof warning))
        json_object_set_new(o, "window_warning", json_string(warning));
    /* only then: the other entries keep their shape */
    if (o != NULL && flow_lineage_revoked(st, c->name, c->status, revoked, sizeof revoked))
        json_object_set(o, "revoked", json_object_get(c->status, "revoked"));
    return o;
}

/* Log what the engine reported for one certificate, a line each. */
static void log_report(char *text, enum cli_log_level level)
{
    if (text != NULL)
        cli_log_lines(level, "", text);
}

static void record_attempt(struct flow_lineage_cert *c, const char *outcome, int status,
                           const char *message, long long now)
{
    flow_lineage_record(c->status, outcome, status, message, now);
    c->status_changed = true;
}

/* Renew one certificate; its JSON summary is returned, *failed set. */
static json_t *renew_one(struct renew *r, struct clients *cl, const char *name, long long now,
                         bool *failed)
{
    struct cli_args args = {0};
    struct flow_lineage_cert c = {0};
    struct cli_issue *is = cli_issue_new();
    struct cli_issue_info info = {0};
    struct flow_fleet_claim claim = {0};
    const char *outcome = "not_due", *not_after = NULL;
    /* A dry run of a certificate with an ARI id: what a real one would
     * put in newOrder's "replaces" (NULL: the CA offers no ARI). */
    const char *would_replace = NULL;
    bool replace_known = false;
    char *text = NULL, config_error[512] = "", reason[512] = "", judged[STORE_VERSION_ID_MAX] = "";
    size_t len = 0;
    int status = 0;
    bool unsafe = false, synced = false;

    snprintf(c.name, sizeof c.name, "%s", name);
    cli_last_error_clear();
    cli_log_context(name);
    /* Nothing is read from a lineage someone else could have changed, and
     * nothing written into it. */
    struct cp_err uerr = {0};
    char live[4400] = "";
    if (store_lineage_check(r->common.store, name, &uerr) != CP_OK ||
        store_lineage_dir(r->common.store, name, live, sizeof live, &uerr) != CP_OK) {
        cli_error("%s", uerr.msg);
        outcome = "unsafe";
        status = uerr.code == CP_EUNSAFE ? CLI_EXIT_UNSAFE : CLI_EXIT_IO;
        snprintf(config_error, sizeof config_error, "%s", uerr.msg);
        unsafe = true;
        goto out;
    }
    /* A shared store: another host's new version deployed here first (its
     * deploy hooks run below, once the settings are read), and judged. */
    if (!r->dry_run && flow_fleet_sync(r->common.store, name, judged, &synced, &uerr) != CP_OK) {
        status = cli_store_fail(&uerr);
        outcome = "failed";
        snprintf(reason, sizeof reason, "%s", uerr.msg);
        goto out;
    }
    if (synced)
        cli_log(CLI_LOG_NOTICE, "another host renewed it: its version %s is deployed here", judged);
    /* Revoked (certpilot revoke): renewed only when named and forced. */
    char revoked[256];
    json_t *mark = store_status_load(r->common.store, name);
    bool was_revoked = flow_lineage_revoked(r->common.store, name, mark, revoked, sizeof revoked);
    if (was_revoked && !(r->force && listed(r->only, r->nonly, name))) {
        json_decref(mark);
        cli_log(CLI_LOG_NOTICE,
                "skipped: its certificate was %s; to replace it: certpilot renew --cert-name %s "
                "--force-renewal",
                revoked, name);
        outcome = "revoked";
        snprintf(c.why, sizeof c.why, "its certificate was %s", revoked);
        goto out;
    }
    if (was_revoked)
        cli_log(CLI_LOG_NOTICE, "replacing a certificate that was %s, as asked", revoked);
    if (is != NULL) /* one handle on the store for the whole run, where lineage locks are held */
        cli_issue_share_store(is, r->common.store);
    status = is == NULL ? CLI_EXIT_SOFTWARE : cert_args(r, name, &args);
    if (status == 0)
        status = cli_issue_configure(is, &args);
    struct cp_err cerr = {0};
    c.status = mark; /* read once: flow_lineage_cert_load() takes it */
    /* So is the version flow_fleet_sync() read, unless it deployed another. */
    if (!r->dry_run && !synced)
        c.version = judged;
    if (flow_lineage_cert_load(r->common.store, name, &c, &cerr) != CP_OK)
        cli_error("%s", cerr.msg);
    if (status != 0) {
        char why[512];
        outcome = "config_error";
        snprintf(why, sizeof why, "%s", cli_last_error());
        cli_error("its settings cannot be used (above); fix %s/renewal.conf", live);
        snprintf(config_error, sizeof config_error, "%s", why);
        if (!r->dry_run && c.status != NULL)
            record_attempt(&c, outcome, status, config_error, now);
        goto out;
    }
    cli_issue_info(is, &info);
    if (synced && (status = cli_issue_deploy(is, r->deploy_hook, r->hooks_dir)) != 0) {
        outcome = "deploy_hook_failed";
        snprintf(reason, sizeof reason, "%s", cli_last_error());
        cli_error("another host's new certificate is in place here, but its deploy hook failed: "
                  "check the hook");
        goto out;
    }
    if (info.hook != NULL && !r->dry_run && !listed(r->started, r->nstarted, info.hook)) {
        remember(r->started, &r->nstarted, info.hook);
        flow_hook_event(cli_flow_log(), info.hook, "startup_hook", NULL, 0);
    }
    /* The CA is asked for its window only when the cached one is missing
     * or stale: a client is opened (once per CA) only then. */
    struct flow_due_req due = {.now = now, .forced = r->force, .ask_ca = !r->dry_run};
    if (due.ask_ca && flow_lineage_ari_wanted(&c, now))
        due.client = client_for(cl, info.server, info.ca_bundle);
    flow_lineage_judge(&c, &due, cli_flow_log());
    if (info.dry_run != NULL && strcmp(info.dry_run, "order") == 0 &&
        strcmp(info.server, CLI_LE_PRODUCTION) == 0) {
        cli_error("--dry-run=order: its CA is Let's Encrypt's production CA, where an order "
                  "counts against the rate limits; nothing was sent (use --dry-run=check)");
        outcome = "refused";
        status = CLI_EXIT_USAGE;
        snprintf(config_error, sizeof config_error,
                 "--dry-run=order refused against Let's Encrypt's production CA");
        r->refused++;
        goto out;
    }
    if (!c.due && !r->dry_run) {
        cli_log(CLI_LOG_DEBUG, "not due: %s", c.why);
        if (synced)
            outcome = "renewed_elsewhere";
        if (info.hook != NULL) {
            char files[4][4500];
            static const char *const f[] = {"privkey.pem", "cert.pem", "fullchain.pem",
                                            "chain.pem"};
            for (size_t i = 0; i < 4; i++)
                snprintf(files[i], sizeof files[i], "%s/%s", live, f[i]);
            const char *a[] = {info.names[0], files[0], files[1], files[2], files[3]};
            flow_hook_event(cli_flow_log(), info.hook, "unchanged_cert", a, 5);
        }
        goto out;
    }
    /* Due: on a shared store, ordered by one host only (the lineage lock),
     * and only if no other host renewed it since it was judged here. */
    if (!r->dry_run) {
        struct cp_err lerr = {0};
        if (flow_fleet_claim(r->common.store, name, judged, r->lock_timeout, cli_lineage_waiting,
                             (void *)name, cli_flow_log(), &claim, &lerr) != CP_OK) {
            status = cli_store_fail(&lerr);
            outcome = lerr.code == CP_ETIMEOUT ? "locked" : "failed";
            snprintf(reason, sizeof reason, "%s", lerr.msg);
            goto out;
        }
        if (claim.elsewhere) {
            outcome = "renewed_elsewhere";
            cli_log(CLI_LOG_NOTICE, "renewed by another host meanwhile: nothing ordered%s",
                    claim.changed ? "; its certificate is deployed here" : "");
            /* What this run judged from is older than what that host saved. */
            c.status_changed = false;
            if (claim.changed && (status = cli_issue_deploy(is, r->deploy_hook, r->hooks_dir))) {
                outcome = "deploy_hook_failed";
                snprintf(reason, sizeof reason, "%s", cli_last_error());
                cli_error("another host's new certificate is in place here, but its deploy hook "
                          "failed: check the hook");
            }
            goto out;
        }
        cli_issue_hold(is, claim.lock);
    }
    /* Due (or a dry run): the pre-hook once per run, then the engine. */
    const char *pre = r->pre_hook ? r->pre_hook : info.pre_hook;
    const char *post = r->post_hook ? r->post_hook : info.post_hook;
    if (!r->dry_run && !r->ran_pre_dir) { /* hooks.d/pre before any pre-hook */
        r->ran_pre_dir = true;
        if (!flow_hook_dir(cli_flow_log(), r->hooks_dir, FLOW_HOOK_PRE, NULL))
            cli_error("warning: a hook in %s/pre failed; renewing anyway", r->hooks_dir);
    }
    if (!r->dry_run && pre != NULL && !listed(r->ran_hooks, r->nran, pre)) {
        remember(r->ran_hooks, &r->nran, pre);
        if (!flow_hook_command(cli_flow_log(), "pre-hook", pre, NULL))
            cli_error("warning: the pre-hook failed; renewing anyway");
    }
    if (!r->dry_run && post != NULL && !listed(r->post, r->npost, post))
        remember(r->post, &r->npost, post);
    if (r->dry_run)
        cli_log(CLI_LOG_NOTICE, "dry run (%s): %s: %s", info.dry_run ? info.dry_run : "?",
                c.due ? "a real run would renew it now" : "a real run would leave it alone", c.why);
    else
        cli_log(CLI_LOG_NOTICE, "renewing: %s", c.why);
    FILE *out = open_memstream(&text, &len);
    if (out == NULL) {
        status = CLI_EXIT_SOFTWARE;
        goto out;
    }
    /* A dry run sends no "replaces" (cli_issue_obtain), but reports it. */
    status = cli_issue_obtain(is, out, c.ari_id);
    if (r->dry_run && c.ari_id != NULL)
        replace_known = cli_issue_would_replace(is, &would_replace);
    fclose(out);
    snprintf(reason, sizeof reason, "%s", cli_last_error());
    outcome = cli_issue_outcome(is, &not_after);
    log_report(text, status == 0 ? CLI_LOG_INFO : CLI_LOG_ERR);
    if (status == 0 && !r->dry_run) {
        cli_log(CLI_LOG_NOTICE, "renewed; the new certificate expires %s",
                not_after ? not_after : "?");
        outcome = "renewed";
        json_object_del(c.status, "ari"); /* it was about the replaced certificate */
        flow_lineage_set_profile(c.status, cli_issue_profile(is));
        int hs = cli_issue_deploy(is, r->deploy_hook, r->hooks_dir);
        if (hs != 0) {
            status = hs;
            outcome = "deploy_hook_failed";
            snprintf(reason, sizeof reason, "%s", cli_last_error());
            cli_error("renewed, but its deploy hook failed: the new certificate is in place; "
                      "check the hook");
        }
    } else if (status != 0) {
        cli_error("renewal failed (exit status %d); the current certificate and key are "
                  "unchanged",
                  status);
    }
    /* A lost lineage lock: another host may be renewing it now, and this
     * one writes nothing, not even its status. */
    if (!r->dry_run && strcmp(outcome, "lock_lost") != 0)
        record_attempt(&c, outcome, status, status ? reason : "", now);
    else if (!r->dry_run)
        c.status_changed = false;
out:
    *failed = status != 0;
    r->unavailable += status == CLI_EXIT_UNAVAILABLE;
    r->locked += status == CLI_EXIT_LOCKED;
    /* The expiry of the certificate in place now: the new one when renewed
     * (what is read of it cached in the status saved below). */
    long long current = c.have_cert ? c.not_after : 0;
    bool elsewhere = strcmp(outcome, "renewed_elsewhere") == 0;
    if (strcmp(outcome, "renewed") == 0 || strcmp(outcome, "deploy_hook_failed") == 0 ||
        elsewhere) {
        struct flow_lineage_cert now_in = {.status = json_incref(c.status)};
        struct cp_err lerr = {0};
        if (flow_lineage_cert_load(r->common.store, name, &now_in, &lerr) == CP_OK &&
            now_in.have_cert)
            current = now_in.not_after;
        /* Another host's renewal: its status stands, not this host's view. */
        c.status_changed |= now_in.status_changed && !elsewhere;
        flow_lineage_cert_clear(&now_in);
    }
    if (c.status_changed && !r->dry_run && c.status != NULL) {
        struct cp_err err = {0};
        if (store_lineage_exists(r->common.store, name) &&
            store_status_save(r->common.store, name, c.status, &err) != CP_OK)
            cli_error("%s", err.msg);
    }
    flow_fleet_release(&claim); /* the new version and the status are saved */
    json_t *names =
        info.nnames || unsafe ? json_array() : flow_lineage_names(r->common.store, name);
    for (size_t i = 0; i < info.nnames; i++)
        json_array_append_new(names, json_string(info.names[i]));
    /* days_left of a new certificate counted from now, not from the run's
     * start (which is before it was issued): list, run after, agrees. */
    bool replaced = current != (c.have_cert ? c.not_after : 0);
    json_t *j =
        cert_json(r->common.store, &c, names, current, replaced ? (long long)time(NULL) : now);
    json_object_set_new(j, "outcome", json_string(outcome));
    json_object_set_new(j, "exit_status", json_integer(status));
    json_object_set_new(j, "message",
                        json_string(config_error[0] ? config_error
                                    : status        ? reason
                                                    : ""));
    if (unsafe)
        json_object_set_new(j, "unsafe", json_string(config_error));
    if (replace_known)
        json_object_set_new(j, "replaces",
                            would_replace ? json_string(would_replace) : json_null());
    if (r->dry_run) /* what the dry run did, as decided for its CA */
        json_object_set_new(j, "dry_run",
                            info.dry_run  ? json_string(info.dry_run)
                            : r->dry_mode ? json_string(r->dry_mode)
                                          : json_null());
    free(text);
    flow_lineage_cert_clear(&c);
    cli_issue_free(is);
    cli_log_context(NULL);
    cli_args_clear(&args);
    return j;
}

/* The line of the text summary for one result (its message is at most
 * 512 bytes): a run over many certificates keeps only this line of each
 * until the end, not the whole result. */
static json_t *text_entry(json_t *o)
{
    char line[2048];
    const char *outcome = json_string_value(json_object_get(o, "outcome"));
    const char *when = json_string_value(json_object_get(o, "renew_at"));
    const char *dry = json_string_value(json_object_get(o, "dry_run"));
    const char *name = json_string_value(json_object_get(o, "cert_name"));
    if (outcome == NULL)
        outcome = "";
    if (dry != NULL && strcmp(outcome, "dry_run") == 0) {
        bool due = json_is_true(json_object_get(o, "due"));
        snprintf(line, sizeof line, "%-30s %-20s %s passed; a real run would %s%s\n", name, outcome,
                 strcmp(dry, "order") == 0 ? "order" : "check",
                 due ? "renew it now" : "renew it from ", due || when == NULL ? "" : when);
    } else {
        const char *message = json_integer_value(json_object_get(o, "exit_status")) != 0
                                  ? json_string_value(json_object_get(o, "message"))
                                  : "";
        bool not_due = strcmp(outcome, "not_due") == 0;
        snprintf(line, sizeof line, "%-30s %-20s %s%s%s\n", name, outcome,
                 not_due ? "renews from " : "", not_due && when ? when : "",
                 message ? message : "");
    }
    json_decref(o);
    return json_string(line);
}

static void summary_text(const json_t *results)
{
    for (size_t i = 0; i < json_array_size(results); i++)
        fputs(json_string_value(json_array_get(results, i)), stdout);
}

int cmd_renew(int argc, char **argv)
{
    struct renew r = {.lock_timeout = LOCK_TIMEOUT_DEFAULT};
    struct clients cl = {0};
    char **names = NULL;
    size_t n = 0;
    int failures = 0, attempted = 0, renewed = 0; /* renewed: or checked, for a dry run */
    int elsewhere = 0; /* renewed by another host sharing the store, deployed here */
    json_t *results = json_array();

    cli_common_init(&r.common);
    int status = renew_args(&r, argc, argv, false);
    if (status != 0)
        goto out;
    cli_output_setup(&r.common);
    cl.verbose = r.common.verbose;
    /* A dry run writes nothing, so it takes no lock (the lock file is in
     * the state directory), as issue --dry-run. */
    status = r.dry_run ? 0 : cli_store_lock(&r.common, r.lock_timeout);
    if (status != 0)
        goto out;
    struct cp_err err = {0};
    if (store_lineage_names(r.common.store, &names, &n, &err) != CP_OK) {
        status = cli_store_fail(&err);
        goto out;
    }
    for (size_t i = 0; i < r.nonly; i++)
        if (!listed((const char *const *)names, n, r.only[i])) {
            cli_error("--cert-name %s: there is no such certificate in %s/certs (see certpilot "
                      "list)",
                      r.only[i], r.common.state_dir);
            status = CLI_EXIT_USAGE;
            goto out;
        }
    long long now = (long long)time(NULL);
    for (size_t i = 0; i < n; i++) {
        if (r.nonly > 0 && !listed(r.only, r.nonly, names[i]))
            continue;
        bool failed = false;
        json_t *j = renew_one(&r, &cl, names[i], now, &failed);
        const char *o = json_string_value(json_object_get(j, "outcome"));
        attempted += o != NULL && strcmp(o, "not_due") != 0 && strcmp(o, "renewed_elsewhere") != 0;
        renewed += o != NULL && (strcmp(o, "renewed") == 0 || strcmp(o, "dry_run") == 0);
        elsewhere += o != NULL && strcmp(o, "renewed_elsewhere") == 0;
        failures += failed;
        json_array_append_new(results, r.common.json ? j : text_entry(j));
    }
    for (size_t i = 0; i < r.npost; i++)
        if (!flow_hook_command(cli_flow_log(), "post-hook", r.post[i], NULL))
            failures++;
    if (r.ran_pre_dir && !flow_hook_dir(cli_flow_log(), r.hooks_dir, FLOW_HOOK_POST, NULL))
        failures++;
    for (size_t i = 0; i < r.nstarted; i++) {
        const char *a[] = {failures ? "ERROR" : ""};
        flow_hook_event(cli_flow_log(), r.started[i], "exit_hook", a, failures ? 1 : 0);
    }
    /* every failure a refused dry-run order: the usage was wrong */
    status = failures == 0               ? 0
             : failures == r.refused     ? CLI_EXIT_USAGE
             : failures == r.unavailable ? CLI_EXIT_UNAVAILABLE /* the shared store */
             : failures == r.locked      ? CLI_EXIT_LOCKED
                                         : CLI_EXIT_RENEW_FAILED;
    if (r.common.json) {
        json_t *j = json_pack("{s:b, s:i, s:i, s:i, s:O}", "dry_run", r.dry_run, "certificates",
                              (int)json_array_size(results), "attempted", attempted, "failed",
                              failures, "results", results);
        cli_json_result(j,
                        failures                        ? "failed"
                        : renewed == 0 && elsewhere > 0 ? "renewed_elsewhere"
                        : renewed == 0                  ? "nothing_due"
                        : r.dry_run                     ? "dry_run"
                                                        : "renewed",
                        status);
    } else
        summary_text(results);
    if (failures)
        cli_error("%d of %d renewal%s failed (see above)", failures, attempted,
                  attempted == 1 ? "" : "s");
    else if (attempted == 0 && elsewhere > 0)
        cli_log(CLI_LOG_INFO,
                "%d certificate%s renewed by another host, deployed here; nothing "
                "else is due",
                elsewhere, elsewhere == 1 ? "" : "s");
    else if (attempted == 0)
        cli_log(CLI_LOG_INFO, "nothing is due (%zu certificate%s)", json_array_size(results),
                json_array_size(results) == 1 ? "" : "s");
out:
    json_decref(results);
    forget(r.ran_hooks, r.nran);
    forget(r.post, r.npost);
    forget(r.started, r.nstarted);
    store_names_free(names, n);
    clients_free(&cl);
    cli_args_clear(&r.extra);
    cli_conf_clear(&r.defaults);
    cli_common_clear(&r.common);
    return status < 0 ? CLI_EXIT_OK : status;
}

/* ---------------------------------------------------------------- list */

static void list_usage(FILE *f)
{
    fputs("usage: certpilot list [--json] [-q] [--state-dir DIR] [--config FILE]\n"
          "Every certificate of the state directory: names, expiry, days left, when renew\n"
          "will renew it and why, and how the last attempt ended.\n",
          f);
}

int cmd_list(int argc, char **argv)
{
    struct renew r = {0};
    char **names = NULL;
    size_t n = 0;
    int unsafe = 0;
    json_t *all = json_array();

    cli_common_init(&r.common);
    if (cli_help_asked(argc, argv)) {
        list_usage(stdout);
        json_decref(all);
        return 0;
    }
    struct cp_err err = {0};
    int status = renew_args(&r, argc, argv, true);
    if (status == 0)
        cli_output_setup(&r.common);
    if (status == 0 && store_lineage_names(r.common.store, &names, &n, &err) != CP_OK)
        status = cli_store_fail(&err);
    long long now = (long long)time(NULL);
    for (size_t i = 0; status == 0 && i < n; i++) {
        struct flow_lineage_cert c = {0};
        char t1[32], t2[32], t3[32];
        struct cp_err uerr = {0};
        if (store_lineage_check(r.common.store, names[i], &uerr) != CP_OK) {
            cli_error("%s", uerr.msg); /* listed by name only, nothing read from it */
            unsafe = uerr.code == CP_EUNSAFE ? CLI_EXIT_UNSAFE : CLI_EXIT_IO;
            json_array_append_new(all, json_pack("{s:s, s:[], s:s}", "cert_name", names[i], "names",
                                                 "unsafe", uerr.msg));
            continue;
        }
        if (flow_lineage_cert_load(r.common.store, names[i], &c, &uerr) != CP_OK)
            cli_error("%s", uerr.msg);
        const struct flow_due_req due = {.now = now}; /* from status.json only */
        flow_lineage_judge(&c, &due, NULL);
        json_t *dn = flow_lineage_names(r.common.store, names[i]);
        char revoked[256] = "";
        bool was_revoked =
            flow_lineage_revoked(r.common.store, names[i], c.status, revoked, sizeof revoked);
        cp_time_str(c.not_after, t1);
        cp_time_str(c.renew_at, t2);
        long long days = c.have_cert ? (c.not_after - now) / 86400 : 0;
        const char *last = json_string_value(json_object_get(c.status, "last_result"));
        long long last_at =
            (long long)json_integer_value(json_object_get(c.status, "last_attempt"));
        cp_time_str(last_at, t3);
        json_array_append_new(all, cert_json(r.common.store, &c, json_incref(dn),
                                             c.have_cert ? c.not_after : 0, now));
        if (!r.common.json) {
            printf("%s\n  names:   ", c.name);
            for (size_t k = 0; k < json_array_size(dn); k++)
                printf("%s%s", k ? " " : "", json_string_value(json_array_get(dn, k)));
            if (c.have_cert)
                printf("\n  expires: %s (%lld days left)\n", t1, days);
            else
                printf("\n  expires: no readable certificate\n");
            if (was_revoked)
                printf("  status:  %s; renew skips it\n", revoked);
            else
                printf("  renewal: %s; %s\n", c.due ? "due now" : t2, c.why);
            const char *profile = json_string_value(json_object_get(c.status, "profile"));
            if (profile != NULL)
                printf("  profile: %s\n", profile);
            char warning[300];
            if (!was_revoked && window_warning(&c, warning, sizeof warning))
                printf("  warning: %s\n", warning);
            if (last != NULL)
                printf("  last:    %s at %s%s%s\n", last, t3,
                       json_string_length(json_object_get(c.status, "last_message")) ? ": " : "",
                       json_string_value(json_object_get(c.status, "last_message")));
        }
        json_decref(dn);
        flow_lineage_cert_clear(&c);
    }
    if (status == 0 && n == 0 && !r.common.json)
        printf("No certificates in %s yet (certpilot issue obtains one).\n",
               store_where(r.common.store));
    if (status == 0 && r.common.json) {
        json_t *j =
            json_pack("{s:i, s:O}", "certificates", (int)json_array_size(all), "results", all);
        cli_json_result(j, unsafe ? "unsafe" : "listed", unsafe);
    }
    if (status == 0)
        status = unsafe;
    json_decref(all);
    store_names_free(names, n);
    cli_conf_clear(&r.defaults);
    cli_args_clear(&r.extra);
    cli_common_clear(&r.common);
    return status < 0 ? 0 : status;
}
