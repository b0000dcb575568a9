/* The engine: computes one planned task (plan.h) into an outcome, without the run file
 * (MPI workers call it; record.h writes outcomes). At most three checkpoints are mapped
 * at once (the current one, its previous one and the reference), each tensor's pages are
 * dropped once read, and a per-checkpoint family's carry (family.h) stays with its mapped
 * checkpoint for the next task. Private to the engine library.
 *
 * Whether a checkpoint failed is decided by one rule, whoever reads it (as the current
 * checkpoint, as the previous one or as the reference): its files are missing ->
 * incomplete; its weights do not open, or a read of any of its tensors faults -> failed
 * (every tensor of each mapped checkpoint is read through, whichever families ran). An
 * outcome reports what reading its previous checkpoint and reference showed; when one of
 * them failed the outcome is stale (nothing to record) and the planner, told so, plans
 * the task again against the right neighbours. */
#ifndef CKS_ENGINE_ENGINE_H
#define CKS_ENGINE_ENGINE_H

#include "cfg.h"
#include "plan.h"
#include "selection.h"
#include "values.h"

typedef struct cks_engine cks_engine;

typedef struct {
    cks_task task;
    cks_scan_status status;          /* of task.pos (not stale) */
    int stale;                       /* the previous checkpoint or the reference failed */
    cks_avail prev_avail, ref_avail; /* what reading them showed; UNKNOWN: not read */
    char message[1200];              /* incomplete: what is missing; failed: the error */
    char other[1200];                /* stale: the previous checkpoint's or reference's error */
    cks_values v;                    /* complete only */
    double bytes, seconds;
    int rank; /* MPI rank that computed it; -1 in one process */
} cks_outcome;

int cks_engine_new(cks_engine **out, const cks_scan_cfg *cfg, const cks_selection *sel);
void cks_engine_free(cks_engine *e);

/* Opens the weights of position pos without reading them: *out is OPENS, INCOMPLETE or
 * FAILED, with the reason in msg[cap] for the last two. Of a source that fetches (the
 * hub), only the file list is read: opening the weights would download the checkpoint,
 * which only a process that analyses it or reads it as a previous checkpoint or the
 * reference should do. OPENS is provisional either way: reading the checkpoint decides. */
void cks_engine_probe(cks_engine *e, size_t pos, cks_avail *out, char *msg, size_t cap);
/* Reads every tensor of position pos: *out is COMPLETE, INCOMPLETE or FAILED. */
void cks_engine_verify(cks_engine *e, size_t pos, cks_avail *out, char *msg, size_t cap);

/* Computes task t. Returns non-zero only for what stops the scan (out of memory, an
 * interrupt); a checkpoint that cannot be read is an outcome. Release with
 * cks_outcome_release. */
int cks_engine_compute(cks_engine *e, const cks_task *t, cks_outcome *out);
void cks_outcome_release(cks_outcome *o);

/* The look ahead of a process that computes, before task t, for a source that fetches
 * checkpoints (the hub, DESIGN §2; nothing happens for the others). in is the walk's plan
 * input, or NULL where only t is known (an MPI worker). With --evict, first deletes the
 * downloaded blobs that no checkpoint still needed uses (cks_plan_needed over the plan
 * made with guess: t's previous checkpoint and reference, t and every later own task with
 * its previous one); then waits until t's checkpoint, previous checkpoint and reference
 * are in the cache; then starts fetching what the next own task adds. The disk so holds
 * about four checkpoints: the reference, t's previous one, t and the next.
 * A fetch that failed is not reported here: mapping the file returns the same error, so
 * the one rule above decides. Returns non-zero only for an interrupt (CKS_EINTR). */
int cks_engine_ahead(cks_engine *e, const cks_plan_input *in, const cks_task *t);

#endif
