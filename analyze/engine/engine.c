/* The engine (see engine.h): mapped checkpoints with their carries, one task's values
 * for every enabled family, and the one rule that decides whether a checkpoint failed. */
#include "engine.h"
#include "ahead.h"
#include "error.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SLOTS 3 /* the current checkpoint, its previous one, the reference */

typedef struct {
    size_t pos; /* selection position; CKS_PLAN_NONE when empty */
    cks_ckpt *c;
    cks_weights *w;
    void *carry[CKS_MAX_FAMILIES]; /* per enabled family */
    unsigned long used;
} slot;

struct cks_engine {
    const cks_scan_cfg *cfg;
    const cks_selection *sel;
    slot slots[SLOTS];
    unsigned long clock;
    cks_ahead *ahead; /* NULL: the source does not fetch */
    size_t last[2];   /* the last task's checkpoint and reference: a probe of the next one
                         does not unmap them, so their carries reach the next task */
};

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int interrupted(const cks_engine *e)
{
    const cks_scan_hooks *h = e->cfg->h;
    return h->interrupted && *h->interrupted;
}

static void point(const cks_engine *e, const char *name)
{
    if (e->cfg->h->point)
        e->cfg->h->point(e->cfg->h->ctx, name);
}

static void warn(const cks_engine *e, const char *ckpt, const char *what, const char *msg)
{
    if (e->cfg->h->warning)
        e->cfg->h->warning(e->cfg->h->ctx, ckpt, what, msg);
}

/* ---- mapped checkpoints ---- */

static void slot_release(const cks_engine *e, slot *s)
{
    for (size_t f = 0; f < e->cfg->nfam; f++)
        if (s->carry[f] && e->cfg->fam[f]->carry_free)
            e->cfg->fam[f]->carry_free(s->carry[f]);
    cks_weights_free(s->w);
    cks_ckpt_free(s->c);
    memset(s, 0, sizeof *s);
    s->pos = CKS_PLAN_NONE;
}

int cks_engine_new(cks_engine **out, const cks_scan_cfg *cfg, const cks_selection *sel)
{
    cks_engine *e = calloc(1, sizeof *e);
    if (!e)
        return cks_error_set(CKS_ENOMEM, "out of memory");
    e->cfg = cfg;
    e->sel = sel;
    for (int i = 0; i < SLOTS; i++)
        e->slots[i].pos = CKS_PLAN_NONE;
    e->last[0] = e->last[1] = CKS_PLAN_NONE;
    int err = cks_ahead_new(&e->ahead, cfg, sel);
    if (err) {
        free(e);
        return err;
    }
    *out = e;
    return 0;
}

void cks_engine_free(cks_engine *e)
{
    if (!e)
        return;
    for (int i = 0; i < SLOTS; i++)
        slot_release(e, &e->slots[i]);
    cks_ahead_free(e->ahead);
    free(e);
}

/* The mapped checkpoint at position pos, mapping it in a free slot or in place of the
 * least recently used one that keep[0..3) does not name. CKS_EINCOMPLETE when files are
 * missing (known from the file list, nothing is read). */
static int slot_get(cks_engine *e, size_t pos, const size_t keep[3], slot **out)
{
    slot *s = NULL;
    for (int i = 0; i < SLOTS; i++)
        if (e->slots[i].pos == pos) {
            e->slots[i].used = ++e->clock;
            *out = &e->slots[i];
            return 0;
        }
    for (int i = 0; i < SLOTS; i++) {
        slot *c = &e->slots[i];
        if (c->pos != CKS_PLAN_NONE &&
            (c->pos == keep[0] || c->pos == keep[1] || c->pos == keep[2]))
            continue;
        if (!s || c->pos == CKS_PLAN_NONE || (s->pos != CKS_PLAN_NONE && c->used < s->used))
            s = c;
    }
    slot_release(e, s);
    const cks_source *src = e->sel->src;
    int err = cks_ckpt_open(&s->c, src, e->sel->idx[pos]);
    if (!err && !cks_ckpt_complete(s->c))
        err = cks_error_set(CKS_EINCOMPLETE, "%s@%s: incomplete (Git LFS objects missing)",
                            cks_source_path(src), cks_selection_info(e->sel, pos)->name);
    if (!err)
        err = cks_weights_open(&s->w, s->c);
    if (err) {
        slot_release(e, s);
        return err;
    }
    s->pos = pos;
    s->used = ++e->clock;
    *out = s;
    return 0;
}

/* "1 file missing; fetch with: git lfs fetch ..." for an incomplete checkpoint. */
static void missing_text(const cks_engine *e, size_t pos, char *buf, size_t cap)
{
    cks_ckpt *c;
    size_t missing = 0;
    char hint[1024] = "";
    snprintf(buf, cap, "Git LFS objects missing");
    if (cks_ckpt_open(&c, e->sel->src, e->sel->idx[pos]) != 0) {
        cks_error_clear();
        return;
    }
    for (size_t i = 0; i < cks_ckpt_nfiles(c); i++) {
        const cks_file_info *f = cks_ckpt_file(c, i);
        if (!f->present && missing++ == 0)
            cks_ckpt_fetch_hint(c, f->path, hint, sizeof hint);
    }
    cks_ckpt_free(c);
    snprintf(buf, cap, "%zu file%s missing; fetch with: %s", missing, missing == 1 ? "" : "s",
             hint);
}

/* ---- the one rule ---- */

/* What opening (open_err) and reading a checkpoint showed: its files missing ->
 * INCOMPLETE; its weights do not open, or a read faulted -> FAILED (map.h's guard
 * flags a faulted file); else COMPLETE when every tensor was read, OPENS when none was.
 * msg[cap] receives the reason. A faulted checkpoint is unmapped, so that a later use
 * maps it afresh. */
static cks_avail verdict(cks_engine *e, size_t pos, int open_err, slot *s, int read_through,
                         char *msg, size_t cap)
{
    if (open_err == CKS_EINCOMPLETE) {
        missing_text(e, pos, msg, cap);
        return CKS_AVAIL_INCOMPLETE;
    }
    if (!open_err && cks_weights_check(s->w) == 0)
        return read_through ? CKS_AVAIL_COMPLETE : CKS_AVAIL_OPENS;
    snprintf(msg, cap, "%s", cks_error_last());
    if (!open_err)
        slot_release(e, s);
    return CKS_AVAIL_FAILED;
}

/* Reads a byte of every page of t. Pages a family has just read are mapped: this costs
 * next to nothing for them, and reads the ones no family needed, so that a fault
 * anywhere in the checkpoint is seen whichever families ran. */
static void touch(const cks_tensor *t)
{
    const volatile unsigned char *p = t->data;
    unsigned char sink = 0;
    for (size_t i = 0; i < t->nbytes; i += 4096)
        sink ^= p[i];
    if (t->nbytes)
        sink ^= p[t->nbytes - 1];
    (void)sink;
}

/* Drops a tensor's pages from the resident set once read: RSS stays near one tensor. */
static void done_with(const slot *s, const cks_tensor *t)
{
    if (s && t) {
        touch(t);
        cks_map_dontneed(cks_weights_file(s->w, t->file), t->data, t->nbytes);
    }
}

static void read_through(const slot *s, const unsigned char *seen)
{
    const cks_tensor_list *l = cks_weights_tensors(s->w);
    for (size_t i = 0; i < l->count; i++)
        if (!seen || !seen[i])
            done_with(s, &l->items[i]);
}

/* A fetching source's probe: its file list (see engine.h). */
static int listed(const cks_engine *e, size_t pos)
{
    cks_ckpt *c = NULL;
    int err = cks_ckpt_open(&c, e->sel->src, e->sel->idx[pos]);
    if (!err && !cks_ckpt_complete(c))
        err = CKS_EINCOMPLETE;
    cks_ckpt_free(c);
    return err;
}

void cks_engine_probe(cks_engine *e, size_t pos, cks_avail *out, char *msg, size_t cap)
{
    const size_t keep[3] = {pos, e->last[0], e->last[1]};
    slot *s = NULL;
    int err = e->ahead ? listed(e, pos) : slot_get(e, pos, keep, &s);
    *out = e->ahead && !err ? CKS_AVAIL_OPENS : verdict(e, pos, err, s, 0, msg, cap);
    cks_error_clear();
}

void cks_engine_verify(cks_engine *e, size_t pos, cks_avail *out, char *msg, size_t cap)
{
    const size_t keep[3] = {pos, e->last[0], e->last[1]};
    slot *s = NULL;
    int err = slot_get(e, pos, keep, &s);
    if (!err)
        read_through(s, NULL);
    *out = verdict(e, pos, err, s, 1, msg, cap);
    cks_error_clear();
}

int cks_engine_ahead(cks_engine *e, const cks_plan_input *in, const cks_task *t)
{
    return e->ahead ? cks_ahead_run(e->ahead, in, t) : 0;
}

/* ---- one task ---- */

/* The current checkpoint with its previous one and reference (NULL when absent). */
typedef struct {
    slot *cur, *prev, *ref;
    unsigned char *seen_prev, *seen_ref; /* their tensors met in the current one */
    const char *name, *prev_name, *ref_name;
    int64_t step, prev_step, ref_step;
} views;

static const cks_tensor *find_in(const slot *s, unsigned char *seen, const char *name)
{
    if (!s)
        return NULL;
    const cks_tensor_list *l = cks_weights_tensors(s->w);
    long i = cks_tensor_list_find(l, name);
    if (i < 0)
        return NULL;
    seen[i] = 1;
    return &l->items[i];
}

/* One column per tensor of the checkpoint, in its order. */
static int values_build(const cks_engine *e, const cks_weights *w, cks_values *v)
{
    const cks_tensor_list *l = cks_weights_tensors(w);
    int err = cks_values_alloc(v, l->count, e->cfg->nvals);
    for (size_t i = 0; !err && i < l->count; i++) {
        const cks_tensor *x = &l->items[i];
        int64_t rows = x->ndim ? x->shape[0] : 1, cols = 1;
        for (int d = 1; d < x->ndim; d++)
            cols *= x->shape[d];
        v->cols[i] = (cks_store_tensor){(char *)x->name, x->layer, (char *)cks_kind_name(x->kind),
                                        rows, x->ndim <= 1 ? 0 : cols};
        v->cur[i] = x;
    }
    return err;
}

static void progress(const cks_engine *e, size_t pos, const char *name, const char *what,
                     double frac, double rate)
{
    const cks_scan_hooks *h = e->cfg->h;
    if (h->progress) {
        cks_scan_progress p = {pos, e->sel->n, name, what, frac, rate};
        h->progress(h->ctx, &p);
    }
}

/* Every per-tensor family on column col. */
static void tensor_families(const cks_engine *e, const views *vw, const cks_family_tensor *in,
                            cks_values *v, size_t col)
{
    const cks_scan_cfg *c = e->cfg;
    for (size_t f = 0; f < c->nfam; f++) {
        const cks_family *fam = c->fam[f];
        double out[64];
        size_t count;
        if (!fam->tensor)
            continue;
        fam->metrics(&count);
        if (fam->tensor(in, out) != 0) {
            char what[300];
            const char *against = fam->needs & CKS_FAMILY_PREV  ? vw->prev_name
                                  : fam->needs & CKS_FAMILY_REF ? vw->ref_name
                                                                : NULL;
            snprintf(what, sizeof what, "%s%s%s", fam->path + 1, against ? " against " : "",
                     against ? against : "");
            warn(e, vw->name, what, cks_error_last());
            continue;
        }
        for (size_t m = 0; m < count && m < 64; m++)
            v->vals[(c->first[f] + m) * v->n + col] = out[m];
    }
}

/* The per-tensor families for every tensor of the current checkpoint, tensor by tensor
 * (its pages are read once for all families), then the rest of the other two read
 * through. */
static int tensors(cks_engine *e, size_t pos, const views *vw, cks_values *v, double *bytes)
{
    double t0 = now(), total = 0;
    for (size_t col = 0; col < v->n; col++)
        total += (double)v->cur[col]->nbytes;
    *bytes = 0;
    for (size_t col = 0; col < v->n; col++) {
        const cks_tensor *x = v->cur[col];
        if (interrupted(e))
            return cks_error_set(CKS_EINTR, "interrupted");
        progress(e, pos, vw->name, x->name, total > 0 ? *bytes / total : 0,
                 *bytes / (now() - t0 + 1e-9));
        cks_family_tensor in = {.t = x,
                                .step = vw->step,
                                .prev = find_in(vw->prev, vw->seen_prev, x->name),
                                .ref = find_in(vw->ref, vw->seen_ref, x->name),
                                .prev_step = vw->prev_step,
                                .ref_step = vw->ref_step,
                                .threads = e->cfg->o->threads,
                                .top = v->top + col * CKS_SPECTRA_K,
                                .has_top = &v->has_top[col]};
        tensor_families(e, vw, &in, v, col);
        *bytes += (double)x->nbytes;
        done_with(vw->cur, x);
        done_with(vw->prev, in.prev);
        done_with(vw->ref, in.ref);
        point(e, "tensor");
    }
    if (vw->prev)
        read_through(vw->prev, vw->seen_prev);
    if (vw->ref && vw->ref != vw->prev && vw->ref != vw->cur)
        read_through(vw->ref, vw->seen_ref);
    return 0;
}

/* Every per-checkpoint family; a failure is a warning. */
static int checkpoint_families(cks_engine *e, const views *vw, cks_values *v)
{
    const cks_scan_cfg *c = e->cfg;
    char display[1024];
    snprintf(display, sizeof display, "%s@%s", cks_source_path(e->sel->src), vw->name);
    for (size_t f = 0; f < c->nfam; f++) {
        const cks_family *fam = c->fam[f];
        void *carry = NULL;
        if (!fam->checkpoint)
            continue;
        if (interrupted(e))
            return cks_error_set(CKS_EINTR, "interrupted");
        cks_family_ckpt in = {c->o, c->h, display, e->sel->n, {0},
                              {0},  {0},  &carry,  c->fam,    c->nfam};
        const slot *s[3] = {vw->cur, vw->prev, vw->ref};
        cks_family_view *dst[3] = {&in.cur, &in.prev, &in.ref};
        for (int k = 0; k < 3; k++)
            *dst[k] = s[k] ? (cks_family_view){s[k]->pos, s[k]->c, s[k]->w, s[k]->carry[f]}
                           : (cks_family_view){CKS_PLAN_NONE, NULL, NULL, NULL};
        int err = fam->checkpoint(&in, &v->items);
        if (err == CKS_ENOMEM || err == CKS_EINTR)
            return err;
        if (err) {
            char what[64];
            snprintf(what, sizeof what, "%s (%s)", fam->path + 1, fam->option);
            warn(e, vw->name, what, cks_error_last());
        }
        if (carry) {
            if (vw->cur->carry[f] && fam->carry_free)
                fam->carry_free(vw->cur->carry[f]);
            vw->cur->carry[f] = carry;
        }
    }
    return 0;
}

void cks_outcome_release(cks_outcome *o)
{
    cks_values_release(&o->v);
}

/* Maps the previous checkpoint (k = 0) or the reference (k = 1) of the task; a failure
 * makes the outcome stale. */
static int neighbour(cks_engine *e, const size_t keep[3], size_t pos, slot **s, int64_t *step,
                     const char **name, cks_outcome *out, int k)
{
    int err = slot_get(e, pos, keep, s);
    const cks_ckpt_info *ci = cks_selection_info(e->sel, pos);
    *step = ci->step;
    *name = ci->name;
    if (!err)
        return 0;
    cks_avail a = verdict(e, pos, err, NULL, 0, out->other, sizeof out->other);
    *(k ? &out->ref_avail : &out->prev_avail) = a;
    out->stale = 1;
    *s = NULL;
    return -1;
}

/* What reading the task's checkpoints showed, after its values were computed. 0 when
 * all three are sound. */
static int judge(cks_engine *e, views *vw, cks_outcome *out)
{
    slot *s[3] = {vw->cur, vw->prev, vw->ref};
    cks_avail a[3];
    char msg[3][sizeof out->message];
    for (int k = 0; k < 3; k++) {
        int same = -1; /* the same checkpoint in two roles is judged (and unmapped) once */
        for (int j = 0; j < k; j++)
            if (s[k] && s[j] == s[k])
                same = j;
        msg[k][0] = '\0';
        if (!s[k]) {
            a[k] = CKS_AVAIL_UNKNOWN;
        } else if (same >= 0) {
            a[k] = a[same];
            memcpy(msg[k], msg[same], sizeof msg[k]);
        } else {
            a[k] = verdict(e, s[k]->pos, 0, s[k], 1, msg[k], sizeof msg[k]);
        }
    }
    out->prev_avail = a[1];
    out->ref_avail = a[2];
    if (a[0] == CKS_AVAIL_FAILED) {
        out->status = CKS_SCAN_FAILED;
        snprintf(out->message, sizeof out->message, "%s", msg[0]);
    } else if (a[1] == CKS_AVAIL_FAILED || a[2] == CKS_AVAIL_FAILED) {
        out->stale = 1;
        snprintf(out->other, sizeof out->other, "%s", msg[a[1] == CKS_AVAIL_FAILED ? 1 : 2]);
    }
    vw->cur = vw->prev = vw->ref = NULL; /* may be unmapped now */
    cks_error_clear();
    return a[0] == CKS_AVAIL_FAILED || out->stale;
}

static int compute(cks_engine *e, const cks_task *t, views *vw, cks_outcome *out)
{
    int err = values_build(e, vw->cur->w, &out->v);
    if (!err)
        err = tensors(e, t->pos, vw, &out->v, &out->bytes);
    if (err)
        return err;
    views keep = *vw;
    if (judge(e, &keep, out) != 0)
        return 0;
    if ((err = checkpoint_families(e, vw, &out->v)) != 0)
        return err;
    keep = *vw;
    judge(e, &keep, out); /* the forward pass read them again */
    return 0;
}

int cks_engine_compute(cks_engine *e, const cks_task *t, cks_outcome *out)
{
    const size_t keep[3] = {t->pos, t->prev, t->ref};
    views vw;
    double t0 = now();
    int err = 0;
    memset(out, 0, sizeof *out);
    memset(&vw, 0, sizeof vw);
    out->task = *t;
    out->rank = -1;
    e->last[0] = t->pos;
    e->last[1] = t->ref;
    const cks_ckpt_info *ci = cks_selection_info(e->sel, t->pos);
    vw.name = ci->name;
    vw.step = ci->step;
    int open_err = slot_get(e, t->pos, keep, &vw.cur);
    if (open_err) {
        cks_avail a = verdict(e, t->pos, open_err, NULL, 0, out->message, sizeof out->message);
        out->status = a == CKS_AVAIL_INCOMPLETE ? CKS_SCAN_INCOMPLETE : CKS_SCAN_FAILED;
        cks_error_clear();
        return 0;
    }
    if ((t->prev != CKS_PLAN_NONE &&
         neighbour(e, keep, t->prev, &vw.prev, &vw.prev_step, &vw.prev_name, out, 0) != 0) ||
        (t->ref != CKS_PLAN_NONE &&
         neighbour(e, keep, t->ref, &vw.ref, &vw.ref_step, &vw.ref_name, out, 1) != 0)) {
        cks_error_clear();
        return 0;
    }
    vw.prev_step = vw.prev ? vw.prev_step : -1;
    vw.ref_step = vw.ref ? vw.ref_step : -1;
    size_t np = vw.prev ? cks_weights_tensors(vw.prev->w)->count : 0;
    size_t nr = vw.ref ? cks_weights_tensors(vw.ref->w)->count : 0;
    if (!(vw.seen_prev = calloc(np + 1, 1)) || !(vw.seen_ref = calloc(nr + 1, 1)))
        err = cks_error_set(CKS_ENOMEM, "out of memory");
    else
        err = compute(e, t, &vw, out);
    free(vw.seen_prev);
    free(vw.seen_ref);
    if (err || out->stale || out->status != CKS_SCAN_COMPLETE)
        cks_values_release(&out->v);
    out->seconds = now() - t0;
    return err;
}
