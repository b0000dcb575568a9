/* One forward pass's part in a function-space comparison (DESIGN §3): a consumer of the
 * lm_head's logits blocks (ppl.h's cks_ppl_sink) that
 *   - compares them, position by position, with up to CKS_KLPASS_MAX_BASES kept base
 *     checkpoints (klkeep.h stores filled by earlier passes over the same sets with the
 *     same protocol), or with themselves (a base given as NULL: the checkpoint is its own
 *     base, e.g. the reference's own row), into cks_klpos results in the sink's numbering;
 *   - and/or keeps them (cks_klkeep_put) for a later pass; the store kept into may also be
 *     a base: each block is compared before it is overwritten, so one store carries a
 *     serial scan from checkpoint to checkpoint.
 * Memory: the stores, plus one cks_klpos per position and base, plus one klrow state per
 * row of a head batch and base. */
#ifndef CKS_KLPASS_H
#define CKS_KLPASS_H

#include "klkeep.h"
#include "klsum.h"
#include "ppl.h"

#include <stdint.h>

#define CKS_KLPASS_MAX_BASES 2

typedef struct cks_klpass cks_klpass;

/* A consumer for positions positions of vocab columns. keep (may be NULL) receives the
 * logits; bases[0..nbases) are compared against (NULL entries: the pass itself). Stores
 * must have positions rows of vocab floats (CKS_EINVAL otherwise). Errors: no memory. */
int cks_klpass_new(cks_klpass **out, int64_t positions, int64_t vocab, cks_klkeep *keep,
                   cks_klkeep *const *bases, int nbases, int nthreads);
void cks_klpass_free(cks_klpass *p);

/* The sink to put into cks_ppl_options (valid while p lives). */
cks_ppl_sink cks_klpass_sink(cks_klpass *p);

/* Base b's results for every position (after the pass). */
const cks_klpos *cks_klpass_result(const cks_klpass *p, int b);

/* Base b's summary of the set whose positions start at pos0 of the numbering, with the
 * set's counts r (tokens, documents) from the pass. */
int cks_klpass_summary(const cks_klpass *p, int b, int64_t pos0, const cks_ppl_result *r,
                       cks_klsummary *out);

#endif
