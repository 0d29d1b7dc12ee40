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
#include "common/err.h"
#include "store/store.h"

/* ------------------------------------------------------------------ log */

/* Severity of a line, as syslog numbers them (the CLI maps them to its log). */
enum flow_level { FLOW_ERR = 3, FLOW_WARNING = 4, FLOW_NOTICE = 5, FLOW_INFO = 6, FLOW_DEBUG = 7 };

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

/* ------------------------------------------- revoke and delete (flow/revoke.c) */

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

#endif
