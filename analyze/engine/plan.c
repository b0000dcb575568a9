/* The scan planner (see plan.h): a single pass over the selection in step order that
 * carries the last usable checkpoint and, for the skip and reuse tests, the last one the
 * output file and the base run hold complete. Pure: no I/O, no allocation. */
#include "plan.h"

static int broken(cks_avail a)
{
    return a == CKS_AVAIL_INCOMPLETE || a == CKS_AVAIL_FAILED;
}

static int held(cks_held h)
{
    return h == CKS_HELD_SAME || h == CKS_HELD_OTHER;
}

/* The reference, or need/ref_failed set in out. */
static size_t choose_ref(const cks_plan_input *in, cks_plan *out)
{
    if (in->ref_mode == CKS_REF_NONE)
        return CKS_PLAN_NONE;
    if (in->ref_mode == CKS_REF_FIXED) {
        cks_avail a = in->ref < in->n ? in->ck[in->ref].avail : in->ref_avail;
        out->ref_failed = broken(a);
        return in->ref;
    }
    for (size_t p = 0; p < in->n; p++) {
        if (in->ck[p].avail == CKS_AVAIL_UNKNOWN && !in->guess) {
            out->need = p;
            return CKS_PLAN_NONE;
        }
        if (!broken(in->ck[p].avail))
            return p;
    }
    return CKS_PLAN_NONE;
}

/* Whether a row of `which` (0: the output file, 1: the base run) still stands for p,
 * whose previous checkpoint is now prev; last is the last position before p that it
 * holds complete. */
static int row_stands(const cks_plan_input *in, size_t p, size_t prev, size_t ref, size_t last,
                      int which)
{
    const cks_plan_ckpt *c = &in->ck[p];
    cks_held h = which ? c->base : c->file;
    if (h != CKS_HELD_SAME || broken(c->avail))
        return 0;
    /* a reference of another commit than the one measured against */
    if (ref != CKS_PLAN_NONE && ref < in->n &&
        (which ? in->ck[ref].base : in->ck[ref].file) == CKS_HELD_OTHER)
        return 0;
    if (!in->uses_prev)
        return 1;
    if (in->part && !which)
        return c->file_prev == prev;
    return last == prev && (prev == CKS_PLAN_NONE ||
                            (which ? in->ck[prev].base : in->ck[prev].file) == CKS_HELD_SAME);
}

void cks_plan_make(const cks_plan_input *in, cks_task *tasks, cks_plan *out)
{
    size_t prev = CKS_PLAN_NONE, last_file = CKS_PLAN_NONE, last_base = CKS_PLAN_NONE;
    out->ntasks = 0;
    out->need = CKS_PLAN_NONE;
    out->ref_failed = 0;
    out->ref = choose_ref(in, out);
    if (out->ref_failed || out->need != CKS_PLAN_NONE)
        return;
    for (size_t p = 0; p < in->n; p++) {
        const cks_plan_ckpt *c = &in->ck[p];
        cks_task *t = &tasks[p];
        t->pos = p;
        t->prev = in->uses_prev ? prev : CKS_PLAN_NONE;
        t->ref = out->ref;
        t->own = !in->nshards || p % in->nshards == in->shard;
        t->action = CKS_TASK_RUN;
        if (t->own && row_stands(in, p, t->prev, out->ref, last_file, 0))
            t->action = CKS_TASK_SKIP;
        else if (in->extend && row_stands(in, p, t->prev, out->ref, last_base, 1))
            t->action = CKS_TASK_REUSE;
        out->ntasks = p + 1;
        if (held(c->file))
            last_file = p;
        if (held(c->base))
            last_base = p;
        int usable;
        if (t->action != CKS_TASK_RUN) {
            usable = !broken(c->avail);
        } else if (c->avail == CKS_AVAIL_UNKNOWN && !in->guess) {
            if (!in->uses_prev || p + 1 == in->n)
                continue; /* nobody's previous checkpoint */
            out->need = p;
            return;
        } else {
            usable = !broken(c->avail);
        }
        if (usable)
            prev = p;
    }
}

int cks_task_stands(const cks_task *t, const cks_task *done, int done_complete)
{
    if (t->action != done->action)
        return 0;
    if (t->action != CKS_TASK_RUN || !done_complete)
        return 1;
    return t->prev == done->prev && t->ref == done->ref;
}

size_t cks_plan_needed(const cks_task *tasks, size_t ntasks, size_t from, size_t *out, size_t cap)
{
    size_t k = 0, last = CKS_PLAN_NONE, ref = from < ntasks ? tasks[from].ref : CKS_PLAN_NONE;
    if (ref != CKS_PLAN_NONE && k++ < cap)
        out[0] = ref;
    /* positions come in increasing order (a previous checkpoint is never after the one
     * before it), so comparing with the last one emitted removes the repeats */
    for (size_t i = from; i < ntasks; i++) {
        const cks_task *t = &tasks[i];
        if (i != from && (!t->own || t->action != CKS_TASK_RUN))
            continue;
        const size_t two[2] = {t->prev, t->pos};
        for (int j = 0; j < 2; j++) {
            size_t x = two[j];
            if (x == CKS_PLAN_NONE || x == ref || (last != CKS_PLAN_NONE && x <= last))
                continue;
            if (k < cap)
                out[k] = x;
            k++;
            last = x;
        }
    }
    return k;
}
