/* ckptscope regress: the CI gate. Judges every score of a checkpoint against the one
 * before it and a pinned baseline (reports/regress.h, reports/gate.h), writes a Markdown
 * summary and JUnit XML, and exits 1 when something regressed. */
#include "cli.h"
#include "cmd.h"
#include "error.h"
#include "regress.h"

#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

static const char usage_text[] =
    "usage: ckptscope regress RUN.h5 [--at REF] [--baseline FILE] [--write-baseline FILE]\n"
    "                         [--junit FILE] [--markdown FILE] [--fail-on regression|warning]\n"
    "                         [--direction PATTERN=higher|lower|equal]...\n"
    "                         [--tolerance [PATTERN=]SPEC]... [--include GLOB]...\n"
    "                         [--no-previous] [--quiet]\n"
    "\n"
    "Judge every score in RUN.h5 (lm-eval scores evals/<task>/<metric>, built-in\n"
    "perplexity eval/<set>/{nll,ppl,bpb,top1_acc}) at one checkpoint against the previous\n"
    "complete checkpoint (by step) and against a pinned baseline. Each comparison of each\n"
    "score is a regression (worse beyond the tolerance), a warning (worse within it: a\n"
    "drop within noise; or not judgeable: NaN value, unknown direction, no applicable\n"
    "tolerance, other sample count), an improvement (better beyond the tolerance) or\n"
    "unchanged.\n"
    "\n"
    "  --at REF              checkpoint to judge (default: the newest complete one)\n"
    "  --baseline FILE       also compare with this baseline; it must belong to the same\n"
    "                        model: model name and config.json where both sides have\n"
    "                        them, else the name of the source folder\n"
    "  --write-baseline FILE write the judged checkpoint's scores (value, stderr, n,\n"
    "                        direction, tolerance) as a baseline; after the comparison, so\n"
    "                        FILE may be the --baseline being replaced\n"
    "  --junit FILE          JUnit XML: a test suite per comparison, a test case per score,\n"
    "                        a <failure> for each that fails\n"
    "  --markdown FILE       append the Markdown summary to FILE (e.g. the CI job summary,\n"
    "                        $GITHUB_STEP_SUMMARY) instead of printing it on stdout\n"
    "  --fail-on SEVERITY    'regression' (default) or 'warning' (warnings fail too)\n"
    "  --direction PATTERN=D whether higher or lower is better, or 'equal' (must not move\n"
    "                        beyond the tolerance either way: reproducibility gates)\n"
    "  --tolerance [PATTERN=]SPEC\n"
    "                        SPEC: comma-separated terms, the first that applies decides:\n"
    "                        abs:X (X in the score's units), rel:X (X times |reference|),\n"
    "                        se:K (K standard errors of the difference; for proportions\n"
    "                        without a stderr but with n, the binomial error and Wilson\n"
    "                        score intervals, Newcombe's method). Default: se:2,rel:0.01\n"
    "  --include GLOB        gate only the scores whose id matches GLOB (repeatable; '*'\n"
    "                        crosses '/'). It may also name per-tensor values of the\n"
    "                        [N, T] datasets, <path>/<tensor> (norms/fro/lm_head.weight),\n"
    "                        which are never gated otherwise (reproducibility gates with\n"
    "                        --direction 'norms/*=equal'). Baseline scores it does not\n"
    "                        select are ignored\n"
    "  --no-previous         compare with the baseline only\n"
    "  --quiet               no summary line on stderr\n"
    "  -h, --help            this help\n"
    "\n"
    "PATTERN is a glob matched against the score id (evals/arc_easy/acc) when it holds\n"
    "a '/', else against the metric name (acc, ppl); the last matching option wins.\n"
    "Directions, first found: --direction, the baseline, the result file's\n"
    "higher_is_better (lm-eval v0.4), the built-in table (higher: acc, acc_norm,\n"
    "exact_match, em, mc1, mc2, f1, bleu, chrf, mcc, rouge/bleu _max/_acc/_diff, ...;\n"
    "lower: ppl, perplexity, word_perplexity, byte_perplexity, bits_per_byte,\n"
    "likelihood_difference, pct_stereotype (as lm-eval says), ter, brier_score, and the\n"
    "built-in nll, ppl, bpb); otherwise 'direction unknown', a warning.\n"
    "Tolerances, first found: --tolerance, the baseline, the default.\n"
    "\n"
    "Held-out nll with an interval: when the run file holds the block-bootstrap 95%\n"
    "interval [lo, hi] of nll's change from the previous checkpoint (dnll_prev_lo/hi,\n"
    "scan --metrics ppl,kl), eval/<set>/nll against the previous checkpoint is judged on\n"
    "it: the first tolerance term gives a margin t (abs:X: X; rel:X: X*|previous nll|;\n"
    "se:K: t = 0 with the interval's halves scaled by K/1.96). A regression when the\n"
    "whole interval lies above +t (lo > t), an improvement when it lies below -t\n"
    "(hi < -t), a warning when nll rose but the interval reaches within t, else\n"
    "unchanged; the change column shows the interval. Against a baseline, and without\n"
    "the interval, nll is judged like any score. The kl family's other series (kl_*,\n"
    "top1_agree_*, forgot_*, learned_*, dnll_*) compare with another checkpoint and are\n"
    "not scores: gated only when --include names them. top1_acc is (higher is better).\n"
    "\n"
    "Exit status: 0 nothing failed, 1 a regression (or a warning with --fail-on warning),\n"
    "2 bad usage or input (unreadable run file or baseline, baseline of another model,\n"
    "nothing to compare).\n";

typedef struct {
    const char *run, *at, *baseline, *write_baseline, *junit, *markdown;
    cks_severity fail_on;
    cks_gate_dir_rule *dirs;
    cks_gate_tol_rule *tols;
    size_t ndirs, ntols;
    const char **include;
    size_t ninclude;
    int no_previous, quiet;
} options;

/* Splits "PATTERN=VALUE" at its last '='; *pattern is "*" when there is none. */
static const char *split_rule(const char *arg, const char **pattern, char *buf, size_t cap)
{
    const char *eq = strrchr(arg, '=');
    if (!eq) {
        *pattern = "*";
        return arg;
    }
    snprintf(buf, cap, "%.*s", (int)(eq - arg), arg);
    *pattern = buf;
    return eq + 1;
}

static int add_dir(options *o, const char *arg)
{
    char pat[1024];
    const char *pattern, *value = split_rule(arg, &pattern, pat, sizeof pat);
    cks_direction d;
    if (!strchr(arg, '=') || !pat[0] || cks_direction_parse(value, &d) != 0 ||
        strcmp(value, "true") == 0 || strcmp(value, "false") == 0)
        return cli_usage_error("regress", "--direction wants PATTERN=higher|lower|equal, not '%s'",
                               arg);
    cks_gate_dir_rule *r = realloc(o->dirs, (o->ndirs + 1) * sizeof *r);
    char *p = strdup(pattern);
    if (!r || !p) {
        free(p);
        if (r)
            o->dirs = r;
        return cli_fail("regress", cks_error_set(CKS_ENOMEM, "out of memory"));
    }
    o->dirs = r;
    o->dirs[o->ndirs++] = (cks_gate_dir_rule){p, d};
    return 0;
}

static int add_tol(options *o, const char *arg)
{
    char pat[1024];
    const char *pattern, *value = split_rule(arg, &pattern, pat, sizeof pat);
    cks_tolerance t;
    if (!*pattern || cks_tolerance_parse(value, &t) != 0)
        return cli_usage_error("regress", "--tolerance '%s': %s", arg,
                               *pattern ? cks_error_last() : "empty PATTERN");
    cks_gate_tol_rule *r = realloc(o->tols, (o->ntols + 1) * sizeof *r);
    char *p = strdup(pattern);
    if (!r || !p) {
        free(p);
        if (r)
            o->tols = r;
        return cli_fail("regress", cks_error_set(CKS_ENOMEM, "out of memory"));
    }
    o->tols = r;
    o->tols[o->ntols++] = (cks_gate_tol_rule){p, t};
    return 0;
}

static void options_release(options *o)
{
    for (size_t i = 0; i < o->ndirs; i++)
        free((char *)o->dirs[i].pattern);
    for (size_t i = 0; i < o->ntols; i++)
        free((char *)o->tols[i].pattern);
    free(o->dirs);
    free(o->tols);
    free(o->include);
}

static int add_include(options *o, const char *glob)
{
    const char **p = realloc(o->include, (o->ninclude + 1) * sizeof *p);
    if (!p)
        return cli_fail("regress", cks_error_set(CKS_ENOMEM, "out of memory"));
    o->include = p;
    o->include[o->ninclude++] = glob;
    return 0;
}

static int parse_args(int argc, char **argv, options *o)
{
    static const struct option opts[] = {{"at", required_argument, NULL, 'a'},
                                         {"baseline", required_argument, NULL, 'b'},
                                         {"write-baseline", required_argument, NULL, 'w'},
                                         {"junit", required_argument, NULL, 'j'},
                                         {"markdown", required_argument, NULL, 'm'},
                                         {"fail-on", required_argument, NULL, 'f'},
                                         {"direction", required_argument, NULL, 'd'},
                                         {"tolerance", required_argument, NULL, 't'},
                                         {"include", required_argument, NULL, 'i'},
                                         {"no-previous", no_argument, NULL, 'n'},
                                         {"quiet", no_argument, NULL, 'q'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    int c, st;
    o->fail_on = CKS_SEV_REGRESSION;
    optind = 0;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'a':
            o->at = optarg;
            break;
        case 'b':
            o->baseline = optarg;
            break;
        case 'w':
            o->write_baseline = optarg;
            break;
        case 'j':
            o->junit = optarg;
            break;
        case 'm':
            o->markdown = optarg;
            break;
        case 'f':
            if (strcmp(optarg, "regression") == 0)
                o->fail_on = CKS_SEV_REGRESSION;
            else if (strcmp(optarg, "warning") == 0)
                o->fail_on = CKS_SEV_WARNING;
            else
                return cli_usage_error("regress",
                                       "--fail-on is 'regression' or 'warning', not '%s'", optarg);
            break;
        case 'd':
            if ((st = add_dir(o, optarg)) != 0)
                return st;
            break;
        case 't':
            if ((st = add_tol(o, optarg)) != 0)
                return st;
            break;
        case 'i':
            if (!*optarg)
                return cli_usage_error("regress", "--include wants a GLOB");
            if ((st = add_include(o, optarg)) != 0)
                return st;
            break;
        case 'n':
            o->no_previous = 1;
            break;
        case 'q':
            o->quiet = 1;
            break;
        case 'h':
            fputs(usage_text, stdout);
            return -1;
        default:
            return cli_usage_error("regress", "unknown option");
        }
    }
    if (optind != argc - 1)
        return cli_usage_error("regress", "expected one RUN.h5");
    if (o->no_previous && !o->baseline && !o->write_baseline)
        return cli_usage_error("regress",
                               "--no-previous leaves nothing to compare: add --baseline");
    o->run = argv[optind];
    return 0;
}

static int write_reports(const options *o, const cks_gate_report *r)
{
    int err = 0;
    FILE *f;
    if (o->junit) {
        if (!(f = fopen(o->junit, "w")))
            return cks_error_set(CKS_EIO, "%s: cannot create: %s", o->junit, strerror(errno));
        err = cks_gate_write_junit(r, o->fail_on, f);
        if (fclose(f) != 0 && !err)
            err = cks_error_set(CKS_EIO, "%s: write failed: %s", o->junit, strerror(errno));
        if (err)
            return cks_error_prefix(err, "%s", o->junit);
    }
    if (!o->markdown)
        return cks_gate_write_markdown(r, o->fail_on, stdout);
    if (!(f = fopen(o->markdown, "a")))
        return cks_error_set(CKS_EIO, "%s: cannot open: %s", o->markdown, strerror(errno));
    err = cks_gate_write_markdown(r, o->fail_on, f);
    if (fclose(f) != 0 && !err)
        err = cks_error_set(CKS_EIO, "%s: write failed: %s", o->markdown, strerror(errno));
    return err ? cks_error_prefix(err, "%s", o->markdown) : 0;
}

static void summary_line(const options *o, const cks_gate_report *r)
{
    if (o->quiet)
        return;
    for (int b = 0; b < 2; b++) {
        const size_t *c = r->count[b];
        if (b ? !r->baseline : !r->prev.name)
            continue;
        fprintf(stderr,
                "ckptscope regress: %s vs %s %s: %zu regressions, %zu warnings, %zu "
                "improvements, %zu unchanged\n",
                r->at.name, b ? "baseline" : "previous", b ? r->baseline->ckpt : r->prev.name,
                c[CKS_SEV_REGRESSION], c[CKS_SEV_WARNING], c[CKS_SEV_IMPROVEMENT],
                c[CKS_SEV_UNCHANGED]);
    }
}

static int gate(const options *o, cks_store *s, const cks_baseline *b)
{
    cks_gate_options go = {.at = o->at,
                           .dirs = o->dirs,
                           .ndirs = o->ndirs,
                           .tols = o->tols,
                           .ntols = o->ntols,
                           .baseline = b,
                           .no_previous = o->no_previous,
                           .include = o->include,
                           .ninclude = o->ninclude};
    cks_gate_report r;
    int err = cks_gate_run(s, &go, &r);
    if (err)
        return cli_fail("regress", err);
    int status = 0;
    if (!r.prev.name && !b && !o->write_baseline) {
        err = cks_error_set(CKS_EINVAL,
                            "nothing to compare: %s has no complete checkpoint before %s, and "
                            "no --baseline was given",
                            o->run, r.at.name);
        status = cli_fail("regress", err);
    } else if (r.prev.name || b) {
        if ((err = write_reports(o, &r)) != 0)
            status = cli_fail("regress", err);
        else
            status = cks_gate_worst(&r) >= o->fail_on ? CLI_FAILCHECK : 0;
        summary_line(o, &r);
    }
    if (status != CLI_USAGE && o->write_baseline) {
        size_t written, left_out;
        if ((err = cks_baseline_write(&r, o->write_baseline, &written, &left_out)) != 0)
            status = cli_fail("regress", err);
        else if (!o->quiet)
            fprintf(stderr,
                    "ckptscope regress: wrote baseline %s: %zu scores of %s (step %lld)%s\n",
                    o->write_baseline, written, r.at.name, (long long)r.at.step,
                    left_out ? ", some without a value left out" : "");
    }
    cks_gate_report_release(&r);
    return status;
}

int cmd_regress(int argc, char **argv)
{
    options o;
    cks_store *s = NULL;
    cks_baseline b, *bp = NULL;
    memset(&o, 0, sizeof o);
    int status = parse_args(argc, argv, &o), err;
    if (status) {
        options_release(&o);
        return status < 0 ? cli_finish("regress", 0) : status;
    }
    if (o.baseline) {
        if ((err = cks_baseline_read(o.baseline, &b)) != 0) {
            options_release(&o);
            return cli_fail("regress", err);
        }
        bp = &b;
    }
    if ((err = cks_store_open(&s, o.run, CKS_STORE_READ)) != 0)
        status = cli_fail("regress", err);
    else
        status = gate(&o, s, bp);
    cks_store_free(s);
    cks_baseline_release(bp);
    options_release(&o);
    return cli_finish("regress", status);
}
