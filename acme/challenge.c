/*
 * acme/challenge.c - challenge values and the local side of http-01 without a
 * server: key authorizations (RFC 8555 §8.1), the dns-01 TXT value (§8.4),
 * the webroot files (§8.3), and binding the ports the built-in servers use.
 *
 * Which webroot directories were created is kept by the caller (a bit mask
 * passed to write and remove), so that only those are removed, and only once
 * they are empty; a directory that existed before is never removed.
 */
#include "acme/acme.h"
#include "acme/solver_int.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#define WELL_KNOWN     ".well-known"
#define ACME_CHALLENGE ".well-known/acme-challenge"

/* ------------------------------------------------------- challenge values */

char *acme_key_authorization(const char *token, const char *thumbprint)
{
    if (token == NULL || thumbprint == NULL)
        return NULL;
    size_t lt = strlen(token);
    size_t lp = strlen(thumbprint);
    if (lt > SIZE_MAX - lp - 2)
        return NULL;
    char *s = malloc(lt + lp + 2);
    if (s == NULL)
        return NULL;
    memcpy(s, token, lt);
    s[lt] = '.';
    memcpy(s + lt + 1, thumbprint, lp);
    s[lt + 1 + lp] = '\0';
    return s;
}

enum cp_code acme_dns01_txt(const char *key_authz, char out[44], struct cp_err *err)
{
    if (key_authz == NULL || *key_authz == '\0')
        return cp_err_set(err, CP_EINVAL, "dns-01: empty key authorization");

    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    if (EVP_Digest(key_authz, strlen(key_authz), md, &mdlen, EVP_sha256(), NULL) != 1 ||
        mdlen != 32)
        return cp_err_set(err, CP_EINTERNAL, "dns-01: SHA-256 failed");

    enum cp_code rc = CP_OK;
    char *b64 = acme_b64url_encode(md, mdlen);
    if (b64 == NULL)
        rc = cp_err_set(err, CP_ENOMEM, "dns-01: out of memory");
    else if (strlen(b64) != 43)
        rc = cp_err_set(err, CP_EINTERNAL, "dns-01: base64url of a digest is not 43 characters");
    else
        memcpy(out, b64, 44);

    if (b64 != NULL) {
        OPENSSL_cleanse(b64, strlen(b64));
        free(b64);
    }
    OPENSSL_cleanse(md, sizeof md);
    return rc;
}

bool acme_token_valid(const char *token)
{
    if (token == NULL)
        return false;
    size_t n = 0;
    for (const char *p = token; *p != '\0'; p++, n++) {
        char c = *p;
        bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                  c == '-' || c == '_';
        if (!ok || n >= SOLVER_MAX_TOKEN)
            return false;
    }
    return n > 0;
}

/* --------------------------------------------------------------- webroot */

/* Bits of the `created` mask: which directories this process made. */
#define CREATED_WELL_KNOWN 1u
#define CREATED_CHALLENGE  2u

/* rmdir `path` if the bit says we created it; a directory that is not empty
 * (another token's file, or the admin's) stays and keeps its bit. */
static void created_remove(const char *path, unsigned *created, unsigned bit)
{
    if (created != NULL && (*created & bit) && (rmdir(path) == 0 || errno == ENOENT))
        *created &= ~bit;
}

/* The webroot without trailing slashes ("/" becomes ""), as a length. */
static int webroot_len(const char *webroot)
{
    size_t n = strlen(webroot);
    while (n > 0 && webroot[n - 1] == '/')
        n--;
    return n > INT_MAX ? INT_MAX : (int)n;
}

/* <webroot>/<rel>[/<token>] into buf. */
static bool webroot_path(char *buf, size_t size, const char *webroot, const char *rel,
                         const char *token)
{
    int n = webroot_len(webroot);
    int w = token == NULL ? snprintf(buf, size, "%.*s/%s", n, webroot, rel)
                          : snprintf(buf, size, "%.*s/%s/%s", n, webroot, rel, token);
    return w >= 0 && (size_t)w < size;
}

/* Make sure `path` is a directory, creating it 0755 (whatever the umask: the
 * web server must be able to enter it) and remembering that we did. */
static enum cp_code ensure_dir(const char *path, unsigned *created, unsigned bit,
                               struct cp_err *err)
{
    if (mkdir(path, 0755) == 0) {
        *created |= bit;
        if (chmod(path, 0755) != 0)
            return cp_err_set(err, CP_EIO, "cannot chmod %s: %s", path, strerror(errno));
        return CP_OK;
    }
    if (errno != EEXIST)
        return cp_err_set(err, CP_EIO, "cannot create directory %s: %s", path, strerror(errno));
    struct stat st;
    if (stat(path, &st) != 0)
        return cp_err_set(err, CP_EIO, "cannot stat %s: %s", path, strerror(errno));
    if (!S_ISDIR(st.st_mode))
        return cp_err_set(err, CP_EIO, "%s exists and is not a directory", path);
    return CP_OK;
}

static enum cp_code write_all(int fd, const char *data, size_t len, const char *path,
                              struct cp_err *err)
{
    while (len > 0) {
        ssize_t w = write(fd, data, len);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return cp_err_set(err, CP_EIO, "cannot write %s: %s", path, strerror(errno));
        }
        data += w;
        len -= (size_t)w;
    }
    return CP_OK;
}

enum cp_code acme_webroot_write(const char *webroot, const char *token, const char *key_authz,
                                unsigned *created, struct cp_err *err)
{
    if (webroot == NULL || *webroot == '\0')
        return cp_err_set(err, CP_EINVAL, "empty webroot");
    if (!acme_token_valid(token))
        return cp_err_set(err, CP_EINVAL,
                          "http-01 token is not 1 to %d base64url characters: refused as a "
                          "file name",
                          SOLVER_MAX_TOKEN);
    if (key_authz == NULL)
        return cp_err_set(err, CP_EINVAL, "http-01: no key authorization");

    struct stat st;
    if (stat(webroot, &st) != 0) {
        if (errno == ENOENT || errno == ENOTDIR)
            return cp_err_set(err, CP_EIO, "webroot %s does not exist", webroot);
        return cp_err_set(err, CP_EIO, "cannot stat webroot %s: %s", webroot, strerror(errno));
    }
    if (!S_ISDIR(st.st_mode))
        return cp_err_set(err, CP_EIO, "webroot %s is not a directory", webroot);

    char dir1[PATH_MAX], dir2[PATH_MAX], file[PATH_MAX];
    if (!webroot_path(dir1, sizeof dir1, webroot, WELL_KNOWN, NULL) ||
        !webroot_path(dir2, sizeof dir2, webroot, ACME_CHALLENGE, NULL) ||
        !webroot_path(file, sizeof file, webroot, ACME_CHALLENGE, token))
        return cp_err_set(err, CP_EINVAL, "webroot %s: path too long", webroot);

    unsigned mine = 0; /* what this call creates, undone on failure */
    enum cp_code rc = ensure_dir(dir1, &mine, CREATED_WELL_KNOWN, err);
    if (rc == CP_OK)
        rc = ensure_dir(dir2, &mine, CREATED_CHALLENGE, err);
    if (rc != CP_OK)
        goto undo_dirs;

    /* O_NOFOLLOW: a symlink planted under the token's name must not make us
     * overwrite its target. */
    int fd = open(file, O_CREAT | O_WRONLY | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd < 0) {
        if (errno == ELOOP)
            rc = cp_err_set(err, CP_EIO, "refusing to write %s: it is a symbolic link", file);
        else
            rc = cp_err_set(err, CP_EIO, "cannot create %s: %s", file, strerror(errno));
        goto undo_dirs;
    }
    /* 0644 whatever the umask, or an existing file's mode: the web server,
     * often another user, must read it. */
    if (fchmod(fd, 0644) != 0)
        rc = cp_err_set(err, CP_EIO, "cannot chmod %s: %s", file, strerror(errno));
    if (rc == CP_OK)
        rc = write_all(fd, key_authz, strlen(key_authz), file, err);
    if (close(fd) != 0 && rc == CP_OK)
        rc = cp_err_set(err, CP_EIO, "cannot write %s: %s", file, strerror(errno));
    if (rc == CP_OK) {
        *created |= mine;
        return CP_OK;
    }
    (void)unlink(file); /* ours: created or truncated above */
undo_dirs:
    created_remove(dir2, &mine, CREATED_CHALLENGE);
    created_remove(dir1, &mine, CREATED_WELL_KNOWN);
    return rc;
}

void acme_webroot_remove(const char *webroot, const char *token, unsigned *created)
{
    if (webroot == NULL || *webroot == '\0' || !acme_token_valid(token))
        return;
    char dir1[PATH_MAX], dir2[PATH_MAX], file[PATH_MAX];
    if (!webroot_path(dir1, sizeof dir1, webroot, WELL_KNOWN, NULL) ||
        !webroot_path(dir2, sizeof dir2, webroot, ACME_CHALLENGE, NULL) ||
        !webroot_path(file, sizeof file, webroot, ACME_CHALLENGE, token))
        return;
    (void)unlink(file);
    created_remove(dir2, created, CREATED_CHALLENGE);
    created_remove(dir1, created, CREATED_WELL_KNOWN);
}

enum cp_code acme_webroot_check(const char *webroot, struct cp_err *err)
{
    unsigned char rnd[12];
    char token[64];
    if (RAND_bytes(rnd, sizeof rnd) != 1)
        return cp_err_set(err, CP_EINTERNAL, "no random bytes for the webroot probe");
    int n = snprintf(token, sizeof token, "certpilot-probe-");
    for (size_t i = 0; i < sizeof rnd && n >= 0 && (size_t)n + 3 <= sizeof token; i++)
        n += snprintf(token + n, sizeof token - (size_t)n, "%02x", rnd[i]);

    unsigned created = 0;
    enum cp_code rc = acme_webroot_write(webroot, token, "certpilot webroot check", &created, err);
    if (rc == CP_OK)
        acme_webroot_remove(webroot, token, &created);
    return rc;
}

/* ------------------------------------------------------------------ ports */

static bool set_fd_flags(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    int fdfl = fcntl(fd, F_GETFD);
    return fl >= 0 && fdfl >= 0 && fcntl(fd, F_SETFL, fl | O_NONBLOCK) == 0 &&
           fcntl(fd, F_SETFD, fdfl | FD_CLOEXEC) == 0;
}

/* One listening socket.  Returns the fd, or -1 with errno set. */
static int listen_one(const struct sockaddr *sa, socklen_t salen, int v6only)
{
    int fd = socket(sa->sa_family, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    int one = 1;
    if (!set_fd_flags(fd) || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0)
        goto fail;
    if (v6only >= 0 && setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, sizeof v6only) != 0)
        goto fail;
    if (bind(fd, sa, salen) != 0 || listen(fd, SOLVER_BACKLOG) != 0)
        goto fail;
    return fd;
fail:;
    int saved = errno;
    close(fd);
    errno = saved;
    return -1;
}

static enum cp_code bind_error(const char *addr, int port, int e, struct cp_err *err)
{
    return cp_err_set(err, CP_EIO, "cannot listen on port %d (%s): %s%s", port,
                      addr != NULL ? addr : "all addresses", strerror(e),
                      e == EACCES && port < 1024 ? " (ports below 1024 need privileges)" : "");
}

enum cp_code acme_solver_listen(const char *addr, int port, int fds[SOLVER_MAX_LISTEN],
                                size_t *nfds, struct cp_err *err)
{
    *nfds = 0;
    if (port < 1 || port > 65535)
        return cp_err_set(err, CP_EINVAL, "port %d is not between 1 and 65535", port);

    struct sockaddr_in sin;
    struct sockaddr_in6 sin6;
    memset(&sin, 0, sizeof sin);
    memset(&sin6, 0, sizeof sin6);
    sin.sin_family = AF_INET;
    sin.sin_port = htons((unsigned short)port);
    sin6.sin6_family = AF_INET6;
    sin6.sin6_port = htons((unsigned short)port);

    if (addr != NULL) {
        int fd;
        if (inet_pton(AF_INET, addr, &sin.sin_addr) == 1)
            fd = listen_one((const struct sockaddr *)&sin, sizeof sin, -1);
        else if (inet_pton(AF_INET6, addr, &sin6.sin6_addr) == 1)
            fd = listen_one((const struct sockaddr *)&sin6, sizeof sin6, 1);
        else
            return cp_err_set(err, CP_EINVAL, "listen address %s is not an IPv4 or IPv6 address",
                              addr);
        if (fd < 0)
            return bind_error(addr, port, errno, err);
        fds[(*nfds)++] = fd;
        return CP_OK;
    }

    /* All addresses: one dual-stack IPv6 socket where possible. */
    sin.sin_addr.s_addr = htonl(INADDR_ANY);
    sin6.sin6_addr = in6addr_any;
    int fd = listen_one((const struct sockaddr *)&sin6, sizeof sin6, 0);
    if (fd >= 0) {
        fds[(*nfds)++] = fd;
        return CP_OK;
    }
    int e = errno;
    if (e == EADDRINUSE || e == EACCES)
        return bind_error(NULL, port, e, err);
    if (e == ENOPROTOOPT || e == EINVAL) {
        /* The system refuses dual-stack: IPv6 only, plus IPv4 below. */
        fd = listen_one((const struct sockaddr *)&sin6, sizeof sin6, 1);
        if (fd >= 0)
            fds[(*nfds)++] = fd;
    }
    /* No IPv6 here (EAFNOSUPPORT, EADDRNOTAVAIL, ...): IPv4 alone. */
    fd = listen_one((const struct sockaddr *)&sin, sizeof sin, -1);
    if (fd < 0) {
        e = errno;
        for (size_t i = 0; i < *nfds; i++)
            close(fds[i]);
        *nfds = 0;
        return bind_error(NULL, port, e, err);
    }
    fds[(*nfds)++] = fd;
    return CP_OK;
}

enum cp_code acme_port_check(const char *addr, int port, struct cp_err *err)
{
    int fds[SOLVER_MAX_LISTEN];
    size_t n = 0;
    enum cp_code rc = acme_solver_listen(addr, port, fds, &n, err);
    for (size_t i = 0; i < n; i++)
        close(fds[i]);
    return rc;
}
