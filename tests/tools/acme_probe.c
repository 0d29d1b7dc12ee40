/*
 * tests/tools/acme_probe.c - drive acme/http.c (and acme/problem.c) from the
 * integration tests.  Not installed.
 *
 *   acme_probe [--ca-bundle FILE] [--max BYTES] [--rel REL]... METHOD URL [BODY]
 *              [--then METHOD URL [BODY]]...
 *   acme_probe [--ca-bundle FILE] [--max BYTES] [--rel REL]... --twice URL
 *
 * Prints one JSON object per request:
 *   {"status", "content_type", "location", "replay_nonce", "retry_after",
 *    "retry_after_seconds", "links": [...], "rel": {REL: [absolute URLs]},
 *    "body_len", "body" (only when the body is JSON text), "problem" (only for
 *    application/problem+json: type, detail, status, subproblems),
 *    "trace": ["METHOD URL STATUS", ...]}
 * Several requests joined by --then run in order on one handle and print
 * {"responses": [...]}.
 * --twice does two GETs on the same handle and prints {"first": ..., "second": ...};
 * whether the connection was reused is for the server side to tell (the
 * transport does not expose its curl handle).  Errors: the message on stderr,
 * exit status 2; usage errors: exit status 1.
 *
 * ARI (acme/ari.c), through the client:
 *   acme_probe ari [--ca-bundle FILE] DIRECTORY_URL (CERT.pem | --id CERT_ID)
 *     prints {"cert_id", "renewal_info": {"start", "end", "explanation_url",
 *     "retry_after"} or null, "error": {"code", "message"} or null}; exit 0
 *     whenever it printed that (also when the CA or the cert ID failed).
 *   acme_probe ari-issue [--ca-bundle FILE] DIRECTORY_URL HTTP_PORT REPLACES|- NAME
 *     a new account, an order for NAME with "replaces" (- for none), http-01
 *     answered by the built-in server on HTTP_PORT; prints {"ok",
 *     "replaces_dropped", "cert_id", "pem", "problem", "error"}.
 *
 * Profiles, IP identifiers and dns-persist-01 (acme/order.c, acme/ident.c):
 *   acme_probe account [--ca-bundle FILE] --account-key PEM DIRECTORY_URL
 *     registers (or finds) the account of that key; prints {"kid", "error"}.
 *   acme_probe issue [--ca-bundle FILE] [--account-key PEM] [--profile NAME
 *              [--require-profile]] [--method TYPE]... [--http-port N]
 *              [--tls-port N] [--bind ADDR] DIRECTORY_URL NAME...
 *     a new account (or the key's), acme_profile_choose() (preferred unless
 *     --require-profile), an order for the NAMEs (IP literals allowed)
 *     answered by the built-in http-01 / tls-alpn-01 servers on the ports
 *     given (bound to ADDR, default every address) or, for dns-persist-01,
 *     by the record already in DNS; methods default to http-01.  Prints
 *     {"ok", "kid", "issuer_domain_names": [...] (the directory's),
 *     "profiles": {name: description}, "profile_sent",
 *     "profile" (the order's), "authzs": [{"ident", "type", "reused"}],
 *     "sans": ["DNS:x", "IP:y"], "pem", "failed_identifier", "failed_type",
 *     "problem": {"type", "detail"} or null, "error": {"code", "message"} or
 *     null}; exit 0 whenever it printed that.  --send-profile NAME puts NAME
 *     in newOrder as is, without asking the directory (a client that does
 *     not check).
 *   acme_probe persist-record [--wildcard] [--until UNIX] ISSUER ACCOUNT NAME
 *     caa_persist_build(): prints {"owner", "value", "zone_line", "error"}.
 *   acme_probe persist-servers RESOLVER PORT ISSUER ACCOUNT IDENT
 *     caa_zone_servers() for _validation-persist.<base of IDENT> through
 *     RESOLVER, then caa_persist_servers() on port PORT: prints {"target",
 *     "authorizing", "servers": [{"ns", "addr", "answered", "problem",
 *     "authorized", "reason"}], "error"}.
 */
#include "acme/acme.h"
#include "caa/caa.h"

#include <arpa/inet.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_RELS 8

struct probe {
    json_t *trace; /* array of "METHOD URL STATUS" for the current request */
    const char *rels[MAX_RELS];
    size_t nrels;
};

static void on_trace(void *ctx, const char *method, const char *url, long status)
{
    struct probe *p = ctx;
    char line[2048];
    int n = snprintf(line, sizeof line, "%s %s %ld", method, url, status);
    if (n > 0 && (size_t)n < sizeof line)
        json_array_append_new(p->trace, json_string(line));
}

static json_t *str_or_null(const char *s)
{
    return s ? json_string(s) : json_null();
}

static json_t *problem_json(const struct acme_response *r)
{
    struct acme_problem pb;
    struct cp_err err = {0};
    if (acme_problem_parse(r->body, r->body_len, &pb, &err) != CP_OK)
        return json_pack("{s:s}", "error", err.msg);
    json_t *subs = json_array();
    for (size_t i = 0; i < pb.nsubproblems; i++) {
        const struct acme_subproblem *s = &pb.subproblems[i];
        json_array_append_new(subs, json_pack("{s:o,s:o,s:o,s:o}", "type", str_or_null(s->type),
                                              "detail", str_or_null(s->detail), "ident_type",
                                              str_or_null(s->ident_type), "ident_value",
                                              str_or_null(s->ident_value)));
    }
    json_t *o = json_pack("{s:s,s:o,s:i,s:o,s:b}", "type", pb.type, "detail",
                          str_or_null(pb.detail), "status", pb.status, "subproblems", subs,
                          "is_malformed", acme_problem_is(&pb, "malformed"));
    acme_problem_clear(&pb);
    return o;
}

static json_t *response_json(const struct probe *p, const struct acme_response *r, const char *url)
{
    json_t *links = json_array();
    for (size_t i = 0; i < r->nlinks; i++)
        json_array_append_new(links, json_string(r->links[i]));

    json_t *rels = json_object();
    for (size_t i = 0; i < p->nrels; i++) {
        json_t *urls = json_array();
        size_t pos = 0;
        char *u;
        while ((u = acme_link_next(r, p->rels[i], url, &pos)) != NULL) {
            json_array_append_new(urls, json_string(u));
            free(u);
        }
        json_object_set_new(rels, p->rels[i], urls);
    }

    json_t *o = json_pack(
        "{s:I,s:o,s:o,s:o,s:o,s:I,s:o,s:o,s:I,s:o}", "status", (json_int_t)r->status,
        "content_type", str_or_null(r->content_type), "location", str_or_null(r->location),
        "replay_nonce", str_or_null(r->replay_nonce), "retry_after", str_or_null(r->retry_after),
        "retry_after_seconds", (json_int_t)acme_retry_after(r->retry_after, time(NULL)), "links",
        links, "rel", rels, "body_len", (json_int_t)r->body_len, "trace", json_copy(p->trace));
    if (o == NULL)
        return NULL;
    if (r->body != NULL) {
        json_t *parsed = json_loadb(r->body, r->body_len, 0, NULL);
        if (parsed != NULL)
            json_object_set_new(o, "body", json_stringn(r->body, r->body_len));
        json_decref(parsed);
    }
    if (r->content_type != NULL && strcmp(r->content_type, "application/problem+json") == 0)
        json_object_set_new(o, "problem", problem_json(r));
    return o;
}

/* One request; returns its JSON, or NULL after printing the error. */
static json_t *run(struct acme_http *h, struct probe *p, const char *method, const char *url,
                   const char *body)
{
    struct acme_response r = {0};
    struct cp_err err = {0};
    json_array_clear(p->trace);
    if (acme_http_request(h, method, url, body, &r, &err) != CP_OK) {
        fprintf(stderr, "acme_probe: %s (%s)\n", err.msg, cp_code_name(err.code));
        return NULL;
    }
    json_t *o = response_json(p, &r, url);
    acme_response_clear(&r);
    return o;
}

static int usage(void)
{
    fprintf(stderr,
            "usage: acme_probe [--ca-bundle FILE] [--max BYTES] [--timeout-ms MS] [--rel REL]... "
            "(METHOD URL [BODY] [--then METHOD URL [BODY]]... | --twice URL)\n"
            "       acme_probe ari [--ca-bundle FILE] URL (CERT.pem | --id ID)\n"
            "       acme_probe ari-issue [--ca-bundle FILE] URL HTTP_PORT REPLACES|- "
            "NAME\n"
            "       acme_probe account [--ca-bundle FILE] --account-key PEM URL\n"
            "       acme_probe issue [--ca-bundle FILE] [--account-key PEM] [--profile NAME "
            "[--require-profile]] [--method TYPE]... [--http-port N] [--tls-port N] "
            "[--bind ADDR] URL NAME...\n"
            "       acme_probe persist-record [--wildcard] [--until UNIX] ISSUER ACCOUNT NAME\n"
            "       acme_probe persist-servers RESOLVER PORT ISSUER ACCOUNT IDENT\n");
    return 1;
}

/* The requests of "METHOD URL [BODY] --then METHOD URL [BODY] ...", all on
 * one handle; a JSON array of their results, or NULL after an error. */
static json_t *run_sequence(struct acme_http *h, struct probe *p, int argc, char **argv)
{
    json_t *all = json_array();
    for (int i = 0; all != NULL && i < argc;) {
        int n = 0;
        while (i + n < argc && strcmp(argv[i + n], "--then") != 0)
            n++;
        json_t *one = run(h, p, argv[i], argv[i + 1], n == 3 ? argv[i + 2] : NULL);
        if (one == NULL) {
            json_decref(all);
            return NULL;
        }
        json_array_append_new(all, one);
        i += n + 1;
    }
    return all;
}

/* Each "--then"-separated group is METHOD URL [BODY]. */
static bool sequence_ok(int argc, char **argv)
{
    int n = 0;
    for (int i = 0; i <= argc; i++) {
        if (i == argc || strcmp(argv[i], "--then") == 0) {
            if (n != 2 && n != 3)
                return false;
            n = 0;
        } else {
            n++;
        }
    }
    return true;
}

/* ------------------------------------------------------------------- ARI */

static json_t *error_json(const struct cp_err *err)
{
    return json_pack("{s:s,s:s}", "code", cp_code_name(err->code), "message", err->msg);
}

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    char *buf = malloc(1 << 20);
    *len = buf ? fread(buf, 1, (1 << 20) - 1, f) : 0;
    fclose(f);
    if (buf != NULL)
        buf[*len] = '\0';
    return buf;
}

static int print_json(json_t *o)
{
    char *text = o ? json_dumps(o, JSON_SORT_KEYS) : NULL;
    json_decref(o);
    if (text == NULL)
        return 2;
    puts(text);
    free(text);
    return 0;
}

static enum cp_code connect_ca(const char *ca_bundle, const char *url, struct acme_client **c,
                               struct cp_err *err)
{
    struct acme_client_opts o = {.directory_url = url, .http = {.ca_bundle = ca_bundle}};
    struct acme_problem prob = {0};
    enum cp_code rc = acme_client_new(&o, c, &prob, err);
    acme_problem_clear(&prob);
    return rc;
}

/* ari [--ca-bundle FILE] URL (CERT | --id ID) */
static int cmd_ari(int argc, char **argv)
{
    const char *ca_bundle = NULL, *id_arg = NULL;
    int i = 0;
    if (i + 1 < argc && strcmp(argv[i], "--ca-bundle") == 0) {
        ca_bundle = argv[i + 1];
        i += 2;
    }
    if (argc - i == 3 && strcmp(argv[i + 1], "--id") == 0)
        id_arg = argv[i + 2];
    else if (argc - i != 2)
        return usage();
    const char *url = argv[i];

    struct cp_err err = {0};
    struct acme_client *c = NULL;
    char *id = NULL;
    json_t *info = json_null(), *error = json_null();
    if (id_arg == NULL) {
        size_t len = 0;
        char *pem = read_file(argv[i + 1], &len);
        struct acme_chain *chain = NULL;
        if (pem == NULL) {
            fprintf(stderr, "acme_probe: cannot read %s\n", argv[i + 1]);
            return 2;
        }
        if (acme_chain_parse(pem, len, argv[i + 1], &chain, &err) == CP_OK)
            (void)acme_ari_cert_id(chain, &id, &err);
        acme_chain_free(chain);
        free(pem);
    } else {
        id = strdup(id_arg);
    }
    if (id != NULL && connect_ca(ca_bundle, url, &c, &err) == CP_OK) {
        struct acme_renewal_info ri;
        if (acme_renewal_info_get(c, id, &ri, &err) == CP_OK) {
            json_decref(info);
            info = json_pack("{s:I,s:I,s:o,s:I}", "start", (json_int_t)ri.start, "end",
                             (json_int_t)ri.end, "explanation_url", str_or_null(ri.explanation_url),
                             "retry_after", (json_int_t)ri.retry_after);
            acme_renewal_info_clear(&ri);
        }
    }
    if (err.code != CP_OK) {
        json_decref(error);
        error = error_json(&err);
    }
    int status = print_json(json_pack("{s:o,s:o,s:o}", "cert_id", str_or_null(id), "renewal_info",
                                      info, "error", error));
    free(id);
    acme_client_free(c);
    return status;
}

static bool http01_only(void *ctx, const char *type, const char *ident)
{
    (void)ctx;
    (void)ident;
    return strcmp(type, "http-01") == 0;
}

static enum cp_code deploy(void *ctx, const char *type, const char *domain, const char *token,
                           const char *key_authz, struct cp_err *err)
{
    (void)type;
    (void)domain;
    return acme_solver_server_add(ctx, token, key_authz, err);
}

static void cleanup(void *ctx, const char *type, const char *domain, const char *token,
                    const char *key_authz)
{
    (void)ctx;
    (void)type;
    (void)domain;
    (void)token;
    (void)key_authz;
}

/* ari-issue [--ca-bundle FILE] URL HTTP_PORT REPLACES|- NAME */
static int cmd_ari_issue(int argc, char **argv)
{
    const char *ca_bundle = NULL;
    int i = 0;
    if (i + 1 < argc && strcmp(argv[i], "--ca-bundle") == 0) {
        ca_bundle = argv[i + 1];
        i += 2;
    }
    if (argc - i != 4)
        return usage();
    const char *url = argv[i], *replaces = strcmp(argv[i + 2], "-") ? argv[i + 2] : NULL;
    const char *name = argv[i + 3];
    int port = atoi(argv[i + 1]);

    struct cp_err err = {0};
    struct acme_client *c = NULL;
    struct acme_key *account_key = NULL, *cert_key = NULL;
    struct acme_solver_server *srv = NULL;
    struct acme_issue_result res = {0};
    struct acme_problem prob = {0};
    char *kid = NULL, *id = NULL;
    enum cp_code rc = connect_ca(ca_bundle, url, &c, &err);
    if (rc == CP_OK)
        rc = acme_key_generate(ACME_KEY_EC256, &account_key, &err);
    if (rc == CP_OK)
        rc = acme_key_generate(ACME_KEY_EC256, &cert_key, &err);
    if (rc == CP_OK) {
        struct acme_account_req areq = {.agree_tos = true};
        rc = acme_account_register(c, account_key, &areq, &kid, &prob, &err);
    }
    if (rc == CP_OK)
        rc = acme_http01_server_start("127.0.0.1", port, &srv, &err);
    if (rc == CP_OK) {
        static const char *const methods[] = {"http-01"};
        const char *names[] = {name};
        struct acme_issue_req req = {
            .names = names,
            .n = 1,
            .methods = methods,
            .nmethods = 1,
            .cert_key = cert_key,
            .replaces = replaces,
            .solver = {.supports = http01_only, .deploy = deploy, .cleanup = cleanup, .ctx = srv},
        };
        rc = acme_issue(c, &req, &res, &err);
    }
    if (rc == CP_OK) {
        struct acme_chain *chain = NULL;
        rc = acme_chain_parse(res.pem, strlen(res.pem), "certificate", &chain, &err);
        if (rc == CP_OK)
            rc = acme_ari_cert_id(chain, &id, &err);
        acme_chain_free(chain);
    }
    const char *ptype = res.problem.type ? res.problem.type : prob.type;
    int status = print_json(json_pack(
        "{s:b,s:b,s:o,s:o,s:o,s:o}", "ok", rc == CP_OK, "replaces_dropped", res.replaces_dropped,
        "cert_id", str_or_null(id), "pem", str_or_null(res.pem), "problem", str_or_null(ptype),
        "error", rc == CP_OK ? json_null() : error_json(&err)));
    acme_solver_server_stop(srv);
    acme_issue_result_clear(&res);
    acme_problem_clear(&prob);
    acme_client_free(c);
    acme_key_free(account_key);
    acme_key_free(cert_key);
    free(kid);
    free(id);
    return status;
}

/* -------------------------------------- profiles, IP, dns-persist-01 */

#define MAX_METHODS 4

struct issue_ctx {
    const char *methods[MAX_METHODS];
    size_t nmethods;
    struct acme_solver_server *http, *tls;
};

static bool issue_supports(void *ctx, const char *type, const char *ident)
{
    struct issue_ctx *x = ctx;
    (void)ident;
    for (size_t i = 0; i < x->nmethods; i++)
        if (strcmp(x->methods[i], type) == 0)
            return (strcmp(type, "http-01") != 0 || x->http != NULL) &&
                   (strcmp(type, "tls-alpn-01") != 0 || x->tls != NULL);
    return false;
}

static enum cp_code issue_deploy(void *ctx, const char *type, const char *domain, const char *token,
                                 const char *key_authz, struct cp_err *err)
{
    struct issue_ctx *x = ctx;
    if (strcmp(type, "http-01") == 0)
        return acme_solver_server_add(x->http, token, key_authz, err);
    if (strcmp(type, "tls-alpn-01") == 0)
        return acme_solver_server_add(x->tls, domain, key_authz, err);
    return CP_OK; /* dns-persist-01: the record stands in DNS already */
}

/* The leaf's subjectAltName entries as "DNS:name" / "IP:address". */
static json_t *leaf_sans(const char *pem)
{
    json_t *out = json_array();
    struct acme_chain *chain = NULL;
    struct cp_err err;
    if (pem == NULL || acme_chain_parse(pem, strlen(pem), "certificate", &chain, &err) != CP_OK)
        return out;
    GENERAL_NAMES *gens =
        X509_get_ext_d2i(acme_chain_x509(chain, 0), NID_subject_alt_name, NULL, NULL);
    for (int i = 0; gens != NULL && i < sk_GENERAL_NAME_num(gens); i++) {
        const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
        char text[300];
        if (g->type == GEN_DNS) {
            snprintf(text, sizeof text, "DNS:%.*s", ASN1_STRING_length(g->d.dNSName),
                     (const char *)ASN1_STRING_get0_data(g->d.dNSName));
        } else if (g->type == GEN_IPADD) {
            char ip[INET6_ADDRSTRLEN] = "?";
            int n = ASN1_STRING_length(g->d.iPAddress);
            (void)inet_ntop(n == 4 ? AF_INET : AF_INET6, ASN1_STRING_get0_data(g->d.iPAddress), ip,
                            sizeof ip);
            snprintf(text, sizeof text, "IP:%s", ip);
        } else {
            continue;
        }
        json_array_append_new(out, json_string(text));
    }
    GENERAL_NAMES_free(gens);
    acme_chain_free(chain);
    return out;
}

static enum cp_code load_key(const char *path, struct acme_key **k, struct cp_err *err)
{
    size_t len = 0;
    char *pem = read_file(path, &len);
    if (pem == NULL)
        return cp_err_set(err, CP_EIO, "cannot read %s", path);
    enum cp_code rc = acme_key_from_pem(pem, len, path, k, err);
    free(pem);
    return rc;
}

/* A connected client with an account (the key's, or a new one). */
static enum cp_code open_account(const char *ca_bundle, const char *url, const char *key_path,
                                 struct acme_client **c, struct acme_key **key, char **kid,
                                 struct acme_problem *prob, struct cp_err *err)
{
    enum cp_code rc = connect_ca(ca_bundle, url, c, err);
    if (rc == CP_OK)
        rc = key_path ? load_key(key_path, key, err) : acme_key_generate(ACME_KEY_EC256, key, err);
    if (rc == CP_OK) {
        struct acme_account_req areq = {.agree_tos = true};
        rc = acme_account_register(*c, *key, &areq, kid, prob, err);
    }
    return rc;
}

/* account [--ca-bundle FILE] --account-key PEM URL */
static int cmd_account(int argc, char **argv)
{
    const char *ca_bundle = NULL, *key_path = NULL;
    int i = 0;
    for (; i + 1 < argc && strncmp(argv[i], "--", 2) == 0; i += 2) {
        if (strcmp(argv[i], "--ca-bundle") == 0)
            ca_bundle = argv[i + 1];
        else if (strcmp(argv[i], "--account-key") == 0)
            key_path = argv[i + 1];
        else
            return usage();
    }
    if (argc - i != 1 || key_path == NULL)
        return usage();
    struct acme_client *c = NULL;
    struct acme_key *key = NULL;
    struct acme_problem prob = {0};
    struct cp_err err = {0};
    char *kid = NULL;
    enum cp_code rc = open_account(ca_bundle, argv[i], key_path, &c, &key, &kid, &prob, &err);
    int status = print_json(json_pack("{s:o,s:o}", "kid", str_or_null(kid), "error",
                                      rc == CP_OK ? json_null() : error_json(&err)));
    free(kid);
    acme_problem_clear(&prob);
    acme_key_free(key);
    acme_client_free(c);
    return status;
}

/* issue [options] URL NAME... (see the top of the file) */
static int cmd_issue(int argc, char **argv)
{
    const char *ca_bundle = NULL, *key_path = NULL, *profile = NULL, *bind = NULL;
    const char *forced = NULL;
    bool require = false;
    int http_port = 0, tls_port = 0, i = 0;
    struct issue_ctx x = {0};
    for (; i < argc && strncmp(argv[i], "--", 2) == 0; i++) {
        if (strcmp(argv[i], "--require-profile") == 0) {
            require = true;
            continue;
        }
        if (i + 1 >= argc)
            return usage();
        const char *v = argv[++i];
        if (strcmp(argv[i - 1], "--ca-bundle") == 0)
            ca_bundle = v;
        else if (strcmp(argv[i - 1], "--account-key") == 0)
            key_path = v;
        else if (strcmp(argv[i - 1], "--profile") == 0)
            profile = v;
        else if (strcmp(argv[i - 1], "--send-profile") == 0)
            forced = v;
        else if (strcmp(argv[i - 1], "--bind") == 0)
            bind = v;
        else if (strcmp(argv[i - 1], "--http-port") == 0)
            http_port = atoi(v);
        else if (strcmp(argv[i - 1], "--tls-port") == 0)
            tls_port = atoi(v);
        else if (strcmp(argv[i - 1], "--method") == 0 && x.nmethods < MAX_METHODS)
            x.methods[x.nmethods++] = v;
        else
            return usage();
    }
    if (argc - i < 2)
        return usage();
    if (x.nmethods == 0)
        x.methods[x.nmethods++] = "http-01";
    const char *url = argv[i];
    const char *const *names = (const char *const *)(argv + i + 1);
    size_t nnames = (size_t)(argc - i - 1);

    struct acme_client *c = NULL;
    struct acme_key *account_key = NULL, *cert_key = NULL;
    struct acme_issue_result res = {0};
    struct acme_problem prob = {0};
    struct cp_err err = {0};
    char *kid = NULL;
    const char *use = NULL;
    json_t *profiles = json_object(), *issuers = json_array();
    enum cp_code rc = open_account(ca_bundle, url, key_path, &c, &account_key, &kid, &prob, &err);
    if (rc == CP_OK) {
        const struct acme_directory *d = acme_client_directory(c);
        for (size_t p = 0; p < d->nprofiles; p++)
            json_object_set_new(profiles, d->profiles[p].name,
                                json_string(d->profiles[p].description));
        for (size_t p = 0; p < d->nissuer_domain_names; p++)
            json_array_append_new(issuers, json_string(d->issuer_domain_names[p]));
        rc = acme_profile_choose(
            d, profile, require ? ACME_PROFILE_REQUIRED : ACME_PROFILE_PREFERRED, &use, &err);
    }
    if (rc == CP_OK)
        rc = acme_key_generate(ACME_KEY_EC256, &cert_key, &err);
    if (rc == CP_OK && http_port > 0)
        rc = acme_http01_server_start(bind, http_port, &x.http, &err);
    if (rc == CP_OK && tls_port > 0)
        rc = acme_tlsalpn01_server_start(bind, tls_port, &x.tls, &err);
    if (rc == CP_OK) {
        struct acme_issue_req req = {
            .names = names,
            .n = nnames,
            .methods = x.methods,
            .nmethods = x.nmethods,
            .cert_key = cert_key,
            .profile = forced ? forced : use,
            .solver = {.supports = issue_supports,
                       .deploy = issue_deploy,
                       .cleanup = cleanup,
                       .ctx = &x},
        };
        rc = acme_issue(c, &req, &res, &err);
    }
    if (rc == CP_OK && res.pem != NULL) {
        struct acme_chain *chain = NULL;
        rc = acme_chain_parse(res.pem, strlen(res.pem), "certificate", &chain, &err);
        if (rc == CP_OK)
            rc = acme_chain_check_names(chain, names, nnames, &err);
        acme_chain_free(chain);
    }
    json_t *authzs = json_array();
    for (size_t a = 0; a < res.nauthzs; a++)
        json_array_append_new(authzs, json_pack("{s:s,s:o,s:b}", "ident", res.authzs[a].ident,
                                                "type", str_or_null(res.authzs[a].type), "reused",
                                                res.authzs[a].reused));
    const struct acme_problem *pb = res.problem.type ? &res.problem : &prob;
    json_t *problem =
        pb->type ? json_pack("{s:s,s:o}", "type", pb->type, "detail", str_or_null(pb->detail))
                 : json_null();
    int status = print_json(json_pack(
        "{s:b,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o}", "ok", rc == CP_OK, "kid",
        str_or_null(kid), "issuer_domain_names", issuers, "profiles", profiles, "profile_sent",
        str_or_null(forced ? forced : use), "profile", str_or_null(res.profile), "authzs", authzs,
        "sans", leaf_sans(res.pem), "pem", str_or_null(res.pem), "failed_identifier",
        str_or_null(res.failed_identifier), "failed_type", str_or_null(res.failed_type), "problem",
        problem, "error", rc == CP_OK ? json_null() : error_json(&err)));
    acme_solver_server_stop(x.http);
    acme_solver_server_stop(x.tls);
    acme_issue_result_clear(&res);
    acme_problem_clear(&prob);
    acme_client_free(c);
    acme_key_free(account_key);
    acme_key_free(cert_key);
    free(kid);
    return status;
}

/* persist-record [--wildcard] [--until UNIX] ISSUER ACCOUNT NAME */
static int cmd_persist_record(int argc, char **argv)
{
    struct caa_persist_spec spec = {0};
    int i = 0;
    for (; i < argc && strncmp(argv[i], "--", 2) == 0; i++) {
        if (strcmp(argv[i], "--wildcard") == 0)
            spec.wildcard = true;
        else if (strcmp(argv[i], "--until") == 0 && i + 1 < argc)
            spec.persist_until = atoll(argv[++i]);
        else
            return usage();
    }
    if (argc - i != 3)
        return usage();
    spec.issuer = argv[i];
    spec.account_uri = argv[i + 1];
    struct caa_persist_record r;
    struct cp_err err = {0};
    enum cp_code rc = caa_persist_build(argv[i + 2], &spec, &r, &err);
    return print_json(json_pack("{s:o,s:o,s:o,s:o}", "owner",
                                rc == CP_OK ? json_string(r.owner) : json_null(), "value",
                                rc == CP_OK ? json_string(r.value) : json_null(), "zone_line",
                                rc == CP_OK ? json_string(r.zone_line) : json_null(), "error",
                                rc == CP_OK ? json_null() : error_json(&err)));
}

/* persist-servers RESOLVER PORT ISSUER ACCOUNT IDENT */
static int cmd_persist_servers(int argc, char **argv)
{
    if (argc != 5)
        return usage();
    const char *resolvers[] = {argv[0]};
    struct caa_resolver_opts ro = {.servers = resolvers, .nservers = 1};
    const char *issuers[] = {argv[2]};
    struct caa_persist_check chk = {
        .issuers = issuers, .nissuers = 1, .account_uri = argv[3], .now = time(NULL)};
    const char *ident = argv[4];
    const char *base = strncmp(ident, "*.", 2) == 0 ? ident + 2 : ident;
    char qname[CAA_NAME_MAX + 1], zone[CAA_NAME_MAX + 1], target[CAA_NAME_MAX + 1] = "";
    struct caa_ns *ns = NULL;
    size_t nns = 0, nauth = 0;
    struct caa_persist_server *out = NULL;
    struct cp_err err = {0};
    json_t *servers = json_array();
    snprintf(qname, sizeof qname, "%s.%s", CAA_PERSIST_LABEL, base);
    enum cp_code rc = caa_zone_servers(&ro, qname, zone, target, &ns, &nns, &err);
    if (rc == CP_OK && (out = calloc(nns, sizeof *out)) == NULL)
        rc = cp_err_set(&err, CP_ENOMEM, "out of memory");
    if (rc == CP_OK)
        rc = caa_persist_servers(ns, nns, (unsigned)atoi(argv[1]), target, ident, &chk, out, &nauth,
                                 &err);
    for (size_t i = 0; rc == CP_OK && i < nns; i++)
        json_array_append_new(
            servers, json_pack("{s:s,s:s,s:b,s:s,s:b,s:s}", "ns", ns[i].name, "addr", ns[i].addr,
                               "answered", out[i].answered, "problem", out[i].problem, "authorized",
                               out[i].verdict.authorized, "reason", out[i].verdict.reason));
    int status = print_json(json_pack("{s:s,s:I,s:o,s:o}", "target", target, "authorizing",
                                      (json_int_t)nauth, "servers", servers, "error",
                                      rc == CP_OK ? json_null() : error_json(&err)));
    free(ns);
    free(out);
    return status;
}

int main(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "ari") == 0)
        return cmd_ari(argc - 2, argv + 2);
    if (argc >= 2 && strcmp(argv[1], "ari-issue") == 0)
        return cmd_ari_issue(argc - 2, argv + 2);
    if (argc >= 2 && strcmp(argv[1], "account") == 0)
        return cmd_account(argc - 2, argv + 2);
    if (argc >= 2 && strcmp(argv[1], "issue") == 0)
        return cmd_issue(argc - 2, argv + 2);
    if (argc >= 2 && strcmp(argv[1], "persist-record") == 0)
        return cmd_persist_record(argc - 2, argv + 2);
    if (argc >= 2 && strcmp(argv[1], "persist-servers") == 0)
        return cmd_persist_servers(argc - 2, argv + 2);

    struct acme_http_opts opts = {0};
    struct probe p = {0};
    struct acme_http *h = NULL;
    struct cp_err err = {0};
    bool twice = false;
    int i = 1, status = 2;
    json_t *out = NULL;

    for (; i < argc && strncmp(argv[i], "--", 2) == 0; i++) {
        if (strcmp(argv[i], "--twice") == 0) {
            twice = true;
        } else if (i + 1 >= argc) {
            return usage();
        } else if (strcmp(argv[i], "--ca-bundle") == 0) {
            opts.ca_bundle = argv[++i];
        } else if (strcmp(argv[i], "--max") == 0) {
            char *end;
            unsigned long long v = strtoull(argv[++i], &end, 10);
            if (*end != '\0' || v == 0)
                return usage();
            opts.max_response = (size_t)v;
        } else if (strcmp(argv[i], "--timeout-ms") == 0) {
            char *end;
            long v = strtol(argv[++i], &end, 10);
            if (*end != '\0' || v <= 0)
                return usage();
            opts.timeout_ms = v;
        } else if (strcmp(argv[i], "--rel") == 0 && p.nrels < MAX_RELS) {
            p.rels[p.nrels++] = argv[++i];
        } else {
            return usage();
        }
    }
    if (twice ? argc - i != 1 : !sequence_ok(argc - i, argv + i))
        return usage();

    opts.trace = on_trace;
    opts.trace_ctx = &p;
    p.trace = json_array();
    if (p.trace == NULL)
        return 2;
    if (acme_http_new(&opts, &h, &err) != CP_OK) {
        fprintf(stderr, "acme_probe: %s (%s)\n", err.msg, cp_code_name(err.code));
        goto out;
    }
    if (twice) {
        json_t *first = run(h, &p, "GET", argv[i], NULL);
        json_t *second = first ? run(h, &p, "GET", argv[i], NULL) : NULL;
        if (second != NULL)
            out = json_pack("{s:o,s:o}", "first", first, "second", second);
        else
            json_decref(first);
    } else {
        json_t *all = run_sequence(h, &p, argc - i, argv + i);
        /* One request: its object; several: {"responses": [...]}. */
        if (all != NULL && json_array_size(all) == 1)
            out = json_incref(json_array_get(all, 0));
        else if (all != NULL)
            out = json_pack("{s:O}", "responses", all);
        json_decref(all);
    }
    if (out != NULL) {
        char *text = json_dumps(out, JSON_SORT_KEYS);
        if (text != NULL) {
            puts(text);
            status = 0;
        }
        free(text);
    }
out:
    json_decref(out);
    json_decref(p.trace);
    acme_http_free(h);
    return status;
}
