/*
 * cli/output.c - messages on stderr and JSON on stdout.
 *
 * Messages go one line per event to stderr.  When stderr is the systemd
 * journal (JOURNAL_STREAM names stderr's device and inode), each line starts
 * with a syslog priority "<N>" that journald turns into the entry's priority
 * and drops; otherwise lines start with "certpilot: ".  --quiet keeps only
 * errors; -v adds debug lines.  Progress lines (one per step of a run) are
 * shown only to a person: when stderr is a terminal or the journal, or with
 * -v.  This is the one piece of global state of the command line: set once
 * by cli_output_setup() before a command runs.
 *
 * JSON goes to stdout, one object per run, through cli_json_result(): every
 * object has "outcome" and "exit_status" whatever the command.
 */
#include "cli/cli.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static struct {
    bool journal;
    bool progress;  /* progress lines shown */
    int max_level;  /* lines above this priority are dropped */
    bool json_done; /* the run's JSON result was printed */
} log_cfg = {false, false, CLI_LOG_INFO, false};

static char last_error[512]; /* for renew's status file and summary */
static char context[300];    /* "NAME: " before every line while renew works on NAME */
static char context_name[256];

void cli_log_context(const char *name)
{
    snprintf(context_name, sizeof context_name, "%s", name ? name : "");
    if (name == NULL)
        context[0] = '\0';
    else
        snprintf(context, sizeof context, "%s: ", context_name);
}

const char *cli_log_context_get(void)
{
    return context_name[0] ? context_name : NULL;
}

const char *cli_last_error(void)
{
    return last_error;
}

void cli_last_error_clear(void)
{
    last_error[0] = '\0';
}

static bool stderr_is_journal(void)
{
    const char *js = getenv("JOURNAL_STREAM");
    unsigned long long dev, ino;
    struct stat st;
    if (js == NULL || sscanf(js, "%llu:%llu", &dev, &ino) != 2 || fstat(2, &st) != 0)
        return false;
    return (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

void cli_log_setup(bool quiet, bool verbose)
{
    log_cfg.journal = stderr_is_journal();
    log_cfg.max_level = quiet ? CLI_LOG_ERR : verbose ? CLI_LOG_DEBUG : CLI_LOG_INFO;
}

void cli_progress_setup(bool quiet, bool verbose, bool json)
{
    /* -v: wherever stderr goes; else only for a person, and not beside --json */
    log_cfg.progress = !quiet && (verbose || (!json && (log_cfg.journal || isatty(2) == 1)));
}

bool cli_progress_enabled(void)
{
    return log_cfg.progress;
}

void cli_vprogress(const char *fmt, va_list ap)
{
    char buf[2048];
    if (!log_cfg.progress)
        return;
    vsnprintf(buf, sizeof buf, fmt, ap);
    int saved = log_cfg.max_level; /* shown at INFO priority, even if set lower */
    if (log_cfg.max_level < CLI_LOG_INFO)
        log_cfg.max_level = CLI_LOG_INFO;
    cli_log_lines(CLI_LOG_INFO, "", buf);
    log_cfg.max_level = saved;
}

void cli_progress(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    cli_vprogress(fmt, ap);
    va_end(ap);
}

void cli_output_setup(const struct cli_common *c)
{
    cli_log_setup(c->quiet, c->verbose);
    cli_progress_setup(c->quiet, c->verbose, c->json);
    /* --quiet: the exit status is the answer (as with grep -q); text reports
     * on stdout go nowhere.  --json still prints its object. */
    if (c->quiet && !c->json) {
        fflush(stdout);
        if (freopen("/dev/null", "w", stdout) == NULL)
            cli_log(CLI_LOG_DEBUG, "--quiet: cannot open /dev/null");
    }
}

bool cli_log_enabled(enum cli_log_level level)
{
    return (int)level <= log_cfg.max_level;
}

static void log_line(enum cli_log_level level, const char *text, size_t len)
{
    if (log_cfg.journal)
        fprintf(stderr, "<%d>%.*s\n", (int)level, (int)len, text);
    else
        fprintf(stderr, "certpilot: %.*s\n", (int)len, text);
}

void cli_vlog(enum cli_log_level level, const char *fmt, va_list ap)
{
    char buf[2048];
    if (!cli_log_enabled(level))
        return;
    vsnprintf(buf, sizeof buf, fmt, ap);
    cli_log_lines(level, "", buf);
}

void cli_log(enum cli_log_level level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    cli_vlog(level, fmt, ap);
    va_end(ap);
}

void cli_log_lines(enum cli_log_level level, const char *prefix, const char *text)
{
    if (!cli_log_enabled(level) || text == NULL)
        return;
    /* Multi-line text (hook output, a CAA explanation): one entry per line,
     * each carrying the prefix, so that journal lines stand on their own. */
    char line[2048];
    const char *p = text;
    while (*p) {
        size_t n = strcspn(p, "\n");
        int k = snprintf(line, sizeof line, "%s%s%.*s", context, prefix, (int)n, p);
        if (k > 0)
            log_line(level, line, (size_t)k < sizeof line ? (size_t)k : sizeof line - 1);
        p += n + (p[n] == '\n');
    }
}

void cli_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    /* Errors are never dropped, also with --quiet. */
    char buf[2048];
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    bool warning = strncmp(buf, "warning: ", 9) == 0 || strncmp(buf, "note: ", 6) == 0;
    if (warning && !cli_log_enabled(CLI_LOG_WARNING))
        return;
    if (!warning)
        snprintf(last_error, sizeof last_error, "%.*s", (int)sizeof last_error - 1, buf);
    int saved = log_cfg.max_level;
    log_cfg.max_level = CLI_LOG_DEBUG;
    cli_log_lines(warning ? CLI_LOG_WARNING : CLI_LOG_ERR, "", buf);
    log_cfg.max_level = saved;
}

void cli_print_json(const json_t *v)
{
    json_dumpf(v, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    fputc('\n', stdout);
}

void cli_json_result(json_t *obj, const char *outcome, int exit_status)
{
    json_t *o = json_pack("{s:s, s:i}", "outcome", outcome, "exit_status", exit_status);
    if (o == NULL) {
        json_decref(obj);
        return;
    }
    if (obj != NULL)
        json_object_update(o, obj);
    /* the run's own words win over what the object carried */
    json_object_set_new(o, "outcome", json_string(outcome));
    json_object_set_new(o, "exit_status", json_integer(exit_status));
    if (exit_status != 0 && json_object_get(o, "error") == NULL)
        json_object_set_new(o, "error", json_string(last_error));
    cli_print_json(o);
    fflush(stdout);
    json_decref(o);
    json_decref(obj);
    log_cfg.json_done = true;
}

bool cli_json_done(void)
{
    return log_cfg.json_done;
}

bool cli_json_wanted(int argc, char *const *argv)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0)
            return false;
        if (strcmp(argv[i], "--json") == 0)
            return true;
    }
    return false;
}

void cli_names_print(FILE *f, const char *const *names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        fprintf(f, "%s%s", i == 0 ? "" : i + 1 == n ? " and " : ", ", names[i]);
}

/* ---------------------------------------------------------------- hints */

/* Common failures and what to check: a failure's text matches an entry when
 * it contains every one of its words (case-insensitive). */
static const struct {
    const char *words[3];
    const char *hint;
} hints[] = {
    {{"Address already in use", NULL, NULL},
     "another program listens on that port (`ss -ltnp` names it): stop it while certpilot "
     "runs, use --webroot with it instead of --standalone, or give --http-port / --tls-port "
     "a port the CA's connections are forwarded to"},
    {{"http-01", "404", NULL},
     "the web server answered 404: check that --webroot DIR is the document root it serves "
     "this name from (DIR/.well-known/acme-challenge/x must be at "
     "http://NAME/.well-known/acme-challenge/x) and that no rewrite or redirect catches "
     "that path"},
    {{"TXT record", "not served", NULL},
     "the dns-01 record is missing at some nameservers of the zone: check that the hook "
     "adds _acme-challenge.NAME to the zone they serve (or where its CNAME points) and that "
     "the zone reaches every secondary, or allow more time with --dns-timeout SECONDS"},
    {{"dns-01", "TXT", NULL},
     "the CA did not see the dns-01 record: check that the hook adds _acme-challenge.NAME to "
     "the zone the public nameservers serve (or where its CNAME points); with --dns-timeout "
     "certpilot waits until every nameserver of the zone serves it"},
};

static bool has_word(const char *text, const char *word)
{
    size_t n = strlen(word);
    for (const char *p = text; *p != '\0'; p++)
        if (strncasecmp(p, word, n) == 0)
            return true;
    return false;
}

bool cli_hint(const char *text)
{
    if (text == NULL)
        return false;
    for (size_t i = 0; i < sizeof hints / sizeof hints[0]; i++) {
        bool all = true;
        for (size_t w = 0; w < 3 && hints[i].words[w] != NULL && all; w++)
            all = has_word(text, hints[i].words[w]);
        if (all) {
            int saved = log_cfg.max_level; /* a hint goes with its error, also with --quiet */
            log_cfg.max_level = CLI_LOG_DEBUG;
            cli_log_lines(CLI_LOG_ERR, "hint: ", hints[i].hint);
            log_cfg.max_level = saved;
            return true;
        }
    }
    return false;
}

/* Errors and warnings as cli_error() says them (never dropped, kept as the
 * last error; a warning's text starts with "warning: "), the rest as log
 * lines of the same level. */
static void flow_to_log(void *ctx, enum flow_level level, const char *msg)
{
    (void)ctx;
    if (level == FLOW_PROGRESS)
        cli_progress("%s", msg);
    else if (level <= FLOW_WARNING)
        cli_error("%s", msg);
    else
        cli_log((enum cli_log_level)level, "%s", msg);
}

const struct flow_log *cli_flow_log(void)
{
    static const struct flow_log log = {flow_to_log, NULL};
    return &log;
}
