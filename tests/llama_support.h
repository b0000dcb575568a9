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

/* The PyTorch reference output of case name: tests/data/llama/<name>.json, which
 * tools/make_llama_refs.sh made by running `tools/llama_ref.py ARGS` on this test's model
 * and inputs (files under the temporary folder tmp). The file records a digest of those
 * inputs (ARGS without tmp, and the content of every file ARGS names); the test fails when
 * the file is missing or was made from other inputs. With CKS_LLAMA_REF_RECORD=DIR set
 * (that script) the reference is computed now instead, with Debian's python and torch (a
 * failure without them), and written with its digest to DIR/<name>.json. */
json_t *lfx_reference(const char *tmp, const char *name, const char *args);

#endif
