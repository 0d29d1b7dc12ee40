/*
 * flow/flow.h - what certpilot does, below the command line: obtain and renew
 * a lineage's certificate, decide whether a lineage is due, revoke, delete,
 * and change an account.
 *
 * Each flow takes a plain request struct, the store (store/store.h) and,
 * where the CA is asked, a connected acme_client; it reports progress through
 * a struct flow_log and returns a cp_code with a cp_err (and the CA's problem
 * document where there is one) or a result struct.  Nothing here parses
 * arguments, prints or picks exit statuses: cli/ does, from what a flow
 * returns.  Nothing here keeps global state.
 *
 * Sections, one file each: the log (flow/log.c) and the flows below.
 */
#ifndef CP_FLOW_FLOW_H
#define CP_FLOW_FLOW_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "acme/acme.h"
#include "caa/caa.h"
#include "common/err.h"
#include "store/store.h"

/* ------------------------------------------------------------------ log */

/* Severity of a line, as syslog numbers them (the CLI maps them to its log);
 * FLOW_PROGRESS: a step of a run, for a person watching (the CLI shows it on
 * a terminal; logged at INFO priority). */
enum flow_level {
    FLOW_ERR = 3,
    FLOW_WARNING = 4,
    FLOW_NOTICE = 5,
    FLOW_INFO = 6,
    FLOW_DEBUG = 7,
    FLOW_PROGRESS = 8
};

/* Where a flow says what it does; `say` NULL (or the log NULL): silent. */
struct flow_log {
    void (*say)(void *ctx, enum flow_level level, const char *msg);
    void *ctx;
};

/* One line (printf format, no newline) to `log`. */
void flow_say(const struct flow_log *log, enum flow_level level, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* -------------------------------------------------- solving (flow/solve.c) */

/* How challenges are answered: issue's settings, plain data. */
struct flow_solve_opts {
    const char *webroot; /* http-01: files under DIR/.well-known/acme-challenge/ */
    /* One webroot per name (certbot's "-w DIR1 -d a -w DIR2 -d b"): the
     * identifier webroot_names[i] uses webroots[i]; a name not in the map
     * uses `webroot`.  Both arrays are borrowed for the solver's life. */
    const char *const *webroot_names, *const *webroots;
    size_t nwebroots;
    bool standalone;                    /* built-in servers for http-01 and tls-alpn-01 */
    int http_port, tls_port;            /* their ports */
    const char *http_addr, *tls_addr;   /* NULL: all addresses */
    const char *dns_hook;               /* dns-01: a dehydrated hook's deploy/clean_challenge */
    struct caa_resolver_opts resolvers; /* finds the zone of a dns-01 record */
    unsigned dns_timeout_ms;            /* wait for every authoritative server; 0: no wait */
    unsigned authoritative_port;
    /* A store a fleet shares (store_shared(); borrowed, NULL or not shared:
     * none of this): every http-01 key authorization is published there
     * before the CA is told and withdrawn after, whatever answers it here,
     * so that any host's responder can answer it. */
    struct cp_store *store;
    unsigned shared_ttl_s; /* life of a published key authorization; 0: 900 */
    /* http-01 answered only by the fleet's responders (certpilot
     * serve-challenges) through `store`: no server, no webroot here. */
    bool http_shared;
    /* The handle the built-in http-01 server looks unknown tokens up with
     * (NULL: it answers only its own).  A store handle is used by one thread
     * at a time: give one the run does not use otherwise (a second handle
     * of the same store); the look-ups share it one after another. */
    struct cp_store *lookup_store;
};

struct flow_solver; /* opaque: the settings, and the servers once started */
enum cp_code flow_solver_new(const struct flow_solve_opts *o, const struct flow_log *log,
                             struct flow_solver **out, struct cp_err *err);
/* Stops the servers; NULL: no-op. */
void flow_solver_free(struct flow_solver *s);
/* Start the built-in servers the types need: a port in use fails before
 * anything is ordered. */
enum cp_code flow_solver_start(struct flow_solver *s, const char *const *methods, size_t n,
                               struct cp_err *err);
/* Narrow the types per identifier (e.g. to those its CAA records allow);
 * NULL: every type set up. */
void flow_solver_filter(struct flow_solver *s,
                        bool (*allows)(void *ctx, const char *type, const char *ident), void *ctx);
/* A dry run's check of what `method` needs (hook executable, webroot
 * writable, port free): `what` says what was checked. */
enum cp_code flow_solver_check(const struct flow_solver *s, const char *method, char *what,
                               size_t size, struct cp_err *err);
/* The acme_solver an order runs with (borrows `s`). */
struct acme_solver flow_solver_acme(struct flow_solver *s);

/*
 * The http-01 responder of `certpilot serve-challenges`: the built-in server
 * on `addr` (NULL: all) and `port` answering every token from `st` (a
 * shared store, used by the responder's threads only from now on), and
 * calling served(ctx, token) after each answer (on the server's thread).
 * Stop it with flow_responder_stop().
 */
struct flow_responder; /* opaque */
enum cp_code flow_responder_start(struct cp_store *st, const char *addr, int port,
                                  void (*served)(void *ctx, const char *token), void *ctx,
                                  struct flow_responder **out, struct cp_err *err);
void flow_responder_stop(struct flow_responder *r); /* NULL: no-op */

/* ---------------------------------------- obtaining a certificate (flow/issue.c) */

/* The new certificate's key: the current one of lineage `name` when
 * `reuse` and there is one (key pinning), else a fresh key of `type`. */
enum cp_code flow_issue_key(struct cp_store *st, const char *name, bool reuse,
                            enum acme_key_type type, struct acme_key **key, struct cp_err *err);

/* What the CA issued, checked and (when `save`) kept as the lineage's new
 * version, old versions beyond `keep_versions` pruned (0: none). */
struct flow_issue_kept {
    char not_after[32];             /* RFC 3339 */
    char live_dir[4400];            /* where its files are ("" when not saved) */
    char *cert, *chain, *fullchain; /* PEM (heap), for the caller's report */
    size_t pruned;
};
enum cp_code flow_issue_keep(struct cp_store *st, const char *name, const struct acme_key *cert_key,
                             const struct acme_issue_result *res, const char *const *names,
                             size_t n, bool save, unsigned keep_versions,
                             const struct flow_log *log, struct flow_issue_kept *out,
                             struct cp_err *err);
void flow_issue_kept_clear(struct flow_issue_kept *k);

/* ------------------------------------------- CAA preflight (flow/preflight.c) */

/* The challenge types, in the order of the bits of the masks below. */
#define FLOW_METHODS 4
extern const char *const flow_methods[FLOW_METHODS];
int flow_method_index(const char *type); /* -1 when not one of them */

/*
 * One preflight: fill the inputs, call flow_preflight_run(), read the outputs,
 * then flow_preflight_clear().  Each identifier is judged with the first
 * type of `methods` (or its own `judge_as[i]` when set) that its CAA records
 * allow, with any of `identities`.
 */
struct flow_preflight {
    const char *const *names; /* normalized, "*." for wildcards */
    size_t n;
    const char *const *methods; /* configured types, in order of preference */
    size_t nmethods;
    const char *const *judge_as; /* NULL, or per name a type to judge instead */
    const char *const *identities;
    size_t nidentities;
    const char *account_uri; /* NULL when the account is not known yet */
    const struct caa_resolver_opts *ropts;
    /* outputs */
    struct caa_report *report;
    struct caa_params *params; /* per name: what it was judged with */
    const char **chosen;       /* per name: the type to use, NULL when none is allowed */
    unsigned *allowed;         /* per name: types the records allow, a bit per flow_methods[] */
    double elapsed_ms;         /* wall time of the look-ups and judging */
    /* RFC 8738 §7: CAA applies to DNS names only.  The IP address
     * identifiers among `names` are left out of the look-ups (and of
     * report, params, chosen and allowed, which follow dns_names); they are
     * listed here, unchecked.  report is NULL when every name is one. */
    const char **dns_names, **ip_names; /* heap arrays of borrowed strings */
    const char **dns_judge;             /* judge_as following dns_names */
    size_t ndns, nips;
};
enum cp_code flow_preflight_run(struct flow_preflight *pf, struct cp_err *err);
void flow_preflight_clear(struct flow_preflight *pf);
/* CAA_DENIED if any name is denied, else CAA_ERROR if any failed, else allowed. */
enum caa_status flow_preflight_outcome(const struct flow_preflight *pf);
/* May `type` be used for `ident`?  True when no preflight ran. */
bool flow_preflight_allows(const struct flow_preflight *pf, const char *type, const char *ident);
const char *flow_preflight_chosen(const struct flow_preflight *pf, const char *ident);

/* ------------------------------------------ the order itself (flow/issue.c) */

/* How CAA decides a run: a refusal or a DNS failure stops it (enforce), is
 * reported and the run goes on (warn), or nothing is checked (off). */
enum flow_caa_mode { FLOW_CAA_ENFORCE, FLOW_CAA_WARN, FLOW_CAA_OFF };

/* The CAA checks of one order: the preflight before newOrder and the recheck
 * before finalize of reused authorizations older than the CA's window,
 * judged with the type that validated them. */
struct flow_caa {
    enum flow_caa_mode mode;
    const char *const *identities; /* the CA's CAA identities; none: no check */
    size_t nidentities;
    const char *account_url; /* NULL: none yet (accounturi= judged as for another) */
    const struct caa_resolver_opts *ropts;
    /* Told of each finished check ("preflight" or "recheck") and whether it
     * stops the run, to show it; may be NULL. */
    void (*report)(void *ctx, const struct flow_preflight *pf, const char *stage, bool stops);
    void *report_ctx;
};
/* Does this finished check stop the run? */
bool flow_caa_stops(const struct flow_caa *caa, const struct flow_preflight *pf);

struct flow_order_req {
    const char *cert_name;
    const char *const *names; /* normalized */
    size_t n;
    const char *const *methods; /* in order of preference */
    size_t nmethods;
    const struct acme_key *cert_key;
    const char *preferred_chain; /* NULL: the CA's default */
    const char *replaces;        /* ARI id of the certificate replaced, or NULL */
    bool save;                   /* false (a dry run): nothing kept */
    unsigned keep_versions;
    struct flow_solver *solver;
    const struct flow_caa *caa;
    const char *profile; /* "profile" of newOrder (decided by acme_profile_choose), or NULL */
    /* The lineage lock (shared store), checked before finalize and before
     * storing: a lost one stops the order with CP_ETIMEOUT, lock_lost set,
     * nothing stored.  NULL: none held. */
    const struct store_lineage_lock *lock;
};
struct flow_order_result {
    struct acme_issue_result order; /* what the CA said, also on failure */
    bool issued;                    /* the CA issued it (a failure after is local) */
    struct flow_issue_kept kept;    /* on success */
    bool stopped;                   /* the CAA recheck stopped it before finalize */
    bool stopped_by_dns;            /* ... because of a DNS failure, not a refusal */
    bool lock_lost;                 /* the lineage lock was lost: nothing stored */
};
/* Order, answer the challenges, recheck CAA, finalize, download, then
 * check and keep the certificate (flow_issue_keep).  A recheck that stops
 * the order: CP_ECA with out->stopped set.  Clear `out` after. */
enum cp_code flow_issue_order(struct acme_client *c, struct cp_store *st,
                              const struct flow_order_req *req, const struct flow_log *log,
                              struct flow_order_result *out, struct cp_err *err);
void flow_order_result_clear(struct flow_order_result *r);

/* ------------------------------------------- revoke and delete (flow/revoke.c) */

/* The names a lineage's settings list ("domain"), as a JSON array, in order;
 * empty when they cannot be read (never NULL but on allocation failure). */
json_t *flow_lineage_names(struct cp_store *st, const char *name);

/* The serial number (lower-case hex) of the lineage's current certificate;
 * CP_EINVAL when it has none. */
enum cp_code flow_lineage_serial(struct cp_store *st, const char *cert_name, char *out, size_t size,
                                 struct cp_err *err);

/*
 * The revocation mark that a revocation leaves in the lineage's status:
 *   "revoked": {"at": UNIX-SECONDS, "reason": NAME or null, "reason_code": N or
 *               null, "serial": HEX, "signed_with": "account",
 *               "already_revoked": BOOL}
 * It applies while the lineage's current certificate is the one it names
 * (same serial): true then, with `note` (if not NULL) a short phrase such as
 * "revoked 2026-01-02T03:04:05Z (reason keyCompromise, serial 1f...)".  Once
 * issue or a forced renewal has put another certificate in place, the mark no
 * longer applies.  `status` is the lineage's (store_status_load).
 */
bool flow_lineage_revoked(struct cp_store *st, const char *cert_name, const json_t *status,
                          char *note, size_t size);

/* Write that mark for the certificate with `serial`, revoked at `now` with
 * `reason_code` (ACME_REVOKE_NO_REASON: none; none recorded either when
 * `already`: the CA had revoked it before, with a reason unknown here).  The rest of the status
 * stays.  CP_ENOMEM, or CP_EIO with a message saying what that leaves. */
enum cp_code flow_lineage_mark_revoked(struct cp_store *st, const char *cert_name,
                                       const char *serial, int reason_code, bool already,
                                       long long now, struct cp_err *err);

/* What to revoke: a lineage of the store (signed by its CA's account), or a
 * certificate the caller has read (signed by an account or by its own key). */
struct flow_revoke_req {
    const char *cert_name;          /* a lineage, or NULL */
    const struct acme_chain *chain; /* cert_name NULL: the certificate (borrowed) */
    int reason;                     /* a reason code, or ACME_REVOKE_NO_REASON */
    bool delete_after;              /* a lineage: remove it once revoked */
};

/*
 * Before connecting: which CA and which certificate.  In two steps, since the
 * caller turns the CA the settings name into a client between them (a name
 * such as "letsencrypt" into its URL, its own --ca-bundle first):
 *   flow_revoke_plan_ca    a lineage's CA: "server" and "ca-bundle" of its
 *                          settings (nothing to do for a certificate given);
 *   flow_revoke_plan_cert  the lineage's current certificate (or the one
 *                          given) and its serial number.
 * Errors: CP_EINVAL no such lineage, no certificate, one that cannot be read;
 * CP_ESETUP settings that are missing, unreadable or name no server;
 * CP_EUNSAFE, CP_ETIMEOUT, CP_ENOMEM or CP_EIO from the store.  The messages
 * say what to do.  Clear the plan after, also on failure.
 */
struct flow_revoke_plan {
    char server[4096];        /* the lineage's "server", as written */
    char ca_bundle[4096];     /* its "ca-bundle", when has_ca_bundle */
    bool has_ca_bundle;       /* its settings name one (maybe empty) */
    char live[4400];          /* the lineage's directory (store_lineage_dir) */
    char serial[128];         /* the certificate's serial number, lower-case hex */
    struct acme_chain *chain; /* the lineage's certificate (owned); NULL for a given one */
};
enum cp_code flow_revoke_plan_ca(struct cp_store *st, const struct flow_revoke_req *req,
                                 struct flow_revoke_plan *plan, struct cp_err *err);
enum cp_code flow_revoke_plan_cert(struct cp_store *st, const struct flow_revoke_req *req,
                                   struct flow_revoke_plan *plan, struct cp_err *err);
void flow_revoke_plan_clear(struct flow_revoke_plan *plan);

/* Where flow_revoke_run stopped. */
enum flow_revoke_step {
    FLOW_REVOKE_DONE = 0,
    FLOW_REVOKE_SEND,   /* the CA refused or could not be asked */
    FLOW_REVOKE_MARK,   /* revoked, but the mark could not be written */
    FLOW_REVOKE_DELETE, /* revoked and marked, but the lineage could not be removed */
};
struct flow_revoke_result {
    bool revoked;      /* the CA revoked it on this request */
    bool already;      /* the CA answered alreadyRevoked */
    bool marked;       /* a lineage: its status carries the mark (now or from before) */
    bool delete_tried; /* a lineage: `listed` was taken and its removal tried */
    bool deleted;      /* ... and it is gone */
    char *account_url; /* the account that signed (heap); NULL: the certificate's key */
    enum flow_revoke_step failed;
    struct cp_err mark_err;       /* the mark's failure after alreadyRevoked (code CP_OK:
                                     none); the CA's refusal is what is returned then */
    struct store_contents listed; /* what the lineage held before the removal */
    size_t removed;               /* entries removed */
    struct acme_problem prob;     /* the CA's refusal */
};
/*
 * Ask the CA to revoke the planned certificate, signed by `cert_key` or, when
 * NULL, by the account set on `client` (acme_client_set_account).  For a
 * lineage, revoked now or already revoked before (alreadyRevoked): the mark
 * is written (flow_lineage_mark_revoked; already there for this serial after
 * alreadyRevoked: left as it is), and when revoked now and asked, the lineage
 * is removed (hold the store's lock).  Returns the first failure (res->failed
 * says at which step): the CA's code with res->prob for a refusal; CP_ENOMEM
 * or CP_EIO for the mark; CP_EUNSAFE or CP_EIO for the removal.  `now` is the
 * time recorded.  Clear `res` after (flow_revoke_result_clear), also on
 * failure.
 */
enum cp_code flow_revoke_run(struct cp_store *st, struct acme_client *client,
                             const struct flow_revoke_req *req, const struct flow_revoke_plan *plan,
                             const struct acme_key *cert_key, long long now,
                             struct flow_revoke_result *res, struct cp_err *err);
void flow_revoke_result_clear(struct flow_revoke_result *res);

/*
 * Deleting a lineage (not revoking it): first what goes, for the caller to
 * show and confirm, then the removal (store_lineage_remove; hold the lock).
 * The plan: CP_EINVAL for no such lineage; CP_EUNSAFE for one unsafe to
 * touch, CP_EIO when it cannot be listed, the message ending "nothing was
 * deleted".  Clear it after, also on failure.
 */
struct flow_delete_plan {
    char live[4400];            /* the lineage's directory */
    struct store_contents list; /* every entry, nothing followed */
    json_t *names;              /* the names its settings list (array; [] when unreadable) */
    char revoked[256];          /* flow_lineage_revoked's note; "" when not revoked */
};
enum cp_code flow_delete_plan(struct cp_store *st, const char *cert_name,
                              struct flow_delete_plan *plan, struct cp_err *err);
void flow_delete_plan_clear(struct flow_delete_plan *plan);
/* Remove it; *removed counts the entries.  The store's errors (CP_EUNSAFE:
 * refused before anything was touched). */
enum cp_code flow_delete_run(struct cp_store *st, const char *cert_name, size_t *removed,
                             struct cp_err *err);

/* ------------------------------------------------------------- accounts */

/*
 * One CA's account as the flows work with it (flow/account.c): what the
 * store keeps (store_account: key, a rollover's pending key, the record) and
 * every change a flow makes to it, each written through the store at once
 * (unless FLOW_ACCOUNT_NO_WRITE).  The caller opens it, hands it to the flows
 * below and closes it; between open and the first flow it may check it
 * (flow_account_check) before anything is sent to the CA.
 */
struct flow_account {
    struct cp_store *st;      /* borrowed */
    char server[2048];        /* the CA's directory URL */
    struct acme_key *key;     /* NULL when there is none */
    struct acme_key *pending; /* a rollover's new key; NULL when none is left */
    json_t *rec;              /* the record ({} when there is none); unknown members kept */
    char where[4300];         /* for messages: where the store keeps it */
    char pending_where[4400]; /* ... and its pending key */
    bool adopted; /* flow_account_use() took the account another host registered meanwhile */
};
/* Load what the store has for `server` (nothing is no error).  Close it
 * after, also on failure; closing twice is a no-op. */
enum cp_code flow_account_open(struct cp_store *st, const char *server, struct flow_account *a,
                               struct cp_err *err);
void flow_account_close(struct flow_account *a);
const char *flow_account_url(const struct flow_account *a); /* borrowed; NULL when unknown */
/* When the record says the CA deactivated the account: the time it did
 * (RFC 3339, or "an unknown date"), else NULL. */
const char *flow_account_deactivated_at(const struct flow_account *a);
/* The saved contacts as a new JSON array of strings. */
json_t *flow_account_contacts(const struct flow_account *a);
/* Would using it write the store: a rollover left to settle, or a key whose
 * URL must be looked up?  (Read-only callers take the lock only then.) */
bool flow_account_unsettled(const struct flow_account *a);

enum {
    FLOW_ACCOUNT_NO_WRITE = 1,    /* never write the store (dry runs) */
    FLOW_ACCOUNT_LOOKUP_ONLY = 2, /* never register; no account: CP_OK with a->key NULL */
    FLOW_ACCOUNT_ANY_STATUS = 4   /* use a deactivated account too (show, register) */
};
/* CP_ESETUP when the record says the account is deactivated (unless
 * FLOW_ACCOUNT_ANY_STATUS), the message naming it and how to register anew;
 * no request is sent. */
enum cp_code flow_account_check(const struct flow_account *a, unsigned flags, struct cp_err *err);

/* How the account is made ready to sign with. */
struct flow_account_use_req {
    const struct acme_account_req *reg; /* NULL: look up, never register */
    enum acme_key_type key_type;        /* of a key made for a new registration */
    unsigned flags;                     /* FLOW_ACCOUNT_* */
};
/*
 * The account in use on `client`: flow_account_check() first; then a
 * rollover a crash interrupted is settled (the CA is asked which of the key
 * and the pending key it knows; CP_ECA when it knows neither, both kept);
 * the URL is looked up (onlyReturnExisting) when only the key is known; a
 * new key is made and registered when there is none and reg->agree_tos
 * (CP_ESETUP when there is none and no agreement, CP_EINVAL when the CA
 * needs External Account Binding and reg has none).  On a store hosts
 * share, a registration holds the store's account lock, and an account
 * another host registered while this one waited is used instead (a->adopted).
 * On CP_OK the client
 * signs with a->key and its URL; a->key is NULL only under
 * FLOW_ACCOUNT_LOOKUP_ONLY when there is no account.
 */
enum cp_code flow_account_use(struct flow_account *a, struct acme_client *client,
                              const struct flow_account_use_req *req, const struct flow_log *log,
                              struct acme_problem *prob, struct cp_err *err);
/* After flow_account_use(): the key (*key, the caller's now) and a copy of
 * the URL (*url, heap) leave `a`, and the client signs with them from now on
 * (they must outlive it).  Both NULL when there is no account. */
enum cp_code flow_account_release(struct flow_account *a, struct acme_client *client,
                                  struct acme_key **key, char **url, struct cp_err *err);

/*
 * Register (`certpilot account register`): with no usable account, a new
 * key of req->key_type registered with req->reg (a deactivated account is
 * replaced: call flow_account_forget_deactivated() before connecting); with
 * one, the account is only found, and its contacts changed at the CA and in
 * the record when req->reg names contacts other than those the CA holds.
 */
enum flow_account_outcome {
    FLOW_ACCOUNT_REGISTERED,      /* a new account */
    FLOW_ACCOUNT_EXISTING,        /* there was one; nothing changed */
    FLOW_ACCOUNT_CONTACTS_UPDATED /* there was one; its contacts changed */
};
struct flow_account_register_req {
    const struct acme_account_req *reg; /* agree_tos, contacts, EAB */
    enum acme_key_type key_type;
    bool key_type_set; /* given by the user: warned about for an existing account */
};
struct flow_account_register_res {
    enum flow_account_outcome outcome;
    bool record_behind; /* the CA changed the contacts; the record could not be written */
};
/* A deactivated account cannot come back: its pending key is removed and
 * its key dropped from `a` (replaced on disk once a new one is registered).
 * Said when it happens; CP_OK also when there was nothing to do. */
enum cp_code flow_account_forget_deactivated(struct flow_account *a, const struct flow_log *log,
                                             struct cp_err *err);
enum cp_code flow_account_register(struct flow_account *a, struct acme_client *client,
                                   const struct flow_account_register_req *req,
                                   struct flow_account_register_res *res,
                                   const struct flow_log *log, struct acme_problem *prob,
                                   struct cp_err *err);

/*
 * Show: the account as the CA reports it, merged with what is saved.  Plain
 * data borrowed from the account and from `ca` (which the result owns):
 * clear the result after, also on failure.
 */
struct flow_account_view {
    bool asked;                    /* the CA answered: status, contacts, orders, terms are its */
    const char *url;               /* NULL when unknown */
    const char *status;            /* the CA's, or "deactivated" as recorded; NULL: unknown */
    const char *deactivated_at;    /* as recorded; NULL when not deactivated */
    json_t *contacts;              /* the CA's when asked, else the saved ones (owned) */
    json_t *saved_contacts;        /* owned */
    const char *orders;            /* the CA's orders URL, NULL when not named */
    int terms_agreed;              /* as the CA reports it: 1, 0; -1 when it does not say */
    bool terms_recorded;           /* the record holds the agreement ... */
    const char *terms_at;          /* ... when (NULL: not said) */
    const char *terms_url;         /* ... to which terms (NULL: not said) */
    const char *key_type;          /* "(none)" without a key */
    char thumbprint[44];           /* of the saved key; "" without one */
    const char *ca_key_thumbprint; /* the key the CA holds: "" when it shows none; NULL unasked */
    bool key_differs;              /* the CA holds another key than the saved one */
};
struct flow_account_show_res {
    struct acme_account ca; /* what the CA answered (when view.asked) */
    struct flow_account_view view;
};
/* The view of `a` with the CA's account object `ca` (NULL: not asked). */
void flow_account_view_make(const struct flow_account *a, const struct acme_account *ca,
                            struct flow_account_view *out);
/* After flow_account_use() (or with `client` NULL: the CA is not asked): the
 * account object fetched, unless the record says the account is deactivated
 * (the CA refuses its requests).  res->view is filled also on failure, from
 * what is saved. */
enum cp_code flow_account_show(struct flow_account *a, struct acme_client *client,
                               struct flow_account_show_res *res, struct acme_problem *prob,
                               struct cp_err *err);
void flow_account_show_clear(struct flow_account_show_res *res);
/* Do the CA's contacts hold exactly `want` (any order, case aside)? */
bool flow_account_same_contacts(const struct acme_account *ca, const char *const *want, size_t n);

/* Update: the contacts replaced at the CA (n == 0 removes them), then in
 * the record. */
struct flow_account_update_req {
    const char *const *contacts; /* "mailto:..." */
    size_t ncontacts;
};
struct flow_account_update_res {
    bool record_behind; /* the CA has the new contacts; the record could not be written */
};
enum cp_code flow_account_update(struct flow_account *a, struct acme_client *client,
                                 const struct flow_account_update_req *req,
                                 struct flow_account_update_res *res, struct acme_problem *prob,
                                 struct cp_err *err);

/*
 * Rollover (RFC 8555 §7.3.5): a new key written as the pending key first,
 * so that whatever happens next the key the CA ends up with is kept; then
 * keyChange; then the pending key made the key (the CA took it) or removed
 * (the CA refused it).  When the CA's answer is not known the pending key
 * stays for flow_account_use() to settle.
 */
struct flow_account_rollover_req {
    enum acme_key_type key_type;
    bool key_type_set; /* else: the current key's type */
};
struct flow_account_rollover_res {
    enum acme_key_type old_type;
    char old_thumbprint[44];
    bool unknown;        /* failed with no answer from the CA: the pending key stays */
    bool record_behind;  /* the CA took the new key; it is not the account key here yet */
    struct cp_err after; /* refused, and removing the pending key failed too (code != CP_OK) */
};
enum cp_code flow_account_rollover(struct flow_account *a, struct acme_client *client,
                                   const struct flow_account_rollover_req *req,
                                   struct flow_account_rollover_res *res, struct acme_problem *prob,
                                   struct cp_err *err);

/* Deactivate (RFC 8555 §7.3.6): at the CA, then the record marked
 * ("status": "deactivated", "deactivated_at"). */
struct flow_account_deactivate_res {
    struct acme_account ca;  /* the CA's answer: clear it after */
    char deactivated_at[32]; /* RFC 3339 */
    bool record_behind;      /* the CA deactivated it; the record could not be written */
};
enum cp_code flow_account_deactivate(struct flow_account *a, struct acme_client *client,
                                     struct flow_account_deactivate_res *res,
                                     struct acme_problem *prob, struct cp_err *err);

/* ------------------------------------------------- lineage decisions */

/*
 * What certpilot decides about a lineage before anything is ordered
 * (flow/lineage.c): is its current certificate due, what an `issue` on it
 * would do with the names asked for, and how its settings (renewal.conf)
 * change.  The store is read, never written; the CA is asked only for its
 * renewal window (RFC 9773), and only through a client the caller gives.
 */

/* A lineage's current certificate as the due judgement sees it.  Plain
 * data: fill it with flow_lineage_cert_load() or by hand (tests). */
struct flow_lineage_cert {
    char name[256];
    bool have_cert; /* a readable certificate with not_after > not_before */
    long long not_before, not_after;
    char *ari_id;        /* RFC 9773 certificate ID (heap), NULL when it has none */
    json_t *status;      /* the lineage's status (owned); "ari" caches the CA's window */
    bool status_changed; /* status differs from what the store holds: save it */
    /* The store's identity of the current version, when the caller has just
     * asked for it (store_current_version; "" none): flow_lineage_cert_load()
     * takes it instead of asking again.  NULL: it asks. */
    const char *version;
    /* the judgement */
    bool due;
    long long renew_at; /* when it is (was) due */
    char why[300];      /* on what grounds, for the log and `list` */
};
/* The status and current certificate of `name` (c->name set).  On an
 * unreadable certificate the error is returned and `c` holds the status
 * only (judged as having no certificate).  A c->status the caller set (from
 * store_status_load()) is used as it is, and owned by `c` from then on.
 * Clear `c` after, in any case.
 * What is read from the certificate is cached in the status ("certificate":
 * version, not_before, not_after, serial, ari_id) under the store's identity
 * of the current version (store_current_version): when the entry is about
 * the version current now and well formed, no certificate is read.  Else the
 * certificate is parsed and the entry renewed in c->status, with
 * status_changed set: it is written only by a caller that saves the status
 * (renew; never list or a dry run). */
enum cp_code flow_lineage_cert_load(struct cp_store *st, const char *name,
                                    struct flow_lineage_cert *c, struct cp_err *err);
/* The serial number of the current certificate as cached in `status` (see
 * flow_lineage_cert_load), when the entry is about the version current now:
 * true with `out` set; false when it is not (then read the certificate). */
bool flow_lineage_cached_serial(struct cp_store *st, const char *name, const json_t *status,
                                char *out, size_t size);
void flow_lineage_cert_clear(struct flow_lineage_cert *c); /* zeroes it */

struct flow_due_req {
    long long now;
    bool forced; /* due in any case; "; forced" is added to why when it was not */
    /* Ask the CA when its cached window is missing or stale (renew); false:
     * judge from the status only, nothing sent (list, dry runs, issue). */
    bool ask_ca;
    /* With ask_ca, the lineage's CA (its directory fetched), NULL when it
     * could not be reached: the lifetime decides then.  Needed only when
     * flow_lineage_ari_wanted() says so; open it only then. */
    struct acme_client *client;
};
/* Would a judgement with ask_ca ask the CA for the renewal window? */
bool flow_lineage_ari_wanted(const struct flow_lineage_cert *c, long long now);
/*
 * Is `c` due: inside the CA's ARI window, at a point picked at random once
 * per window and kept in c->status ("ari"), or, when the CA offers no ARI
 * (or nothing is known of it), once less than a third of its lifetime is
 * left.  Sets due, renew_at and why; a refreshed window sets
 * status_changed.  A window that could not be read is a warning on `log`.
 */
void flow_lineage_judge(struct flow_lineage_cert *c, const struct flow_due_req *req,
                        const struct flow_log *log);

/* ------------------------------ issue on an existing lineage: the plan */

#define FLOW_LINEAGE_NAMES_MAX 100

struct flow_lineage_plan_req {
    const char *const *names; /* asked for */
    size_t nnames;
    const char *const *current; /* the lineage's, as its settings list them */
    size_t ncurrent;
    bool expand;        /* names may be added */
    bool replace_names; /* names may be added and dropped */
    bool forced;        /* order even when not due */
    bool revoked;       /* its current certificate was revoked: replace it */
    long long now;
};
enum flow_order_reason {
    FLOW_ORDER_NONE,    /* refused, or unchanged */
    FLOW_ORDER_NAMES,   /* names added or dropped, as allowed */
    FLOW_ORDER_FORCED,  /* same names, forced */
    FLOW_ORDER_REVOKED, /* same names, its certificate revoked */
    FLOW_ORDER_DUE      /* same names, due */
};
/*
 * Names are compared normalized (lower case, no trailing dot), in any
 * order.  Exactly one of order / unchanged / refuse_names is set.  The
 * struct points into itself: do not copy it.
 */
struct flow_lineage_plan {
    bool order;        /* order a certificate (reason says why) */
    bool unchanged;    /* same names, not due, not forced: nothing to order */
    bool refuse_names; /* the names differ in a way expand/replace_names do not allow */
    enum flow_order_reason reason;
    const char *current[FLOW_LINEAGE_NAMES_MAX]; /* the lineage's, normalized, once each */
    size_t ncurrent;
    const char *added[FLOW_LINEAGE_NAMES_MAX]; /* borrowed from req->names */
    size_t nadded;
    const char *dropped[FLOW_LINEAGE_NAMES_MAX]; /* into current */
    size_t ndropped;
    /* the due judgement, made for FLOW_ORDER_DUE and unchanged only */
    bool judged;
    long long renew_at;
    char why[300];
    struct cp_err cert_err; /* code != CP_OK: the current certificate could not be read */
    char current_buf[FLOW_LINEAGE_NAMES_MAX][CAA_IDENT_MAX];
};
/* The plan of `issue` on lineage `name` (which exists).  The due judgement
 * reads the store only: nothing is sent. */
void flow_lineage_plan(struct cp_store *st, const char *name,
                       const struct flow_lineage_plan_req *req, struct flow_lineage_plan *plan);

/* --------------------------------------------- the lineage's settings */

/* One setting: `line` is where a parsed file holds it (from 1), 0 when not
 * from a file; a NULL value removes the key. */
struct flow_setting {
    const char *key;
    const char *value;
    unsigned line;
};
/*
 * A lineage's settings text (`text`, `len`, parsed into `current`, in line
 * order) after the settings `given` on the command line: each key given
 * replaces all the lines of that key (its values, a list when the key
 * repeats, go where its first line was, or at the end), setting one key of
 * an exclusive pair (webroot/standalone, hook/dns-hook) removes the other,
 * and every other line stays as written (comments, blank lines, hand edits).
 * The keys whose values change are appended to `changed` (a JSON array,
 * when not NULL).  *out is the new text (heap, free()), NULL when nothing
 * changes.
 */
enum cp_code flow_lineage_settings_update(const char *text, size_t len,
                                          const struct flow_setting *current, size_t ncurrent,
                                          const struct flow_setting *given, size_t ngiven,
                                          char **out, size_t *outlen, json_t *changed,
                                          struct cp_err *err);
/* The text rewrite alone: the keys of `set` (in this order) replace theirs,
 * exclusive pairs not applied.  *out is heap text (free()). */
enum cp_code flow_lineage_settings_rewrite(const char *text, size_t len,
                                           const struct flow_setting *current, size_t ncurrent,
                                           const struct flow_setting *set, size_t nset, char **out,
                                           size_t *outlen, struct cp_err *err);

/* ----------------------------------------------------- hooks (flow/hooks.c) */

/* Run a hook command line (program and arguments separated by spaces; no
 * shell), or for "sh:TEXT" the argv {"/bin/sh", "-c", TEXT} (an empty TEXT
 * is an error), with `env` ("NAME=value", NULL-terminated) added; its output
 * goes to `log` as "<what>: ..." lines.  True when it exited 0; failures are
 * said. */
bool flow_hook_command(const struct flow_log *log, const char *what, const char *command,
                       const char *const *env);
/* Can `command` be run as a hook command (words, or a non-empty "sh:" text)?
 * Checked before anything is done; CP_EINVAL with a message naming it. */
enum cp_code flow_hook_command_check(const char *command, struct cp_err *err);

enum flow_hook_phase { FLOW_HOOK_PRE, FLOW_HOOK_POST, FLOW_HOOK_DEPLOY };
/* Run the executables in `hooks_dir`/pre, /post or /deploy (by `phase`) in
 * name order (byte order), each without arguments and with `env` added.
 * Names starting with '.' or ending in '~' and what is not an executable
 * regular file are skipped (said at debug).  A missing directory (or
 * hooks_dir NULL) runs nothing.  True when every one exited 0; all run even
 * when one fails. */
bool flow_hook_dir(const struct flow_log *log, const char *hooks_dir, enum flow_hook_phase phase,
                   const char *const *env);
/* One command of the dehydrated hook protocol; true when it exited 0. */
bool flow_hook_event(const struct flow_log *log, const char *hook, const char *command,
                     const char *const *args, size_t nargs);

/* ----------------------------------------------- an issue run (flow/issue.c) */

/* What a run does with the CA: everything (real), the checks a real run
 * makes before ordering (check: the account looked up, never registered,
 * nothing written), or a real order whose certificate is not kept (order). */
enum flow_dry { FLOW_REAL, FLOW_DRY_CHECK, FLOW_DRY_ORDER };

struct flow_issue_req {
    const char *cert_name;
    const char *const *names; /* normalized, "*." for wildcards */
    size_t n;
    const char *const *methods; /* challenge types in order of preference */
    size_t nmethods;
    enum acme_key_type key_type;
    bool reuse_key;
    const char *preferred_chain; /* NULL: the CA's default chain */
    const char *replaces;        /* ARI id of the certificate replaced (renew), or NULL */
    unsigned keep_versions;
    enum flow_dry dry;
    const struct flow_solve_opts *solve;
    const struct acme_client_opts *ca;  /* how to reach the CA */
    const struct acme_account_req *reg; /* registering when there is no account */
    enum flow_caa_mode caa_mode;
    const char *ca_identity; /* NULL: the directory's caaIdentities */
    const struct caa_resolver_opts *ropts;
    const char *hook; /* a dehydrated hook told of failures (real runs); NULL: none */
    const struct flow_webcheck_opts *webcheck; /* NULL: no webroot check before the order */
    /* Told of each finished CAA check (see struct flow_caa); may be NULL. */
    void (*caa_report)(void *ctx, const struct flow_preflight *pf, const char *stage, bool stops);
    void *caa_report_ctx;
    /* A profile to ask for (NULL: none): preferred, it is left out (said on
     * the log) when the directory does not offer it; required, the run fails
     * at FLOW_STEP_PROFILE, before any account or order request. */
    const char *profile;
    enum acme_profile_mode profile_mode;
    /* The lineage lock held for this run on a shared store (see
     * flow_order_req); NULL: none. */
    const struct store_lineage_lock *lock;
};

/* Where a run that failed stopped. */
enum flow_issue_step {
    FLOW_STEP_NONE,
    FLOW_STEP_SOLVER,    /* setting up the challenge answers (a port in use...) */
    FLOW_STEP_KEY,       /* the certificate's key */
    FLOW_STEP_WEBROOT,   /* the webroot check (flow/webcheck.c): nothing sent to the CA */
    FLOW_STEP_CONNECT,   /* the CA's directory */
    FLOW_STEP_STORE,     /* loading the account from the store */
    FLOW_STEP_ACCOUNT,   /* the account at the CA */
    FLOW_STEP_PREFLIGHT, /* the CAA look-ups could not be made */
    FLOW_STEP_ORDER,     /* the order (problem in ordered.order) */
    FLOW_STEP_KEEP,      /* checking or keeping what the CA issued */
    FLOW_STEP_PROFILE,   /* a required profile the CA does not offer: nothing sent */
    FLOW_STEP_PERSIST,   /* a dns-persist-01 record is not served as needed (persist) */
    FLOW_STEP_LOCK       /* the lineage lock was lost during the order: nothing stored */
};

enum flow_issue_outcome {
    FLOW_ISSUED,        /* stored (real) or received (dry run order) */
    FLOW_DRY_CHECKED,   /* a check run got as far as it goes */
    FLOW_CAA_REFUSED,   /* CAA stopped it (stage says where) */
    FLOW_CAA_DNS_ERROR, /* a DNS failure decided a CAA check and stopped it */
    FLOW_FAILED         /* step says where */
};

struct flow_issue_result {
    enum flow_issue_outcome outcome;
    enum flow_issue_step step;
    const char *stage;             /* "preflight" or "recheck" for a CAA stop */
    char *account_url;             /* NULL when there is no account (a check run) */
    const char *const *identities; /* what CAA was judged with (borrowed from below) */
    size_t nidentities;
    struct flow_preflight pf; /* report NULL when none ran */
    struct flow_order_result ordered;
    struct flow_solver *solver;       /* for a check run's solver checks */
    struct flow_webcheck_result *web; /* the webroot check's, when it ran (heap) */
    struct acme_client *client;
    struct acme_problem problem; /* the CA's answer for the connect and account steps */
    const char *profile;         /* the profile put in newOrder (borrowed from req), or NULL */
    struct flow_persist_report *persist; /* the dns-persist-01 check, when it ran (heap) */
};
/*
 * One run of `issue`: the solvers set up, the certificate key, the CA's
 * directory, the account (registered when asked), the CAA preflight, then
 * (unless a check run) the order through to the certificate kept in the
 * lineage.  CP_OK when it ended as planned (issued, checked, or stopped by
 * CAA: see outcome); else the failure, with step and (for CA refusals) the
 * problem set.  A dehydrated hook is told of a failed challenge or request.
 * Clear `out` after, whatever happened.
 */
enum cp_code flow_issue_run(struct cp_store *st, const struct flow_issue_req *req,
                            const struct flow_log *log, struct flow_issue_result *out,
                            struct cp_err *err);
void flow_issue_result_clear(struct flow_issue_result *r);

/* ----------------------------- renewing on a shared store (flow/fleet.c) */

/*
 * Hosts sharing a store (store_shared) renew each lineage once for all: a
 * host first deploys the shared current version locally (another host may
 * have renewed it), judges whether it is due, then takes the lineage's lock
 * and orders only if the current version is still the one it judged; if
 * not, another host renewed it while this one waited, and that version is
 * deployed here instead.  On a store that is not shared every step is a
 * no-op (the lock is granted at once, versions are "").
 */

/* The lineage's current version (into `version`), then deployed locally
 * when it differs from this host's files (*changed: deploy hooks are due). */
enum cp_code flow_fleet_sync(struct cp_store *st, const char *name,
                             char version[STORE_VERSION_ID_MAX], bool *changed, struct cp_err *err);

struct flow_fleet_claim {
    struct store_lineage_lock *lock; /* held: order, then flow_fleet_release() */
    bool elsewhere; /* the version moved on while waiting: nothing to order, lock released */
    bool changed;   /* ... and this host's files changed (deploy hooks are due) */
    char version[STORE_VERSION_ID_MAX]; /* the current version once the lock was taken */
};
/*
 * Take the lineage lock (waiting at most timeout_s; `waiting` is told who
 * holds it, as store_lineage_lock), then compare the current version with
 * `judged` (what flow_fleet_sync gave before the decision to renew).
 * CP_OK with either the lock held or `elsewhere` set; the store's errors
 * (CP_ETIMEOUT: another host still holds it; CP_ENET: the store is
 * unreachable) with nothing held.
 */
enum cp_code flow_fleet_claim(struct cp_store *st, const char *name, const char *judged,
                              unsigned timeout_s, void (*waiting)(void *ctx, const char *holder),
                              void *ctx, const struct flow_log *log, struct flow_fleet_claim *out,
                              struct cp_err *err);
/* Release the lock if held; again: no-op. */
void flow_fleet_release(struct flow_fleet_claim *c);

/* --------------------------------- after a run (flow/issue.c, flow/lineage.c) */

/* Tell the deploy hook (a command line: RENEWED_LINEAGE and RENEWED_DOMAINS
 * in its environment), then the executables in `hooks_dir`/deploy (same
 * environment), and a dehydrated hook (deploy_cert) that the certificate of
 * `names` in `live_dir` is new; any may be NULL.  True when every hook run
 * exited 0. */
bool flow_issue_deploy(const struct flow_log *log, const char *deploy_hook, const char *hooks_dir,
                       const char *hook, const char *const *names, size_t n, const char *live_dir);

/* A copy of the lineage's current files (privkey.pem 0600, cert.pem,
 * chain.pem, fullchain.pem 0644) in `install_dir` (made 0755 when missing),
 * each written atomically: for servers configured to read another place,
 * e.g. certbot's live/NAME after an import.  What is there is replaced
 * (a symbolic link by a file; its target is left alone). */
enum cp_code flow_issue_install(const char *live_dir, const char *install_dir, struct cp_err *err);

/* Record a run's result in a lineage's status object (what `list` shows):
 * last_attempt, last_result (`outcome`), last_exit_status, last_message
 * and, when it succeeded, last_success. */
void flow_lineage_record(json_t *status, const char *outcome, int exit_status, const char *message,
                         long long now);

/* ------------------------------- importing another client's state (flow/import.c) */

/*
 * The importers (flow/import_certbot.c, flow/import_dehydrated.c) read
 * another client's files into these, and flow_import_* write them into the
 * store: never the source, nothing twice.  Each call adds one item to the
 * report saying what it did (or, for a dry run, would do) and why.
 */
enum flow_import_action {
    FLOW_IMPORT_NEW,      /* written (dry run: would be) */
    FLOW_IMPORT_SAME,     /* already there, identical: nothing to do */
    FLOW_IMPORT_CONFLICT, /* something else is there under that name: left alone */
    FLOW_IMPORT_SKIPPED   /* cannot be imported (why says it) */
};
struct flow_import_item {
    char *kind;   /* "account", "certificate", "hook", "setting" */
    char *name;   /* the account URL, the lineage name, the hook file name... */
    char *source; /* the file or directory it came from */
    enum flow_import_action action;
    char *why; /* one sentence for SAME, CONFLICT and SKIPPED (and notes on NEW); may be NULL */
};
struct flow_import_report {
    struct flow_import_item *items;
    size_t n, cap;
    bool dry; /* a dry run: nothing is written */
};
void flow_import_report_clear(struct flow_import_report *r);
/* Add an item by hand (what an importer skips, and why: printf-style). */
enum cp_code flow_import_note(struct flow_import_report *r, const char *kind, const char *name,
                              const char *source, enum flow_import_action action,
                              const char *why_fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 6, 7)))
#endif
    ;
/* "new", "same", "conflict", "skipped". */
const char *flow_import_action_name(enum flow_import_action a);

/* An account: its CA's directory URL, its URL at the CA (kept, so that CAA
 * accounturi records keep matching; NULL when the other client did not
 * store it: the key is imported alone and the first run looks the URL up
 * with onlyReturnExisting) and key, its contacts (array of "mailto:..."
 * strings; NULL: none known). */
struct flow_import_account {
    const char *source;
    const char *directory;
    const char *url;
    const struct acme_key *key;
    const json_t *contact;
};
/* NEW when the store has no account for that CA; SAME when it has this one
 * (same key, and same URL when `url` is given); CONFLICT when it has another.
 * The report names the account by its URL, or by its CA when url is NULL. */
enum cp_code flow_import_account(struct cp_store *st, const struct flow_import_account *a,
                                 struct flow_import_report *r, struct cp_err *err);

/* A certificate: its lineage name, its current key and certificate (PEM
 * text; chain may be "" when there is none, fullchain is cert + chain), and
 * its settings as renewal.conf text (certpilot's keys: domain, server,
 * key-type, webroot, webroot-map, challenge, hook, pre-hook, ...). */
struct flow_import_lineage {
    const char *source;
    const char *name;
    const char *privkey_pem, *cert_pem, *chain_pem, *fullchain_pem;
    const char *settings;
};
/* The key and certificate are checked to belong together first (SKIPPED
 * when not).  NEW when there is no lineage of that name; SAME when there is
 * and its current certificate is this one; CONFLICT when it holds another. */
enum cp_code flow_import_lineage(struct cp_store *st, const struct flow_import_lineage *l,
                                 struct flow_import_report *r, struct cp_err *err);

/* An executable hook copied into `hooks_dir`/pre, /post or /deploy under
 * its own name (mode 0755 for root, 0700 otherwise; directories made 0755):
 * NEW, SAME when a file of that name has the same content, CONFLICT when it
 * has another.  A source that is not an executable regular file is
 * SKIPPED. */
enum cp_code flow_import_hook(const char *hooks_dir, enum flow_hook_phase phase,
                              const char *src_path, struct flow_import_report *r,
                              struct cp_err *err);

/* ------------------------------- is each webroot served? (flow/webcheck.c) */

/*
 * The webroot check, before an order: for each name that http-01 will answer
 * from a webroot, a probe file with random content is written where the
 * challenge file will go (DIR/.well-known/acme-challenge/), fetched the way
 * the CA fetches a token -- http://NAME:PORT/.well-known/acme-challenge/PROBE
 * from an address NAME resolves to through the configured resolvers (IPv6
 * first, then IPv4 when the IPv6 address cannot be reached, as Let's Encrypt
 * does), never through a proxy -- and removed.  It finds before anything is
 * sent to the CA what would make the validation fail after the order: a web
 * server that does not serve DIR (404), nothing listening, another server
 * answering for NAME, a name that does not resolve.  A redirect is not
 * followed (the CA follows redirects to http and https on ports 80 and 443,
 * which this check cannot confirm): it is reported, not counted as a failure.
 */
struct flow_webcheck_opts {
    int port;            /* where the CA connects: 80 for every real CA */
    unsigned timeout_ms; /* per fetch, connecting included; 0: 10000 */
};

enum flow_web_outcome {
    FLOW_WEB_SERVED,        /* the probe came back: the CA will find its token */
    FLOW_WEB_NO_ADDRESS,    /* the name does not resolve */
    FLOW_WEB_REFUSED,       /* connection refused: nothing listens */
    FLOW_WEB_TIMEOUT,       /* no answer in time */
    FLOW_WEB_CONN_FAILED,   /* another connection failure (no route, reset, not HTTP) */
    FLOW_WEB_NOT_FOUND,     /* 404 */
    FLOW_WEB_HTTP_STATUS,   /* another status than 200, 404 or a redirect */
    FLOW_WEB_WRONG_CONTENT, /* 200, but not the probe's content: another server answers */
    FLOW_WEB_REDIRECT       /* a redirect, not followed: not confirmed, not a failure */
};

/* What one fetch gave: the input of flow_webcheck_judge(). */
enum flow_web_transport {
    FLOW_WEB_T_OK,      /* an HTTP answer (status set) */
    FLOW_WEB_T_REFUSED, /* ECONNREFUSED */
    FLOW_WEB_T_TIMEOUT, /* the time allowed passed */
    FLOW_WEB_T_FAILED   /* any other failure (detail says which) */
};
struct flow_web_fetch {
    enum flow_web_transport transport;
    long status;       /* HTTP status (T_OK) */
    bool body_matches; /* the body, trailing white space aside, is the probe's content */
    char detail[256];  /* the failure, a redirect's Location, or the DNS error */
};
/* The outcome of a fetch (pure). */
enum flow_web_outcome flow_webcheck_judge(const struct flow_web_fetch *f);
/* Does this outcome stop the run? */
bool flow_webcheck_fails(enum flow_web_outcome o);
/* "served", "no_address", "refused", "timeout", "connection_failed",
 * "not_found", "http_status", "wrong_content", "redirect". */
const char *flow_webcheck_outcome_name(enum flow_web_outcome o);
/* One sentence: what happened for `name` (served from `dir`, fetched from
 * `addr`, "" when it did not resolve, on `port`) and what to check (pure). */
void flow_webcheck_explain(enum flow_web_outcome o, const char *name, const char *dir,
                           const char *addr, int port, const struct flow_web_fetch *f, char *buf,
                           size_t size);
/* The webroot that will answer `name`, or NULL when its challenge is not
 * http-01 from a webroot: the first type of `methods` that `s` can answer
 * for it (http-01: a webroot of the name, or the default one, and not
 * standalone; dns-01: a hook; tls-alpn-01: standalone).  Borrowed from `s`.
 * With --http-shared (s->http_shared), FLOW_WEBCHECK_SHARED for http-01:
 * the probe is then published in the shared store instead of written to a
 * file, and must come back from the fleet's responders. */
#define FLOW_WEBCHECK_SHARED "the shared store (--http-shared)"
const char *flow_webcheck_webroot(const struct flow_solve_opts *s, const char *const *methods,
                                  size_t nmethods, const char *name);

struct flow_webcheck_item {
    char name[CAA_IDENT_MAX];
    const char *dir; /* borrowed from the solve options */
    char addr[64];   /* the address fetched from; "" when the name did not resolve */
    enum flow_web_outcome outcome;
    char message[CP_ERR_MSG_MAX]; /* flow_webcheck_explain() */
};
struct flow_webcheck_result {
    struct flow_webcheck_item *items; /* one per name checked */
    size_t n, failed;
};
/*
 * Check each of `names` (normalized) that flow_webcheck_webroot() gives a
 * webroot, in order; every one is checked even after a failure.  Each
 * failure is said on `log` (FLOW_ERR), each success at FLOW_INFO.  CP_OK when
 * none fails (also when none needs the check); CP_ECHALLENGE when some do,
 * `err` saying how many; a probe that cannot be written or a resolver that
 * cannot be set up: that error (CP_EIO, CP_EUNSAFE, CP_EINVAL, CP_EDNS...).
 * *out (heap, flow_webcheck_result_free()) is set in every case but
 * CP_ENOMEM.
 */
enum cp_code flow_webcheck_run(const struct flow_webcheck_opts *o, const struct flow_solve_opts *s,
                               const char *const *names, size_t n, const char *const *methods,
                               size_t nmethods, const struct flow_log *log,
                               struct flow_webcheck_result **out, struct cp_err *err);
void flow_webcheck_result_free(struct flow_webcheck_result *r); /* NULL: no-op */
/* ------------------------ importing dehydrated's state (flow/import_dehydrated.c) */

/*
 * dehydrated keeps its settings in `config`, a bash fragment it sources,
 * its certificates in certs/<alias>/ (the names in domains.txt) and its
 * accounts in accounts/<base64url of the CA URL>/.  Its files are only read.
 *
 * Shell code is never run: a statement is evaluated only when it is plain
 * assignments (NAME=WORD..., or `export` of them), each WORD being
 * unquoted, '...' or "..." text, or a concatenation of them, with $NAME or
 * ${NAME} of a variable set before (dehydrated's defaults included).
 * Anything else (commands, `if`/`case`/loops and what they hold, $(...),
 * `...`, ${NAME:-...}, ~, unknown variables) is reported as a SKIPPED
 * "setting" naming FILE:LINE, and the variables it would set keep their
 * earlier values.
 */
struct flow_dh_vars {
    char **name, **value;
    size_t n, cap;
};
/* The value of `name`, NULL when unset. */
const char *flow_dh_get(const struct flow_dh_vars *v, const char *name);
enum cp_code flow_dh_set(struct flow_dh_vars *v, const char *name, const char *value);
void flow_dh_vars_clear(struct flow_dh_vars *v);
/* dehydrated 0.7's defaults (what its config is evaluated on top of), with
 * BASEDIR set to `basedir`. */
enum cp_code flow_dh_defaults(struct flow_dh_vars *v, const char *basedir);
/* Evaluate the config text `text` (`len` bytes, `label` naming it in the
 * report) into `v`; what is not evaluated goes into `r`.  CP_EINVAL for a
 * NUL byte or an unclosed quote (nothing is trusted then), CP_ENOMEM. */
enum cp_code flow_dh_config_parse(const char *label, const char *text, size_t len,
                                  struct flow_dh_vars *v, struct flow_import_report *r,
                                  struct cp_err *err);

/* One line of domains.txt: its names (lower case, in order) and its alias
 * (the certificate's directory: after '>', else the first name). */
struct flow_dh_cert {
    char **names;
    size_t nnames;
    char *alias;
    unsigned line;
};
struct flow_dh_domains {
    struct flow_dh_cert *c;
    size_t n;
};
/* Parse domains.txt as dehydrated reads it (comments, blank lines, "a b >
 * alias", "a b>alias", CRLF); lines it would refuse (two aliases, no name
 * before '>', a wildcard without an alias, an alias used twice) are
 * reported as SKIPPED "certificate" with `label`:LINE and left out. */
enum cp_code flow_dh_domains_parse(const char *label, const char *text, size_t len,
                                   struct flow_dh_domains *out, struct flow_import_report *r,
                                   struct cp_err *err);
void flow_dh_domains_clear(struct flow_dh_domains *d);

struct flow_dh_import_req {
    const char *basedir; /* NULL: the config's directory, else /etc/dehydrated */
    const char *config;  /* dehydrated's -f FILE; NULL: BASEDIR/config (missing: defaults) */
    const char *const *cert_names; /* only these aliases (none: all) */
    size_t ncert_names;
};
/* Read the config (and the *.sh files of CONFIG_D), every account under ACCOUNTDIR
 * and the certificates of domains.txt (their certs/<alias>/config
 * applied), and hand them to flow_import_account() and
 * flow_import_lineage(): each lineage gets a renewal.conf made of
 * certpilot's keys (server, domain, key-type, challenge, webroot, hook,
 * preferred-chain, reuse-key).  http-01's WELLKNOWN ending in
 * /.well-known/acme-challenge gives the webroot above it; any other
 * absolute WELLKNOWN (a directory the web server aliases, Debian's default)
 * gets the webroot STATE/webroots/ALIAS, whose .well-known/acme-challenge
 * is made a symbolic link to WELLKNOWN (a "setting" item: NEW, SAME, or
 * CONFLICT when something else is there).  Settings certpilot cannot carry
 * over are SKIPPED "setting" items saying why.  CP_OK unless reading or
 * writing failed (the report says what was done until then). */
enum cp_code flow_import_dehydrated(struct cp_store *st, const struct flow_dh_import_req *req,
                                    struct flow_import_report *r, struct cp_err *err);
/* ------------------------------- importing from certbot (flow/import_certbot.c) */

/*
 * certbot's renewal/NAME.conf is written by Python's configobj: "key =
 * value" lines, "# comments", sections "[renewalparams]" and subsections
 * "[[webroot_map]]".  A value is unquoted (up to a ',' or a '#') or quoted
 * with ' or "; a ',' makes it a list ("webroot_path = /var/www,").  This
 * parser reads that subset; it refuses what it does not understand
 * (multi-line values, a subsection outside a section, junk after a quoted
 * value) with FILE:LINE in the message.  The file is root's and local, but
 * every length is bounded by the text's.
 */
struct flow_certbot_entry {
    char *section; /* "" (top), "renewalparams", "renewalparams/webroot_map" */
    char *key;
    char **values; /* n strings (a list may be empty) */
    size_t n;
    bool list; /* written as a list (a ',' in it) */
    unsigned line;
};
struct flow_certbot_conf {
    struct flow_certbot_entry *e;
    size_t n;
};
enum cp_code flow_certbot_conf_parse(const char *label, const char *text, size_t len,
                                     struct flow_certbot_conf *out, struct cp_err *err);
void flow_certbot_conf_clear(struct flow_certbot_conf *c);
/* The last entry `key` of `section`; NULL when there is none. */
const struct flow_certbot_entry *flow_certbot_conf_get(const struct flow_certbot_conf *c,
                                                       const char *section, const char *key);
/* Its first value; NULL when there is none (or it is an empty list). */
const char *flow_certbot_conf_str(const struct flow_certbot_conf *c, const char *section,
                                  const char *key);

/* What to import from a certbot configuration directory. */
struct flow_certbot_import {
    const char *config_dir;   /* /etc/letsencrypt */
    const char *const *names; /* only these lineages (nnames 0: all) */
    size_t nnames;
    const char *hooks_dir; /* certpilot's hooks.d: renewal-hooks/{pre,post,deploy} go there */
    /* Each imported lineage also keeps its files in certbot's live/NAME
     * (install-dir = CONFIG/live/NAME in its renewal.conf), so that servers
     * pointed there need no change.  Written at renewal, never at import. */
    bool keep_live_paths;
};
/*
 * Import certbot's accounts (those of the chosen lineages first, each with
 * the CA directory its lineages name), its lineages (renewal/NAME.conf with
 * the current key and certificate; settings certpilot cannot carry over
 * are SKIPPED "setting" items saying what to set instead) and the
 * executables of renewal-hooks/.  Nothing in config_dir is written.  CP_OK
 * whatever was skipped (the report says); an error only when config_dir is
 * not a certbot directory or the store fails.
 */
enum cp_code flow_import_certbot(struct cp_store *st, const struct flow_certbot_import *req,
                                 struct flow_import_report *r, struct cp_err *err);

/* -------------------- renewal timing and profiles (flow/lineage.c, flow/issue.c) */

/*
 * Without an ARI window a certificate is renewed with a third of its
 * lifetime left, or half of it when the lifetime is under
 * FLOW_SHORT_LIFETIME (a 6-day certificate then has 3 days of retries),
 * and earlier still by a jitter below FLOW_JITTER_PERMILLE of the lifetime
 * (2.7 days for 90 days, 4.3 hours for 6 days), the same on every run for
 * one certificate, different between lineages and between certificates.
 */
#define FLOW_SHORT_LIFETIME  (10 * 86400LL)
#define FLOW_JITTER_PERMILLE 30
/*
 * How often the systemd timer (dist/certpilot-renew.timer, OnCalendar=
 * every FLOW_TIMER_HOURS hours) runs renew: one number for the timer, the
 * documentation and the warning below (tests check that they agree).
 */
#define FLOW_TIMER_HOURS    6
#define FLOW_TIMER_INTERVAL (FLOW_TIMER_HOURS * 3600LL)

/* The jitter in seconds, in [0, lifetime * FLOW_JITTER_PERMILLE / 1000):
 * from SHA-256 of the lineage name and the expiry (pure). */
long long flow_lineage_jitter(const char *name, long long not_before, long long not_after);
/* When a certificate without an ARI window is due (pure). */
long long flow_lineage_renew_point(const char *name, long long not_before, long long not_after);
/* After flow_lineage_judge(): is the time from renew_at to expiry shorter
 * than two runs of a timer of `interval` seconds (one run may fail, or be
 * missed)?  Then a timer of that interval cannot be counted on. */
bool flow_lineage_window_short(const struct flow_lineage_cert *c, long long interval);
/* The profile the CA used for the lineage's current certificate, kept in
 * its status as "profile" (NULL or "": none, the key removed). */
void flow_lineage_set_profile(json_t *status, const char *profile);
/* ------------------------------- dns-persist-01 records (flow/persist.c) */

/*
 * draft-ietf-acme-dns-persist: the CA may ask any authoritative server of
 * the validation name, so before an order uses dns-persist-01 (and in
 * `doctor`) every one of them is asked directly whether the standing record
 * it serves authorizes the account with the CA's issuer domain names.
 */
struct flow_persist_name {
    char ident[CAA_IDENT_MAX];     /* "*." kept for a wildcard */
    char qname[CAA_NAME_MAX + 1];  /* _validation-persist.<base> */
    char target[CAA_NAME_MAX + 1]; /* where its CNAME chain ends: the name asked */
    char zone[CAA_NAME_MAX + 1];   /* "" when the servers could not be found */
    struct caa_ns *ns;             /* nns server addresses (heap) */
    size_t nns;
    struct caa_persist_server *servers; /* what each answered, judged (heap, nns) */
    size_t nauthorizing;                /* servers whose records authorize */
    char error[CP_ERR_MSG_MAX];         /* why the servers are unknown ("" when known) */
};
struct flow_persist_report {
    struct flow_persist_name *names;
    size_t n;
    size_t failed; /* names some server (or the look-up) does not authorize */
};
/* Check idents[0..n) (DNS names, "*." for wildcards) against `chk`;
 * `port` 0 means 53.  A name whose servers cannot be found counts as
 * failed (its error says why) and is no error of the call.  *out is heap:
 * flow_persist_report_free(). */
enum cp_code flow_persist_check(const char *const *idents, size_t n,
                                const struct caa_resolver_opts *ropts, unsigned port,
                                const struct caa_persist_check *chk,
                                struct flow_persist_report **out, struct cp_err *err);
void flow_persist_report_free(struct flow_persist_report *r); /* NULL is a no-op */
/* True when every server of the name answered and authorizes. */
bool flow_persist_name_ok(const struct flow_persist_name *p);
/* What server k of p answered, in words ("authorizes", or why not). */
const char *flow_persist_server_says(const struct flow_persist_name *p, size_t k);
/* One line about the whole name: every server authorizes, or which do not
 * and why (at most `size` bytes, cut with "..."). */
void flow_persist_summary(const struct flow_persist_name *p, char *buf, size_t size);
/* In an issue run, after the CAA preflight: the names that will use
 * dns-persist-01 checked (out->persist), said through `log`.  CP_ECHALLENGE
 * naming the first failing name and servers when any does not authorize;
 * CP_EINVAL when there is no account or no issuer to check against. */
#define FLOW_PERSIST_NAMES_MAX 100
enum cp_code flow_persist_before_order(const struct flow_issue_req *req,
                                       struct flow_issue_result *out, const struct flow_log *log,
                                       struct cp_err *err);

#endif
