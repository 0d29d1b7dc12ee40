/* tests/unit/test_common_file.c - common/file.c: directories with a mode, atomic
 * replacement that never loses the old file, bounded reads,
 * read-only mounts and the hint that says what to do about them. */
#define _GNU_SOURCE /* unshare(), for a mount namespace */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/file.h"

/* ---------------------------------------------------------------- helpers */

struct fx {
    char root[64];
    mode_t old_umask;
};

static void rm_rf(const char *path)
{
    struct stat st;
    if (lstat(path, &st) != 0)
        return;
    if (S_ISDIR(st.st_mode)) {
        (void)chmod(path, 0700);
        DIR *d = opendir(path);
        if (d != NULL) {
            struct dirent *e;
            while ((e = readdir(d)) != NULL) {
                if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                    continue;
                char sub[1024];
                int n = snprintf(sub, sizeof sub, "%s/%s", path, e->d_name);
                if (n > 0 && (size_t)n < sizeof sub)
                    rm_rf(sub);
            }
            closedir(d);
        }
        (void)rmdir(path);
    } else {
        (void)unlink(path);
    }
}

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    if (f == NULL)
        return -1;
    snprintf(f->root, sizeof f->root, "/tmp/cp-test-file-XXXXXX");
    if (mkdtemp(f->root) == NULL) {
        free(f);
        return -1;
    }
    f->old_umask = umask(022);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    umask(f->old_umask);
    rm_rf(f->root);
    free(f);
    return 0;
}

static void path_in(const struct fx *f, char *buf, size_t size, const char *name)
{
    int n = snprintf(buf, size, "%s/%s", f->root, name);
    assert_true(n > 0 && (size_t)n < size);
}

static void put(const char *path, const char *text, mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    assert_int_equal(close(fd), 0);
}

static void assert_content(const char *path, const char *expect)
{
    char buf[256];
    int fd = open(path, O_RDONLY);
    assert_true(fd >= 0);
    ssize_t n = read(fd, buf, sizeof buf - 1);
    assert_true(n >= 0);
    buf[n] = '\0';
    close(fd);
    assert_string_equal(buf, expect);
}

static unsigned mode_of(const char *path)
{
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    return (unsigned)(st.st_mode & 07777);
}

/* Number of entries in `dir` besides . and .. */
static int entries(const char *dir)
{
    int n = 0;
    DIR *d = opendir(dir);
    assert_non_null(d);
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
            n++;
    }
    closedir(d);
    return n;
}

/* ----------------------------------------------------------- write_atomic */

static void test_write_creates_with_mode_umask0(void **state)
{
    struct fx *f = *state;
    char p[256];
    struct cp_err err = {0};

    umask(0);
    path_in(f, p, sizeof p, "key.pem");
    assert_int_equal(cp_file_write_atomic(p, "secret\n", 7, 0600, &err), CP_OK);
    assert_int_equal(mode_of(p), 0600);
    assert_content(p, "secret\n");
    path_in(f, p, sizeof p, "cert.pem");
    assert_int_equal(cp_file_write_atomic(p, "cert\n", 5, 0644, &err), CP_OK);
    assert_int_equal(mode_of(p), 0644);
    assert_int_equal(entries(f->root), 2);
}

static void test_write_creates_with_mode_umask022(void **state)
{
    struct fx *f = *state;
    char p[256];
    struct cp_err err = {0};

    umask(022);
    path_in(f, p, sizeof p, "key.pem");
    assert_int_equal(cp_file_write_atomic(p, "secret\n", 7, 0600, &err), CP_OK);
    assert_int_equal(mode_of(p), 0600);
    /* The mode is exact: a umask cannot take bits away either. */
    umask(077);
    path_in(f, p, sizeof p, "cert.pem");
    assert_int_equal(cp_file_write_atomic(p, "cert\n", 5, 0644, &err), CP_OK);
    assert_int_equal(mode_of(p), 0644);
    assert_int_equal(entries(f->root), 2);
}

static void test_write_replaces_and_sets_mode(void **state)
{
    struct fx *f = *state;
    char p[256];
    struct cp_err err = {0};

    path_in(f, p, sizeof p, "key.pem");
    put(p, "old contents", 0644);
    assert_int_equal(cp_file_write_atomic(p, "new", 3, 0600, &err), CP_OK);
    assert_content(p, "new");
    assert_int_equal(mode_of(p), 0600);
    /* Empty data is a valid (empty) file. */
    assert_int_equal(cp_file_write_atomic(p, NULL, 0, 0600, &err), CP_OK);
    assert_content(p, "");
    assert_int_equal(entries(f->root), 1);
}

static void test_write_missing_directory(void **state)
{
    struct fx *f = *state;
    char p[256];
    struct cp_err err = {0};

    path_in(f, p, sizeof p, "nope/key.pem");
    assert_int_equal(cp_file_write_atomic(p, "x", 1, 0600, &err), CP_EIO);
    assert_int_equal(err.code, CP_EIO);
    assert_non_null(strstr(err.msg, p));
    assert_non_null(strstr(err.msg, strerror(ENOENT)));
    assert_int_equal(entries(f->root), 0);
}

static void test_write_target_is_directory(void **state)
{
    struct fx *f = *state;
    char dir[256];
    char inner[300];
    struct cp_err err = {0};

    path_in(f, dir, sizeof dir, "target");
    assert_int_equal(mkdir(dir, 0700), 0);
    snprintf(inner, sizeof inner, "%s/keep", dir);
    put(inner, "keep me", 0600);

    assert_int_equal(cp_file_write_atomic(dir, "x", 1, 0600, &err), CP_EIO);
    assert_non_null(strstr(err.msg, dir));
    /* The rename failed after the temporary file was written: it is gone and
     * what was there is intact. */
    assert_int_equal(entries(f->root), 1);
    assert_int_equal(entries(dir), 1);
    assert_content(inner, "keep me");

    /* A path ending in '/' is refused before anything is created. */
    char slash[300];
    snprintf(slash, sizeof slash, "%s/", dir);
    assert_int_equal(cp_file_write_atomic(slash, "x", 1, 0600, &err), CP_EINVAL);
    assert_int_equal(entries(dir), 1);
}

static void test_write_failure_keeps_old_file(void **state)
{
    struct fx *f = *state;
    char p[256];
    struct cp_err err = {0};
    struct rlimit saved;
    struct rlimit small;
    char big[8192];

    path_in(f, p, sizeof p, "key.pem");
    put(p, "the old key", 0600);
    memset(big, 'A', sizeof big);

    /* Running as root, permissions cannot make the write fail; a file size
     * limit can (write() then fails with EFBIG once SIGXFSZ is ignored). */
    void (*old_handler)(int) = signal(SIGXFSZ, SIG_IGN);
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &saved), 0);
    small = saved;
    small.rlim_cur = 1024;
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &small), 0);
    enum cp_code rc = cp_file_write_atomic(p, big, sizeof big, 0600, &err);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &saved), 0);
    signal(SIGXFSZ, old_handler);

    assert_int_equal(rc, CP_EIO);
    assert_non_null(strstr(err.msg, p));
    assert_non_null(strstr(err.msg, strerror(EFBIG)));
    assert_content(p, "the old key");
    assert_int_equal(entries(f->root), 1);
}

static void test_write_relative_path(void **state)
{
    struct fx *f = *state;
    char cwd[512];
    struct cp_err err = {0};

    assert_non_null(getcwd(cwd, sizeof cwd));
    assert_int_equal(chdir(f->root), 0);
    enum cp_code rc = cp_file_write_atomic("plain", "abc", 3, 0600, &err);
    assert_int_equal(chdir(cwd), 0);
    assert_int_equal(rc, CP_OK);
    char p[256];
    path_in(f, p, sizeof p, "plain");
    assert_content(p, "abc");
    assert_int_equal(entries(f->root), 1);
}

/* ------------------------------------------------------------------- read */

static void test_read_whole_file(void **state)
{
    struct fx *f = *state;
    char p[256];
    struct cp_err err = {0};
    char *out = NULL;
    size_t len = 99;

    path_in(f, p, sizeof p, "data");
    assert_int_equal(cp_file_write_atomic(p, "ab\0cd", 5, 0600, &err), CP_OK);
    assert_int_equal(cp_file_read(p, 5, &out, &len, &err), CP_OK);
    assert_int_equal(len, 5);
    assert_memory_equal(out, "ab\0cd", 5);
    assert_int_equal(out[5], '\0');
    free(out);

    path_in(f, p, sizeof p, "empty");
    assert_int_equal(cp_file_write_atomic(p, "", 0, 0600, &err), CP_OK);
    assert_int_equal(cp_file_read(p, 0, &out, &len, &err), CP_OK);
    assert_int_equal(len, 0);
    assert_string_equal(out, "");
    free(out);
}

static void test_read_bigger_than_buffer_growth(void **state)
{
    struct fx *f = *state;
    char p[256];
    struct cp_err err = {0};
    char *out = NULL;
    size_t len = 0;
    size_t n = 100000;
    char *data = malloc(n);
    assert_non_null(data);
    for (size_t i = 0; i < n; i++)
        data[i] = (char)('a' + i % 26);

    path_in(f, p, sizeof p, "big");
    assert_int_equal(cp_file_write_atomic(p, data, n, 0644, &err), CP_OK);
    assert_int_equal(cp_file_read(p, 1 << 20, &out, &len, &err), CP_OK);
    assert_int_equal(len, n);
    assert_memory_equal(out, data, n);
    free(out);
    free(data);
}

static void test_read_refuses_over_max(void **state)
{
    struct fx *f = *state;
    char p[256];
    struct cp_err err = {0};
    char *out = (char *)"sentinel";
    size_t len = 7;

    path_in(f, p, sizeof p, "data");
    assert_int_equal(cp_file_write_atomic(p, "0123456789", 10, 0600, &err), CP_OK);
    assert_int_equal(cp_file_read(p, 9, &out, &len, &err), CP_EINVAL);
    assert_null(out);
    assert_int_equal(len, 0);
    assert_non_null(strstr(err.msg, p));
    assert_non_null(strstr(err.msg, "10 bytes"));
    assert_non_null(strstr(err.msg, "9 bytes"));
}

static void test_read_errors(void **state)
{
    struct fx *f = *state;
    char p[256];
    struct cp_err err = {0};
    char *out = NULL;
    size_t len = 0;

    path_in(f, p, sizeof p, "missing");
    assert_int_equal(cp_file_read(p, 100, &out, &len, &err), CP_EIO);
    assert_null(out);
    assert_non_null(strstr(err.msg, p));
    assert_non_null(strstr(err.msg, strerror(ENOENT)));

    assert_int_equal(cp_file_read(f->root, 100, &out, &len, &err), CP_EIO);
    assert_null(out);
    assert_non_null(strstr(err.msg, f->root));
    assert_non_null(strstr(err.msg, strerror(EISDIR)));
}

/* Read relative to an open directory: the file is found under that
 * directory, a symlink in its place is refused, and messages name the
 * whole path given for them. */
static void test_read_nofollow_at(void **state)
{
    struct fx *f = *state;
    char p[256], link[256];
    struct cp_err err = {0};
    char *out = NULL;
    size_t len = 0;

    path_in(f, p, sizeof p, "data");
    put(p, "hello", 0600);
    int dfd = open(f->root, O_RDONLY | O_DIRECTORY);
    assert_true(dfd >= 0);
    assert_int_equal(cp_file_read_nofollow_at(dfd, "data", p, 100, &out, &len, &err), CP_OK);
    assert_int_equal(len, 5);
    assert_string_equal(out, "hello");
    free(out);

    path_in(f, link, sizeof link, "link");
    assert_int_equal(symlink("data", link), 0);
    assert_int_equal(cp_file_read_nofollow_at(dfd, "link", link, 100, &out, &len, &err),
                     CP_EUNSAFE);
    assert_null(out);
    assert_non_null(strstr(err.msg, link));

    assert_int_equal(
        cp_file_read_nofollow_at(dfd, "missing", "/the/whole/name", 100, &out, &len, &err), CP_EIO);
    assert_non_null(strstr(err.msg, "/the/whole/name"));
    assert_non_null(strstr(err.msg, strerror(ENOENT)));
    close(dfd);
}

/* ------------------------------------------------------------- dir_ensure */

static void test_dir_creates_nested(void **state)
{
    struct fx *f = *state;
    char p[256];
    char q[256];
    struct cp_err err = {0};

    path_in(f, p, sizeof p, "a/b/c/");
    assert_int_equal(cp_dir_ensure(p, 0700, &err), CP_OK);
    path_in(f, q, sizeof q, "a");
    assert_int_equal(mode_of(q), 0700);
    path_in(f, q, sizeof q, "a/b");
    assert_int_equal(mode_of(q), 0700);
    path_in(f, q, sizeof q, "a/b/c");
    assert_int_equal(mode_of(q), 0700);
    /* Again: nothing to do. */
    assert_int_equal(cp_dir_ensure(q, 0700, &err), CP_OK);
    assert_int_equal(mode_of(q), 0700);
    /* Doubled slashes are harmless. */
    path_in(f, p, sizeof p, "a//b//d");
    assert_int_equal(cp_dir_ensure(p, 0700, &err), CP_OK);
    path_in(f, q, sizeof q, "a/b/d");
    assert_int_equal(mode_of(q), 0700);
}

static void test_dir_tightens(void **state)
{
    struct fx *f = *state;
    char p[256];
    struct cp_err err = {0};

    umask(0);
    path_in(f, p, sizeof p, "open");
    assert_int_equal(mkdir(p, 0755), 0);
    assert_int_equal(mode_of(p), 0755);
    assert_int_equal(cp_dir_ensure(p, 0700, &err), CP_OK);
    assert_int_equal(mode_of(p), 0700);

    /* Stricter than asked is left alone. */
    path_in(f, p, sizeof p, "strict");
    assert_int_equal(mkdir(p, 0500), 0);
    assert_int_equal(cp_dir_ensure(p, 0700, &err), CP_OK);
    assert_int_equal(mode_of(p), 0500);

    /* A parent that exists is not touched, only the final directory. */
    path_in(f, p, sizeof p, "open/sub");
    assert_int_equal(chmod(f->root, 0755), 0);
    assert_int_equal(cp_dir_ensure(p, 0700, &err), CP_OK);
    assert_int_equal(mode_of(p), 0700);
    assert_int_equal(mode_of(f->root), 0755);
}

static void test_dir_not_a_directory(void **state)
{
    struct fx *f = *state;
    char p[256];
    char q[256];
    struct cp_err err = {0};

    path_in(f, p, sizeof p, "file");
    put(p, "x", 0600);
    assert_int_equal(cp_dir_ensure(p, 0700, &err), CP_EIO);
    assert_non_null(strstr(err.msg, p));
    assert_non_null(strstr(err.msg, "not a directory"));

    path_in(f, q, sizeof q, "file/below");
    assert_int_equal(cp_dir_ensure(q, 0700, &err), CP_EIO);
    assert_non_null(strstr(err.msg, q));
    assert_non_null(strstr(err.msg, "not a directory"));

    assert_int_equal(cp_dir_ensure("", 0700, &err), CP_EINVAL);
}

/* ------------------------------------------------------- read-only mounts */

static void test_readonly_hint_names_the_fix(void **state)
{
    (void)state;
    char buf[CP_ERR_MSG_MAX];
    cp_readonly_hint("/srv/www/example", false, buf, sizeof buf);
    assert_non_null(strstr(buf, "/srv/www/example is on a read-only file system"));
    assert_non_null(strstr(buf, "ReadWritePaths=/srv/www/example "));
    assert_non_null(strstr(buf, "systemctl edit certpilot-renew.service"));
    assert_non_null(strstr(buf, "certpilot systemd install"));
    /* Inside the service: the sandbox, not the mount, is the cause. */
    cp_readonly_hint("/var/www", true, buf, sizeof buf);
    assert_non_null(strstr(buf, "/var/www is read-only in this systemd service"));
    assert_null(strstr(buf, "mount it read-write"));
    assert_non_null(strstr(buf, "ReadWritePaths=/var/www "));
    assert_non_null(strstr(buf, "certpilot systemd install"));
    /* Truncated, never overrun. */
    char small[16];
    cp_readonly_hint("/var/www", true, small, sizeof small);
    assert_int_equal(strlen(small), sizeof small - 1);
}

static void test_readonly_writable_dir(void **state)
{
    struct fx *f = *state;
    char missing[256];
    path_in(f, missing, sizeof missing, "not/made/yet");
    assert_false(cp_path_readonly(f->root));
    assert_false(cp_path_readonly(missing));
    assert_false(cp_path_readonly(""));
    struct cp_err err = {0};
    cp_err_set(&err, CP_EIO, "cannot write");
    assert_false(cp_err_readonly(&err, f->root));
    assert_string_equal(err.msg, "cannot write");
}

/* In a child with its own mount namespace: a read-only tmpfs over the
 * fixture's directory.  Exit 0 when detected as it should be, 77 when this
 * machine allows no mounts (not root, or a container that forbids them). */
static int readonly_child(const char *root)
{
    char below[300];
    if (unshare(CLONE_NEWNS) != 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0 ||
        mount("tmpfs", root, "tmpfs", MS_RDONLY, NULL) != 0)
        return 77;
    snprintf(below, sizeof below, "%s/not-made/x", root);
    if (!cp_path_readonly(root) || !cp_path_readonly(below))
        return 1;
    struct cp_err err = {0};
    cp_err_set(&err, CP_EIO, "cannot create x");
    if (!cp_err_readonly(&err, below) || strncmp(err.msg, "cannot create x; ", 17) != 0 ||
        strstr(err.msg, "ReadWritePaths=") == NULL)
        return 2;
    return 0;
}

static void test_readonly_mount_detected(void **state)
{
    struct fx *f = *state;
    int status;
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        _exit(readonly_child(f->root));
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    if (WEXITSTATUS(status) == 77)
        skip(); /* no mount namespace here: the hint test above still ran */
    assert_int_equal(WEXITSTATUS(status), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_write_creates_with_mode_umask0, setup, teardown),
        cmocka_unit_test_setup_teardown(test_write_creates_with_mode_umask022, setup, teardown),
        cmocka_unit_test_setup_teardown(test_write_replaces_and_sets_mode, setup, teardown),
        cmocka_unit_test_setup_teardown(test_write_missing_directory, setup, teardown),
        cmocka_unit_test_setup_teardown(test_write_target_is_directory, setup, teardown),
        cmocka_unit_test_setup_teardown(test_write_failure_keeps_old_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_write_relative_path, setup, teardown),
        cmocka_unit_test_setup_teardown(test_read_whole_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_read_bigger_than_buffer_growth, setup, teardown),
        cmocka_unit_test_setup_teardown(test_read_refuses_over_max, setup, teardown),
        cmocka_unit_test_setup_teardown(test_read_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_read_nofollow_at, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dir_creates_nested, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dir_tightens, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dir_not_a_directory, setup, teardown),
        cmocka_unit_test(test_readonly_hint_names_the_fix),
        cmocka_unit_test_setup_teardown(test_readonly_writable_dir, setup, teardown),
        cmocka_unit_test_setup_teardown(test_readonly_mount_detected, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
