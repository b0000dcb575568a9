/* Fetching ahead (see ahead.h). The checkpoints still needed come from the planner: the
 * plan made with guess (plan.h) reaches past the first checkpoint never opened, which
 * the walk's own plan stops at, so that the next task is known before this one's outcome.
 * A wrong guess (a checkpoint that turns out failed) costs a download the next evict
 * undoes, never a row. */
#include "ahead.h"
#include "error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct cks_ahead {
    const cks_scan_cfg *cfg;
    const cks_selection *sel;
    cks_task *guess; /* the plan made with guess, n + 1 */
    size_t *need;    /* positions still needed, n + 1 */
    size_t *keep;    /* their source indices and the task's own three, n + 4 */
};

static void on_fetch(void *ctx, const cks_fetch_progress *p)
{
    const cks_scan_hooks *h = ((const cks_ahead *)ctx)->cfg->h;
    if (h->fetch) {
        cks_scan_fetch f = {p->ckpt, p->done, p->total, p->seconds, p->files_done, p->files_total};
        h->fetch(h->ctx, &f);
    }
}

static int claim(const cks_ahead *a)
{
    int evict = a->cfg->o->evict, err = cks_source_claim_cache(a->sel->src, evict);
    if (err != CKS_EEXISTS)
        return err;
    char why[1024]; /* the message is rewritten in the buffer it lives in: copy it first */
    snprintf(why, sizeof why, "%s", cks_error_last());
    return cks_error_set(err, "%s%s; it may %s: give each shard or MPI rank its own HF_HUB_CACHE%s",
                         evict ? "--evict: " : "", why,
                         evict ? "still need blobs this scan would delete"
                               : "delete blobs this scan needs",
                         evict ? "" : ", or scan without --evict there");
}

int cks_ahead_new(cks_ahead **out, const cks_scan_cfg *cfg, const cks_selection *sel)
{
    size_t n = sel->n;
    int err;
    *out = NULL;
    if (!cks_source_fetches(sel->src))
        return 0;
    cks_ahead *a = calloc(1, sizeof *a);
    if (!a || !(a->guess = calloc(n + 1, sizeof *a->guess)) ||
        !(a->need = calloc(n + 1, sizeof *a->need)) ||
        !(a->keep = calloc(n + 4, sizeof *a->keep))) {
        cks_ahead_free(a);
        return cks_error_set(CKS_ENOMEM, "out of memory");
    }
    a->cfg = cfg;
    a->sel = sel;
    if ((err = claim(a)) != 0) {
        cks_ahead_free(a);
        return err;
    }
    cks_source_set_progress(sel->src, on_fetch, a);
    cks_source_set_interrupt(sel->src, cfg->h->interrupted);
    *out = a;
    return 0;
}

void cks_ahead_free(cks_ahead *a)
{
    if (!a)
        return;
    if (a->sel)
        cks_source_set_progress(a->sel->src, NULL, NULL); /* no call after this returns */
    free(a->guess);
    free(a->need);
    free(a->keep);
    free(a);
}

/* With --evict: deletes the downloaded blobs that none of need[0..n) nor t's three uses.
 * A failure (a listing that could not be fetched) deletes nothing and is a warning: the
 * next task tries again. */
static void evict(cks_ahead *a, const cks_task *t, size_t n)
{
    const size_t own[3] = {t->pos, t->prev, t->ref};
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        a->keep[k++] = a->sel->idx[a->need[i]];
    for (int j = 0; j < 3; j++)
        if (own[j] != CKS_PLAN_NONE)
            a->keep[k++] = a->sel->idx[own[j]];
    if (cks_source_evict(a->sel->src, a->keep, k, NULL) != 0 && a->cfg->h->warning)
        a->cfg->h->warning(a->cfg->h->ctx, cks_selection_info(a->sel, t->pos)->name,
                           "--evict (nothing deleted this time)", cks_error_last());
    cks_error_clear();
}

int cks_ahead_run(cks_ahead *a, const cks_plan_input *in, const cks_task *t)
{
    cks_source *src = a->sel->src;
    const cks_task *tasks = t;
    size_t ntasks = 1, from = 0, next = CKS_PLAN_NONE;
    if (in) {
        cks_plan_input g = *in;
        cks_plan plan;
        g.guess = 1;
        cks_plan_make(&g, a->guess, &plan);
        if (t->pos < plan.ntasks) {
            tasks = a->guess;
            ntasks = plan.ntasks;
            from = t->pos;
        }
    }
    for (size_t i = from + 1; i < ntasks && next == CKS_PLAN_NONE; i++)
        if (tasks[i].own && tasks[i].action == CKS_TASK_RUN)
            next = tasks[i].pos;
    size_t n = cks_plan_needed(tasks, ntasks, from, a->need, a->sel->n + 1);
    if (a->cfg->o->evict)
        evict(a, t, n);
    /* the task's three at once (those fetched already return at once), then each */
    const size_t own[3] = {t->pos, t->prev, t->ref};
    for (int j = 0; j < 3; j++)
        if (own[j] != CKS_PLAN_NONE)
            cks_source_prefetch(src, a->sel->idx[own[j]]);
    for (int j = 0; j < 3; j++) {
        /* a failed fetch is left to the read: mapping the file returns the same error */
        if (own[j] != CKS_PLAN_NONE && cks_source_wait(src, a->sel->idx[own[j]]) == CKS_EINTR)
            return CKS_EINTR;
        cks_error_clear();
    }
    /* what the next own task adds: its checkpoint, and its previous one when that is
     * another shard's */
    for (size_t i = 0; i < n && next != CKS_PLAN_NONE && !a->cfg->o->no_prefetch; i++)
        if (a->need[i] > t->pos && a->need[i] <= next)
            cks_source_prefetch(src, a->sel->idx[a->need[i]]);
    cks_error_clear();
    return 0;
}
