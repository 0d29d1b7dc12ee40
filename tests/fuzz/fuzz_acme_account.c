/*
 * tests/fuzz/fuzz_acme_account.c - libFuzzer target for acme/account.c:
 * acme_account_parse on the whole input (account objects come from the CA,
 * answering a fetch, an update or a deactivation).
 *
 * Needs: acme/account.c and what it links (client, http, jws, key, problem),
 * common/err.c, common/civil.c, jansson, libcurl, OpenSSL.
 * Seeds: corpus/acme_account/.
 */
#include "acme/acme.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct acme_account a;
    struct cp_err err = {0};

    if (acme_account_parse((const char *)data, size, &a, &err) == CP_OK) {
        /* Invariants of the contract. */
        if (a.status == NULL || a.ncontacts > ACME_ACCOUNT_CONTACTS_MAX ||
            (a.ncontacts > 0 && a.contacts == NULL) || a.terms_agreed < -1 || a.terms_agreed > 1 ||
            (a.orders != NULL && strlen(a.orders) > 2048) ||
            (a.key_thumbprint[0] != '\0' && strlen(a.key_thumbprint) != 43))
            abort();
        if (strcmp(a.status, "valid") != 0 && strcmp(a.status, "deactivated") != 0 &&
            strcmp(a.status, "revoked") != 0)
            abort();
        for (size_t i = 0; i < a.ncontacts; i++)
            if (a.contacts[i] == NULL || a.contacts[i][0] == '\0' || strlen(a.contacts[i]) > 1024)
                abort();
    } else if (err.msg[0] == '\0') {
        abort();
    }
    acme_account_clear(&a);
    return 0;
}
