/*
 * flow/fleet.c - one renewal per lineage for a fleet of hosts sharing a
 * store: deploy what another host renewed, and order only under the
 * lineage's lock when nobody renewed it while this host waited for it.
 * The lock's lease and the guarded write of a new version are the store's
 * (store/store.h); this file only puts the steps in order.
 */
#include "flow/flow.h"

#include <string.h>

enum cp_code flow_fleet_sync(struct cp_store *st, const char *name,
                             char version[STORE_VERSION_ID_MAX], bool *changed, struct cp_err *err)
{
    *changed = false;
    /* The version first: files deployed after it are at least as new, so a
     * later comparison with it never misses a renewal by another host. */
    enum cp_code rc = store_current_version(st, name, version, err);
    if (rc == CP_OK)
        rc = store_lineage_sync(st, name, changed, err);
    return rc;
}

enum cp_code flow_fleet_claim(struct cp_store *st, const char *name, const char *judged,
                              unsigned timeout_s, void (*waiting)(void *ctx, const char *holder),
                              void *ctx, const struct flow_log *log, struct flow_fleet_claim *out,
                              struct cp_err *err)
{
    memset(out, 0, sizeof *out);
    enum cp_code rc = store_lineage_lock(st, name, timeout_s, waiting, ctx, &out->lock, err);
    if (rc != CP_OK)
        return rc;
    rc = store_current_version(st, name, out->version, err);
    if (rc == CP_OK && strcmp(out->version, judged) != 0) {
        out->elsewhere = true;
        flow_say(log, FLOW_INFO,
                 "another host stored a new version (%s) while this one waited for the lock: "
                 "nothing to order",
                 out->version[0] ? out->version : "none");
        rc = store_lineage_sync(st, name, &out->changed, err);
    }
    if (rc != CP_OK || out->elsewhere)
        flow_fleet_release(out);
    return rc;
}

void flow_fleet_release(struct flow_fleet_claim *c)
{
    store_lineage_unlock(c->lock);
    c->lock = NULL;
}
