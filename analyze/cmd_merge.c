/* ckptscope merge: joins the part files of a sharded scan (and optionally the finished
 * run they extend) into one run file; the checks and the writing are reports/merge.h's. */
#include "cli.h"
#include "cmd.h"
#include "error.h"
#include "merge.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

static const char usage_text[] =
    "usage: ckptscope merge PART.h5... -o RUN.h5 [--allow-gaps] [--quiet]\n"
    "\n"
    "Join the part files written by 'ckptscope scan SOURCE --shard I/N -o PART.h5' into one\n"
    "run file, equal to what a single scan of the same checkpoints writes: rows in step\n"
    "order, one column per tensor.\n"
    "\n"
    "  -o, --output RUN.h5  the new run file; it must not exist (and is no input)\n"
    "  --allow-gaps         merge even when some checkpoints are in no input (they are\n"
    "                       left out); otherwise that is an error naming them\n"
    "  --quiet              no notes and no summary line\n"
    "  -h, --help           this help\n"
    "\n"
    "The parts must come from the same source, config.json, metric families, drift\n"
    "reference and checkpoint list; each checkpoint must be in one part only.\n"
    "\n"
    "To extend a finished run with new checkpoints, scan the shards with --extend RUN.h5\n"
    "and give RUN.h5 among the inputs: its rows are kept, except those a part analysed\n"
    "again (a new commit or a new previous checkpoint), which the part's row replaces.\n"
    "\n"
    "Exit status: 0 merged; 2 bad usage or input (nothing is written).\n";

static void print_note(void *ctx, const char *msg)
{
    if (!*(const int *)ctx)
        fprintf(stderr, "ckptscope merge: note: %s\n", msg);
}

int cmd_merge(int argc, char **argv)
{
    static const struct option opts[] = {{"output", required_argument, NULL, 'o'},
                                         {"allow-gaps", no_argument, NULL, 'g'},
                                         {"quiet", no_argument, NULL, 'q'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    const char *output = NULL;
    int c, quiet = 0;
    cks_merge_opts o = {0, print_note, &quiet};
    optind = 0;
    while ((c = getopt_long(argc, argv, "o:h", opts, NULL)) != -1) {
        switch (c) {
        case 'o':
            output = optarg;
            break;
        case 'g':
            o.allow_gaps = 1;
            break;
        case 'q':
            quiet = 1;
            break;
        case 'h':
            fputs(usage_text, stdout);
            return cli_finish("merge", 0);
        default:
            return cli_usage_error("merge", "unknown option");
        }
    }
    if (!output)
        return cli_usage_error("merge", "the merged run file is required: -o RUN.h5");
    if (optind >= argc)
        return cli_usage_error("merge", "expected one or more PART.h5");
    cks_merge_stats st;
    double t0 = cli_now();
    int err =
        cks_merge((const char *const *)argv + optind, (size_t)(argc - optind), output, &o, &st);
    if (err)
        return cli_fail("merge", err);
    if (!quiet)
        fprintf(stderr,
                "ckptscope merge: %s: %zu checkpoints (%zu from %zu parts, %zu from the run "
                "extended, %zu replaced, %zu left out), %zu tensors, %zu datasets, %.1f s\n",
                output, st.rows, st.rows - st.from_base, st.parts, st.from_base, st.replaced,
                st.gaps, st.tensors, st.datasets, cli_now() - t0);
    return cli_finish("merge", 0);
}
