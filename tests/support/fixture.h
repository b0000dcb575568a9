/* Fixture generator: tiny checkpoint sources of every model family (DESIGN §2: llama,
 * mistral, qwen2, gpt_neox, olmo, olmo2, with Hugging Face's tensor names and config.json
 * fields written out here, not taken from ckptscope's family table) in every layout
 * ckptscope reads (git, hub cache, folder; safetensors or torch.save .bin, sharded or
 * not), deterministic from a seed. Used by the tests and by the `cks-fixture` tool.
 *
 * Weights of checkpoint k are W_k = W_0 + t_k * D for every tensor, with W_0 and D
 * fixed pseudo-random (seeded by the seed and the tensor name) and t_k = step_k / 1000:
 * a straight line through weight space, so drift between two checkpoints has the closed
 * form |t_a - t_b| * ||D||. Norm weights start near 1. Values are rounded to the stored
 * dtype; cks_fx_tensor_values() gives them (as f64 of the stored value) so tests can
 * compare with an independent computation. */
#ifndef CKS_TEST_FIXTURE_H
#define CKS_TEST_FIXTURE_H

#include "dtype.h"

#include <stddef.h>
#include <stdint.h>

typedef enum { CKS_FX_GIT = 0, CKS_FX_HF, CKS_FX_FOLDER } cks_fx_layout;

typedef struct {
    int hidden, intermediate, layers, heads, kv_heads, vocab, max_pos;
    double rope_theta, eps;
    int tied;        /* no lm_head.weight; tie_word_embeddings true */
    cks_dtype dtype; /* stored dtype of every tensor */
    double std;      /* std of W_0 for non-norm tensors; 0 means 0.02. Larger values (0.3)
                        give peaked attention and logits, which forward-pass tests need */
    /* the family (model_type; NULL or "" is llama) and its fields; a field left at its
       zero value is written as the family's real configs have it */
    const char *family;
    double rotary_pct;      /* gpt_neox: rotary_pct (cks_fx_spec_default: 0.25) */
    int sequential;         /* gpt_neox: use_parallel_residual false */
    int no_attention_bias;  /* gpt_neox: attention_bias false (no qkv/dense biases) */
    int buffers;            /* gpt_neox: the buffers older Pythia files hold */
    double clip_qkv;        /* olmo: clip_qkv (0: null) */
    int sliding_window;     /* mistral, qwen2: sliding_window (0: null for mistral, 4096
                               for qwen2) */
    int use_sliding_window; /* qwen2 */
    int max_window_layers;  /* qwen2 (0: 28) */
    int head_dim;           /* head_dim written to config.json (0: not written) */
} cks_fx_model;

typedef struct {
    const char *dir; /* created; must not exist */
    cks_fx_layout layout;
    int nckpt;            /* checkpoints ckpt_000 ... */
    int64_t step_every;   /* step of checkpoint k is k * step_every (default 100) */
    int shards;           /* 1: model.safetensors; >1: shards + model.safetensors.index.json */
    int bin;              /* pytorch_model.bin (torch.save's zip format) instead of safetensors;
                             shards: pytorch_model-0000k-of-0000n.bin + the index json */
    int lfs;              /* git: weight files stored as Git LFS pointers */
    int lfs_missing_from; /* git+lfs: LFS objects of checkpoints >= this are not written;
                             -1 (or 0 with lfs off) for none */
    int remote;           /* git: branches under refs/remotes/origin/ instead of refs/heads/ */
    int bare;             /* git: a bare repository */
    uint64_t seed;
    cks_fx_model model;
} cks_fx_spec;

/* Defaults: git, 3 checkpoints every 100 steps, one shard, no LFS, seed 1, model
 * hidden 64, intermediate 160, 2 layers, 4 heads, 2 kv heads, vocab 256, max_pos 128,
 * theta 10000, eps 1e-5, untied, F32. */
void cks_fx_spec_default(cks_fx_spec *s, const char *dir);

/* Writes the whole source. Returns 0, or -1 with a message on stderr (test code). */
int cks_fx_write(const cks_fx_spec *s);

/* Reads cks-fixture's options (cks-fixture --help) into s (defaults first); OUTDIR, the
 * one non-option argument, becomes s->dir. Returns 0, or -1 with a message on stderr.
 * argv[0] is the program name; getopt state is reset. */
int cks_fx_spec_from_args(cks_fx_spec *s, int argc, char **argv);
extern const char cks_fx_usage[];

/* How a tensor's values are made. */
typedef enum {
    CKS_FX_RANDOM = 0, /* W_0 + t D (see the top) */
    CKS_FX_TRIL,       /* a causal mask of ones (GPT-NeoX's attention.bias buffer) */
    CKS_FX_CONST,      /* every element `value` (attention.masked_bias) */
    CKS_FX_INV_FREQ    /* 1 / 10000^(2i/(2n)) for i < n (rotary_emb.inv_freq) */
} cks_fx_fill;

/* Names and shapes of the model's tensors, in a fixed order. */
typedef struct {
    char name[96];
    int ndim;
    int64_t shape[4];
    cks_fx_fill fill;
    cks_dtype dtype; /* CKS_FX_RANDOM: the model's dtype; buffers their own */
    double value;
} cks_fx_tensor;
/* Fills up to cap entries and returns the count. */
int cks_fx_tensors(const cks_fx_model *m, cks_fx_tensor *out, int cap);

/* Values of the random tensor `name` at checkpoint k as stored (after rounding to the
 * dtype), widened to f64. n must be the tensor's element count. */
void cks_fx_tensor_values(const cks_fx_spec *s, const char *name, int64_t n, int k, double *out);

/* Writes config.json text for the model into a new heap string. */
char *cks_fx_config_json(const cks_fx_model *m);

/* A safetensors file in memory: tensors given by name, dtype, shape and raw bytes. */
typedef struct {
    const char *name;
    cks_dtype dtype;
    int ndim;
    int64_t shape[8];
    const void *data;
    size_t nbytes;
} cks_fx_st_tensor;
/* Returns a heap buffer (free it) and its size; NULL on failure. */
unsigned char *cks_fx_safetensors(const cks_fx_st_tensor *t, int n, size_t *size);
/* The same tensors as a torch.save .bin (zip, pickled OrderedDict) whose entries live
 * under archive/ (torch uses the file's stem). */
unsigned char *cks_fx_torch_bin(const cks_fx_st_tensor *t, int n, const char *archive,
                                size_t *size);

/* ---- git helpers ---- */
typedef struct {
    const char *path;
    const void *data;
    size_t len;
} cks_fx_file;
/* Commits files (a fresh tree) as a new root commit and points ref (e.g.
 * "refs/heads/ckpt_000") at it; creates the repository when missing. With lfs_paths
 * (NULL-terminated list of glob patterns), matching files are stored as LFS pointers and
 * their objects written under <gitdir>/lfs/objects unless lfs_skip_objects. Writes the
 * commit id (40 hex + NUL) into commit_hex when not NULL. */
int cks_fx_git_commit(const char *repo_dir, int bare, const char *ref, const cks_fx_file *files,
                      int nfiles, const char *const *lfs_paths, int lfs_skip_objects,
                      char *commit_hex);

/* The text of an LFS pointer for data (oid = sha256(data)) into buf[cap]. */
int cks_fx_lfs_pointer(const void *data, size_t len, char *buf, size_t cap, char oid[65]);

#endif
