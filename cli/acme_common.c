/*
 * cli/acme_common.c - what every command talking to a CA shares: the common
 * options, connecting, the account (flow/account.c does the work), and
 * turning failures into messages and exit statuses.
 */
#include "cli/cli.h"

#include <stdarg.h>
#include <time.h>
#include <stdlib.h>
#include <string.h>

#include "common/civil.h"
#include "common/file.h"

#include <openssl/crypto.h>

static const struct {
    const char *name, *url;
} known_servers[] = {
    {"letsencrypt", CLI_LE_PRODUCTION},
    {"letsencrypt-staging", CLI_LE_STAGING},
};

void cli_common_init(struct cli_common *c)
{
    memset(c, 0, sizeof *c);
    c->server = "letsencrypt";
}

bool cli_common_option(struct cli_common *c, int opt, const char *arg)
{
    switch (opt) {
    case 1001: c->server = arg; return true;
    case 1002: c->ca_bundle = arg; return true;
    case 1003: c->state_dir = arg; return true;
    case 1005: c->ca_system = true; return true;
    case 'v': c->verbose = true; return true;
    case 'q': c->quiet = true; return true;
    case 1004: c->json = true; return true;
    case CLI_OPT_STORE: c->store_url = arg; return true;
    case CLI_OPT_STORE_KEY_FILE: c->store_key_file = arg; return true;
    case CLI_OPT_STORE_CA_FILE: c->store_ca_file = arg; return true;
    case CLI_OPT_STORE_CLIENT_CERT: c->store_client_cert = arg; return true;
    case CLI_OPT_STORE_CLIENT_KEY: c->store_client_key = arg; return true;
    case CLI_OPT_STORE_USER: c->store_user = arg; return true;
    case CLI_OPT_STORE_PASSWORD_FILE: c->store_password_file = arg; return true;
    case CLI_OPT_STORE_LOCK_TTL: c->store_lock_ttl = arg; return true;
    default: return false;
    }
}

/* The store settings by name, for the defaults file and renew's arguments. */
static const char **store_setting(struct cli_common *c, size_t i, const char **name)
{
    static const char *const names[] = {CLI_STORE_SETTINGS};
    const char **fields[] = {&c->store_url,           &c->store_key_file,   &c->store_ca_file,
                             &c->store_client_cert,   &c->store_client_key, &c->store_user,
                             &c->store_password_file, &c->store_lock_ttl};
    if (i >= sizeof names / sizeof names[0])
        return NULL;
    *name = names[i];
    return fields[i];
}

void cli_common_store_defaults(struct cli_common *c, const struct cli_conf *conf)
{
    const char *name, **field, *v;
    for (size_t i = 0; (field = store_setting(c, i, &name)) != NULL; i++)
        if (*field == NULL && (v = cli_conf_get(conf, name)) != NULL)
            *field = v;
}

enum cp_code cli_common_store_args(const struct cli_common *c, struct cli_args *a)
{
    const char *name, **field;
    enum cp_code rc = CP_OK;
    for (size_t i = 0; rc == CP_OK && (field = store_setting((struct cli_common *)c, i, &name));
         i++) {
        if (*field == NULL)
            continue;
        char arg[4400];
        if (snprintf(arg, sizeof arg, "--%s=%s", name, *field) >= (int)sizeof arg)
            return CP_EINVAL;
        rc = cli_args_add(a, arg, NULL);
    }
    return rc;
}

/* The first line of --store-password-file (a secret: wiped after use). */
static enum cp_code read_password(const char *path, char **out, struct cp_err *err)
{
    size_t len = 0;
    struct cp_err why = {0};
    if (cp_file_read(path, 4096, out, &len, &why) != CP_OK)
        return cp_err_set(err, CP_ESETUP, "--store-password-file: %s", why.msg);
    (*out)[strcspn(*out, "\r\n")] = '\0';
    return CP_OK;
}

enum cp_code cli_common_store_open(const struct cli_common *c, const char *state,
                                   struct cp_store **out, struct cp_err *err)
{
    struct store_open_opts o = {
        .url = c->store_url,
        .local_dir = state,
        .seal_key_file = c->store_key_file,
        .ca_file = c->store_ca_file,
        .cert_file = c->store_client_cert,
        .key_file = c->store_client_key,
        .user = c->store_user,
        .key_optional = c->store_key_optional,
    };
    char *password = NULL;
    *out = NULL;
    if (c->store_lock_ttl != NULL) {
        char *end;
        long v = strtol(c->store_lock_ttl, &end, 10);
        if (*c->store_lock_ttl == '\0' || *end != '\0' || v < 2 || v > 3600)
            return cp_err_set(err, CP_EINVAL,
                              "--store-lock-ttl \"%s\" is not a number of seconds (2-3600)",
                              c->store_lock_ttl);
        o.lock_ttl_s = (unsigned)v;
    }
    bool etcd = c->store_url != NULL && strstr(c->store_url, "://") != NULL;
    if (etcd && c->store_password_file != NULL) {
        enum cp_code rc = read_password(c->store_password_file, &password, err);
        if (rc != CP_OK)
            return rc;
        o.password = password;
    }
    enum cp_code rc = store_open(&o, out, err);
    if (password != NULL) {
        OPENSSL_cleanse(password, strlen(password));
        free(password);
    }
    return rc;
}

/* The stores this run opened (renew opens one for itself and one in the
 * issue engine): a CP_ENET that reaches cli_acme_fail() while one of them
 * had no answer is the store's (exit 69), not the CA's (exit 5). */
static struct cp_store *opened[8];

static void opened_add(struct cp_store *st)
{
    for (size_t i = 0; i < sizeof opened / sizeof opened[0]; i++)
        if (opened[i] == NULL) {
            opened[i] = st;
            return;
        }
}

static void opened_remove(const struct cp_store *st)
{
    for (size_t i = 0; st != NULL && i < sizeof opened / sizeof opened[0]; i++)
        if (opened[i] == st)
            opened[i] = NULL;
}

static bool store_down(void)
{
    for (size_t i = 0; i < sizeof opened / sizeof opened[0]; i++)
        if (opened[i] != NULL && store_unavailable(opened[i]))
            return true;
    return false;
}

int cli_common_finish(struct cli_common *c)
{
    for (size_t i = 0; i < sizeof known_servers / sizeof known_servers[0]; i++)
        if (strcmp(c->server, known_servers[i].name) == 0)
            c->server = known_servers[i].url;
    if (strncmp(c->server, "https://", 8) != 0) {
        cli_error("--server \"%s\" is neither an https:// directory URL nor one of "
                  "letsencrypt, letsencrypt-staging",
                  c->server);
        return CLI_EXIT_USAGE;
    }
    if (c->state_dir == NULL) {
        c->state_dir = store_default_dir(c->state_buf, sizeof c->state_buf);
        if (c->state_dir == NULL) {
            cli_error("no state directory: set HOME or XDG_STATE_HOME, or pass --state-dir");
            return CLI_EXIT_CONFIG;
        }
    }
    struct cp_err err = {0};
    const char *where = c->store_url != NULL ? c->store_url : c->state_dir;
    if (c->store != NULL && strcmp(store_where(c->store), where) == 0)
        return 0; /* open already (and its lock, if held, kept) */
    cli_common_clear(c);
    if (cli_common_store_open(c, c->state_dir, &c->store, &err) != CP_OK) {
        if (err.code == CP_EINVAL) {
            cli_error("%s", err.msg);
            return CLI_EXIT_USAGE;
        }
        return cli_store_fail(&err);
    }
    opened_add(c->store);
    return 0;
}

void cli_common_clear(struct cli_common *c)
{
    if (!c->store_borrowed) {
        opened_remove(c->store);
        store_close(c->store);
    }
    c->store = NULL;
    c->store_borrowed = false;
}

int cli_store_fail(const struct cp_err *err)
{
    cli_error("%s", err->msg[0] ? err->msg : "the state directory failed");
    switch (err->code) {
    case CP_EUNSAFE: return CLI_EXIT_UNSAFE;
    case CP_ETIMEOUT: return CLI_EXIT_LOCKED;
    case CP_ENOMEM: return CLI_EXIT_SOFTWARE;
    case CP_ENET: return CLI_EXIT_UNAVAILABLE; /* a shared store none of whose members answered */
    case CP_ESETUP: return CLI_EXIT_CONFIG;
    default: return CLI_EXIT_IO;
    }
}

static void lock_waiting(void *ctx, const char *holder)
{
    (void)ctx;
    cli_log(CLI_LOG_INFO, "waiting for another certpilot run (pid %s) to finish", holder);
}

int cli_store_lock(const struct cli_common *c, unsigned timeout_s)
{
    struct cp_err err = {0};
    size_t swept = 0;
    if (store_lock(c->store, timeout_s, lock_waiting, NULL, &swept, &err) != CP_OK)
        return cli_store_fail(&err);
    if (swept > 0)
        cli_log(CLI_LOG_INFO, "removed %zu temporary file%s left by an interrupted run in %s",
                swept, swept == 1 ? "" : "s", store_where(c->store));
    return 0;
}

json_t *cli_problem_json(const struct acme_problem *prob)
{
    if (prob == NULL || prob->type == NULL)
        return json_null();
    json_t *subs = json_array();
    for (size_t i = 0; subs != NULL && i < prob->nsubproblems; i++) {
        const struct acme_subproblem *s = &prob->subproblems[i];
        json_array_append_new(subs, json_pack("{s:s?, s:s?, s:s?}", "type", s->type, "detail",
                                              s->detail, "identifier", s->ident_value));
    }
    json_t *retry = json_null();
    if (prob->retry_at > 0) {
        char at[32];
        long long in = prob->retry_at - (long long)time(NULL);
        cp_time_str(prob->retry_at, at);
        retry = json_pack("{s:s, s:I}", "at", at, "in_seconds", (json_int_t)(in > 0 ? in : 0));
    }
    return json_pack("{s:s, s:s?, s:i, s:o, s:I, s:o}", "type", prob->type, "detail", prob->detail,
                     "status", prob->status, "subproblems", subs ? subs : json_array(),
                     "subproblems_dropped", (json_int_t)prob->subproblems_dropped, "retry_after",
                     retry ? retry : json_null());
}

/* "2 d 3 h", "3 h 5 min", "4 min 10 s", "12 s": a wait in words. */
static void duration_words(long long s, char *out, size_t size)
{
    if (s < 0)
        s = 0;
    if (s >= 86400)
        snprintf(out, size, "%lld d %lld h", s / 86400, s % 86400 / 3600);
    else if (s >= 3600)
        snprintf(out, size, "%lld h %lld min", s / 3600, s % 3600 / 60);
    else if (s >= 60)
        snprintf(out, size, "%lld min %lld s", s / 60, s % 60);
    else
        snprintf(out, size, "%lld s", s);
}

/* The CA's problem under the error line `said`; its detail only when that
 * line does not carry it already (it is said once). */
static void print_problem(const struct acme_problem *prob, const char *said)
{
    if (prob == NULL || prob->type == NULL)
        return;
    /* Errors, so that `journalctl -p err` keeps the CA's explanation. */
    cli_log(CLI_LOG_ERR, "  CA problem: %s", prob->type);
    if (prob->detail != NULL && prob->detail[0] != '\0' && strstr(said, prob->detail) == NULL)
        cli_log(CLI_LOG_ERR, "  detail:     %s", prob->detail);
    for (size_t i = 0; i < prob->nsubproblems; i++) {
        const struct acme_subproblem *s = &prob->subproblems[i];
        cli_log(CLI_LOG_ERR, "  - %s: %s (%s)", s->ident_value ? s->ident_value : "?",
                s->detail ? s->detail : "", s->type ? s->type : "");
    }
    if (prob->subproblems_dropped > 0)
        cli_log(CLI_LOG_ERR, "  ... and %zu more subproblems, not shown",
                prob->subproblems_dropped);
    if (prob->retry_at > 0) {
        char at[32], in[64];
        cp_time_str(prob->retry_at, at);
        duration_words(prob->retry_at - (long long)time(NULL), in, sizeof in);
        cli_log(CLI_LOG_ERR, "  retry after: %s (in %s), as the CA asks", at, in);
    }
}

int cli_acme_fail(enum cp_code rc, const struct cp_err *err, const struct acme_problem *prob)
{
    const char *said = err->msg[0] ? err->msg : cp_code_name(rc);
    cli_error("%s", said);
    print_problem(prob, said);
    /* One hint for the common failures, from the message and the CA's words. */
    char text[sizeof err->msg + 1024];
    snprintf(text, sizeof text, "%s %s", said,
             prob != NULL && prob->detail != NULL ? prob->detail : "");
    bool hinted = cli_hint(text);
    if (rc == CP_ETIMEOUT && !hinted)
        cli_error("nothing was stored; run the same command again to go on (the CA keeps what "
                  "it has validated), or allow more time with --wait-timeout SECONDS");
    switch (rc) {
    case CP_OK: return CLI_EXIT_OK;
    case CP_ECA: return CLI_EXIT_CA;
    case CP_ECHALLENGE: return CLI_EXIT_CHALLENGE;
    case CP_ENET: return store_down() ? CLI_EXIT_UNAVAILABLE : CLI_EXIT_NETWORK;
    case CP_ETIMEOUT: return CLI_EXIT_NETWORK;
    case CP_EPROTO: return CLI_EXIT_PROTOCOL;
    case CP_EINVAL: return CLI_EXIT_USAGE;
    case CP_EIO: return CLI_EXIT_IO;
    case CP_EUNSAFE: return CLI_EXIT_UNSAFE;
    case CP_ESETUP: return CLI_EXIT_CONFIG;
    case CP_EDNS: return CLI_EXIT_UNAVAILABLE;
    default: return CLI_EXIT_SOFTWARE;
    }
}

/* -v: one line per ACME request on stderr: method, URL, status.  Never
 * bodies, headers or keys. */
static void trace(void *ctx, const char *method, const char *url, long status)
{
    (void)ctx;
    cli_log(CLI_LOG_DEBUG, "%s %s -> %ld", method, url, status);
}

static void progress(void *ctx, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

static void progress(void *ctx, const char *fmt, ...)
{
    (void)ctx;
    va_list ap;
    va_start(ap, fmt);
    cli_vprogress(fmt, ap);
    va_end(ap);
}

void cli_client_opts(const struct cli_common *c, struct acme_client_opts *o)
{
    *o = (struct acme_client_opts){.directory_url = c->server, .deadline_s = c->wait_s};
    o->http.ca_bundle = c->ca_bundle;
    o->http.ca_system = c->ca_system;
    o->log = progress; /* shown when progress lines are (cli/output.c) */
    if (c->verbose)
        o->http.trace = trace;
}

int cli_client_open(const struct cli_common *c, struct acme_client **out)
{
    struct acme_client_opts o;
    struct acme_problem prob = {0};
    struct cp_err err = {0};
    cli_client_opts(c, &o);
    cli_progress("connecting to %s", c->server);
    enum cp_code rc = acme_client_new(&o, out, &prob, &err);
    int status = rc == CP_OK ? 0 : cli_acme_fail(rc, &err, &prob);
    acme_problem_clear(&prob);
    return status;
}

int cli_account_ensure(const struct cli_common *c, struct acme_client *client,
                       const struct acme_account_req *reg, unsigned flags, struct acme_key **key,
                       char **url)
{
    struct flow_account a;
    struct flow_account_use_req use = {.reg = reg, .key_type = ACME_KEY_EC256, .flags = flags};
    struct acme_problem prob = {0};
    struct cp_err err = {0};
    int status = 0;

    *key = NULL;
    *url = NULL;
    enum cp_code rc = flow_account_open(c->store, c->server, &a, &err);
    if (rc != CP_OK)
        return cli_store_fail(&err);
    rc = flow_account_use(&a, client, &use, cli_flow_log(), &prob, &err);
    if (rc == CP_OK)
        rc = flow_account_release(&a, client, key, url, &err);
    if (rc != CP_OK)
        status = cli_acme_fail(rc, &err, &prob);
    acme_problem_clear(&prob);
    flow_account_close(&a);
    return status;
}
