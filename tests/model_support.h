/* Helpers shared by the forward-pass and perplexity tests: a random tiny model written by
 * the fixture library and opened as a checkpoint, and the golden file of the float64
 * PyTorch reference (tools/family_ref.py, tools/family_ref.json): its cases name the
 * fixture by cks-fixture's arguments and carry their token sets, runs and results. */
#ifndef CKS_TEST_MODEL_SUPPORT_H
#define CKS_TEST_MODEL_SUPPORT_H

#include "docset.h"
#include "fixture.h"
#include "source.h"
#include "weights.h"

#include <jansson.h>

typedef struct {
    char *tmp;        /* temporary folder (removed by lfx_close) */
    char ckdir[4096]; /* the checkpoint folder */
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

/* The golden file (fails the test when it cannot be read: it is committed). Free with
 * json_decref. */
json_t *golden_load(void);
/* The case of that name (borrowed), failing the test when absent. */
json_t *golden_case(json_t *golden, const char *name);
/* Writes the case's fixture (its "fixture" arguments) and opens its checkpoint. */
void golden_open(lfx *f, json_t *c);
/* Writes the case's token sets under f->tmp as the reference read them and loads them
 * into sets[] (release each); returns their count. */
int golden_sets(const lfx *f, json_t *c, cks_docset *sets, int cap);

/* json number as double (integers too). */
double jnum(json_t *j);

#endif
