/*
 * tests/unit/test_hooks_spawn.c - hooks/spawn.c and hooks/dehydrated.c.
 *
 * Each test writes small /bin/sh scripts into a temp dir and runs them through
 * hook_run(): the shell is the hook under test here, never part of the code
 * under test.  Also checks the argument validation of the example hook
 * hooks/examples/dns-challtestsrv.sh and dns-nsupdate.sh with fake curl and
 * nsupdate, so no network is needed.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "hooks/hooks.h"

/* snprintf into an array, failing the test on truncation. */
#define FMT(buf, ...)                                                                              \
    do {                                                                                           \
        int fmt_n_ = snprintf((buf), sizeof(buf), __VA_ARGS__);                                    \
        assert_true(fmt_n_ >= 0 && (size_t)fmt_n_ < sizeof(buf));                                  \
    } while (0)

static char tmpdir[64];
static char paths[64][256];
static size_t npaths;

static int setup_dir(void **state)
{
    (void)state;
    FMT(tmpdir, "/tmp/cp-hooks-XXXXXX");
    return mkdtemp(tmpdir) == NULL ? -1 : 0;
}

static int remove_dir(void **state)
{
    (void)state;
    while (npaths > 0)
        (void)remove(paths[--npaths]);
    return rmdir(tmpdir);
}

/* Path of `name` in the temp dir, remembered for removal. */
static const char *tmp_path(const char *name)
{
    assert_true(npaths < sizeof paths / sizeof paths[0]);
    int n = snprintf(paths[npaths], sizeof paths[0], "%s/%s", tmpdir, name);
    assert_true(n > 0 && (size_t)n < sizeof paths[0]);
    return paths[npaths++];
}

/* Write "#!/bin/sh\n" + body to tmpdir/name with `mode`; return its path. */
static const char *script(const char *name, const char *body, mode_t mode)
{
    const char *path = tmp_path(name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_true(fputs("#!/bin/sh\n", f) >= 0);
    assert_true(fputs(body, f) >= 0);
    assert_int_equal(fclose(f), 0);
    assert_int_equal(chmod(path, mode), 0);
    return path;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Is process `pid` gone (no such process, or a zombie nobody has reaped yet)?
 * Retries for up to 3 s: the kernel delivers the signal asynchronously. */
static bool process_gone(long pid)
{
    for (int i = 0; i < 60; i++) {
        if (kill((pid_t)pid, 0) == -1 && errno == ESRCH)
            return true;
        char statpath[64], buf[256];
        FMT(statpath, "/proc/%ld/stat", pid);
        FILE *f = fopen(statpath, "r");
        if (f != NULL) {
            size_t n = fread(buf, 1, sizeof buf - 1, f);
            fclose(f);
            buf[n] = '\0';
            const char *rp = strrchr(buf, ')'); /* "pid (comm) S ..." */
            if (rp != NULL && rp[1] == ' ' && (rp[2] == 'Z' || rp[2] == 'X'))
                return true;
        }
        struct timespec ts = {0, 50 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    return false;
}

static long first_line_number(const char *output)
{
    char *end = NULL;
    long v = strtol(output, &end, 10);
    assert_true(end != output && v > 0);
    return v;
}

/* ---------------------------------------------------------------- hook_run */

static void test_exit_status(void **state)
{
    (void)state;
    struct hook_result r;
    struct cp_err err;
    const char *ok = script("ok", "exit 0\n", 0755);
    const char *three = script("three", "exit 3\n", 0755);

    const char *argv_ok[] = {ok, NULL};
    assert_int_equal(hook_run(argv_ok, NULL, 5000, &r, &err), CP_OK);
    assert_int_equal(r.exit_status, 0);
    assert_int_equal(r.term_signal, 0);
    assert_false(r.timed_out);
    assert_true(hook_succeeded(&r));
    assert_int_equal(r.output_len, 0);
    assert_string_equal(r.output, "");
    hook_result_clear(&r);

    const char *argv_three[] = {three, NULL};
    assert_int_equal(hook_run(argv_three, NULL, 5000, &r, &err), CP_OK);
    assert_int_equal(r.exit_status, 3);
    assert_int_equal(r.term_signal, 0);
    assert_false(r.timed_out);
    assert_false(hook_succeeded(&r));
    hook_result_clear(&r);
    hook_result_clear(&r); /* twice is fine */
    hook_result_clear(NULL);
    assert_false(hook_succeeded(NULL));
}

static void test_killed_by_signal(void **state)
{
    (void)state;
    struct hook_result r;
    const char *path = script("selfkill", "kill -USR1 $$\nsleep 5\n", 0755);
    const char *argv[] = {path, NULL};
    assert_int_equal(hook_run(argv, NULL, 5000, &r, NULL), CP_OK);
    assert_int_equal(r.exit_status, -1);
    assert_int_equal(r.term_signal, SIGUSR1);
    assert_false(r.timed_out);
    assert_false(hook_succeeded(&r));
    hook_result_clear(&r);
}

static void test_output_both_streams(void **state)
{
    (void)state;
    struct hook_result r;
    const char *path = script("streams", "echo to-stdout\necho to-stderr >&2\necho again\n", 0755);
    const char *argv[] = {path, NULL};
    assert_int_equal(hook_run(argv, NULL, 5000, &r, NULL), CP_OK);
    assert_string_equal(r.output, "to-stdout\nto-stderr\nagain\n");
    assert_int_equal(r.output_len, strlen("to-stdout\nto-stderr\nagain\n"));
    assert_int_equal(r.output_dropped, 0);
    hook_result_clear(&r);
}

static void test_stdin_is_dev_null(void **state)
{
    (void)state;
    struct hook_result r;
    /* cat would wait for our stdin if the hook inherited it. */
    const char *path = script("stdin", "cat\necho read-eof\n", 0755);
    const char *argv[] = {path, NULL};
    assert_int_equal(hook_run(argv, NULL, 5000, &r, NULL), CP_OK);
    assert_false(r.timed_out);
    assert_string_equal(r.output, "read-eof\n");
    hook_result_clear(&r);
}

static void test_arguments_verbatim(void **state)
{
    (void)state;
    struct hook_result r;
    const char *path = script("args", "printf '%s\\n' \"$@\"\n", 0755);
    const char *argv[] = {path,          "two words", "it's", "\"double\"", "$(touch /tmp/x)",
                          "`id`",        "a; exit 9", "*",    "",           "$HOME",
                          "\\backslash", "-n",        "--",   NULL};
    assert_int_equal(hook_run(argv, NULL, 5000, &r, NULL), CP_OK);
    assert_int_equal(r.exit_status, 0);
    assert_string_equal(r.output, "two words\nit's\n\"double\"\n$(touch /tmp/x)\n`id`\na; exit 9\n"
                                  "*\n\n$HOME\n\\backslash\n-n\n--\n");
    hook_result_clear(&r);
}

static void test_environment(void **state)
{
    (void)state;
    struct hook_result r;
    struct cp_err err;
    assert_int_equal(setenv("CP_TEST_INHERITED", "from parent", 1), 0);
    assert_int_equal(setenv("CP_TEST_OVERRIDE", "old", 1), 0);
    const char *path = script("env",
                              "printf '%s|%s|%s\\n' \"$CP_TEST_INHERITED\" \"$CP_TEST_OVERRIDE\" "
                              "\"$CP_TEST_EXTRA\"\n"
                              "env | grep -c '^CP_TEST_OVERRIDE='\n",
                              0755);
    const char *argv[] = {path, NULL};
    const char *extra[] = {"CP_TEST_OVERRIDE=new", "CP_TEST_EXTRA=x y=z $(no)", NULL};
    assert_int_equal(hook_run(argv, extra, 5000, &r, &err), CP_OK);
    assert_int_equal(r.exit_status, 0);
    assert_string_equal(r.output, "from parent|new|x y=z $(no)\n1\n");
    hook_result_clear(&r);
    /* Our own environment is untouched. */
    assert_string_equal(getenv("CP_TEST_OVERRIDE"), "old");
    assert_null(getenv("CP_TEST_EXTRA"));

    /* Without extra_env, everything is inherited. */
    assert_int_equal(hook_run(argv, NULL, 5000, &r, &err), CP_OK);
    assert_string_equal(r.output, "from parent|old|\n1\n");
    hook_result_clear(&r);

    /* Of two same-named entries, the last wins. */
    const char *twice[] = {"CP_TEST_EXTRA=first", "CP_TEST_OVERRIDE=1", "CP_TEST_EXTRA=second",
                           NULL};
    assert_int_equal(hook_run(argv, twice, 5000, &r, &err), CP_OK);
    assert_string_equal(r.output, "from parent|1|second\n1\n");
    hook_result_clear(&r);

    /* A prefix of a name is a different name. */
    const char *prefix[] = {"CP_TEST_OVER=x", NULL};
    assert_int_equal(hook_run(argv, prefix, 5000, &r, &err), CP_OK);
    assert_string_equal(r.output, "from parent|old|\n1\n");
    hook_result_clear(&r);
    unsetenv("CP_TEST_INHERITED");
    unsetenv("CP_TEST_OVERRIDE");
}

static void test_timeout_kills_group(void **state)
{
    (void)state;
    struct hook_result r;
    const char *path = script("slow", "sleep 60 &\necho $!\nsleep 30\n", 0755);
    const char *argv[] = {path, NULL};
    double t0 = now_s();
    assert_int_equal(hook_run(argv, NULL, 300, &r, NULL), CP_OK);
    double took = now_s() - t0;
    /* SIGTERM to the group ends it at once: no wait for the SIGKILL 2 s later. */
    assert_true(took >= 0.25 && took < 1.8);
    assert_true(r.timed_out);
    assert_int_equal(r.exit_status, -1);
    assert_int_equal(r.term_signal, SIGTERM);
    assert_false(hook_succeeded(&r));
    long bg = first_line_number(r.output);
    hook_result_clear(&r);
    assert_true(process_gone(bg));
}

static void test_timeout_sigkill_when_sigterm_ignored(void **state)
{
    (void)state;
    struct hook_result r;
    /* The ignored SIGTERM is inherited by sleep too. */
    const char *path = script("stubborn", "trap '' TERM\nsleep 60 &\necho $!\nsleep 30\n", 0755);
    const char *argv[] = {path, NULL};
    double t0 = now_s();
    assert_int_equal(hook_run(argv, NULL, 500, &r, NULL), CP_OK);
    double took = now_s() - t0;
    assert_true(took >= 2.4 && took < 6.0); /* timeout + 2 s of grace */
    assert_true(r.timed_out);
    assert_int_equal(r.term_signal, SIGKILL);
    long bg = first_line_number(r.output);
    hook_result_clear(&r);
    assert_true(process_gone(bg));
}

static void test_timeout_after_closing_stdout(void **state)
{
    (void)state;
    struct hook_result r;
    /* Output ends at once; the hook and its child (not holding the pipe) go on. */
    const char *path = script("closer",
                              "sleep 30 >/dev/null 2>&1 &\necho $!\n"
                              "exec >/dev/null 2>&1\nsleep 30\n",
                              0755);
    const char *argv[] = {path, NULL};
    double t0 = now_s();
    assert_int_equal(hook_run(argv, NULL, 500, &r, NULL), CP_OK);
    assert_true(now_s() - t0 < 2.0);
    assert_true(r.timed_out);
    assert_int_equal(r.term_signal, SIGTERM);
    long bg = first_line_number(r.output);
    hook_result_clear(&r);
    assert_true(process_gone(bg));
}

static void test_leftover_child_holding_output(void **state)
{
    (void)state;
    struct hook_result r;
    /* The hook exits at once; its background sleep keeps the pipe open. */
    const char *path = script("leftover", "sleep 30 &\necho $!\nexit 0\n", 0755);
    const char *argv[] = {path, NULL};
    double t0 = now_s();
    assert_int_equal(hook_run(argv, NULL, 20000, &r, NULL), CP_OK);
    double took = now_s() - t0;
    assert_true(took >= 0.9 && took < 2.5); /* 1 s of grace, then SIGTERM */
    assert_false(r.timed_out);
    assert_int_equal(r.exit_status, 0);
    assert_true(hook_succeeded(&r));
    long bg = first_line_number(r.output);
    hook_result_clear(&r);
    assert_true(process_gone(bg));
}

static void test_huge_output(void **state)
{
    (void)state;
    struct hook_result r;
    const char *path = script("huge", "head -c 1048576 /dev/zero | tr '\\000' x\n", 0755);
    const char *argv[] = {path, NULL};
    assert_int_equal(hook_run(argv, NULL, 20000, &r, NULL), CP_OK);
    assert_int_equal(r.exit_status, 0);
    assert_int_equal(r.output_len, HOOK_OUTPUT_MAX);
    assert_int_equal(r.output_dropped, 1048576 - HOOK_OUTPUT_MAX);
    assert_int_equal(r.output[HOOK_OUTPUT_MAX], '\0');
    assert_int_equal(r.output[0], 'x');
    assert_int_equal(r.output[HOOK_OUTPUT_MAX - 1], 'x');
    hook_result_clear(&r);
}

static void test_not_found(void **state)
{
    (void)state;
    struct hook_result r;
    struct cp_err err;
    const char *argv[] = {"/nonexistent-certpilot/hook.sh", "deploy_challenge", NULL};
    assert_int_equal(hook_run(argv, NULL, 5000, &r, &err), CP_EIO);
    assert_int_equal(err.code, CP_EIO);
    assert_non_null(strstr(err.msg, "\"/nonexistent-certpilot/hook.sh\""));
    assert_non_null(strstr(err.msg, "not found"));
    assert_false(hook_succeeded(&r));
    hook_result_clear(&r);

    const char *bare[] = {"certpilot-no-such-hook", NULL};
    assert_int_equal(hook_run(bare, NULL, 5000, &r, &err), CP_EIO);
    assert_non_null(strstr(err.msg, "\"certpilot-no-such-hook\""));
    assert_non_null(strstr(err.msg, "not found in PATH"));
    hook_result_clear(&r);

    /* A script whose #! interpreter is missing. */
    const char *path = tmp_path("badinterp");
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("#!/nonexistent-certpilot/interp\n", f);
    fclose(f);
    assert_int_equal(chmod(path, 0755), 0);
    const char *interp[] = {path, NULL};
    assert_int_equal(hook_run(interp, NULL, 5000, &r, &err), CP_EIO);
    assert_non_null(strstr(err.msg, path));
    assert_non_null(strstr(err.msg, "interpreter"));
    hook_result_clear(&r);
}

static void test_not_executable(void **state)
{
    (void)state;
    struct hook_result r;
    struct cp_err err;
    const char *path = script("noexec", "exit 0\n", 0644);
    const char *argv[] = {path, NULL};
    assert_int_equal(hook_run(argv, NULL, 5000, &r, &err), CP_EIO);
    assert_non_null(strstr(err.msg, path));
    assert_non_null(strstr(err.msg, "not executable"));
    hook_result_clear(&r);

    const char *dir[] = {tmpdir, NULL};
    assert_int_equal(hook_run(dir, NULL, 5000, &r, &err), CP_EIO);
    assert_non_null(strstr(err.msg, tmpdir));
    hook_result_clear(&r);
}

static void test_path_search(void **state)
{
    (void)state;
    struct hook_result r;
    const char *f[] = {"false", NULL};
    assert_int_equal(hook_run(f, NULL, 5000, &r, NULL), CP_OK);
    assert_int_equal(r.exit_status, 1);
    hook_result_clear(&r);
    const char *t[] = {"true", NULL};
    assert_int_equal(hook_run(t, NULL, 0 /* default timeout */, &r, NULL), CP_OK);
    assert_int_equal(r.exit_status, 0);
    hook_result_clear(&r);
}

static void test_bad_input(void **state)
{
    (void)state;
    struct hook_result r;
    struct cp_err err;
    const char *path = script("input", "exit 0\n", 0755);
    const char *argv[] = {path, NULL};
    const char *empty[] = {"", NULL};
    const char *none[] = {NULL};

    assert_int_equal(hook_run(NULL, NULL, 5000, &r, &err), CP_EINVAL);
    hook_result_clear(&r);
    assert_int_equal(hook_run(none, NULL, 5000, &r, &err), CP_EINVAL);
    hook_result_clear(&r);
    assert_int_equal(hook_run(empty, NULL, 5000, &r, &err), CP_EINVAL);
    hook_result_clear(&r);
    assert_int_equal(hook_run(argv, NULL, 5000, NULL, &err), CP_EINVAL);

    const char *no_eq[] = {"JUSTANAME", NULL};
    assert_int_equal(hook_run(argv, no_eq, 5000, &r, &err), CP_EINVAL);
    assert_non_null(strstr(err.msg, "JUSTANAME"));
    hook_result_clear(&r);
    const char *no_name[] = {"=value", NULL};
    assert_int_equal(hook_run(argv, no_name, 5000, &r, &err), CP_EINVAL);
    hook_result_clear(&r);
}

/* ---------------------------------------------------------- hook_dehydrated */

static void test_dehydrated(void **state)
{
    (void)state;
    struct hook_result r;
    struct cp_err err;
    const char *path =
        script("dehydrated", "printf '%s\\n' \"$@\"\nprintf 'X=%s\\n' \"$CP_X\"\n", 0755);
    const char *extra[] = {"CP_X=set", NULL};
    const char *args[] = {"example.org", "tok en", "val$(ue)"};
    assert_int_equal(hook_dehydrated(path, "deploy_challenge", args, 3, extra, 5000, &r, &err),
                     CP_OK);
    assert_int_equal(r.exit_status, 0);
    assert_string_equal(r.output, "deploy_challenge\nexample.org\ntok en\nval$(ue)\nX=set\n");
    hook_result_clear(&r);

    assert_int_equal(hook_dehydrated(path, "startup_hook", NULL, 0, NULL, 5000, &r, &err), CP_OK);
    assert_string_equal(r.output, "startup_hook\nX=\n");
    hook_result_clear(&r);

    const char *exit_args[] = {"something failed"};
    assert_int_equal(hook_dehydrated(path, "exit_hook", exit_args, 1, NULL, 5000, &r, &err), CP_OK);
    assert_string_equal(r.output, "exit_hook\nsomething failed\nX=\n");
    hook_result_clear(&r);

    /* Bad input, and a result that is safe to clear after it. */
    assert_int_equal(hook_dehydrated(path, NULL, NULL, 0, NULL, 5000, &r, &err), CP_EINVAL);
    hook_result_clear(&r);
    assert_int_equal(hook_dehydrated(path, "deploy_challenge", NULL, 3, NULL, 5000, &r, &err),
                     CP_EINVAL);
    hook_result_clear(&r);
    const char *with_null[] = {"a", NULL, "c"};
    assert_int_equal(hook_dehydrated(path, "deploy_challenge", with_null, 3, NULL, 5000, &r, &err),
                     CP_EINVAL);
    hook_result_clear(&r);

    assert_int_equal(hook_dehydrated("/nonexistent-certpilot/hook", "startup_hook", NULL, 0, NULL,
                                     5000, &r, &err),
                     CP_EIO);
    assert_non_null(strstr(err.msg, "/nonexistent-certpilot/hook"));
    hook_result_clear(&r);
}

/* --------------------------------------------------- hook_check_executable */

static void test_check_executable(void **state)
{
    (void)state;
    struct cp_err err;
    const char *ok = script("check-ok", "exit 0\n", 0755);
    const char *noexec = script("check-noexec", "exit 0\n", 0644);

    assert_int_equal(hook_check_executable(ok, &err), CP_OK);
    assert_int_equal(hook_check_executable(noexec, &err), CP_EIO);
    assert_non_null(strstr(err.msg, noexec));
    assert_non_null(strstr(err.msg, "not executable"));
    assert_int_equal(hook_check_executable(tmpdir, &err), CP_EIO);
    assert_non_null(strstr(err.msg, "directory"));
    assert_int_equal(hook_check_executable("/nonexistent-certpilot/hook", &err), CP_EIO);
    assert_non_null(strstr(err.msg, "not found"));
    assert_int_equal(hook_check_executable("/dev/null", &err), CP_EIO);
    assert_non_null(strstr(err.msg, "regular file"));
    assert_int_equal(hook_check_executable("", &err), CP_EINVAL);
    assert_int_equal(hook_check_executable(NULL, NULL), CP_EINVAL);
    /* Without a '/', PATH is searched as hook_run() does. */
    assert_int_equal(hook_check_executable("sh", &err), CP_OK);
    assert_int_equal(hook_check_executable("certpilot-no-such-hook", &err), CP_EIO);
    assert_non_null(strstr(err.msg, "not found in PATH"));
}

/* ------------------------------------------------------------ example hooks */

/* hooks/examples/NAME in the source tree (CMake compiles with absolute paths). */
static bool example_path(const char *name, char *buf, size_t size)
{
    static const char self[] = "tests/unit/test_hooks_spawn.c";
    const char *file = __FILE__;
    size_t flen = strlen(file), slen = strlen(self);
    if (flen < slen || strcmp(file + flen - slen, self) != 0)
        return false;
    int n = snprintf(buf, size, "%.*shooks/examples/%s", (int)(flen - slen), file, name);
    return n > 0 && (size_t)n < size && access(buf, X_OK) == 0;
}

/* Runs an example hook with a fake `tool` first in PATH that records its calls. */
struct example_run {
    char hook[512];
    const char *marker;
    char path_env[256];
};

static void example_setup(struct example_run *ex, const char *hook_name, const char *tool)
{
    if (!example_path(hook_name, ex->hook, sizeof ex->hook))
        skip();
    char name[128], body[512];
    FMT(name, "%s-called", tool);
    ex->marker = tmp_path(name);
    (void)remove(ex->marker);
    FMT(body, "printf '%%s\\n' \"$*\" >> '%s'\n", ex->marker);
    char bindir_name[64];
    FMT(bindir_name, "bin-%s", tool);
    const char *bindir = tmp_path(bindir_name);
    assert_int_equal(mkdir(bindir, 0755), 0);
    FMT(name, "%s/%s", bindir_name, tool);
    (void)script(name, body, 0755);
    /* The fake tool is removed before its directory (paths are removed last first). */
    FMT(ex->path_env, "PATH=%s:/usr/bin:/bin", bindir);
}

static bool called(const struct example_run *ex)
{
    return access(ex->marker, F_OK) == 0;
}

static void test_example_challtestsrv_validation(void **state)
{
    (void)state;
    struct example_run ex;
    example_setup(&ex, "dns-challtestsrv.sh", "curl");
    struct hook_result r;
    struct cp_err err;
    const char *env[] = {"CHALLTESTSRV_URL=http://127.0.0.1:9", ex.path_env, NULL};
    const char *value = "LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0";

    const char *bad_domains[] = {
        "a;b.example", "a b.example", "x.example\"", "$(id).example", "a\nb.example", "", "../etc"};
    for (size_t i = 0; i < sizeof bad_domains / sizeof bad_domains[0]; i++) {
        const char *args[] = {bad_domains[i], "token", value};
        assert_int_equal(hook_dehydrated(ex.hook, "deploy_challenge", args, 3, env, 5000, &r, &err),
                         CP_OK);
        assert_int_not_equal(r.exit_status, 0);
        assert_non_null(strstr(r.output, "refusing"));
        assert_false(called(&ex));
        hook_result_clear(&r);
    }
    const char *bad_value[] = {"ok.example", "token", "abc\",\"x\":\"y"};
    assert_int_equal(hook_dehydrated(ex.hook, "clean_challenge", bad_value, 3, env, 5000, &r, &err),
                     CP_OK);
    assert_int_not_equal(r.exit_status, 0);
    assert_false(called(&ex));
    hook_result_clear(&r);

    /* A bad triple after a good one: nothing is sent at all. */
    const char *chain[] = {"ok.example", "t", value, "bad;name", "t", value};
    assert_int_equal(hook_dehydrated(ex.hook, "deploy_challenge", chain, 6, env, 5000, &r, &err),
                     CP_OK);
    assert_int_not_equal(r.exit_status, 0);
    assert_false(called(&ex));
    hook_result_clear(&r);

    /* Other commands: exit 0, nothing done. */
    const char *cert[] = {"ok.example", "k", "c", "f", "ch", "1700000000"};
    assert_int_equal(hook_dehydrated(ex.hook, "deploy_cert", cert, 6, env, 5000, &r, &err), CP_OK);
    assert_int_equal(r.exit_status, 0);
    assert_false(called(&ex));
    hook_result_clear(&r);

    /* Positive control: a good name reaches (the fake) curl. */
    const char *good[] = {"*.ok.example", "token", value};
    assert_int_equal(hook_dehydrated(ex.hook, "deploy_challenge", good, 3, env, 5000, &r, &err),
                     CP_OK);
    assert_int_equal(r.exit_status, 0);
    assert_true(called(&ex));
    hook_result_clear(&r);
}

static void test_example_nsupdate_validation(void **state)
{
    (void)state;
    struct example_run ex;
    example_setup(&ex, "dns-nsupdate.sh", "nsupdate");
    const char *key = script("tsig.key", "", 0600);
    char key_env[320];
    FMT(key_env, "NSUPDATE_KEY=%s", key);
    struct hook_result r;
    struct cp_err err;
    const char *env[] = {"NSUPDATE_SERVER=127.0.0.1", key_env, ex.path_env, NULL};
    const char *value = "LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0";

    const char *bad_domains[] = {"a;b.example", "a b.example",
                                 "x.example. 60 IN TXT \"y\"\nupdate add evil", ""};
    for (size_t i = 0; i < sizeof bad_domains / sizeof bad_domains[0]; i++) {
        const char *args[] = {bad_domains[i], "token", value};
        assert_int_equal(hook_dehydrated(ex.hook, "deploy_challenge", args, 3, env, 5000, &r, &err),
                         CP_OK);
        assert_int_not_equal(r.exit_status, 0);
        assert_false(called(&ex));
        hook_result_clear(&r);
    }
    const char *bad_value[] = {"ok.example", "token", "v\"\nsend"};
    assert_int_equal(
        hook_dehydrated(ex.hook, "deploy_challenge", bad_value, 3, env, 5000, &r, &err), CP_OK);
    assert_int_not_equal(r.exit_status, 0);
    assert_false(called(&ex));
    hook_result_clear(&r);

    const char *bad_server_env[] = {"NSUPDATE_SERVER=127.0.0.1\nupdate add x", key_env, ex.path_env,
                                    NULL};
    const char *good[] = {"ok.example", "token", value};
    assert_int_equal(
        hook_dehydrated(ex.hook, "deploy_challenge", good, 3, bad_server_env, 5000, &r, &err),
        CP_OK);
    assert_int_not_equal(r.exit_status, 0);
    assert_false(called(&ex));
    hook_result_clear(&r);

    assert_int_equal(hook_dehydrated(ex.hook, "deploy_challenge", good, 3, env, 5000, &r, &err),
                     CP_OK);
    assert_int_equal(r.exit_status, 0);
    assert_true(called(&ex));
    hook_result_clear(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_exit_status),
        cmocka_unit_test(test_killed_by_signal),
        cmocka_unit_test(test_output_both_streams),
        cmocka_unit_test(test_stdin_is_dev_null),
        cmocka_unit_test(test_arguments_verbatim),
        cmocka_unit_test(test_environment),
        cmocka_unit_test(test_timeout_kills_group),
        cmocka_unit_test(test_timeout_sigkill_when_sigterm_ignored),
        cmocka_unit_test(test_timeout_after_closing_stdout),
        cmocka_unit_test(test_leftover_child_holding_output),
        cmocka_unit_test(test_huge_output),
        cmocka_unit_test(test_not_found),
        cmocka_unit_test(test_not_executable),
        cmocka_unit_test(test_path_search),
        cmocka_unit_test(test_bad_input),
        cmocka_unit_test(test_dehydrated),
        cmocka_unit_test(test_check_executable),
        cmocka_unit_test(test_example_challtestsrv_validation),
        cmocka_unit_test(test_example_nsupdate_validation),
    };
    return cmocka_run_group_tests(tests, setup_dir, remove_dir);
}
