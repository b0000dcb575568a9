/* Recording: an outcome becomes its checkpoint's row of the run file in one crash-atomic
 * store transaction (reports/store.h), with the lm-eval files found on the checkpoint
 * (record_evals.c) and, in a part file, the marks merge needs (reports/part.h). Only the
 * process that owns the run file records (rank 0 under MPI). Private to the engine. */
#ifndef CKS_ENGINE_RECORD_H
#define CKS_ENGINE_RECORD_H

#include "engine.h"
#include "store.h"

typedef struct {
    cks_store *store;
    const cks_scan_cfg *cfg;
    const cks_selection *sel;
    int part;       /* write a part file's marks */
    char *part_ref; /* parts: the part_ref attribute the file holds (owned) */
    cks_scan_summary *sum;
} cks_recorder;

/* Writes outcome o (not stale) as its checkpoint's row, then counts and reports it.
 * Non-zero when the run file cannot be written. */
int cks_record(cks_recorder *r, const cks_outcome *o);
/* Counts and reports a task whose row stands (skip) or is left to the extended run. */
void cks_record_skip(cks_recorder *r, const cks_task *t);
/* Parts: part_ref becomes the reference at position ref (CKS_PLAN_NONE: none), in a
 * transaction of its own when it changed. */
int cks_record_part_ref(cks_recorder *r, size_t ref);
void cks_recorder_release(cks_recorder *r);

/* Imports every top-level eval_*.json of checkpoint idx of src into row of s (a
 * transaction is open). A file that cannot be read or parsed is a warning (hooks) and is
 * skipped; only run-file errors are returned. */
int cks_record_evals(cks_store *s, const cks_source *src, size_t idx, size_t row,
                     const cks_scan_hooks *h);

#endif
