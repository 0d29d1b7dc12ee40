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
 * needs External Account Binding and reg has none).  On CP_OK the client
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

#endif
