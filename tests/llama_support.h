/* Helpers shared by the forward-pass and perplexity tests: a random tiny LLaMA written by
 * the fixture library and opened as a checkpoint, and the PyTorch reference
 * (tools/llama_ref.py) run on the same files. */
#ifndef CKS_TEST_LLAMA_SUPPORT_H
#define CKS_TEST_LLAMA_SUPPORT_H

#include "fixture.h"
#include "source.h"
#include "weights.h"

#include <jansson.h>

typedef struct {
    char *tmp;        /* temporary folder (removed by lfx_close) */
    char ckdir[4096]; /* the checkpoint folder (for the reference) */
    cks_source *src;
    cks_ckpt *ck;
    cks_config cfg;
    cks_weights *w;
} lfx;

/* The test model: GQA (4 heads, 2 kv heads), rope_theta 50000, eps 1e-3 (large enough to
 * matter: mean x^2 is ~0.1 here), weights with std 0.3 so attention and logits are peaked. */
void lfx_model_default(cks_fx_model *m);

/* Writes the model (folder layout, one checkpoint) and opens it. */
void lfx_open(lfx *f, const cks_fx_model *m, const char *tag);
void lfx_close(lfx *f);

/* Runs `python3 tools/llama_ref.py ARGS --out FILE` and returns the parsed output, or NULL
 * when the Debian python or torch is unavailable (the caller skips). Fails the test when
 * the script fails. */
json_t *lfx_reference(const char *args);

#endif
