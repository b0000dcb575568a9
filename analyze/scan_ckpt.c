/* One checkpoint of a scan (see scan.h): its tensors' values for every enabled metric
 * family, computed against the previous complete checkpoint and the drift reference
 * (scan_compute, no run file needed: MPI workers call it), and written as the
 * checkpoint's row in one crash-atomic transaction (scan_record). The serial loop, the
 * shards and the MPI coordinator all go through these. */
#include "error.h"
#include "scan.h"
#include "scan_evals.h"
#include "scan_ppl.h"
#include "scan_shard.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void scan_table_release(scan_table *t)
{
    for (size_t i = 0; t->token_nll && i < t->nsets; i++)
        free(t->token_nll[i]);
    free(t->token_nll);
    free(t->ntok);
    free(t->ppl_vals);
    free(t->cols);
    free(t->cur);
    free(t->vals);
    free(t->top);
    free(t->has_top);
    free(t->strings);
    memset(t, 0, sizeof *t);
}

int scan_table_alloc(const scan *sc, size_t n, scan_table *t)
{
    memset(t, 0, sizeof *t);
    t->n = n;
    for (size_t g = 0; g < sc->ngroups; g++) {
        size_t count;
        sc->groups[g]->metrics(&count);
        t->first[g] = t->nvals;
        if (sc->groups[g]->compute) /* per-checkpoint families keep their own slots */
            t->nvals += count;
    }
    t->nsets = sc->ppl ? sc->o.neval : 0;
    size_t sets = t->nsets ? t->nsets : 1;
    if (!(t->ppl_vals = malloc(sets * SCAN_PPL_VALUES * sizeof *t->ppl_vals)) ||
        !(t->token_nll = calloc(sets, sizeof *t->token_nll)) ||
        !(t->ntok = calloc(sets, sizeof *t->ntok))) {
        scan_table_release(t);
        return cks_error_set(CKS_ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < sets * SCAN_PPL_VALUES; i++)
        t->ppl_vals[i] = NAN;
    size_t cap = n ? n : 1;
    if (!(t->cols = calloc(cap, sizeof *t->cols)) || !(t->cur = calloc(cap, sizeof *t->cur)) ||
        !(t->vals = malloc(t->nvals * cap * sizeof *t->vals)) ||
        !(t->top = malloc(cap * SCAN_SPECTRA_K * sizeof *t->top)) ||
        !(t->has_top = calloc(cap, sizeof *t->has_top))) {
        scan_table_release(t);
        return cks_error_set(CKS_ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < t->nvals * cap; i++)
        t->vals[i] = NAN;
    for (size_t i = 0; i < cap * SCAN_SPECTRA_K; i++)
        t->top[i] = NAN;
    return 0;
}

/* One column per tensor of the checkpoint, in its order; write_row maps them to the run
 * file's columns (new tensors are appended in this order). */
static int table_build(scan *sc, const cks_weights *w, scan_table *t)
{
    const cks_tensor_list *l = cks_weights_tensors(w);
    int err = scan_table_alloc(sc, l->count, t);
    if (err)
        return err;
    for (size_t i = 0; i < l->count; i++) {
        const cks_tensor *x = &l->items[i];
        int64_t rows = x->ndim ? x->shape[0] : 1, cols = 1;
        for (int d = 1; d < x->ndim; d++)
            cols *= x->shape[d];
        t->cols[i] = (cks_store_tensor){(char *)x->name, x->layer, (char *)cks_kind_name(x->kind),
                                        rows, x->ndim <= 1 ? 0 : cols};
        t->cur[i] = x;
    }
    return 0;
}

static const cks_tensor *find_in(const cks_weights *w, const char *name)
{
    if (!w)
        return NULL;
    const cks_tensor_list *l = cks_weights_tensors(w);
    long i = cks_tensor_list_find(l, name);
    return i < 0 ? NULL : &l->items[i];
}

/* Drops a tensor's pages from the resident set once read: RSS stays near one tensor. */
static void dontneed(const cks_weights *w, const cks_tensor *t)
{
    if (w && t)
        cks_map_dontneed(cks_weights_file(w, t->file), t->data, t->nbytes);
}

static void progress(scan *sc, size_t pos, const char *ckpt, const char *tensor, double frac,
                     double bytes, double t0)
{
    double now = cli_now(), rate = bytes / (now - t0 + 1e-9);
    double done = (double)sc->analysed + frac; /* checkpoints' worth of analysis so far */
    char eta[32] = "--:--:--";
    if (done > 0.02) {
        long left = (long)((now - sc->t_start) / done * ((double)(sc->nsel - pos) - frac));
        snprintf(eta, sizeof eta, "%ld:%02ld:%02ld", left / 3600, left / 60 % 60, left % 60);
    }
    cli_progress_update(&sc->prog, "[%zu/%zu] %s %s  %.0f MB/s  ETA %s", pos + 1, sc->nsel, ckpt,
                        tensor, rate / 1e6, eta);
}

typedef struct {
    const cks_weights *w, *prev, *ref;
    int64_t prev_step, ref_step;
    const char *prev_name, *ref_name;
} views;

static void warn(scan *sc, const char *ckpt, const char *what, const char *msg)
{
    cli_progress_done(&sc->prog);
    fprintf(stderr, "ckptscope scan: warning: %s: %s: %s\n", ckpt, what, msg);
}

/* Every enabled family for every tensor of the current checkpoint, tensor by tensor (its
 * pages are read once for all families). */
static int compute(scan *sc, size_t pos, const views *v, scan_table *t, double *bytes)
{
    const cks_ckpt_info *ci = cks_source_ckpt(sc->src, sc->sel[pos]);
    double t0 = cli_now(), total = 0;
    for (size_t col = 0; col < t->n; col++)
        total += t->cur[col] ? (double)t->cur[col]->nbytes : 0;
    *bytes = 0;
    for (size_t col = 0; col < t->n; col++) {
        const cks_tensor *x = t->cur[col];
        if (!x)
            continue;
        if (scan_interrupted)
            return cks_error_set(CKS_EINTR, "interrupted");
        progress(sc, pos, ci->name, x->name, total > 0 ? *bytes / total : 0, *bytes, t0);
        const cks_tensor *tp = find_in(v->prev, x->name), *tr = find_in(v->ref, x->name);
        scan_input in = {.t = x,
                         .step = ci->step,
                         .prev = tp,
                         .ref = tr,
                         .prev_step = v->prev_step,
                         .ref_step = v->ref_step,
                         .threads = sc->o.threads,
                         .top = t->top + col * SCAN_SPECTRA_K,
                         .has_top = &t->has_top[col]};
        for (size_t g = 0; g < sc->ngroups; g++) {
            double out[64];
            size_t count;
            sc->groups[g]->metrics(&count);
            if (!sc->groups[g]->compute)
                continue;
            if (sc->groups[g]->compute(&in, out) != 0) {
                char what[300];
                const char *against = strcmp(sc->groups[g]->path, "/drift/prev") == 0 ? v->prev_name
                                      : strcmp(sc->groups[g]->path, "/drift/ref") == 0 ? v->ref_name
                                                                                       : NULL;
                snprintf(what, sizeof what, "%s%s%s", sc->groups[g]->path + 1,
                         against ? " against " : "", against ? against : "");
                warn(sc, ci->name, what, cks_error_last());
                continue;
            }
            for (size_t m = 0; m < count && m < 64; m++)
                t->vals[(t->first[g] + m) * t->n + col] = out[m];
        }
        *bytes += (double)x->nbytes;
        dontneed(v->w, x);
        dontneed(v->prev, tp);
        dontneed(v->ref, tr);
        scan_test_point("tensor", sc);
    }
    return 0;
}

/* Writes the values of t (NULL: a row of NaN) at row, t's columns mapped to the run
 * file's (tensors it lacks are appended, in t's order). */
static int write_values(scan *sc, size_t row, const scan_table *t)
{
    cks_store *st = sc->store;
    const char *ref = sc->ref_idx != SIZE_MAX ? cks_source_ckpt(sc->src, sc->ref_idx)->name : NULL;
    size_t *cols = NULL, ncols = 0;
    double *v = NULL;
    int err = 0;
    if (!t)
        return 0;
    if (!(cols = calloc(t->n ? t->n : 1, sizeof *cols))) {
        err = cks_error_set(CKS_ENOMEM, "out of memory");
        goto done;
    }
    if ((err = cks_store_add_tensors(st, t->cols, t->n, cols)) ||
        (err = cks_store_ntensors(st, &ncols)))
        goto done;
    if (!(v = malloc((ncols ? ncols : 1) * sizeof *v))) {
        err = cks_error_set(CKS_ENOMEM, "out of memory");
        goto done;
    }
    for (size_t g = 0; g < sc->ngroups; g++) {
        size_t count;
        const cks_metric_info *m = sc->groups[g]->metrics(&count);
        int is_ref = strcmp(sc->groups[g]->path, "/drift/ref") == 0;
        if (!sc->groups[g]->compute)
            continue;
        for (size_t k = 0; k < count; k++) {
            char path[256];
            const double *src = t->vals + (t->first[g] + k) * t->n;
            snprintf(path, sizeof path, "%s/%s", sc->groups[g]->path, m[k].name);
            for (size_t c = 0; c < ncols; c++)
                v[c] = NAN;
            for (size_t c = 0; c < t->n; c++)
                v[cols[c]] = src[c];
            if ((err = cks_store_write_row(st, path, row, v, ncols, m[k].description, m[k].unit)) ||
                (is_ref && ref && (err = cks_store_set_attr(st, path, "ref", ref))))
                goto done;
        }
        if (is_ref && ref && (err = cks_store_set_attr(st, "/drift/ref", "ref", ref)))
            goto done;
    }
    for (size_t col = 0; col < t->n; col++) {
        if (!t->has_top[col])
            continue;
        char *esc = cks_store_escape_name(t->cols[col].name), path[4200];
        if (!esc) {
            err = cks_error_set(CKS_ENOMEM, "out of memory");
            goto done;
        }
        snprintf(path, sizeof path, "/spectra/%s", esc);
        free(esc);
        if ((err = cks_store_write_row_f32(st, path, row, t->top + col * SCAN_SPECTRA_K,
                                           SCAN_SPECTRA_K, "rank",
                                           "largest eigenvalues of W^T W, descending (NaN past "
                                           "min(rows, cols))",
                                           NULL)))
            goto done;
    }
    if (sc->ppl && (err = scan_ppl_write(sc, row, t)) != 0)
        goto done;
    if (sc->shard)
        err = scan_shard_write_row(sc, row, t, cols);
done:
    free(v);
    free(cols);
    return err;
}

/* Writes a checkpoint's row in one transaction; t is NULL for a row of NaN. */
static int write_row(scan *sc, const cks_ckpt_info *ci, const char *status, const scan_table *t,
                     size_t prev_pos)
{
    cks_store *st = sc->store;
    size_t row;
    int err = cks_store_begin(st);
    if (err)
        return err;
    if ((err = cks_store_put_checkpoint(st, ci->name, ci->step, ci->commit, status, &row)) ||
        (err = scan_evals_import(st, sc->src, ci->name, row, &sc->prog, NULL)) ||
        (err = write_values(sc, row, t)) ||
        (sc->shard && (err = scan_shard_write_prev(sc, row, t ? prev_pos : SIZE_MAX))))
        goto fail;
    scan_test_point("written", sc);
    return cks_store_commit(st);
fail:
    cks_store_abort(st);
    return err;
}

/* "1 file missing; fetch with: git lfs fetch ..." for an incomplete checkpoint. */
static void missing_text(const cks_source *src, size_t idx, char *buf, size_t cap)
{
    cks_ckpt *c;
    size_t missing = 0;
    char hint[1024] = "";
    snprintf(buf, cap, "Git LFS objects missing");
    if (cks_ckpt_open(&c, src, idx) != 0) {
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

void scan_report(scan *sc, size_t pos, const char *fmt, ...)
{
    if (sc->o.quiet)
        return;
    const cks_ckpt_info *ci = cks_source_ckpt(sc->src, sc->sel[pos]);
    va_list ap;
    cli_progress_done(&sc->prog);
    fprintf(stderr, "ckptscope scan: [%zu/%zu] %s (step %lld): ", pos + 1, sc->nsel, ci->name,
            (long long)ci->step);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

/* A file that shrank or failed to read while its tensors were computed (the SIGBUS
 * guard, map.h) gave zeros: the values computed from it are discarded and the checkpoint
 * fails, naming the file. The faulted checkpoint is unmapped, so that a later use (as the
 * previous checkpoint or the reference) maps it afresh instead of reading zeros. */
static int check_faults(scan *sc, const views *v)
{
    const cks_weights *w[3] = {v->w, v->prev, v->ref};
    int err = 0;
    for (int k = 0; k < 3; k++) {
        if (!w[k] || cks_weights_check(w[k]) == 0)
            continue;
        if (!err)
            err = CKS_EIO; /* the first faulted file names the error */
        else
            cks_error_clear();
        for (int i = 0; i < SCAN_SLOTS; i++)
            if (sc->slots[i].w == w[k])
                scan_slot_release(&sc->slots[i]);
    }
    return err;
}

int scan_compute(scan *sc, size_t pos, size_t prev_pos, scan_outcome *out)
{
    size_t idx = sc->sel[pos], prev = prev_pos == SIZE_MAX ? SIZE_MAX : sc->sel[prev_pos];
    const cks_ckpt_info *ci = cks_source_ckpt(sc->src, idx);
    const size_t keep[3] = {idx, prev, sc->ref_idx};
    views v = {NULL, NULL, NULL, -1, -1, NULL, NULL};
    double t0 = cli_now();
    memset(out, 0, sizeof *out);
    out->pos = pos;
    out->prev_pos = prev_pos;
    out->rank = -1;
    int err = scan_slot_get(sc, idx, keep, &v.w);
    if (err == CKS_EINCOMPLETE) {
        out->status = SCAN_INCOMPLETE;
        missing_text(sc->src, idx, out->message, sizeof out->message);
        return 0;
    }
    if (err) {
        out->status = SCAN_FAILED;
        snprintf(out->message, sizeof out->message, "%s", cks_error_last());
        return 0;
    }
    if (prev != SIZE_MAX) {
        if (scan_slot_get(sc, prev, keep, &v.prev) != 0)
            warn(sc, ci->name, "drift/prev", cks_error_last());
        v.prev_name = cks_source_ckpt(sc->src, prev)->name;
        v.prev_step = cks_source_ckpt(sc->src, prev)->step;
    }
    if (sc->ref_idx != SIZE_MAX) {
        if (scan_slot_get(sc, sc->ref_idx, keep, &v.ref) != 0)
            warn(sc, ci->name, "drift/ref", cks_error_last());
        v.ref_name = cks_source_ckpt(sc->src, sc->ref_idx)->name;
        v.ref_step = cks_source_ckpt(sc->src, sc->ref_idx)->step;
    }
    out->status = SCAN_COMPLETE;
    if ((err = table_build(sc, v.w, &out->t)) == 0)
        err = compute(sc, pos, &v, &out->t, &out->bytes);
    if (!err && sc->ppl) {
        cli_progress_update(&sc->prog, "[%zu/%zu] %s perplexity", pos + 1, sc->nsel, ci->name);
        if (scan_ppl_compute(sc, idx, v.w, &out->t) != 0)
            warn(sc, ci->name, "eval (ppl)", cks_error_last());
    }
    out->seconds = cli_now() - t0;
    if (err)
        scan_table_release(&out->t);
    else if (check_faults(sc, &v) != 0) {
        scan_table_release(&out->t);
        out->status = SCAN_FAILED;
        snprintf(out->message, sizeof out->message, "%s", cks_error_last());
    }
    return err;
}

int scan_record(scan *sc, const scan_outcome *o)
{
    const cks_ckpt_info *ci = cks_source_ckpt(sc->src, sc->sel[o->pos]);
    static const char *const names[] = {"complete", "incomplete", "failed"};
    char where[32] = "", size[32];
    int err =
        write_row(sc, ci, names[o->status], o->status == SCAN_COMPLETE ? &o->t : NULL, o->prev_pos);
    if (err)
        return err;
    if (o->rank >= 0)
        snprintf(where, sizeof where, " on rank %d", o->rank);
    switch (o->status) {
    case SCAN_INCOMPLETE:
        sc->incomplete++;
        scan_report(sc, o->pos, "incomplete: %s", o->message);
        break;
    case SCAN_FAILED:
        sc->failed++;
        cli_progress_done(&sc->prog);
        fprintf(stderr, "ckptscope scan: error: %s failed%s: %s\n", ci->name, where, o->message);
        break;
    case SCAN_COMPLETE:
        sc->complete++;
        scan_report(sc, o->pos, "complete, %zu tensors, %s in %.2f s%s", o->t.n,
                    cli_human_bytes((uint64_t)o->bytes, size, sizeof size), o->seconds, where);
        break;
    }
    return 0;
}

/* Analyses selected checkpoint pos against prev_pos (SIZE_MAX: none) and the reference,
 * and records it. *complete tells whether it is now complete. Returns non-zero only for
 * errors that stop the scan (the run file cannot be written, an interrupt). */
int scan_analyse(scan *sc, size_t pos, size_t prev_pos, int *complete)
{
    scan_outcome o;
    int err = scan_compute(sc, pos, prev_pos, &o);
    *complete = 0;
    if (err)
        return err;
    if (o.status == SCAN_COMPLETE)
        scan_test_point("analysed", sc);
    if ((err = scan_record(sc, &o)) == 0)
        *complete = o.status == SCAN_COMPLETE;
    scan_table_release(&o.t);
    return err;
}
