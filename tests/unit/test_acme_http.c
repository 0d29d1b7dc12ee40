/* tests/unit/test_acme_http.c - acme/http.c without a network: RFC 8288 Link
 * parsing and resolution (acme_link_next) and acme_response_clear.  The
 * transport itself is tested against Pebble in tests/integration/test_acme_http.py. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "acme/acme.h"

/* A response with the given raw Link values (NULL-terminated list). */
static void links_response(struct acme_response *r, const char *const *values)
{
    memset(r, 0, sizeof *r);
    while (values[r->nlinks] != NULL)
        r->nlinks++;
    r->links = calloc(r->nlinks ? r->nlinks : 1, sizeof *r->links);
    assert_non_null(r->links);
    for (size_t i = 0; i < r->nlinks; i++) {
        r->links[i] = strdup(values[i]);
        assert_non_null(r->links[i]);
    }
}

/* Every URL acme_link_next returns for rel, joined with " ". */
static void expect_links(const struct acme_response *r, const char *rel, const char *base,
                         const char *want)
{
    char got[2048] = "";
    size_t pos = 0, used = 0;
    char *u;
    while ((u = acme_link_next(r, rel, base, &pos)) != NULL) {
        int n = snprintf(got + used, sizeof got - used, "%s%s", used ? " " : "", u);
        assert_true(n > 0 && (size_t)n < sizeof got - used);
        used += (size_t)n;
        free(u);
    }
    assert_null(acme_link_next(r, rel, base, &pos)); /* stays exhausted */
    assert_string_equal(got, want);
}

static void link_simple(void **state)
{
    (void)state;
    static const char *const v[] = {
        "<https://ca.test/acme/issuer-cert>;rel=\"up\"",
        "<https://ca.test/dir>;rel=\"index\"",
        NULL,
    };
    struct acme_response r;
    links_response(&r, v);
    expect_links(&r, "up", "https://ca.test/acme/cert/1", "https://ca.test/acme/issuer-cert");
    expect_links(&r, "index", NULL, "https://ca.test/dir");
    expect_links(&r, "alternate", NULL, "");
    acme_response_clear(&r);
    assert_null(r.links);
    assert_int_equal(r.nlinks, 0);
}

static void link_several_in_one_value(void **state)
{
    (void)state;
    static const char *const v[] = {
        "<https://ca.test/cert/1/alt/1>; rel=\"alternate\", <https://ca.test/dir>; rel=index,"
        " <https://ca.test/cert/1/alt/2> ; rel = alternate",
        "<https://ca.test/cert/1/alt/3>;title=\"a, b; <c>\";rel=\"alternate\"",
        NULL,
    };
    struct acme_response r;
    links_response(&r, v);
    expect_links(&r, "alternate", NULL,
                 "https://ca.test/cert/1/alt/1 https://ca.test/cert/1/alt/2 "
                 "https://ca.test/cert/1/alt/3");
    expect_links(&r, "index", NULL, "https://ca.test/dir");
    acme_response_clear(&r);
}

static void link_rel_forms(void **state)
{
    (void)state;
    static const char *const v[] = {
        "<https://a.test/1>; rel=\"next up\"",       /* several relation types */
        "<https://a.test/2>; REL=UP",                /* case-insensitive name and type */
        "<https://a.test/3>; rel=\"upper\"",         /* not "up" */
        "<https://a.test/4>; rel=\"index\"; rel=up", /* only the first rel counts */
        "<https://a.test/5>; anchor=\"#x\"; rel=\"  up  \"",
        "<https://a.test/6>; rev=up",
        NULL,
    };
    struct acme_response r;
    links_response(&r, v);
    expect_links(&r, "up", NULL, "https://a.test/1 https://a.test/2 https://a.test/5");
    expect_links(&r, "next", NULL, "https://a.test/1");
    acme_response_clear(&r);
}

static void link_relative(void **state)
{
    (void)state;
    static const char *const v[] = {
        "</acme/issuer>;rel=\"up\"", "<../chain/2>;rel=\"up\"",           "<3>;rel=up",
        "<//other.test/x>;rel=up",   "<https://abs.test/y?a=1#f>;rel=up", NULL,
    };
    struct acme_response r;
    links_response(&r, v);
    expect_links(&r, "up", "https://ca.test:14000/acme/cert/abc",
                 "https://ca.test:14000/acme/issuer https://ca.test:14000/acme/chain/2 "
                 "https://ca.test:14000/acme/cert/3 https://other.test/x https://abs.test/y?a=1#f");
    /* Without a base, relative references (even "//host/...") cannot be
     * resolved and are skipped. */
    expect_links(&r, "up", NULL, "https://abs.test/y?a=1#f");
    acme_response_clear(&r);
}

static void link_malformed_skipped(void **state)
{
    (void)state;
    static const char *const v[] = {
        "https://a.test/no-brackets; rel=up, <https://a.test/ok1>; rel=up",
        "<https://a.test/unterminated; rel=up",
        "<https://a.test/bad-param>; =x; rel=up, <https://a.test/ok2>; rel=up",
        "<https://a.test/open-quote>; rel=\"up, <https://a.test/x>; rel=up",
        "",
        " , ,<https://a.test/ok3>;rel=up,",
        NULL,
    };
    struct acme_response r;
    links_response(&r, v);
    expect_links(&r, "up", NULL, "https://a.test/ok1 https://a.test/ok2 https://a.test/ok3");
    acme_response_clear(&r);
}

static void link_pos_and_empty(void **state)
{
    (void)state;
    static const char *const v[] = {
        "<https://a.test/1>;rel=up, <https://a.test/2>;rel=up",
        NULL,
    };
    struct acme_response r;
    links_response(&r, v);
    size_t pos = 1; /* link-values count, not header values */
    char *u = acme_link_next(&r, "up", NULL, &pos);
    assert_string_equal(u, "https://a.test/2");
    assert_int_equal(pos, 2);
    free(u);
    pos = 0;
    assert_null(acme_link_next(&r, NULL, NULL, &pos));
    assert_null(acme_link_next(&r, "up", NULL, NULL));
    assert_null(acme_link_next(NULL, "up", NULL, &pos));
    acme_response_clear(&r);

    struct acme_response empty = {0};
    pos = 0;
    assert_null(acme_link_next(&empty, "up", NULL, &pos));
    assert_int_equal(pos, 0);
}

/* ------------------------------------------------------- no network needed */

static int traced;

static void count_trace(void *ctx, const char *method, const char *url, long status)
{
    (void)ctx;
    (void)method;
    (void)url;
    (void)status;
    traced++;
}

static void refused_url(struct acme_http *h, const char *method, const char *url, const char *body,
                        enum cp_code want, const char *msg_part)
{
    struct acme_response r = {0};
    struct cp_err err = {0};
    traced = 0;
    assert_int_equal(acme_http_request(h, method, url, body, &r, &err), want);
    if (strstr(err.msg, msg_part) == NULL)
        fail_msg("message \"%s\" lacks \"%s\"", err.msg, msg_part);
    assert_int_equal(r.status, 0);
    assert_null(r.body);
    assert_int_equal(traced, 0); /* refused before any request */
}

static void plain_http_only_to_loopback(void **state)
{
    (void)state;
    struct acme_http_opts opts = {.trace = count_trace};
    struct acme_http *h = NULL;
    assert_int_equal(acme_http_new(&opts, &h, NULL), CP_OK);
    refused_url(h, "GET", "http://example.invalid/dir", NULL, CP_EINVAL,
                "refusing http://example.invalid/dir: ACME needs https");
    refused_url(h, "GET", "http://127.0.0.2/dir", NULL, CP_EINVAL, "ACME needs https");
    refused_url(h, "POST", "http://localhost.example/x", "{}", CP_EINVAL, "ACME needs https");
    refused_url(h, "GET", "ftp://127.0.0.1/x", NULL, CP_EINVAL, "scheme ftp is not https");
    refused_url(h, "GET", "file:///etc/passwd", NULL, CP_EINVAL, "refusing file:///etc/passwd");
    refused_url(h, "GET", "no url at all", NULL, CP_EINVAL, "invalid URL");
    refused_url(h, "GET", "", NULL, CP_EINVAL, "invalid URL");
    refused_url(h, "PUT", "https://127.0.0.1/", NULL, CP_EINTERNAL, "unsupported method PUT");
    refused_url(h, "GET", "https://127.0.0.1/", "{}", CP_EINTERNAL, "GET with a body");
    acme_http_free(h);
    acme_http_free(NULL);
}

static char *temp_file(const char *content)
{
    char *path = strdup("/tmp/test_acme_http.XXXXXX");
    assert_non_null(path);
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    FILE *f = fdopen(fd, "w");
    assert_non_null(f);
    fputs(content, f);
    fclose(f);
    return path;
}

static void bad_ca_bundle(void **state)
{
    (void)state;
    struct acme_http_opts opts = {.ca_bundle = "/nonexistent/ca.pem"};
    struct acme_http *h = (struct acme_http *)&opts; /* must be reset to NULL */
    struct cp_err err = {0};
    assert_int_equal(acme_http_new(&opts, &h, &err), CP_EIO);
    assert_null(h);
    assert_non_null(strstr(err.msg, "/nonexistent/ca.pem"));

    char *path = temp_file("just some text\n");
    opts.ca_bundle = path;
    assert_int_equal(acme_http_new(&opts, &h, &err), CP_EINVAL);
    assert_non_null(strstr(err.msg, "holds no PEM certificate"));
    unlink(path);
    free(path);

    path = temp_file("-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----\n");
    opts.ca_bundle = path;
    assert_int_equal(acme_http_new(&opts, &h, &err), CP_EINVAL);
    assert_non_null(strstr(err.msg, "bad PEM certificate"));
    unlink(path);
    free(path);

    struct acme_http_opts neg = {.timeout_ms = -1};
    assert_int_equal(acme_http_new(&neg, &h, &err), CP_EINVAL);
    struct acme_http_opts ua = {.user_agent = "x\r\nX-Injected: 1"};
    assert_int_equal(acme_http_new(&ua, &h, &err), CP_EINVAL);
    assert_null(h);
}

static void url_origins(void **state)
{
    (void)state;
    char o[64];
    assert_true(acme_url_origin("https://ACME.Example.org/dir", o, sizeof o));
    assert_string_equal(o, "https://acme.example.org:443");
    assert_true(acme_url_origin("https://acme.example.org:443/acme/new-order", o, sizeof o));
    assert_string_equal(o, "https://acme.example.org:443");
    assert_true(acme_url_origin("https://127.0.0.1:14000/dir", o, sizeof o));
    assert_string_equal(o, "https://127.0.0.1:14000");
    assert_true(acme_url_origin("http://[::1]/x", o, sizeof o));
    assert_string_equal(o, "http://[::1]:80");
    /* A user part does not change where the request goes; the origin ignores it. */
    assert_true(acme_url_origin("https://user@acme.example.org/x", o, sizeof o));
    assert_string_equal(o, "https://acme.example.org:443");
    assert_false(acme_url_origin("/relative/path", o, sizeof o));
    assert_false(acme_url_origin(NULL, o, sizeof o));
    char tiny[8];
    assert_false(acme_url_origin("https://acme.example.org/dir", tiny, sizeof tiny));
}

static void response_clear_everything(void **state)
{
    (void)state;
    static const char *const v[] = {"<https://a.test/1>;rel=up", NULL};
    struct acme_response r;
    links_response(&r, v);
    r.status = 200;
    r.body = strdup("{}");
    r.body_len = 2;
    r.content_type = strdup("application/json");
    r.location = strdup("https://a.test/acct/1");
    r.replay_nonce = strdup("abc");
    r.retry_after = strdup("5");
    acme_response_clear(&r); /* ASan/LSan report anything left behind */
    assert_int_equal(r.status, 0);
    assert_null(r.body);
    assert_int_equal(r.body_len, 0);
    assert_null(r.content_type);
    assert_null(r.location);
    assert_null(r.replay_nonce);
    assert_null(r.retry_after);
    assert_null(r.links);
    acme_response_clear(&r);
    acme_response_clear(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(link_simple),
        cmocka_unit_test(link_several_in_one_value),
        cmocka_unit_test(link_rel_forms),
        cmocka_unit_test(link_relative),
        cmocka_unit_test(link_malformed_skipped),
        cmocka_unit_test(link_pos_and_empty),
        cmocka_unit_test(plain_http_only_to_loopback),
        cmocka_unit_test(bad_ca_bundle),
        cmocka_unit_test(response_clear_everything),
        cmocka_unit_test(url_origins),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
