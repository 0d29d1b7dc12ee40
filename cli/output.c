/*
 * cli/output.c - messages on stderr and JSON on stdout.
 *
 * Messages go one line per event to stderr.  When stderr is the systemd
 * journal (JOURNAL_STREAM names stderr's device and inode), each line starts
 * with a syslog priority "<N>" that journald turns into the entry's priority
 * and drops; otherwise lines start with "certpilot: ".  --quiet keeps only
 * errors; -v adds debug lines.  This is the one piece of global state of the
 * command line: set once by cli_log_setup() before a command runs.
 */
#include "cli/cli.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

static struct {
    bool journal;
    int max_level; /* lines above this priority are dropped */
} log_cfg = {false, CLI_LOG_INFO};

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

/* Errors and warnings as cli_error() says them (never dropped, kept as the
 * last error; a warning's text starts with "warning: "), the rest as log
 * lines of the same level. */
static void flow_to_log(void *ctx, enum flow_level level, const char *msg)
{
    (void)ctx;
    if (level <= FLOW_WARNING)
        cli_error("%s", msg);
    else
        cli_log((enum cli_log_level)level, "%s", msg);
}

const struct flow_log *cli_flow_log(void)
{
    static const struct flow_log log = {flow_to_log, NULL};
    return &log;
}
