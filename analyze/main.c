/* ckptscope: dispatches subcommands (table below) and owns process-wide setup. */
#include "cli.h"
#include "cmd.h"
#include "map.h"

#include "error.h"

#include <stdio.h>
#include <string.h>

static const struct {
    const char *name;
    int (*fn)(int argc, char **argv);
    const char *summary;
} commands[] = {
    {"list", cmd_list, "list the checkpoints of a source"},
    {"inspect", cmd_inspect, "per-tensor statistics of one checkpoint"},
    {"ppl", cmd_ppl, "held-out perplexity of one checkpoint (built-in forward pass)"},
    {"memorize", cmd_memorize, "memorisation of training sequences by one checkpoint"},
    {"tokenize", cmd_tokenize, "token ids and pieces of a text (built-in tokenizer)"},
    {"diff", cmd_diff, "drift of every tensor between two checkpoints"},
    {"scan", cmd_scan, "analyse every checkpoint into an HDF5 run file"},
    {"merge", cmd_merge, "join the part files of a sharded scan into one run file"},
    {"evals", cmd_evals, "import lm-eval-harness results into a run file"},
    {"regress", cmd_regress,
     "CI gate: judge a checkpoint's scores against the previous and a baseline"},
    {"plot", cmd_plot, "draw the trend and spectrum plots of a run file (gnuplot)"},
    {"report", cmd_report, "a checkpoint's report, or the whole run as one HTML page"},
};

#define NCOMMANDS (sizeof commands / sizeof commands[0])

static void usage(FILE *f)
{
    fprintf(f, "usage: ckptscope <command> [options]\n\n"
               "Measure how a model changed across the checkpoints of a training run.\n\n"
               "Commands:\n");
    for (size_t i = 0; i < NCOMMANDS; i++)
        fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].summary);
    fprintf(f, "\nA SOURCE is a git repository (one branch per checkpoint, Git LFS resolved),\n"
               "a Hugging Face hub cache folder (models--ORG--NAME) or a plain folder of\n"
               "checkpoint folders. SOURCE@REF names one checkpoint.\n\n"
               "'ckptscope <command> --help' describes a command. Exit status: 0 ok,\n"
               "1 a failed check, 2 bad usage or input.\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return CLI_USAGE;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        usage(stdout);
        return cli_finish("help", 0);
    }
    if (strcmp(argv[1], "--version") == 0) {
        printf("ckptscope %s\n", CKS_VERSION);
        return cli_finish("version", 0);
    }
    /* a checkpoint file that shrinks while mapped must fail that checkpoint, not the run */
    if (cks_map_guard_install() != 0)
        return cli_fail("main", CKS_EIO);
    for (size_t i = 0; i < NCOMMANDS; i++) {
        if (strcmp(argv[1], commands[i].name) == 0)
            return commands[i].fn(argc - 1, argv + 1);
    }
    fprintf(stderr, "ckptscope: '%s' is not a command. See 'ckptscope --help'.\n", argv[1]);
    return CLI_USAGE;
}
