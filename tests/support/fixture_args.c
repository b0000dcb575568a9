/* cks-fixture's command line as a library call, so tests can build the fixture a golden
 * file names by its arguments (tools/family_ref.py records them). */
#include "fixture.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char cks_fx_usage[] =
    "usage: cks-fixture OUTDIR [options]\n"
    "  --layout git|hf|folder   source layout (default git)\n"
    "  --checkpoints N          number of checkpoints ckpt_000... (default 3)\n"
    "  --step-every S           step spacing (default 100)\n"
    "  --shards K               weight files with an index json (default 1)\n"
    "  --bin                    pytorch_model*.bin (torch.save zip) instead of safetensors\n"
    "  --dtype f32|f16|bf16|f64 stored dtype (default f32)\n"
    "  --lfs                    git: store weights as Git LFS pointers\n"
    "  --lfs-missing-from I     git+lfs: omit LFS objects of checkpoints >= I\n"
    "  --remote                 git: branches as refs/remotes/origin/*\n"
    "  --bare                   git: a bare repository\n"
    "  --seed S                 random seed (default 1)\n"
    "  --hidden H --intermediate F --layers L --heads A --kv-heads K --vocab V\n"
    "  --max-pos P --rope-theta T --eps E --tied --head-dim D\n"
    "  --std S                  std of the random weights (default 0.02)\n"
    "  --family F               llama (default), mistral, qwen2, gpt_neox, olmo, olmo2\n"
    "  --rotary-pct R           gpt_neox: rotary_pct (default 0.25)\n"
    "  --sequential             gpt_neox: use_parallel_residual false\n"
    "  --no-attention-bias      gpt_neox: attention_bias false\n"
    "  --buffers                gpt_neox: the buffers of older Pythia files\n"
    "  --clip-qkv C             olmo: clip_qkv\n"
    "  --sliding-window W       mistral, qwen2: sliding_window\n"
    "  --use-sliding-window     qwen2: use_sliding_window true\n"
    "  --max-window-layers N    qwen2: max_window_layers (default 28)\n";

static int num(const char *s, long *out)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (!*s || *end || v < 0) {
        fprintf(stderr, "cks-fixture: bad number '%s'\n", s);
        return -1;
    }
    *out = v;
    return 0;
}

static int real(const char *s, double *out)
{
    char *end;
    double v = strtod(s, &end);
    if (!*s || *end) {
        fprintf(stderr, "cks-fixture: bad number '%s'\n", s);
        return -1;
    }
    *out = v;
    return 0;
}

static cks_dtype dtype_of(const char *s)
{
    return strcmp(s, "bf16") == 0  ? CKS_DT_BF16
           : strcmp(s, "f16") == 0 ? CKS_DT_F16
           : strcmp(s, "f64") == 0 ? CKS_DT_F64
                                   : CKS_DT_F32;
}

/* The options that take an integer: where each goes. */
static int *int_target(cks_fx_spec *s, int c)
{
    switch (c) {
    case 'n':
        return &s->nckpt;
    case 's':
        return &s->shards;
    case 'm':
        return &s->lfs_missing_from;
    case 'H':
        return &s->model.hidden;
    case 'I':
        return &s->model.intermediate;
    case 'l':
        return &s->model.layers;
    case 'a':
        return &s->model.heads;
    case 'k':
        return &s->model.kv_heads;
    case 'v':
        return &s->model.vocab;
    case 'p':
        return &s->model.max_pos;
    case 'W':
        return &s->model.sliding_window;
    case 'M':
        return &s->model.max_window_layers;
    case 'h':
        return &s->model.head_dim;
    default:
        return NULL;
    }
}

static double *real_target(cks_fx_spec *s, int c)
{
    switch (c) {
    case 't':
        return &s->model.rope_theta;
    case 'e':
        return &s->model.eps;
    case 'D':
        return &s->model.std;
    case 'R':
        return &s->model.rotary_pct;
    case 'C':
        return &s->model.clip_qkv;
    default:
        return NULL;
    }
}

static int *flag_target(cks_fx_spec *s, int c)
{
    switch (c) {
    case 'f':
        return &s->lfs;
    case 'r':
        return &s->remote;
    case 'b':
        return &s->bare;
    case 'T':
        return &s->model.tied;
    case 'B':
        return &s->bin;
    case 'Q':
        return &s->model.sequential;
    case 'N':
        return &s->model.no_attention_bias;
    case 'U':
        return &s->model.buffers;
    case 'u':
        return &s->model.use_sliding_window;
    default:
        return NULL;
    }
}

static int one(cks_fx_spec *s, int c, const char *arg)
{
    long v;
    int *ip = int_target(s, c), *fp = flag_target(s, c);
    double *rp = real_target(s, c);
    if (ip) {
        if (num(arg, &v) != 0)
            return -1;
        *ip = (int)v;
    } else if (rp) {
        return real(arg, rp);
    } else if (fp) {
        *fp = 1;
    } else if (c == 'L') {
        s->layout = strcmp(arg, "hf") == 0       ? CKS_FX_HF
                    : strcmp(arg, "folder") == 0 ? CKS_FX_FOLDER
                                                 : CKS_FX_GIT;
    } else if (c == 'S' || c == 'x') {
        if (num(arg, &v) != 0)
            return -1;
        if (c == 'S')
            s->step_every = v;
        else
            s->seed = (uint64_t)v;
    } else if (c == 'd') {
        s->model.dtype = dtype_of(arg);
    } else if (c == 'F') {
        s->model.family = arg;
    } else {
        fputs(cks_fx_usage, stderr);
        return -1;
    }
    return 0;
}

int cks_fx_spec_from_args(cks_fx_spec *s, int argc, char **argv)
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
                                         {"std", 1, 0, 'D'},
                                         {"bin", 0, 0, 'B'},
                                         {"family", 1, 0, 'F'},
                                         {"rotary-pct", 1, 0, 'R'},
                                         {"sequential", 0, 0, 'Q'},
                                         {"no-attention-bias", 0, 0, 'N'},
                                         {"buffers", 0, 0, 'U'},
                                         {"clip-qkv", 1, 0, 'C'},
                                         {"sliding-window", 1, 0, 'W'},
                                         {"use-sliding-window", 0, 0, 'u'},
                                         {"max-window-layers", 1, 0, 'M'},
                                         {"head-dim", 1, 0, 'h'},
                                         {0, 0, 0, 0}};
    int c;
    cks_fx_spec_default(s, NULL);
    optind = 0;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1)
        if (c == '?' || one(s, c, optarg) != 0)
            return -1;
    if (optind != argc - 1) {
        fputs(cks_fx_usage, stderr);
        return -1;
    }
    s->dir = argv[optind];
    return 0;
}
