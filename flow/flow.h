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

#endif
