/* ckptscope plot: draws the trend and per-checkpoint plots of a run file with gnuplot into
 * a folder, with an index of what was drawn and what was skipped (reports/plots.h). */
#include "cli.h"
#include "cmd.h"
#include "error.h"
#include "gnuplot.h"
#include "plots.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>

static const char usage_text[] =
    "usage: ckptscope plot RUN.h5 -o DIR [--format png|svg] [--only LIST] [--at REF]\n"
    "                      [--tensors GLOB] [--scripts] [--threads N] [--timeout SEC]\n"
    "                      [--quiet]\n"
    "\n"
    "Draw the plots of a run file (made by 'ckptscope scan') into DIR with gnuplot, and\n"
    "DIR/index.txt listing what was drawn and what was skipped, and why.\n"
    "\n"
    "Against step (sorted; missing values are gaps, never zeros):\n"
    "  eval     held-out perplexity and bits per byte, one line per eval set (/eval)\n"
    "  evals    imported eval scores, one plot per task, +-1 stderr bands (/evals)\n"
    "  median   median over each tensor kind of rel_fro (previous, reference), rms, alpha\n"
    "           and stable_rank\n"
    "  heatmap  layer x step heatmaps of the same metrics, one per tensor kind\n"
    "  kl       function space per eval set (scan --metrics ppl,kl): KL divergence from\n"
    "           the previous checkpoint and from the reference, top-1 agreement with the\n"
    "           previous checkpoint, forgetting and learning events, top-1 accuracy\n"
    "  memorization  token_match, full_match and prefix_match per training data set\n"
    "           (/memo; scan --metrics memorization --train-data FILE)\n"
    "At one checkpoint (--at):\n"
    "  esd      eigenvalue density of chosen matrices on log-log axes, with the fitted\n"
    "           power law and xmin marked (/spectra, /spectral)\n"
    "  alpha    histogram of alpha over all matrices, 2..6 shaded\n"
    "\n"
    "  -o, --output DIR  output folder (created when missing; its parent must exist)\n"
    "  --format F        png (default) or svg\n"
    "  --only LIST       comma-separated families to draw (default: all); a family asked\n"
    "                    for by name that has nothing to draw is an error\n"
    "  --at REF          checkpoint of the esd and alpha plots (default: the newest\n"
    "                    complete one)\n"
    "  --tensors GLOB    matrices whose ESD is drawn (default: q k v o gate up down of the\n"
    "                    middle layer, embed_tokens and lm_head; at most 64)\n"
    "  --scripts         also write each gnuplot script as DIR/<plot>.gp\n"
    "  --threads N       gnuplots running at once (default: all CPUs)\n"
    "  --timeout SEC     give up on a gnuplot that takes longer than SEC seconds for one\n"
    "                    plot (default 60)\n"
    "  --quiet           no progress line\n"
    "  -h, --help        this help\n"
    "\n"
    "Needs gnuplot (Debian package gnuplot-nox) on PATH. Exit status: 0 ok; 2 on bad\n"
    "usage or input: not a run file, no checkpoints, nothing to draw, a family asked for\n"
    "by name without data, an output folder that cannot be written, gnuplot missing or\n"
    "failing.\n";

typedef struct {
    const char *run;
    cks_plot_opts p;
    int quiet;
} options;

static int parse_args(int argc, char **argv, options *o)
{
    static const struct option opts[] = {{"output", required_argument, NULL, 'o'},
                                         {"format", required_argument, NULL, 'f'},
                                         {"only", required_argument, NULL, 'O'},
                                         {"at", required_argument, NULL, 'a'},
                                         {"tensors", required_argument, NULL, 't'},
                                         {"scripts", no_argument, NULL, 's'},
                                         {"timeout", required_argument, NULL, 'T'},
                                         {"quiet", no_argument, NULL, 'q'},
                                         {"threads", required_argument, NULL, 'j'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    int c;
    int64_t secs;
    o->p.families = CKS_PLOT_ALL;
    optind = 0;
    while ((c = getopt_long(argc, argv, "ho:", opts, NULL)) != -1) {
        switch (c) {
        case 'o':
            o->p.outdir = optarg;
            break;
        case 'f':
            if (strcmp(optarg, "png") == 0)
                o->p.format = CKS_PLOT_PNG;
            else if (strcmp(optarg, "svg") == 0)
                o->p.format = CKS_PLOT_SVG;
            else
                return cli_usage_error("plot", "--format must be png or svg, not '%s'", optarg);
            break;
        case 'O':
            if (cks_plot_families_parse(optarg, &o->p.families) != 0)
                return cli_usage_error("plot", "%s", cks_error_last());
            o->p.strict = 1;
            break;
        case 'a':
            o->p.at = optarg;
            break;
        case 't':
            o->p.tensors = optarg;
            break;
        case 's':
            o->p.keep_scripts = 1;
            break;
        case 'T':
            if (cli_parse_int("plot", "--timeout", optarg, 1, 86400, &secs) != 0)
                return CLI_USAGE;
            o->p.timeout_ms = (int)(secs * 1000);
            break;
        case 'q':
            o->quiet = 1;
            break;
        case 'j':
            if (cli_parse_threads("plot", optarg, &o->p.jobs) != 0)
                return CLI_USAGE;
            break;
        case 'h':
            fputs(usage_text, stdout);
            return -1;
        default:
            return cli_usage_error("plot", "unknown option");
        }
    }
    if (optind != argc - 1)
        return cli_usage_error("plot", "expected one RUN.h5");
    if (!o->p.outdir)
        return cli_usage_error("plot", "-o DIR is required");
    o->run = argv[optind];
    return 0;
}

static void progress(void *ctx, size_t done, const char *file)
{
    cli_progress_update(ctx, "plot: %zu drawn, drawing %s", done, file);
}

int cmd_plot(int argc, char **argv)
{
    options o = {0};
    cks_runview *v = NULL;
    cks_plot_list list;
    cli_progress prog;
    int err, status = parse_args(argc, argv, &o);
    if (status)
        return status < 0 ? cli_finish("plot", 0) : status;
    cks_plot_list_init(&list);
    cli_progress_init(&prog, o.quiet);
    o.p.progress = progress;
    o.p.progress_ctx = &prog;
    if ((err = cks_runview_open(&v, o.run)) || (err = cks_plots_draw(v, &o.p, &list))) {
        cli_progress_done(&prog);
        status = cli_fail("plot", err);
        goto done;
    }
    cli_progress_done(&prog);
    size_t drawn = 0;
    for (size_t i = 0; i < list.n; i++)
        drawn += list.item[i].file != NULL;
    printf("plot: %zu plots in %s, %zu skipped (see %s/index.txt)\n", drawn, o.p.outdir,
           list.n - drawn, o.p.outdir);
done:
    cks_plot_list_release(&list);
    cks_runview_free(v);
    return cli_finish("plot", status);
}
