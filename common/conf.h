/*
 * common/conf.h - the "key = value" syntax of certpilot's settings: the
 * defaults file and each lineage's renewal.conf.
 *
 * One setting per line; blank lines and lines starting with '#' are skipped;
 * the key is made of a-z, 0-9, '-' and '_' ('_' is read as '-'); the value is
 * the rest of the line after '=', trimmed, taken literally (no quoting, no
 * variables).  A key may repeat.
 *
 * Only the syntax lives here, so that the command line (cli/config.c, which
 * turns settings into options) and the flows (flow/, which read a lineage's
 * CA and names from its settings) read the files alike.  What a key means,
 * and whether it is allowed, is the caller's business.
 */
#ifndef CP_COMMON_CONF_H
#define CP_COMMON_CONF_H

#include <stddef.h>

#include "common/err.h"

#define CP_CONF_LINE_MAX 4096 /* bytes of one line, newline not counted */

/* Called once per setting, in file order: `key` ('_' turned into '-') and
 * `value` are NUL-terminated and valid during the call only.  Anything but
 * CP_OK stops the scan and is returned. */
typedef enum cp_code (*cp_conf_fn)(void *ctx, const char *key, const char *value, unsigned line,
                                   struct cp_err *err);

/*
 * Each setting of `text` (`len` bytes) to `fn`.  CP_EINVAL, with a message
 * naming `label`:LINE and what to write instead, for a NUL byte, a line longer
 * than CP_CONF_LINE_MAX or a line that is not a setting; the settings before
 * it have been handed to `fn` by then.
 */
enum cp_code cp_conf_scan(const char *label, const char *text, size_t len, cp_conf_fn fn, void *ctx,
                          struct cp_err *err);

#endif
