/* ckptscope evals import: lm-eval-harness result files (v0.3 or v0.4 layout) into the
 * run file's /evals series, one transaction for all files (reports/evals.h). */
#include "cli.h"
#include "cmd.h"
#include "error.h"
#include "evals.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>

static const char usage_text[] =
    "usage: ckptscope evals import RUN.h5 FILE... [--ckpt NAME] [--quiet]\n"
    "\n"
    "Import lm-evaluation-harness result files into the run file RUN.h5, as the float64\n"
    "series /evals/<task>/<metric> and /evals/<task>/<metric>_stderr (one value per\n"
    "checkpoint, NaN where a checkpoint has none) and /evals/<task>/n_samples (v0.4).\n"
    "Both layouts are read: v0.3 (results.<task>.acc, acc_stderr) and v0.4\n"
    "(results.<task>.\"acc,none\", \"acc_stderr,none\", groups, higher_is_better,\n"
    "n-samples). Tasks and metrics new to the file become new series.\n"
    "\n"
    "  --ckpt NAME   the checkpoint every FILE belongs to; without it, each file says:\n"
    "                revision=<NAME> in config.model_args, else the last folder of\n"
    "                pretrained=<path> (when it holds a digit, e.g. .../ckpt_349), else\n"
    "                the file name without .json (e.g. 12b_step143000)\n"
    "  --quiet       no line per file\n"
    "  -h, --help    this help\n"
    "\n"
    "RUN.h5 made by 'scan' must already hold each checkpoint (a result for a checkpoint it\n"
    "does not hold is an error). When RUN.h5 does not exist it is created holding only\n"
    "evals (source: the first file's folder; model: pretrained= when model_args also has\n"
    "revision=), and such a file gains a row per new checkpoint, its step the last run of\n"
    "digits in the name. All files are imported or none: any error leaves RUN.h5 as it was.\n"
    "'ckptscope scan' imports the eval_*.json files found on each checkpoint by itself.\n"
    "\n"
    "Exit status: 0 imported, 2 bad usage or input.\n";

int cmd_evals(int argc, char **argv)
{
    static const struct option opts[] = {{"ckpt", required_argument, NULL, 'c'},
                                         {"quiet", no_argument, NULL, 'q'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    const char *ckpt = NULL;
    int c, quiet = 0, created = 0;
    if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        fputs(usage_text, stdout);
        return cli_finish("evals", 0);
    }
    if (argc < 2 || strcmp(argv[1], "import") != 0)
        return cli_usage_error("evals", "expected the action 'import'");
    optind = 0;
    while ((c = getopt_long(argc - 1, argv + 1, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'c':
            ckpt = optarg;
            break;
        case 'q':
            quiet = 1;
            break;
        case 'h':
            fputs(usage_text, stdout);
            return cli_finish("evals", 0);
        default:
            return cli_usage_error("evals", "unknown option");
        }
    }
    int first = optind + 1; /* argv index of RUN.h5 */
    if (argc - first < 2)
        return cli_usage_error("evals", "expected RUN.h5 and at least one result FILE");
    size_t nfiles = (size_t)(argc - first - 1);
    const char *const *files = (const char *const *)argv + first + 1;
    cks_evals_imported *out = calloc(nfiles, sizeof *out);
    if (!out)
        return cli_fail("evals", cks_error_set(CKS_ENOMEM, "out of memory"));
    int err = cks_evals_import(argv[first], files, nfiles, ckpt, out, &created);
    if (err) {
        free(out);
        return cli_fail("evals", err);
    }
    for (size_t i = 0; i < nfiles && !quiet; i++)
        printf("%s: %zu scores (lm-eval v0.%d) -> %s, row %zu%s\n", files[i], out[i].nvalues,
               out[i].version, out[i].ckpt, out[i].row, out[i].new_row ? " (new)" : "");
    if (!quiet)
        printf("%s: %s, %zu file%s imported\n", argv[first],
               created ? "created (evals only)" : "updated", nfiles, nfiles == 1 ? "" : "s");
    free(out);
    return cli_finish("evals", 0);
}
