/*
 * flow/import_dehydrated.c - reading dehydrated's state (its config, a bash
 * fragment; domains.txt; certs/<alias>/; accounts/) into what flow/import.c
 * writes.  Shell code is never run: only plain assignments are evaluated,
 * and everything else is reported as not imported, with where it is.
 * dehydrated's files are only read.
 */
#define _DEFAULT_SOURCE /* realpath(), scandir(), alphasort() */
#include "flow/flow.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/file.h"

#define CONFIG_MAX (256 * 1024) /* a config or domains.txt bigger than this is not one */
#define PEM_MAX    (256 * 1024)
#define JSON_MAX   (64 * 1024)
#define WORDS_MAX  64
#define VALUE_MAX  4096
#define NAMES_MAX  100 /* certpilot's limit of names in one certificate */
#define PATH_SIZE  4096

/* ------------------------------------------------------------ variables */

const char *flow_dh_get(const struct flow_dh_vars *v, const char *name)
{
    for (size_t i = 0; i < v->n; i++)
        if (strcmp(v->name[i], name) == 0)
            return v->value[i];
    return NULL;
}

enum cp_code flow_dh_set(struct flow_dh_vars *v, const char *name, const char *value)
{
    char *copy = strdup(value);
    if (copy == NULL)
        return CP_ENOMEM;
    for (size_t i = 0; i < v->n; i++)
        if (strcmp(v->name[i], name) == 0) {
            free(v->value[i]);
            v->value[i] = copy;
            return CP_OK;
        }
    if (v->n == v->cap) {
        size_t cap = v->cap ? v->cap * 2 : 64;
        char **names = realloc(v->name, cap * sizeof *names);
        if (names != NULL)
            v->name = names;
        char **values = names ? realloc(v->value, cap * sizeof *values) : NULL;
        if (values == NULL) {
            free(copy);
            return CP_ENOMEM;
        }
        v->value = values;
        v->cap = cap;
    }
    if ((v->name[v->n] = strdup(name)) == NULL) {
        free(copy);
        return CP_ENOMEM;
    }
    v->value[v->n++] = copy;
    return CP_OK;
}

void flow_dh_vars_clear(struct flow_dh_vars *v)
{
    for (size_t i = 0; i < v->n; i++) {
        free(v->name[i]);
        free(v->value[i]);
    }
    free(v->name);
    free(v->value);
    memset(v, 0, sizeof *v);
}

static enum cp_code vars_copy(struct flow_dh_vars *dst, const struct flow_dh_vars *src)
{
    enum cp_code rc = CP_OK;
    for (size_t i = 0; i < src->n && rc == CP_OK; i++)
        rc = flow_dh_set(dst, src->name[i], src->value[i]);
    return rc;
}

/* dehydrated 0.7.0's load_config(): the values a config is sourced on top of. */
static const char *const defaults[][2] = {
    {"CA", "letsencrypt"},
    {"OLDCA", ""},
    {"CERTDIR", ""},
    {"ALPNCERTDIR", ""},
    {"ACCOUNTDIR", ""},
    {"CHALLENGETYPE", "http-01"},
    {"CONFIG_D", ""},
    {"CURL_OPTS", ""},
    {"DOMAINS_D", ""},
    {"DOMAINS_TXT", ""},
    {"HOOK", ""},
    {"PREFERRED_CHAIN", ""},
    {"HOOK_CHAIN", "no"},
    {"RENEW_DAYS", "30"},
    {"KEYSIZE", "4096"},
    {"WELLKNOWN", ""},
    {"PRIVATE_KEY_RENEW", "yes"},
    {"PRIVATE_KEY_ROLLOVER", "no"},
    {"KEY_ALGO", "secp384r1"},
    {"OPENSSL", "openssl"},
    {"OPENSSL_CNF", ""},
    {"CONTACT_EMAIL", ""},
    {"LOCKFILE", ""},
    {"OCSP_MUST_STAPLE", "no"},
    {"OCSP_FETCH", "no"},
    {"OCSP_DAYS", "5"},
    {"IP_VERSION", ""},
    {"CHAINCACHE", ""},
    {"AUTO_CLEANUP", "no"},
    {"DEHYDRATED_USER", ""},
    {"DEHYDRATED_GROUP", ""},
    {"API", "auto"},
    /* the CA aliases, which a config may use as ${CA_LETSENCRYPT} */
    {"CA_ZEROSSL", "https://acme.zerossl.com/v2/DV90"},
    {"CA_LETSENCRYPT", "https://acme-v02.api.letsencrypt.org/directory"},
    {"CA_LETSENCRYPT_TEST", "https://acme-staging-v02.api.letsencrypt.org/directory"},
    {"CA_BUYPASS", "https://api.buypass.com/acme/directory"},
    {"CA_BUYPASS_TEST", "https://api.test4.buypass.no/acme/directory"},
};

enum cp_code flow_dh_defaults(struct flow_dh_vars *v, const char *basedir)
{
    enum cp_code rc = CP_OK;
    for (size_t i = 0; i < sizeof defaults / sizeof defaults[0] && rc == CP_OK; i++)
        rc = flow_dh_set(v, defaults[i][0], defaults[i][1]);
    if (rc == CP_OK)
        rc = flow_dh_set(v, "BASEDIR", basedir);
    return rc;
}

/* ---------------------------------------------------- the config's shell */

struct buf {
    char s[VALUE_MAX];
    size_t len;
    bool overflow;
};

static void buf_add(struct buf *b, const char *s, size_t n)
{
    if (b->len + n >= sizeof b->s) {
        b->overflow = true;
        return;
    }
    memcpy(b->s + b->len, s, n);
    b->len += n;
    b->s[b->len] = '\0';
}

struct word {
    char *text;
    size_t name_len; /* > 0: NAME=VALUE, the value at text + name_len + 1 */
    bool quoted;     /* some of it was quoted or escaped: never a keyword */
};

struct stmt {
    struct word w[WORDS_MAX];
    size_t n;
    unsigned line;
    bool bad;      /* not something certpilot evaluates */
    char why[300]; /* the first reason it is not */
};

struct lexer {
    const char *p, *end;
    unsigned line;
    const struct flow_dh_vars *vars;
    bool unclosed; /* a quote runs to the end of the text */
};

static void stmt_bad(struct stmt *st, const char *why)
{
    if (!st->bad)
        snprintf(st->why, sizeof st->why, "%s", why);
    st->bad = true;
}

static void stmt_clear(struct stmt *st)
{
    for (size_t i = 0; i < st->n; i++)
        free(st->w[i].text);
    memset(st, 0, sizeof *st);
}

static bool name_start(int c)
{
    return c == '_' || isalpha(c);
}

static bool name_char(int c)
{
    return c == '_' || isalnum(c);
}

/* At '$': a variable's value into b, or the statement marked bad. */
static void expand(struct lexer *lx, struct stmt *st, struct buf *b)
{
    const char *p = lx->p + 1;
    char name[128];
    size_t n = 0;
    if (p < lx->end && *p == '{') {
        const char *close = memchr(p, '}', (size_t)(lx->end - p));
        const char *q = p + 1;
        while (q < lx->end && name_char((unsigned char)*q))
            q++;
        if (close == NULL || q != close || q == p + 1 || !name_start((unsigned char)p[1])) {
            stmt_bad(st, "uses ${...} with an operator (a default, a substitution...), "
                         "which is shell code certpilot does not run");
            lx->p = close ? close + 1 : p + 1;
            return;
        }
        n = (size_t)(close - p - 1);
        if (n >= sizeof name) {
            stmt_bad(st, "uses a variable name that is too long");
            lx->p = close + 1;
            return;
        }
        memcpy(name, p + 1, n);
        lx->p = close + 1;
    } else if (p < lx->end && name_start((unsigned char)*p)) {
        while (p + n < lx->end && name_char((unsigned char)p[n]) && n + 1 < sizeof name)
            n++;
        memcpy(name, p, n);
        lx->p = p + n;
    } else if (p < lx->end && *p == '(') {
        stmt_bad(st, "uses $(...), a command certpilot does not run");
        lx->p = p;
        return;
    } else if (p < lx->end && (isdigit((unsigned char)*p) || strchr("@*#?$!-", *p))) {
        stmt_bad(st, "uses a special shell parameter ($1, $@, $$...)");
        lx->p = p + 1;
        return;
    } else { /* a lone '$' is itself */
        buf_add(b, "$", 1);
        lx->p = p;
        return;
    }
    name[n] = '\0';
    const char *v = flow_dh_get(lx->vars, name);
    if (v == NULL) {
        if (!st->bad)
            snprintf(st->why, sizeof st->why,
                     "uses $%s, which is neither set before it nor one of dehydrated's "
                     "settings (it would come from the environment)",
                     name);
        st->bad = true;
        return;
    }
    buf_add(b, v, strlen(v));
}

/* One word at lx->p (not at a separator); CP_ENOMEM or CP_OK. */
static enum cp_code read_word(struct lexer *lx, struct stmt *st)
{
    struct buf b = {.len = 0};
    bool in_name = true, quoted = false;
    size_t name_len = 0;
    b.s[0] = '\0';
    while (lx->p < lx->end) {
        char c = *lx->p;
        if (strchr(" \t\n;|&<>()", c))
            break;
        if (c == '\\') {
            in_name = false;
            quoted = true;
            if (lx->p + 1 < lx->end && lx->p[1] == '\n') {
                lx->line++;
            } else if (lx->p + 1 < lx->end) {
                buf_add(&b, lx->p + 1, 1);
            }
            lx->p += lx->p + 1 < lx->end ? 2 : 1;
            continue;
        }
        if (c == '\'') {
            const char *close = memchr(lx->p + 1, '\'', (size_t)(lx->end - lx->p - 1));
            if (close == NULL) {
                lx->unclosed = true;
                lx->p = lx->end;
                break;
            }
            for (const char *q = lx->p + 1; q < close; q++)
                lx->line += *q == '\n';
            buf_add(&b, lx->p + 1, (size_t)(close - lx->p - 1));
            lx->p = close + 1;
            in_name = false;
            quoted = true;
            continue;
        }
        if (c == '"') {
            lx->p++;
            in_name = false;
            quoted = true;
            while (lx->p < lx->end && *lx->p != '"') {
                char d = *lx->p;
                if (d == '\\' && lx->p + 1 < lx->end && strchr("$`\"\\\n", lx->p[1])) {
                    if (lx->p[1] == '\n')
                        lx->line++;
                    else
                        buf_add(&b, lx->p + 1, 1);
                    lx->p += 2;
                } else if (d == '$') {
                    expand(lx, st, &b);
                } else {
                    if (d == '`')
                        stmt_bad(st, "uses `...`, a command certpilot does not run");
                    lx->line += d == '\n';
                    buf_add(&b, &d, 1);
                    lx->p++;
                }
            }
            if (lx->p >= lx->end) {
                lx->unclosed = true;
                break;
            }
            lx->p++;
            continue;
        }
        if (c == '$') {
            in_name = false;
            expand(lx, st, &b);
            continue;
        }
        if (c == '`')
            stmt_bad(st, "uses `...`, a command certpilot does not run");
        if (c == '=' && in_name && b.len > 0 && name_len == 0) {
            name_len = b.len;
            in_name = false;
            buf_add(&b, "=", 1);
            lx->p++;
            if (lx->p < lx->end && *lx->p == '~')
                stmt_bad(st, "starts with ~, a home directory the shell would expand");
            if (lx->p < lx->end && *lx->p == '(')
                stmt_bad(st, "is an array, which certpilot does not read");
            continue;
        }
        if (in_name &&
            !(name_char((unsigned char)c) && (b.len > 0 || name_start((unsigned char)c))))
            in_name = false;
        buf_add(&b, &c, 1);
        lx->p++;
    }
    if (b.overflow)
        stmt_bad(st, "has a value longer than certpilot reads");
    if (st->n == WORDS_MAX) {
        stmt_bad(st, "has too many words");
        return CP_OK;
    }
    struct word *w = &st->w[st->n];
    if ((w->text = strdup(b.s)) == NULL)
        return CP_ENOMEM;
    w->name_len = name_len;
    w->quoted = quoted;
    st->n++;
    return CP_OK;
}

/* The next statement (up to an unquoted newline or ';'); st->n == 0 and
 * !st->bad at the end of the text. */
static enum cp_code read_stmt(struct lexer *lx, struct stmt *st)
{
    memset(st, 0, sizeof *st);
    st->line = lx->line;
    while (lx->p < lx->end) {
        char c = *lx->p;
        bool empty = st->n == 0 && !st->bad;
        if (c == ' ' || c == '\t' || c == '\r') {
            lx->p++;
            continue;
        }
        if (c == '\\' && lx->p + 1 < lx->end && lx->p[1] == '\n') {
            lx->p += 2;
            lx->line++;
            continue;
        }
        if (c == '#') { /* a comment, to the end of the line */
            while (lx->p < lx->end && *lx->p != '\n')
                lx->p++;
            continue;
        }
        if (c == '\n' || c == ';') {
            lx->p++;
            if (!empty) {
                lx->line += c == '\n';
                return CP_OK;
            }
            lx->line += c == '\n';
            st->line = lx->line;
            continue;
        }
        if (empty)
            st->line = lx->line;
        if (strchr("|&<>()", c)) {
            char why[64];
            snprintf(why, sizeof why, "uses the shell operator '%c'", c);
            stmt_bad(st, why);
            lx->p++;
            continue;
        }
        enum cp_code rc = read_word(lx, st);
        if (rc != CP_OK)
            return rc;
    }
    return CP_OK;
}

static bool is_word(const struct word *w, const char *s)
{
    return !w->quoted && w->name_len == 0 && strcmp(w->text, s) == 0;
}

enum cp_code flow_dh_config_parse(const char *label, const char *text, size_t len,
                                  struct flow_dh_vars *v, struct flow_import_report *r,
                                  struct cp_err *err)
{
    struct lexer lx = {.p = text, .end = text + len, .line = 1, .vars = v};
    struct stmt st = {.n = 0};
    unsigned depth = 0, block_line = 0; /* inside if/case/loops/functions: not run */
    enum cp_code rc = CP_OK;
    if (memchr(text, '\0', len) != NULL)
        return cp_err_set(err, CP_EINVAL, "%s: holds a NUL byte: not a dehydrated config", label);
    for (;;) {
        rc = read_stmt(&lx, &st);
        if (rc != CP_OK) {
            cp_err_set(err, rc, "out of memory");
            break;
        }
        if (lx.unclosed) {
            rc = cp_err_set(err, CP_EINVAL,
                            "%s:%u: a quote is not closed before the end of the file; bash "
                            "would refuse it too",
                            label, st.line);
            break;
        }
        if (st.n == 0 && !st.bad)
            break;
        char where[PATH_SIZE + 16];
        snprintf(where, sizeof where, "%s:%u", label, st.line);
        size_t first = 0;
        /* then/else/do open the statement that follows them */
        while (first < st.n && (is_word(&st.w[first], "then") || is_word(&st.w[first], "else") ||
                                is_word(&st.w[first], "do")))
            first++;
        const struct word *w0 = first < st.n ? &st.w[first] : NULL;
        static const char *const opens[] = {"if",     "case",     "for", "while", "until",
                                            "select", "function", "{",   "elif"};
        static const char *const closes[] = {"fi", "esac", "done", "}"};
        bool opened = false, closed = false;
        for (size_t i = 0; w0 && i < sizeof opens / sizeof opens[0]; i++)
            opened = opened || is_word(w0, opens[i]);
        for (size_t i = 0; w0 && i < sizeof closes / sizeof closes[0]; i++)
            closed = closed || is_word(w0, closes[i]);
        /* `name() {`: a function; its body is not run here */
        for (size_t i = first + 1; i < st.n && !opened; i++)
            opened = is_word(&st.w[i], "{");
        if (opened && !is_word(w0 ? w0 : &st.w[0], "elif")) {
            if (depth++ == 0) {
                block_line = st.line;
                rc = flow_import_note(r, "setting", w0 ? w0->text : "(shell code)", where,
                                      FLOW_IMPORT_SKIPPED,
                                      "shell code (\"%s ...\") is not run by certpilot: "
                                      "settings made inside it are not imported",
                                      w0 ? w0->text : "");
            }
        } else if (closed) {
            if (depth > 0)
                depth--;
        } else if (w0 != NULL) {
            size_t k = first;
            if (is_word(w0, "export") || is_word(w0, "readonly"))
                k++;
            bool all_assign = k < st.n;
            for (size_t i = k; i < st.n; i++)
                all_assign = all_assign && st.w[i].name_len > 0;
            if (!all_assign && depth == 0) {
                bool source = is_word(w0, ".") || is_word(w0, "source");
                rc = flow_import_note(
                    r, "setting", w0->text, where, FLOW_IMPORT_SKIPPED, "%s",
                    source ? "reads another file as shell code, which certpilot does not run: "
                             "move its plain assignments into the config to have them imported"
                    : st.bad && st.n > 0 && st.w[0].name_len > 0
                        ? st.why
                        : "a command, not a plain assignment: certpilot does not run shell "
                          "code");
            }
            for (size_t i = k; all_assign && i < st.n && rc == CP_OK; i++) {
                char name[128];
                snprintf(name, sizeof name, "%.*s", (int)st.w[i].name_len, st.w[i].text);
                if (depth > 0)
                    rc = flow_import_note(r, "setting", name, where, FLOW_IMPORT_SKIPPED,
                                          "set inside shell code (from line %u) that certpilot "
                                          "does not run",
                                          block_line);
                else if (st.bad)
                    rc = flow_import_note(r, "setting", name, where, FLOW_IMPORT_SKIPPED,
                                          "its value %s", st.why);
                else
                    rc = flow_dh_set(v, name, st.w[i].text + st.w[i].name_len + 1);
            }
        }
        stmt_clear(&st);
        if (rc != CP_OK) {
            if (rc == CP_ENOMEM)
                cp_err_set(err, rc, "out of memory");
            break;
        }
    }
    stmt_clear(&st);
    return rc;
}

/* ---------------------------------------------------------- domains.txt */

void flow_dh_domains_clear(struct flow_dh_domains *d)
{
    for (size_t i = 0; i < d->n; i++) {
        for (size_t j = 0; j < d->c[i].nnames; j++)
            free(d->c[i].names[j]);
        free(d->c[i].names);
        free(d->c[i].alias);
    }
    free(d->c);
    memset(d, 0, sizeof *d);
}

/* One line: dehydrated lowers it, drops CRs, and reads "a b>x" as "a b >x". */
static enum cp_code domains_line(const char *label, unsigned lineno, const char *line, size_t len,
                                 struct flow_dh_domains *out, struct flow_import_report *r)
{
    char where[PATH_SIZE + 16];
    char *tok[NAMES_MAX + 2];
    size_t ntok = 0, nalias = 0;
    bool bare_gt = false, too_many = false;
    /* Each '>' may grow into " >": twice the length at most. */
    char *copy = len < SIZE_MAX / 2 - 2 ? malloc(2 * len + 2) : NULL;
    enum cp_code rc = CP_OK;
    if (copy == NULL)
        return CP_ENOMEM;
    size_t k = 0;
    for (size_t i = 0; i < len; i++) {
        char c = (char)tolower((unsigned char)line[i]);
        if (c == '\r')
            continue;
        if (c == '\t' || c == '\v' || c == '\f')
            c = ' ';
        if (c == '>') { /* "b>x" is "b >x", "> x" is ">x" */
            copy[k++] = ' ';
            copy[k++] = '>';
            while (i + 1 < len && strchr(" \t\r\v\f", line[i + 1]))
                i++;
            continue;
        }
        copy[k++] = c;
    }
    copy[k] = '\0';
    snprintf(where, sizeof where, "%s:%u", label, lineno);
    char *save = NULL;
    for (char *t = strtok_r(copy, " ", &save); t != NULL; t = strtok_r(NULL, " ", &save)) {
        if (ntok == 0 && !bare_gt && t[0] == '#')
            break; /* a comment line */
        if (strcmp(t, ">") == 0) {
            bare_gt = true;
            continue;
        }
        if (ntok == sizeof tok / sizeof tok[0]) {
            too_many = true;
            break;
        }
        tok[ntok++] = t;
        nalias += t[0] == '>';
    }
    size_t nnames = ntok - nalias;
    const char *alias = NULL, *first = NULL;
    for (size_t i = 0; i < ntok; i++) {
        if (tok[i][0] == '>')
            alias = tok[i] + 1;
        else if (first == NULL)
            first = tok[i];
    }
    if (ntok == 0 && !bare_gt)
        goto out; /* blank or comment */
    if (nalias > 1 || bare_gt || nnames == 0 || too_many) {
        rc = flow_import_note(r, "certificate",
                              alias   ? alias
                              : first ? first
                                      : "(no name)",
                              where, FLOW_IMPORT_SKIPPED, "%s",
                              nalias > 1 ? "two aliases on one line, which dehydrated refuses"
                              : bare_gt  ? "'>' without an alias after it"
                              : too_many ? "more names than a certificate holds"
                                         : "an alias without names");
        goto out;
    }
    if (alias == NULL)
        alias = first;
    if (strncmp(alias, "*.", 2) == 0) {
        rc = flow_import_note(r, "certificate", alias, where, FLOW_IMPORT_SKIPPED,
                              "a wildcard certificate needs an alias (\"%s > name\"), as "
                              "dehydrated says too",
                              first);
        goto out;
    }
    for (size_t i = 0; i < out->n; i++)
        if (strcmp(out->c[i].alias, alias) == 0) {
            rc = flow_import_note(r, "certificate", alias, where, FLOW_IMPORT_SKIPPED,
                                  "line %u already uses this certificate directory; dehydrated "
                                  "would overwrite one with the other",
                                  out->c[i].line);
            goto out;
        }
    struct flow_dh_cert *cs = realloc(out->c, (out->n + 1) * sizeof *cs);
    if (cs == NULL) {
        rc = CP_ENOMEM;
        goto out;
    }
    out->c = cs;
    struct flow_dh_cert *c = &out->c[out->n];
    memset(c, 0, sizeof *c);
    c->line = lineno;
    c->names = calloc(nnames, sizeof *c->names);
    c->alias = strdup(alias);
    out->n++; /* cleared by flow_dh_domains_clear() whatever follows */
    if (c->names == NULL || c->alias == NULL) {
        rc = CP_ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < ntok; i++)
        if (tok[i][0] != '>') {
            if ((c->names[c->nnames] = strdup(tok[i])) == NULL) {
                rc = CP_ENOMEM;
                goto out;
            }
            c->nnames++;
        }
out:
    free(copy);
    return rc;
}

enum cp_code flow_dh_domains_parse(const char *label, const char *text, size_t len,
                                   struct flow_dh_domains *out, struct flow_import_report *r,
                                   struct cp_err *err)
{
    memset(out, 0, sizeof *out);
    if (memchr(text, '\0', len) != NULL)
        return cp_err_set(err, CP_EINVAL, "%s: holds a NUL byte: not a domains.txt", label);
    unsigned lineno = 0;
    for (size_t pos = 0; pos < len;) {
        const char *nl = memchr(text + pos, '\n', len - pos);
        size_t n = nl ? (size_t)(nl - (text + pos)) : len - pos;
        lineno++;
        enum cp_code rc = domains_line(label, lineno, text + pos, n, out, r);
        if (rc != CP_OK)
            return cp_err_set(err, rc, "out of memory");
        pos += n + 1;
    }
    return CP_OK;
}

/* ------------------------------------------------------------ importing */

struct dh {
    struct cp_store *st;
    struct flow_import_report *r;
    struct flow_dh_vars vars; /* the config's, on dehydrated's defaults */
    const char *config;       /* the file read, NULL when none */
    char ca[PATH_SIZE];       /* the directory URL */
    char basedir[PATH_SIZE], certdir[PATH_SIZE], accountdir[PATH_SIZE], domains_txt[PATH_SIZE];
    const char *domains_d;
    char state_abs[PATH_SIZE]; /* the state directory as an absolute path */
};

static const char *var(const struct flow_dh_vars *v, const char *name)
{
    const char *s = flow_dh_get(v, name);
    return s ? s : "";
}

static enum cp_code path_join(char *out, const char *dir, const char *name, struct cp_err *err)
{
    if ((size_t)snprintf(out, PATH_SIZE, "%s/%s", dir, name) >= PATH_SIZE)
        return cp_err_set(err, CP_EINVAL, "%.200s/%.200s: path too long", dir, name);
    return CP_OK;
}

/* Read one of dehydrated's files: NULL in *out when it does not exist. */
static enum cp_code read_opt(const char *path, size_t max, char **out, size_t *len,
                             struct cp_err *err)
{
    *out = NULL;
    *len = 0;
    if (access(path, F_OK) != 0 && errno == ENOENT)
        return CP_OK;
    return cp_file_read(path, max, out, len, err);
}

static enum cp_code parse_file(const char *path, struct flow_dh_vars *v,
                               struct flow_import_report *r, struct cp_err *err)
{
    char *text = NULL;
    size_t len = 0;
    enum cp_code rc = cp_file_read(path, CONFIG_MAX, &text, &len, err);
    if (rc == CP_OK)
        rc = flow_dh_config_parse(path, text, len, v, r, err);
    free(text);
    return rc;
}

static int sh_file(const struct dirent *d)
{
    size_t n = strlen(d->d_name);
    return n > 3 && strcmp(d->d_name + n - 3, ".sh") == 0;
}

/* CONFIG_D: its *.sh files in name order, each sourced after the config. */
static enum cp_code parse_config_d(struct dh *d, struct cp_err *err)
{
    const char *dir = var(&d->vars, "CONFIG_D");
    struct dirent **list = NULL;
    enum cp_code rc = CP_OK;
    if (dir[0] == '\0')
        return CP_OK;
    char copy[PATH_SIZE];
    snprintf(copy, sizeof copy, "%s", dir);
    int n = scandir(copy, &list, sh_file, alphasort);
    if (n < 0)
        return cp_err_set(err, CP_EIO, "CONFIG_D %s: %s (dehydrated would stop here too)", copy,
                          strerror(errno));
    for (int i = 0; i < n; i++) {
        char path[PATH_SIZE];
        if (rc == CP_OK)
            rc = path_join(path, copy, list[i]->d_name, err);
        if (rc == CP_OK)
            rc = parse_file(path, &d->vars, d->r, err);
        free(list[i]);
    }
    free(list);
    return rc;
}

/* dehydrated's CA names, as its load_config() maps them. */
static void ca_url(const char *ca, char *out, size_t size)
{
    static const char *const alias[][2] = {
        {"letsencrypt", "https://acme-v02.api.letsencrypt.org/directory"},
        {"letsencrypt-test", "https://acme-staging-v02.api.letsencrypt.org/directory"},
        {"zerossl", "https://acme.zerossl.com/v2/DV90"},
        {"buypass", "https://api.buypass.com/acme/directory"},
        {"buypass-test", "https://api.test4.buypass.no/acme/directory"},
    };
    for (size_t i = 0; i < sizeof alias / sizeof alias[0]; i++)
        if (strcmp(ca, alias[i][0]) == 0) {
            snprintf(out, size, "%s", alias[i][1]);
            return;
        }
    snprintf(out, size, "%s", ca);
}

/* A directory setting: its value, or BASEDIR/`def` when empty. */
static enum cp_code dir_setting(const struct dh *d, const char *name, const char *def, char *out,
                                struct cp_err *err)
{
    const char *v = var(&d->vars, name);
    if (v[0] != '\0') {
        if ((size_t)snprintf(out, PATH_SIZE, "%s", v) >= PATH_SIZE)
            return cp_err_set(err, CP_EINVAL, "%s: path too long", name);
        return CP_OK;
    }
    return path_join(out, d->basedir, def, err);
}

/* Settings that change what dehydrated does and that certpilot has no
 * counterpart for: one SKIPPED item each, for those set to something else
 * than dehydrated's default (only `only`, when given: a certificate's
 * config). */
static enum cp_code note_unmapped(struct flow_import_report *r, const struct flow_dh_vars *v,
                                  const char *source, const char *prefix,
                                  const struct flow_dh_vars *base)
{
    static const struct {
        const char *name, *plain; /* the value that needs no note */
        const char *why;
    } rules[] = {
        {"RENEW_DAYS", "30",
         "certpilot renews inside the CA's renewal window (ARI) or, without one, when a third "
         "of the lifetime is left (30 days of a 90-day certificate); a fixed number of days is "
         "not carried over"},
        {"OCSP_MUST_STAPLE", "no", "certpilot does not request OCSP Must-Staple certificates"},
        {"OCSP_FETCH", "no", "certpilot does not fetch OCSP responses"},
        {"PRIVATE_KEY_ROLLOVER", "no",
         "certpilot does not prepare the next key in advance (for HPKP-style pinning)"},
        {"HOOK_CHAIN", "no",
         "certpilot calls the hook once per challenge (deploy_challenge with one name); a hook "
         "written for HOOK_CHAIN=yes must take single calls"},
        {"IP_VERSION", "", "certpilot reaches the CA over IPv4 or IPv6, whichever works"},
        {"API", "auto", "certpilot speaks ACME v2 (RFC 8555) only"},
        {"DEHYDRATED_USER", "",
         "certpilot runs as the user who starts it: run it as that user (e.g. User= in the "
         "systemd unit)"},
        {"CURL_OPTS", "",
         "curl options are not carried over; give certpilot --ca-bundle (in its --config) "
         "for a private CA"},
    };
    enum cp_code rc = CP_OK;
    for (size_t i = 0; i < sizeof rules / sizeof rules[0] && rc == CP_OK; i++) {
        const char *val = var(v, rules[i].name);
        if (base != NULL && strcmp(val, var(base, rules[i].name)) == 0)
            continue; /* not this certificate's own setting */
        if (strcmp(val, rules[i].plain) == 0 ||
            (strcmp(rules[i].name, "API") == 0 && strcmp(val, "2") == 0))
            continue;
        char name[300];
        snprintf(name, sizeof name, "%s%s=%s", prefix, rules[i].name, val);
        rc = flow_import_note(r, "setting", name, source, FLOW_IMPORT_SKIPPED, "%s", rules[i].why);
    }
    return rc;
}

/* ------------------------------------------------------------- accounts */

/* The CA URL an account directory is named after: dehydrated names it
 * base64url(echo "$CA"), newline included.  false when it is not one. */
static bool account_ca(const char *name, char *out, size_t size)
{
    size_t n = strlen(name);
    if (n == 0 || n > 2000)
        return false;
    char b64[2008];
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        if (c == '-')
            c = '+';
        else if (c == '_')
            c = '/';
        else if (!isalnum((unsigned char)c))
            return false;
        b64[k++] = c;
    }
    while (k % 4 != 0)
        b64[k++] = '=';
    b64[k] = '\0';
    unsigned char raw[1600];
    int len = EVP_DecodeBlock(raw, (const unsigned char *)b64, (int)k);
    if (len < 0)
        return false;
    for (size_t i = k; i > 0 && b64[i - 1] == '='; i--)
        len--; /* EVP_DecodeBlock counts the padding's bytes too */
    if (len < 2 || raw[len - 1] != '\n')
        return false;
    len--;
    for (int i = 0; i < len; i++)
        if (raw[i] < 0x21 || raw[i] > 0x7e)
            return false;
    if ((size_t)len >= size)
        return false;
    memcpy(out, raw, (size_t)len);
    out[len] = '\0';
    return strncmp(out, "https://", 8) == 0 || strncmp(out, "http://", 7) == 0;
}

static enum cp_code import_account(struct dh *d, const char *dir, const char *ca,
                                   struct cp_err *err)
{
    char path[PATH_SIZE];
    char *pem = NULL, *idtext = NULL, *regtext = NULL;
    size_t pemlen = 0, idlen = 0, reglen = 0;
    struct acme_key *key = NULL;
    json_t *id = NULL, *reg = NULL, *contact = NULL;
    enum cp_code rc;

    if ((rc = path_join(path, dir, "deactivated", err)) != CP_OK)
        return rc;
    if (access(path, F_OK) == 0)
        return flow_import_note(d->r, "account", ca, dir, FLOW_IMPORT_SKIPPED,
                                "deactivated (dehydrated left a \"deactivated\" file): a "
                                "deactivated account cannot be used again");
    /* dehydrated sources ACCOUNTDIR/<CA>/config after its config */
    if ((rc = path_join(path, dir, "config", err)) != CP_OK)
        return rc;
    if (access(path, F_OK) == 0 &&
        (rc = flow_import_note(d->r, "setting", "account config", path, FLOW_IMPORT_SKIPPED,
                               "dehydrated reads this file after its config when it uses this "
                               "CA; certpilot does not: move its settings into the config and "
                               "import again")) != CP_OK)
        return rc;
    if ((rc = path_join(path, dir, "account_key.pem", err)) != CP_OK ||
        (rc = read_opt(path, PEM_MAX, &pem, &pemlen, err)) != CP_OK)
        goto cleanup;
    if (pem == NULL) {
        rc = flow_import_note(d->r, "account", ca, dir, FLOW_IMPORT_SKIPPED,
                              "no account_key.pem: dehydrated never registered with this CA");
        goto cleanup;
    }
    struct cp_err kerr = {0};
    if (acme_key_from_pem(pem, pemlen, path, &key, &kerr) != CP_OK) {
        rc = flow_import_note(d->r, "account", ca, dir, FLOW_IMPORT_SKIPPED, "%s", kerr.msg);
        goto cleanup;
    }
    /* dehydrated 0.7 stores the account URL in account_id.json once it
     * learnt it; registration_info.json is the CA's account object. */
    if ((rc = path_join(path, dir, "account_id.json", err)) != CP_OK ||
        (rc = read_opt(path, JSON_MAX, &idtext, &idlen, err)) != CP_OK)
        goto cleanup;
    if (idtext != NULL)
        id = json_loadb(idtext, idlen, 0, NULL);
    const char *url = json_string_value(json_object_get(id, "url"));
    if (url != NULL && strncmp(url, "https://", 8) != 0 && strncmp(url, "http://", 7) != 0)
        url = NULL;
    if ((rc = path_join(path, dir, "registration_info.json", err)) != CP_OK ||
        (rc = read_opt(path, JSON_MAX, &regtext, &reglen, err)) != CP_OK)
        goto cleanup;
    if (regtext != NULL)
        reg = json_loadb(regtext, reglen, 0, NULL);
    contact = json_array();
    if (contact == NULL) {
        rc = cp_err_set(err, CP_ENOMEM, "out of memory");
        goto cleanup;
    }
    json_t *c = json_object_get(reg, "contact");
    for (size_t i = 0; json_is_array(c) && i < json_array_size(c) && i < 16; i++)
        if (json_is_string(json_array_get(c, i)))
            json_array_append(contact, json_array_get(c, i));
    const char *email = var(&d->vars, "CONTACT_EMAIL");
    if (json_array_size(contact) == 0 && email[0] != '\0' && strcmp(ca, d->ca) == 0) {
        char mailto[600];
        snprintf(mailto, sizeof mailto, "mailto:%s", email);
        json_array_append_new(contact, json_string(mailto));
    }
    const struct flow_import_account a = {
        .source = dir, .directory = ca, .url = url, .key = key, .contact = contact};
    rc = flow_import_account(d->st, &a, d->r, err);
cleanup:
    if (pem != NULL)
        OPENSSL_cleanse(pem, pemlen);
    free(pem);
    free(idtext);
    free(regtext);
    json_decref(id);
    json_decref(reg);
    json_decref(contact);
    acme_key_free(key);
    return rc;
}

static bool acme_v1(const char *ca)
{
    return strstr(ca, "://acme-v01.api.letsencrypt.org/") != NULL ||
           strstr(ca, "://acme-staging.api.letsencrypt.org/") != NULL;
}

static enum cp_code import_accounts(struct dh *d, struct cp_err *err)
{
    struct dirent **list = NULL;
    int n = scandir(d->accountdir, &list, NULL, alphasort);
    enum cp_code rc = CP_OK;
    char(*real)[PATH_SIZE] = NULL;
    size_t nreal = 0;
    if (n < 0) {
        if (errno == ENOENT)
            return flow_import_note(d->r, "account", d->ca, d->accountdir, FLOW_IMPORT_SKIPPED,
                                    "no accounts directory: dehydrated never registered (run "
                                    "certpilot account register, or let renew register)");
        return cp_err_set(err, CP_EIO, "%s: %s", d->accountdir, strerror(errno));
    }
    real = calloc((size_t)n + 1, sizeof *real);
    if (real == NULL)
        rc = cp_err_set(err, CP_ENOMEM, "out of memory");
    /* Two passes: ACME v1 directories are left out silently when a v2 name
     * links to them (dehydrated's own migration); alone, they are said. */
    for (int pass = 0; pass < 2 && rc == CP_OK; pass++)
        for (int i = 0; i < n && rc == CP_OK; i++) {
            const char *name = list[i]->d_name;
            char dir[PATH_SIZE], ca[2048], rp[PATH_MAX];
            struct stat sb;
            if (name[0] == '.')
                continue;
            if ((rc = path_join(dir, d->accountdir, name, err)) != CP_OK)
                break;
            if (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode))
                continue;
            bool known = account_ca(name, ca, sizeof ca);
            if (pass == 0 && known && !acme_v1(ca)) {
                if (realpath(dir, rp) != NULL)
                    snprintf(real[nreal++], PATH_SIZE, "%s", rp);
                rc = import_account(d, dir, ca, err);
            } else if (pass == 1 && (!known || acme_v1(ca))) {
                bool linked = false;
                for (size_t j = 0; known && j < nreal && realpath(dir, rp) != NULL; j++)
                    linked = linked || strcmp(real[j], rp) == 0;
                if (!linked)
                    rc = flow_import_note(d->r, "account", known ? ca : name, dir,
                                          FLOW_IMPORT_SKIPPED, "%s",
                                          known ? "an ACME v1 account: that protocol is retired"
                                                : "not named after a CA URL the way dehydrated "
                                                  "names its account directories");
            }
        }
    for (int i = 0; i < n; i++)
        free(list[i]);
    free(list);
    free(real);
    return rc;
}

/* --------------------------------------------------------- certificates */

/* The settings dehydrated lets a certificate's config change. */
static const char *const per_cert[] = {
    "KEY_ALGO",        "OCSP_MUST_STAPLE",  "OCSP_FETCH",
    "OCSP_DAYS",       "PRIVATE_KEY_RENEW", "PRIVATE_KEY_ROLLOVER",
    "KEYSIZE",         "CHALLENGETYPE",     "HOOK",
    "PREFERRED_CHAIN", "WELLKNOWN",         "HOOK_CHAIN",
    "OPENSSL_CNF",     "RENEW_DAYS"};

/* A value that fits on one renewal.conf line as it is. */
static bool conf_value_ok(const char *v)
{
    size_t n = strlen(v);
    return n > 0 && n < 2048 && strpbrk(v, "\n\r") == NULL && !isspace((unsigned char)v[0]) &&
           !isspace((unsigned char)v[n - 1]);
}

/* renewal.conf text for one certificate; SKIPPED items for what cannot go
 * into it.  *text is the caller's (free). */
static enum cp_code settings_text(struct dh *d, const struct flow_dh_cert *c,
                                  const struct flow_dh_vars *v, const char *source, char **text,
                                  char *shim, char *shim_target, struct cp_err *err)
{
    size_t len = 0;
    FILE *f = open_memstream(text, &len);
    enum cp_code rc = CP_OK;
    char name[600];
    if (f == NULL)
        return cp_err_set(err, CP_ENOMEM, "out of memory");
    fprintf(f,
            "# certpilot: settings of the certificate \"%s\", used by `certpilot renew`.\n"
            "# Imported from dehydrated (%s) by `certpilot import dehydrated`; edit\n"
            "# freely (keys are issue's long options, see CONFIGURATION in certpilot(1)).\n",
            c->alias, source);
    fprintf(f, "server = %s\n", d->ca);
    for (size_t i = 0; i < c->nnames; i++)
        fprintf(f, "domain = %s\n", c->names[i]);

    const char *algo = var(v, "KEY_ALGO"), *size = var(v, "KEYSIZE");
    const char *type = strcmp(algo, "prime256v1") == 0  ? "ec256"
                       : strcmp(algo, "secp384r1") == 0 ? "ec384"
                       : strcmp(algo, "rsa") != 0       ? NULL
                       : strcmp(size, "2048") == 0      ? "rsa2048"
                       : strcmp(size, "3072") == 0      ? "rsa3072"
                       : strcmp(size, "4096") == 0      ? "rsa4096"
                                                        : NULL;
    if (type != NULL) {
        fprintf(f, "key-type = %s\n", type);
    } else {
        snprintf(name, sizeof name, "%s: KEY_ALGO=%s KEYSIZE=%s", c->alias, algo, size);
        rc = flow_import_note(d->r, "setting", name, source, FLOW_IMPORT_SKIPPED,
                              "certpilot's keys are ec256, ec384, rsa2048, rsa3072 and rsa4096; "
                              "set key-type in its renewal.conf (certpilot's default is ec256)");
    }

    const char *type_ch = var(v, "CHALLENGETYPE"), *hook = var(v, "HOOK");
    bool hook_ok = hook[0] == '/' && conf_value_ok(hook);
    if (hook[0] != '\0' && !hook_ok && rc == CP_OK) {
        snprintf(name, sizeof name, "%s: HOOK=%s", c->alias, hook);
        rc = flow_import_note(d->r, "setting", name, source, FLOW_IMPORT_SKIPPED,
                              "not an absolute path: dehydrated finds it from the directory it "
                              "is started in; give the whole path as hook in renewal.conf");
    }
    if (strcmp(type_ch, "http-01") == 0) {
        fputs("challenge = http-01\n", f);
        /* certpilot writes WEBROOT/.well-known/acme-challenge/TOKEN: the
         * webroot is WELLKNOWN without that suffix, when it has it. */
        char wk[PATH_SIZE];
        /* dehydrated's default when the config leaves it empty */
        snprintf(wk, sizeof wk, "%s",
                 var(v, "WELLKNOWN")[0] ? var(v, "WELLKNOWN") : "/var/www/dehydrated");
        size_t n = strlen(wk);
        while (n > 1 && wk[n - 1] == '/')
            wk[--n] = '\0';
        static const char suffix[] = "/.well-known/acme-challenge";
        size_t sl = sizeof suffix - 1;
        if (wk[0] == '/' && n >= sl && strcmp(wk + n - sl, suffix) == 0 && conf_value_ok(wk)) {
            wk[n - sl] = '\0';
            fprintf(f, "webroot = %s\n", wk[0] ? wk : "/");
        } else if (wk[0] == '/' && conf_value_ok(wk) && d->state_abs[0] != '\0') {
            /* The web server maps /.well-known/acme-challenge/ to WELLKNOWN
             * (an Alias, as Debian's dehydrated package sets up): certpilot
             * gets a webroot of its own whose .well-known/acme-challenge is a
             * link to WELLKNOWN, made by link_webroot(). */
            if ((size_t)snprintf(shim, PATH_SIZE, "%s/webroots/%s", d->state_abs, c->alias) >=
                PATH_SIZE) {
                rc = cp_err_set(err, CP_EINVAL, "%s: path too long", d->state_abs);
                fclose(f);
                return rc;
            }
            snprintf(shim_target, PATH_SIZE, "%s", wk);
            fprintf(f, "webroot = %s\n", shim);
        } else if (rc == CP_OK) {
            snprintf(name, sizeof name, "%s: WELLKNOWN=%.400s", c->alias, wk);
            rc = flow_import_note(
                d->r, "setting", name, source, FLOW_IMPORT_SKIPPED,
                "not an absolute path that certpilot can write challenge files to: set "
                "'webroot = DOCROOT' in %s/certs/%s/renewal.conf, DOCROOT being a directory "
                "whose .well-known/acme-challenge/ the web server serves, or 'standalone = "
                "yes'",
                store_where(d->st), c->alias);
        }
    } else if (strcmp(type_ch, "dns-01") == 0 && hook_ok) {
        fputs("challenge = dns-01\n", f);
    } else if (rc == CP_OK) {
        snprintf(name, sizeof name, "%s: CHALLENGETYPE=%s", c->alias, type_ch);
        rc = flow_import_note(
            d->r, "setting", name, source, FLOW_IMPORT_SKIPPED, "%s",
            strcmp(type_ch, "tls-alpn-01") == 0
                ? "dehydrated leaves tls-alpn-01 certificates in ALPNCERTDIR for a TLS server "
                  "to answer with; certpilot answers tls-alpn-01 only with its own listener: "
                  "set 'challenge = tls-alpn-01' and 'standalone = yes' in renewal.conf when "
                  "it may take port 443"
            : strcmp(type_ch, "dns-01") == 0 ? "dns-01 needs a hook (HOOK), which is not usable"
                                             : "not a challenge type dehydrated knows");
    }
    if (hook_ok)
        fprintf(f, "hook = %s\n", hook);
    const char *chain = var(v, "PREFERRED_CHAIN");
    if (chain[0] != '\0' && conf_value_ok(chain))
        fprintf(f, "preferred-chain = %s\n", chain);
    /* PRIVATE_KEY_RENEW=no keeps the key across renewals. */
    if (strcmp(var(v, "PRIVATE_KEY_RENEW"), "no") == 0)
        fputs("reuse-key = yes\n", f);
    if (fclose(f) != 0 && rc == CP_OK)
        rc = cp_err_set(err, CP_ENOMEM, "out of memory");
    return rc;
}

/* A certificate file of certs/<alias>/ (a link to its newest version). */
static enum cp_code cert_file(const char *certdir, const char *file, char **out, size_t *len,
                              struct cp_err *err)
{
    char path[PATH_SIZE];
    enum cp_code rc = path_join(path, certdir, file, err);
    return rc == CP_OK ? read_opt(path, PEM_MAX, out, len, err) : rc;
}

/* STATE/webroots/ALIAS/.well-known/acme-challenge -> `target` (the
 * WELLKNOWN the web server serves): NEW, SAME when that link is there,
 * CONFLICT when something else is. */
static enum cp_code link_webroot(struct dh *d, const char *alias, const char *shim,
                                 const char *target, const char *source, struct cp_err *err)
{
    char wellknown[PATH_SIZE + 16], link[PATH_SIZE + 48], cur[PATH_SIZE], name[600];
    snprintf(wellknown, sizeof wellknown, "%s/.well-known", shim);
    snprintf(link, sizeof link, "%s/acme-challenge", wellknown);
    snprintf(name, sizeof name, "%s: WELLKNOWN=%.400s", alias, target);
    ssize_t n = readlink(link, cur, sizeof cur - 1);
    if (n >= 0) {
        cur[n] = '\0';
        if (strcmp(cur, target) == 0)
            return flow_import_note(d->r, "setting", name, source, FLOW_IMPORT_SAME,
                                    "%s is already a link to it", link);
    }
    if (n >= 0 || access(link, F_OK) == 0 || errno != ENOENT)
        return flow_import_note(d->r, "setting", name, source, FLOW_IMPORT_CONFLICT,
                                "%s is already there and is not a link to %s; it is kept, so "
                                "http-01 may fail until it is one",
                                link, target);
    if (!d->r->dry) {
        enum cp_code rc = cp_dir_ensure(wellknown, 0755, err);
        if (rc != CP_OK)
            return rc;
        if (symlink(target, link) != 0)
            return cp_err_set(err, CP_EIO, "cannot make the link %s: %s", link, strerror(errno));
    }
    return flow_import_note(d->r, "setting", name, source, FLOW_IMPORT_NEW,
                            "the web server serves /.well-known/acme-challenge/ from there, so "
                            "certpilot's webroot for it is %s, whose .well-known/acme-challenge "
                            "is a link to it",
                            shim);
}

static enum cp_code import_cert(struct dh *d, const struct flow_dh_cert *c, struct cp_err *err)
{
    char dir[PATH_SIZE], conf[PATH_SIZE], where[PATH_SIZE + 16];
    char *key = NULL, *cert = NULL, *chain = NULL, *full = NULL, *text = NULL, *joined = NULL;
    char shim[PATH_SIZE] = "", shim_target[PATH_SIZE] = "";
    size_t keylen = 0, certlen = 0, chainlen = 0, fulllen = 0;
    struct flow_dh_vars own = {0}, eff = {0};
    enum cp_code rc;

    snprintf(where, sizeof where, "%s:%u", d->domains_txt, c->line);
    for (size_t i = 0; i < c->nnames; i++) {
        char ident[CAA_IDENT_MAX], base[CAA_IDENT_MAX];
        bool wildcard;
        struct cp_err nerr = {0};
        if (caa_name_normalize(c->names[i], ident, base, &wildcard, &nerr) != CP_OK)
            return flow_import_note(d->r, "certificate", c->alias, where, FLOW_IMPORT_SKIPPED, "%s",
                                    nerr.msg);
    }
    if (c->nnames > NAMES_MAX)
        return flow_import_note(d->r, "certificate", c->alias, where, FLOW_IMPORT_SKIPPED,
                                "more than %d names", NAMES_MAX);
    if ((rc = path_join(dir, d->certdir, c->alias, err)) != CP_OK)
        return rc;
    if (d->domains_d != NULL)
        rc = path_join(conf, d->domains_d, c->alias, err);
    else
        rc = path_join(conf, dir, "config", err);
    /* Its own config, evaluated on top of the main one's values; only the
     * settings dehydrated allows there are taken from it. */
    if (rc == CP_OK)
        rc = vars_copy(&own, &d->vars);
    if (rc == CP_OK)
        rc = vars_copy(&eff, &d->vars);
    if (rc == CP_OK && access(conf, F_OK) == 0) {
        rc = parse_file(conf, &own, d->r, err);
        for (size_t i = 0; rc == CP_OK && i < sizeof per_cert / sizeof per_cert[0]; i++)
            rc = flow_dh_set(&eff, per_cert[i], var(&own, per_cert[i]));
        if (rc == CP_OK) {
            char prefix[300];
            snprintf(prefix, sizeof prefix, "%s: ", c->alias);
            rc = note_unmapped(d->r, &eff, conf, prefix, &d->vars);
        }
    }
    if (rc != CP_OK)
        goto cleanup;
    if ((rc = cert_file(dir, "cert.pem", &cert, &certlen, err)) != CP_OK)
        goto cleanup;
    if (cert == NULL) {
        rc = flow_import_note(d->r, "certificate", c->alias, where, FLOW_IMPORT_SKIPPED,
                              "%s/cert.pem does not exist: dehydrated has not issued it yet "
                              "(certpilot issue can, with the same names)",
                              dir);
        goto cleanup;
    }
    if ((rc = cert_file(dir, "privkey.pem", &key, &keylen, err)) != CP_OK ||
        (rc = cert_file(dir, "chain.pem", &chain, &chainlen, err)) != CP_OK ||
        (rc = cert_file(dir, "fullchain.pem", &full, &fulllen, err)) != CP_OK)
        goto cleanup;
    if (key == NULL) {
        rc = flow_import_note(d->r, "certificate", c->alias, dir, FLOW_IMPORT_SKIPPED,
                              "privkey.pem is missing");
        goto cleanup;
    }
    if (full == NULL) { /* the certificate and its chain, as dehydrated writes it */
        size_t n = certlen + (chain ? chainlen : 0) + 1;
        if ((joined = malloc(n)) == NULL) {
            rc = cp_err_set(err, CP_ENOMEM, "out of memory");
            goto cleanup;
        }
        snprintf(joined, n, "%s%s", cert, chain ? chain : "");
    }
    const char *from = d->config ? d->config : d->basedir;
    if ((rc = settings_text(d, c, &eff, from, &text, shim, shim_target, err)) != CP_OK)
        goto cleanup;
    const struct flow_import_lineage l = {.source = dir,
                                          .name = c->alias,
                                          .privkey_pem = key,
                                          .cert_pem = cert,
                                          .chain_pem = chain ? chain : "",
                                          .fullchain_pem = full ? full : joined,
                                          .settings = text};
    rc = flow_import_lineage(d->st, &l, d->r, err);
    /* the webroot link only for a certificate imported now or before */
    if (rc == CP_OK && shim[0] != '\0' && d->r->n > 0 &&
        (d->r->items[d->r->n - 1].action == FLOW_IMPORT_NEW ||
         d->r->items[d->r->n - 1].action == FLOW_IMPORT_SAME))
        rc = link_webroot(d, c->alias, shim, shim_target, from, err);
cleanup:
    if (key != NULL)
        OPENSSL_cleanse(key, keylen);
    free(key);
    free(cert);
    free(chain);
    free(full);
    free(joined);
    free(text);
    flow_dh_vars_clear(&own);
    flow_dh_vars_clear(&eff);
    return rc;
}

static bool wanted(const struct flow_dh_import_req *req, const char *alias)
{
    for (size_t i = 0; i < req->ncert_names; i++)
        if (strcmp(req->cert_names[i], alias) == 0)
            return true;
    return req->ncert_names == 0;
}

enum cp_code flow_import_dehydrated(struct cp_store *st, const struct flow_dh_import_req *req,
                                    struct flow_import_report *r, struct cp_err *err)
{
    struct dh d = {.st = st, .r = r};
    struct flow_dh_domains doms = {0};
    char config[PATH_SIZE], basedir[PATH_SIZE];
    char *text = NULL;
    size_t len = 0;
    enum cp_code rc;

    /* renewal.conf names paths in the state directory absolutely */
    const char *where = store_where(st);
    char cwd[PATH_SIZE];
    if (realpath(where, d.state_abs) == NULL) {
        if (where[0] == '/')
            snprintf(d.state_abs, sizeof d.state_abs, "%s", where);
        else if (getcwd(cwd, sizeof cwd) != NULL &&
                 (size_t)snprintf(d.state_abs, sizeof d.state_abs, "%s/%s", cwd, where) >=
                     sizeof d.state_abs)
            d.state_abs[0] = '\0';
    }
    /* dehydrated -f FILE: BASEDIR starts as the file's directory. */
    if (req->config != NULL) {
        snprintf(config, sizeof config, "%s", req->config);
        const char *slash = strrchr(config, '/');
        if (req->basedir != NULL)
            snprintf(basedir, sizeof basedir, "%s", req->basedir);
        else if (slash == NULL)
            snprintf(basedir, sizeof basedir, ".");
        else
            snprintf(basedir, sizeof basedir, "%.*s", slash == config ? 1 : (int)(slash - config),
                     config);
    } else {
        snprintf(basedir, sizeof basedir, "%s", req->basedir ? req->basedir : "/etc/dehydrated");
        if ((rc = path_join(config, basedir, "config", err)) != CP_OK)
            return rc;
    }
    if ((rc = flow_dh_defaults(&d.vars, basedir)) != CP_OK) {
        cp_err_set(err, rc, "out of memory");
        goto cleanup;
    }
    if (req->config != NULL || access(config, F_OK) == 0) {
        d.config = config;
        if ((rc = parse_file(config, &d.vars, r, err)) != CP_OK)
            goto cleanup;
        if ((rc = parse_config_d(&d, err)) != CP_OK)
            goto cleanup;
    }
    snprintf(d.basedir, sizeof d.basedir, "%s", var(&d.vars, "BASEDIR"));
    for (size_t n = strlen(d.basedir); n > 1 && d.basedir[n - 1] == '/';)
        d.basedir[--n] = '\0';
    ca_url(var(&d.vars, "CA"), d.ca, sizeof d.ca);
    if (strncmp(d.ca, "https://", 8) != 0) {
        rc = flow_import_note(r, "setting", d.ca, d.config ? d.config : d.basedir,
                              FLOW_IMPORT_SKIPPED,
                              "CA is not an https:// directory URL, which certpilot needs: "
                              "nothing is imported");
        goto cleanup;
    }
    if ((rc = dir_setting(&d, "CERTDIR", "certs", d.certdir, err)) != CP_OK ||
        (rc = dir_setting(&d, "ACCOUNTDIR", "accounts", d.accountdir, err)) != CP_OK ||
        (rc = dir_setting(&d, "DOMAINS_TXT", "domains.txt", d.domains_txt, err)) != CP_OK)
        goto cleanup;
    d.domains_d = var(&d.vars, "DOMAINS_D")[0] ? var(&d.vars, "DOMAINS_D") : NULL;
    rc = note_unmapped(r, &d.vars, d.config ? d.config : d.basedir, "", NULL);
    if (rc == CP_OK)
        rc = import_accounts(&d, err);
    if (rc != CP_OK)
        goto cleanup;

    if ((rc = read_opt(d.domains_txt, CONFIG_MAX, &text, &len, err)) != CP_OK)
        goto cleanup;
    if (text == NULL) {
        rc = flow_import_note(r, "certificate", "domains.txt", d.domains_txt, FLOW_IMPORT_SKIPPED,
                              "does not exist, so dehydrated manages no certificate here (is "
                              "--basedir or --dehydrated-config right?)");
        goto cleanup;
    }
    if ((rc = flow_dh_domains_parse(d.domains_txt, text, len, &doms, r, err)) != CP_OK)
        goto cleanup;
    for (size_t i = 0; i < doms.n && rc == CP_OK; i++)
        if (wanted(req, doms.c[i].alias))
            rc = import_cert(&d, &doms.c[i], err);
    for (size_t i = 0; i < req->ncert_names && rc == CP_OK; i++) {
        bool found = false;
        for (size_t j = 0; j < doms.n && !found; j++)
            found = strcmp(doms.c[j].alias, req->cert_names[i]) == 0;
        if (!found)
            rc = flow_import_note(r, "certificate", req->cert_names[i], d.domains_txt,
                                  FLOW_IMPORT_SKIPPED,
                                  "no line of domains.txt names this certificate (its alias, "
                                  "or its first name when it has none)");
    }
cleanup:
    free(text);
    flow_dh_domains_clear(&doms);
    flow_dh_vars_clear(&d.vars);
    if (rc == CP_ENOMEM && err->msg[0] == '\0')
        cp_err_set(err, rc, "out of memory");
    return rc;
}
