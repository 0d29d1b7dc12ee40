/*
 * cli/out_caa.c - a CAA report as text for people and as JSON for scripts.
 * The JSON shape is a contract (README, "caa check --json"); the issuance
 * preflight prints the same shape.
 */
#include "cli/cli.h"

#include <stdint.h>
#include <string.h>

static const char *status_word(enum caa_status s)
{
    switch (s) {
    case CAA_ALLOWED: return "allowed";
    case CAA_DENIED: return "denied";
    case CAA_ERROR: return "error";
    }
    return "error";
}

static const char *answer_word(enum caa_answer a)
{
    switch (a) {
    case CAA_ANSWER_RECORDS: return "records";
    case CAA_ANSWER_RCODE: return "rcode";
    case CAA_ANSWER_TIMEOUT: return "timeout";
    case CAA_ANSWER_NETWORK: return "network";
    }
    return "network";
}

/*
 * A record's tag or value as text: printable ASCII as is, any other byte as
 * \DDD (the zone-file escape), so the JSON string is always valid UTF-8 and a
 * NUL cannot cut it short.
 */
static json_t *bytes_json(const unsigned char *bytes, size_t len)
{
    size_t cap = len * 4 + 1, n = 0;
    char *buf = malloc(cap);
    if (buf == NULL)
        return NULL;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = bytes[i];
        if (c >= 0x20 && c < 0x7f && c != '\\') {
            buf[n++] = (char)c;
        } else {
            snprintf(buf + n, cap - n, "\\%03u", c);
            n += 4;
        }
    }
    json_t *j = json_stringn(buf, n);
    free(buf);
    return j;
}

/* The Extended DNS Error of a failed lookup (RFC 8914), or NULL when it has
 * none.  Its text is valid UTF-8 already (caa.h), so jansson takes it. */
static json_t *ede_json(const struct caa_lookup *l)
{
    char buf[64];
    if (!l->has_ede)
        return NULL;
    return json_pack("{s:I, s:s, s:s}", "code", (json_int_t)l->ede_code, "summary",
                     caa_ede_summary(l->ede_code, buf, sizeof buf), "text", l->ede_text);
}

static const struct caa_lookup *relevant(const struct caa_result *res)
{
    size_t at = res->decision->at;
    return at != SIZE_MAX && at < res->nchain ? res->chain[at] : NULL;
}

static json_t *result_json(const struct caa_result *res)
{
    const struct caa_lookup *rel = relevant(res);
    const struct caa_explanation *ex = res->explanation;
    json_t *records = json_array(), *lookups = json_array(), *problem = json_null();

    if (records == NULL || lookups == NULL)
        goto fail;
    if (rel != NULL && res->decision->verdicts != NULL) {
        for (size_t i = 0; i < rel->nrecords && i < res->decision->nverdicts; i++) {
            const struct caa_record *rec = &rel->records[i];
            json_t *o = json_pack("{s:s, s:i, s:o?, s:o?, s:s}", "name", rel->name, "flags",
                                  (int)rec->flags, "tag",
                                  bytes_json((const unsigned char *)rec->tag, rec->tag_len),
                                  "value", bytes_json(rec->value, rec->value_len), "verdict",
                                  caa_verdict_name(res->decision->verdicts[i]));
            if (o == NULL || json_array_append_new(records, o) != 0)
                goto fail;
        }
    }
    for (size_t i = 0; i < res->nchain; i++) {
        const struct caa_lookup *l = res->chain[i];
        json_t *o = json_pack("{s:s, s:s, s:s?, s:s?, s:I}", "name", l->name, "answer",
                              answer_word(l->answer), "rcode",
                              l->rcode >= 0 ? caa_rcode_name(l->rcode) : NULL, "alias_target",
                              l->target[0] ? l->target : NULL, "records", (json_int_t)l->nrecords);
        if (o == NULL || json_array_append_new(lookups, o) != 0)
            goto fail;
        if (l->has_ede) {
            json_t *ede = ede_json(l);
            if (ede == NULL || json_object_set_new(o, "ede", ede) != 0)
                goto fail;
        }
    }
    if (ex->problem_type != NULL)
        problem = json_pack("{s:s, s:s}", "type", ex->problem_type, "detail",
                            ex->problem_detail ? ex->problem_detail : "");
    return json_pack("{s:s, s:b, s:s, s:s?, s:s?, s:o, s:o, s:s, s:s?, s:s?, s:o, s:s?}",
                     "identifier", res->ident, "wildcard", res->wildcard, "status",
                     status_word(res->status), "relevant_name", rel ? rel->name : NULL,
                     "alias_target", rel && rel->target[0] ? rel->target : NULL, "records", records,
                     "problem", problem ? problem : json_null(), "explanation",
                     ex->text ? ex->text : "", "fix", ex->fix, "warning", ex->warning, "lookups",
                     lookups, "method", res->params ? res->params->method : NULL);
fail:
    json_decref(records);
    json_decref(lookups);
    json_decref(problem);
    return NULL;
}

json_t *cli_caa_report_json(const struct caa_report *r, const struct caa_params *p)
{
    json_t *results = json_array();
    if (results == NULL)
        return NULL;
    for (size_t i = 0; i < caa_report_count(r); i++) {
        json_t *o = result_json(caa_report_result(r, i));
        if (o == NULL || json_array_append_new(results, o) != 0) {
            json_decref(results);
            return NULL;
        }
    }
    return json_pack("{s:s, s:s?, s:s, s:I, s:I, s:o}", "ca_identity", p->ca_identity,
                     "account_uri", p->account_uri, "method", p->method, "queries",
                     (json_int_t)caa_report_queries(r), "round_trips",
                     (json_int_t)caa_report_waves(r), "results", results);
}

/* Print `text` with every line indented by `indent`. */
static void print_indented(FILE *f, const char *indent, const char *text)
{
    while (text != NULL && *text != '\0') {
        const char *nl = strchr(text, '\n');
        size_t len = nl ? (size_t)(nl - text) : strlen(text);
        fprintf(f, "%s%.*s\n", indent, (int)len, text);
        text = nl ? nl + 1 : NULL;
    }
}

/*
 * The CA's detail for a terminal: it may quote a resolver's Extended DNS
 * Error text, which is valid UTF-8 but may hold control characters (line
 * breaks, escape sequences).  Those are shown as \DDD, C1 controls
 * (U+0080-U+009F) as the \DDD of their two bytes; everything else as is.
 */
static void print_detail(FILE *f, const char *indent, const char *text)
{
    const unsigned char *p = (const unsigned char *)text;
    fputs(indent, f);
    for (; *p != '\0'; p++) {
        if (*p < 0x20 || *p == 0x7f) {
            fprintf(f, "\\%03u", *p);
        } else if (*p == 0xC2 && p[1] >= 0x80 && p[1] <= 0x9F) {
            fprintf(f, "\\%03u\\%03u", p[0], p[1]);
            p++;
        } else {
            fputc(*p, f);
        }
    }
    fputc('\n', f);
}

void cli_caa_result_text(FILE *f, const struct caa_result *res)
{
    const struct caa_lookup *rel = relevant(res);
    const struct caa_explanation *ex = res->explanation;

    switch (res->status) {
    case CAA_ALLOWED: fprintf(f, "%s: allowed\n", res->ident); break;
    case CAA_DENIED:
        fprintf(f, "%s: REFUSED by the CAA record set at %s\n", res->ident, rel ? rel->name : "?");
        break;
    case CAA_ERROR:
        fprintf(f, "%s: DNS FAILURE looking up CAA for %s\n", res->ident, rel ? rel->name : "?");
        break;
    }
    if (rel != NULL && rel->nrecords > 0 && res->decision->verdicts != NULL) {
        bool alias = rel->target[0] != '\0';
        fprintf(f, "  records at %s%s%s%s:\n", rel->name, alias ? " (alias of " : "",
                alias ? rel->target : "", alias ? ")" : "");
        for (size_t i = 0; i < rel->nrecords && i < res->decision->nverdicts; i++) {
            char rec[512];
            size_t need = caa_record_format(&rel->records[i], rec, sizeof rec);
            fprintf(f, "    %s%s  -> %s\n", rec, need >= sizeof rec ? "..." : "",
                    caa_verdict_name(res->decision->verdicts[i]));
        }
    }
    print_indented(f, "  ", ex->text);
    if (ex->problem_detail != NULL) {
        fputs("  The CA would answer:\n", f);
        fprintf(f, "    %s\n", ex->problem_type);
        print_detail(f, "    ", ex->problem_detail);
    }
    if (ex->fix != NULL) {
        fputs("  Fix:\n", f);
        print_indented(f, "    ", ex->fix);
    }
    cli_caa_warning_text(f, res);
}

void cli_caa_warning_text(FILE *f, const struct caa_result *res)
{
    if (res->explanation->warning == NULL)
        return;
    fputs("  Warning:\n", f);
    print_indented(f, "    ", res->explanation->warning);
}

void cli_caa_report_text(FILE *f, const struct caa_report *r, const struct caa_params *p)
{
    fprintf(f, "CAA check for CA \"%s\", method %s%s%s\n", p->ca_identity, p->method,
            p->account_uri ? ", account " : "", p->account_uri ? p->account_uri : "");
    for (size_t i = 0; i < caa_report_count(r); i++) {
        fputc('\n', f);
        cli_caa_result_text(f, caa_report_result(r, i));
    }
}
