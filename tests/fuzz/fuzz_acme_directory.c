/*
 * tests/fuzz/fuzz_acme_directory.c - libFuzzer target for the directory
 * parser of acme/client.c (the CA's directory, meta.profiles with it), and
 * acme_profile_choose() on what it kept.
 * Seeds: corpus/acme_directory/.
 */
#include "acme/acme.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct acme_directory d;
    struct cp_err err = {0};
    if (acme_directory_parse((const char *)data, size, "https://ca.example/dir", &d, &err) ==
        CP_OK) {
        if (d.new_nonce == NULL || d.new_account == NULL || d.new_order == NULL ||
            d.nprofiles > ACME_PROFILES_MAX)
            abort();
        for (size_t i = 0; i < d.nprofiles; i++) {
            const struct acme_profile *p = &d.profiles[i];
            if (p->name == NULL || p->description == NULL || p->name[0] == '\0' ||
                strlen(p->name) > ACME_PROFILE_NAME_MAX ||
                strlen(p->description) > ACME_PROFILE_DESC_MAX ||
                acme_directory_profile(&d, p->name) == NULL)
                abort();
        }
        if (d.nissuer_domain_names > ACME_ISSUER_DOMAINS_MAX)
            abort();
        for (size_t i = 0; i < d.nissuer_domain_names; i++)
            if (d.issuer_domain_names[i] == NULL || strlen(d.issuer_domain_names[i]) > 253)
                abort();
        const char *use = NULL;
        struct cp_err e2 = {0};
        enum cp_code rc = acme_profile_choose(&d, "shortlived", ACME_PROFILE_REQUIRED, &use, &e2);
        if ((rc == CP_OK) != (acme_directory_profile(&d, "shortlived") != NULL))
            abort();
    } else if (err.msg[0] == '\0') {
        abort();
    }
    acme_directory_clear(&d);
    return 0;
}
