/* tests/unit/fixture.c - see fixture.h. */
#define _XOPEN_SOURCE 700 /* nftw() */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <ftw.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "acme/acme.h"
#include "caa/dns_int.h"
#include "tests/unit/fixture.h"

char *fixture_cert(long serial, long long from, long long seconds, char **key_pem)
{
    struct acme_key *k = NULL;
    struct cp_err err = {0};
    size_t klen = 0;
    assert_int_equal(acme_key_generate(ACME_KEY_EC256, &k, &err), CP_OK);
    assert_int_equal(acme_key_to_pem(k, key_pem, &klen, &err), CP_OK);
    X509 *x = X509_new();
    assert_int_equal(ASN1_INTEGER_set(X509_get_serialNumber(x), serial), 1);
    X509_NAME *name = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"a.test", -1, -1,
                               0);
    X509_set_issuer_name(x, name);
    X509_set_pubkey(x, acme_key_evp(k));
    time_t start = from != 0 ? (time_t)from : time(NULL);
    assert_non_null(ASN1_TIME_set(X509_getm_notBefore(x), start));
    assert_non_null(ASN1_TIME_set(X509_getm_notAfter(x), start + (time_t)seconds));
    assert_true(X509_sign(x, acme_key_evp(k), EVP_sha256()) > 0);
    BIO *b = BIO_new(BIO_s_mem());
    PEM_write_bio_X509(b, x);
    char *data;
    long len = BIO_get_mem_data(b, &data);
    char *pem = strndup(data, (size_t)len);
    BIO_free(b);
    X509_free(x);
    acme_key_free(k);
    return pem;
}

static int remove_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)ftw;
    return flag == FTW_DP ? rmdir(path) : unlink(path);
}

int fixture_remove_tree(const char *path)
{
    return nftw(path, remove_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* Whether TCP port `port` on 127.0.0.1 can be bound now (0: ask the
 * kernel); the port bound in *out. */
static int bind_loopback(int port, int *out)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int ok = bind(fd, (struct sockaddr *)&sin, sizeof sin) == 0;
    socklen_t len = sizeof sin;
    if (ok)
        assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
    close(fd);
    *out = ntohs(sin.sin_port);
    return ok;
}

int fixture_free_port(void)
{
    /* Below the kernel's ephemeral range (Linux: from 32768), where no
     * outgoing connection of another process can take the port before
     * the test's server binds it; a random start keeps parallel test
     * binaries apart. */
    int low = 32768, high = 60999, port;
    FILE *f = fopen("/proc/sys/net/ipv4/ip_local_port_range", "r");
    if (f) {
        if (fscanf(f, "%d %d", &low, &high) != 2)
            low = 32768;
        fclose(f);
    }
    if (low > 11000) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        unsigned seed = (unsigned)getpid() ^ (unsigned)ts.tv_nsec;
        for (int tries = 0; tries < 200; tries++)
            if (bind_loopback(10000 + (int)(rand_r(&seed) % (unsigned)(low - 10000)), &port))
                return port;
    }
    assert_true(bind_loopback(0, &port));
    return port;
}

size_t fixture_dns_question(int fd, unsigned char q[512], struct sockaddr_in *from, char *name,
                            size_t *qend)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    if (poll(&p, 1, 20) <= 0)
        return 0;
    socklen_t fromlen = sizeof *from;
    ssize_t n = recvfrom(fd, q, 512, 0, (struct sockaddr *)from, &fromlen);
    const unsigned char *after;
    if (n < CAA_DNS_HEADER_LEN + 5 ||
        caa_dns_expand_name(q + CAA_DNS_HEADER_LEN, q, (int)n, name, &after) != 0 ||
        after + 4 > q + n)
        return 0;
    *qend = (size_t)(after + 4 - q);
    return (size_t)n;
}
