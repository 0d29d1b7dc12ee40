/*
 * caa/policy.c - the CAA decision for one identifier, from its lookups (spec
 * §4-§8).  Pure: no I/O, no global state.  Besides the outcome it gives every
 * record of the relevant RRset a verdict, so that the explanation can say
 * which record does what.
 */
#include "caa/caa_int.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------- methods */

bool caa_method_token_valid(const char *m, size_t len)
{
    if (len == 0)
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)m[i];
        bool ok =
            (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '-';
        if (!ok)
            return false;
    }
    return true;
}

bool caa_method_known(const char *m, size_t len)
{
    /* spec §8's three, and dns-persist-01: Let's Encrypt validates it since
     * 2026 (issue 16), and RFC 8657 §4 lists any ACME method name there. */
    static const char *const known[] = {"http-01", "dns-01", "tls-alpn-01", "dns-persist-01"};
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++) {
        if (strlen(known[i]) == len && memcmp(known[i], m, len) == 0)
            return true;
    }
    return false;
}

bool caa_methods_match(const char *list, size_t len, const char *method, const char **bad,
                       size_t *bad_len)
{
    size_t start = 0, mlen = method != NULL ? strlen(method) : 0;

    if (bad != NULL)
        *bad = NULL;
    if (bad_len != NULL)
        *bad_len = 0;
    /* spec §8: left to right.  An element that is not 1*(ALPHA / DIGIT / "-")
     * met before a match rejects the record; unknown challenge types are
     * skipped; the method in use matches at once, and what follows it is
     * never read (so "http-01," matches http-01). */
    for (;;) {
        size_t end = start;
        while (end < len && list[end] != ',')
            end++;
        const char *el = list + start;
        size_t el_len = end - start;
        if (!caa_method_token_valid(el, el_len)) {
            if (bad != NULL)
                *bad = el;
            if (bad_len != NULL)
                *bad_len = el_len;
            return false;
        }
        if (method != NULL && caa_method_known(el, el_len) && el_len == mlen &&
            memcmp(el, method, el_len) == 0)
            return true;
        if (end >= len)
            return false;
        start = end + 1;
    }
}

bool caa_methods_first_invalid(const char *list, size_t len, const char **bad, size_t *bad_len)
{
    size_t start = 0;
    for (;;) {
        size_t end = start;
        while (end < len && list[end] != ',')
            end++;
        if (!caa_method_token_valid(list + start, end - start)) {
            *bad = list + start;
            *bad_len = end - start;
            return true;
        }
        if (end >= len)
            return false;
        start = end + 1;
    }
}

/* ------------------------------------------------------------- accounts */

/* Let's Encrypt's account URL forms: the ACME v2 URL and the ACME v1 URL of
 * the same account id, for production and for staging (spec §7). */
static const struct {
    const char *v2;
    const char *v1;
} le_account_forms[] = {
    {"https://acme-v02.api.letsencrypt.org/acme/acct/",
     "https://acme-v01.api.letsencrypt.org/acme/reg/"},
    {"https://acme-staging-v02.api.letsencrypt.org/acme/acct/",
     "https://acme-staging.api.letsencrypt.org/acme/reg/"},
};

static bool all_digits(const char *s, size_t n)
{
    if (n == 0)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
    }
    return true;
}

/* Does `uri` equal `prefix` followed by `id`? */
static bool equals_joined(const char *uri, size_t len, const char *prefix, const char *id,
                          size_t id_len)
{
    size_t plen = strlen(prefix);
    return len == plen + id_len && memcmp(uri, prefix, plen) == 0 &&
           memcmp(uri + plen, id, id_len) == 0;
}

bool caa_account_matches(const char *uri, size_t len, const char *account)
{
    /* spec §7: with no known account nothing can be shown to match. */
    if (account == NULL || uri == NULL)
        return false;
    size_t alen = strlen(account);
    if (len == alen && memcmp(uri, account, len) == 0)
        return true;

    /* Let's Encrypt accepts both forms of the same account id, whichever
     * form the caller knows the account by. */
    for (size_t i = 0; i < sizeof le_account_forms / sizeof le_account_forms[0]; i++) {
        const char *forms[2] = {le_account_forms[i].v2, le_account_forms[i].v1};
        for (size_t f = 0; f < 2; f++) {
            size_t plen = strlen(forms[f]);
            if (alen <= plen || memcmp(account, forms[f], plen) != 0)
                continue;
            const char *id = account + plen;
            if (!all_digits(id, alen - plen))
                continue;
            if (equals_joined(uri, len, forms[1 - f], id, alen - plen))
                return true;
        }
    }
    return false;
}

/* --------------------------------------------------------------- policy */

static bool issuer_is(const struct caa_issue_value *iv, const char *ca)
{
    /* spec §1: exact bytes after trimming spaces and tabs; no case folding,
     * no trailing-dot folding.  Lengths, because the value may hold NULs. */
    size_t n = strlen(ca);
    return iv->issuer_len == n && memcmp(iv->issuer, ca, n) == 0;
}

static enum caa_verdict judge_candidate(const struct caa_record *r, const struct caa_params *p)
{
    struct caa_issue_value iv;

    /* Order of the checks: the first failure names the verdict. */
    if (!caa_parse_issue_value(r->value, r->value_len, &iv))
        return CAA_VERDICT_MALFORMED;
    if (iv.issuer_len == 0)
        return CAA_VERDICT_FORBIDS; /* spec §5.4: ";" forbids every CA */
    if (!issuer_is(&iv, p->ca_identity))
        return CAA_VERDICT_OTHER_CA;
    /* RFC 8657 §3: an absent accounturi does not restrict. */
    if (iv.accounturi != NULL &&
        !caa_account_matches(iv.accounturi, iv.accounturi_len, p->account_uri))
        return CAA_VERDICT_ACCOUNT_MISMATCH;
    /* RFC 8657 §4: an absent validationmethods does not restrict. */
    if (iv.methods != NULL && !caa_methods_match(iv.methods, iv.methods_len, p->method, NULL, NULL))
        return CAA_VERDICT_METHOD_MISMATCH;
    return CAA_VERDICT_AUTHORIZES;
}

enum cp_code caa_evaluate(const struct caa_lookup *const *chain, size_t n, bool wildcard,
                          const struct caa_params *params, struct caa_decision *out,
                          struct cp_err *err)
{
    enum cp_code rc = CP_OK;
    enum caa_verdict *verdicts = NULL;

    if (out == NULL)
        return cp_err_set(err, CP_EINVAL, "caa_evaluate: no decision to fill");
    /* Fail closed: until a rule below decides, the decision is an error, so a
     * caller that ignores a failed return never reads "allowed". */
    *out = (struct caa_decision){
        .status = CAA_ERROR, .why = CAA_WHY_DNS, .at = SIZE_MAX, .authorizing = SIZE_MAX};
    if (params == NULL || params->ca_identity == NULL || params->method == NULL)
        return cp_err_set(err, CP_EINVAL,
                          "CAA evaluation needs the CA identity and the challenge type");
    if (chain == NULL && n > 0)
        return cp_err_set(err, CP_EINVAL, "CAA evaluation: no lookups given");

    /* spec §4: from the name towards the TLD, the first failure decides (records
     * may hide behind it), else the first non-empty RRset is the relevant one. */
    size_t at = SIZE_MAX;
    for (size_t i = 0; i < n; i++) {
        const struct caa_lookup *l = chain[i];
        if (l == NULL)
            return cp_err_set(err, CP_EINVAL, "CAA evaluation: lookup %zu is missing", i);
        if (l->answer != CAA_ANSWER_RECORDS) {
            out->status = CAA_ERROR;
            out->why = CAA_WHY_DNS;
            out->at = i;
            return CP_OK;
        }
        if (l->nrecords > 0) {
            if (l->records == NULL)
                return cp_err_set(err, CP_EINVAL, "CAA evaluation: %s has %zu records but no data",
                                  l->name, l->nrecords);
            at = i;
            break;
        }
    }
    if (at == SIZE_MAX) {
        /* No records anywhere: any CA may issue. */
        out->status = CAA_ALLOWED;
        out->why = CAA_WHY_NO_RECORDS;
        return CP_OK;
    }

    const struct caa_lookup *set = chain[at];
    verdicts = calloc(set->nrecords, sizeof *verdicts);
    if (verdicts == NULL) {
        rc = cp_err_set(err, CP_ENOMEM, "out of memory evaluating CAA at %s", set->name);
        goto out;
    }

    /* spec §5: sort the records. */
    size_t nissue = 0, nwild = 0;
    bool critical = false;
    for (size_t i = 0; i < set->nrecords; i++) {
        const struct caa_record *r = &set->records[i];
        verdicts[i] = CAA_VERDICT_IGNORED;
        switch (caa_tag_kind(r->tag, r->tag_len)) {
        case CAA_TAG_ISSUE: nissue++; break;
        case CAA_TAG_ISSUEWILD: nwild++; break;
        case CAA_TAG_IODEF:
        case CAA_TAG_ISSUEMAIL:
        case CAA_TAG_ISSUEVMC:
            /* Recognized, hence never "unknown critical", even with flags set. */
            break;
        case CAA_TAG_UNKNOWN:
            if (caa_record_critical(r)) {
                verdicts[i] = CAA_VERDICT_CRITICAL;
                critical = true;
            }
            break;
        }
    }

    out->at = at;
    out->verdicts = verdicts;
    out->nverdicts = set->nrecords;
    verdicts = NULL;

    /* Rule 1: a critical unknown property blocks every CA; Let's Encrypt stops
     * here, so the other records keep the verdict "ignored". */
    if (critical) {
        out->status = CAA_DENIED;
        out->why = CAA_WHY_CRITICAL_UNKNOWN;
        goto out;
    }
    /* Rule 2: issuewild is ignored for a non-wildcard (RFC 8659 §4.3). */
    if (!wildcard && nissue == 0) {
        out->status = CAA_ALLOWED;
        out->why = CAA_WHY_NO_ISSUE;
        goto out;
    }
    /* Rule 3: for a wildcard, issuewild records replace issue records when
     * there is at least one.  A wildcard whose set holds neither (only iodef,
     * say) has no candidate, and an empty list restricts nothing (spec §5.3). */
    enum caa_tag cand = (wildcard && nwild > 0) ? CAA_TAG_ISSUEWILD : CAA_TAG_ISSUE;
    if ((cand == CAA_TAG_ISSUE ? nissue : nwild) == 0) {
        out->status = CAA_ALLOWED;
        out->why = CAA_WHY_NO_CANDIDATE;
        goto out;
    }
    /* Rule 4: records are additive; any one candidate may authorize. */
    for (size_t i = 0; i < set->nrecords; i++) {
        const struct caa_record *r = &set->records[i];
        if (caa_tag_kind(r->tag, r->tag_len) != cand)
            continue;
        out->verdicts[i] = judge_candidate(r, params);
        if (out->verdicts[i] == CAA_VERDICT_AUTHORIZES && out->authorizing == SIZE_MAX)
            out->authorizing = i;
    }
    if (out->authorizing != SIZE_MAX) {
        out->status = CAA_ALLOWED;
        out->why = CAA_WHY_AUTHORIZED;
    } else {
        out->status = CAA_DENIED;
        out->why = CAA_WHY_NOT_AUTHORIZED;
    }

out:
    free(verdicts);
    return rc;
}

void caa_decision_clear(struct caa_decision *d)
{
    if (d == NULL)
        return;
    free(d->verdicts);
    memset(d, 0, sizeof *d);
}

const char *caa_verdict_name(enum caa_verdict v)
{
    switch (v) {
    case CAA_VERDICT_AUTHORIZES: return "authorizes";
    case CAA_VERDICT_MALFORMED: return "malformed";
    case CAA_VERDICT_FORBIDS: return "forbids all CAs";
    case CAA_VERDICT_OTHER_CA: return "other CA";
    case CAA_VERDICT_ACCOUNT_MISMATCH: return "account mismatch";
    case CAA_VERDICT_METHOD_MISMATCH: return "method mismatch";
    case CAA_VERDICT_CRITICAL: return "critical unknown tag";
    case CAA_VERDICT_IGNORED: return "ignored";
    }
    return "unknown verdict";
}

bool caa_recheck_due(long long validated, long long now)
{
    return validated < 0 || now - validated > CAA_REUSE_WINDOW_S;
}
