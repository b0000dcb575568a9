/* Recording outcomes as rows (see record.h). */
#include "record.h"
#include "error.h"
#include "part.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void cks_recorder_release(cks_recorder *r)
{
    free(r->part_ref);
    r->part_ref = NULL;
}

static void point(const cks_recorder *r, const char *name)
{
    const cks_scan_hooks *h = r->cfg->h;
    if (h->point)
        h->point(h->ctx, name);
}

static const char *ref_name(const cks_recorder *r, size_t ref)
{
    return ref == CKS_PLAN_NONE ? NULL : cks_selection_info(r->sel, ref)->name;
}

/* One family's values as [N, T] rows, mapped to the file's columns cols. */
static int write_family(cks_recorder *r, size_t f, size_t row, const cks_values *v,
                        const size_t *cols, double *buf, size_t ncols, const char *ref)
{
    const cks_family *fam = r->cfg->fam[f];
    size_t count;
    const cks_metric_info *m = fam->metrics(&count);
    int is_ref = (fam->needs & CKS_FAMILY_REF) && ref;
    int err = 0;
    for (size_t k = 0; k < count && !err; k++) {
        char path[256];
        const double *src = v->vals + (r->cfg->first[f] + k) * v->n;
        snprintf(path, sizeof path, "%s/%s", fam->path, m[k].name);
        for (size_t c = 0; c < ncols; c++)
            buf[c] = NAN;
        for (size_t c = 0; c < v->n; c++)
            buf[cols[c]] = src[c];
        err = cks_store_write_row(r->store, path, row, buf, ncols, m[k].description, m[k].unit);
        if (!err && is_ref)
            err = cks_store_set_attr(r->store, path, "ref", ref);
    }
    if (!err && is_ref)
        err = cks_store_set_attr(r->store, fam->path, "ref", ref);
    return err;
}

static int write_spectra(cks_recorder *r, size_t row, const cks_values *v)
{
    for (size_t col = 0; col < v->n; col++) {
        if (!v->has_top[col])
            continue;
        char *esc = cks_store_escape_name(v->cols[col].name), path[4200];
        if (!esc)
            return cks_error_set(CKS_ENOMEM, "out of memory");
        snprintf(path, sizeof path, "/spectra/%s", esc);
        free(esc);
        int err = cks_store_write_row_f32(r->store, path, row, v->top + col * CKS_SPECTRA_K,
                                          CKS_SPECTRA_K, "rank",
                                          "largest eigenvalues of W^T W, descending (NaN past "
                                          "min(rows, cols))",
                                          NULL);
        if (err)
            return err;
    }
    return 0;
}

/* /part/tensor_order: the position of each file column in its checkpoint's own list. */
static int write_order(cks_recorder *r, size_t row, const cks_values *v, const size_t *cols,
                       double *buf, size_t ncols)
{
    for (size_t c = 0; c < ncols; c++)
        buf[c] = NAN;
    for (size_t i = 0; i < v->n; i++)
        buf[cols[i]] = (double)i;
    return cks_store_write_row(r->store, CKS_PART_ORDER, row, buf, ncols,
                               "position of each tensor in its checkpoint's own tensor list (NaN: "
                               "not in it); merge appends columns in this order",
                               NULL);
}

/* The values of a complete checkpoint at row, its columns mapped to the file's (tensors
 * the file lacks are appended, in the checkpoint's order). */
static int write_values(cks_recorder *r, size_t row, const cks_values *v, const char *ref)
{
    size_t *cols = calloc(v->n ? v->n : 1, sizeof *cols), ncols = 0;
    double *buf = NULL;
    int err = 0;
    if (!cols)
        return cks_error_set(CKS_ENOMEM, "out of memory");
    if ((err = cks_store_add_tensors(r->store, v->cols, v->n, cols)) ||
        (err = cks_store_ntensors(r->store, &ncols)))
        goto done;
    if (!(buf = malloc((ncols ? ncols : 1) * sizeof *buf))) {
        err = cks_error_set(CKS_ENOMEM, "out of memory");
        goto done;
    }
    for (size_t f = 0; f < r->cfg->nfam && !err; f++)
        if (r->cfg->fam[f]->tensor)
            err = write_family(r, f, row, v, cols, buf, ncols, ref);
    if (!err)
        err = write_spectra(r, row, v);
    if (!err)
        err = cks_items_write(&v->items, r->store, row);
    if (!err && r->part)
        err = write_order(r, row, v, cols, buf, ncols);
done:
    free(buf);
    free(cols);
    return err;
}

/* Parts: /part/prev of the row and part_ref, in the row's transaction. */
static int write_marks(cks_recorder *r, size_t row, const cks_outcome *o)
{
    int complete = o->status == CKS_SCAN_COMPLETE;
    size_t prev = complete ? o->task.prev : CKS_PLAN_NONE;
    const char *ref = ref_name(r, o->task.ref);
    int err = cks_store_write_series(r->store, CKS_PART_PREV, row,
                                     prev == CKS_PLAN_NONE ? NAN : (double)prev,
                                     "position in part_checkpoints of the checkpoint /drift/prev "
                                     "was measured against (NaN: none)",
                                     NULL);
    if (err || !complete || strcmp(r->part_ref ? r->part_ref : "", ref ? ref : "") == 0)
        return err;
    return cks_store_set_attr(r->store, "/", CKS_PART_REF, ref ? ref : "");
}

static const char *const status_names[] = {"complete", "incomplete", "failed"};

static int write_row(cks_recorder *r, const cks_outcome *o)
{
    const cks_ckpt_info *ci = cks_selection_info(r->sel, o->task.pos);
    size_t row;
    int err = cks_store_begin(r->store);
    if (err)
        return err;
    if ((err = cks_store_put_checkpoint(r->store, ci->name, ci->step, ci->commit,
                                        status_names[o->status], &row)) ||
        (err = cks_record_evals(r->store, r->sel->src, r->sel->idx[o->task.pos], row, r->cfg->h)) ||
        (o->status == CKS_SCAN_COMPLETE &&
         (err = write_values(r, row, &o->v, ref_name(r, o->task.ref)))) ||
        (r->part && (err = write_marks(r, row, o)))) {
        cks_store_abort(r->store);
        return err;
    }
    point(r, "written");
    if ((err = cks_store_commit(r->store)) != 0)
        return err;
    if (r->part && o->status == CKS_SCAN_COMPLETE) {
        const char *ref = ref_name(r, o->task.ref);
        char *dup = strdup(ref ? ref : "");
        if (!dup)
            return cks_error_set(CKS_ENOMEM, "out of memory");
        free(r->part_ref);
        r->part_ref = dup;
    }
    return 0;
}

static void report(const cks_recorder *r, cks_scan_row *ev)
{
    const cks_scan_hooks *h = r->cfg->h;
    const cks_ckpt_info *ci = cks_selection_info(r->sel, ev->pos);
    ev->nsel = r->sel->n;
    ev->name = ci->name;
    ev->step = ci->step;
    if (h->row)
        h->row(h->ctx, ev);
}

int cks_record(cks_recorder *r, const cks_outcome *o)
{
    int err = write_row(r, o);
    if (err)
        return err;
    cks_scan_summary *s = r->sum;
    s->analysed++;
    *(o->status == CKS_SCAN_COMPLETE     ? &s->complete
      : o->status == CKS_SCAN_INCOMPLETE ? &s->incomplete
                                         : &s->failed) += 1;
    cks_scan_row ev = {.kind = CKS_ROW_RECORDED,
                       .pos = o->task.pos,
                       .status = o->status,
                       .message = o->message,
                       .ntensors = o->v.n,
                       .bytes = o->bytes,
                       .seconds = o->seconds,
                       .rank = o->rank};
    report(r, &ev);
    return 0;
}

void cks_record_skip(cks_recorder *r, const cks_task *t)
{
    cks_scan_row ev = {.kind = t->action == CKS_TASK_SKIP ? CKS_ROW_SKIPPED : CKS_ROW_LEFT_OUT,
                       .pos = t->pos,
                       .rank = -1};
    r->sum->skipped++;
    report(r, &ev);
}

int cks_record_part_ref(cks_recorder *r, size_t ref)
{
    const char *name = ref_name(r, ref);
    if (!r->part || strcmp(r->part_ref ? r->part_ref : "", name ? name : "") == 0)
        return 0;
    char *dup = strdup(name ? name : "");
    if (!dup)
        return cks_error_set(CKS_ENOMEM, "out of memory");
    int err = cks_store_begin(r->store);
    if (!err && (err = cks_store_set_attr(r->store, "/", CKS_PART_REF, dup)) != 0)
        cks_store_abort(r->store);
    else if (!err)
        err = cks_store_commit(r->store);
    if (err) {
        free(dup);
        return err;
    }
    free(r->part_ref);
    r->part_ref = dup;
    return 0;
}
