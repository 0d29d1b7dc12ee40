/*
 * flow/log.c - how a flow says what it does: formatted into a bounded line
 * and handed to the caller's sink.
 */
#include "flow/flow.h"

#include <stdarg.h>
#include <stdio.h>

#define LINE_MAX_BYTES 2048

void flow_say(const struct flow_log *log, enum flow_level level, const char *fmt, ...)
{
    char line[LINE_MAX_BYTES];
    va_list ap;
    if (log == NULL || log->say == NULL)
        return;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    log->say(log->ctx, level, line);
}
