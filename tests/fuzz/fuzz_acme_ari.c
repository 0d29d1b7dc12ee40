/*
 * tests/fuzz/fuzz_acme_ari.c - libFuzzer target for acme_renewal_info_parse
 * (acme/ari.c): the renewalInfo answer is the CA's text and decides when a
 * certificate is replaced.
 *
 * Needs: acme/ari.c and what it links (client, transport, JWS, keys, problem,
 * certificates).  Seeds: corpus/acme_ari/.
 */
#include "acme/acme.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct acme_renewal_info ri;
    struct cp_err err = {0};

    if (acme_renewal_info_parse((const char *)data, size, &ri, &err) == CP_OK) {
        /* Invariants of the contract: a non-empty window within the years
         * RFC 3339 can write, and a short plain http(s) URL or none. */
        if (ri.end <= ri.start || ri.start < -62167219200LL - 86400 ||
            ri.end > 253402300799LL + 86400 || ri.retry_after != 0)
            abort();
        if (ri.explanation_url != NULL) {
            size_t n = strlen(ri.explanation_url);
            if (n > 1024 || (strncasecmp(ri.explanation_url, "http://", 7) != 0 &&
                             strncasecmp(ri.explanation_url, "https://", 8) != 0))
                abort();
            for (size_t i = 0; i < n; i++)
                if ((unsigned char)ri.explanation_url[i] <= 0x20 ||
                    (unsigned char)ri.explanation_url[i] >= 0x7f)
                    abort();
        }
        acme_renewal_info_clear(&ri);
    } else if (ri.explanation_url != NULL || ri.start != 0 || ri.end != 0 || err.msg[0] == '\0') {
        abort();
    }
    return 0;
}
