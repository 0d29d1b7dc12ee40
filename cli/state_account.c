/*
 * cli/state_account.c - one CA's account as a command works with it: loaded
 * from the store, changed one member or key at a time, each change written
 * through the store at once (store/store.h says how the filesystem keeps
 * it).  Which key the CA knows after an interrupted rollover is found out by
 * cli_account_use() (cli/acme_common.c).
 */
#include "cli/cli.h"

#include <stdlib.h>
#include <string.h>

enum cp_code cli_account_open(struct cp_store *st, const char *server, struct cli_account *a,
                              struct cp_err *err)
{
    struct store_account sa;
    memset(a, 0, sizeof *a);
    a->st = st;
    if (snprintf(a->server, sizeof a->server, "%s", server) >= (int)sizeof a->server)
        return cp_err_set(err, CP_EINVAL, "the directory URL %.100s... is too long", server);
    enum cp_code rc = store_account_load(st, server, &sa, err);
    a->key = sa.key;
    a->pending = sa.pending;
    a->rec = sa.rec;
    snprintf(a->dir, sizeof a->dir, "%s", sa.where);
    snprintf(a->pending_where, sizeof a->pending_where, "%s", sa.pending_where);
    if (rc != CP_OK)
        cli_account_close(a);
    return rc;
}

void cli_account_close(struct cli_account *a)
{
    acme_key_free(a->key);
    acme_key_free(a->pending);
    json_decref(a->rec);
    a->key = NULL;
    a->pending = NULL;
    a->rec = NULL;
}

const char *cli_account_url(const struct cli_account *a)
{
    const char *u = json_string_value(json_object_get(a->rec, "url"));
    return u != NULL && *u != '\0' ? u : NULL;
}

const char *cli_account_deactivated_at(const struct cli_account *a)
{
    const char *st = json_string_value(json_object_get(a->rec, "status"));
    if (st == NULL || strcmp(st, "deactivated") != 0)
        return NULL;
    const char *at = json_string_value(json_object_get(a->rec, "deactivated_at"));
    return at != NULL ? at : "an unknown date";
}

json_t *cli_account_contacts(const struct cli_account *a)
{
    json_t *out = json_array();
    const json_t *list = json_object_get(a->rec, "contact");
    size_t i;
    const json_t *v;
    json_array_foreach(list, i, v)
    {
        if (json_is_string(v) && out != NULL)
            json_array_append(out, (json_t *)v);
    }
    return out;
}

enum cp_code cli_account_set(struct cli_account *a, const char *key, json_t *value,
                             struct cp_err *err)
{
    if (value == NULL || json_object_set_new(a->rec, key, value) != 0)
        return cp_err_set(err, CP_ENOMEM, "out of memory");
    return CP_OK;
}

enum cp_code cli_account_write(struct cli_account *a, struct cp_err *err)
{
    enum cp_code rc = cli_account_set(a, "directory", json_string(a->server), err);
    if (rc == CP_OK && a->key != NULL)
        rc = cli_account_set(a, "key_type",
                             json_string(acme_key_type_name(acme_key_type_of(a->key))), err);
    if (rc == CP_OK && json_object_get(a->rec, "contact") == NULL)
        rc = cli_account_set(a, "contact", json_array(), err);
    if (rc == CP_OK)
        rc = store_account_save_record(a->st, a->server, a->rec, err);
    return rc;
}

enum cp_code cli_account_write_key(struct cli_account *a, struct acme_key *key, struct cp_err *err)
{
    enum cp_code rc = store_account_save_key(a->st, a->server, key, err);
    if (rc == CP_OK) {
        acme_key_free(a->key);
        a->key = key;
    }
    return rc;
}

enum cp_code cli_account_pending_write(struct cli_account *a, struct acme_key *key,
                                       struct cp_err *err)
{
    enum cp_code rc = store_account_save_pending(a->st, a->server, key, err);
    if (rc == CP_OK) {
        acme_key_free(a->pending);
        a->pending = key;
    }
    return rc;
}

enum cp_code cli_account_pending_commit(struct cli_account *a, struct cp_err *err)
{
    if (a->pending == NULL)
        return cp_err_set(err, CP_EINTERNAL, "no pending account key to make current");
    enum cp_code rc = store_account_commit_pending(a->st, a->server, err);
    if (rc == CP_OK) {
        acme_key_free(a->key);
        a->key = a->pending;
        a->pending = NULL;
    }
    return rc;
}

enum cp_code cli_account_pending_remove(struct cli_account *a, struct cp_err *err)
{
    enum cp_code rc = store_account_remove_pending(a->st, a->server, err);
    if (rc == CP_OK) {
        acme_key_free(a->pending);
        a->pending = NULL;
    }
    return rc;
}
