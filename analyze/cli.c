/* CLI helpers (see cli.h). The only place numbers typed by a user are parsed. */
#include "cli.h"
#include "error.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int cli_parse_int(const char *cmd, const char *what, const char *s, int64_t lo, int64_t hi,
                  int64_t *out)
{
    char *end;
    errno = 0;
    long long v = s ? strtoll(s, &end, 10) : 0;
    if (!s || !*s || *end || errno || v < lo || v > hi) {
        fprintf(stderr, "ckptscope %s: %s must be an integer in [%lld, %lld], not '%s'\n", cmd,
                what, (long long)lo, (long long)hi, s ? s : "");
        return -1;
    }
    *out = v;
    return 0;
}

int cli_parse_double(const char *cmd, const char *what, const char *s, double lo, double hi,
                     double *out)
{
    char *end;
    errno = 0;
    double v = s ? strtod(s, &end) : 0;
    if (!s || !*s || *end || errno || !(v >= lo && v <= hi)) {
        fprintf(stderr, "ckptscope %s: %s must be a number in [%g, %g], not '%s'\n", cmd, what, lo,
                hi, s ? s : "");
        return -1;
    }
    *out = v;
    return 0;
}

int cli_default_threads(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : n > 1024 ? 1024 : (int)n;
}

int cli_parse_threads(const char *cmd, const char *s, int *out)
{
    int64_t v;
    if (s && strcmp(s, "auto") == 0) {
        *out = cli_default_threads();
        return 0;
    }
    if (cli_parse_int(cmd, "--threads", s, 0, 1024, &v) != 0)
        return -1;
    *out = v == 0 ? cli_default_threads() : (int)v;
    return 0;
}

int cli_fail(const char *cmd, int code)
{
    const char *msg = cks_error_last();
    fprintf(stderr, "ckptscope %s: error: %s\n", cmd, *msg ? msg : cks_error_name(code));
    return code == CKS_EFAILCHECK ? CLI_FAILCHECK : CLI_USAGE;
}

int cli_usage_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "ckptscope %s: ", cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nTry 'ckptscope %s --help'.\n", cmd);
    return CLI_USAGE;
}

int cli_json_print(json_t *doc)
{
    int r = json_dumpf(doc, stdout, JSON_COMPACT | JSON_REAL_PRECISION(17) | JSON_ENSURE_ASCII);
    json_decref(doc);
    if (r != 0 || fputc('\n', stdout) == EOF)
        return -1;
    return 0;
}

int cli_finish(const char *cmd, int status)
{
    if (fflush(stdout) != 0 || ferror(stdout)) {
        fprintf(stderr, "ckptscope %s: error: writing standard output failed: %s\n", cmd,
                strerror(errno));
        return CLI_USAGE;
    }
    return status;
}

double cli_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

void cli_progress_init(cli_progress *p, int quiet)
{
    p->enabled = !quiet && isatty(STDERR_FILENO);
    p->t0 = cli_now();
    p->dirty = 0;
}

void cli_progress_update(cli_progress *p, const char *fmt, ...)
{
    if (!p->enabled)
        return;
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\r\033[K%s", line);
    fflush(stderr);
    p->dirty = 1;
}

void cli_progress_done(cli_progress *p)
{
    if (p->enabled && p->dirty) {
        fputs("\r\033[K", stderr);
        fflush(stderr);
    }
    p->dirty = 0;
}

const char *cli_fetch_text(const cks_fetch_progress *p, char *buf, size_t cap)
{
    char done[32], total[32], rate[32];
    double r = p->seconds > 0 ? (double)p->done / p->seconds : 0;
    snprintf(buf, cap, "fetching %s: %s of %s, %d/%d files, %s/s", p->ckpt,
             cli_human_bytes(p->done, done, sizeof done),
             cli_human_bytes(p->total, total, sizeof total), p->files_done, p->files_total,
             cli_human_bytes((uint64_t)r, rate, sizeof rate));
    return buf;
}

void cli_fetch_progress(void *ctx, const cks_fetch_progress *p)
{
    char text[256];
    cli_progress_update(ctx, "%s", cli_fetch_text(p, text, sizeof text));
}

const char *cli_human_bytes(uint64_t n, char *buf, size_t cap)
{
    static const char *unit[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
    double v = (double)n;
    int u = 0;
    while (v >= 1024 && u < 5) {
        v /= 1024;
        u++;
    }
    if (u == 0)
        snprintf(buf, cap, "%llu B", (unsigned long long)n);
    else
        snprintf(buf, cap, "%.1f %s", v, unit[u]);
    return buf;
}
