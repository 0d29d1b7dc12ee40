/* tests/unit/test_flow_hooks.c - flow/hooks.c: a "sh:" hook is the argv
 * {"/bin/sh", "-c", TEXT} with TEXT as written and the data in the
 * environment, an empty one is refused before anything runs, a hook without
 * the prefix is words (no shell); a hook directory runs its executables in
 * byte order, skips hidden, backup and not-executable files, goes on after a
 * failing one and reports it. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "flow/flow.h"
#include "tests/unit/fixture.h"

static char tmp[256], out[300];
static char said[8192]; /* every line logged, "L:line\n" with L the level */

static void collect(void *ctx, enum flow_level level, const char *msg)
{
    (void)ctx;
    size_t len = strlen(said);
    snprintf(said + len, sizeof said - len, "%d:%s\n", (int)level, msg);
}

static const struct flow_log LOG = {collect, NULL};

static int setup(void **state)
{
    (void)state;
    snprintf(tmp, sizeof tmp, "/tmp/cp-flow-hooks-XXXXXX");
    assert_non_null(mkdtemp(tmp));
    snprintf(out, sizeof out, "%s/out", tmp);
    said[0] = '\0';
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    return fixture_remove_tree(tmp);
}

/* The text of `path` (at most 4 KiB), "" when missing. */
static const char *slurp(const char *path)
{
    static char buf[4096];
    buf[0] = '\0';
    FILE *f = fopen(path, "r");
    if (f != NULL) {
        size_t n = fread(buf, 1, sizeof buf - 1, f);
        buf[n] = '\0';
        fclose(f);
    }
    return buf;
}

static void write_file(const char *path, const char *text, mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    assert_int_equal(close(fd), 0);
    assert_int_equal(chmod(path, mode), 0);
}

static void shell_hook_sees_data_in_env_only(void **state)
{
    (void)state;
    char cmd[600], env_out[320];
    snprintf(env_out, sizeof env_out, "OUT=%s", out);
    /* The command substitution and the variable are the shell's, run on the
     * environment's values; "&&" is an operator. */
    snprintf(cmd, sizeof cmd,
             "sh:printf '%%s|%%s\\n' \"$RENEWED_DOMAINS\" \"$(printf %%s \"$X\")\" >\"$OUT\" && "
             "echo done >>\"$OUT\"");
    const char *env[] = {"RENEWED_DOMAINS=a.test $(touch /nonexistent-cp) b.test", "X=$HOME",
                         env_out, NULL};
    assert_true(flow_hook_command(&LOG, "deploy-hook", cmd, env));
    assert_string_equal(slurp(out), "a.test $(touch /nonexistent-cp) b.test|$HOME\ndone\n");
}

static void shell_hook_status_is_the_shells(void **state)
{
    (void)state;
    assert_false(flow_hook_command(&LOG, "post-hook", "sh:exit 3", NULL));
    assert_non_null(strstr(said, "failed with exit status 3"));
    assert_true(flow_hook_command(&LOG, "post-hook", "sh:true", NULL));
}

static void empty_shell_hook_is_refused(void **state)
{
    (void)state;
    assert_false(flow_hook_command(&LOG, "pre-hook", "sh:", NULL));
    assert_non_null(strstr(said, "write a shell command line after \"sh:\""));
    said[0] = '\0';
    assert_false(flow_hook_command(&LOG, "pre-hook", "sh: \t ", NULL));
    assert_non_null(strstr(said, "after \"sh:\""));
    assert_null(strstr(said, "running"));
}

static void check_before_running(void **state)
{
    (void)state;
    struct cp_err err = {0};
    assert_int_equal(flow_hook_command_check("sh:", &err), CP_EINVAL);
    assert_non_null(strstr(err.msg, "after \"sh:\""));
    assert_int_equal(flow_hook_command_check("sh:\t", &err), CP_EINVAL);
    assert_int_equal(flow_hook_command_check("  ", &err), CP_EINVAL);
    assert_non_null(strstr(err.msg, "a program and its arguments"));
    assert_int_equal(flow_hook_command_check("sh:true", &err), CP_OK);
    assert_int_equal(flow_hook_command_check("/bin/true a b", &err), CP_OK);
}

static void words_are_not_a_shell(void **state)
{
    (void)state;
    char cmd[600];
    /* /bin/echo gets "&&" and "$X" as arguments: nothing is expanded. */
    snprintf(cmd, sizeof cmd, "/bin/echo a && $X");
    assert_true(flow_hook_command(&LOG, "deploy-hook", cmd, NULL));
    assert_non_null(strstr(said, "deploy-hook: a && $X\n"));
    /* A "sh:" that is not at the start is a program name like any other. */
    said[0] = '\0';
    assert_false(flow_hook_command(&LOG, "deploy-hook", " sh:true", NULL));
}

static void directory_runs_in_byte_order(void **state)
{
    (void)state;
    char dir[400], path[500], script[700], hooks[300];
    snprintf(hooks, sizeof hooks, "%s/hooks.d", tmp);
    assert_int_equal(mkdir(hooks, 0700), 0);
    snprintf(dir, sizeof dir, "%s/deploy", hooks);
    assert_int_equal(mkdir(dir, 0700), 0);
    static const char *const names[] = {"b", "B", "a", "10", "9", "_z"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        snprintf(script, sizeof script, "#!/bin/sh\necho \"%s $#$RENEWED_LINEAGE\" >>%s\n",
                 names[i], out);
        write_file(path, script, 0700);
    }
    /* skipped: not executable, hidden, backup, a directory */
    static const char *const skipped[] = {"c-not-executable", ".hidden", "d~"};
    for (size_t i = 0; i < 3; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, skipped[i]);
        snprintf(script, sizeof script, "#!/bin/sh\necho %s >>%s\n", skipped[i], out);
        write_file(path, script, i == 0 ? 0600 : 0700);
    }
    snprintf(path, sizeof path, "%s/e-dir", dir);
    assert_int_equal(mkdir(path, 0700), 0);
    const char *env[] = {"RENEWED_LINEAGE=/x", NULL};
    assert_true(flow_hook_dir(&LOG, hooks, FLOW_HOOK_DEPLOY, env));
    assert_string_equal(slurp(out), "10 0/x\n9 0/x\nB 0/x\n_z 0/x\na 0/x\nb 0/x\n");
    assert_non_null(strstr(said, "c-not-executable: skipped"));
    assert_non_null(strstr(said, "/.hidden: skipped"));
    assert_non_null(strstr(said, "/d~: skipped"));
    /* No pre directory: nothing runs, nothing fails. */
    assert_true(flow_hook_dir(&LOG, hooks, FLOW_HOOK_PRE, NULL));
    assert_true(flow_hook_dir(&LOG, NULL, FLOW_HOOK_PRE, NULL));
}

static void directory_goes_on_after_a_failure(void **state)
{
    (void)state;
    char dir[400], path[500], script[700];
    snprintf(dir, sizeof dir, "%s/post", tmp);
    assert_int_equal(mkdir(dir, 0700), 0);
    snprintf(path, sizeof path, "%s/1-fails", dir);
    write_file(path, "#!/bin/sh\nexit 2\n", 0700);
    snprintf(path, sizeof path, "%s/2-runs", dir);
    snprintf(script, sizeof script, "#!/bin/sh\necho ran >>%s\n", out);
    write_file(path, script, 0700);
    assert_false(flow_hook_dir(&LOG, tmp, FLOW_HOOK_POST, NULL));
    assert_string_equal(slurp(out), "ran\n");
    assert_non_null(strstr(said, "1-fails failed with exit status 2"));
}

/* A hook (or its directory) that group or others may change is refused,
 * and then none of the directory runs. */
static void directory_refuses_what_others_can_change(void **state)
{
    (void)state;
    char dir[400], path[500], script[700];
    snprintf(dir, sizeof dir, "%s/pre", tmp);
    assert_int_equal(mkdir(dir, 0700), 0);
    snprintf(path, sizeof path, "%s/1-ok", dir);
    snprintf(script, sizeof script, "#!/bin/sh\necho ok >>%s\n", out);
    write_file(path, script, 0700);
    snprintf(path, sizeof path, "%s/2-open", dir);
    write_file(path, script, 0777);
    assert_false(flow_hook_dir(&LOG, tmp, FLOW_HOOK_PRE, NULL));
    assert_string_equal(slurp(out), "");
    assert_non_null(strstr(said, "refusing the hook"));
    assert_non_null(strstr(said, "2-open"));
    /* Closed again: both run.  A directory open to others: refused. */
    assert_int_equal(chmod(path, 0755), 0);
    assert_true(flow_hook_dir(&LOG, tmp, FLOW_HOOK_PRE, NULL));
    assert_string_equal(slurp(out), "ok\nok\n");
    assert_int_equal(chmod(dir, 0777), 0);
    assert_false(flow_hook_dir(&LOG, tmp, FLOW_HOOK_PRE, NULL));
    assert_string_equal(slurp(out), "ok\nok\n");
    assert_int_equal(chmod(dir, 0700), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(shell_hook_sees_data_in_env_only, setup, teardown),
        cmocka_unit_test_setup_teardown(shell_hook_status_is_the_shells, setup, teardown),
        cmocka_unit_test_setup_teardown(empty_shell_hook_is_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(check_before_running, setup, teardown),
        cmocka_unit_test_setup_teardown(words_are_not_a_shell, setup, teardown),
        cmocka_unit_test_setup_teardown(directory_runs_in_byte_order, setup, teardown),
        cmocka_unit_test_setup_teardown(directory_goes_on_after_a_failure, setup, teardown),
        cmocka_unit_test_setup_teardown(directory_refuses_what_others_can_change, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
