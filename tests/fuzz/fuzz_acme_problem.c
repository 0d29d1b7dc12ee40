/*
 * tests/fuzz/fuzz_acme_problem.c - libFuzzer target for acme/problem.c:
 * acme_problem_parse on the whole input (problem documents come from the CA),
 * and acme_retry_after and acme_timestamp_parse on a NUL-terminated copy of
 * its first 64 bytes (the Retry-After header and ACME timestamps are server
 * text too).
 *
 * Needs: acme/problem.c common/err.c, jansson.  Seeds: corpus/acme_problem/.
 */
#include "acme/acme.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct acme_problem pb;
    struct cp_err err = {0};

    if (acme_problem_parse((const char *)data, size, &pb, &err) == CP_OK) {
        /* Invariants of the contract. */
        if (pb.type == NULL || pb.nsubproblems > 100 || strlen(pb.type) > 4096 ||
            (pb.detail != NULL && strlen(pb.detail) > 4096))
            abort();
        for (size_t i = 0; i < pb.nsubproblems; i++)
            if (pb.subproblems[i].type == NULL)
                abort();
        (void)acme_problem_is(&pb, "malformed");
        acme_problem_clear(&pb);
    } else if (pb.type != NULL || pb.subproblems != NULL) {
        abort();
    }

    char value[65];
    size_t n = size < 64 ? size : 64;
    memcpy(value, data, n);
    value[n] = '\0';
    long wait = acme_retry_after(value, (time_t)1700000000);
    if (wait < -1 || wait > 86400)
        abort();
    /* ACME timestamps ("validated", "expires") are server text too; a
     * successful parse is a time within the 4-digit years, offsets included. */
    long long t = 0;
    if (acme_timestamp_parse(value, &t) &&
        (t < -62167219200LL - 86400 || t > 253402300799LL + 86400))
        abort();
    return 0;
}
