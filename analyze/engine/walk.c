/* The walk over a plan (see walk.h). */
#include "walk.h"
#include "error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int cks_walk_init(cks_walk *w, const cks_scan_cfg *cfg, size_t n, size_t shard, size_t nshards)
{
    memset(w, 0, sizeof *w);
    if (!(w->ck = calloc(n + 1, sizeof *w->ck)) || !(w->tasks = calloc(n + 1, sizeof *w->tasks)) ||
        !(w->done = calloc(n + 1, sizeof *w->done)) || !(w->state = calloc(n + 1, 1)) ||
        !(w->why = calloc(n + 1, sizeof *w->why)))
        return cks_error_set(CKS_ENOMEM, "out of memory");
    for (size_t i = 0; i <= n; i++)
        w->ck[i].file_prev = CKS_PLAN_NONE;
    w->in = (cks_plan_input){.ck = w->ck,
                             .n = n,
                             .shard = shard,
                             .nshards = nshards,
                             .uses_prev = cfg->uses_prev,
                             .ref_mode = cfg->uses_ref ? CKS_REF_AUTO : CKS_REF_NONE};
    return 0;
}

void cks_walk_release(cks_walk *w)
{
    for (size_t i = 0; w->why && i <= w->in.n; i++)
        free(w->why[i]);
    free(w->why);
    free(w->ck);
    free(w->tasks);
    free(w->done);
    free(w->state);
    memset(w, 0, sizeof *w);
}

int cks_walk_set_ref(cks_walk *w, const cks_scan_cfg *cfg, cks_selection *sel, const char *stored,
                     const char *holder)
{
    const char *name = stored ? stored : cfg->o->ref;
    /* the families may have changed since init: those of a run file being resumed */
    w->in.uses_prev = cfg->uses_prev;
    w->in.ref_mode = cfg->uses_ref ? CKS_REF_AUTO : CKS_REF_NONE;
    if (!cfg->uses_ref)
        return 0;
    if (stored && cfg->o->ref && strcmp(stored, cfg->o->ref) != 0)
        return cks_error_set(CKS_EINVAL,
                             "%s measures drift against '%s'; --ref %s would mix references: "
                             "write a new file",
                             holder, stored, cfg->o->ref);
    if (!name)
        return 0;
    int err = cks_selection_find(sel, name, &w->in.ref);
    if (err)
        return cks_error_prefix(err, stored ? "reference" : "--ref");
    w->in.ref_mode = CKS_REF_FIXED;
    return 0;
}

int cks_walk_resolve_ref(cks_walk *w, cks_engine *e, const cks_selection *sel)
{
    char msg[1200];
    cks_avail a;
    if (w->in.ref_mode == CKS_REF_FIXED) {
        cks_engine_probe(e, w->in.ref, &a, msg, sizeof msg);
        cks_walk_learn(w, w->in.ref, a, msg);
        if (a == CKS_AVAIL_INCOMPLETE || a == CKS_AVAIL_FAILED)
            return cks_error_set(CKS_EINVAL, "reference %s: %s",
                                 cks_selection_info(sel, w->in.ref)->name, msg);
        return 0;
    }
    /* the first thing an automatic reference's plan asks for is the reference */
    for (cks_walk_plan(w); w->plan.ntasks == 0 && w->plan.need != CKS_PLAN_NONE; cks_walk_plan(w)) {
        cks_engine_probe(e, w->plan.need, &a, msg, sizeof msg);
        cks_walk_learn(w, w->plan.need, a, msg);
    }
    return 0;
}

void cks_walk_plan(cks_walk *w)
{
    w->in.ref_avail = w->ck[w->in.n].avail;
    cks_plan_make(&w->in, w->tasks, &w->plan);
}

int cks_walk_ref_error(const cks_walk *w, const cks_selection *sel)
{
    if (!w->plan.ref_failed)
        return 0;
    const char *why = w->why[w->in.ref];
    return cks_error_set(CKS_EINVAL,
                         "the reference %s failed: %s; choose another --ref or write "
                         "a new file",
                         cks_selection_info(sel, w->in.ref)->name, why ? why : "unreadable");
}

int cks_walk_stands(const cks_walk *w, size_t pos)
{
    return w->state[pos] && cks_task_stands(&w->tasks[pos], &w->done[pos], w->state[pos] == 1);
}

void cks_walk_executed(cks_walk *w, const cks_task *t, int complete)
{
    w->done[t->pos] = *t;
    w->state[t->pos] = complete ? 1 : 2;
}

void cks_walk_learn(cks_walk *w, size_t pos, cks_avail a, const char *why)
{
    if (pos == CKS_PLAN_NONE || a == CKS_AVAIL_UNKNOWN)
        return;
    cks_avail *have = &w->ck[pos].avail;
    /* what is final stays: a checkpoint read through, or found broken */
    if (*have == CKS_AVAIL_COMPLETE || *have == CKS_AVAIL_INCOMPLETE || *have == CKS_AVAIL_FAILED)
        return;
    *have = a;
    if ((a == CKS_AVAIL_INCOMPLETE || a == CKS_AVAIL_FAILED) && why && !w->why[pos])
        w->why[pos] = strdup(why);
}

void cks_walk_learn_outcome(cks_walk *w, const cks_outcome *o)
{
    static const cks_avail of_status[] = {CKS_AVAIL_COMPLETE, CKS_AVAIL_INCOMPLETE,
                                          CKS_AVAIL_FAILED};
    if (!o->stale)
        cks_walk_learn(w, o->task.pos, of_status[o->status], o->message);
    cks_walk_learn(w, o->task.prev, o->prev_avail, o->other);
    cks_walk_learn(w, o->task.ref, o->ref_avail, o->other);
}

static int broken(cks_avail a)
{
    return a == CKS_AVAIL_INCOMPLETE || a == CKS_AVAIL_FAILED;
}

void cks_walk_warn_stale(const cks_outcome *o, const cks_selection *sel, const cks_scan_hooks *h)
{
    int prev = broken(o->prev_avail), ref = broken(o->ref_avail);
    const char *pn = prev ? cks_selection_info(sel, o->task.prev)->name : "";
    const char *rn = ref ? cks_selection_info(sel, o->task.ref)->name : "";
    char what[600];
    if (prev && ref && o->task.prev == o->task.ref)
        snprintf(what, sizeof what, "its previous checkpoint and reference %s failed", pn);
    else
        snprintf(what, sizeof what, "%s%s%s%s%s failed", prev ? "its previous checkpoint " : "", pn,
                 prev && ref ? " and " : "", ref ? "the reference " : "", rn);
    snprintf(what + strlen(what), sizeof what - strlen(what),
             " while it was read (planned again without it)");
    if (h->warning)
        h->warning(h->ctx, cks_selection_info(sel, o->task.pos)->name, what, o->other);
}

static int interrupted(const cks_scan_hooks *h)
{
    return h->interrupted && *h->interrupted;
}

/* The first own task to execute, or NULL. */
static const cks_task *next_task(const cks_walk *w)
{
    for (size_t i = 0; i < w->plan.ntasks; i++)
        if (w->tasks[i].own && !cks_walk_stands(w, i))
            return &w->tasks[i];
    return NULL;
}

static int run_task(cks_walk *w, cks_engine *e, cks_recorder *r, const cks_task *t)
{
    const cks_scan_hooks *h = r->cfg->h;
    cks_outcome o;
    int err = cks_engine_ahead(e, &w->in, t);
    if (!err)
        err = cks_engine_compute(e, t, &o);
    if (err)
        return err;
    cks_walk_learn_outcome(w, &o);
    if (o.stale) {
        cks_walk_warn_stale(&o, r->sel, h);
    } else {
        if (o.status == CKS_SCAN_COMPLETE && h->point)
            h->point(h->ctx, "analysed");
        if ((err = cks_record(r, &o)) == 0)
            cks_walk_executed(w, t, o.status == CKS_SCAN_COMPLETE);
    }
    cks_outcome_release(&o);
    return err;
}

int cks_walk_run(cks_walk *w, cks_engine *e, cks_recorder *r)
{
    const cks_scan_hooks *h = r->cfg->h;
    char msg[1200];
    int err = 0;
    while (!err) {
        if (interrupted(h))
            return cks_error_set(CKS_EINTR, "interrupted");
        cks_walk_plan(w);
        if ((err = cks_walk_ref_error(w, r->sel)) != 0)
            break;
        const cks_task *t = next_task(w);
        cks_avail a;
        if (t && t->action != CKS_TASK_RUN) {
            cks_record_skip(r, t);
            cks_walk_executed(w, t, 0);
        } else if (t) {
            err = run_task(w, e, r, t);
        } else if (w->plan.need != CKS_PLAN_NONE) {
            cks_engine_probe(e, w->plan.need, &a, msg, sizeof msg);
            cks_walk_learn(w, w->plan.need, a, msg);
        } else if (r->part && w->in.ref_mode == CKS_REF_AUTO && w->plan.ref != CKS_PLAN_NONE &&
                   w->ck[w->plan.ref].avail != CKS_AVAIL_COMPLETE) {
            /* a part names its reference for merge: an automatic one must be the one
             * every shard ends with, even if no row of this part read it through */
            cks_engine_verify(e, w->plan.ref, &a, msg, sizeof msg);
            cks_walk_learn(w, w->plan.ref, a, msg);
        } else {
            return cks_record_part_ref(r, w->plan.ref);
        }
    }
    return err;
}
