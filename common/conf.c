/*
 * common/conf.c - reading the "key = value" syntax of settings files (see
 * common/conf.h).
 */
#include "common/conf.h"

#include <stdbool.h>
#include <string.h>

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r';
}

static bool key_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
}

enum cp_code cp_conf_scan(const char *label, const char *text, size_t len, cp_conf_fn fn, void *ctx,
                          struct cp_err *err)
{
    /* key, NUL, value, NUL: both fit since the line does */
    char buf[CP_CONF_LINE_MAX + 2];
    if (memchr(text, '\0', len) != NULL)
        return cp_err_set(err, CP_EINVAL, "%s: a NUL byte: this is not a text file", label);
    const char *p = text, *end = text + len;
    for (unsigned line = 1; p < end; line++) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        if (eol == NULL)
            eol = end;
        if (eol - p > CP_CONF_LINE_MAX)
            return cp_err_set(err, CP_EINVAL, "%s:%u: line longer than %d bytes", label, line,
                              CP_CONF_LINE_MAX);
        const char *a = p, *b = eol;
        while (a < b && is_space(*a))
            a++;
        while (b > a && is_space(b[-1]))
            b--;
        p = eol + (eol < end);
        if (a == b || *a == '#')
            continue;
        const char *eq = memchr(a, '=', (size_t)(b - a));
        const char *kend = eq ? eq : b;
        while (kend > a && is_space(kend[-1]))
            kend--;
        bool key_ok = kend > a;
        for (const char *k = a; key_ok && k < kend; k++)
            key_ok = key_char(*k);
        if (eq == NULL || !key_ok)
            return cp_err_set(err, CP_EINVAL,
                              "%s:%u: \"%.*s\" is not a setting: write \"key = value\" "
                              "(keys are issue's long option names, e.g. server = URL)",
                              label, line, (int)(b - a > 80 ? 80 : b - a), a);
        const char *v = eq + 1;
        while (v < b && is_space(*v))
            v++;
        size_t klen = (size_t)(kend - a), vlen = (size_t)(b - v);
        memcpy(buf, a, klen);
        buf[klen] = '\0';
        /* "reuse_key" and "reuse-key" are the same key. */
        for (char *k = buf; *k; k++)
            if (*k == '_')
                *k = '-';
        memcpy(buf + klen + 1, v, vlen);
        buf[klen + 1 + vlen] = '\0';
        enum cp_code rc = fn(ctx, buf, buf + klen + 1, line, err);
        if (rc != CP_OK)
            return rc;
    }
    return CP_OK;
}
