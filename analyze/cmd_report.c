/* ckptscope report: one checkpoint's report as text, Markdown, JSON or HTML, or (--trends)
 * the whole run as one self-contained HTML page with every plot embedded
 * (reports/report.h). */
#include "cli.h"
#include "cmd.h"
#include "error.h"
#include "report.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char usage_text[] =
    "usage: ckptscope report RUN.h5 [--at REF | --trends] [--format text|markdown|json|html]\n"
    "                        [-o FILE] [--threads N] [--quiet]\n"
    "\n"
    "Report one checkpoint of a run file (made by 'ckptscope scan'): its status and config,\n"
    "held-out perplexity (with top-1 accuracy where scanned), function space per held-out\n"
    "set against the previous checkpoint and the reference (scan --metrics ppl,kl: KL of\n"
    "the next-token distributions and its percentiles, top-1 agreement, forgetting and\n"
    "learning events, dnll with its 95% bootstrap interval), memorisation per training data\n"
    "set (/memo), imported eval scores, a table of every tensor (norms, drift against the\n"
    "previous checkpoint and the reference, spectral figures) and the outliers: the 5\n"
    "largest drifts, tensors holding NaN or Inf, alpha outside 2..6. Missing values are '-'\n"
    "(null in JSON).\n"
    "\n"
    "  --at REF          the checkpoint (default: the newest complete one)\n"
    "  --trends          the whole run as ONE self-contained HTML page instead: every plot\n"
    "                    of 'ckptscope plot' embedded, a table of the checkpoints, the newest\n"
    "                    complete checkpoint's report; nothing loaded from the network\n"
    "                    (needs gnuplot, Debian package gnuplot-nox)\n"
    "  --format F        text (default), markdown, json or html; --trends is html\n"
    "  -o, --output FILE write to FILE instead of stdout\n"
    "  --threads N       gnuplots running at once for --trends (default: all CPUs)\n"
    "  --quiet           no progress line (--trends)\n"
    "  -h, --help        this help\n"
    "\n"
    "JSON fields: run, checkpoint, config, eval (every series of each set), evals, memo,\n"
    "tensors (name, layer, kind, rows, cols, norms, drift_prev, drift_ref, spectral,\n"
    "flags), outliers, missing.\n"
    "Exit status: 0 ok; 2 on bad usage or input (not a run file, no checkpoints, an\n"
    "unknown --at, an output file that cannot be written).\n";

typedef struct {
    const char *run, *at, *output;
    cks_report_format format;
    int trends, format_given, quiet, threads;
} options;

static int parse_args(int argc, char **argv, options *o)
{
    static const struct option opts[] = {{"at", required_argument, NULL, 'a'},
                                         {"trends", no_argument, NULL, 't'},
                                         {"format", required_argument, NULL, 'f'},
                                         {"output", required_argument, NULL, 'o'},
                                         {"quiet", no_argument, NULL, 'q'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    int c;
    optind = 0;
    while ((c = getopt_long(argc, argv, "ho:", opts, NULL)) != -1) {
        switch (c) {
        case 'a':
            o->at = optarg;
            break;
        case 't':
            o->trends = 1;
            break;
        case 'f':
            if (cks_report_format_parse(optarg, &o->format) != 0)
                return cli_usage_error(
                    "report", "--format must be text, markdown, json or html, not '%s'", optarg);
            o->format_given = 1;
            break;
        case 'o':
            o->output = optarg;
            break;
        case 'q':
            o->quiet = 1;
            break;
        case 'j':
            if (cli_parse_threads("report", optarg, &o->threads) != 0)
                return CLI_USAGE;
            break;
        case 'h':
            fputs(usage_text, stdout);
            return -1;
        default:
            return cli_usage_error("report", "unknown option");
        }
    }
    if (optind != argc - 1)
        return cli_usage_error("report", "expected one RUN.h5");
    if (o->trends && o->at)
        return cli_usage_error("report", "--at and --trends exclude each other");
    if (o->trends && o->format_given && o->format != CKS_REPORT_HTML)
        return cli_usage_error("report", "--trends writes HTML only");
    o->run = argv[optind];
    return 0;
}

/* Writes the report to FILE (through FILE.tmp and a rename, so a failed write leaves no
 * half page) or to stdout. */
static int write_out(const char *path, const cks_buf *b)
{
    if (!path) {
        fwrite(b->data ? b->data : "", 1, b->len, stdout);
        return 0;
    }
    size_t n = strlen(path) + 5;
    char *tmp = malloc(n);
    if (!tmp)
        return cks_error_set(CKS_ENOMEM, "out of memory");
    snprintf(tmp, n, "%s.tmp", path);
    FILE *f = fopen(tmp, "wb");
    int err = 0;
    if (!f)
        err = cks_error_set(CKS_EIO, "cannot write %s: %s", path, strerror(errno));
    else {
        size_t w = fwrite(b->data ? b->data : "", 1, b->len, f);
        int bad = w != b->len || fflush(f) != 0;
        if (fclose(f) != 0 || bad)
            err = cks_error_set(CKS_EIO, "cannot write %s: %s", path, strerror(errno));
        else if (rename(tmp, path) != 0)
            err = cks_error_set(CKS_EIO, "cannot write %s: %s", path, strerror(errno));
        if (err)
            unlink(tmp);
    }
    free(tmp);
    return err;
}

static void progress(void *ctx, size_t done, const char *file)
{
    cli_progress_update(ctx, "report: %zu plots drawn, drawing %s", done, file);
}

int cmd_report(int argc, char **argv)
{
    options o = {0};
    cks_runview *v = NULL;
    cks_buf b;
    cli_progress prog;
    size_t at;
    int err, status = parse_args(argc, argv, &o);
    if (status)
        return status < 0 ? cli_finish("report", 0) : status;
    cks_buf_init(&b);
    cli_progress_init(&prog, o.quiet);
    if ((err = cks_runview_open(&v, o.run)))
        goto fail;
    if (o.trends) {
        cks_trends_opts t = {.jobs = o.threads, .progress = progress, .progress_ctx = &prog};
        err = cks_report_trends(v, &t, &b);
        cli_progress_done(&prog);
    } else {
        if (o.at)
            err = cks_runview_find(v, o.at, &at);
        else
            at = cks_runview_latest(v);
        if (!err)
            err = cks_report_checkpoint(v, at, o.format, &b);
    }
    if (!err)
        err = write_out(o.output, &b);
    if (err)
        goto fail;
    status = 0;
    goto done;
fail:
    status = cli_fail("report", err);
done:
    cks_buf_release(&b);
    cks_runview_free(v);
    return cli_finish("report", status);
}
