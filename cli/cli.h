/*
 * cli/cli.h - the command line: the only layer that parses argv, prints and
 * chooses exit statuses.  Libraries below (caa/, acme/, hooks/) report through
 * struct cp_err and never print.
 */
#ifndef CP_CLI_CLI_H
#define CP_CLI_CLI_H

#include <getopt.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>

#include "acme/acme.h"
#include "caa/caa.h"
#include "flow/flow.h"
#include "store/store.h"

/* Exit statuses.  They are a contract: scripts test them (see README). */
enum cli_exit {
    CLI_EXIT_OK = 0,
    CLI_EXIT_CAA_DENIED = 1,     /* at least one identifier refused by CAA (caa check, the
                                    preflight of issue) */
    CLI_EXIT_RENEW_FAILED = 1,   /* renew: at least one due certificate was not renewed */
    CLI_EXIT_DECLINED = 1,       /* delete: not confirmed at the prompt; nothing removed */
    CLI_EXIT_IMPORT_PARTIAL = 1, /* import: something was skipped or left alone (said why) */
    CLI_EXIT_CAA_DNS = 2,        /* no refusal, but a DNS failure decided a CAA check */
    CLI_EXIT_CA = 3,             /* the CA refused a request (problem document shown) */
    CLI_EXIT_DOCTOR_WARN = 3,    /* doctor: nothing fails now, but some servers are flaky */
    CLI_EXIT_CHALLENGE = 4,      /* the CA could not validate a challenge */
    CLI_EXIT_NETWORK = 5,        /* the CA could not be reached, or a wait timed out */
    CLI_EXIT_HOOK = 6,           /* a hook failed; the certificate was saved (issue) */
    CLI_EXIT_USAGE = 64,         /* bad option or argument (sysexits EX_USAGE) */
    CLI_EXIT_UNAVAILABLE = 69,   /* a needed local service is unusable, e.g. DNS set-up */
    CLI_EXIT_SOFTWARE = 70,      /* internal error: a bug */
    CLI_EXIT_IO = 74,            /* a local file could not be read or written */
    CLI_EXIT_PROTOCOL = 76,      /* the CA broke the protocol: unreadable or impossible answers
                                    (EX_PROTOCOL); not the user's fault */
    CLI_EXIT_UNSAFE = 77,        /* the state directory is not safe to use: another owner, open
                                    to group/others, or a symlink where none belongs (EX_NOPERM) */
    CLI_EXIT_LOCKED = 75,        /* another run holds the state directory's lock (EX_TEMPFAIL) */
    CLI_EXIT_CONFIG = 78         /* missing set-up, e.g. no account and no --agree-tos */
};

/* "certpilot: " + message on stderr. */
void cli_error(const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 1, 2)))
#endif
    ;

/* Log lines on stderr (cli/output.c), syslog priorities. */
#include <stdarg.h>
enum cli_log_level {
    CLI_LOG_ERR = 3,
    CLI_LOG_WARNING = 4,
    CLI_LOG_NOTICE = 5,
    CLI_LOG_INFO = 6,
    CLI_LOG_DEBUG = 7
};
/* Once, before a command runs: --quiet keeps errors only, -v adds debug. */
void cli_log_setup(bool quiet, bool verbose);
/* Progress lines: one short line per step of a run (connecting, account,
 * CAA preflight, order, each authorization, finalize, stored, hooks).  Shown
 * when stderr is a terminal or the journal (not with --json), or with -v;
 * never with --quiet, and not on a pipe or file without -v (scripts and
 * timers stay quiet). */
void cli_progress_setup(bool quiet, bool verbose, bool json);
bool cli_progress_enabled(void);
void cli_progress(const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 1, 2)))
#endif
    ;
void cli_vprogress(const char *fmt, va_list ap)
#if defined(__GNUC__)
    __attribute__((format(printf, 1, 0)))
#endif
    ;
bool cli_log_enabled(enum cli_log_level level);
void cli_log(enum cli_log_level level, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
void cli_vlog(enum cli_log_level level, const char *fmt, va_list ap)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 0)))
#endif
    ;
/* Every log line starts with "NAME: " until cli_log_context(NULL). */
void cli_log_context(const char *name);
const char *cli_log_context_get(void); /* NULL when none */
/* The last error said (not warnings), "" when none since the clear. */
const char *cli_last_error(void);
void cli_last_error_clear(void);
/* Each line of `text` as its own log line, after `prefix`. */
void cli_log_lines(enum cli_log_level level, const char *prefix, const char *text);

/* The flows' log (flow/flow.h) as this log's lines, same levels. */
const struct flow_log *cli_flow_log(void);

/* Print a JSON value on stdout, indented, with a final newline. */
void cli_print_json(const json_t *v);
/* The one JSON object of a --json run, on stdout: "outcome" and
 * "exit_status" (the process's exit status) first, then the fields of `obj`;
 * a failed run (exit_status != 0) without an "error" gets the last error said.
 * Takes `obj` (NULL: an empty object). */
void cli_json_result(json_t *obj, const char *outcome, int exit_status);
/* Whether this run printed its JSON result already. */
bool cli_json_done(void);
/* Does --json appear on this command line (before any "--")?  For errors
 * found before a command parsed its options, e.g. a usage error. */
bool cli_json_wanted(int argc, char *const *argv);

/* Every name, "a", "a and b", "a, b and c": never "and others". */
void cli_names_print(FILE *f, const char *const *names, size_t n);

/* A hint for a common failure: one "hint: ..." line saying what to check,
 * when `text` (an error message or the CA's problem detail) matches one of
 * the known causes (cli/output.c holds the table).  True when a hint was
 * said. */
bool cli_hint(const char *text);

/* The CAA report of `caa check` and of the issuance preflight. */
json_t *cli_caa_report_json(const struct caa_report *r, const struct caa_params *p);
void cli_caa_report_text(FILE *f, const struct caa_report *r, const struct caa_params *p);
void cli_caa_result_text(FILE *f, const struct caa_result *res);
/* The result's warning (spec §8: records other CAs may read differently),
 * indented under a "Warning:" line; nothing when it has none. */
void cli_caa_warning_text(FILE *f, const struct caa_result *res);

/* ------------------------------------------------------- CAA preflight */

/* DNS options of every command that looks up CAA (caa check, issue):
 * --resolver (repeatable), --timeout, --tries. */
#define CLI_RESOLVERS_MAX 16
enum { CLI_OPT_RESOLVER = 1101, CLI_OPT_TIMEOUT, CLI_OPT_TRIES };
#define CLI_DNS_LONGOPTS                                                                           \
    {"resolver", required_argument, NULL, CLI_OPT_RESOLVER},                                       \
        {"timeout", required_argument, NULL, CLI_OPT_TIMEOUT},                                     \
    {                                                                                              \
        "tries", required_argument, NULL, CLI_OPT_TRIES                                            \
    }
struct cli_dns {
    const char *servers[CLI_RESOLVERS_MAX];
    struct caa_resolver_opts ropts; /* .servers points into servers[] */
};
void cli_dns_init(struct cli_dns *d);
/* 1 when `opt` was one of them, 0 when not, -1 for a bad value (said). */
int cli_dns_option(struct cli_dns *d, int opt, const char *arg);
/* What a CAA check judges with (caa check, doctor): --ca-identity,
 * --account-uri, --method. */
enum { CLI_OPT_CA_IDENTITY = 1201, CLI_OPT_ACCOUNT_URI, CLI_OPT_METHOD };
#define CLI_CAA_LONGOPTS                                                                           \
    {"ca-identity", required_argument, NULL, CLI_OPT_CA_IDENTITY},                                 \
        {"account-uri", required_argument, NULL, CLI_OPT_ACCOUNT_URI},                             \
    {                                                                                              \
        "method", required_argument, NULL, CLI_OPT_METHOD                                          \
    }
/* After getopt_long returned ':' or '?' (or an option not handled): say
 * which argument is wrong and return CLI_EXIT_USAGE.  `operands` names what
 * the command takes ("names"). */
int cli_option_error(int ch, char **argv, const char *command, const char *operands);
/* Long options are taken only as spelled in full (cli/options.c); every
 * command calls cli_options_exact() before its getopt_long loop.  It says
 * which argument is not an option of `command`, with the closest one, and
 * returns CLI_EXIT_USAGE; 0 when all are exact.  Given --list-options, it
 * prints the long options of `longopts` instead (one a line, "--name=" for
 * those that take a value: what the shell completions offer) and exits 0. */
int cli_options_exact(int argc, char *const *argv, const char *shortopts,
                      const struct option *longopts, const char *command);
/* Is -h or --help among the arguments (before any "--")?  Then the defaults
 * file is not read: help is printed even when --config names a file that
 * cannot be read. */
bool cli_help_asked(int argc, char *const *argv);
/* The index of the first long option that is not one of `longopts` spelled
 * in full (values of options that take one are skipped), or -1. */
int cli_options_find_inexact(int argc, char *const *argv, const char *shortopts,
                             const struct option *longopts);
/* The option to suggest for the unknown `given` (its first `len` bytes): the
 * one it is a prefix of when there is exactly one, else the closest within
 * an edit distance of 2; NULL when none is close. */
const char *cli_option_suggest(const char *given, size_t len, const struct option *opts);
/* certbot's key options: --key-type TYPE (ecdsa, rsa, or certpilot's
 * ec256...rsa4096), --elliptic-curve secp256r1|secp384r1 and --rsa-key-size
 * 2048|3072|4096 (each NULL when not given; a curve alone means ECDSA, a size
 * alone RSA).  0 with *out set (left alone when none is given), or -1 with
 * `msg` saying which values conflict or are unknown. */
int cli_key_type_resolve(const char *type, const char *curve, const char *rsa_size,
                         enum acme_key_type *out, char *msg, size_t size);
/* Levenshtein distance; (size_t)-1 for strings over 64 bytes. */
size_t cli_edit_distance(const char *a, size_t la, const char *b, size_t lb);
/* 1 when `opt` was one of them, 0 when not, -1 for a bad value (said). */
int cli_caa_option(struct caa_params *p, int opt, const char *arg);
/* An issuer domain a CAA record could name (no spaces, no ';'). */
bool cli_ca_identity_valid(const char *s);

/* The report in the shape of `caa check --json`, each result with
 * "allowed_methods" and "chosen_method"; JSON null when none ran. */
json_t *cli_preflight_json(const struct flow_preflight *pf);
/* Allowed names in one line each, the others with the whole explanation. */
void cli_preflight_text(FILE *f, const struct flow_preflight *pf);
/* When every identifier is allowed: those whose records carry a warning
 * (spec §8), each with its warning; nothing for the others. */
void cli_preflight_warnings(FILE *f, const struct flow_preflight *pf);

int cmd_caa(int argc, char **argv);
int cmd_account(int argc, char **argv);
int cmd_issue(int argc, char **argv);
int cmd_doctor(int argc, char **argv);
int cmd_persist_record(int argc, char **argv); /* cli/cmd_persist.c */
/* A dns-persist-01 check (flow/persist.c): per name and server, as JSON
 * (an array) or text. */
json_t *cli_persist_json(const struct flow_persist_report *r);
void cli_persist_text(FILE *f, const struct flow_persist_report *r);

/* ----------------------------------------------------------- ACME commands */

#define CLI_LE_PRODUCTION "https://acme-v02.api.letsencrypt.org/directory"
#define CLI_LE_STAGING    "https://acme-staging-v02.api.letsencrypt.org/directory"

/* Options every ACME command takes (--server, --ca-bundle, --state-dir, and
 * the output options -v, --quiet, --json). */
struct cli_common {
    const char *server; /* directory URL after resolving the names below */
    const char *ca_bundle;
    bool ca_system; /* --ca-system: trust the system store besides --ca-bundle */
    const char *state_dir;
    bool verbose;
    bool quiet; /* errors only; the exit status is the answer */
    bool json;
    unsigned wait_s; /* bound on waits for the CA (issue --wait-timeout); 0: the default */
    char state_buf[1024];
    struct cp_store *store; /* the state directory, opened by cli_common_finish() */
    bool store_borrowed;    /* `store` is the caller's (cli_issue_share_store): never closed */
    /* A shared store (--store URL and its companions; NULL: not given). */
    const char *store_url, *store_key_file, *store_ca_file, *store_client_cert, *store_client_key,
        *store_user, *store_password_file, *store_lock_ttl;
    bool store_key_optional; /* set by serve-challenges: --store-key-file may be left out */
};

/* The output options of every command: -v/--verbose, -q/--quiet, --json. */
#define CLI_OUTPUT_LONGOPTS                                                                        \
    {"verbose", no_argument, NULL, 'v'}, {"quiet", no_argument, NULL, 'q'},                        \
    {                                                                                              \
        "json", no_argument, NULL, 1004                                                            \
    }
/* The store options of every command that opens the store: --store URL,
 * --store-key-file, --store-ca-file, --store-client-cert, --store-client-key,
 * --store-user, --store-password-file, --store-lock-ttl (the config file's
 * keys have the same names). */
enum {
    CLI_OPT_STORE = 1020,
    CLI_OPT_STORE_KEY_FILE,
    CLI_OPT_STORE_CA_FILE,
    CLI_OPT_STORE_CLIENT_CERT,
    CLI_OPT_STORE_CLIENT_KEY,
    CLI_OPT_STORE_USER,
    CLI_OPT_STORE_PASSWORD_FILE,
    CLI_OPT_STORE_LOCK_TTL
};
#define CLI_STORE_LONGOPTS                                                                         \
    {"store", required_argument, NULL, CLI_OPT_STORE},                                             \
        {"store-key-file", required_argument, NULL, CLI_OPT_STORE_KEY_FILE},                       \
        {"store-ca-file", required_argument, NULL, CLI_OPT_STORE_CA_FILE},                         \
        {"store-client-cert", required_argument, NULL, CLI_OPT_STORE_CLIENT_CERT},                 \
        {"store-client-key", required_argument, NULL, CLI_OPT_STORE_CLIENT_KEY},                   \
        {"store-user", required_argument, NULL, CLI_OPT_STORE_USER},                               \
        {"store-password-file", required_argument, NULL, CLI_OPT_STORE_PASSWORD_FILE},             \
    {                                                                                              \
        "store-lock-ttl", required_argument, NULL, CLI_OPT_STORE_LOCK_TTL                          \
    }
/* Their names, in that order (defaults-file keys, renew's arguments). */
#define CLI_STORE_SETTINGS                                                                         \
    "store", "store-key-file", "store-ca-file", "store-client-cert", "store-client-key",           \
        "store-user", "store-password-file", "store-lock-ttl"
/* Is `opt` one of them? */
#define CLI_STORE_OPTION(opt) ((opt) >= CLI_OPT_STORE && (opt) <= CLI_OPT_STORE_LOCK_TTL)
#define CLI_COMMON_LONGOPTS                                                                        \
    {"server", required_argument, NULL, 1001}, {"ca-bundle", required_argument, NULL, 1002},       \
        {"state-dir", required_argument, NULL, 1003}, {"ca-system", no_argument, NULL, 1005},      \
        CLI_STORE_LONGOPTS, CLI_OUTPUT_LONGOPTS

void cli_common_init(struct cli_common *c);
/* Handle one of the common options; false when `opt` is not one of them. */
bool cli_common_option(struct cli_common *c, int opt, const char *arg);
/* Once the options are parsed, before the command's work: the log and the
 * progress lines set from -v/--quiet/--json; with --quiet (and no --json)
 * nothing more is printed on stdout. */
void cli_output_setup(const struct cli_common *c);
/* After parsing: resolve the server name and open the state directory
 * (c->store); exit status or 0. */
int cli_common_finish(struct cli_common *c);
/* Close the state directory (its lock released); again: no-op. */
void cli_common_clear(struct cli_common *c);
struct cli_conf;
struct cli_args;
/* The store of `c` for the state directory `state`: the filesystem, or the
 * shared store --store names (store_open, its password read from
 * --store-password-file).  Errors as store_open's. */
enum cp_code cli_common_store_open(const struct cli_common *c, const char *state,
                                   struct cp_store **out, struct cp_err *err);
/* The store settings of the defaults file `conf` for those not given. */
void cli_common_store_defaults(struct cli_common *c, const struct cli_conf *conf);
/* The store options of `c` as arguments ("--store=URL"...), for the issue
 * engine renew runs. */
enum cp_code cli_common_store_args(const struct cli_common *c, struct cli_args *a);

/* Map a cp_code from the ACME layer to an exit status, printing the error and
 * the CA's problem document (type, detail, subproblems) when there is one. */
int cli_acme_fail(enum cp_code rc, const struct cp_err *err, const struct acme_problem *prob);
json_t *cli_problem_json(const struct acme_problem *prob);

/* How to reach the CA of `c` (-v: requests traced, steps logged). */
void cli_client_opts(const struct cli_common *c, struct acme_client_opts *o);
/* Connect to the CA of `c` (directory fetched). */
int cli_client_open(const struct cli_common *c, struct acme_client **out);

/* The account for `c`'s CA (flow_account_open() and flow_account_use(),
 * flow/account.c): loaded from the state directory, looked up with
 * onlyReturnExisting when the URL is unknown, or registered when `reg` is
 * given with agree_tos.  Sets the client's signing account.  *key is owned
 * by the caller, as is *url.  0, or the exit status with the reason said. */
/* NO_WRITE: never write the state directory (dry runs); LOOKUP_ONLY: never
 * register, and no account is 0 with *key and *url NULL. */
enum {
    CLI_ACCOUNT_NO_WRITE = FLOW_ACCOUNT_NO_WRITE,
    CLI_ACCOUNT_LOOKUP_ONLY = FLOW_ACCOUNT_LOOKUP_ONLY
};
int cli_account_ensure(const struct cli_common *c, struct acme_client *client,
                       const struct acme_account_req *reg, unsigned flags, struct acme_key **key,
                       char **url);

/* ------------------------------------------------- config files (cli/config.c) */

/* A "key = value" file: the defaults file or a certificate's renewal.conf. */
struct cli_conf_entry {
    char *key; /* '_' turned into '-' */
    char *value;
    unsigned line;
};
struct cli_conf {
    char path[4096];
    struct cli_conf_entry *e;
    size_t n;
};
/* Read and parse; a missing file is empty when missing_ok.  Errors name
 * FILE:LINE and what to write instead. */
enum cp_code cli_conf_load(const char *path, bool missing_ok, struct cli_conf *out,
                           struct cp_err *err);
enum cp_code cli_conf_parse(const char *path, const char *text, size_t len, struct cli_conf *out,
                            struct cp_err *err);
void cli_conf_clear(struct cli_conf *c);
const char *cli_conf_get(const struct cli_conf *c, const char *key); /* the last value */
/* The renewal.conf of lineage `name` in the store, parsed; empty (n == 0)
 * when it has none. */
enum cp_code cli_conf_load_lineage(struct cp_store *st, const char *name, struct cli_conf *out,
                                   struct cp_err *err);
/* (A lineage's renewal.conf is changed key by key by
 * flow_lineage_settings_update, from what cli_conf_parse() read.) */

/* A growing argv (NULL-terminated), each argument with where it came from. */
struct cli_args {
    char **argv;
    char **origin; /* "FILE:LINE", or NULL for the command line */
    size_t argc, cap;
};
enum cp_code cli_args_add(struct cli_args *a, const char *arg, const char *origin);
void cli_args_clear(struct cli_args *a);
/* Each setting as "--key=value" ("--key" for a flag that is yes), checked
 * against the getopt table `opts`; keys in `refused` are errors, keys in
 * `skip` are left out (a later source sets them). */
enum cp_code cli_conf_to_args(const struct cli_conf *c, const struct option *opts,
                              const char *const *refused, const char *const *skip,
                              struct cli_args *a, struct cp_err *err);

#define CLI_DEFAULT_CONFIG "/etc/certpilot/config"

/* The hook directories' parent, hooks.d next to the defaults file `config`
 * (NULL: CLI_DEFAULT_CONFIG), written to buf; buf, or NULL when too long. */
const char *cli_hooks_dir(const char *config, char *buf, size_t size);

/* ------------------------------------ the issuance engine (cli/cmd_issue.c) */

struct cli_issue; /* opaque: one certificate's settings and one run of them */
struct cli_issue *cli_issue_new(void);
void cli_issue_free(struct cli_issue *is);
/* issue's option table; its long names are the keys of the config files. */
const struct option *cli_issue_options(void);
/* The settings of the defaults file and of a lineage's renewal.conf (NULL or
 * empty: none) as issue arguments, each with its FILE:LINE; keys either file may
 * not hold are errors, keys in `skip` are left out. */
enum cp_code cli_issue_settings_args(const struct cli_conf *defaults,
                                     const struct cli_conf *lineage, const char *const *skip,
                                     struct cli_args *a, struct cp_err *err);
/* Parse and check `args` (argv[0] is a command word; they must outlive
 * `is`); 0, or the exit status with the reason said. */
int cli_issue_configure(struct cli_issue *is, const struct cli_args *args);
/* Before cli_issue_configure(): use `st` (the caller's, open on the store
 * the arguments name, outliving `is`) rather than opening it again; renew
 * shares its handle with each certificate, which is also where a shared
 * store's lineage lock is held. */
void cli_issue_share_store(struct cli_issue *is, struct cp_store *st);
struct cli_issue_info {
    const char *cert_name, *server, *ca_bundle, *state_dir;
    const char *hook, *pre_hook, *post_hook, *deploy_hook;
    const char *const *names;
    size_t nnames;
    const struct caa_resolver_opts *ropts;
    const char *dry_run; /* "check" or "order" (a dry run, as decided for its CA); NULL: real */
};
void cli_issue_info(const struct cli_issue *is, struct cli_issue_info *out);
/* Order, verify and store a certificate (no pre/post/deploy hooks), the
 * report written to `out`; `replaces` is the ARI id of the certificate it
 * replaces, or NULL (a dry run only reports it).  0 or the exit status. */
int cli_issue_obtain(struct cli_issue *is, FILE *out, const char *replaces);
/* After cli_issue_obtain(): *id is the ARI id a real run puts in newOrder's
 * "replaces" (NULL: none given, or the CA offers no ARI; borrowed from the
 * `replaces` given).  False when the run stopped before reading the CA's
 * directory, so that nobody knows. */
bool cli_issue_would_replace(const struct cli_issue *is, const char **id);
/* After a stored certificate: the deploy hook (`override` when not NULL),
 * `hooks_dir`/deploy (NULL: none) and the dehydrated hook's deploy_cert; 0 or
 * CLI_EXIT_HOOK. */
int cli_issue_deploy(struct cli_issue *is, const char *override, const char *hooks_dir);
/* The lineage lock held for the orders of cli_issue_obtain() (shared store):
 * checked before finalize and before storing; NULL: none.  Borrowed. */
void cli_issue_hold(struct cli_issue *is, const struct store_lineage_lock *lock);
/* store_lineage_lock's `waiting` for a lineage (ctx: its name): says who
 * holds the lock. */
void cli_lineage_waiting(void *ctx, const char *holder);
/* "issued", "dry_run", "caa_refused", "caa_dns_error", "failed", "lock_lost"; and the new
 * certificate's expiry (RFC 3339) when issued. */
const char *cli_issue_outcome(const struct cli_issue *is, const char **not_after);
/* The profile the CA used for the certificate obtained (its answer, else the
 * one asked for); NULL when none was asked for, or none obtained. */
const char *cli_issue_profile(const struct cli_issue *is);

/* The state directory (c->store, opened by cli_common_finish) held by this
 * run: wait at most timeout_s for another run; 0, or CLI_EXIT_LOCKED /
 * CLI_EXIT_UNSAFE / CLI_EXIT_IO with the reason said.  Released by
 * cli_common_clear(). */
int cli_store_lock(const struct cli_common *c, unsigned timeout_s);
/* An exit status for a store error (said first). */
int cli_store_fail(const struct cp_err *err);

int cmd_renew(int argc, char **argv);
int cmd_list(int argc, char **argv);

/* ------------------------------- revoke and delete defaults (cli/cmd_revoke.c) */

/* revoke and delete (cli/cmd_revoke.c): --config FILE (default
 * CLI_DEFAULT_CONFIG, missing OK then), checked as issue checks it, gives
 * server, ca-bundle and state-dir to `c` before the command line is parsed
 * (which then overrides them); `conf` holds the strings (clear it after).
 * 0 or CLI_EXIT_CONFIG with the reason said. */
int cli_defaults_load(int argc, char **argv, struct cli_conf *conf, struct cli_common *c);

int cmd_revoke(int argc, char **argv);
int cmd_delete(int argc, char **argv);

/* --------------------------------------- import (cli/cmd_import*.c) */

/* `certpilot import certbot|dehydrated ...`: the word picks the importer. */
int cmd_import(int argc, char **argv);
int cmd_import_certbot(int argc, char **argv);    /* cli/cmd_import_certbot.c */
int cmd_import_dehydrated(int argc, char **argv); /* cli/cmd_import_dehydrated.c */
/* Print an import's report (text on stdout; with --json one object with
 * "outcome", "exit_status", "dry_run", "from" and "items"; with --quiet only
 * what was not imported, as errors) and return the exit status: 0 when every
 * item is new or already there, CLI_EXIT_IMPORT_PARTIAL when one was skipped
 * or conflicts (said, with why). */
int cli_import_report(const struct flow_import_report *r, const char *from,
                      const struct cli_common *c);
/* `certpilot systemd install|cron` (cli/cmd_systemd.c): units, drop-in, cron line. */
int cmd_systemd(int argc, char **argv);

/* `certpilot serve-challenges` (cli/cmd_serve.c): a fleet's http-01 responder. */
int cmd_serve_challenges(int argc, char **argv);

#endif
