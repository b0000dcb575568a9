/* cks-fixture: writes a tiny LLaMA-shaped checkpoint source (see fixture.h).
 * Used by CLI tests and, until the demo run exists, by the README's first command. */
#include "fixture.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char usage_text[] =
    "usage: cks-fixture OUTDIR [options]\n"
    "  --layout git|hf|folder   source layout (default git)\n"
    "  --checkpoints N          number of checkpoints ckpt_000... (default 3)\n"
    "  --step-every S           step spacing (default 100)\n"
    "  --shards K               safetensors shards with an index json (default 1)\n"
    "  --dtype f32|f16|bf16|f64 stored dtype (default f32)\n"
    "  --lfs                    git: store weights as Git LFS pointers\n"
    "  --lfs-missing-from I     git+lfs: omit LFS objects of checkpoints >= I\n"
    "  --remote                 git: branches as refs/remotes/origin/*\n"
    "  --bare                   git: a bare repository\n"
    "  --seed S                 random seed (default 1)\n"
    "  --hidden H --intermediate F --layers L --heads A --kv-heads K --vocab V\n"
    "  --max-pos P --rope-theta T --eps E --tied\n"
    "  --std S                  std of the random weights (default 0.02)\n";

static long num(const char *s)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (!*s || *end || v < 0) {
        fprintf(stderr, "cks-fixture: bad number '%s'\n", s);
        exit(2);
    }
    return v;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {{"layout", 1, 0, 'L'},
                                         {"checkpoints", 1, 0, 'n'},
                                         {"step-every", 1, 0, 'S'},
                                         {"shards", 1, 0, 's'},
                                         {"dtype", 1, 0, 'd'},
                                         {"lfs", 0, 0, 'f'},
                                         {"lfs-missing-from", 1, 0, 'm'},
                                         {"remote", 0, 0, 'r'},
                                         {"bare", 0, 0, 'b'},
                                         {"seed", 1, 0, 'x'},
                                         {"hidden", 1, 0, 'H'},
                                         {"intermediate", 1, 0, 'I'},
                                         {"layers", 1, 0, 'l'},
                                         {"heads", 1, 0, 'a'},
                                         {"kv-heads", 1, 0, 'k'},
                                         {"vocab", 1, 0, 'v'},
                                         {"max-pos", 1, 0, 'p'},
                                         {"rope-theta", 1, 0, 't'},
                                         {"eps", 1, 0, 'e'},
                                         {"tied", 0, 0, 'T'},
                                         {"help", 0, 0, 'h'},
                                         {"std", 1, 0, 'D'},
                                         {0, 0, 0, 0}};
    cks_fx_spec s;
    int c;
    cks_fx_spec_default(&s, NULL);
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'L':
            s.layout = strcmp(optarg, "hf") == 0       ? CKS_FX_HF
                       : strcmp(optarg, "folder") == 0 ? CKS_FX_FOLDER
                                                       : CKS_FX_GIT;
            break;
        case 'n':
            s.nckpt = (int)num(optarg);
            break;
        case 'S':
            s.step_every = num(optarg);
            break;
        case 's':
            s.shards = (int)num(optarg);
            break;
        case 'd':
            s.model.dtype = strcmp(optarg, "bf16") == 0  ? CKS_DT_BF16
                            : strcmp(optarg, "f16") == 0 ? CKS_DT_F16
                            : strcmp(optarg, "f64") == 0 ? CKS_DT_F64
                                                         : CKS_DT_F32;
            break;
        case 'f':
            s.lfs = 1;
            break;
        case 'm':
            s.lfs_missing_from = (int)num(optarg);
            break;
        case 'r':
            s.remote = 1;
            break;
        case 'b':
            s.bare = 1;
            break;
        case 'x':
            s.seed = (uint64_t)num(optarg);
            break;
        case 'H':
            s.model.hidden = (int)num(optarg);
            break;
        case 'I':
            s.model.intermediate = (int)num(optarg);
            break;
        case 'l':
            s.model.layers = (int)num(optarg);
            break;
        case 'a':
            s.model.heads = (int)num(optarg);
            break;
        case 'k':
            s.model.kv_heads = (int)num(optarg);
            break;
        case 'v':
            s.model.vocab = (int)num(optarg);
            break;
        case 'p':
            s.model.max_pos = (int)num(optarg);
            break;
        case 't':
            s.model.rope_theta = strtod(optarg, NULL);
            break;
        case 'e':
            s.model.eps = strtod(optarg, NULL);
            break;
        case 'T':
            s.model.tied = 1;
            break;
        case 'D':
            s.model.std = strtod(optarg, NULL);
            break;
        case 'h':
            fputs(usage_text, stdout);
            return 0;
        default:
            fputs(usage_text, stderr);
            return 2;
        }
    }
    if (optind != argc - 1) {
        fputs(usage_text, stderr);
        return 2;
    }
    s.dir = argv[optind];
    return cks_fx_write(&s) == 0 ? 0 : 1;
}
