/*
 * cli/cmd_systemd.c - `certpilot systemd install` and `certpilot systemd
 * cron`: unattended renewal, set up for this configuration.
 *
 * install writes the units of dist/ (built in through the generated
 * cli/units.h; ExecStart= names this binary) and a drop-in with a
 * ReadWritePaths= line for each directory the configuration writes: the
 * unit's ProtectSystem=strict makes every other directory read-only, and a
 * renewal would fail writing its webroot.  cron prints, or installs, a cron
 * line for hosts without systemd.  Neither runs systemctl or touches a
 * crontab: they say what to run.  A file certpilot did not write (no mark on
 * its first line) is not replaced without --force.
 */
#include "cli/cli.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/units.h"
#include "common/file.h"

#define UNIT_SERVICE      "certpilot-renew.service"
#define UNIT_TIMER        "certpilot-renew.timer"
#define DROPIN_DIR        "certpilot-renew.service.d"
#define DROPIN_FILE       "certpilot-paths.conf"
#define DEFAULT_UNIT_DIR  "/etc/systemd/system"
#define DEFAULT_CRON_FILE "/etc/cron.d/certpilot"
#define EXISTING_MAX      (256 * 1024)         /* bigger than any unit or cron file */
#define ROOT_STATE_DIR    "/var/lib/certpilot" /* store_default_dir() for root */

/* The first line of each file written here: how a later run knows its own. */
#define MARK_INSTALL "# Written by `certpilot systemd install`"
#define MARK_CRON    "# Written by `certpilot systemd cron --install`"

static void usage(FILE *f)
{
    fputs("usage: certpilot systemd install [--unit-dir DIR] [--force] [--dry-run]\n"
          "       certpilot systemd cron [--install [--cron-file FILE] [--force] [--dry-run]]\n"
          "         [--config FILE] [--state-dir DIR] [--quiet] [--json] [-v]\n"
          "install: writes certpilot-renew.service and certpilot-renew.timer (ExecStart=\n"
          "this binary) and the drop-in certpilot-renew.service.d/certpilot-paths.conf:\n"
          "ReadWritePaths= for the state directory and every lineage's webroots, which\n"
          "the unit's ProtectSystem=strict would make read-only.  Run it again after\n"
          "adding a certificate with a new webroot.  Then run the systemctl commands it\n"
          "prints (it runs none itself).\n"
          "cron: prints a line for /etc/cron.d running 'certpilot renew --quiet' every 6\n"
          "hours, at a minute and hours chosen from this host's name (the same each time).\n"
          "  --unit-dir DIR   where the units go (default " DEFAULT_UNIT_DIR ")\n"
          "  --install        write the cron line to " DEFAULT_CRON_FILE "\n"
          "  --cron-file FILE ... or to FILE\n"
          "  --force          replace a file certpilot did not write\n"
          "  --dry-run        print what would be written; write nothing\n"
          "  --config FILE    the defaults file (default " CLI_DEFAULT_CONFIG ", if it exists):\n"
          "                   its state-dir and webroots count too; renew is given it\n"
          "  --state-dir DIR  the state directory; renew is given it\n"
          "Exit: 0 written or unchanged; 64 bad options, or a file certpilot did not\n"
          "write is in the way (--force); 74 a file could not be read or written.\n",
          f);
}

/* ------------------------------------------------------------ growing text */

struct text {
    char *s;
    size_t len, cap;
    bool failed; /* out of memory */
};

static void text_add(struct text *t, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

static void text_add(struct text *t, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (t->failed || n < 0) {
        t->failed = true;
        return;
    }
    if (t->len + (size_t)n + 1 > t->cap) {
        size_t cap = (t->len + (size_t)n + 1) * 2;
        char *s = realloc(t->s, cap);
        if (s == NULL) {
            t->failed = true;
            return;
        }
        t->s = s;
        t->cap = cap;
    }
    va_start(ap, fmt);
    vsnprintf(t->s + t->len, t->cap - t->len, fmt, ap);
    va_end(ap);
    t->len += (size_t)n;
}

static void text_clear(struct text *t)
{
    free(t->s);
    memset(t, 0, sizeof *t);
}

/* ----------------------------------------------------------------- options */

struct sd {
    struct cli_common common;
    struct cli_conf defaults;
    bool cron;
    const char *unit_dir, *cron_file, *config;
    bool state_given, dry_run, force, install;
    char exe[PATH_MAX], config_abs[PATH_MAX], state_abs[PATH_MAX];
};

static int parse_args(struct sd *sd, int argc, char **argv)
{
    static const struct option install_opts[] = {
        {"unit-dir", required_argument, NULL, 'u'},
        {"force", no_argument, NULL, 'f'},
        {"dry-run", no_argument, NULL, 'n'},
        {"config", required_argument, NULL, 2010},
        {"state-dir", required_argument, NULL, 1003},
        {"help", no_argument, NULL, 'h'},
        CLI_OUTPUT_LONGOPTS,
        {NULL, 0, NULL, 0},
    };
    static const struct option cron_opts[] = {
        {"install", no_argument, NULL, 'i'},
        {"cron-file", required_argument, NULL, 'c'},
        {"force", no_argument, NULL, 'f'},
        {"dry-run", no_argument, NULL, 'n'},
        {"config", required_argument, NULL, 2010},
        {"state-dir", required_argument, NULL, 1003},
        {"help", no_argument, NULL, 'h'},
        CLI_OUTPUT_LONGOPTS,
        {NULL, 0, NULL, 0},
    };
    const struct option *opts = sd->cron ? cron_opts : install_opts;
    const char *command = sd->cron ? "systemd cron" : "systemd install";
    int ch;
    if (cli_options_exact(argc, argv, ":hqv", opts, command) != 0)
        return CLI_EXIT_USAGE;
    optind = 1;
    opterr = 0;
    while ((ch = getopt_long(argc, argv, ":hqv", opts, NULL)) != -1) {
        switch (ch) {
        case 'u': sd->unit_dir = optarg; break;
        case 'c': sd->cron_file = optarg; break;
        case 'i': sd->install = true; break;
        case 'f': sd->force = true; break;
        case 'n': sd->dry_run = true; break;
        case 2010: sd->config = optarg; break; /* also read by cli_defaults_load() */
        case 'h': usage(stdout); return -1;
        case 1003:
            sd->state_given = true;
            sd->common.state_dir = optarg;
            break;
        default:
            if (ch != ':' && ch != '?' && cli_common_option(&sd->common, ch, optarg))
                break;
            cli_error("unknown option or missing value: \"%s\" (see certpilot %s --help)",
                      argv[optind - 1], command);
            return CLI_EXIT_USAGE;
        }
    }
    if (optind < argc) {
        cli_error("unexpected argument \"%s\" (see certpilot %s --help)", argv[optind], command);
        return CLI_EXIT_USAGE;
    }
    if (sd->cron && !sd->install && (sd->cron_file || sd->force || sd->dry_run)) {
        cli_error("--cron-file, --force and --dry-run go with --install (without it, the "
                  "line is only printed)");
        return CLI_EXIT_USAGE;
    }
    if (sd->unit_dir != NULL && sd->unit_dir[0] != '/') {
        cli_error("--unit-dir \"%s\": give an absolute path", sd->unit_dir);
        return CLI_EXIT_USAGE;
    }
    return 0;
}

/* ------------------------------------------------------------------ paths */

/* `path` made absolute against the current directory (not resolved: the
 * names the user gave are the names written), trailing slashes dropped. */
static bool absolute(const char *path, char *out, size_t size)
{
    char cwd[PATH_MAX];
    int n;
    if (path[0] == '/')
        n = snprintf(out, size, "%s", path);
    else if (getcwd(cwd, sizeof cwd) != NULL)
        n = snprintf(out, size, "%s/%s", strcmp(cwd, "/") == 0 ? "" : cwd, path);
    else
        return false;
    if (n < 0 || (size_t)n >= size)
        return false;
    while (n > 1 && out[n - 1] == '/')
        out[--n] = '\0';
    return true;
}

/* Newlines or other control characters cannot be written into a unit or a
 * crontab line safely. */
static bool printable(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return false;
    return true;
}

struct paths {
    char **p;
    size_t n, cap;
};

static int paths_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Add `dir` (from `where`, for messages) once; false when out of memory. */
static bool paths_add(struct paths *ps, const char *dir, const char *where)
{
    char abs[PATH_MAX];
    if (!absolute(dir, abs, sizeof abs) || !printable(abs)) {
        cli_error("warning: %s: the directory \"%.200s\" cannot be written into a unit; left "
                  "out of the drop-in",
                  where, dir);
        return true;
    }
    for (size_t i = 0; i < ps->n; i++)
        if (strcmp(ps->p[i], abs) == 0)
            return true;
    if (ps->n == ps->cap) {
        size_t cap = ps->cap ? ps->cap * 2 : 8;
        char **p = realloc(ps->p, cap * sizeof *p);
        if (p == NULL)
            return false;
        ps->p = p;
        ps->cap = cap;
    }
    if ((ps->p[ps->n] = strdup(abs)) == NULL)
        return false;
    ps->n++;
    return true;
}

static void paths_clear(struct paths *ps)
{
    for (size_t i = 0; i < ps->n; i++)
        free(ps->p[i]);
    free(ps->p);
    memset(ps, 0, sizeof *ps);
}

/* The directories a settings file names for writing: webroot = DIR and
 * webroot-map = NAME:DIR. */
static bool conf_paths(struct paths *ps, const struct cli_conf *c)
{
    for (size_t i = 0; i < c->n; i++) {
        const char *k = c->e[i].key, *v = c->e[i].value;
        char where[4200];
        snprintf(where, sizeof where, "%s:%u", c->path, c->e[i].line);
        if (strcmp(k, "webroot-map") == 0 && strchr(v, ':') != NULL)
            v = strchr(v, ':') + 1;
        else if (strcmp(k, "webroot") != 0 && strcmp(k, "webroot-path") != 0)
            continue;
        if (*v != '\0' && !paths_add(ps, v, where))
            return false;
    }
    return true;
}

/* The state directory, then the defaults' and every lineage's webroots
 * (sorted).  0 or the exit status, said. */
static int collect_paths(struct sd *sd, struct paths *ps)
{
    char **names = NULL;
    size_t n = 0;
    struct cp_err err = {0};
    if (!paths_add(ps, sd->state_abs, "the state directory") || !conf_paths(ps, &sd->defaults))
        goto oom;
    if (store_lineage_names(sd->common.store, &names, &n, &err) != CP_OK)
        return cli_store_fail(&err);
    for (size_t i = 0; i < n; i++) {
        struct cli_conf conf;
        cp_err_clear(&err);
        if (cli_conf_load_lineage(sd->common.store, names[i], &conf, &err) != CP_OK) {
            /* One unreadable lineage must not keep the others' webroots out. */
            cli_error("warning: %s: %s; its webroots are not in the drop-in", names[i], err.msg);
            cli_conf_clear(&conf);
            continue;
        }
        bool ok = conf_paths(ps, &conf);
        cli_conf_clear(&conf);
        if (!ok) {
            store_names_free(names, n);
            goto oom;
        }
    }
    store_names_free(names, n);
    if (ps->n > 2)
        qsort(ps->p + 1, ps->n - 1, sizeof *ps->p, paths_cmp);
    return 0;
oom:
    cli_error("out of memory");
    return CLI_EXIT_SOFTWARE;
}

static bool under(const char *path, const char *top)
{
    size_t n = strlen(top);
    return strncmp(path, top, n) == 0 && (path[n] == '\0' || path[n] == '/');
}

/* ProtectHome=yes hides these whole; read-only lets ReadWritePaths= open one. */
static bool in_home(const char *path)
{
    return under(path, "/home") || under(path, "/root") || under(path, "/run/user");
}

/* ------------------------------------------------------------- file texts */

/* One word of a unit setting: '%' is a specifier and, in ExecStart=, '$' a
 * variable; a word with blanks, quotes or backslashes is double-quoted. */
static void unit_word(struct text *t, const char *word, bool exec)
{
    bool quote = strpbrk(word, " \t\"'\\") != NULL;
    text_add(t, "%s", quote ? "\"" : "");
    for (const char *p = word; *p; p++) {
        if (*p == '%')
            text_add(t, "%%%%");
        else if (exec && *p == '$')
            text_add(t, "$$");
        else if (quote && (*p == '"' || *p == '\\'))
            text_add(t, "\\%c", *p);
        else
            text_add(t, "%c", *p);
    }
    text_add(t, "%s", quote ? "\"" : "");
}

/* renew's command line: this binary, the --config this run was given, and
 * --state-dir when renew, as root (User=root), would not find the same one:
 * given here, or this user's default (a state-dir from the defaults file is
 * found by renew). */
static size_t renew_argv(const struct sd *sd, const char *argv[8])
{
    size_t n = 0;
    argv[n++] = sd->exe;
    argv[n++] = "renew";
    argv[n++] = "--quiet";
    if (sd->config != NULL) {
        argv[n++] = "--config";
        argv[n++] = sd->config_abs;
    }
    if (sd->state_given || (cli_conf_get(&sd->defaults, "state-dir") == NULL &&
                            strcmp(sd->state_abs, ROOT_STATE_DIR) != 0)) {
        argv[n++] = "--state-dir";
        argv[n++] = sd->state_abs;
    }
    return n;
}

static bool service_text(const struct sd *sd, struct text *t)
{
    const char *argv[8];
    size_t argc = renew_argv(sd, argv), execs = 0;
    text_add(t, "%s from dist/" UNIT_SERVICE ".in;\n", MARK_INSTALL);
    text_add(t, "# running it again rewrites this file.  Change settings in a drop-in.\n");
    for (size_t i = 0; cli_unit_service[i] != NULL; i++) {
        const char *line = cli_unit_service[i];
        if (cli_unit_service[i + 1] == NULL && line[0] == '\0')
            break; /* after the file's last newline */
        if (strncmp(line, "ExecStart=", 10) != 0) {
            text_add(t, "%s\n", line);
            continue;
        }
        text_add(t, "ExecStart=");
        for (size_t k = 0; k < argc; k++) {
            text_add(t, "%s", k ? " " : "");
            unit_word(t, argv[k], true);
        }
        text_add(t, "\n");
        execs++;
    }
    return execs == 1;
}

static void timer_text(struct text *t)
{
    text_add(t, "%s from dist/" UNIT_TIMER ";\n", MARK_INSTALL);
    text_add(t, "# running it again rewrites this file.  Change settings in a drop-in.\n");
    for (size_t i = 0; cli_unit_timer[i] != NULL; i++)
        if (cli_unit_timer[i + 1] != NULL || cli_unit_timer[i][0] != '\0')
            text_add(t, "%s\n", cli_unit_timer[i]);
}

static void dropin_text(const struct paths *ps, struct text *t)
{
    bool home = false;
    text_add(t, "%s from the state directory\n", MARK_INSTALL);
    text_add(t, "# and the certificates' settings; running it again rewrites this file.  Your\n"
                "# own settings go in another file of this directory.\n"
                "# The directories certpilot writes, writable in spite of the unit's\n"
                "# ProtectSystem=strict (\"-\": missing when this was written; skipped, not an\n"
                "# error, while it is).\n"
                "[Service]\n");
    for (size_t i = 0; i < ps->n; i++) {
        struct stat st;
        char word[PATH_MAX + 2];
        snprintf(word, sizeof word, "%s%s", stat(ps->p[i], &st) == 0 ? "" : "-", ps->p[i]);
        text_add(t, "ReadWritePaths=");
        unit_word(t, word, false);
        text_add(t, "\n");
        home = home || in_home(ps->p[i]);
    }
    if (home)
        text_add(t, "# One of them is under /home, /root or /run/user, which the unit hides\n"
                    "# (ProtectHome=yes): visible, read-only but for the lines above.\n"
                    "ProtectHome=read-only\n");
}

/* --------------------------------------------------------- writing files */

struct out_file {
    char path[PATH_MAX + 64];
    struct text body;
    const char *action; /* "created", "updated", "unchanged", "replaced", "refused" */
};

/* What writing f would do, from what is there now; 0 or the exit status. */
static int plan_file(const struct sd *sd, struct out_file *f, const char *mark)
{
    struct stat st;
    char *old = NULL;
    size_t len = 0;
    struct cp_err err = {0};
    if (lstat(f->path, &st) != 0) {
        if (errno != ENOENT) {
            cli_error("cannot examine %s: %s", f->path, strerror(errno));
            return CLI_EXIT_IO;
        }
        f->action = "created";
        return 0;
    }
    bool ours = false;
    if (S_ISREG(st.st_mode)) {
        if (cp_file_read(f->path, EXISTING_MAX, &old, &len, &err) != CP_OK) {
            cli_error("%s", err.msg);
            return CLI_EXIT_IO;
        }
        if (len == f->body.len && memcmp(old, f->body.s, len) == 0) {
            free(old);
            f->action = "unchanged";
            return 0;
        }
        ours = strncmp(old, mark, strlen(mark)) == 0;
        free(old);
    }
    f->action = ours ? "updated" : sd->force ? "replaced" : "refused";
    return 0;
}

static int write_file(const struct out_file *f)
{
    struct cp_err err = {0};
    if (cp_file_write_atomic(f->path, f->body.s, f->body.len, 0644, &err) != CP_OK) {
        cli_error("%s", err.msg);
        return CLI_EXIT_IO;
    }
    return 0;
}

/* Say the refused ones; true when there is one. */
static bool any_refused(const struct out_file *files, size_t n, const char *command)
{
    bool refused = false;
    for (size_t i = 0; i < n; i++)
        if (strcmp(files[i].action, "refused") == 0) {
            cli_error("%s exists and was not written by certpilot: not replacing it (compare "
                      "it with 'certpilot %s --dry-run'; --force replaces it)",
                      files[i].path, command);
            refused = true;
        }
    return refused;
}

/* "written" when a file was, "unchanged" when none needed to be. */
static const char *files_outcome(const struct out_file *files, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(files[i].action, "unchanged") != 0)
            return "written";
    return "unchanged";
}

static json_t *files_json(const struct out_file *files, size_t n, bool content)
{
    json_t *a = json_array();
    for (size_t i = 0; a != NULL && i < n; i++)
        json_array_append_new(a, json_pack("{s:s, s:s, s:s*}", "path", files[i].path, "action",
                                           files[i].action, "content",
                                           content ? files[i].body.s : NULL));
    return a;
}

static void files_text(const struct out_file *files, size_t n, bool dry_run)
{
    for (size_t i = 0; i < n; i++) {
        const char *a = files[i].action;
        if (!dry_run)
            printf("  %-9s %s\n", a, files[i].path);
        else if (strcmp(a, "unchanged") == 0)
            printf("--- %s (unchanged)\n%s", files[i].path, files[i].body.s);
        else
            printf("--- %s (would be %s)\n%s", files[i].path, a, files[i].body.s);
    }
}

/* ---------------------------------------------------------------- install */

static const char *const next_steps[] = {"systemctl daemon-reload",
                                         "systemctl enable --now " UNIT_TIMER};

static int install(struct sd *sd, json_t *result)
{
    struct out_file files[3] = {0};
    struct paths ps = {0};
    char dropin_dir[PATH_MAX + 32];
    const char *dir = sd->unit_dir ? sd->unit_dir : DEFAULT_UNIT_DIR;
    int status = collect_paths(sd, &ps);
    if (status != 0)
        goto out;
    snprintf(dropin_dir, sizeof dropin_dir, "%s/" DROPIN_DIR, dir);
    snprintf(files[0].path, sizeof files[0].path, "%s/" UNIT_SERVICE, dir);
    snprintf(files[1].path, sizeof files[1].path, "%s/" UNIT_TIMER, dir);
    snprintf(files[2].path, sizeof files[2].path, "%s/" DROPIN_FILE, dropin_dir);
    bool one_exec = service_text(sd, &files[0].body);
    timer_text(&files[1].body);
    dropin_text(&ps, &files[2].body);
    for (size_t i = 0; i < 3; i++)
        if (files[i].body.failed) {
            cli_error("out of memory");
            status = CLI_EXIT_SOFTWARE;
            goto out;
        }
    if (!one_exec) { /* dist/certpilot-renew.service.in lost its ExecStart= */
        cli_error("the built-in unit has no single ExecStart= line: a bug");
        status = CLI_EXIT_SOFTWARE;
        goto out;
    }
    for (size_t i = 0; i < 3 && status == 0; i++)
        status = plan_file(sd, &files[i], MARK_INSTALL);
    if (status != 0)
        goto out;

    json_t *rw = json_array();
    for (size_t i = 0; rw != NULL && i < ps.n; i++)
        json_array_append_new(rw, json_string(ps.p[i]));
    bool home = false;
    for (size_t i = 0; i < ps.n; i++)
        home = home || in_home(ps.p[i]);
    json_object_set_new(result, "unit_dir", json_string(dir));
    json_object_set_new(result, "read_write_paths", rw ? rw : json_array());
    json_object_set_new(result, "protect_home", home ? json_string("read-only") : json_null());

    if (any_refused(files, 3, "systemd install")) {
        status = CLI_EXIT_USAGE;
        json_object_set_new(result, "outcome", json_string("refused"));
        json_object_set_new(result, "files", files_json(files, 3, false));
        goto out;
    }
    if (sd->dry_run) {
        json_object_set_new(result, "outcome", json_string("dry_run"));
        json_object_set_new(result, "files", files_json(files, 3, true));
        if (!sd->common.json)
            files_text(files, 3, true);
        if (!sd->common.json && !sd->common.quiet)
            printf("Nothing was written (--dry-run).\n");
        goto out;
    }
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        cli_error("%s is not a directory: is systemd installed here? (--unit-dir DIR writes "
                  "the units elsewhere; 'certpilot systemd cron' for hosts without systemd)",
                  dir);
        status = CLI_EXIT_IO;
        goto out;
    }
    struct cp_err err = {0};
    if (strcmp(files[2].action, "unchanged") != 0 &&
        cp_dir_ensure(dropin_dir, 0755, &err) != CP_OK) {
        cli_error("%s", err.msg);
        status = CLI_EXIT_IO;
        goto out;
    }
    /* The drop-in first: a unit never runs without the paths it needs. */
    for (size_t i = 3; i-- > 0 && status == 0;)
        if (strcmp(files[i].action, "unchanged") != 0)
            status = write_file(&files[i]);
    if (status != 0)
        goto out;
    const char *outcome = files_outcome(files, 3);
    json_object_set_new(result, "outcome", json_string(outcome));
    json_object_set_new(result, "files", files_json(files, 3, false));
    json_t *next = json_array();
    for (size_t i = 0; next != NULL && i < 2; i++)
        json_array_append_new(next, json_string(next_steps[i]));
    json_object_set_new(result, "next_steps", next ? next : json_array());
    if (!sd->common.json && !sd->common.quiet) {
        printf("certpilot systemd install: %s\n",
               strcmp(outcome, "unchanged") == 0 ? "every file is up to date" : "done");
        files_text(files, 3, false);
        printf("Writable for renewals (ReadWritePaths=):\n");
        for (size_t i = 0; i < ps.n; i++)
            printf("  %s\n", ps.p[i]);
        if (home)
            printf("  (and ProtectHome=read-only: one is under /home, /root or /run/user)\n");
        printf("Now run:\n  %s\n  %s\n", next_steps[0], next_steps[1]);
    }
out:
    for (size_t i = 0; i < 3; i++)
        text_clear(&files[i].body);
    paths_clear(&ps);
    return status;
}

/* ------------------------------------------------------------------- cron */

/* 32-bit FNV-1a: the same host name always gives the same minute. */
static uint32_t fnv1a(const char *s)
{
    uint32_t h = 2166136261u;
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 16777619u;
    }
    return h;
}

/* One word for /bin/sh in a crontab: single-quoted unless plain; '%' is
 * cron's newline, escaped. */
static void shell_word(struct text *t, const char *word)
{
    bool plain =
        *word != '\0' && strspn(word, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                      "0123456789_./:=@+,-") == strlen(word);
    text_add(t, "%s", plain ? "" : "'");
    for (const char *p = word; *p; p++) {
        if (*p == '%')
            text_add(t, "\\%%");
        else if (*p == '\'')
            text_add(t, "'\\''");
        else
            text_add(t, "%c", *p);
    }
    text_add(t, "%s", plain ? "" : "'");
}

static int cron(struct sd *sd, json_t *result)
{
    char host[256] = "";
    struct text line = {0};
    struct out_file f = {0};
    const char *argv[8];
    int status = 0;

    if (gethostname(host, sizeof host - 1) != 0 || host[0] == '\0')
        snprintf(host, sizeof host, "localhost");
    uint32_t h = fnv1a(host);
    /* As often as the systemd timer (FLOW_TIMER_HOURS), each host at its own time. */
    unsigned minute = h % 60, hour = h / 60 % FLOW_TIMER_HOURS;
    size_t argc = renew_argv(sd, argv);
    json_t *hours = json_array();
    text_add(&line, "%u ", minute);
    for (unsigned k = hour; k < 24; k += FLOW_TIMER_HOURS) {
        text_add(&line, "%s%u", k == hour ? "" : ",", k);
        json_array_append_new(hours, json_integer(k));
    }
    json_object_set_new(result, "hours", hours);
    text_add(&line, " * * * root ");
    for (size_t i = 0; i < argc; i++) {
        text_add(&line, "%s", i ? " " : "");
        shell_word(&line, argv[i]);
    }
    if (line.failed) {
        cli_error("out of memory");
        status = CLI_EXIT_SOFTWARE;
        goto out;
    }
    json_object_set_new(result, "line", json_string(line.s));
    json_object_set_new(result, "minute", json_integer(minute));
    json_object_set_new(result, "host", json_string(host));
    if (!sd->install) {
        json_object_set_new(result, "outcome", json_string("printed"));
        if (!sd->common.json)
            printf("%s\n", line.s);
        if (!sd->common.json && !sd->common.quiet)
            cli_log(CLI_LOG_INFO,
                    "a line for /etc/cron.d or /etc/crontab (\"root\" is the user field; leave "
                    "it out for 'crontab -e'); 'certpilot systemd cron --install' "
                    "writes " DEFAULT_CRON_FILE);
        goto out;
    }

    snprintf(f.path, sizeof f.path, "%s", sd->cron_file ? sd->cron_file : DEFAULT_CRON_FILE);
    text_add(&f.body, "%s; running it again rewrites\n", MARK_CRON);
    text_add(
        &f.body,
        "# this file.  Renews what is due every %d hours, at times chosen from the host name.\n"
        "SHELL=/bin/sh\n"
        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n"
        "%s\n",
        FLOW_TIMER_HOURS, line.s);
    if (f.body.failed) {
        cli_error("out of memory");
        status = CLI_EXIT_SOFTWARE;
        goto out;
    }
    if ((status = plan_file(sd, &f, MARK_CRON)) != 0)
        goto out;
    json_object_set_new(result, "cron_file", json_string(f.path));
    if (any_refused(&f, 1, "systemd cron --install")) {
        status = CLI_EXIT_USAGE;
        json_object_set_new(result, "outcome", json_string("refused"));
        json_object_set_new(result, "files", files_json(&f, 1, false));
        goto out;
    }
    if (sd->dry_run) {
        json_object_set_new(result, "outcome", json_string("dry_run"));
        json_object_set_new(result, "files", files_json(&f, 1, true));
        if (!sd->common.json)
            files_text(&f, 1, true);
        if (!sd->common.json && !sd->common.quiet)
            printf("Nothing was written (--dry-run).\n");
        goto out;
    }
    if (strcmp(f.action, "unchanged") != 0 && (status = write_file(&f)) != 0)
        goto out;
    json_object_set_new(result, "outcome", json_string(files_outcome(&f, 1)));
    json_object_set_new(result, "files", files_json(&f, 1, false));
    if (!sd->common.json && !sd->common.quiet) {
        files_text(&f, 1, false);
        printf("cron reads it by itself; nothing else to run.\n");
    }
out:
    text_clear(&line);
    text_clear(&f.body);
    return status;
}

/* ------------------------------------------------------------------- main */

/* What both need: the binary, absolute paths, the state directory open. */
static int prepare(struct sd *sd)
{
    ssize_t n = readlink("/proc/self/exe", sd->exe, sizeof sd->exe - 1);
    if (n <= 0 || (size_t)n >= sizeof sd->exe - 1) {
        cli_error("cannot find this program's own path (/proc/self/exe): %s",
                  n < 0 ? strerror(errno) : "too long");
        return CLI_EXIT_IO;
    }
    sd->exe[n] = '\0';
    sd->common.server = CLI_LE_PRODUCTION; /* unused; cli_common_finish wants one */
    int status = cli_common_finish(&sd->common);
    if (status != 0)
        return status;
    if (!absolute(sd->common.state_dir, sd->state_abs, sizeof sd->state_abs) ||
        (sd->config != NULL && !absolute(sd->config, sd->config_abs, sizeof sd->config_abs))) {
        cli_error("the current directory is unknown or a path is too long");
        return CLI_EXIT_IO;
    }
    if (!printable(sd->exe) || !printable(sd->state_abs) ||
        (sd->config != NULL && !printable(sd->config_abs))) {
        cli_error("a path with a newline or other control character cannot be written into a "
                  "unit or a crontab");
        return CLI_EXIT_USAGE;
    }
    return 0;
}

int cmd_systemd(int argc, char **argv)
{
    struct sd sd = {0};
    int status;
    json_t *result = json_pack("{s:s}", "outcome", "failed");

    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        usage(argc < 2 ? stderr : stdout);
        json_decref(result);
        return argc < 2 ? CLI_EXIT_USAGE : CLI_EXIT_OK;
    }
    cli_common_init(&sd.common);
    if (strcmp(argv[1], "cron") == 0) {
        sd.cron = true;
    } else if (strcmp(argv[1], "install") != 0) {
        cli_error("systemd \"%s\": use 'certpilot systemd install' or 'certpilot systemd cron'",
                  argv[1]);
        status = CLI_EXIT_USAGE;
        goto out;
    }
    /* The defaults file first: the command line then overrides it. */
    status = cli_defaults_load(argc - 1, argv + 1, &sd.defaults, &sd.common);
    if (status == 0)
        status = parse_args(&sd, argc - 1, argv + 1);
    if (status != 0)
        goto out;
    cli_output_setup(&sd.common);
    status = prepare(&sd);
    if (status == 0)
        status = sd.cron ? cron(&sd, result) : install(&sd, result);
out:
    /* (Usage errors found before --json was parsed: main() prints them.) */
    if (status >= 0 && sd.common.json && result != NULL) {
        char outcome[32];
        snprintf(outcome, sizeof outcome, "%s",
                 json_string_value(json_object_get(result, "outcome")));
        json_object_del(result, "outcome");
        cli_json_result(result, outcome, status);
        result = NULL;
    }
    json_decref(result);
    cli_conf_clear(&sd.defaults);
    cli_common_clear(&sd.common);
    return status < 0 ? CLI_EXIT_OK : status;
}
