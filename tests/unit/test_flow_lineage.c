/* tests/unit/test_flow_lineage.c - flow/lineage.c: is a lineage due (the
 * CA's cached ARI window or a third of the lifetime, forced), the plan of
 * `issue` on an existing lineage (names compared normalized and in any
 * order; --expand / --replace-names; forced, revoked, due or unchanged),
 * and the key-by-key update of its settings (changed keys, exclusive
 * pairs, every other line kept).  The plan reads lineages stored with
 * store_version_add() in a temporary state directory. */
#define _XOPEN_SOURCE 700 /* nftw() */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "common/civil.h"
#include "flow/flow.h"
#include "tests/unit/fixture.h"

#define DAY 86400LL
#define T0  1767225600LL /* 2026-01-01T00:00:00Z */

/* ------------------------------------------------------------- due */

/* A certificate valid from T0 for 90 days (2026-04-01T00:00:00Z), with
 * ARI id `ari_id` (or none) and status `status` (JSON text). */
static void cert_of(struct flow_lineage_cert *c, const char *ari_id, const char *status)
{
    memset(c, 0, sizeof *c);
    snprintf(c->name, sizeof c->name, "a.example");
    c->have_cert = true;
    c->not_before = T0;
    c->not_after = T0 + 90 * DAY;
    c->ari_id = ari_id ? strdup(ari_id) : NULL;
    c->status = json_loads(status, 0, NULL);
    assert_non_null(c->status);
}

/* A cached window for certificate "ID": 2026-02-20 to 2026-02-22, the point
 * picked 2026-02-21T12:00:00Z, asked again at `next_check`. */
static const char *window(long long next_check, const char *url)
{
    static char buf[512];
    snprintf(buf, sizeof buf,
             "{\"ari\": {\"cert_id\": \"ID\", \"offered\": true, \"start\": %lld, "
             "\"end\": %lld, \"chosen\": %lld, \"next_check\": %lld%s%s%s}}",
             T0 + 50 * DAY, T0 + 52 * DAY, T0 + 51 * DAY + DAY / 2, next_check,
             url ? ", \"explanation_url\": \"" : "", url ? url : "", url ? "\"" : "");
    return buf;
}

/* When lineage `name`'s 90-day certificate from T0 is due without ARI: a
 * third of its lifetime left (day 60), less its jitter. */
static long long due90(const char *name)
{
    long long j = flow_lineage_jitter(name, T0, T0 + 90 * DAY);
    assert_true(j >= 0 && j < 90 * DAY * FLOW_JITTER_PERMILLE / 1000);
    return T0 + 60 * DAY - j;
}

/* The reason given for it. */
static const char *why90(const char *name)
{
    static char buf[200];
    char t[32];
    cp_time_str(due90(name), t);
    snprintf(buf, sizeof buf,
             "expires 2026-04-01T00:00:00Z; renewing when a third of its lifetime is left, "
             "from %s",
             t);
    return buf;
}

static void judge(struct flow_lineage_cert *c, long long now, bool forced)
{
    const struct flow_due_req req = {.now = now, .forced = forced};
    flow_lineage_judge(c, &req, NULL);
}

static void due_without_a_certificate(void **state)
{
    (void)state;
    struct flow_lineage_cert c = {0};
    c.status = json_object();
    judge(&c, T0, false);
    assert_true(c.due);
    assert_int_equal(c.renew_at, T0);
    assert_string_equal(c.why, "no readable current certificate");
    assert_false(flow_lineage_ari_wanted(&c, T0));
    flow_lineage_cert_clear(&c);
}

/* Without ARI: from when a third of the lifetime is left (day 60 of 90),
 * less the lineage's jitter. */
static void due_by_lifetime(void **state)
{
    (void)state;
    struct flow_lineage_cert c;
    cert_of(&c, NULL, "{}");
    judge(&c, due90("a.example") - 1, false);
    assert_false(c.due);
    assert_int_equal(c.renew_at, due90("a.example"));
    assert_string_equal(c.why, why90("a.example"));
    judge(&c, due90("a.example"), false);
    assert_true(c.due);
    assert_false(c.status_changed);
    flow_lineage_cert_clear(&c);
}

/* A cached window of this certificate decides, also past its next check
 * when the CA is not asked. */
static void due_by_cached_window(void **state)
{
    (void)state;
    struct flow_lineage_cert c;
    cert_of(&c, "ID", window(T0 + 40 * DAY, NULL));
    judge(&c, T0 + 51 * DAY, false);
    assert_false(c.due);
    assert_int_equal(c.renew_at, T0 + 51 * DAY + DAY / 2);
    assert_string_equal(c.why, "the CA's renewal window (ARI) 2026-02-20T00:00:00Z to "
                               "2026-02-22T00:00:00Z; renewing from 2026-02-21T12:00:00Z");
    judge(&c, T0 + 51 * DAY + DAY / 2, false);
    assert_true(c.due);
    flow_lineage_cert_clear(&c);

    cert_of(&c, "ID", window(T0 + 40 * DAY, "https://ca.example/why"));
    judge(&c, T0, false);
    assert_string_equal(c.why, "the CA's renewal window (ARI) 2026-02-20T00:00:00Z to "
                               "2026-02-22T00:00:00Z; renewing from 2026-02-21T12:00:00Z; the "
                               "CA explains: https://ca.example/why");
    flow_lineage_cert_clear(&c);
}

/* A window cached for another certificate, or a CA without ARI: the lifetime. */
static void cached_window_of_another_certificate(void **state)
{
    (void)state;
    struct flow_lineage_cert c;
    cert_of(&c, "OTHER", window(T0 + 100 * DAY, NULL));
    judge(&c, T0, false);
    assert_int_equal(c.renew_at, due90("a.example"));
    assert_non_null(strstr(c.why, "a third of its lifetime"));
    assert_true(flow_lineage_ari_wanted(&c, T0));
    flow_lineage_cert_clear(&c);

    cert_of(&c, "ID", "{\"ari\": {\"cert_id\": \"ID\", \"offered\": false, \"next_check\": 0}}");
    judge(&c, T0, false);
    assert_int_equal(c.renew_at, due90("a.example"));
    flow_lineage_cert_clear(&c);
}

/* The CA is wanted when the window is missing or stale; when it cannot be
 * reached, the stale window is not used and nothing is cached. */
static void stale_window_and_unreachable_ca(void **state)
{
    (void)state;
    struct flow_lineage_cert c;
    cert_of(&c, "ID", window(T0 + 10 * DAY, NULL));
    assert_false(flow_lineage_ari_wanted(&c, T0 + 10 * DAY - 1));
    assert_true(flow_lineage_ari_wanted(&c, T0 + 10 * DAY));
    const struct flow_due_req req = {.now = T0 + 10 * DAY, .ask_ca = true, .client = NULL};
    flow_lineage_judge(&c, &req, NULL);
    assert_int_equal(c.renew_at, due90("a.example"));
    assert_false(c.status_changed);
    /* a fresh window is used without asking */
    const struct flow_due_req fresh = {.now = T0, .ask_ca = true, .client = NULL};
    flow_lineage_judge(&c, &fresh, NULL);
    assert_int_equal(c.renew_at, T0 + 51 * DAY + DAY / 2);
    flow_lineage_cert_clear(&c);

    cert_of(&c, NULL, "{}"); /* no ARI id: never asked */
    assert_false(flow_lineage_ari_wanted(&c, T0));
    flow_lineage_cert_clear(&c);
}

static void forced(void **state)
{
    (void)state;
    struct flow_lineage_cert c;
    cert_of(&c, NULL, "{}");
    judge(&c, T0, true);
    assert_true(c.due);
    assert_int_equal(c.renew_at, due90("a.example"));
    char forced_why[250];
    snprintf(forced_why, sizeof forced_why, "%s; forced", why90("a.example"));
    assert_string_equal(c.why, forced_why);
    judge(&c, T0 + 70 * DAY, true); /* due anyway: not said to be forced */
    assert_null(strstr(c.why, "forced"));
    flow_lineage_cert_clear(&c);
}

/* certbot's rule by lifetime: 45 days renew with 15 left, 6 days with 3
 * left (half: under 10 days), each earlier by its jitter only. */
static void due_by_lifetime_45_and_6_days(void **state)
{
    (void)state;
    static const struct {
        long long life, left;
        const char *rule;
    } cases[] = {{90 * DAY, 30 * DAY, "a third"},
                 {45 * DAY, 15 * DAY, "a third"},
                 {10 * DAY, 10 * DAY / 3, "a third"},
                 {10 * DAY - 1, (10 * DAY - 1) / 2, "half"},
                 {6 * DAY, 3 * DAY, "half"},
                 {160 * 3600, 80 * 3600, "half"}}; /* shortlived's 160 hours */
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct flow_lineage_cert c;
        cert_of(&c, NULL, "{}");
        c.not_after = T0 + cases[i].life;
        long long j = flow_lineage_jitter(c.name, T0, c.not_after);
        judge(&c, T0, false);
        assert_int_equal(c.renew_at, c.not_after - cases[i].left - j);
        char rule[64];
        snprintf(rule, sizeof rule, "renewing when %s of its lifetime is left", cases[i].rule);
        assert_non_null(strstr(c.why, rule));
        assert_false(c.due);
        judge(&c, c.renew_at, false);
        assert_true(c.due);
        flow_lineage_cert_clear(&c);
    }
}

/* The jitter: the same for one certificate, below 3 % of the lifetime
 * (never making a renewal later than the rule, nor one past expiry),
 * spread between lineages and between certificates of one lineage. */
static void jitter_bounds(void **state)
{
    (void)state;
    static const long long lives[] = {90 * DAY, 45 * DAY, 6 * DAY, 3600, 30, 1, 0};
    for (size_t i = 0; i < sizeof lives / sizeof lives[0]; i++) {
        long long life = lives[i], lo = life, hi = -1, sum = 0;
        long long span = life / 1000 * FLOW_JITTER_PERMILLE;
        bool differ = false;
        for (int k = 0; k < 200; k++) {
            char name[32];
            snprintf(name, sizeof name, "host%d.example", k);
            long long j = flow_lineage_jitter(name, T0, T0 + life);
            assert_int_equal(j, flow_lineage_jitter(name, T0, T0 + life)); /* stable */
            assert_true(j >= 0);
            assert_true(span == 0 ? j == 0 : j < span);
            long long at = flow_lineage_renew_point(name, T0, T0 + life);
            long long left = life < FLOW_SHORT_LIFETIME ? life / 2 : life / 3;
            assert_true(at <= T0 + life - left); /* never later than the rule */
            assert_true(life == 0 || at > T0);   /* never before issuance */
            if (life >= 6 * DAY) /* a 6-day certificate keeps over 2.8 days to renew */
                assert_true(T0 + life - at >= left);
            differ |= j != flow_lineage_jitter(name, T0, T0 + life + 1);
            lo = j < lo ? j : lo;
            hi = j > hi ? j : hi;
            sum += j;
        }
        if (span >= 1000) { /* spread over the span, not bunched */
            assert_true(lo < span / 10);
            assert_true(hi > span - span / 10);
            assert_true(sum / 200 > span / 4 && sum / 200 < span * 3 / 4);
            assert_true(differ);
        }
    }
    /* 6 days: a few hours at most. */
    assert_true(6 * DAY / 1000 * FLOW_JITTER_PERMILLE < 5 * 3600);
}

/* The window from renew_at to expiry against the timer. */
static void window_short_for_the_timer(void **state)
{
    (void)state;
    struct flow_lineage_cert c;
    cert_of(&c, NULL, "{}");
    judge(&c, T0, false);
    assert_false(flow_lineage_window_short(&c, FLOW_TIMER_INTERVAL)); /* 90 days */
    c.not_after = T0 + 6 * DAY;
    judge(&c, T0, false);
    assert_false(flow_lineage_window_short(&c, FLOW_TIMER_INTERVAL)); /* 6 days: ~3 left */
    c.not_after = T0 + 20 * 3600;                                     /* 20 hours: 10 left */
    judge(&c, T0, false);
    assert_true(flow_lineage_window_short(&c, FLOW_TIMER_INTERVAL));
    assert_false(flow_lineage_window_short(&c, 3600));
    c.have_cert = false;
    judge(&c, T0, false);
    assert_false(flow_lineage_window_short(&c, FLOW_TIMER_INTERVAL));
    flow_lineage_cert_clear(&c);
}

/* The profile kept in the status. */
static void profile_in_status(void **state)
{
    (void)state;
    json_t *st = json_object();
    flow_lineage_set_profile(st, "shortlived");
    assert_string_equal(json_string_value(json_object_get(st, "profile")), "shortlived");
    flow_lineage_set_profile(st, "");
    assert_null(json_object_get(st, "profile"));
    flow_lineage_set_profile(st, "classic");
    flow_lineage_set_profile(st, NULL);
    assert_null(json_object_get(st, "profile"));
    json_decref(st);
}

/* -------------------------------------------------------- the plan */

static char tmp[256], state_dir[300];
static struct cp_store *S;

static void store_cert(const char *name, const char *cert)
{
    char *key = NULL, *made = cert ? NULL : fixture_cert(7, T0, (long long)(90) * DAY, &key);
    struct cp_err err = {0};
    if (cert != NULL) {
        struct acme_key *k = NULL;
        size_t klen = 0;
        assert_int_equal(acme_key_generate(ACME_KEY_EC256, &k, &err), CP_OK);
        assert_int_equal(acme_key_to_pem(k, &key, &klen, &err), CP_OK);
        acme_key_free(k);
    }
    const char *pem = cert ? cert : made;
    assert_int_equal(store_version_add(S, name, key, strlen(key), pem, "", pem, &err), CP_OK);
    free(key);
    free(made);
}

static int setup(void **st)
{
    (void)st;
    struct cp_err err = {0};
    snprintf(tmp, sizeof tmp, "/tmp/cp-flow-lineage-XXXXXX");
    assert_non_null(mkdtemp(tmp));
    snprintf(state_dir, sizeof state_dir, "%s/state", tmp);
    assert_int_equal(mkdir(state_dir, 0700), 0);
    assert_int_equal(store_fs_open(state_dir, &S, &err), CP_OK);
    store_cert("good", NULL);          /* valid 2026-01-01 to 2026-04-01 */
    store_cert("broken", "not a PEM"); /* unreadable */
    return 0;
}

static int teardown(void **st)
{
    (void)st;
    store_close(S);
    S = NULL;
    return fixture_remove_tree(tmp) == 0 ? 0 : -1;
}

static struct flow_lineage_plan plan; /* large: not on the stack */

static void plan_of(const char *lineage, const char *const *names, size_t n,
                    const char *const *current, size_t ncurrent, unsigned flags, long long now)
{
    const struct flow_lineage_plan_req req = {
        .names = names,
        .nnames = n,
        .current = current,
        .ncurrent = ncurrent,
        .expand = flags & 1,
        .replace_names = flags & 2,
        .forced = flags & 4,
        .revoked = flags & 8,
        .now = now,
    };
    flow_lineage_plan(S, lineage, &req, &plan);
    assert_int_equal(plan.order + plan.unchanged + plan.refuse_names, 1);
}
enum { EXPAND = 1, REPLACE = 2, FORCED = 4, REVOKED = 8 };

/* Case, a trailing dot, order and repeats make no difference. */
static void same_names_normalized(void **state)
{
    (void)state;
    const char *const current[] = {"B.Example.", "a.example", "b.example"};
    const char *const names[] = {"b.example", "a.example"};
    plan_of("good", names, 2, current, 3, 0, T0 + 10 * DAY);
    assert_int_equal(plan.nadded, 0);
    assert_int_equal(plan.ndropped, 0);
    assert_int_equal(plan.ncurrent, 2);
    assert_string_equal(plan.current[0], "b.example");
    assert_string_equal(plan.current[1], "a.example");
    assert_true(plan.unchanged);
    assert_true(plan.judged);
    assert_int_equal(plan.reason, FLOW_ORDER_NONE);
    assert_int_equal(plan.renew_at, due90("good"));
    assert_string_equal(plan.why, why90("good"));
    assert_int_equal(plan.cert_err.code, CP_OK);
}

/* Added and dropped names against --expand and --replace-names. */
static void names_rule_table(void **state)
{
    (void)state;
    const char *const current[] = {"a.example", "b.example"};
    const char *const more[] = {"a.example", "b.example", "c.example", "C.example"};
    const char *const fewer[] = {"a.example"};
    const char *const other[] = {"a.example", "c.example"};
    const struct {
        const char *const *names;
        size_t n;
        unsigned flags;
        bool order;
        size_t added, dropped;
    } rows[] = {
        {more, 4, 0, false, 1, 0},
        {more, 4, EXPAND, true, 1, 0},
        {more, 4, REPLACE, true, 1, 0},
        {more, 4, FORCED, false, 1, 0},
        {fewer, 1, 0, false, 0, 1},
        {fewer, 1, EXPAND, false, 0, 1},
        {fewer, 1, REPLACE, true, 0, 1},
        {other, 2, EXPAND, false, 1, 1},
        {other, 2, REPLACE, true, 1, 1},
        {other, 2, EXPAND | REPLACE, true, 1, 1},
        {other, 2, FORCED | REVOKED, false, 1, 1},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        plan_of("good", rows[i].names, rows[i].n, current, 2, rows[i].flags, T0);
        assert_int_equal(plan.order, rows[i].order);
        assert_int_equal(plan.refuse_names, !rows[i].order);
        assert_int_equal(plan.reason, rows[i].order ? FLOW_ORDER_NAMES : FLOW_ORDER_NONE);
        assert_int_equal(plan.nadded, rows[i].added);
        assert_int_equal(plan.ndropped, rows[i].dropped);
        assert_false(plan.judged);
    }
    /* added points at the name as asked; dropped at the lineage's */
    plan_of("good", other, 2, current, 2, 0, T0);
    assert_ptr_equal(plan.added[0], other[1]);
    assert_string_equal(plan.dropped[0], "b.example");
    assert_string_equal(plan.current[1], "b.example");
}

/* Same names: forced, then revoked, then due decide; else unchanged. */
static void same_names_order(void **state)
{
    (void)state;
    const char *const names[] = {"a.example"};
    plan_of("good", names, 1, names, 1, FORCED | REVOKED, T0);
    assert_true(plan.order);
    assert_int_equal(plan.reason, FLOW_ORDER_FORCED);
    assert_false(plan.judged);
    plan_of("good", names, 1, names, 1, REVOKED, T0);
    assert_int_equal(plan.reason, FLOW_ORDER_REVOKED);
    assert_false(plan.judged);
    plan_of("good", names, 1, names, 1, 0, due90("good"));
    assert_true(plan.order);
    assert_int_equal(plan.reason, FLOW_ORDER_DUE);
    assert_true(plan.judged);
    plan_of("good", names, 1, names, 1, EXPAND | REPLACE, due90("good") - 1);
    assert_true(plan.unchanged);
}

/* An unreadable certificate is due; the reason it could not be read is kept. */
static void unreadable_certificate(void **state)
{
    (void)state;
    const char *const names[] = {"a.example"};
    plan_of("broken", names, 1, names, 1, 0, T0);
    assert_true(plan.order);
    assert_int_equal(plan.reason, FLOW_ORDER_DUE);
    assert_string_equal(plan.why, "no readable current certificate");
    assert_int_not_equal(plan.cert_err.code, CP_OK);
    assert_non_null(strstr(plan.cert_err.msg, "broken"));
}

/* ------------------------------------------- the certificate's cache */

/* Load lineage `name` with `status` (JSON text; NULL: as stored). */
static void load_with(const char *name, const char *status, struct flow_lineage_cert *c)
{
    struct cp_err err = {0};
    memset(c, 0, sizeof *c);
    if (status != NULL) {
        c->status = json_loads(status, 0, NULL);
        assert_non_null(c->status);
    }
    assert_int_equal(flow_lineage_cert_load(S, name, c, &err), CP_OK);
}

/* The entry as text, with `key` set to the JSON `value` (NULL: removed). */
static char *entry_with(const json_t *status, const char *key, const char *value)
{
    json_t *st = json_deep_copy(status);
    json_t *e = json_object_get(st, "certificate");
    assert_non_null(e);
    if (value == NULL)
        json_object_del(e, key);
    else
        json_object_set_new(e, key, json_loads(value, JSON_DECODE_ANY, NULL));
    char *text = json_dumps(st, 0);
    json_decref(st);
    return text;
}

/* A first load reads the certificate and caches what it read under the
 * current version; a second, with that status, reads nothing: a value
 * changed in the cache shows through. */
static void cache_filled_then_used(void **state)
{
    (void)state;
    struct flow_lineage_cert c;
    char version[STORE_VERSION_ID_MAX], serial[64];
    struct cp_err err = {0};
    load_with("good", NULL, &c);
    assert_true(c.have_cert);
    assert_int_equal(c.not_before, T0);
    assert_int_equal(c.not_after, T0 + 90 * DAY);
    assert_true(c.status_changed);
    assert_int_equal(store_current_version(S, "good", version, &err), CP_OK);
    assert_true(version[0] != '\0');
    json_t *e = json_object_get(c.status, "certificate");
    assert_string_equal(json_string_value(json_object_get(e, "version")), version);
    assert_int_equal(json_integer_value(json_object_get(e, "not_after")), T0 + 90 * DAY);
    assert_string_equal(json_string_value(json_object_get(e, "serial")), "7");
    if (c.ari_id != NULL)
        assert_string_equal(json_string_value(json_object_get(e, "ari_id")), c.ari_id);
    assert_true(flow_lineage_cached_serial(S, "good", c.status, serial, sizeof serial));
    assert_string_equal(serial, "7");
    char *text = entry_with(c.status, "not_after", "1800000000");
    char *id = c.ari_id ? strdup(c.ari_id) : NULL;
    flow_lineage_cert_clear(&c);

    load_with("good", text, &c);
    assert_true(c.have_cert);
    assert_int_equal(c.not_after, 1800000000LL); /* from the cache, not the file */
    assert_false(c.status_changed);
    if (id != NULL)
        assert_string_equal(c.ari_id, id);
    flow_lineage_cert_clear(&c);
    free(text);
    free(id);
}

/* Another version made current: the cached entry is about the old one and
 * is not trusted; the new certificate is read and cached. */
static void cache_of_another_version(void **state)
{
    (void)state;
    struct flow_lineage_cert c;
    char serial[64];
    load_with("good", NULL, &c);
    char *old = json_dumps(c.status, 0);
    flow_lineage_cert_clear(&c);

    char *key = NULL, *pem = fixture_cert(8, T0 + 10 * DAY, 30 * DAY, &key);
    struct cp_err err = {0};
    assert_int_equal(store_version_add(S, "good", key, strlen(key), pem, "", pem, &err), CP_OK);
    free(key);
    free(pem);
    json_t *st = json_loads(old, 0, NULL);
    assert_false(flow_lineage_cached_serial(S, "good", st, serial, sizeof serial));
    json_decref(st);
    load_with("good", old, &c);
    assert_int_equal(c.not_before, T0 + 10 * DAY);
    assert_int_equal(c.not_after, T0 + 40 * DAY);
    assert_true(c.status_changed);
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(c.status, "certificate"), "serial")),
        "8");
    flow_lineage_cert_clear(&c);
    free(old);
}

/* The current version's cert.pem replaced by hand (same stamp): not
 * trusted either. */
static void cache_of_a_replaced_file(void **state)
{
    (void)state;
    struct flow_lineage_cert c;
    char path[600], target[256];
    load_with("good", NULL, &c);
    char *old = json_dumps(c.status, 0);
    flow_lineage_cert_clear(&c);

    snprintf(path, sizeof path, "%s/certs/good/current", state_dir);
    ssize_t n = readlink(path, target, sizeof target - 1);
    assert_true(n > 0);
    target[n] = '\0';
    snprintf(path, sizeof path, "%s/certs/good/%s/cert.pem", state_dir, target);
    char *key = NULL, *pem = fixture_cert(9, T0 + 5 * DAY, 20 * DAY, &key);
    FILE *f = fopen(path, "w"); /* in place: the same inode */
    assert_non_null(f);
    assert_int_equal(fputs(pem, f) >= 0, 1);
    assert_int_equal(fclose(f), 0);
    free(key);
    free(pem);
    load_with("good", old, &c);
    assert_int_equal(c.not_before, T0 + 5 * DAY);
    assert_int_equal(c.not_after, T0 + 25 * DAY);
    assert_true(c.status_changed);
    flow_lineage_cert_clear(&c);
    free(old);
}

/* A damaged entry for the current version: the certificate is read
 * instead, and the entry written anew. */
static void cache_damaged(void **state)
{
    (void)state;
    struct flow_lineage_cert c;
    load_with("good", NULL, &c);
    json_t *fresh = json_incref(c.status);
    flow_lineage_cert_clear(&c);
    const struct {
        const char *key, *value;
    } damage[] = {
        {"not_after", "\"2027\""}, {"not_after", "1767225600"}, /* not after not_before */
        {"not_before", NULL},      {"version", "\"other\""},          {"version", "17"},
        {"serial", NULL},          {"ari_id", "\"../../directory\""}, {"ari_id", "42"},
    };
    for (size_t i = 0; i < sizeof damage / sizeof damage[0]; i++) {
        char *text = entry_with(fresh, damage[i].key, damage[i].value);
        load_with("good", text, &c);
        assert_true(c.have_cert);
        assert_int_equal(c.not_before, T0);
        assert_int_equal(c.not_after, T0 + 90 * DAY);
        assert_true(c.status_changed);
        assert_true(json_equal(json_object_get(c.status, "certificate"),
                               json_object_get(fresh, "certificate")));
        flow_lineage_cert_clear(&c);
        free(text);
    }
    /* not an object at all */
    load_with("good", "{\"certificate\": [1, 2]}", &c);
    assert_int_equal(c.not_after, T0 + 90 * DAY);
    assert_true(json_is_object(json_object_get(c.status, "certificate")));
    flow_lineage_cert_clear(&c);
    json_decref(fresh);
}

/* An unreadable certificate caches nothing. */
static void cache_nothing_unreadable(void **state)
{
    (void)state;
    struct flow_lineage_cert c = {0};
    struct cp_err err = {0};
    assert_int_not_equal(flow_lineage_cert_load(S, "broken", &c, &err), CP_OK);
    assert_false(c.have_cert);
    assert_false(c.status_changed);
    assert_null(json_object_get(c.status, "certificate"));
    flow_lineage_cert_clear(&c);
}

/* ------------------------------------------------------ settings */

static const char *const conf_text = "# mine\n"
                                     "server = https://ca/dir\n"
                                     "domain = a.example\n"
                                     "\n"
                                     "deploy_hook = /usr/local/bin/reload nginx   # by hand\n"
                                     "domain = b.example\n"
                                     "webroot = /srv/www";
/* conf_text as cli_conf_parse() reads it ('_' in keys turned into '-'). */
static const struct flow_setting conf_entries[] = {
    {"server", "https://ca/dir", 2},
    {"domain", "a.example", 3},
    {"deploy-hook", "/usr/local/bin/reload nginx   # by hand", 5},
    {"domain", "b.example", 6},
    {"webroot", "/srv/www", 7},
};
#define NCONF (sizeof conf_entries / sizeof conf_entries[0])

static char *rewrite(const struct flow_setting *set, size_t n)
{
    char *out = NULL;
    size_t len = 0;
    struct cp_err err = {0};
    assert_int_equal(flow_lineage_settings_rewrite(conf_text, strlen(conf_text), conf_entries,
                                                   NCONF, set, n, &out, &len, &err),
                     CP_OK);
    assert_int_equal(strlen(out), len);
    return out;
}

/* Only the keys given change; comments, order and other keys stay. */
static void rewrite_key_by_key(void **state)
{
    (void)state;
    const struct flow_setting set[] = {
        {"domain", "a.example", 0},
        {"domain", "c.example", 0},
        {"key-type", "ec384", 0},
        {"webroot", NULL, 0},
    };
    char *out = rewrite(set, 4);
    assert_string_equal(out, "# mine\n"
                             "server = https://ca/dir\n"
                             "domain = a.example\n"
                             "domain = c.example\n"
                             "\n"
                             "deploy_hook = /usr/local/bin/reload nginx   # by hand\n"
                             "key-type = ec384\n");
    free(out);
    /* A key written with '_' is the same key: replaced where it was. */
    const struct flow_setting hook[] = {{"deploy-hook", "/bin/true", 0}};
    out = rewrite(hook, 1);
    assert_non_null(strstr(out, "domain = a.example\n\ndeploy-hook = /bin/true\ndomain = b"));
    assert_null(strstr(out, "reload nginx"));
    free(out);
    /* Nothing to change: the same text (with a final newline). */
    char *same = NULL;
    size_t len = 0;
    struct cp_err err = {0};
    const struct flow_setting ab = {"a", "b", 1};
    assert_int_equal(
        flow_lineage_settings_rewrite("a = b\n# c\n", 10, &ab, 1, NULL, 0, &same, &len, &err),
        CP_OK);
    assert_string_equal(same, "a = b\n# c\n");
    free(same);
}

/* The update: which keys change, and the text when one does. */
static char *update(const struct flow_setting *given, size_t n, json_t *changed)
{
    char *out = (char *)"x";
    size_t len = 1;
    struct cp_err err = {0};
    assert_int_equal(flow_lineage_settings_update(conf_text, strlen(conf_text), conf_entries, NCONF,
                                                  given, n, &out, &len, changed, &err),
                     CP_OK);
    assert_true(out == NULL ? len == 0 : strlen(out) == len);
    return out;
}

static void assert_keys(json_t *changed, const char *const *keys, size_t n)
{
    assert_int_equal(json_array_size(changed), n);
    for (size_t i = 0; i < n; i++)
        assert_string_equal(json_string_value(json_array_get(changed, i)), keys[i]);
    json_array_clear(changed);
}

static void update_changed_keys(void **state)
{
    (void)state;
    json_t *changed = json_array();
    /* the values the file has: nothing changes, no text */
    const struct flow_setting same[] = {
        {"domain", "a.example", 0}, {"domain", "b.example", 0}, {"server", "https://ca/dir", 0}};
    assert_null(update(same, 3, changed));
    assert_keys(changed, NULL, 0);
    /* fewer values, more values, another value, a new key */
    const struct flow_setting fewer[] = {{"domain", "a.example", 0}};
    char *out = update(fewer, 1, changed);
    assert_keys(changed, (const char *const[]){"domain"}, 1);
    assert_null(strstr(out, "b.example"));
    free(out);
    const struct flow_setting more[] = {{"domain", "a.example", 0},
                                        {"domain", "b.example", 0},
                                        {"domain", "c.example", 0},
                                        {"server", "https://ca/dir", 0}};
    free(update(more, 4, changed));
    assert_keys(changed, (const char *const[]){"domain"}, 1);
    const struct flow_setting other[] = {{"server", "https://other/dir", 0},
                                         {"key-type", "rsa2048", 0}};
    out = update(other, 2, changed);
    assert_keys(changed, (const char *const[]){"server", "key-type"}, 2);
    assert_non_null(strstr(out, "# mine\nserver = https://other/dir\ndomain = a.example\n"));
    assert_non_null(strstr(out, "webroot = /srv/www\nkey-type = rsa2048\n"));
    free(out);
    /* `changed` may be NULL */
    out = update(other, 2, NULL);
    assert_non_null(out);
    free(out);
    json_decref(changed);
}

/* Setting one key of an exclusive pair removes the other. */
static void update_exclusive_pairs(void **state)
{
    (void)state;
    json_t *changed = json_array();
    const struct flow_setting standalone[] = {{"standalone", "yes", 0}};
    char *out = update(standalone, 1, changed);
    assert_keys(changed, (const char *const[]){"standalone", "webroot"}, 2);
    assert_null(strstr(out, "webroot"));
    assert_non_null(strstr(out, "domain = b.example\nstandalone = yes\n"));
    free(out);
    /* the other half absent from the file: only the key given changes */
    const struct flow_setting hook[] = {{"hook", "/usr/local/bin/hook.sh", 0}};
    out = update(hook, 1, changed);
    assert_keys(changed, (const char *const[]){"hook"}, 1);
    assert_non_null(strstr(out, "webroot = /srv/www\nhook = /usr/local/bin/hook.sh\n"));
    free(out);
    /* the same webroot again: nothing changes */
    const struct flow_setting webroot[] = {{"webroot", "/srv/www", 0}};
    assert_null(update(webroot, 1, changed));
    assert_keys(changed, NULL, 0);
    json_decref(changed);
}

/* The two profile settings exclude each other: one given removes the other. */
static void update_profile_pair(void **state)
{
    (void)state;
    static const char text[] = "domain = a.example\npreferred-profile = tlsserver\n";
    const struct flow_setting file[] = {{"domain", "a.example", 1},
                                        {"preferred-profile", "tlsserver", 2}};
    const struct flow_setting given[] = {{"required-profile", "shortlived", 0}};
    json_t *changed = json_array();
    struct cp_err err = {0};
    char *out = NULL;
    size_t len = 0;
    assert_int_equal(flow_lineage_settings_update(text, strlen(text), file, 2, given, 1, &out, &len,
                                                  changed, &err),
                     CP_OK);
    assert_string_equal(out, "domain = a.example\nrequired-profile = shortlived\n");
    assert_int_equal(json_array_size(changed), 2);
    free(out);
    json_decref(changed);
}

/* The per-name webroots go with the webroot: a new webroot given without a
 * map, or standalone, removes the map lines. */
static void update_webroot_map(void **state)
{
    (void)state;
    static const char text[] = "webroot = /srv/b\nwebroot-map = a.example:/srv/a\n";
    const struct flow_setting file[] = {{"webroot", "/srv/b", 1},
                                        {"webroot-map", "a.example:/srv/a", 2}};
    json_t *changed = json_array();
    struct cp_err err = {0};
    char *out = NULL;
    size_t len = 0;
#define UPDATE(given, n)                                                                           \
    assert_int_equal(flow_lineage_settings_update(text, strlen(text), file, 2, given, n, &out,     \
                                                  &len, changed, &err),                            \
                     CP_OK)
    const struct flow_setting webroot[] = {{"webroot", "/srv/c", 0}};
    UPDATE(webroot, 1);
    assert_keys(changed, (const char *const[]){"webroot", "webroot-map"}, 2);
    assert_string_equal(out, "webroot = /srv/c\n");
    free(out);
    const struct flow_setting standalone[] = {{"standalone", "yes", 0}};
    UPDATE(standalone, 1);
    assert_keys(changed, (const char *const[]){"standalone", "webroot", "webroot-map"}, 3);
    assert_string_equal(out, "standalone = yes\n");
    free(out);
    const struct flow_setting same[] = {{"webroot", "/srv/b", 0},
                                        {"webroot-map", "a.example:/srv/a", 0}};
    UPDATE(same, 2);
    assert_keys(changed, NULL, 0);
    assert_null(out);
    const struct flow_setting two[] = {{"webroot", "/srv/b", 0},
                                       {"webroot-map", "a.example:/srv/a", 0},
                                       {"webroot-map", "c.example:/srv/a", 0}};
    UPDATE(two, 3);
    assert_keys(changed, (const char *const[]){"webroot-map"}, 1);
    assert_string_equal(out, "webroot = /srv/b\nwebroot-map = a.example:/srv/a\n"
                             "webroot-map = c.example:/srv/a\n");
    free(out);
#undef UPDATE
    json_decref(changed);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(due_without_a_certificate),
        cmocka_unit_test(due_by_lifetime),
        cmocka_unit_test(due_by_cached_window),
        cmocka_unit_test(cached_window_of_another_certificate),
        cmocka_unit_test(stale_window_and_unreachable_ca),
        cmocka_unit_test(forced),
        cmocka_unit_test(due_by_lifetime_45_and_6_days),
        cmocka_unit_test(jitter_bounds),
        cmocka_unit_test(window_short_for_the_timer),
        cmocka_unit_test(profile_in_status),
        cmocka_unit_test_setup_teardown(same_names_normalized, setup, teardown),
        cmocka_unit_test_setup_teardown(names_rule_table, setup, teardown),
        cmocka_unit_test_setup_teardown(same_names_order, setup, teardown),
        cmocka_unit_test_setup_teardown(unreadable_certificate, setup, teardown),
        cmocka_unit_test_setup_teardown(cache_filled_then_used, setup, teardown),
        cmocka_unit_test_setup_teardown(cache_of_another_version, setup, teardown),
        cmocka_unit_test_setup_teardown(cache_of_a_replaced_file, setup, teardown),
        cmocka_unit_test_setup_teardown(cache_damaged, setup, teardown),
        cmocka_unit_test_setup_teardown(cache_nothing_unreadable, setup, teardown),
        cmocka_unit_test(rewrite_key_by_key),
        cmocka_unit_test(update_changed_keys),
        cmocka_unit_test(update_exclusive_pairs),
        cmocka_unit_test(update_webroot_map),
        cmocka_unit_test(update_profile_pair),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
