/* The walk over a plan shared by the drivers: what is known of each selected checkpoint
 * (the planner's input), the current plan, which tasks were executed and how, and the
 * loop of the serial scan and of a shard (the MPI coordinator has its own loop over the
 * same state). Private to the engine. */
#ifndef CKS_ENGINE_WALK_H
#define CKS_ENGINE_WALK_H

#include "engine.h"
#include "plan.h"
#include "record.h"

typedef struct {
    cks_plan_input in;
    cks_plan_ckpt *ck; /* n + 1: ck[n] is a reference outside the selection */
    cks_task *tasks;
    cks_plan plan;
    cks_task *done;     /* per position: the task executed */
    signed char *state; /* per position: 0 not executed, 1 executed (complete), 2 executed */
    char **why;         /* per position: why it is incomplete or failed, when known */
} cks_walk;

/* The state of n selected checkpoints, nothing known. nshards 0 when not sharded. */
int cks_walk_init(cks_walk *w, const cks_scan_cfg *cfg, size_t n, size_t shard, size_t nshards);
void cks_walk_release(cks_walk *w);

/* The reference: none without a family that needs it; stored (held by the file named
 * holder), else --ref, fixed; else the first usable checkpoint. A --ref other than the
 * stored one is refused. */
int cks_walk_set_ref(cks_walk *w, const cks_scan_cfg *cfg, cks_selection *sel, const char *stored,
                     const char *holder);
/* Probes until the reference is known: a fixed one must open (refused naming it
 * otherwise); an automatic one is the first whose weights open. */
int cks_walk_resolve_ref(cks_walk *w, cks_engine *e, const cks_selection *sel);

void cks_walk_plan(cks_walk *w);
/* The error of a plan whose fixed reference failed; 0 otherwise. */
int cks_walk_ref_error(const cks_walk *w, const cks_selection *sel);
/* 1 when the planned task at pos was executed in a way that still stands. */
int cks_walk_stands(const cks_walk *w, size_t pos);
void cks_walk_executed(cks_walk *w, const cks_task *t, int complete);

/* What an outcome or a probe showed about checkpoints. */
void cks_walk_learn(cks_walk *w, size_t pos, cks_avail a, const char *why);
void cks_walk_learn_outcome(cks_walk *w, const cks_outcome *o);
/* A stale outcome's warning: its previous checkpoint or reference failed. */
void cks_walk_warn_stale(const cks_outcome *o, const cks_selection *sel, const cks_scan_hooks *h);

/* The serial and shard loop: executes the own tasks in order, re-planning after each
 * outcome and probe, until every own task stands. */
int cks_walk_run(cks_walk *w, cks_engine *e, cks_recorder *r);

#endif
