/*
 * flow/lineage.c - what certpilot decides about a lineage before it orders
 * anything: is the current certificate due, what `issue` on an existing
 * lineage does with the names asked for, and how its settings change.
 *
 * Due: inside the CA's ARI window (RFC 9773) at a point picked at random
 * once per window and kept in the lineage's status, or, when the CA offers
 * no ARI, once less than a third of the lifetime is left (half of it for
 * certificates of less than 10 days), a little earlier by a jitter of its
 * own so that a fleet does not renew at once.  The cached window is asked
 * for again only when it is missing or stale, so that a timer firing every
 * few hours costs little.  Nothing here writes the store or prints.
 */
#include "flow/flow.h"

#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/civil.h"

#define ARI_NONE_RECHECK (24 * 3600) /* a CA without ARI is asked again after a day */

/* ------------------------------------------------------------ the certificate */

static long long asn1_time(const ASN1_TIME *t)
{
    struct tm tm;
    if (t == NULL || ASN1_TIME_to_tm(t, &tm) != 1)
        return 0;
    return (long long)cp_days_from_civil(tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday) * 86400 +
           tm.tm_hour * 3600 + tm.tm_min * 60 + tm.tm_sec;
}

/*
 * What due judgements read from the current certificate, kept in the
 * lineage's status ("certificate") under the store's identity of the
 * current version (store_current_version): a timer run over many lineages
 * then decides without reading or parsing one PEM file.  The entry is
 * trusted only for the very version it names, and only when every member
 * is well formed; anything else and the certificate is read again.
 */
#define CACHE_KEY     "certificate"
#define CACHE_ARI_MAX 512

static bool ari_id_plausible(const char *id)
{
    static const char ok[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.";
    size_t n = strspn(id, ok);
    return n > 0 && n <= CACHE_ARI_MAX && id[n] == '\0';
}

/* Fill `c` from the cached entry when it is about `version`. */
static bool cache_use(struct flow_lineage_cert *c, const char *version)
{
    const json_t *e = json_object_get(c->status, CACHE_KEY);
    const char *v = json_string_value(json_object_get(e, "version"));
    const json_t *nb = json_object_get(e, "not_before"), *na = json_object_get(e, "not_after");
    const json_t *ari = json_object_get(e, "ari_id");
    if (v == NULL || strcmp(v, version) != 0 || !json_is_integer(nb) || !json_is_integer(na) ||
        json_integer_value(na) <= json_integer_value(nb) ||
        !json_is_string(json_object_get(e, "serial")) ||
        !(json_is_null(ari) || (json_is_string(ari) && ari_id_plausible(json_string_value(ari)))))
        return false;
    char *id = json_is_string(ari) ? strdup(json_string_value(ari)) : NULL;
    if (json_is_string(ari) && id == NULL)
        return false;
    c->not_before = (long long)json_integer_value(nb);
    c->not_after = (long long)json_integer_value(na);
    c->have_cert = true;
    c->ari_id = id;
    return true;
}

/* Keep what was read from the certificate of `version` in the status; the
 * caller saves it when it saves the status (status_changed). */
static void cache_put(struct flow_lineage_cert *c, const char *version, const char *serial)
{
    json_t *e = json_pack("{s:s, s:I, s:I, s:s, s:s?}", "version", version, "not_before",
                          (json_int_t)c->not_before, "not_after", (json_int_t)c->not_after,
                          "serial", serial, "ari_id", c->ari_id);
    if (e != NULL && json_object_set_new(c->status, CACHE_KEY, e) == 0)
        c->status_changed = true;
}

enum cp_code flow_lineage_cert_load(struct cp_store *st, const char *name,
                                    struct flow_lineage_cert *c, struct cp_err *err)
{
    char what[400], *pem = NULL, version[STORE_VERSION_ID_MAX] = "", again[STORE_VERSION_ID_MAX];
    char serial[128] = "";
    size_t len = 0;
    struct acme_chain *chain = NULL;
    struct cp_err idle = {0};

    snprintf(c->name, sizeof c->name, "%s", name);
    if (c->status == NULL) /* else the caller read it already */
        c->status = store_status_load(st, name);
    if (c->status == NULL)
        return cp_err_set(err, CP_ENOMEM, "out of memory");
    if (c->version != NULL)
        snprintf(version, sizeof version, "%s", c->version);
    else if (store_current_version(st, name, version, NULL) != CP_OK)
        version[0] = '\0';
    if (version[0] != '\0' && cache_use(c, version))
        return CP_OK;
    snprintf(what, sizeof what, "the current certificate of %s", name);
    enum cp_code rc = store_current_cert(st, name, &pem, &len, err);
    if (rc == CP_OK && pem != NULL)
        rc = acme_chain_parse(pem, len, what, &chain, err);
    if (rc != CP_OK || pem == NULL) { /* an error, or none yet */
        free(pem);
        return rc;
    }
    X509 *leaf = acme_chain_x509(chain, 0);
    c->not_before = asn1_time(X509_get0_notBefore(leaf));
    c->not_after = asn1_time(X509_get0_notAfter(leaf));
    c->have_cert = c->not_after > c->not_before;
    if (acme_ari_cert_id(chain, &c->ari_id, &idle) != CP_OK)
        c->ari_id = NULL; /* judged by its lifetime */
    /* Cached only when the version read is still the current one (a run
     * without the lock may see another made current meanwhile). */
    if (c->have_cert && version[0] != '\0' &&
        acme_chain_serial_hex(chain, serial, sizeof serial, &idle) == CP_OK &&
        store_current_version(st, name, again, NULL) == CP_OK && strcmp(version, again) == 0)
        cache_put(c, version, serial);
    acme_chain_free(chain);
    free(pem);
    return CP_OK;
}

bool flow_lineage_cached_serial(struct cp_store *st, const char *name, const json_t *status,
                                char *out, size_t size)
{
    char version[STORE_VERSION_ID_MAX];
    const json_t *e = json_object_get(status, CACHE_KEY);
    const char *v = json_string_value(json_object_get(e, "version"));
    const char *serial = json_string_value(json_object_get(e, "serial"));
    if (v == NULL || serial == NULL || serial[0] == '\0' ||
        strspn(serial, "0123456789abcdef") != strlen(serial) ||
        store_current_version(st, name, version, NULL) != CP_OK || version[0] == '\0' ||
        strcmp(v, version) != 0)
        return false;
    int n = snprintf(out, size, "%s", serial);
    return n > 0 && (size_t)n < size;
}

void flow_lineage_cert_clear(struct flow_lineage_cert *c)
{
    free(c->ari_id);
    json_decref(c->status);
    memset(c, 0, sizeof *c);
}

/* ------------------------------------------------------------------ due */

static long long json_time(const json_t *o, const char *key)
{
    const json_t *v = json_object_get(o, key);
    return json_is_integer(v) ? (long long)json_integer_value(v) : 0;
}

/* A uniformly random point in [start, end). */
static long long random_in(long long start, long long end)
{
    unsigned long long r = 0;
    if (end <= start)
        return start;
    if (RAND_bytes((unsigned char *)&r, sizeof r) != 1)
        r = (unsigned long long)time(NULL);
    return start + (long long)(r % (unsigned long long)(end - start));
}

/* Does the status hold a window for this very certificate? */
static bool ari_cached(const struct flow_lineage_cert *c)
{
    const json_t *ari = json_object_get(c->status, "ari");
    const char *cached_id = json_string_value(json_object_get(ari, "cert_id"));
    return c->ari_id != NULL && cached_id != NULL && strcmp(cached_id, c->ari_id) == 0;
}

bool flow_lineage_ari_wanted(const struct flow_lineage_cert *c, long long now)
{
    return c->have_cert && c->ari_id != NULL &&
           (!ari_cached(c) || json_time(json_object_get(c->status, "ari"), "next_check") <= now);
}

/* Ask the CA for the certificate's renewal window and cache the answer in
 * its status (the "ari" object); false when nothing could be learnt. */
static bool ari_refresh(struct flow_lineage_cert *c, struct acme_client *client, long long now,
                        const struct flow_log *log)
{
    if (client == NULL)
        return false;
    json_t *old = json_object_get(c->status, "ari");
    json_t *ari = json_object();
    json_object_set_new(ari, "cert_id", json_string(c->ari_id));
    json_object_set_new(ari, "checked", json_integer(now));
    if (acme_client_directory(client)->renewal_info == NULL) {
        json_object_set_new(ari, "offered", json_false());
        json_object_set_new(ari, "next_check", json_integer(now + ARI_NONE_RECHECK));
    } else {
        struct acme_renewal_info ri = {0};
        struct cp_err err = {0};
        if (acme_renewal_info_get(client, c->ari_id, &ri, &err) != CP_OK) {
            flow_say(log, FLOW_WARNING,
                     "warning: %s: the CA's renewal information could not be read (%s); "
                     "judging by the certificate's lifetime this time",
                     c->name, err.msg);
            json_decref(ari);
            return false;
        }
        /* The same window as before: the point picked in it stays. */
        const char *old_id = json_string_value(json_object_get(old, "cert_id"));
        bool same = old_id != NULL && strcmp(old_id, c->ari_id) == 0 &&
                    json_time(old, "start") == ri.start && json_time(old, "end") == ri.end &&
                    json_time(old, "chosen") >= ri.start && json_time(old, "chosen") < ri.end;
        long long chosen = same ? json_time(old, "chosen") : random_in(ri.start, ri.end);
        json_object_set_new(ari, "offered", json_true());
        json_object_set_new(ari, "start", json_integer(ri.start));
        json_object_set_new(ari, "end", json_integer(ri.end));
        json_object_set_new(ari, "chosen", json_integer(chosen));
        json_object_set_new(ari, "next_check", json_integer(now + ri.retry_after));
        if (ri.explanation_url != NULL)
            json_object_set_new(ari, "explanation_url", json_string(ri.explanation_url));
        acme_renewal_info_clear(&ri);
    }
    json_object_set_new(c->status, "ari", ari);
    c->status_changed = true;
    return true;
}

static void judge(struct flow_lineage_cert *c, const struct flow_due_req *req,
                  const struct flow_log *log)
{
    char t1[32], t2[32], t3[32];
    long long now = req->now;
    if (!c->have_cert) {
        c->due = true;
        c->renew_at = now;
        snprintf(c->why, sizeof c->why, "no readable current certificate");
        return;
    }
    bool cached = ari_cached(c);
    if (req->ask_ca && flow_lineage_ari_wanted(c, now))
        cached = ari_refresh(c, req->client, now, log);
    const json_t *ari = json_object_get(c->status, "ari");
    if (cached && json_is_true(json_object_get(ari, "offered"))) {
        c->renew_at = json_time(ari, "chosen");
        c->due = now >= c->renew_at;
        cp_time_str(json_time(ari, "start"), t1);
        cp_time_str(json_time(ari, "end"), t2);
        cp_time_str(c->renew_at, t3);
        const char *url = json_string_value(json_object_get(ari, "explanation_url"));
        snprintf(c->why, sizeof c->why,
                 "the CA's renewal window (ARI) %s to %s; renewing from %s%s%s", t1, t2, t3,
                 url ? "; the CA explains: " : "", url ? url : "");
        return;
    }
    long long life = c->not_after - c->not_before;
    bool brief = life < FLOW_SHORT_LIFETIME;
    c->renew_at = flow_lineage_renew_point(c->name, c->not_before, c->not_after);
    c->due = now >= c->renew_at;
    cp_time_str(c->not_after, t1);
    cp_time_str(c->renew_at, t2);
    snprintf(c->why, sizeof c->why, "expires %s; renewing when %s of its lifetime is left, from %s",
             t1, brief ? "half" : "a third", t2);
}

void flow_lineage_judge(struct flow_lineage_cert *c, const struct flow_due_req *req,
                        const struct flow_log *log)
{
    judge(c, req, log);
    if (req->forced && !c->due) {
        size_t n = strlen(c->why);
        c->due = true;
        snprintf(c->why + n, sizeof c->why - n, "; forced");
    }
}

/* ------------------------------------------------------------ the plan */

/* The name as issue compares names: normalized, else as written. */
static void normalize(const char *name, char out[CAA_IDENT_MAX])
{
    char base[CAA_IDENT_MAX];
    bool wildcard;
    if (caa_name_normalize(name, out, base, &wildcard, NULL) != CP_OK)
        snprintf(out, CAA_IDENT_MAX, "%s", name);
}

static bool same_name(const char *a, const char *b)
{
    char na[CAA_IDENT_MAX], nb[CAA_IDENT_MAX];
    normalize(a, na);
    normalize(b, nb);
    return strcmp(na, nb) == 0;
}

static bool name_in(const char *name, const char *const *list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (same_name(list[i], name))
            return true;
    return false;
}

void flow_lineage_plan(struct cp_store *st, const char *name,
                       const struct flow_lineage_plan_req *req, struct flow_lineage_plan *plan)
{
    memset(plan, 0, sizeof *plan);
    for (size_t i = 0; i < req->ncurrent && plan->ncurrent < FLOW_LINEAGE_NAMES_MAX; i++) {
        char *buf = plan->current_buf[plan->ncurrent];
        normalize(req->current[i], buf);
        if (!name_in(buf, plan->current, plan->ncurrent))
            plan->current[plan->ncurrent++] = buf;
    }
    for (size_t i = 0; i < req->nnames && plan->nadded < FLOW_LINEAGE_NAMES_MAX; i++)
        if (!name_in(req->names[i], plan->current, plan->ncurrent) &&
            !name_in(req->names[i], plan->added, plan->nadded))
            plan->added[plan->nadded++] = req->names[i];
    for (size_t i = 0; i < plan->ncurrent; i++)
        if (!name_in(plan->current[i], req->names, req->nnames))
            plan->dropped[plan->ndropped++] = plan->current[i];

    if (plan->nadded > 0 || plan->ndropped > 0) {
        /* --expand adds only; --replace-names may also drop. */
        if (req->replace_names || (req->expand && plan->ndropped == 0)) {
            plan->order = true;
            plan->reason = FLOW_ORDER_NAMES;
        } else {
            plan->refuse_names = true;
        }
        return;
    }
    if (req->forced || req->revoked) {
        plan->order = true;
        plan->reason = req->forced ? FLOW_ORDER_FORCED : FLOW_ORDER_REVOKED;
        return;
    }
    /* Judged as renew judges it, from what the store holds: nothing is sent. */
    struct flow_lineage_cert c = {0};
    const struct flow_due_req due = {.now = req->now};
    flow_lineage_cert_load(st, name, &c, &plan->cert_err);
    flow_lineage_judge(&c, &due, NULL);
    plan->judged = true;
    plan->renew_at = c.renew_at;
    snprintf(plan->why, sizeof plan->why, "%s", c.why);
    plan->order = c.due;
    plan->unchanged = !c.due;
    plan->reason = c.due ? FLOW_ORDER_DUE : FLOW_ORDER_NONE;
    flow_lineage_cert_clear(&c);
}

/* ------------------------------------------------------------ settings */

/* Keys that exclude each other in renewal.conf: setting one removes the other. */
static const char *exclusive_with(const char *key, size_t nth)
{
    /* webroot-map (per-name webroots) goes with a webroot: a new webroot
     * given without a map replaces the old map too. */
    static const char *const pairs[][2] = {{"webroot", "standalone"},
                                           {"webroot", "webroot-map"},
                                           {"webroot-map", "standalone"},
                                           {"standalone", "webroot"},
                                           {"standalone", "webroot-map"},
                                           {"http-shared", "webroot"},
                                           {"http-shared", "webroot-map"},
                                           {"http-shared", "standalone"},
                                           {"webroot", "http-shared"},
                                           {"webroot-map", "http-shared"},
                                           {"standalone", "http-shared"},
                                           {"hook", "dns-hook"},
                                           {"dns-hook", "hook"},
                                           {"preferred-profile", "required-profile"},
                                           {"required-profile", "preferred-profile"}};
    for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++)
        if (strcmp(pairs[i][0], key) == 0 && nth-- == 0)
            return pairs[i][1];
    return NULL;
}

/* Do the values of `key` in `current` differ from those in `set`? */
static bool key_changed(const struct flow_setting *current, size_t ncurrent,
                        const struct flow_setting *set, size_t n, const char *key)
{
    size_t j = 0;
    for (size_t i = 0; i < ncurrent; i++) {
        if (strcmp(current[i].key, key) != 0)
            continue;
        while (j < n && strcmp(set[j].key, key) != 0)
            j++;
        if (j == n || set[j].value == NULL || strcmp(set[j].value, current[i].value) != 0)
            return true;
        j++;
    }
    while (j < n && strcmp(set[j].key, key) != 0)
        j++;
    return j < n && set[j].value != NULL; /* more values than the file has */
}

/* Is `key` one of the keys `set` changes? */
static bool touched(const struct flow_setting *set, size_t nset, const char *key)
{
    for (size_t i = 0; i < nset; i++)
        if (strcmp(set[i].key, key) == 0)
            return true;
    return false;
}

enum cp_code flow_lineage_settings_rewrite(const char *text, size_t len,
                                           const struct flow_setting *current, size_t ncurrent,
                                           const struct flow_setting *set, size_t nset, char **out,
                                           size_t *outlen, struct cp_err *err)
{
    char *buf = NULL;
    size_t blen = 0;
    enum cp_code rc = CP_OK;
    bool *written = calloc(nset + 1, sizeof *written);
    FILE *f = written ? open_memstream(&buf, &blen) : NULL;
    if (f == NULL) {
        rc = cp_err_set(err, CP_ENOMEM, "out of memory");
        goto cleanup;
    }
    const char *p = text, *end = text + len;
    size_t k = 0; /* the next entry of `current`, in line order */
    for (unsigned line = 1; p < end; line++) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        size_t n = (size_t)((eol ? eol : end) - p);
        const struct flow_setting *e =
            k < ncurrent && current[k].line == line ? &current[k++] : NULL;
        if (e == NULL || !touched(set, nset, e->key)) {
            fprintf(f, "%.*s\n", (int)n, p); /* kept as written, comments included */
        } else {
            /* The first line of a changed key: all its new values go here. */
            for (size_t i = 0; i < nset; i++)
                if (!written[i] && strcmp(set[i].key, e->key) == 0) {
                    if (set[i].value != NULL)
                        fprintf(f, "%s = %s\n", set[i].key, set[i].value);
                    written[i] = true;
                }
        }
        p += n + (eol != NULL);
    }
    for (size_t i = 0; i < nset; i++) /* keys the file did not have yet */
        if (!written[i] && set[i].value != NULL)
            fprintf(f, "%s = %s\n", set[i].key, set[i].value);
    if (fclose(f) != 0 || buf == NULL)
        rc = cp_err_set(err, CP_ENOMEM, "out of memory");
cleanup:
    free(written);
    if (rc != CP_OK) {
        free(buf);
        buf = NULL;
        blen = 0;
    }
    *out = buf;
    *outlen = blen;
    return rc;
}

enum cp_code flow_lineage_settings_update(const char *text, size_t len,
                                          const struct flow_setting *current, size_t ncurrent,
                                          const struct flow_setting *given, size_t ngiven,
                                          char **out, size_t *outlen, json_t *changed,
                                          struct cp_err *err)
{
    enum cp_code rc = CP_OK;
    bool any = false;
    size_t n = 0;
    struct flow_setting *set = calloc(3 * ngiven + 1, sizeof *set);

    *out = NULL;
    *outlen = 0;
    if (set == NULL)
        return cp_err_set(err, CP_ENOMEM, "out of memory");
    for (size_t i = 0; i < ngiven; i++)
        set[n++] = (struct flow_setting){given[i].key, given[i].value, 0};
    for (size_t i = 0; i < ngiven; i++) {
        const char *other;
        for (size_t k = 0; (other = exclusive_with(given[i].key, k)) != NULL; k++)
            if (!touched(set, n, other))
                set[n++] = (struct flow_setting){other, NULL, 0};
    }
    for (size_t i = 0; i < n; i++) {
        if (touched(set, i, set[i].key)) /* counted at its first */
            continue;
        if (key_changed(current, ncurrent, set, n, set[i].key)) {
            any = true;
            if (changed != NULL)
                json_array_append_new(changed, json_string(set[i].key));
        }
    }
    if (any)
        rc = flow_lineage_settings_rewrite(text, len, current, ncurrent, set, n, out, outlen, err);
    free(set);
    return rc;
}

void flow_lineage_record(json_t *status, const char *outcome, int exit_status, const char *message,
                         long long now)
{
    json_object_set_new(status, "last_attempt", json_integer(now));
    json_object_set_new(status, "last_result", json_string(outcome));
    json_object_set_new(status, "last_exit_status", json_integer(exit_status));
    json_object_set_new(status, "last_message", json_string(message ? message : ""));
    if (exit_status == 0)
        json_object_set_new(status, "last_success", json_integer(now));
}

/* ------------------------------------------- renewal timing and profiles */

long long flow_lineage_jitter(const char *name, long long not_before, long long not_after)
{
    long long life = not_after - not_before;
    long long span = life / 1000 * FLOW_JITTER_PERMILLE; /* the jitter is below it */
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    char seed[400];
    if (span <= 0)
        return 0;
    /* The name and the certificate's expiry: a lineage's place in the fleet
     * changes with each certificate, and two runs agree on it. */
    int n = snprintf(seed, sizeof seed, "%s\n%lld", name ? name : "", not_after);
    if (n < 0 ||
        EVP_Digest(seed, (size_t)n < sizeof seed ? (size_t)n : sizeof seed - 1, md, &mdlen,
                   EVP_sha256(), NULL) != 1 ||
        mdlen < 8)
        return 0;
    unsigned long long v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | md[i];
    return (long long)(v % (unsigned long long)span);
}

long long flow_lineage_renew_point(const char *name, long long not_before, long long not_after)
{
    long long life = not_after - not_before;
    if (life <= 0)
        return not_before;
    long long left = life < FLOW_SHORT_LIFETIME ? life / 2 : life / 3;
    /* Earlier, never later, than the rule: the jitter cannot make one late. */
    return not_after - left - flow_lineage_jitter(name, not_before, not_after);
}

bool flow_lineage_window_short(const struct flow_lineage_cert *c, long long interval)
{
    return c->have_cert && c->renew_at > 0 && c->not_after - c->renew_at < 2 * interval;
}

void flow_lineage_set_profile(json_t *status, const char *profile)
{
    if (profile != NULL && profile[0] != '\0')
        json_object_set_new(status, "profile", json_string(profile));
    else
        json_object_del(status, "profile");
}
