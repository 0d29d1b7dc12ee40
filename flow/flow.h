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
    /* the judgement */
    bool due;
    long long renew_at; /* when it is (was) due */
    char why[300];      /* on what grounds, for the log and `list` */
};
/* The status and current certificate of `name` (c->name set).  On an
 * unreadable certificate the error is returned and `c` holds the status
 * only (judged as having no certificate).  Clear `c` after, in any case. */
enum cp_code flow_lineage_cert_load(struct cp_store *st, const char *name,
                                    struct flow_lineage_cert *c, struct cp_err *err);
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

#endif
