/* Fetching ahead for a source that downloads its checkpoints (the hub, DESIGN §2): what
 * cks_engine_ahead does (see engine.h) before a task is computed, from the plan and the
 * fetch-ahead API of source.h: evict what is no longer needed, wait for the task's
 * checkpoints, prefetch the next task's. Also claims the source's cache for the scan and
 * passes download progress to the scan's fetch hook. Private to the engine. */
#ifndef CKS_ENGINE_AHEAD_H
#define CKS_ENGINE_AHEAD_H

#include "cfg.h"
#include "plan.h"
#include "selection.h"

typedef struct cks_ahead cks_ahead;

/* *out is NULL (and 0 returned) when the selection's source does not fetch. Otherwise
 * the source's cache is claimed, exclusively with --evict (CKS_EEXISTS with what to do
 * when another process holds it), and the source reports progress and watches the
 * scan's interrupt flag. cfg and sel outlive it. */
int cks_ahead_new(cks_ahead **out, const cks_scan_cfg *cfg, const cks_selection *sel);
void cks_ahead_free(cks_ahead *a);

/* Before task t (in: the walk's plan input, or NULL when only t is known). Returns
 * CKS_EINTR when interrupted while waiting, else 0. */
int cks_ahead_run(cks_ahead *a, const cks_plan_input *in, const cks_task *t);

#endif
