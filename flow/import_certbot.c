/*
 * flow/import_certbot.c - reading a certbot configuration directory
 * (/etc/letsencrypt) into certpilot's store through the import core
 * (flow/import.c): its accounts, its lineages with their settings, and its
 * renewal-hooks.  certbot's files are only read.
 *
 * Layout read (certbot 0.x to 2.x):
 *   accounts/<host[:port]/path of the CA's directory URL>/<id>/
 *       private_key.json  the account key as a private JWK
 *       regr.json         {"uri": account URL, "body": {... "contact"}}
 *   renewal/NAME.conf     the lineage's paths and [renewalparams]
 *   live/NAME/{cert,privkey,chain,fullchain}.pem  links into archive/NAME/ (the current version)
 *   renewal-hooks/{pre,post,deploy}/  executables run around every renewal
 */
#define _GNU_SOURCE /* scandir, alphasort, asprintf */
#include "flow/flow.h"

#include <dirent.h>
#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "common/conf.h"
#include "common/file.h"

#define CONF_MAX      (256 * 1024)  /* a renewal conf is a few hundred bytes */
#define PEM_MAX       (1024 * 1024) /* a certificate chain or key */
#define JSON_MAX      (64 * 1024)   /* private_key.json, regr.json */
#define NAMES_MAX     100           /* names of one certificate (issue's limit) */
#define ACCOUNT_MAX   64            /* accounts read from one directory */
#define ACCOUNT_DEPTH 6             /* accounts/<host>/<path...>/<id> */

/* ------------------------------------------------------- the conf parser */

void flow_certbot_conf_clear(struct flow_certbot_conf *c)
{
    for (size_t i = 0; i < c->n; i++) {
        struct flow_certbot_entry *e = &c->e[i];
        for (size_t j = 0; j < e->n; j++)
            free(e->values[j]);
        free(e->values);
        free(e->section);
        free(e->key);
    }
    free(c->e);
    c->e = NULL;
    c->n = 0;
}

const struct flow_certbot_entry *flow_certbot_conf_get(const struct flow_certbot_conf *c,
                                                       const char *section, const char *key)
{
    for (size_t i = c->n; i-- > 0;)
        if (strcmp(c->e[i].section, section) == 0 && strcmp(c->e[i].key, key) == 0)
            return &c->e[i];
    return NULL;
}

const char *flow_certbot_conf_str(const struct flow_certbot_conf *c, const char *section,
                                  const char *key)
{
    const struct flow_certbot_entry *e = flow_certbot_conf_get(c, section, key);
    return e != NULL && e->n > 0 ? e->values[0] : NULL;
}

static bool blank(char c)
{
    return c == ' ' || c == '\t';
}

static char *dup_n(const char *s, size_t n)
{
    char *d = malloc(n + 1);
    if (d != NULL) {
        memcpy(d, s, n);
        d[n] = '\0';
    }
    return d;
}

/* One value of a line (p..end): a quoted string, or unquoted text (not
 * starting with a quote) up to ',' or '#', trimmed.  *p moves past it.  NULL
 * with *bad set when it is not one (an unclosed quote, a multi-line value). */
static char *one_value(const char **p, const char *end, const char **bad)
{
    const char *s = *p;
    while (s < end && blank(*s))
        s++;
    if (s < end && (*s == '"' || *s == '\'')) {
        char q = *s;
        if (end - s >= 3 && s[1] == q && s[2] == q) {
            /* '''text''' on one line; configobj's multi-line form is not read */
            const char *close = NULL;
            for (const char *t = s + 3; t + 2 < end && close == NULL; t++)
                if (t[0] == q && t[1] == q && t[2] == q)
                    close = t;
            if (close == NULL) {
                *bad = "a multi-line (triple-quoted) value is not supported";
                return NULL;
            }
            *p = close + 3;
            return dup_n(s + 3, (size_t)(close - s - 3));
        }
        const char *close = memchr(s + 1, q, (size_t)(end - s - 1));
        if (close == NULL) {
            *bad = "a quote is not closed";
            return NULL;
        }
        *p = close + 1;
        return dup_n(s + 1, (size_t)(close - s - 1));
    }
    /* Unquoted: quotes inside are plain characters (configobj writes
     * `echo "$X" > f` as it is), only ',' and '#' end it. */
    const char *t = s;
    while (t < end && *t != ',' && *t != '#')
        t++;
    const char *v_end = t;
    while (v_end > s && blank(v_end[-1]))
        v_end--;
    *p = t;
    return dup_n(s, (size_t)(v_end - s));
}

static enum cp_code add_value(struct flow_certbot_entry *e, char *v)
{
    char **vs = realloc(e->values, (e->n + 1) * sizeof *vs);
    if (vs == NULL) {
        free(v);
        return CP_ENOMEM;
    }
    e->values = vs;
    e->values[e->n++] = v;
    return CP_OK;
}

/* The values after '=' (p..end) into `e`; a message in *bad when they are
 * not readable. */
static enum cp_code parse_values(const char *p, const char *end, struct flow_certbot_entry *e,
                                 const char **bad)
{
    for (;;) {
        while (p < end && blank(*p))
            p++;
        if (p == end || *p == '#') {
            if (e->n == 0 && !e->list) /* "key =": an empty string */
                return add_value(e, dup_n("", 0));
            return CP_OK;
        }
        if (*p == ',') { /* "key = ,": an empty list */
            if (e->n > 0 || e->list) {
                *bad = "two commas in a row";
                return CP_EINVAL;
            }
            e->list = true;
            p++;
            continue;
        }
        char *v = one_value(&p, end, bad);
        if (v == NULL)
            return *bad != NULL ? CP_EINVAL : CP_ENOMEM;
        if (add_value(e, v) != CP_OK)
            return CP_ENOMEM;
        while (p < end && blank(*p))
            p++;
        if (p == end || *p == '#')
            return CP_OK;
        if (*p != ',') {
            *bad = "text after a quoted value (a ',' or a comment expected)";
            return CP_EINVAL;
        }
        e->list = true;
        p++;
        while (p < end && blank(*p))
            p++;
        if (p == end || *p == '#')
            return CP_OK; /* "a, b," */
    }
}

/* "[name]" or "[[name]]" (p..end, p at the first '['): the new section
 * path in `section`. */
static const char *parse_section(const char *p, const char *end, char *section, size_t size)
{
    size_t depth = 0;
    while (p < end && *p == '[')
        depth++, p++;
    const char *name = p;
    while (p < end && *p != ']')
        p++;
    const char *name_end = p;
    size_t closing = 0;
    while (p < end && *p == ']')
        closing++, p++;
    while (p < end && blank(*p))
        p++;
    if (closing != depth || (p < end && *p != '#'))
        return "a section header is not closed like it opens";
    while (name < name_end && blank(*name))
        name++;
    while (name_end > name && blank(name_end[-1]))
        name_end--;
    if (name == name_end || depth > 2)
        return "a section header without a name, or nested too deep";
    if (memchr(name, '/', (size_t)(name_end - name)) != NULL)
        return "a '/' in a section name";
    if (depth == 1) {
        if ((size_t)(name_end - name) >= size)
            return "a section name too long";
        snprintf(section, size, "%.*s", (int)(name_end - name), name);
    } else {
        char *slash = strchr(section, '/');
        if (slash != NULL)
            *slash = '\0';
        size_t have = strlen(section);
        if (have == 0)
            return "a [[subsection]] outside a [section]";
        if (have + 1 + (size_t)(name_end - name) >= size)
            return "a section name too long";
        snprintf(section + have, size - have, "/%.*s", (int)(name_end - name), name);
    }
    return NULL;
}

enum cp_code flow_certbot_conf_parse(const char *label, const char *text, size_t len,
                                     struct flow_certbot_conf *out, struct cp_err *err)
{
    char section[512] = "";
    unsigned line = 0;
    const char *bad = NULL;
    enum cp_code rc = CP_OK;
    memset(out, 0, sizeof *out);
    for (const char *p = text, *stop = text + len; p < stop && rc == CP_OK;) {
        const char *nl = memchr(p, '\n', (size_t)(stop - p));
        const char *end = nl ? nl : stop, *next = nl ? nl + 1 : stop;
        line++;
        if (end > p && end[-1] == '\r')
            end--;
        while (p < end && blank(*p))
            p++;
        if (memchr(p, '\0', (size_t)(end - p)) != NULL) {
            bad = "a NUL byte";
            break;
        }
        if (p == end || *p == '#') {
            p = next;
            continue;
        }
        if (*p == '[') {
            bad = parse_section(p, end, section, sizeof section);
            if (bad != NULL)
                break;
            p = next;
            continue;
        }
        /* key = values; the key may be quoted */
        const char *k = p, *k_end;
        if (*p == '"' || *p == '\'') {
            const char *close = memchr(p + 1, *p, (size_t)(end - p - 1));
            if (close == NULL) {
                bad = "a quoted key is not closed";
                break;
            }
            k = p + 1;
            k_end = close;
            p = close + 1;
            while (p < end && blank(*p))
                p++;
        } else {
            while (p < end && *p != '=')
                p++;
            k_end = p;
            while (k_end > k && blank(k_end[-1]))
                k_end--;
        }
        if (p == end || *p != '=' || k_end == k) {
            bad = "not \"key = value\", a [section] or a comment";
            break;
        }
        p++;
        struct flow_certbot_entry *e = realloc(out->e, (out->n + 1) * sizeof *e);
        if (e == NULL) {
            rc = CP_ENOMEM;
            break;
        }
        out->e = e;
        e = &out->e[out->n++];
        memset(e, 0, sizeof *e);
        e->line = line;
        e->section = strdup(section);
        e->key = dup_n(k, (size_t)(k_end - k));
        if (e->section == NULL || e->key == NULL) {
            rc = CP_ENOMEM;
            break;
        }
        rc = parse_values(p, end, e, &bad);
        p = next;
    }
    if (bad != NULL)
        rc = cp_err_set(err, CP_EINVAL, "%s:%u: %s", label, line, bad);
    else if (rc == CP_ENOMEM)
        rc = cp_err_set(err, CP_ENOMEM, "out of memory reading %s", label);
    if (rc != CP_OK)
        flow_certbot_conf_clear(out);
    return rc;
}

/* ------------------------------------------------------------- lineages */

/* One renewal/NAME.conf, read. */
struct lineage {
    char name[256];
    char conf_path[4400];
    struct flow_certbot_conf conf;
    const char *server, *account; /* borrowed from conf */
    bool ok;                      /* read and parsed */
};

static bool is_true(const char *v)
{
    return v != NULL && (strcasecmp(v, "true") == 0 || strcasecmp(v, "yes") == 0 ||
                         strcasecmp(v, "on") == 0 || strcmp(v, "1") == 0);
}

static bool has_newline(const char *s)
{
    return strchr(s, '\n') != NULL || strchr(s, '\r') != NULL;
}

/* A path of the conf, made absolute against the config directory. */
static void conf_path(const struct flow_certbot_import *req, const struct lineage *l,
                      const char *key, const char *file, char *out, size_t size)
{
    const char *v = flow_certbot_conf_str(&l->conf, "", key);
    if (v != NULL && v[0] == '/')
        snprintf(out, size, "%s", v);
    else if (v != NULL && v[0] != '\0')
        snprintf(out, size, "%s/%s", req->config_dir, v);
    else /* certbot always writes them; this is where they would be */
        snprintf(out, size, "%s/live/%s/%s", req->config_dir, l->name, file);
}

/* The DNS names of the certificate `pem` (its SANs, the subject CN first
 * when it is one of them). */
static size_t cert_names(const char *pem, char names[][256], size_t max)
{
    BIO *b = BIO_new_mem_buf(pem, -1);
    X509 *x = b ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
    BIO_free(b);
    if (x == NULL)
        return 0;
    size_t n = 0;
    char cn[256] = "";
    X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, cn, sizeof cn);
    GENERAL_NAMES *gens = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
    for (int pass = 0; pass < 2; pass++) {
        for (int i = 0; i < sk_GENERAL_NAME_num(gens) && n < max; i++) {
            const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
            if (g->type != GEN_DNS)
                continue;
            const ASN1_STRING *s = g->d.dNSName;
            int len = ASN1_STRING_length(s);
            const unsigned char *d = ASN1_STRING_get0_data(s);
            if (len <= 0 || len >= 256 || memchr(d, '\0', (size_t)len) != NULL)
                continue;
            bool is_cn = strlen(cn) == (size_t)len && memcmp(cn, d, (size_t)len) == 0;
            if ((pass == 0) != is_cn)
                continue;
            memcpy(names[n], d, (size_t)len);
            names[n][len] = '\0';
            n++;
        }
    }
    GENERAL_NAMES_free(gens);
    X509_free(x);
    return n;
}

/* certpilot's key-type for certbot's key_type/elliptic_curve/rsa_key_size;
 * NULL when it has none for them (`fallback` when they are not set). */
static const char *key_type_of(const struct flow_certbot_conf *c, const char *fallback)
{
    const char *type = flow_certbot_conf_str(c, "renewalparams", "key_type");
    const char *curve = flow_certbot_conf_str(c, "renewalparams", "elliptic_curve");
    const char *size = flow_certbot_conf_str(c, "renewalparams", "rsa_key_size");
    if (type == NULL)
        type = curve != NULL ? "ecdsa" : size != NULL ? "rsa" : NULL;
    if (type == NULL)
        return fallback;
    if (strcmp(type, "ecdsa") == 0) {
        if (curve == NULL || strcmp(curve, "secp256r1") == 0 || strcmp(curve, "prime256v1") == 0)
            return "ec256";
        return strcmp(curve, "secp384r1") == 0 ? "ec384" : NULL;
    }
    if (strcmp(type, "rsa") == 0) {
        if (size == NULL || strcmp(size, "2048") == 0)
            return "rsa2048";
        return strcmp(size, "3072") == 0 ? "rsa3072" : strcmp(size, "4096") == 0 ? "rsa4096" : NULL;
    }
    return NULL;
}

/* What certpilot has instead of a certbot authenticator it lacks. */
static const char *instead_of(const char *auth)
{
    if (strncmp(auth, "dns-", 4) == 0 || strncmp(auth, "dns_", 4) == 0)
        return "set challenge = dns-01 and hook = a dehydrated-style hook script that publishes "
               "the TXT record";
    if (strcmp(auth, "nginx") == 0 || strcmp(auth, "apache") == 0)
        return "set webroot = the directory the web server serves for "
               "/.well-known/acme-challenge/ (or standalone = yes with http-port)";
    return "set webroot = DIR, or standalone = yes, or challenge = dns-01 with hook = SCRIPT";
}

/* Notes about one lineage's settings, kept until its certificate item is
 * known to be new (a second import says nothing again). */
struct notes {
    char text[4][700];
    size_t n;
};

static void note(struct notes *ns, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
static void note(struct notes *ns, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (ns->n < sizeof ns->text / sizeof ns->text[0])
        vsnprintf(ns->text[ns->n++], sizeof ns->text[0], fmt, ap);
    va_end(ap);
}

/* certpilot's renewal.conf for lineage `l` whose certificate has `names`. */
static char *settings_of(const struct flow_certbot_import *req, const struct lineage *l,
                         char names[][256], size_t n, const char *key_fallback, struct notes *notes)
{
    const struct flow_certbot_conf *c = &l->conf;
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (f == NULL)
        return NULL;
    fprintf(f,
            "# certpilot: settings of the certificate \"%s\", used by `certpilot renew`.\n"
            "# Imported from certbot's %s; edit freely (keys are issue's long options,\n"
            "# see CONFIGURATION in certpilot(1)).\n",
            l->name, l->conf_path);
    fprintf(f, "server = %s\n", l->server);
    for (size_t i = 0; i < n; i++)
        fprintf(f, "domain = %s\n", names[i]);
    const char *kt = key_type_of(c, key_fallback);
    if (kt != NULL)
        fprintf(f, "key-type = %s\n", kt);
    else
        note(notes, "certbot's key settings (key_type, elliptic_curve, rsa_key_size) name no key "
                    "type certpilot has: set key-type = ec256, ec384, rsa2048, rsa3072 or rsa4096");
    if (is_true(flow_certbot_conf_str(c, "renewalparams", "reuse_key")))
        fputs("reuse-key = yes\n", f);
    const char *chain = flow_certbot_conf_str(c, "renewalparams", "preferred_chain");
    if (chain != NULL && chain[0] != '\0')
        fprintf(f, "preferred-chain = %s\n", chain);
    /* certbot 4.0's profile choice (it refuses both at once; required wins here) */
    const char *req_p = flow_certbot_conf_str(c, "renewalparams", "required_profile");
    const char *pref_p = flow_certbot_conf_str(c, "renewalparams", "preferred_profile");
    const char *profile = req_p != NULL && req_p[0] != '\0' ? req_p : pref_p;
    size_t plen = profile != NULL ? strlen(profile) : 0;
    if (plen > 0 && plen <= ACME_PROFILE_NAME_MAX &&
        strspn(profile, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-") ==
            plen)
        fprintf(f, "%s-profile = %s\n", profile == req_p ? "required" : "preferred", profile);
    else if (plen > 0)
        note(notes,
             "certbot's profile \"%s\" is not a profile name; set preferred-profile or "
             "required-profile by hand",
             profile);

    const char *auth = flow_certbot_conf_str(c, "renewalparams", "authenticator");
    if (auth == NULL)
        auth = "(none)";
    if (strcmp(auth, "webroot") == 0) {
        /* One directory for every name: webroot; else each name's own. */
        const char *one = NULL;
        bool several = false, unmapped = false;
        for (size_t i = 0; i < n; i++) {
            const char *d = flow_certbot_conf_str(c, "renewalparams/webroot_map", names[i]);
            if (d == NULL)
                unmapped = true;
            else if (one == NULL)
                one = d;
            else if (strcmp(one, d) != 0)
                several = true;
        }
        const struct flow_certbot_entry *wp =
            flow_certbot_conf_get(c, "renewalparams", "webroot_path");
        const char *fallback = wp != NULL && wp->n > 0 ? wp->values[wp->n - 1] : NULL;
        if (!several &&
            (!unmapped || one == NULL || fallback == NULL || strcmp(fallback, one) == 0) &&
            (one != NULL || fallback != NULL)) {
            fprintf(f, "webroot = %s\n", one != NULL ? one : fallback);
        } else {
            if (fallback != NULL && unmapped)
                fprintf(f, "webroot = %s\n", fallback);
            for (size_t i = 0; i < n; i++) {
                const char *d = flow_certbot_conf_str(c, "renewalparams/webroot_map", names[i]);
                if (d != NULL)
                    fprintf(f, "webroot-map = %s:%s\n", names[i], d);
            }
        }
        if (one == NULL && fallback == NULL)
            note(notes, "certbot's webroot authenticator has no webroot_path or webroot_map here: "
                        "set webroot = DIR");
    } else if (strcmp(auth, "standalone") == 0) {
        fputs("standalone = yes\n", f);
    } else {
        fprintf(f,
                "# certbot renewed this certificate with its \"%s\" authenticator, which\n"
                "# certpilot does not have: %s.\n",
                auth, instead_of(auth));
        note(notes, "certbot's \"%s\" authenticator cannot be carried over: %s before it is due",
             auth, instead_of(auth));
    }
    const char *port = flow_certbot_conf_str(c, "renewalparams", "http01_port");
    if (port != NULL && port[0] != '\0' && strcmp(port, "80") != 0)
        fprintf(f, "http-port = %s\n", port);
    const char *addr = flow_certbot_conf_str(c, "renewalparams", "http01_address");
    if (addr != NULL && addr[0] != '\0')
        fprintf(f, "http-address = %s\n", addr);

    /* certbot runs its hooks through a shell: so does "sh:TEXT". */
    static const char *const hooks[][2] = {{"pre_hook", "pre-hook"},
                                           {"post_hook", "post-hook"},
                                           {"renew_hook", "deploy-hook"},
                                           {"deploy_hook", "deploy-hook"}};
    const char *deploy = NULL;
    for (size_t i = 0; i < sizeof hooks / sizeof hooks[0]; i++) {
        const struct flow_certbot_entry *e = flow_certbot_conf_get(c, "renewalparams", hooks[i][0]);
        if (e != NULL && e->list) { /* configobj quotes a command with a ',' */
            note(notes,
                 "certbot's %s (line %u) reads as a list (a ',' outside quotes), not as one "
                 "command: not carried over; set %s = sh:COMMAND by hand",
                 hooks[i][0], e->line, hooks[i][1]);
            continue;
        }
        const char *h = e != NULL && e->n > 0 ? e->values[0] : NULL;
        if (h == NULL || h[0] == '\0')
            continue;
        if (strlen(h) > CP_CONF_LINE_MAX - 64) { /* one renewal.conf line holds it */
            note(notes,
                 "certbot's %s is %zu bytes long, more than a renewal.conf line holds: put it "
                 "in a script and set %s = PATH",
                 hooks[i][0], strlen(h), hooks[i][1]);
            continue;
        }
        if (strcmp(hooks[i][1], "deploy-hook") == 0) { /* deploy_hook wins over renew_hook */
            deploy = h;
            continue;
        }
        fprintf(f, "%s = sh:%s\n", hooks[i][1], h);
    }
    if (deploy != NULL)
        fprintf(f, "deploy-hook = sh:%s\n", deploy);
    const char *inst = flow_certbot_conf_str(c, "renewalparams", "installer");
    if (inst != NULL && strcmp(inst, "None") != 0 && inst[0] != '\0' && deploy == NULL)
        note(notes,
             "certbot's \"%s\" installer reloaded the server after each renewal; certpilot "
             "does not edit server configurations: set deploy-hook = sh:systemctl reload %s "
             "(and point the server at the certificate's files)",
             inst, inst);
    if (req->keep_live_paths)
        fprintf(f, "install-dir = %s/live/%s\n", req->config_dir, l->name);
    fclose(f);
    return text;
}

/* Read one file for a lineage; NULL (with a note in `why`) when it fails. */
static char *read_pem(const char *path, char *why, size_t size)
{
    char *text = NULL;
    size_t len = 0;
    struct cp_err e = {0};
    if (cp_file_read(path, PEM_MAX, &text, &len, &e) != CP_OK) {
        snprintf(why, size, "%s", e.msg);
        return NULL;
    }
    if (memchr(text, '\0', len) != NULL) {
        snprintf(why, size, "%s is not a PEM file", path);
        OPENSSL_cleanse(text, len);
        free(text);
        return NULL;
    }
    return text;
}

static void free_secret(char *s)
{
    if (s != NULL) {
        OPENSSL_cleanse(s, strlen(s));
        free(s);
    }
}

static enum cp_code find_install_dir(void *ctx, const char *key, const char *value, unsigned line,
                                     struct cp_err *err)
{
    (void)line;
    (void)err;
    char *found = ctx;
    if (strcmp(key, "install-dir") == 0)
        snprintf(found, 4400, "%s", value);
    return CP_OK;
}

/* --keep-live-paths for a lineage imported before without it: install-dir
 * added to its renewal.conf (the rest of the file as it is), unless it has
 * one already. */
static enum cp_code keep_live_later(struct cp_store *st, const struct flow_certbot_import *req,
                                    const struct lineage *l, struct flow_import_report *r,
                                    struct cp_err *err)
{
    char label[4400], want[4400], found[4400] = "";
    char *text = NULL, *out = NULL;
    size_t len = 0;
    snprintf(want, sizeof want, "%s/live/%s", req->config_dir, l->name);
    enum cp_code rc = store_settings_load(st, l->name, &text, &len, label, sizeof label, err);
    if (rc == CP_OK && text != NULL)
        rc = cp_conf_scan(label, text, len, find_install_dir, found, err);
    if (rc == CP_EINVAL) /* a hand edit broke it: say so, change nothing */
        rc = flow_import_note(r, "setting", l->name, label, FLOW_IMPORT_CONFLICT,
                              "install-dir not added: %s", err->msg);
    else if (rc == CP_OK && strcmp(found, want) == 0)
        rc = flow_import_note(r, "setting", l->name, label, FLOW_IMPORT_SAME,
                              "install-dir = %s already", want);
    else if (rc == CP_OK && found[0] != '\0')
        rc = flow_import_note(r, "setting", l->name, label, FLOW_IMPORT_CONFLICT,
                              "its renewal.conf has install-dir = %s; left as it is", found);
    else if (rc == CP_OK) {
        bool nl = len == 0 || text[len - 1] == '\n';
        if (asprintf(&out, "%.*s%sinstall-dir = %s\n", (int)len, text ? text : "", nl ? "" : "\n",
                     want) < 0) {
            out = NULL;
            rc = cp_err_set(err, CP_ENOMEM, "out of memory");
        }
        if (rc == CP_OK && !r->dry)
            rc = store_settings_save(st, l->name, out, strlen(out), err);
        if (rc == CP_OK)
            rc = flow_import_note(r, "setting", l->name, label, FLOW_IMPORT_NEW,
                                  "install-dir = %s added: each renewal also writes its files "
                                  "there",
                                  want);
    }
    free(out);
    free(text);
    return rc;
}

static enum cp_code import_lineage(struct cp_store *st, const struct flow_certbot_import *req,
                                   const struct lineage *l, struct flow_import_report *r,
                                   struct cp_err *err)
{
    char path[4][4400], why[1200] = "";
    static const char *const keys[4][2] = {{"privkey", "privkey.pem"},
                                           {"cert", "cert.pem"},
                                           {"chain", "chain.pem"},
                                           {"fullchain", "fullchain.pem"}};
    char *pem[4] = {NULL};
    char(*names)[256] = NULL;
    char *settings = NULL;
    struct notes notes = {0};
    enum cp_code rc = CP_OK;

    for (size_t i = 0; i < 4; i++) {
        conf_path(req, l, keys[i][0], keys[i][1], path[i], sizeof path[i]);
        pem[i] = read_pem(path[i], why, sizeof why);
        if (pem[i] == NULL) {
            rc = flow_import_note(r, "certificate", l->name, l->conf_path, FLOW_IMPORT_SKIPPED,
                                  "its %s cannot be read: %s", keys[i][0], why);
            goto cleanup;
        }
    }
    names = calloc(NAMES_MAX, sizeof *names);
    if (names == NULL) {
        rc = cp_err_set(err, CP_ENOMEM, "out of memory");
        goto cleanup;
    }
    size_t n = cert_names(pem[1], names, NAMES_MAX);
    if (n == 0) {
        rc = flow_import_note(r, "certificate", l->name, l->conf_path, FLOW_IMPORT_SKIPPED,
                              "its certificate %s names no DNS name (or is not a PEM "
                              "certificate)",
                              path[1]);
        goto cleanup;
    }
    /* The key type when certbot's conf does not say: the current key's. */
    const char *key_fallback = NULL;
    struct acme_key *k = NULL;
    struct cp_err ke = {0};
    if (acme_key_from_pem(pem[0], strlen(pem[0]), path[0], &k, &ke) == CP_OK)
        key_fallback = acme_key_type_name(acme_key_type_of(k));
    acme_key_free(k);
    settings = settings_of(req, l, names, n, key_fallback, &notes);
    if (settings == NULL) {
        rc = cp_err_set(err, CP_ENOMEM, "out of memory");
        goto cleanup;
    }
    struct flow_import_lineage in = {.source = l->conf_path,
                                     .name = l->name,
                                     .privkey_pem = pem[0],
                                     .cert_pem = pem[1],
                                     .chain_pem = pem[2],
                                     .fullchain_pem = pem[3],
                                     .settings = settings};
    rc = flow_import_lineage(st, &in, r, err);
    if (rc != CP_OK || r->n == 0)
        goto cleanup;
    enum flow_import_action done = r->items[r->n - 1].action;
    if (done == FLOW_IMPORT_SAME && req->keep_live_paths)
        rc = keep_live_later(st, req, l, r, err);
    if (rc != CP_OK || done != FLOW_IMPORT_NEW)
        goto cleanup;
    for (size_t i = 0; i < notes.n && rc == CP_OK; i++)
        rc = flow_import_note(r, "setting", l->name, l->conf_path, FLOW_IMPORT_SKIPPED, "%s",
                              notes.text[i]);
    if (rc == CP_OK && req->keep_live_paths)
        rc = flow_import_note(r, "setting", l->name, l->conf_path, FLOW_IMPORT_NEW,
                              "install-dir = %s/live/%s: each renewal also writes its files "
                              "there, where servers configured for certbot already look",
                              req->config_dir, l->name);
cleanup:
    free_secret(pem[0]);
    for (size_t i = 1; i < 4; i++)
        free(pem[i]);
    free(names);
    free(settings);
    return rc;
}

/* renewal/NAME.conf read into `l`; a SKIPPED item when it cannot be. */
static enum cp_code read_lineage(const struct flow_certbot_import *req, const char *file,
                                 struct lineage *l, struct flow_import_report *r)
{
    char *text = NULL;
    size_t len = 0;
    struct cp_err e = {0};
    size_t base = strlen(file) - 5; /* without ".conf" */
    snprintf(l->name, sizeof l->name, "%.*s", (int)base, file);
    snprintf(l->conf_path, sizeof l->conf_path, "%s/renewal/%s", req->config_dir, file);
    enum cp_code rc = cp_file_read(l->conf_path, CONF_MAX, &text, &len, &e);
    if (rc == CP_OK)
        rc = flow_certbot_conf_parse(l->conf_path, text, len, &l->conf, &e);
    free(text);
    if (rc != CP_OK)
        return rc == CP_ENOMEM ? rc
                               : flow_import_note(r, "certificate", l->name, l->conf_path,
                                                  FLOW_IMPORT_SKIPPED, "%s", e.msg);
    l->server = flow_certbot_conf_str(&l->conf, "renewalparams", "server");
    l->account = flow_certbot_conf_str(&l->conf, "renewalparams", "account");
    if (l->server == NULL || strncmp(l->server, "https://", 8) != 0 || has_newline(l->server))
        return flow_import_note(r, "certificate", l->name, l->conf_path, FLOW_IMPORT_SKIPPED,
                                "its [renewalparams] has no https:// server (the CA's "
                                "directory URL)");
    for (size_t i = 0; i < l->conf.n; i++)
        for (size_t j = 0; j < l->conf.e[i].n; j++)
            if (has_newline(l->conf.e[i].values[j]))
                return flow_import_note(r, "certificate", l->name, l->conf_path,
                                        FLOW_IMPORT_SKIPPED, "a value spans lines");
    l->ok = true;
    return CP_OK;
}

static int conf_file(const struct dirent *d)
{
    size_t n = strlen(d->d_name);
    return d->d_name[0] != '.' && n > 5 && strcmp(d->d_name + n - 5, ".conf") == 0;
}

/* ------------------------------------------------------------- accounts */

struct account {
    char dir[4400]; /* accounts/.../<id> */
    char id[256];
    char where[4096]; /* host[:port]/path, from the directory layout */
};

static int not_dot(const struct dirent *d)
{
    return d->d_name[0] != '.';
}

/* Every directory under `dir` holding a private_key.json: an account. */
static void find_accounts(const char *dir, const char *rel, unsigned depth, struct account *out,
                          size_t *n)
{
    struct dirent **ents = NULL;
    int m = depth > ACCOUNT_DEPTH ? -1 : scandir(dir, &ents, not_dot, alphasort);
    for (int i = 0; i < m; i++) {
        char sub[4400], key[4500], subrel[4096];
        struct stat sb;
        int a = snprintf(sub, sizeof sub, "%s/%s", dir, ents[i]->d_name);
        int b = snprintf(subrel, sizeof subrel, "%s%s%s", rel, rel[0] ? "/" : "", ents[i]->d_name);
        snprintf(key, sizeof key, "%s/private_key.json", sub);
        if (a < 0 || (size_t)a >= sizeof sub || b < 0 || (size_t)b >= sizeof subrel ||
            stat(sub, &sb) != 0 || !S_ISDIR(sb.st_mode))
            continue;
        if (stat(key, &sb) == 0 && *n < ACCOUNT_MAX && rel[0] != '\0') {
            struct account *ac = &out[(*n)++];
            snprintf(ac->dir, sizeof ac->dir, "%s", sub);
            snprintf(ac->id, sizeof ac->id, "%s", ents[i]->d_name);
            snprintf(ac->where, sizeof ac->where, "%s", rel);
        } else {
            find_accounts(sub, subrel, depth + 1, out, n);
        }
    }
    for (int i = 0; i < m; i++)
        free(ents[i]);
    free(ents);
}

static json_t *read_json(const char *path, char *why, size_t size)
{
    char *text = NULL;
    size_t len = 0;
    struct cp_err e = {0};
    if (cp_file_read(path, JSON_MAX, &text, &len, &e) != CP_OK) {
        snprintf(why, size, "%s", e.msg);
        return NULL;
    }
    json_error_t je;
    json_t *j = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
    OPENSSL_cleanse(text, len);
    free(text);
    if (j == NULL)
        snprintf(why, size, "%s:%d: %s", path, je.line, je.text);
    return j;
}

static enum cp_code import_account(struct cp_store *st, const struct account *ac,
                                   const char *directory, struct flow_import_report *r,
                                   struct cp_err *err)
{
    char path[4500], why[1200];
    json_t *jwk = NULL, *regr = NULL;
    struct acme_key *key = NULL;
    struct cp_err e = {0};
    enum cp_code rc = CP_OK;

    snprintf(path, sizeof path, "%s/private_key.json", ac->dir);
    jwk = read_json(path, why, sizeof why);
    if (jwk == NULL) {
        rc = flow_import_note(r, "account", ac->id, ac->dir, FLOW_IMPORT_SKIPPED, "%s", why);
        goto cleanup;
    }
    if (acme_key_from_jwk(jwk, path, &key, &e) != CP_OK) {
        rc = flow_import_note(r, "account", ac->id, ac->dir, FLOW_IMPORT_SKIPPED, "%s", e.msg);
        goto cleanup;
    }
    snprintf(path, sizeof path, "%s/regr.json", ac->dir);
    regr = read_json(path, why, sizeof why);
    const char *url = json_string_value(json_object_get(regr, "uri"));
    if (regr == NULL || url == NULL || strncmp(url, "https://", 8) != 0) {
        rc = flow_import_note(r, "account", ac->id, ac->dir, FLOW_IMPORT_SKIPPED,
                              "%s: no https:// account URL (\"uri\")", regr == NULL ? why : path);
        goto cleanup;
    }
    /* certbot 2 writes an empty "body"; older ones kept the contacts there */
    const json_t *contact = json_object_get(json_object_get(regr, "body"), "contact");
    struct flow_import_account in = {.source = ac->dir,
                                     .directory = directory,
                                     .url = url,
                                     .key = key,
                                     .contact = json_is_array(contact) ? contact : NULL};
    rc = flow_import_account(st, &in, r, err);
cleanup:
    acme_key_free(key);
    json_decref(regr);
    if (jwk != NULL) {
        /* the private members are not wiped by jansson: overwrite them */
        const char *k;
        json_t *v;
        json_object_foreach(jwk, k, v)
        {
            if (json_is_string(v) && strcmp(k, "kty") != 0)
                OPENSSL_cleanse((char *)json_string_value(v), json_string_length(v));
        }
    }
    json_decref(jwk);
    return rc;
}

/* The directory URL whose accounts live in `where` (certbot names the
 * directory after the URL's host and path). */
static bool server_is(const char *server, const char *where)
{
    return strncmp(server, "https://", 8) == 0 && strcmp(server + 8, where) == 0;
}

/* ------------------------------------------------------------- the whole */

static bool wanted(const struct flow_certbot_import *req, const char *name)
{
    if (req->nnames == 0)
        return true;
    for (size_t i = 0; i < req->nnames; i++)
        if (strcmp(req->names[i], name) == 0)
            return true;
    return false;
}

static enum cp_code import_hooks(const struct flow_certbot_import *req,
                                 struct flow_import_report *r, struct cp_err *err)
{
    static const char *const phase[3] = {"pre", "post", "deploy"};
    static const enum flow_hook_phase phases[3] = {FLOW_HOOK_PRE, FLOW_HOOK_POST, FLOW_HOOK_DEPLOY};
    enum cp_code rc = CP_OK;
    for (size_t p = 0; p < 3 && rc == CP_OK; p++) {
        char dir[4400], path[4700];
        struct dirent **ents = NULL;
        snprintf(dir, sizeof dir, "%s/renewal-hooks/%s", req->config_dir, phase[p]);
        int m = scandir(dir, &ents, not_dot, alphasort);
        for (int i = 0; i < m; i++) {
            if (rc == CP_OK) {
                snprintf(path, sizeof path, "%s/%s", dir, ents[i]->d_name);
                rc = req->hooks_dir != NULL
                         ? flow_import_hook(req->hooks_dir, phases[p], path, r, err)
                         : flow_import_note(r, "hook", ents[i]->d_name, path, FLOW_IMPORT_SKIPPED,
                                            "no hooks.d to copy it to");
            }
            free(ents[i]);
        }
        free(ents);
    }
    return rc;
}

enum cp_code flow_import_certbot(struct cp_store *st, const struct flow_certbot_import *req,
                                 struct flow_import_report *r, struct cp_err *err)
{
    char dir[4400];
    struct dirent **ents = NULL;
    struct lineage *ls = NULL;
    struct account *acs = NULL;
    size_t nacs = 0;
    bool *done = NULL;
    enum cp_code rc = CP_OK;
    struct stat sb;

    snprintf(dir, sizeof dir, "%s/renewal", req->config_dir);
    if (stat(req->config_dir, &sb) != 0 || !S_ISDIR(sb.st_mode))
        return cp_err_set(err, CP_EINVAL, "%s: %s", req->config_dir,
                          errno == ENOENT ? "no such directory" : "not a directory");
    snprintf(dir, sizeof dir, "%s/accounts", req->config_dir);
    bool have_accounts = stat(dir, &sb) == 0;
    snprintf(dir, sizeof dir, "%s/renewal", req->config_dir);
    if (!have_accounts && stat(dir, &sb) != 0)
        return cp_err_set(err, CP_EINVAL,
                          "%s is not a certbot configuration directory (no accounts/ or "
                          "renewal/ in it; certbot's default is /etc/letsencrypt)",
                          req->config_dir);

    int m = scandir(dir, &ents, conf_file, alphasort);
    size_t nl = m > 0 ? (size_t)m : 0;
    ls = calloc(nl + 1, sizeof *ls);
    acs = calloc(ACCOUNT_MAX, sizeof *acs);
    done = calloc(ACCOUNT_MAX, sizeof *done);
    if (ls == NULL || acs == NULL || done == NULL) {
        rc = cp_err_set(err, CP_ENOMEM, "out of memory");
        goto cleanup;
    }
    for (size_t i = 0; i < nl && rc == CP_OK; i++) {
        size_t n = strlen(ents[i]->d_name);
        char name[256];
        snprintf(name, sizeof name, "%.*s", (int)(n - 5), ents[i]->d_name);
        if (wanted(req, name))
            rc = read_lineage(req, ents[i]->d_name, &ls[i], r);
    }
    for (size_t i = 0; i < req->nnames && rc == CP_OK; i++) {
        bool found = false;
        for (size_t j = 0; j < nl; j++)
            found = found || strcmp(ls[j].name, req->names[i]) == 0;
        if (!found)
            rc = flow_import_note(r, "certificate", req->names[i], NULL, FLOW_IMPORT_SKIPPED,
                                  "certbot has no lineage of that name (no %s/renewal/%s.conf)",
                                  req->config_dir, req->names[i]);
    }

    /* Accounts: those the lineages use, each for its lineages' CA; then
     * (importing everything) the others, for the CA their directory names. */
    snprintf(dir, sizeof dir, "%s/accounts", req->config_dir);
    find_accounts(dir, "", 0, acs, &nacs);
    for (size_t i = 0; i < nl && rc == CP_OK; i++) {
        if (!ls[i].ok || ls[i].account == NULL)
            continue;
        bool found = false;
        for (size_t a = 0; a < nacs && rc == CP_OK; a++) {
            if (strcmp(acs[a].id, ls[i].account) != 0 || !server_is(ls[i].server, acs[a].where))
                continue;
            found = true;
            if (!done[a])
                rc = import_account(st, &acs[a], ls[i].server, r, err);
            done[a] = true;
        }
        if (!found && rc == CP_OK)
            rc = flow_import_note(r, "account", ls[i].account, ls[i].conf_path, FLOW_IMPORT_SKIPPED,
                                  "the account of %s is not in %s/accounts/ (removed?): unless "
                                  "certpilot has one for %s, make one with certpilot account "
                                  "register --server %s",
                                  ls[i].name, req->config_dir, ls[i].server, ls[i].server);
    }
    for (size_t a = 0; a < nacs && rc == CP_OK && req->nnames == 0; a++) {
        if (done[a])
            continue;
        char url[4200];
        snprintf(url, sizeof url, "https://%s", acs[a].where);
        rc = import_account(st, &acs[a], url, r, err);
    }

    for (size_t i = 0; i < nl && rc == CP_OK; i++)
        if (ls[i].ok)
            rc = import_lineage(st, req, &ls[i], r, err);
    if (rc == CP_OK)
        rc = import_hooks(req, r, err);

cleanup:
    for (size_t i = 0; i < nl; i++) {
        if (ls != NULL)
            flow_certbot_conf_clear(&ls[i].conf);
        free(ents[i]);
    }
    free(ents);
    free(ls);
    free(acs);
    free(done);
    return rc;
}
