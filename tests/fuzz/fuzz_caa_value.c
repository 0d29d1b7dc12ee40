/*
 * tests/fuzz/fuzz_caa_value.c - the untrusted path of a CAA record, from the
 * bytes of its value to the words shown to the user.
 *
 * Input layout: byte 0 = the record's flags; byte 1 = choices (bits 0-2 the
 * tag, bit 3 wildcard, bits 4-5 the challenge type, bit 6 an account URL is
 * known, bit 7 the set sits at the parent behind a CNAME with a second
 * record); the rest = the value.  The whole input is also parsed as a value
 * on its own.  Flags bits 1-2 both set turn the first lookup into a DNS
 * failure (kind from flags bits 3-4, RCODE from the high nibble).
 */
#include <stdint.h>
#include <stdio.h>
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
    /* Tags are bytes with a length: "issue\0" is an unknown tag. */
    static const struct {
        const char *bytes;
        size_t len;
    } tags[] = {{"issue", 5}, {"issuewild", 9}, {"iodef", 5},   {"issuemail", 9},
                {"ISSUE", 5}, {"IssueVMC", 8},  {"issue\0", 6}, {"", 0}};
    static const char *const methods[] = {"http-01", "dns-01", "tls-alpn-01", "future-01"};
    struct caa_issue_value iv;

    /* The value parser on the raw input: exact-size buffer, lengths only. */
    if (caa_parse_issue_value(data, size, &iv)) {
        check(iv.issuer_len <= size);
        check(iv.accounturi == NULL || iv.accounturi_len <= size);
        check(iv.methods == NULL || iv.methods_len <= size);
    }
    if (size < 2)
        return 0;

    uint8_t flags = data[0], sel = data[1];
    size_t vlen = size - 2;
    unsigned char *value = malloc(vlen + 1);
    if (value == NULL)
        return 0;
    memcpy(value, data + 2, vlen);
    value[vlen] = '\0'; /* as caa_resolve() delivers it, NUL bytes inside kept */

    struct caa_record recs[2] = {
        {.flags = flags,
         .tag = (char *)tags[sel & 7].bytes,
         .tag_len = tags[sel & 7].len,
         .value = value,
         .value_len = vlen},
        {.flags = 0,
         .tag = (char *)"issuewild",
         .tag_len = 9,
         .value = (unsigned char *)";",
         .value_len = 1},
    };

    /* The formatter: measured, then written into exactly that much. */
    size_t need = caa_record_format(&recs[0], NULL, 0);
    char *buf = malloc(need + 1);
    if (buf != NULL) {
        check(caa_record_format(&recs[0], buf, need + 1) == need);
        check(strlen(buf) == need);
        char small[8];
        check(caa_record_format(&recs[0], small, sizeof small) == need);
        check(strlen(small) < sizeof small);
        free(buf);
    }

    /* A two-name chain: the record at the name, or at the parent (aliased). */
    struct caa_lookup l[2];
    memset(l, 0, sizeof l);
    snprintf(l[0].name, sizeof l[0].name, "www.example.com");
    snprintf(l[1].name, sizeof l[1].name, "example.com");
    size_t at = (sel & 0x80) ? 1 : 0;
    l[at].records = recs;
    l[at].nrecords = (sel & 0x80) ? 2 : 1;
    if (sel & 0x80)
        snprintf(l[1].target, sizeof l[1].target, "pages.example.net");
    if ((flags & 0x06) == 0x06) {
        static const enum caa_answer kinds[] = {CAA_ANSWER_RCODE, CAA_ANSWER_TIMEOUT,
                                                CAA_ANSWER_NETWORK, CAA_ANSWER_RCODE};
        l[0].answer = kinds[(flags >> 3) & 3];
        l[0].rcode = l[0].answer == CAA_ANSWER_RCODE ? flags >> 4 : -1;
    }
    const struct caa_lookup *chain[2] = {&l[0], &l[1]};

    bool wildcard = (sel & 0x08) != 0;
    struct caa_params p = {
        .ca_identity = "letsencrypt.org",
        .account_uri = (sel & 0x40) ? "https://acme-v02.api.letsencrypt.org/acme/acct/1" : NULL,
        .method = methods[(sel >> 4) & 3],
    };
    struct caa_decision d;
    struct caa_explanation e;
    struct cp_err err;
    if (caa_evaluate(chain, 2, wildcard, &p, &d, &err) == CP_OK) {
        check(d.status != CAA_ALLOWED || d.why != CAA_WHY_DNS);
        check(d.verdicts == NULL || d.nverdicts == l[d.at].nrecords);
        check(d.authorizing == SIZE_MAX || d.verdicts[d.authorizing] == CAA_VERDICT_AUTHORIZES);
        const char *ident = wildcard ? "*.www.example.com" : "www.example.com";
        if (caa_explain(ident, chain, 2, &p, &d, &e, &err) == CP_OK) {
            check(e.text != NULL);
            check((e.problem_type == NULL) == (d.status == CAA_ALLOWED));
            check((e.fix == NULL) == (d.status == CAA_ALLOWED));
            /* Record bytes reach the user only escaped. */
            const char *texts[3] = {e.text, e.fix, e.warning};
            for (size_t t = 0; t < 3; t++) {
                for (const char *c = texts[t]; c != NULL && *c != '\0'; c++)
                    check(*c == '\n' || ((unsigned char)*c >= 0x20 && (unsigned char)*c < 0x7f));
            }
            caa_explanation_clear(&e);
        }
        caa_decision_clear(&d);
    }
    free(value);
    return 0;
}
