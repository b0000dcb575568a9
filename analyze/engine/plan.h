/* The scan planner: which checkpoint to analyse, against which previous checkpoint and
 * which reference, and which to skip, as one pure function of plain data (no I/O). The
 * serial scan, the shards and the MPI coordinator all take their tasks from it, and all
 * of them re-plan after learning something new about a checkpoint (that its weights
 * open, that it is incomplete, that it failed), so that they cannot disagree.
 *
 * The rules (DESIGN §3, §4, §10):
 * - A checkpoint is usable as the previous checkpoint or the reference unless it is
 *   known incomplete or failed. A checkpoint to be analysed whose weights were never
 *   opened is not known yet: the plan stops there and asks for it (need), because
 *   whether it is usable decides the next checkpoint's previous one. One that is skipped
 *   or reused is taken as complete, as its row says, unless found otherwise since.
 * - The previous checkpoint of position p is the last usable position before it (none
 *   when no family needs one).
 * - The reference: none without a family that needs it; a fixed one (--ref, or the one
 *   the run file already measures against); else the first usable position (auto).
 *   A fixed reference that is incomplete or failed leaves no plan (ref_failed).
 * - Skip (the output file's row stands): it is complete there with the checkpoint's
 *   current commit, the checkpoint is not known broken, the reference's row has the same
 *   commit, and the row was measured against the same previous checkpoint, of the same
 *   commit. Parts record that previous checkpoint (/part/prev); a whole run file does
 *   not, and it is then the last checkpoint before p that the file holds complete.
 * - Reuse (--extend: the base run's row stands, the checkpoint is left out of the part):
 *   the same test against the base run.
 * - Otherwise run. With --shard I/N a task is the shard's own when p % N == I; the plan
 *   covers every position, since the others' availability decides the shard's previous
 *   checkpoints.
 * - With guess set, nothing is asked for: an unknown checkpoint counts as usable. */
#ifndef CKS_PLAN_H
#define CKS_PLAN_H

#include <stddef.h>
#include <stdint.h>

#define CKS_PLAN_NONE SIZE_MAX /* no position */

/* What is known of a checkpoint's weights. */
typedef enum {
    CKS_AVAIL_UNKNOWN = 0, /* never opened */
    CKS_AVAIL_OPENS,       /* its weights open; not read through yet */
    CKS_AVAIL_COMPLETE,    /* read through without a fault */
    CKS_AVAIL_INCOMPLETE,  /* files missing (Git LFS objects): known from its file list */
    CKS_AVAIL_FAILED       /* its weights do not open, or a read of them faulted */
} cks_avail;

/* What a run file holds for a checkpoint. */
typedef enum {
    CKS_HELD_NONE = 0, /* no row, or a row that is not complete */
    CKS_HELD_SAME,     /* a complete row of the checkpoint's current commit */
    CKS_HELD_OTHER     /* a complete row of another commit */
} cks_held;

typedef struct {
    cks_avail avail;
    cks_held file;    /* the output run file (or part) */
    size_t file_prev; /* parts: the position its row's drift/prev was measured against
                         (CKS_PLAN_NONE: none or no row); ignored for whole run files */
    cks_held base;    /* --extend: the finished run */
} cks_plan_ckpt;

typedef enum { CKS_REF_NONE = 0, CKS_REF_AUTO, CKS_REF_FIXED } cks_ref_mode;

typedef struct {
    const cks_plan_ckpt *ck; /* the selected checkpoints in step order, n of them */
    size_t n;
    size_t shard, nshards; /* --shard I/N; nshards 0 when not sharded */
    int uses_prev;         /* an enabled family needs the previous checkpoint */
    cks_ref_mode ref_mode;
    /* CKS_REF_FIXED: its position, or n for a reference outside the selection, whose
     * availability is then ref_avail */
    size_t ref;
    cks_avail ref_avail;
    int part;   /* the output is a part: file_prev is recorded */
    int extend; /* base holds the finished run's rows */
    /* a checkpoint never opened is taken as usable instead of asked for (need): the
     * likely plan past what is known, by which a source that fetches checkpoints
     * prefetches and evicts (cks_plan_needed). A wrong guess costs a download, never a
     * row: the walk runs only the plan made without it. */
    int guess;
} cks_plan_input;

typedef enum {
    CKS_TASK_RUN = 0, /* analyse it and record its row */
    CKS_TASK_SKIP,    /* the output file's row stands */
    CKS_TASK_REUSE    /* --extend: the base run's row stands; left out of the part */
} cks_task_action;

typedef struct {
    size_t pos;  /* position in the selection */
    size_t prev; /* previous complete checkpoint, or CKS_PLAN_NONE */
    size_t ref;  /* the reference (n: outside the selection), or CKS_PLAN_NONE */
    cks_task_action action;
    int own; /* this shard's (always 1 when not sharded) */
} cks_task;

typedef struct {
    size_t ntasks;  /* tasks[0..ntasks) are positions 0..ntasks-1, final for what is known */
    size_t need;    /* CKS_PLAN_NONE, or the position whose availability decides the rest */
    size_t ref;     /* the reference of every task (CKS_PLAN_NONE: none) */
    int ref_failed; /* the fixed reference is incomplete or failed: no task */
} cks_plan;

/* Plans in->n positions into tasks[in->n] (caller's array). Never fails. */
void cks_plan_make(const cks_plan_input *in, cks_task *tasks, cks_plan *out);

/* 1 when a task executed as `done` (its outcome's checkpoint complete or not) still
 * stands for the planned task t: same action and, for a complete row, the same previous
 * checkpoint and reference. */
int cks_task_stands(const cks_task *t, const cks_task *done, int done_complete);

/* The positions still needed from task `from` on, for a source that fetches checkpoints
 * (prefetch and eviction): the previous checkpoint and the reference of task `from`, and
 * every later own task to run with its previous checkpoint, each once, in order of first
 * use, into out[cap]. Returns how many there are (may exceed cap; out holds the first
 * cap). */
size_t cks_plan_needed(const cks_task *tasks, size_t ntasks, size_t from, size_t *out, size_t cap);

#endif
