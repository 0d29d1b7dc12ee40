/*
 * tests/fuzz/fuzz_caa_persist.c - libFuzzer target for caa/persist.c: TXT
 * values found at _validation-persist.<name> (anyone's DNS, untrusted)
 * judged and explained for a plain and a wildcard name.
 *
 * Input: byte 0 splits the rest into two TXT values at offset byte0 % len;
 * both go to caa_persist_evaluate(), each also to caa_persist_judge().
 * Seeds: corpus/caa_persist/.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "caa/caa.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(bool ok)
{
    if (!ok)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const issuers[] = {"letsencrypt.org", "ca.example"};
    const struct caa_persist_check c = {.issuers = issuers,
                                        .nissuers = 2,
                                        .account_uri = "https://ca.example/acct/1",
                                        .now = 1800000000};
    if (size == 0)
        return 0;
    size_t rest = size - 1, cut = rest ? data[0] % (rest + 1) : 0;
    /* Exact-size copies: a read past a value's end is caught. */
    unsigned char *a = malloc(cut ? cut : 1), *b = malloc(rest - cut ? rest - cut : 1);
    if (a == NULL || b == NULL)
        goto out;
    memcpy(a, data + 1, cut);
    memcpy(b, data + 1 + cut, rest - cut);
    struct caa_persist_txt t[2] = {{a, cut}, {b, rest - cut}};
    static const char *const idents[] = {"www.example.com", "*.example.com"};
    for (size_t i = 0; i < 2; i++) {
        long long until = 0;
        enum caa_persist_fault f = caa_persist_judge(idents[i], a, cut, &c, &until);
        check(f <= CAA_PERSIST_AUTHORIZES);
        check(f != CAA_PERSIST_EXPIRED || until >= 0);
        struct caa_persist_verdict v;
        struct cp_err err;
        check(caa_persist_evaluate(idents[i], t, 2, &c, &v, &err) == CP_OK);
        check(v.record < 2);
        check(v.authorized == (v.fault == CAA_PERSIST_AUTHORIZES));
        check(v.authorized == (v.reason[0] == '\0'));
        /* Record bytes reach the words only escaped. */
        for (const char *p = v.reason; *p != '\0'; p++)
            check((unsigned char)*p >= 0x20 && (unsigned char)*p < 0x7f);
    }
out:
    free(a);
    free(b);
    return 0;
}
