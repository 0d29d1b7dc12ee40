/* tests/unit/test_flow_fleet.c - flow/fleet.c: the steps of a renewal on a
 * shared store.  A filesystem store (not shared: the lock granted at once,
 * no versions, nothing to sync), and the same store given the shared-store
 * entries of a fake backend (store/store_int.h) that plays the other hosts:
 * a lock held by another host while it stores a new version, a lock that
 * cannot be had, a version that did not move. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "flow/flow.h"
#include "store/store_int.h"
#include "tests/unit/fixture.h"

static char tmp[64];
static struct cp_store *S;
static struct store_ops fake_ops; /* the fs store's, with the shared entries below */

/* What the other hosts do, and what this one asked. */
static struct {
    char version[64];    /* the shared current version */
    char after_wait[64]; /* "": the lock is free; else another host holds it and stores this */
    bool refuse;         /* the lock cannot be had in time */
    int locks, unlocks, syncs, waits;
    char holder_told[64]; /* what `waiting` was told */
    char deployed[64];    /* the version deployed locally */
} fake;

static enum cp_code fake_lock(struct cp_store *st, const char *name, unsigned timeout_s,
                              void (*waiting)(void *ctx, const char *holder), void *ctx,
                              struct store_lineage_lock **out, struct cp_err *err)
{
    (void)name;
    (void)timeout_s;
    if (fake.refuse || fake.after_wait[0]) {
        if (waiting != NULL)
            waiting(ctx, "hostB pid 42");
    }
    if (fake.refuse)
        return cp_err_set(err, CP_ETIMEOUT, "the lock is held by hostB pid 42");
    if (fake.after_wait[0]) /* hostB renewed, then let go */
        snprintf(fake.version, sizeof fake.version, "%s", fake.after_wait);
    *out = calloc(1, sizeof **out);
    assert_non_null(*out);
    (*out)->st = st;
    fake.locks++;
    return CP_OK;
}

static bool fake_held(const struct store_lineage_lock *l)
{
    (void)l;
    return true;
}

static void fake_unlock(struct store_lineage_lock *l)
{
    fake.unlocks++;
    free(l);
}

static enum cp_code fake_version(struct cp_store *st, const char *name,
                                 char out[STORE_VERSION_ID_MAX], struct cp_err *err)
{
    (void)st;
    (void)name;
    (void)err;
    snprintf(out, STORE_VERSION_ID_MAX, "%s", fake.version);
    return CP_OK;
}

static enum cp_code fake_sync(struct cp_store *st, const char *name, bool *changed,
                              struct cp_err *err)
{
    (void)st;
    (void)name;
    (void)err;
    fake.syncs++;
    *changed = strcmp(fake.deployed, fake.version) != 0;
    snprintf(fake.deployed, sizeof fake.deployed, "%s", fake.version);
    return CP_OK;
}

static void told(void *ctx, const char *holder)
{
    (void)ctx;
    fake.waits++;
    snprintf(fake.holder_told, sizeof fake.holder_told, "%s", holder);
}

static int setup(void **state)
{
    (void)state;
    struct cp_err err = {0};
    snprintf(tmp, sizeof tmp, "/tmp/cp-fleet-XXXXXX");
    assert_non_null(mkdtemp(tmp));
    assert_int_equal(store_fs_open(tmp, &S, &err), CP_OK);
    memset(&fake, 0, sizeof fake);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    store_close(S);
    S = NULL;
    assert_int_equal(fixture_remove_tree(tmp), 0);
    return 0;
}

/* The store as a shared one: the fake's entries in a copy of its table. */
static void make_shared(void)
{
    fake_ops = *S->ops;
    fake_ops.lineage_lock = fake_lock;
    fake_ops.lineage_lock_held = fake_held;
    fake_ops.lineage_unlock = fake_unlock;
    fake_ops.current_version = fake_version;
    fake_ops.lineage_sync = fake_sync;
    S->ops = &fake_ops;
}

static void test_not_shared(void **state)
{
    (void)state;
    struct cp_err err = {0};
    char version[STORE_VERSION_ID_MAX] = "x";
    bool changed = true;
    assert_false(store_shared(S));
    assert_int_equal(flow_fleet_sync(S, "a.example", version, &changed, &err), CP_OK);
    assert_string_equal(version, "");
    assert_false(changed);
    struct flow_fleet_claim c;
    assert_int_equal(flow_fleet_claim(S, "a.example", version, 5, told, NULL, NULL, &c, &err),
                     CP_OK);
    assert_non_null(c.lock); /* granted at once: the run lock keeps runs apart */
    assert_true(store_lineage_lock_held(c.lock));
    assert_false(c.elsewhere);
    assert_int_equal(fake.waits, 0);
    flow_fleet_release(&c);
    assert_null(c.lock);
    flow_fleet_release(&c); /* again: no-op */
}

static void test_sync_deploys_another_hosts_version(void **state)
{
    (void)state;
    struct cp_err err = {0};
    char version[STORE_VERSION_ID_MAX];
    bool changed = false;
    make_shared();
    snprintf(fake.version, sizeof fake.version, "v2");
    snprintf(fake.deployed, sizeof fake.deployed, "v1");
    assert_int_equal(flow_fleet_sync(S, "a.example", version, &changed, &err), CP_OK);
    assert_string_equal(version, "v2");
    assert_true(changed);
    assert_string_equal(fake.deployed, "v2");
    /* and once deployed, nothing more */
    assert_int_equal(flow_fleet_sync(S, "a.example", version, &changed, &err), CP_OK);
    assert_false(changed);
}

static void test_claim_orders_when_nobody_renewed(void **state)
{
    (void)state;
    struct cp_err err = {0};
    struct flow_fleet_claim c;
    make_shared();
    snprintf(fake.version, sizeof fake.version, "v1");
    snprintf(fake.deployed, sizeof fake.deployed, "v1");
    assert_int_equal(flow_fleet_claim(S, "a.example", "v1", 5, told, NULL, NULL, &c, &err), CP_OK);
    assert_false(c.elsewhere);
    assert_non_null(c.lock);
    assert_string_equal(c.version, "v1");
    assert_int_equal(fake.syncs, 0);
    assert_int_equal(fake.unlocks, 0); /* held until released */
    flow_fleet_release(&c);
    assert_int_equal(fake.unlocks, 1);
}

static void test_claim_after_another_host_renewed(void **state)
{
    (void)state;
    struct cp_err err = {0};
    struct flow_fleet_claim c;
    make_shared();
    snprintf(fake.version, sizeof fake.version, "v1");
    snprintf(fake.deployed, sizeof fake.deployed, "v1");
    snprintf(fake.after_wait, sizeof fake.after_wait, "v2"); /* hostB renews while we wait */
    assert_int_equal(flow_fleet_claim(S, "a.example", "v1", 5, told, NULL, NULL, &c, &err), CP_OK);
    assert_true(c.elsewhere);
    assert_true(c.changed);
    assert_null(c.lock); /* released already: nothing to order */
    assert_int_equal(fake.unlocks, 1);
    assert_string_equal(c.version, "v2");
    assert_string_equal(fake.deployed, "v2");
    assert_int_equal(fake.waits, 1);
    assert_string_equal(fake.holder_told, "hostB pid 42");
    flow_fleet_release(&c);
    assert_int_equal(fake.unlocks, 1);
}

static void test_claim_lock_not_had(void **state)
{
    (void)state;
    struct cp_err err = {0};
    struct flow_fleet_claim c;
    make_shared();
    fake.refuse = true;
    assert_int_equal(flow_fleet_claim(S, "a.example", "", 1, told, NULL, NULL, &c, &err),
                     CP_ETIMEOUT);
    assert_null(c.lock);
    assert_false(c.elsewhere);
    assert_non_null(strstr(err.msg, "hostB pid 42"));
    assert_int_equal(fake.waits, 1);
    assert_int_equal(fake.syncs, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_not_shared, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sync_deploys_another_hosts_version, setup, teardown),
        cmocka_unit_test_setup_teardown(test_claim_orders_when_nobody_renewed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_claim_after_another_host_renewed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_claim_lock_not_had, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
