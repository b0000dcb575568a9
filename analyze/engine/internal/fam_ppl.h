/* The ppl family's parts that the kl family (fam_kl.c), which extends its forward pass,
 * shares with it. Private to the engine. */
#ifndef CKS_ENGINE_FAM_PPL_H
#define CKS_ENGINE_FAM_PPL_H

#include "docset.h"
#include "family.h"
#include "ppl.h"

/* For checkpoint ck (display: "SOURCE@name"): its config.json, the scan's protocol
 * (--ctx, --stride, BOS, --precision; else ck's defaults) and the --eval sets tokenised by
 * ck's tokenizer into sets[o->neval] (release each, also on failure). */
int cks_fam_ppl_setup(const cks_family_ckpt *in, const cks_ckpt *ck, const char *display,
                      cks_config *cfg, cks_ppl_options *po, cks_docset *sets);

/* The values of the set of file (NaN when res is NULL) as items: /eval/<set>/nll, ppl,
 * bpb, tokens, top1_acc and the token_nll row (adopted from res). */
int cks_fam_ppl_emit(const char *file, cks_ppl_result *res, cks_items *out);

/* The progress line of the current checkpoint, doing what. */
void cks_fam_ppl_progress(const cks_family_ckpt *in, const char *what);

#endif
