/* lm-eval-harness scores in the run file (DESIGN §4, §7).
 *
 * Layout, one float64 [N] series per score, row i = row i of /checkpoints, NaN where a
 * checkpoint has no value:
 *   /evals/<task>/<metric>          the score; attrs description, unit (when known) and,
 *                                   from v0.4 files, higher_is_better ("true"/"false")
 *   /evals/<task>/<metric>_stderr   its standard error, when a file gave one
 *   /evals/<task>/n_samples         documents evaluated (v0.4 "n-samples" effective)
 * Metric names keep a non-default filter ("exact_match,strict-match"); the reserved name
 * n_samples is refused as a metric. Tasks and metrics that appear later are new series
 * (NaN in earlier rows); checkpoints that appear later extend every series.
 *
 * A run file made by `evals import` alone (no weights scanned) carries the root attribute
 * evals_only = "true" (and model = the pretrained= model id when the files name one); only
 * such a file gains checkpoint rows on import, named as the files say, with the step of
 * the name (its last run of digits). Any other run file must already hold the checkpoint. */
#ifndef CKS_EVALS_H
#define CKS_EVALS_H

#include "lmeval.h"
#include "store.h"

#include <stddef.h>

#define CKS_EVALS_GROUP     "/evals"
#define CKS_EVALS_NSAMPLES  "n_samples"
#define CKS_EVALS_MAX_FILES 100000 /* result files in one import */

/* Checks that the run file can take every score of r (CKS_EFORMAT naming display and the
 * score otherwise); cks_evals_write checks it too, before it writes anything. */
int cks_evals_check(const cks_eval_result *r, const char *display);

/* Writes every score of r into row row (in an open transaction). display names the file
 * in messages. *nvalues (may be NULL) receives the number of scores written. */
int cks_evals_write(cks_store *s, size_t row, const cks_eval_result *r, const char *display,
                    size_t *nvalues);

/* Outcome of one imported file. */
typedef struct {
    char ckpt[CKS_MAX_EVAL_NAME + 1]; /* the checkpoint it went to */
    size_t row;
    int new_row;    /* the row was added by this import (evals-only file) */
    size_t nvalues; /* scores written */
    int version;    /* lm-eval layout: 3 or 4 */
} cks_evals_imported;

/* Imports result files into the run file at path, all in one transaction (all or
 * nothing): each file's checkpoint is ckpt when not NULL, else cks_lmeval_checkpoint().
 * A missing run file is created holding only evals (source = the first file's folder,
 * config empty); it is removed again when the import fails. Every file is read and parsed
 * before the run file is touched. out[nfiles] receives what happened per file; *created
 * (may be NULL) whether the run file is new.
 * Errors: a malformed file (CKS_EFORMAT naming it); a checkpoint not in a scanned run file
 * (CKS_ENOTFOUND naming it, the file and the checkpoints there); a file for another model
 * than an evals-only run file holds (CKS_EINVAL). */
int cks_evals_import(const char *path, const char *const *files, size_t nfiles, const char *ckpt,
                     cks_evals_imported *out, int *created);

#endif
