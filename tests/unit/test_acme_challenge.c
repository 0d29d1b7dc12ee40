/* tests/unit/test_acme_challenge.c - acme/challenge.c, acme/solver_http01.c and
 * acme/solver_tlsalpn01.c: key authorizations, the dns-01 value, webroot files,
 * and the built-in http-01 and tls-alpn-01 servers on loopback. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <curl/curl.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "acme/acme.h"
#include "acme/solver_int.h" /* SOLVER_MAX_CONNS: the cap the flood tests go past */
#include "tests/unit/fixture.h"

#define TOKEN   "evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA"
#define THUMB   "9jg46WB3rR_AHD-EBXdN7cBkH1WOu0tA3M9fm21mqTI"
#define KEYAUTH TOKEN "." THUMB
#define PREFIX  "/.well-known/acme-challenge/"

/* ---------------------------------------------------------------- helpers */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* A TCP connection to 127.0.0.1:port with 5 s send/receive time-outs. */
static int connect_local(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct timeval tv = {.tv_sec = 5};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((unsigned short)port)};
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&sin, sizeof sin), 0);
    return fd;
}

/* A TCP connection to addr:port (IPv4 text); -1 with errno when refused. */
static int try_connect(const char *addr, int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((unsigned short)port)};
    assert_int_equal(inet_pton(AF_INET, addr, &sin.sin_addr), 1);
    if (connect(fd, (struct sockaddr *)&sin, sizeof sin) != 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

/* Room for `need` open descriptors: raise the soft limit (up to the hard
 * one) if it is lower.  false when even the hard limit is too low. */
static bool fd_room(rlim_t need)
{
    struct rlimit rl;
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &rl), 0);
    if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < need) {
        if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < need)
            return false;
        rl.rlim_cur = need;
        assert_int_equal(setrlimit(RLIMIT_NOFILE, &rl), 0);
    }
    return true;
}

/* Did the server close (or reset) this connection?  Reads and drops what
 * it sent without waiting: EOF or an error is "closed", nothing more to read
 * is "open". */
static bool peer_closed(int fd)
{
    char buf[4096];
    for (;;) {
        ssize_t r = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
        if (r > 0)
            continue;
        if (r == 0)
            return true;
        if (errno == EINTR)
            continue;
        return errno != EAGAIN && errno != EWOULDBLOCK;
    }
}

/*
 * How many of fds[0..n) (in the order they were connected, hence accepted)
 * the server has closed, asserting that they are the oldest ones: going
 * from the newest to the oldest, once one is closed every older one must be
 * closed too.  Scanning in that direction keeps this true even if deadlines
 * expire during the scan (they expire in accept order too).
 */
static size_t closed_oldest_first(const int *fds, size_t n)
{
    size_t closed = 0;
    for (size_t i = n; i-- > 0;) {
        bool c = peer_closed(fds[i]);
        if (closed > 0 && !c)
            fail_msg("connection %zu of %zu is open but a newer one was closed", i, n);
        closed += c;
    }
    return closed;
}

static char *make_tmpdir(void)
{
    char tmpl[] = "/tmp/cp-challenge-XXXXXX";
    char *d = mkdtemp(tmpl);
    assert_non_null(d);
    return strdup(d);
}

static char *path_join(const char *a, const char *b)
{
    size_t n = strlen(a) + strlen(b) + 2;
    char *p = malloc(n);
    assert_non_null(p);
    snprintf(p, n, "%s/%s", a, b);
    return p;
}

static bool exists(const char *dir, const char *rel)
{
    char *p = path_join(dir, rel);
    struct stat st;
    bool r = lstat(p, &st) == 0;
    free(p);
    return r;
}

static mode_t mode_of(const char *dir, const char *rel)
{
    char *p = path_join(dir, rel);
    struct stat st;
    assert_int_equal(lstat(p, &st), 0);
    free(p);
    return st.st_mode & 07777;
}

static void rm_tree(const char *dir)
{
    static const char *const rels[] = {(".well-known/acme-challenge/" TOKEN),
                                       ".well-known/acme-challenge/second",
                                       ".well-known/acme-challenge/README",
                                       ".well-known/acme-challenge",
                                       ".well-known",
                                       "target",
                                       ""};
    for (size_t i = 0; i < sizeof rels / sizeof rels[0]; i++) {
        char *p = path_join(dir, rels[i]);
        if (unlink(p) != 0)
            (void)rmdir(p);
        free(p);
    }
    (void)rmdir(dir);
}

/* base64url(SHA-256(s)) computed here, independently of acme/. */
static void b64url_sha256(const char *s, char out[64])
{
    unsigned char md[32];
    unsigned int mdlen = 0;
    assert_int_equal(EVP_Digest(s, strlen(s), md, &mdlen, EVP_sha256(), NULL), 1);
    assert_int_equal(mdlen, 32);
    int n = EVP_EncodeBlock((unsigned char *)out, md, 32);
    assert_int_equal(n, 44);
    while (n > 0 && out[n - 1] == '=')
        out[--n] = '\0';
    for (int i = 0; i < n; i++) {
        if (out[i] == '+')
            out[i] = '-';
        else if (out[i] == '/')
            out[i] = '_';
    }
}

/* ------------------------------------------------------- challenge values */

static void test_key_authorization(void **state)
{
    (void)state;
    char *ka = acme_key_authorization(TOKEN, THUMB);
    assert_non_null(ka);
    assert_string_equal(ka, TOKEN "." THUMB);
    free(ka);
    assert_null(acme_key_authorization(NULL, THUMB));
    assert_null(acme_key_authorization(TOKEN, NULL));
}

static void test_dns01_txt(void **state)
{
    (void)state;
    char out[44];
    char want[64];
    struct cp_err err = {0};
    assert_int_equal(acme_dns01_txt(KEYAUTH, out, &err), CP_OK);
    b64url_sha256(KEYAUTH, want);
    assert_int_equal(strlen(out), 43);
    assert_string_equal(out, want);

    assert_int_equal(acme_dns01_txt("", out, &err), CP_EINVAL);
    assert_int_equal(acme_dns01_txt(NULL, out, NULL), CP_EINVAL);
}

/* --------------------------------------------------------------- webroot */

/* What the caller keeps between write and remove; reset for each fresh root. */
static unsigned created;

static void test_webroot_write_remove(void **state)
{
    (void)state;
    char *root = make_tmpdir();
    created = 0;
    struct cp_err err = {0};

    /* The modes must not depend on the umask. */
    mode_t old = umask(077);
    enum cp_code rc = acme_webroot_write(root, TOKEN, KEYAUTH, &created, &err);
    umask(old);
    assert_int_equal(rc, CP_OK);

    assert_int_equal(mode_of(root, ".well-known"), 0755);
    assert_int_equal(mode_of(root, ".well-known/acme-challenge"), 0755);
    assert_int_equal(mode_of(root, ".well-known/acme-challenge/" TOKEN), 0644);

    char *file = path_join(root, ".well-known/acme-challenge/" TOKEN);
    FILE *f = fopen(file, "rb");
    assert_non_null(f);
    char buf[256];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    assert_int_equal(n, strlen(KEYAUTH));
    assert_memory_equal(buf, KEYAUTH, n);

    /* Writing again replaces the content. */
    assert_int_equal(acme_webroot_write(root, TOKEN, "short.x", &created, &err), CP_OK);
    f = fopen(file, "rb");
    assert_non_null(f);
    n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    assert_int_equal(n, 7);
    assert_memory_equal(buf, "short.x", 7);
    free(file);

    acme_webroot_remove(root, TOKEN, &created);
    assert_false(exists(root, ".well-known/acme-challenge/" TOKEN));
    assert_false(exists(root, ".well-known/acme-challenge"));
    assert_false(exists(root, ".well-known"));
    assert_true(exists(root, ""));

    /* Removing again, or what was never written, is harmless. */
    acme_webroot_remove(root, TOKEN, &created);
    acme_webroot_remove(root, "never", &created);
    acme_webroot_remove(root, "../../etc/passwd", &created);
    assert_true(exists(root, ""));

    rm_tree(root);
    free(root);
}

static void test_webroot_trailing_slash(void **state)
{
    (void)state;
    char *root = make_tmpdir();
    created = 0;
    char *slashed = path_join(root, "");
    struct cp_err err = {0};
    assert_int_equal(acme_webroot_write(slashed, TOKEN, KEYAUTH, &created, &err), CP_OK);
    assert_true(exists(root, ".well-known/acme-challenge/" TOKEN));
    acme_webroot_remove(root, TOKEN, &created); /* spelled differently: the same directories */
    assert_false(exists(root, ".well-known"));
    free(slashed);
    rm_tree(root);
    free(root);
}

static void test_webroot_bad_tokens(void **state)
{
    (void)state;
    char *root = make_tmpdir();
    created = 0;
    static const char *const bad[] = {"",    ".",    "..",       "a/b",     "../x", "a.b",
                                      "a b", "a\\b", "tok%2fen", "tok\nen", "/abs"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct cp_err err = {0};
        assert_int_equal(acme_webroot_write(root, bad[i], KEYAUTH, &created, &err), CP_EINVAL);
        assert_true(strlen(err.msg) > 0);
    }
    struct cp_err err = {0};
    assert_int_equal(acme_webroot_write(root, NULL, KEYAUTH, &created, &err), CP_EINVAL);

    char long_token[258];
    memset(long_token, 'A', 257);
    long_token[257] = '\0';
    assert_int_equal(acme_webroot_write(root, long_token, KEYAUTH, &created, &err), CP_EINVAL);
    assert_false(exists(root, ".well-known"));

    /* 256 characters is the token limit, but one more than NAME_MAX on most
     * file systems: a clean CP_EIO there, and nothing left behind. */
    long_token[256] = '\0';
    enum cp_code rc = acme_webroot_write(root, long_token, KEYAUTH, &created, &err);
    assert_true(rc == CP_OK || rc == CP_EIO);
    acme_webroot_remove(root, long_token, &created);
    assert_false(exists(root, ".well-known"));

    long_token[255] = '\0';
    assert_int_equal(acme_webroot_write(root, long_token, KEYAUTH, &created, &err), CP_OK);
    acme_webroot_remove(root, long_token, &created);
    assert_false(exists(root, ".well-known"));

    rm_tree(root);
    free(root);
}

static void test_webroot_keeps_existing_dirs(void **state)
{
    (void)state;
    char *root = make_tmpdir();
    created = 0;
    char *wk = path_join(root, ".well-known");
    assert_int_equal(mkdir(wk, 0700), 0);
    struct cp_err err = {0};

    /* .well-known existed (empty): only acme-challenge is ours. */
    assert_int_equal(acme_webroot_write(root, TOKEN, KEYAUTH, &created, &err), CP_OK);
    assert_int_equal(mode_of(root, ".well-known"), 0700); /* not ours to change */
    acme_webroot_remove(root, TOKEN, &created);
    assert_false(exists(root, ".well-known/acme-challenge"));
    assert_true(exists(root, ".well-known"));

    /* Both existed: both stay. */
    char *ac = path_join(root, ".well-known/acme-challenge");
    assert_int_equal(mkdir(ac, 0755), 0);
    assert_int_equal(acme_webroot_write(root, TOKEN, KEYAUTH, &created, &err), CP_OK);
    acme_webroot_remove(root, TOKEN, &created);
    assert_false(exists(root, ".well-known/acme-challenge/" TOKEN));
    assert_true(exists(root, ".well-known/acme-challenge"));
    assert_true(exists(root, ".well-known"));
    assert_int_equal(rmdir(ac), 0);
    assert_int_equal(rmdir(wk), 0);

    /* Two tokens: the directories go with the last file. */
    assert_int_equal(acme_webroot_write(root, TOKEN, KEYAUTH, &created, &err), CP_OK);
    assert_int_equal(acme_webroot_write(root, "second", "second.x", &created, &err), CP_OK);
    acme_webroot_remove(root, TOKEN, &created);
    assert_true(exists(root, ".well-known/acme-challenge/second"));
    acme_webroot_remove(root, "second", &created);
    assert_false(exists(root, ".well-known"));

    /* Directories we created but someone else filled stay. */
    assert_int_equal(acme_webroot_write(root, TOKEN, KEYAUTH, &created, &err), CP_OK);
    char *readme = path_join(root, ".well-known/acme-challenge/README");
    FILE *f = fopen(readme, "w");
    assert_non_null(f);
    fclose(f);
    acme_webroot_remove(root, TOKEN, &created);
    assert_true(exists(root, ".well-known/acme-challenge/README"));
    assert_int_equal(unlink(readme), 0);
    /* ... and are still removed by a later remove once empty. */
    acme_webroot_remove(root, TOKEN, &created);
    assert_false(exists(root, ".well-known"));

    free(readme);
    free(ac);
    free(wk);
    rm_tree(root);
    free(root);
}

static void test_webroot_missing(void **state)
{
    (void)state;
    struct cp_err err = {0};
    const char *missing = "/nonexistent/cp-webroot-test";
    assert_int_equal(acme_webroot_write(missing, TOKEN, KEYAUTH, &created, &err), CP_EIO);
    assert_non_null(strstr(err.msg, "webroot /nonexistent/cp-webroot-test does not exist"));
    assert_int_equal(acme_webroot_check(missing, &err), CP_EIO);
    assert_non_null(strstr(err.msg, missing));
    assert_false(exists("/nonexistent", ""));

    /* A file is not a webroot. */
    assert_int_equal(acme_webroot_write("/etc/hostname", TOKEN, KEYAUTH, &created, &err), CP_EIO);
    assert_non_null(strstr(err.msg, "/etc/hostname"));
    assert_int_equal(acme_webroot_write("", TOKEN, KEYAUTH, &created, &err), CP_EINVAL);
}

static void test_webroot_symlink_refused(void **state)
{
    (void)state;
    char *root = make_tmpdir();
    created = 0;
    struct cp_err err = {0};
    assert_int_equal(acme_webroot_write(root, "second", "x.y", &created, &err), CP_OK);
    char *target = path_join(root, "target");
    FILE *f = fopen(target, "w");
    assert_non_null(f);
    fputs("precious", f);
    fclose(f);
    char *link = path_join(root, ".well-known/acme-challenge/" TOKEN);
    assert_int_equal(symlink(target, link), 0);

    assert_int_equal(acme_webroot_write(root, TOKEN, KEYAUTH, &created, &err), CP_EIO);
    assert_non_null(strstr(err.msg, "symbolic link"));
    f = fopen(target, "r");
    assert_non_null(f);
    char buf[32] = {0};
    assert_int_equal(fread(buf, 1, sizeof buf - 1, f), 8);
    fclose(f);
    assert_string_equal(buf, "precious");

    assert_int_equal(unlink(link), 0);
    acme_webroot_remove(root, "second", &created);
    assert_false(exists(root, ".well-known"));
    free(link);
    free(target);
    rm_tree(root);
    free(root);
}

static void test_webroot_check(void **state)
{
    (void)state;
    char *root = make_tmpdir();
    created = 0;
    struct cp_err err = {0};
    assert_int_equal(acme_webroot_check(root, &err), CP_OK);
    assert_false(exists(root, ".well-known")); /* the probe leaves nothing */

    if (geteuid() != 0) { /* root writes anywhere */
        assert_int_equal(chmod(root, 0555), 0);
        assert_int_equal(acme_webroot_check(root, &err), CP_EIO);
        assert_non_null(strstr(err.msg, root));
        assert_int_equal(chmod(root, 0700), 0);
    }
    rm_tree(root);
    free(root);
}

/* ------------------------------------------------------------------ ports */

static void test_port_check(void **state)
{
    (void)state;
    struct cp_err err = {0};
    int port = fixture_free_port();
    assert_int_equal(acme_port_check("127.0.0.1", port, &err), CP_OK);

    /* Held by someone else (no SO_REUSEADDR, listening). */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((unsigned short)port)};
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof sin), 0);
    assert_int_equal(listen(fd, 1), 0);
    char portstr[16];
    snprintf(portstr, sizeof portstr, "port %d", port);

    assert_int_equal(acme_port_check("127.0.0.1", port, &err), CP_EIO);
    assert_non_null(strstr(err.msg, portstr));
    assert_int_equal(acme_port_check(NULL, port, &err), CP_EIO);
    assert_non_null(strstr(err.msg, portstr));

    struct acme_solver_server *s = NULL;
    assert_int_equal(acme_http01_server_start("127.0.0.1", port, &s, &err), CP_EIO);
    assert_null(s);
    assert_non_null(strstr(err.msg, portstr));
    assert_int_equal(acme_tlsalpn01_server_start(NULL, port, &s, &err), CP_EIO);
    assert_null(s);
    assert_non_null(strstr(err.msg, portstr));
    close(fd);

    assert_int_equal(acme_port_check(NULL, port, &err), CP_OK);
    assert_int_equal(acme_port_check("127.0.0.1", 0, &err), CP_EINVAL);
    assert_int_equal(acme_port_check("127.0.0.1", 65536, &err), CP_EINVAL);
    assert_int_equal(acme_port_check("localhost", port, &err), CP_EINVAL);
    assert_non_null(strstr(err.msg, "localhost"));
    assert_int_equal(acme_http01_server_start("300.1.1.1", port, &s, &err), CP_EINVAL);
    assert_null(s);

    acme_solver_server_stop(NULL);
    assert_int_equal(acme_solver_server_hits(NULL), 0);
}

/* ----------------------------------------------------------------- http-01 */

struct reply {
    long status;
    char body[16384];
    size_t len;
    char ctype[64];
};

static size_t on_body(char *p, size_t size, size_t n, void *arg)
{
    struct reply *r = arg;
    size_t len = size * n;
    if (len > sizeof r->body - 1 - r->len)
        return 0;
    memcpy(r->body + r->len, p, len);
    r->len += len;
    r->body[r->len] = '\0';
    return len;
}

/* A request with libcurl; method "GET", "HEAD" or "POST".  host "127.0.0.1"
 * or "[::1]". */
static CURLcode http_request(const char *host, int port, const char *method, const char *path,
                             struct reply *r)
{
    memset(r, 0, sizeof *r);
    char url[512];
    snprintf(url, sizeof url, "http://%s:%d%s", host, port, path);
    CURL *c = curl_easy_init();
    assert_non_null(c);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 10L);
    curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
    curl_easy_setopt(c, CURLOPT_PATH_AS_IS, 1L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
    if (strcmp(method, "HEAD") == 0)
        curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
    else if (strcmp(method, "POST") == 0)
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, "{\"a\":1}");
    CURLcode rc = curl_easy_perform(c);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
    char *ct = NULL;
    if (curl_easy_getinfo(c, CURLINFO_CONTENT_TYPE, &ct) == CURLE_OK && ct != NULL)
        snprintf(r->ctype, sizeof r->ctype, "%s", ct);
    curl_easy_cleanup(c);
    return rc;
}

struct http_fixture {
    struct acme_solver_server *s;
    int port;
};

static int http_setup(void **state)
{
    static struct http_fixture fx;
    struct cp_err err = {0};
    fx.port = fixture_free_port();
    fx.s = NULL;
    if (acme_http01_server_start("127.0.0.1", fx.port, &fx.s, &err) != CP_OK) {
        fprintf(stderr, "http01 start: %s\n", err.msg);
        return -1;
    }
    if (acme_solver_server_add(fx.s, TOKEN, KEYAUTH, &err) != CP_OK) {
        fprintf(stderr, "add: %s\n", err.msg);
        return -1;
    }
    *state = &fx;
    return 0;
}

static int http_teardown(void **state)
{
    struct http_fixture *fx = *state;
    acme_solver_server_stop(fx->s);
    fx->s = NULL;
    return 0;
}

static void test_http01_get(void **state)
{
    struct http_fixture *fx = *state;
    struct reply r;
    assert_int_equal(acme_solver_server_hits(fx->s), 0);
    assert_int_equal(http_request("127.0.0.1", fx->port, "GET", PREFIX TOKEN, &r), CURLE_OK);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, KEYAUTH);
    assert_int_equal(r.len, strlen(KEYAUTH));
    assert_string_equal(r.ctype, "text/plain");
    assert_int_equal(acme_solver_server_hits(fx->s), 1);

    assert_int_equal(http_request("127.0.0.1", fx->port, "HEAD", PREFIX TOKEN, &r), CURLE_OK);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.len, 0);
    assert_int_equal(acme_solver_server_hits(fx->s), 2);
}

static void test_http01_not_found(void **state)
{
    struct http_fixture *fx = *state;
    struct reply r;
    unsigned long before = acme_solver_server_hits(fx->s);
    static const char *const paths[] = {PREFIX "unknown",
                                        PREFIX,
                                        "/",
                                        "/" TOKEN,
                                        PREFIX TOKEN "x",
                                        PREFIX TOKEN "?x=1",
                                        "/.well-known/acme-challenge/../acme-challenge/" TOKEN};
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
        assert_int_equal(http_request("127.0.0.1", fx->port, "GET", paths[i], &r), CURLE_OK);
        assert_int_equal(r.status, 404);
        assert_null(strstr(r.body, THUMB));
    }
    assert_int_equal(http_request("127.0.0.1", fx->port, "POST", PREFIX TOKEN, &r), CURLE_OK);
    assert_true(r.status == 404 || r.status == 405);
    assert_null(strstr(r.body, THUMB));
    assert_int_equal(acme_solver_server_hits(fx->s), before);
}

/* Send raw bytes, read the whole answer (until the server closes). */
static size_t raw_exchange(int port, const char *req, size_t reqlen, char *out, size_t cap)
{
    int fd = connect_local(port);
    size_t off = 0;
    while (off < reqlen) {
        ssize_t w = send(fd, req + off, reqlen - off, MSG_NOSIGNAL);
        if (w <= 0)
            break;
        off += (size_t)w;
    }
    size_t len = 0;
    while (len < cap - 1) {
        ssize_t r = recv(fd, out + len, cap - 1 - len, 0);
        if (r <= 0)
            break;
        len += (size_t)r;
    }
    out[len] = '\0';
    close(fd);
    return len;
}

static void test_http01_raw(void **state)
{
    struct http_fixture *fx = *state;
    char out[4096];

    /* HTTP/1.0, bare LF line ends. */
    const char *req = "GET " PREFIX TOKEN " HTTP/1.0\n\n";
    raw_exchange(fx->port, req, strlen(req), out, sizeof out);
    assert_true(strncmp(out, "HTTP/1.1 200 OK\r\n", 17) == 0);
    assert_non_null(strstr(out, "Connection: close\r\n"));
    assert_non_null(strstr(out, "\r\n\r\n" KEYAUTH));

    /* Garbage request lines. */
    static const char *const bad[] = {"\r\n\r\n", "GET\r\n\r\n", "GET /x\r\n\r\n",
                                      "GET " PREFIX TOKEN " FTP/1.0\r\n\r\n"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        raw_exchange(fx->port, bad[i], strlen(bad[i]), out, sizeof out);
        assert_true(strncmp(out, "HTTP/1.1 400 ", 13) == 0);
    }
    /* A NUL in the request line. */
    static const char nul[] = "GET " PREFIX TOKEN "\0x HTTP/1.1\r\n\r\n";
    raw_exchange(fx->port, nul, sizeof nul - 1, out, sizeof out);
    assert_true(strncmp(out, "HTTP/1.1 400 ", 13) == 0);

    /* The head in pieces, as slow networks deliver it. */
    int fd = connect_local(fx->port);
    const char *a = "GET " PREFIX;
    const char *b = TOKEN " HTTP/1.1\r\nHost: example.test\r\n";
    assert_int_equal(send(fd, a, strlen(a), 0), (ssize_t)strlen(a));
    sleep_ms(100);
    assert_int_equal(send(fd, b, strlen(b), 0), (ssize_t)strlen(b));
    sleep_ms(100);
    assert_int_equal(send(fd, "\r\n", 2, 0), 2);
    size_t len = 0;
    ssize_t r;
    while ((r = recv(fd, out + len, sizeof out - 1 - len, 0)) > 0)
        len += (size_t)r;
    out[len] = '\0';
    close(fd);
    assert_true(strncmp(out, "HTTP/1.1 200 OK\r\n", 17) == 0);
}

static void test_http01_oversized(void **state)
{
    struct http_fixture *fx = *state;
    size_t n = 12 * 1024;
    char *req = malloc(n + 1);
    assert_non_null(req);
    int h = snprintf(req, n, "GET " PREFIX TOKEN " HTTP/1.1\r\nX-Pad: ");
    memset(req + h, 'a', n - (size_t)h);
    req[n] = '\0';
    char out[4096];
    size_t len = raw_exchange(fx->port, req, n, out, sizeof out);
    /* Refused with 431, or the connection is just closed/reset. */
    assert_true(len == 0 || strncmp(out, "HTTP/1.1 431 ", 13) == 0);
    assert_null(strstr(out, THUMB));
    free(req);

    /* Still serving. */
    struct reply rep;
    assert_int_equal(http_request("127.0.0.1", fx->port, "GET", PREFIX TOKEN, &rep), CURLE_OK);
    assert_int_equal(rep.status, 200);
}

static void test_http01_slow_client_bounded(void **state)
{
    struct http_fixture *fx = *state;
    /* An idle connection occupies the server for at most its 5 s deadline. */
    int idle = connect_local(fx->port);
    sleep_ms(100);
    double t0 = now_s();
    struct reply r;
    assert_int_equal(http_request("127.0.0.1", fx->port, "GET", PREFIX TOKEN, &r), CURLE_OK);
    double dt = now_s() - t0;
    assert_int_equal(r.status, 200);
    assert_true(dt < 8.0);
    char c;
    assert_true(recv(idle, &c, 1, 0) <= 0); /* the server gave up on it */
    close(idle);
}

/* Slow-loris clients: a byte of a never-ending request head on each every
 * 100 ms, until the server closes them all, or the hang guard. */
#define LORIS_N     8
#define LORIS_GUARD 300 /* rounds of 100 ms: only against a hang */

struct loris {
    int fds[LORIS_N];
    bool closed[LORIS_N];
    size_t nclosed;
    bool guard_hit;
    unsigned long bytes; /* sent in all */
};

static void *loris_main(void *arg)
{
    struct loris *l = arg;
    for (int round = 0; l->nclosed < LORIS_N; round++) {
        if (round == LORIS_GUARD) {
            l->guard_hit = true;
            break;
        }
        for (size_t i = 0; i < LORIS_N; i++) {
            if (l->closed[i])
                continue;
            if (send(l->fds[i], "a", 1, MSG_NOSIGNAL | MSG_DONTWAIT) == 1)
                l->bytes++;
            else if (errno != EAGAIN && errno != EWOULDBLOCK)
                l->closed[i] = true;
            if (!l->closed[i] && peer_closed(l->fds[i]))
                l->closed[i] = true;
            l->nclosed += l->closed[i];
        }
        sleep_ms(100);
    }
    return NULL;
}

#define FLOOD_IDLE 500

static void test_http01_flood(void **state)
{
    (void)state;
    if (!fd_room(2 * (FLOOD_IDLE + LORIS_N) + 128))
        skip();
    struct acme_solver_server *s = NULL;
    struct cp_err err = {0};
    int port = fixture_free_port();
    assert_int_equal(acme_http01_server_start("127.0.0.1", port, &s, &err), CP_OK);
    assert_int_equal(acme_solver_server_add(s, TOKEN, KEYAUTH, &err), CP_OK);

    /* 500 idle connections, then slow-loris clients that keep trickling. */
    static int idle[FLOOD_IDLE];
    for (size_t i = 0; i < FLOOD_IDLE; i++)
        idle[i] = connect_local(port);
    static struct loris l;
    memset(&l, 0, sizeof l);
    for (size_t i = 0; i < LORIS_N; i++) {
        l.fds[i] = connect_local(port);
        assert_int_equal(send(l.fds[i], "GET /", 5, MSG_NOSIGNAL), 5);
    }
    pthread_t loris_thread;
    assert_int_equal(pthread_create(&loris_thread, NULL, loris_main, &l), 0);

    /* The CA's request: answered, with the key authorization. */
    struct reply r;
    assert_int_equal(http_request("127.0.0.1", port, "GET", PREFIX TOKEN, &r), CURLE_OK);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, KEYAUTH);
    assert_int_equal(acme_solver_server_hits(s), 1);

    /* Room for it was made by dropping the oldest idle connections: at
     * least as many as the connections went over the cap. */
    size_t dropped = closed_oldest_first(idle, FLOOD_IDLE);
    print_message("http-01: %d idle + %d slow-loris open, the request answered, %zu oldest "
                  "idle dropped\n",
                  FLOOD_IDLE, LORIS_N, dropped);
    assert_true(dropped >= FLOOD_IDLE + LORIS_N + 1 - SOLVER_MAX_CONNS);

    /* Trickling bytes does not keep a connection past its deadline: the
     * server closes every slow-loris client (the guard is only a hang
     * guard), and every idle one by then too. */
    assert_int_equal(pthread_join(loris_thread, NULL), 0);
    assert_false(l.guard_hit);
    assert_int_equal(l.nclosed, LORIS_N);
    assert_true(l.bytes > LORIS_N); /* they did trickle after the first request bytes */
    assert_int_equal(closed_oldest_first(idle, FLOOD_IDLE), FLOOD_IDLE);

    /* And it still serves. */
    assert_int_equal(http_request("127.0.0.1", port, "GET", PREFIX TOKEN, &r), CURLE_OK);
    assert_int_equal(r.status, 200);
    for (size_t i = 0; i < FLOOD_IDLE; i++)
        close(idle[i]);
    for (size_t i = 0; i < LORIS_N; i++)
        close(l.fds[i]);
    acme_solver_server_stop(s);
}

/* --http-address: a server bound to one address leaves the port free on the
 * others, so two servers can share a port on two loopback addresses. */
static void test_http01_one_address(void **state)
{
    (void)state;
    struct cp_err err = {0};
    struct acme_solver_server *a = NULL, *b = NULL;
    int port = fixture_free_port();
    assert_int_equal(acme_http01_server_start("127.0.0.1", port, &a, &err), CP_OK);
    assert_int_equal(acme_solver_server_add(a, TOKEN, KEYAUTH, &err), CP_OK);

    /* Linux routes all of 127.0.0.0/8 to lo; elsewhere 127.0.0.2 may not
     * exist, and then there is nothing more to see. */
    int fd = try_connect("127.0.0.2", port);
    if (fd < 0 && errno != ECONNREFUSED) {
        acme_solver_server_stop(a);
        skip();
    }
    assert_true(fd < 0); /* refused: nothing listens there */
    assert_int_equal(acme_port_check("127.0.0.2", port, &err), CP_OK);
    assert_int_equal(acme_port_check(NULL, port, &err), CP_EIO); /* all addresses: taken */

    assert_int_equal(acme_http01_server_start("127.0.0.2", port, &b, &err), CP_OK);
    assert_int_equal(acme_solver_server_add(b, TOKEN, TOKEN ".other", &err), CP_OK);
    struct reply r;
    assert_int_equal(http_request("127.0.0.1", port, "GET", PREFIX TOKEN, &r), CURLE_OK);
    assert_string_equal(r.body, KEYAUTH);
    assert_int_equal(http_request("127.0.0.2", port, "GET", PREFIX TOKEN, &r), CURLE_OK);
    assert_string_equal(r.body, TOKEN ".other");
    assert_int_equal(acme_solver_server_hits(a), 1);
    assert_int_equal(acme_solver_server_hits(b), 1);
    acme_solver_server_stop(b);
    acme_solver_server_stop(a);

    /* An IPv6 address binds IPv6 only. */
    if (acme_http01_server_start("::1", port, &a, &err) == CP_OK) {
        fd = try_connect("127.0.0.1", port);
        assert_true(fd < 0);
        assert_int_equal(errno, ECONNREFUSED);
        assert_int_equal(acme_solver_server_add(a, TOKEN, KEYAUTH, &err), CP_OK);
        assert_int_equal(http_request("[::1]", port, "GET", PREFIX TOKEN, &r), CURLE_OK);
        assert_string_equal(r.body, KEYAUTH);
        acme_solver_server_stop(a);
    }
}

static void test_http01_add(void **state)
{
    struct http_fixture *fx = *state;
    struct cp_err err = {0};
    assert_int_equal(acme_solver_server_add(fx->s, "a/b", KEYAUTH, &err), CP_EINVAL);
    assert_int_equal(acme_solver_server_add(fx->s, "", KEYAUTH, &err), CP_EINVAL);
    assert_int_equal(acme_solver_server_add(fx->s, "tok", "bad key authz\r\n", &err), CP_EINVAL);
    assert_int_equal(acme_solver_server_add(fx->s, "tok", "", &err), CP_EINVAL);
    assert_int_equal(acme_solver_server_add(fx->s, NULL, KEYAUTH, &err), CP_EINVAL);

    /* Re-registering a token replaces its key authorization. */
    assert_int_equal(acme_solver_server_add(fx->s, "again", "again.one", &err), CP_OK);
    assert_int_equal(acme_solver_server_add(fx->s, "again", "again.two", &err), CP_OK);
    struct reply r;
    assert_int_equal(http_request("127.0.0.1", fx->port, "GET", PREFIX "again", &r), CURLE_OK);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "again.two");

    /* At most 1000 challenges. */
    enum cp_code rc = CP_OK;
    int i;
    for (i = 0; i < 2000 && rc == CP_OK; i++) {
        char tok[32];
        snprintf(tok, sizeof tok, "t%d", i);
        rc = acme_solver_server_add(fx->s, tok, "k.v", &err);
    }
    assert_int_equal(rc, CP_EINVAL);
    assert_true(i <= 1000);
    assert_non_null(strstr(err.msg, "1000"));
    /* The earlier ones still work. */
    assert_int_equal(http_request("127.0.0.1", fx->port, "GET", PREFIX "t5", &r), CURLE_OK);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "k.v");
}

static void test_http01_stop_with_idle_client(void **state)
{
    (void)state;
    struct acme_solver_server *s = NULL;
    struct cp_err err = {0};
    int port = fixture_free_port();
    assert_int_equal(acme_http01_server_start("127.0.0.1", port, &s, &err), CP_OK);
    int idle = connect_local(port);
    int half = connect_local(port); /* a second one waits in the backlog */
    assert_int_equal(send(half, "GET /", 5, 0), 5);
    sleep_ms(200);
    double t0 = now_s();
    acme_solver_server_stop(s);
    assert_true(now_s() - t0 < 2.0);
    close(idle);
    close(half);
    /* The port is free again. */
    assert_int_equal(acme_port_check("127.0.0.1", port, &err), CP_OK);
}

static void test_http01_all_addresses(void **state)
{
    (void)state;
    struct acme_solver_server *s = NULL;
    struct cp_err err = {0};
    int port = fixture_free_port();
    if (acme_http01_server_start(NULL, port, &s, &err) != CP_OK) {
        fprintf(stderr, "start on all addresses: %s\n", err.msg);
        fail();
    }
    assert_int_equal(acme_solver_server_add(s, TOKEN, KEYAUTH, &err), CP_OK);
    struct reply r;
    assert_int_equal(http_request("127.0.0.1", port, "GET", PREFIX TOKEN, &r), CURLE_OK);
    assert_int_equal(r.status, 200);
    int v6 = socket(AF_INET6, SOCK_STREAM, 0);
    if (v6 >= 0) {
        struct sockaddr_in6 a = {.sin6_family = AF_INET6, .sin6_port = htons((unsigned short)port)};
        a.sin6_addr = in6addr_loopback;
        bool have_v6 = connect(v6, (struct sockaddr *)&a, sizeof a) == 0;
        close(v6);
        if (have_v6) {
            sleep_ms(50);
            assert_int_equal(http_request("[::1]", port, "GET", PREFIX TOKEN, &r), CURLE_OK);
            assert_int_equal(r.status, 200);
        }
    }
    acme_solver_server_stop(s);
}

/* ------------------------------------------------------------- tls-alpn-01 */

static const unsigned char acme_tls_alpn[] = "\x0a"
                                             "acme-tls/1";

/* The acmeIdentifier extension of `x`, or NULL. */
static X509_EXTENSION *acme_ext(X509 *x)
{
    ASN1_OBJECT *oid = OBJ_txt2obj("1.3.6.1.5.5.7.1.31", 1);
    assert_non_null(oid);
    int idx = X509_get_ext_by_OBJ(x, oid, -1);
    ASN1_OBJECT_free(oid);
    return idx < 0 ? NULL : X509_get_ext(x, idx);
}

/* The RFC 8737 checks a CA makes, done with OpenSSL directly. */
static void check_rfc8737_cert(X509 *x, const char *name, const char *key_authz)
{
    /* SAN: exactly one dNSName, the name. */
    GENERAL_NAMES *gens = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
    assert_non_null(gens);
    assert_int_equal(sk_GENERAL_NAME_num(gens), 1);
    GENERAL_NAME *gn = sk_GENERAL_NAME_value(gens, 0);
    assert_int_equal(gn->type, GEN_DNS);
    const ASN1_IA5STRING *dns = gn->d.dNSName;
    assert_int_equal(ASN1_STRING_length(dns), (int)strlen(name));
    assert_memory_equal(ASN1_STRING_get0_data(dns), name, strlen(name));
    GENERAL_NAMES_free(gens);

    /* acmeIdentifier: critical, extnValue = DER OCTET STRING of SHA-256. */
    X509_EXTENSION *ext = acme_ext(x);
    assert_non_null(ext);
    assert_int_equal(X509_EXTENSION_get_critical(ext), 1);
    const ASN1_OCTET_STRING *v = X509_EXTENSION_get_data(ext);
    assert_int_equal(ASN1_STRING_length(v), 34);
    unsigned char want[34] = {0x04, 0x20};
    unsigned int mdlen = 0;
    assert_int_equal(EVP_Digest(key_authz, strlen(key_authz), want + 2, &mdlen, EVP_sha256(), NULL),
                     1);
    assert_memory_equal(ASN1_STRING_get0_data(v), want, 34);

    /* Self-signed with its own P-256 key, valid now. */
    EVP_PKEY *pub = X509_get0_pubkey(x);
    assert_non_null(pub);
    assert_true(EVP_PKEY_is_a(pub, "EC"));
    assert_int_equal(EVP_PKEY_get_bits(pub), 256);
    assert_int_equal(X509_verify(x, pub), 1);
    assert_int_equal(X509_cmp_current_time(X509_get0_notBefore(x)), -1);
    assert_int_equal(X509_cmp_current_time(X509_get0_notAfter(x)), 1);
    assert_int_equal(X509_get_version(x), X509_VERSION_3);
}

static void test_tlsalpn01_cert(void **state)
{
    (void)state;
    EVP_PKEY *key = NULL;
    X509 *cert = NULL;
    struct cp_err err = {0};
    assert_int_equal(acme_tlsalpn01_cert("www.Example.test", KEYAUTH, &key, &cert, &err), CP_OK);
    check_rfc8737_cert(cert, "www.example.test", KEYAUTH);
    /* The certificate is for the key handed back. */
    assert_int_equal(X509_check_private_key(cert, key), 1);
    EVP_PKEY_free(key);
    X509_free(cert);

    /* A 253-character name has no room in a CN but still gets its SAN. */
    char longname[254];
    memset(longname, 'a', 253);
    for (int i = 63; i < 253; i += 64)
        longname[i] = '.';
    longname[253] = '\0';
    assert_int_equal(acme_tlsalpn01_cert(longname, KEYAUTH, &key, &cert, &err), CP_OK);
    check_rfc8737_cert(cert, longname, KEYAUTH);
    EVP_PKEY_free(key);
    X509_free(cert);

    static const char *const bad[] = {
        "*.example.test", "", "a..b", "exa mple.test", "example.test.", "ex_ample.test"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(acme_tlsalpn01_cert(bad[i], KEYAUTH, &key, &cert, &err), CP_EINVAL);
        assert_null(key);
        assert_null(cert);
    }
    assert_int_equal(acme_tlsalpn01_cert("*.example.test", KEYAUTH, &key, &cert, &err), CP_EINVAL);
    assert_non_null(strstr(err.msg, "wildcard"));
    assert_int_equal(acme_tlsalpn01_cert("example.test", "", &key, &cert, &err), CP_EINVAL);
    /* Names may come from the network: no control characters in messages. */
    assert_int_equal(acme_tlsalpn01_cert("a\x1b[2J.test", KEYAUTH, &key, &cert, &err), CP_EINVAL);
    assert_null(strchr(err.msg, '\x1b'));
}

struct tls_result {
    bool ok;
    X509 *peer; /* caller frees */
    char alpn[32];
};

/* One handshake as a CA's validator makes it.  alpn NULL: offer none. */
static struct tls_result tls_handshake(int port, const char *sni, const unsigned char *alpn,
                                       unsigned int alpn_len, int max_version)
{
    struct tls_result res = {0};
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    assert_non_null(ctx);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL); /* self-signed by design */
    if (max_version != 0)
        SSL_CTX_set_max_proto_version(ctx, max_version);
    SSL *ssl = SSL_new(ctx);
    assert_non_null(ssl);
    if (alpn != NULL)
        assert_int_equal(SSL_set_alpn_protos(ssl, alpn, alpn_len), 0);
    if (sni != NULL)
        assert_int_equal(SSL_set_tlsext_host_name(ssl, sni), 1);
    int fd = connect_local(port);
    SSL_set_fd(ssl, fd);
    if (SSL_connect(ssl) == 1) {
        res.ok = true;
        res.peer = SSL_get1_peer_certificate(ssl);
        const unsigned char *p = NULL;
        unsigned int n = 0;
        SSL_get0_alpn_selected(ssl, &p, &n);
        if (n < sizeof res.alpn)
            memcpy(res.alpn, p, n);
        /* Wait for the server's close_notify: the handshake is all there is. */
        char c;
        assert_true(SSL_read(ssl, &c, 1) <= 0);
    }
    SSL_free(ssl);
    SSL_CTX_free(ctx);
    close(fd);
    ERR_clear_error();
    return res;
}

struct tls_fixture {
    struct acme_solver_server *s;
    int port;
};

static int tls_setup(void **state)
{
    static struct tls_fixture fx;
    struct cp_err err = {0};
    fx.port = fixture_free_port();
    fx.s = NULL;
    if (acme_tlsalpn01_server_start("127.0.0.1", fx.port, &fx.s, &err) != CP_OK) {
        fprintf(stderr, "tlsalpn01 start: %s\n", err.msg);
        return -1;
    }
    if (acme_solver_server_add(fx.s, "Www.Example.TEST", KEYAUTH, &err) != CP_OK) {
        fprintf(stderr, "add: %s\n", err.msg);
        return -1;
    }
    *state = &fx;
    return 0;
}

static int tls_teardown(void **state)
{
    struct tls_fixture *fx = *state;
    acme_solver_server_stop(fx->s);
    fx->s = NULL;
    return 0;
}

static void test_tlsalpn01_handshake(void **state)
{
    struct tls_fixture *fx = *state;
    assert_int_equal(acme_solver_server_hits(fx->s), 0);
    struct tls_result r =
        tls_handshake(fx->port, "www.example.test", acme_tls_alpn, sizeof acme_tls_alpn - 1, 0);
    assert_true(r.ok);
    assert_string_equal(r.alpn, "acme-tls/1");
    assert_non_null(r.peer);
    check_rfc8737_cert(r.peer, "www.example.test", KEYAUTH);
    X509_free(r.peer);
    assert_int_equal(acme_solver_server_hits(fx->s), 1);

    /* SNI is case-insensitive; TLS 1.2 works too; acme-tls/1 among others. */
    static const unsigned char two[] = "\x02h2\x0a"
                                       "acme-tls/1";
    r = tls_handshake(fx->port, "WWW.example.test", two, sizeof two - 1, TLS1_2_VERSION);
    assert_true(r.ok);
    assert_string_equal(r.alpn, "acme-tls/1");
    check_rfc8737_cert(r.peer, "www.example.test", KEYAUTH);
    X509_free(r.peer);
    assert_int_equal(acme_solver_server_hits(fx->s), 2);
}

static void test_tlsalpn01_refused(void **state)
{
    struct tls_fixture *fx = *state;
    unsigned long before = acme_solver_server_hits(fx->s);
    static const unsigned char h2[] = "\x02h2";
    static const unsigned char near[] = "\x0a"
                                        "acme-tls/2";

    struct tls_result r = tls_handshake(fx->port, "www.example.test", NULL, 0, 0);
    assert_false(r.ok); /* no ALPN */
    r = tls_handshake(fx->port, "www.example.test", NULL, 0, TLS1_2_VERSION);
    assert_false(r.ok);
    r = tls_handshake(fx->port, "www.example.test", h2, sizeof h2 - 1, 0);
    assert_false(r.ok); /* another ALPN */
    r = tls_handshake(fx->port, "www.example.test", near, sizeof near - 1, 0);
    assert_false(r.ok);
    r = tls_handshake(fx->port, "other.example.test", acme_tls_alpn, sizeof acme_tls_alpn - 1, 0);
    assert_false(r.ok); /* unknown SNI */
    r = tls_handshake(fx->port, NULL, acme_tls_alpn, sizeof acme_tls_alpn - 1, 0);
    assert_false(r.ok); /* no SNI */
    r = tls_handshake(fx->port, "www.example.test", acme_tls_alpn, sizeof acme_tls_alpn - 1,
                      TLS1_1_VERSION);
    assert_false(r.ok); /* TLS 1.2 at least */
    assert_int_equal(acme_solver_server_hits(fx->s), before);

    /* Plain HTTP on the TLS port is just dropped. */
    char out[256];
    const char *req = "GET / HTTP/1.0\r\n\r\n";
    size_t n = raw_exchange(fx->port, req, strlen(req), out, sizeof out);
    assert_null(strstr(out, "HTTP/1."));
    (void)n;

    /* And the server still works. */
    r = tls_handshake(fx->port, "www.example.test", acme_tls_alpn, sizeof acme_tls_alpn - 1, 0);
    assert_true(r.ok);
    X509_free(r.peer);
}

static void test_tlsalpn01_add(void **state)
{
    struct tls_fixture *fx = *state;
    struct cp_err err = {0};
    assert_int_equal(acme_solver_server_add(fx->s, "*.example.test", KEYAUTH, &err), CP_EINVAL);
    assert_non_null(strstr(err.msg, "wildcard"));
    assert_int_equal(acme_solver_server_add(fx->s, "bad name", KEYAUTH, &err), CP_EINVAL);

    /* A second name, and replacing the first one's key authorization. */
    assert_int_equal(acme_solver_server_add(fx->s, "b.example.test", "b.thumb", &err), CP_OK);
    assert_int_equal(acme_solver_server_add(fx->s, "www.example.test", "new.thumb", &err), CP_OK);
    struct tls_result r =
        tls_handshake(fx->port, "b.example.test", acme_tls_alpn, sizeof acme_tls_alpn - 1, 0);
    assert_true(r.ok);
    check_rfc8737_cert(r.peer, "b.example.test", "b.thumb");
    X509_free(r.peer);
    r = tls_handshake(fx->port, "www.example.test", acme_tls_alpn, sizeof acme_tls_alpn - 1, 0);
    assert_true(r.ok);
    check_rfc8737_cert(r.peer, "www.example.test", "new.thumb");
    X509_free(r.peer);
}

#define TLS_IDLE    300 /* TCP only */
#define TLS_PARTIAL 100 /* part of a ClientHello */
#define TLS_STALLED 50  /* a whole ClientHello, then nothing */

/* A client that sends its ClientHello (ALPN acme-tls/1, a registered SNI)
 * and stops there, with the server's reply unread: a handshake left half-way.
 * The SSL is kept (freed by the caller) so that nothing more is sent. */
static SSL *stalled_handshake(SSL_CTX *ctx, int fd)
{
    SSL *ssl = SSL_new(ctx);
    assert_non_null(ssl);
    assert_int_equal(SSL_set_alpn_protos(ssl, acme_tls_alpn, sizeof acme_tls_alpn - 1), 0);
    assert_int_equal(SSL_set_tlsext_host_name(ssl, "www.example.test"), 1);
    assert_int_equal(fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK), 0);
    assert_int_equal(SSL_set_fd(ssl, fd), 1);
    int r = SSL_connect(ssl);
    assert_int_equal(SSL_get_error(ssl, r), SSL_ERROR_WANT_READ);
    ERR_clear_error();
    return ssl;
}

static void test_tlsalpn01_flood(void **state)
{
    (void)state;
    enum { N = TLS_IDLE + TLS_PARTIAL + TLS_STALLED };
    if (!fd_room(2 * N + 128))
        skip();
    struct acme_solver_server *s = NULL;
    struct cp_err err = {0};
    int port = fixture_free_port();
    assert_int_equal(acme_tlsalpn01_server_start("127.0.0.1", port, &s, &err), CP_OK);
    assert_int_equal(acme_solver_server_add(s, "www.example.test", KEYAUTH, &err), CP_OK);

    /* In connection order: idle, a ClientHello record cut short, a whole
     * ClientHello and then silence. */
    static int fds[N];
    static SSL *ssls[TLS_STALLED];
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    assert_non_null(ctx);
    static const unsigned char partial[] = {0x16, 0x03, 0x01, 0x00, 0xc8, /* 200 bytes... */
                                            0x01, 0x00, 0x00, 0xc4, 0x03, 0x03};
    for (size_t i = 0; i < N; i++) {
        fds[i] = connect_local(port);
        if (i >= TLS_IDLE && i < TLS_IDLE + TLS_PARTIAL)
            assert_int_equal(send(fds[i], partial, sizeof partial, MSG_NOSIGNAL),
                             (ssize_t)sizeof partial);
        else if (i >= TLS_IDLE + TLS_PARTIAL)
            ssls[i - TLS_IDLE - TLS_PARTIAL] = stalled_handshake(ctx, fds[i]);
    }

    /* The CA's handshake: acme-tls/1 and the validation certificate. */
    struct tls_result r =
        tls_handshake(port, "www.example.test", acme_tls_alpn, sizeof acme_tls_alpn - 1, 0);
    assert_true(r.ok);
    assert_string_equal(r.alpn, "acme-tls/1");
    assert_non_null(r.peer);
    check_rfc8737_cert(r.peer, "www.example.test", KEYAUTH);
    X509_free(r.peer);
    assert_int_equal(acme_solver_server_hits(s), 1);

    /* The oldest unfinished connections made room for it. */
    size_t dropped = closed_oldest_first(fds, N);
    print_message("tls-alpn-01: %d idle, %d partial, %d stalled open, the handshake done, %zu "
                  "oldest dropped\n",
                  TLS_IDLE, TLS_PARTIAL, TLS_STALLED, dropped);
    assert_true(dropped >= N + 1 - SOLVER_MAX_CONNS);

    for (size_t i = 0; i < TLS_STALLED; i++)
        SSL_free(ssls[i]);
    SSL_CTX_free(ctx);
    for (size_t i = 0; i < N; i++)
        close(fds[i]);
    ERR_clear_error();
    acme_solver_server_stop(s);
}

static void test_tlsalpn01_stop_with_idle_client(void **state)
{
    (void)state;
    struct acme_solver_server *s = NULL;
    struct cp_err err = {0};
    int port = fixture_free_port();
    assert_int_equal(acme_tlsalpn01_server_start("127.0.0.1", port, &s, &err), CP_OK);
    int idle = connect_local(port);
    sleep_ms(200);
    double t0 = now_s();
    acme_solver_server_stop(s);
    assert_true(now_s() - t0 < 2.0);
    close(idle);
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest values[] = {
        cmocka_unit_test(test_key_authorization),
        cmocka_unit_test(test_dns01_txt),
        cmocka_unit_test(test_webroot_write_remove),
        cmocka_unit_test(test_webroot_trailing_slash),
        cmocka_unit_test(test_webroot_bad_tokens),
        cmocka_unit_test(test_webroot_keeps_existing_dirs),
        cmocka_unit_test(test_webroot_missing),
        cmocka_unit_test(test_webroot_symlink_refused),
        cmocka_unit_test(test_webroot_check),
        cmocka_unit_test(test_port_check),
        cmocka_unit_test(test_http01_stop_with_idle_client),
        cmocka_unit_test(test_http01_all_addresses),
        cmocka_unit_test(test_tlsalpn01_cert),
        cmocka_unit_test(test_tlsalpn01_stop_with_idle_client),
        cmocka_unit_test(test_http01_one_address),
        cmocka_unit_test(test_http01_flood),
        cmocka_unit_test(test_tlsalpn01_flood),
    };
    const struct CMUnitTest http[] = {
        cmocka_unit_test(test_http01_get), cmocka_unit_test(test_http01_not_found),
        cmocka_unit_test(test_http01_raw), cmocka_unit_test(test_http01_oversized),
        cmocka_unit_test(test_http01_add), cmocka_unit_test(test_http01_slow_client_bounded),
    };
    const struct CMUnitTest tls[] = {
        cmocka_unit_test(test_tlsalpn01_handshake),
        cmocka_unit_test(test_tlsalpn01_refused),
        cmocka_unit_test(test_tlsalpn01_add),
    };
    int failed =
        cmocka_run_group_tests_name("challenge values, webroot, ports", values, NULL, NULL);
    failed += cmocka_run_group_tests_name("http-01 server", http, http_setup, http_teardown);
    failed += cmocka_run_group_tests_name("tls-alpn-01 server", tls, tls_setup, tls_teardown);
    curl_global_cleanup();
    return failed;
}
