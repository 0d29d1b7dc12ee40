/*
 * flow/import.c - writing what an importer read from another client's files
 * (an account, a certificate with its settings, a hook) into certpilot's
 * store, once: what is already there identically is left as it is, and what
 * is there differently is never replaced.  The source is only read.
 */
#include "flow/flow.h"

#include <errno.h>
#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/civil.h"
#include "common/file.h"

#define HOOK_MAX (1024 * 1024) /* a hook script bigger than this is not a hook */

void flow_import_report_clear(struct flow_import_report *r)
{
    for (size_t i = 0; i < r->n; i++) {
        free(r->items[i].kind);
        free(r->items[i].name);
        free(r->items[i].source);
        free(r->items[i].why);
    }
    free(r->items);
    r->items = NULL;
    r->n = r->cap = 0;
}

const char *flow_import_action_name(enum flow_import_action a)
{
    switch (a) {
    case FLOW_IMPORT_NEW: return "new";
    case FLOW_IMPORT_SAME: return "same";
    case FLOW_IMPORT_CONFLICT: return "conflict";
    case FLOW_IMPORT_SKIPPED: return "skipped";
    }
    return "?";
}

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

#if defined(__GNUC__)
__attribute__((format(printf, 6, 0)))
#endif
static enum cp_code
vnote(struct flow_import_report *r, const char *kind, const char *name, const char *source,
      enum flow_import_action action, const char *fmt, va_list ap)
{
    if (r->n == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 16;
        struct flow_import_item *items = realloc(r->items, cap * sizeof *items);
        if (items == NULL)
            return CP_ENOMEM;
        r->items = items;
        r->cap = cap;
    }
    struct flow_import_item *it = &r->items[r->n];
    memset(it, 0, sizeof *it);
    char why[1024] = "";
    if (fmt != NULL)
        vsnprintf(why, sizeof why, fmt, ap);
    it->kind = strdup(kind);
    it->name = dup_or_null(name);
    it->source = dup_or_null(source);
    it->why = why[0] ? strdup(why) : NULL;
    it->action = action;
    r->n++;
    if (it->kind == NULL || (name && it->name == NULL) || (source && it->source == NULL) ||
        (why[0] && it->why == NULL))
        return CP_ENOMEM;
    return CP_OK;
}

enum cp_code flow_import_note(struct flow_import_report *r, const char *kind, const char *name,
                              const char *source, enum flow_import_action action,
                              const char *why_fmt, ...)
{
    va_list ap;
    va_start(ap, why_fmt);
    enum cp_code rc = vnote(r, kind, name, source, action, why_fmt, ap);
    va_end(ap);
    return rc;
}

/* ------------------------------------------------------------- accounts */

static bool same_key(const struct acme_key *a, const struct acme_key *b)
{
    char ta[44], tb[44];
    return acme_key_thumbprint(a, ta, NULL) == CP_OK && acme_key_thumbprint(b, tb, NULL) == CP_OK &&
           strcmp(ta, tb) == 0;
}

enum cp_code flow_import_account(struct cp_store *st, const struct flow_import_account *a,
                                 struct flow_import_report *r, struct cp_err *err)
{
    struct store_account cur = {0};
    json_t *rec = NULL;
    const char *name = a->url ? a->url : a->directory;
    enum cp_code rc = store_account_load(st, a->directory, &cur, err);
    if (rc != CP_OK)
        goto cleanup;
    const char *cur_url = json_string_value(json_object_get(cur.rec, "url"));
    if (cur.key != NULL || cur_url != NULL) {
        /* Without a URL the key alone says which account it is. */
        bool same_url = a->url == NULL || (cur_url != NULL && strcmp(cur_url, a->url) == 0);
        if (cur.key != NULL && same_url && same_key(cur.key, a->key))
            rc = flow_import_note(r, "account", name, a->source, FLOW_IMPORT_SAME,
                                  "already the account for %s", a->directory);
        else
            rc = flow_import_note(r, "account", name, a->source, FLOW_IMPORT_CONFLICT,
                                  "%s already holds another account for %s (%s); it is kept: "
                                  "import into another --state-dir, or deactivate and remove "
                                  "that one first",
                                  store_where(st), a->directory, cur_url ? cur_url : "no URL yet");
        goto cleanup;
    }
    if (!r->dry) {
        char now[32];
        cp_time_str((long long)time(NULL), now);
        rec = json_pack("{s:s, s:s, s:s, s:s}", "directory", a->directory, "key_type",
                        acme_key_type_name(acme_key_type_of(a->key)), "imported_from", a->source,
                        "imported_at", now);
        if (rec == NULL) {
            rc = cp_err_set(err, CP_ENOMEM, "out of memory");
            goto cleanup;
        }
        if (a->url != NULL)
            json_object_set_new(rec, "url", json_string(a->url));
        if (a->contact != NULL && json_array_size(a->contact) > 0)
            json_object_set_new(rec, "contact", json_deep_copy(a->contact));
        /* The key first: a key without a record is looked up at the CA by
         * the next run, a record without its key would be useless. */
        rc = store_account_save_key(st, a->directory, a->key, err);
        if (rc == CP_OK)
            rc = store_account_save_record(st, a->directory, rec, err);
        if (rc != CP_OK)
            goto cleanup;
    }
    if (a->url != NULL)
        rc = flow_import_note(r, "account", name, a->source, FLOW_IMPORT_NEW,
                              "for %s, with its URL kept (CAA accounturi records still match)",
                              a->directory);
    else /* flow_account_use() asks the CA for the URL of a key without one */
        rc = flow_import_note(r, "account", name, a->source, FLOW_IMPORT_NEW,
                              "its key, without its URL (not stored with it): the first run "
                              "asks %s for the URL of this key (onlyReturnExisting), so it "
                              "stays the same account",
                              a->directory);
cleanup:
    json_decref(rec);
    store_account_clear(&cur);
    return rc;
}

/* ------------------------------------------------------------ lineages */

static X509 *first_cert(const char *pem)
{
    BIO *b = BIO_new_mem_buf(pem, -1);
    X509 *x = b ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
    BIO_free(b);
    return x;
}

/* Does the certificate in `cert_pem` belong to the key in `key_pem`?  A
 * sentence saying why not in `why` when it does not. */
static bool key_matches(const char *key_pem, const char *cert_pem, char *why, size_t size)
{
    struct acme_key *key = NULL;
    X509 *x = first_cert(cert_pem);
    bool ok = false;
    if (x == NULL) {
        snprintf(why, size, "its certificate is not a PEM certificate");
        goto cleanup;
    }
    struct cp_err e = {0};
    if (acme_key_from_pem(key_pem, strlen(key_pem), "the private key", &key, &e) != CP_OK) {
        snprintf(why, size, "its private key cannot be read: %s", e.msg);
        goto cleanup;
    }
    ok = EVP_PKEY_eq(X509_get0_pubkey(x), acme_key_evp(key)) == 1;
    if (!ok)
        snprintf(why, size, "its private key does not belong to its certificate");
cleanup:
    acme_key_free(key);
    X509_free(x);
    return ok;
}

static bool same_cert(const char *a_pem, const char *b_pem)
{
    X509 *a = first_cert(a_pem), *b = first_cert(b_pem);
    bool same = a != NULL && b != NULL && X509_cmp(a, b) == 0;
    X509_free(a);
    X509_free(b);
    return same;
}

enum cp_code flow_import_lineage(struct cp_store *st, const struct flow_import_lineage *l,
                                 struct flow_import_report *r, struct cp_err *err)
{
    char why[600];
    char *cur = NULL;
    size_t curlen = 0;
    json_t *status = NULL;
    enum cp_code rc;
    if (!store_name_valid(l->name))
        return flow_import_note(r, "certificate", l->name, l->source, FLOW_IMPORT_SKIPPED,
                                "\"%s\" cannot name a certpilot lineage (letters, digits, '.', "
                                "'-', '_')",
                                l->name);
    if (!key_matches(l->privkey_pem, l->cert_pem, why, sizeof why))
        return flow_import_note(r, "certificate", l->name, l->source, FLOW_IMPORT_SKIPPED, "%s",
                                why);
    if (store_lineage_exists(st, l->name)) {
        rc = store_current_cert(st, l->name, &cur, &curlen, err);
        if (rc != CP_OK)
            goto cleanup;
        if (cur != NULL && same_cert(cur, l->cert_pem))
            rc = flow_import_note(r, "certificate", l->name, l->source, FLOW_IMPORT_SAME,
                                  "already imported");
        else
            rc = flow_import_note(r, "certificate", l->name, l->source, FLOW_IMPORT_CONFLICT,
                                  "a certificate named %s is already in %s, with another "
                                  "certificate; it is kept (remove it with certpilot delete "
                                  "--cert-name %s to import this one)",
                                  l->name, store_where(st), l->name);
        goto cleanup;
    }
    if (!r->dry) {
        rc = store_lineage_check(st, l->name, err);
        if (rc == CP_OK)
            rc = store_version_add(st, l->name, l->privkey_pem, strlen(l->privkey_pem), l->cert_pem,
                                   l->chain_pem, l->fullchain_pem, err);
        if (rc == CP_OK)
            rc = store_settings_save(st, l->name, l->settings, strlen(l->settings), err);
        if (rc != CP_OK)
            goto cleanup;
        char now[32];
        cp_time_str((long long)time(NULL), now);
        status = store_status_load(st, l->name);
        if (status == NULL) {
            rc = cp_err_set(err, CP_ENOMEM, "out of memory");
            goto cleanup;
        }
        json_object_set_new(status, "imported_from", json_string(l->source));
        json_object_set_new(status, "imported_at", json_string(now));
        rc = store_status_save(st, l->name, status, err);
        if (rc != CP_OK)
            goto cleanup;
    }
    rc = flow_import_note(r, "certificate", l->name, l->source, FLOW_IMPORT_NEW,
                          "its current key and certificate, and its settings");
cleanup:
    json_decref(status);
    free(cur);
    return rc;
}

/* ---------------------------------------------------------------- hooks */

static const char *phase_dir(enum flow_hook_phase phase)
{
    return phase == FLOW_HOOK_PRE ? "pre" : phase == FLOW_HOOK_POST ? "post" : "deploy";
}

enum cp_code flow_import_hook(const char *hooks_dir, enum flow_hook_phase phase,
                              const char *src_path, struct flow_import_report *r,
                              struct cp_err *err)
{
    const char *base = strrchr(src_path, '/');
    base = base ? base + 1 : src_path;
    char dir[4096], dst[4400];
    char *text = NULL, *old = NULL;
    size_t len = 0, oldlen = 0;
    struct stat sb;
    enum cp_code rc;
    if ((size_t)snprintf(dir, sizeof dir, "%s/%s", hooks_dir, phase_dir(phase)) >= sizeof dir)
        return cp_err_set(err, CP_EINVAL, "%s: path too long", hooks_dir);
    snprintf(dst, sizeof dst, "%s/%s", dir, base);
    if (stat(src_path, &sb) != 0 || !S_ISREG(sb.st_mode) || (sb.st_mode & S_IXUSR) == 0)
        return flow_import_note(r, "hook", base, src_path, FLOW_IMPORT_SKIPPED,
                                "not an executable file, so it never ran as a hook");
    rc = cp_file_read(src_path, HOOK_MAX, &text, &len, err);
    if (rc != CP_OK)
        goto cleanup;
    if (access(dst, F_OK) == 0) {
        rc = cp_file_read(dst, HOOK_MAX, &old, &oldlen, err);
        if (rc != CP_OK)
            goto cleanup;
        if (oldlen == len && memcmp(old, text, len) == 0)
            rc =
                flow_import_note(r, "hook", base, src_path, FLOW_IMPORT_SAME, "already in %s", dir);
        else
            rc = flow_import_note(r, "hook", base, src_path, FLOW_IMPORT_CONFLICT,
                                  "%s already holds another hook of that name; it is kept", dir);
        goto cleanup;
    }
    if (!r->dry) {
        mode_t mode = geteuid() == 0 ? 0755 : 0700;
        rc = cp_dir_ensure(dir, mode, err);
        if (rc == CP_OK)
            rc = cp_file_write_atomic(dst, text, len, mode, err);
        if (rc != CP_OK)
            goto cleanup;
    }
    rc = flow_import_note(r, "hook", base, src_path, FLOW_IMPORT_NEW, "copied to %s", dir);
cleanup:
    free(old);
    free(text);
    return rc;
}
