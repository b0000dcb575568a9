/* ckptscope scan: walks the checkpoints of a source in step order, computes the enabled
 * metric families (scan_metrics.h) for every tensor, and appends one row per checkpoint
 * to the run file, each in its own crash-atomic transaction (reports/store.h). At most
 * three checkpoints are mapped at a time: the current one, the previous complete one
 * and the drift reference. */
#include "cli.h"
#include "cmd.h"
#include "error.h"
#include "scan_evals.h"
#include "scan_metrics.h"
#include "store.h"
#include "weights.h"

#include <fnmatch.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#define SLOTS 3 /* checkpoints mapped at once: current, previous, reference */

static const char usage_text[] =
    "usage: ckptscope scan SOURCE -o RUN.h5 [--metrics LIST] [--branches GLOB]\n"
    "                      [--every K] [--ref REF] [--resume] [--threads N] [--quiet]\n"
    "\n"
    "Analyse the checkpoints of SOURCE in step order and write their time series to the\n"
    "HDF5 run file RUN.h5: one row per checkpoint, one column per tensor.\n"
    "\n"
    "  -o, --output RUN.h5  the run file (required); it must not exist, unless --resume\n"
    "  --metrics LIST       comma-separated metric families (default: every one built in,\n"
    "                       here '%s'); a resumed scan keeps the file's families\n"
    "  --branches GLOB      checkpoints to scan (default 'ckpt_*')\n"
    "  --every K            only every K-th checkpoint in step order, from the first\n"
    "  --ref REF            drift reference (default: the first complete checkpoint); a\n"
    "                       resumed scan keeps the file's reference\n"
    "  --resume             continue RUN.h5 (or start it when missing): checkpoints it\n"
    "                       holds as complete with the same commit are skipped, those\n"
    "                       whose commit changed are analysed again in their row\n"
    "  --threads N          threads for the metrics (default: all CPUs)\n"
    "  --quiet              no progress line and no line per checkpoint\n"
    "  -h, --help           this help\n"
    "\n"
    "/drift/prev compares each checkpoint with the last complete one before it among the\n"
    "checkpoints scanned; /drift/ref with the reference (attribute 'ref').\n"
    "Checkpoints with missing Git LFS objects are recorded as 'incomplete' (NaN values),\n"
    "ones that cannot be read as 'failed' (the error on stderr); the scan goes on. Each\n"
    "checkpoint is saved atomically when it is reported finished: after a crash or kill,\n"
    "RUN.h5 holds every finished checkpoint and --resume completes the rest.\n"
    "lm-eval result files eval_*.json at the top of a checkpoint are imported into\n"
    "/evals with its row (see 'ckptscope evals --help'); unreadable ones are warnings.\n"
    "\n"
    "Exit status: 0 when every checkpoint was analysed or skipped, incomplete ones\n"
    "included; 2 when a checkpoint failed (after the others are done), on bad usage or\n"
    "input, or when interrupted (the finished checkpoints are kept).\n";

typedef struct {
    const char *source, *output, *metrics, *branches, *ref;
    int64_t every;
    int resume, threads, quiet;
} options;

/* A checkpoint mapped for reading. */
typedef struct {
    size_t idx; /* index in the source; SIZE_MAX when the slot is empty */
    cks_ckpt *c;
    cks_weights *w;
} slot;

/* What the run file held for a selected checkpoint when the scan started. */
typedef struct {
    int same; /* a complete row with the checkpoint's current commit */
    int any;  /* a complete row, whatever its commit */
} ckpt_state;

typedef struct {
    options o;
    cks_source *src;
    cks_store *store;
    size_t *sel, nsel; /* selected checkpoints (source indices, step order) */
    ckpt_state *state; /* per selected checkpoint */
    const scan_group *groups[SCAN_MAX_GROUPS];
    size_t ngroups;
    char canon[256];
    size_t ref_idx; /* source index of the drift reference; SIZE_MAX when none */
    slot slots[SLOTS];
    cli_progress prog;
    double t_start;
    size_t analysed, complete, incomplete, failed, skipped;
    /* test hook: CKS_TEST_KILL_AT=point:n kills the process at the n-th point */
    char kill_point[32];
    long kill_count;
} scan;

static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
    interrupted = sig;
}

/* ---- the kill hook for the crash tests ---- */

static void test_point(const char *point, void *ctx)
{
    scan *sc = ctx;
    if (sc->kill_count > 0 && strcmp(point, sc->kill_point) == 0 && --sc->kill_count == 0)
        raise(SIGKILL);
}

static void test_hook_init(scan *sc)
{
    const char *v = getenv("CKS_TEST_KILL_AT");
    const char *colon = v ? strchr(v, ':') : NULL;
    if (!colon || (size_t)(colon - v) >= sizeof sc->kill_point)
        return;
    memcpy(sc->kill_point, v, (size_t)(colon - v));
    sc->kill_point[colon - v] = '\0';
    sc->kill_count = strtol(colon + 1, NULL, 10);
}

/* ---- mapped checkpoints ---- */

static void slot_release(slot *s)
{
    cks_weights_free(s->w);
    cks_ckpt_free(s->c);
    s->w = NULL;
    s->c = NULL;
    s->idx = SIZE_MAX;
}

/* The weights of checkpoint idx, mapping it in a free slot when needed. Slots whose
 * checkpoint is not in keep[0..2] are released first, so at most SLOTS are mapped. */
static int slot_get(scan *sc, size_t idx, const size_t keep[3], const cks_weights **out)
{
    for (int i = 0; i < SLOTS; i++) {
        if (sc->slots[i].idx == idx) {
            *out = sc->slots[i].w;
            return 0;
        }
    }
    for (int i = 0; i < SLOTS; i++) {
        size_t k = sc->slots[i].idx;
        if (k != SIZE_MAX && k != keep[0] && k != keep[1] && k != keep[2])
            slot_release(&sc->slots[i]);
    }
    for (int i = 0; i < SLOTS; i++) {
        slot *s = &sc->slots[i];
        if (s->idx != SIZE_MAX)
            continue;
        int err = cks_ckpt_open(&s->c, sc->src, idx);
        if (!err && !cks_ckpt_complete(s->c))
            err = cks_error_set(CKS_EINCOMPLETE, "%s@%s: incomplete (Git LFS objects missing)",
                                cks_source_path(sc->src), cks_source_ckpt(sc->src, idx)->name);
        if (!err)
            err = cks_weights_open(&s->w, s->c);
        if (err) {
            slot_release(s);
            return err;
        }
        s->idx = idx;
        *out = s->w;
        return 0;
    }
    return cks_error_set(CKS_ERROR, "internal: no free checkpoint slot");
}

/* ---- the run file ---- */

static int read_config(const cks_source *src, size_t idx, char **out)
{
    cks_ckpt *c;
    size_t len;
    *out = NULL;
    if (cks_ckpt_open(&c, src, idx) != 0)
        return 0; /* reported when the checkpoint is scanned */
    cks_ckpt_read(c, "config.json", CKS_MAX_SMALL_FILE, out, &len);
    cks_ckpt_free(c);
    cks_error_clear();
    return 0;
}

static int open_store(scan *sc)
{
    options *o = &sc->o;
    int err = cks_store_open(&sc->store, o->output, CKS_STORE_WRITE);
    if (err == 0 && !o->resume) {
        cks_store_free(sc->store);
        sc->store = NULL;
        return cks_error_set(CKS_EEXISTS,
                             "%s exists: pass --resume to continue it, or choose another -o",
                             o->output);
    }
    if (err == CKS_ENOTFOUND) {
        char *config = NULL, *abs = realpath(o->source, NULL);
        read_config(sc->src, sc->sel[0], &config);
        /* the families are a root attribute from the start: a file killed before its
         * first checkpoint must still say what a resumed scan has to compute */
        const char *attrs[] = {"metrics", sc->canon, NULL};
        cks_store_meta meta = {abs ? abs : o->source, config, NULL, attrs};
        err = cks_store_create(&sc->store, o->output, &meta);
        free(config);
        free(abs);
        return err;
    }
    if (err)
        return err;
    char *have = NULL;
    err = cks_store_get_attr(sc->store, "/", "metrics", &have);
    if (err == 0 && strcmp(have, sc->canon) != 0 && o->metrics) {
        err = cks_error_set(CKS_EINVAL,
                            "%s holds the metric families '%s'; --metrics '%s' would leave "
                            "rows without them: resume with the same --metrics or write a new "
                            "file",
                            o->output, have, o->metrics);
    } else if (err == 0 && strcmp(have, sc->canon) != 0) {
        /* the file's families, not the default */
        err = scan_groups_parse(have, sc->groups, &sc->ngroups, sc->canon, sizeof sc->canon);
        if (err)
            cks_error_prefix(err, "%s", o->output);
    } else if (err == CKS_ENOTFOUND) {
        err = cks_error_set(CKS_EFORMAT, "%s: run file without a 'metrics' attribute", o->output);
    }
    free(have);
    return err;
}

/* ---- choosing checkpoints ---- */

static int select_checkpoints(scan *sc)
{
    size_t n = cks_source_count(sc->src), k = 0;
    if (!(sc->sel = calloc(n, sizeof *sc->sel)) || !(sc->state = calloc(n, sizeof *sc->state)))
        return cks_error_set(CKS_ENOMEM, "out of memory");
    for (size_t i = 0; i < n; i += (size_t)sc->o.every)
        sc->sel[k++] = i;
    sc->nsel = k;
    return 0;
}

/* Marks which selected checkpoints the file holds as complete with their commit. */
static int load_state(scan *sc)
{
    cks_store_ckpt *c;
    size_t n;
    int err = cks_store_checkpoints(sc->store, &c, &n);
    if (err)
        return err;
    for (size_t i = 0; i < sc->nsel; i++) {
        const cks_ckpt_info *ci = cks_source_ckpt(sc->src, sc->sel[i]);
        for (size_t r = 0; r < n; r++) {
            if (strcmp(c[r].name, ci->name) != 0 || strcmp(c[r].status, "complete") != 0)
                continue;
            sc->state[i].any = 1;
            sc->state[i].same = strcmp(c[r].commit, ci->commit ? ci->commit : "") == 0;
        }
    }
    cks_store_ckpts_free(c, n);
    return 0;
}

/* The drift reference: the file's (resume), --ref, or the first selected checkpoint whose
 * weights open. */
static int choose_ref(scan *sc)
{
    int drift = 0;
    for (size_t g = 0; g < sc->ngroups; g++)
        drift |= strcmp(sc->groups[g]->option, "drift") == 0;
    sc->ref_idx = SIZE_MAX;
    if (!drift)
        return 0;
    char *stored = NULL;
    int err = cks_store_get_attr(sc->store, "/drift/ref", "ref", &stored);
    if (err && err != CKS_ENOTFOUND)
        return err;
    err = 0;
    const char *name = stored ? stored : sc->o.ref;
    if (stored && sc->o.ref && strcmp(stored, sc->o.ref) != 0) {
        err = cks_error_set(CKS_EINVAL,
                            "%s measures drift against '%s'; --ref %s would mix references: "
                            "write a new file",
                            sc->o.output, stored, sc->o.ref);
    } else if (name) {
        size_t idx;
        const size_t keep[3] = {SIZE_MAX, SIZE_MAX, SIZE_MAX};
        const cks_weights *w;
        if ((err = cks_source_find(sc->src, name, &idx)) != 0)
            cks_error_prefix(err, "--ref");
        else if ((err = slot_get(sc, idx, keep, &w)) != 0)
            cks_error_prefix(err, "reference %s", name);
        else
            sc->ref_idx = idx;
    } else {
        for (size_t i = 0; i < sc->nsel && sc->ref_idx == SIZE_MAX && !interrupted; i++) {
            const size_t keep[3] = {SIZE_MAX, SIZE_MAX, SIZE_MAX};
            const cks_weights *w;
            if (slot_get(sc, sc->sel[i], keep, &w) == 0)
                sc->ref_idx = sc->sel[i];
        }
        cks_error_clear();
    }
    free(stored);
    return err;
}

/* ---- one checkpoint ---- */

/* The values of one checkpoint before they are written: one column per tensor of the
 * run file (the file's columns first, then this checkpoint's new tensors). */
typedef struct {
    cks_store_tensor *have; /* the file's columns (owned) */
    size_t nhave;
    cks_store_tensor *cols; /* have + new ones (strings borrowed) */
    size_t n;
    const cks_tensor **cur;               /* per column: the tensor in this checkpoint, or NULL */
    size_t first[SCAN_MAX_GROUPS], nvals; /* group g's metric m is row first[g] + m */
    double *vals;                         /* nvals x n */
    float *top;                           /* n x SCAN_SPECTRA_K */
    int *has_top;                         /* per column */
} table;

static void table_release(table *t)
{
    cks_store_tensors_free(t->have, t->nhave);
    free(t->cols);
    free(t->cur);
    free(t->vals);
    free(t->top);
    free(t->has_top);
    memset(t, 0, sizeof *t);
}

static int table_build(scan *sc, const cks_weights *w, table *t)
{
    const cks_tensor_list *l = cks_weights_tensors(w);
    memset(t, 0, sizeof *t);
    int err = cks_store_tensors(sc->store, &t->have, &t->nhave);
    if (err)
        return err;
    size_t cap = t->nhave + l->count + 1;
    if (!(t->cols = calloc(cap, sizeof *t->cols)) || !(t->cur = calloc(cap, sizeof *t->cur)))
        return cks_error_set(CKS_ENOMEM, "out of memory");
    for (size_t i = 0; i < t->nhave; i++)
        t->cols[t->n++] = t->have[i];
    for (size_t i = 0; i < l->count; i++) {
        const cks_tensor *x = &l->items[i];
        long col = -1;
        for (size_t k = 0; k < t->nhave && col < 0; k++)
            if (strcmp(t->have[k].name, x->name) == 0)
                col = (long)k;
        if (col < 0) {
            int64_t rows = x->ndim ? x->shape[0] : 1, cols = 1;
            for (int d = 1; d < x->ndim; d++)
                cols *= x->shape[d];
            col = (long)t->n;
            t->cols[t->n++] =
                (cks_store_tensor){(char *)x->name, x->layer, (char *)cks_kind_name(x->kind), rows,
                                   x->ndim <= 1 ? 0 : cols};
        }
        t->cur[col] = x;
    }
    for (size_t g = 0; g < sc->ngroups; g++) {
        size_t count;
        sc->groups[g]->metrics(&count);
        t->first[g] = t->nvals;
        t->nvals += count;
    }
    size_t n = t->n ? t->n : 1;
    if (!(t->vals = malloc(t->nvals * n * sizeof *t->vals)) ||
        !(t->top = malloc(n * SCAN_SPECTRA_K * sizeof *t->top)) ||
        !(t->has_top = calloc(n, sizeof *t->has_top)))
        return cks_error_set(CKS_ENOMEM, "out of memory");
    for (size_t i = 0; i < t->nvals * n; i++)
        t->vals[i] = NAN;
    for (size_t i = 0; i < n * SCAN_SPECTRA_K; i++)
        t->top[i] = NAN;
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
static int compute(scan *sc, size_t pos, const views *v, table *t, double *bytes)
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
        if (interrupted)
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
        test_point("tensor", sc);
    }
    return 0;
}

/* Writes a checkpoint's row in one transaction; t is NULL for a row of NaN. */
static int write_row(scan *sc, const cks_ckpt_info *ci, const char *status, const table *t)
{
    cks_store *st = sc->store;
    const char *ref = sc->ref_idx != SIZE_MAX ? cks_source_ckpt(sc->src, sc->ref_idx)->name : NULL;
    size_t row;
    int err = cks_store_begin(st);
    if (err)
        return err;
    if ((err = cks_store_put_checkpoint(st, ci->name, ci->step, ci->commit, status, &row)) ||
        (err = scan_evals_import(st, sc->src, ci->name, row, &sc->prog, NULL)) ||
        (t && (err = cks_store_add_tensors(st, t->cols, t->n, NULL))))
        goto fail;
    for (size_t g = 0; t && g < sc->ngroups; g++) {
        size_t count;
        const cks_metric_info *m = sc->groups[g]->metrics(&count);
        int is_ref = strcmp(sc->groups[g]->path, "/drift/ref") == 0;
        for (size_t k = 0; k < count; k++) {
            char path[256];
            snprintf(path, sizeof path, "%s/%s", sc->groups[g]->path, m[k].name);
            if ((err = cks_store_write_row(st, path, row, t->vals + (t->first[g] + k) * t->n, t->n,
                                           m[k].description, m[k].unit)) ||
                (is_ref && ref && (err = cks_store_set_attr(st, path, "ref", ref))))
                goto fail;
        }
        if (is_ref && ref && (err = cks_store_set_attr(st, "/drift/ref", "ref", ref)))
            goto fail;
    }
    for (size_t col = 0; t && col < t->n; col++) {
        if (!t->has_top[col])
            continue;
        char *esc = cks_store_escape_name(t->cols[col].name), path[4200];
        if (!esc) {
            err = cks_error_set(CKS_ENOMEM, "out of memory");
            goto fail;
        }
        snprintf(path, sizeof path, "/spectra/%s", esc);
        free(esc);
        if ((err = cks_store_write_row_f32(st, path, row, t->top + col * SCAN_SPECTRA_K,
                                           SCAN_SPECTRA_K, "rank",
                                           "largest eigenvalues of W^T W, descending (NaN past "
                                           "min(rows, cols))",
                                           NULL)))
            goto fail;
    }
    test_point("written", sc);
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

static void report(scan *sc, size_t pos, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void report(scan *sc, size_t pos, const char *fmt, ...)
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

/* Analyses selected checkpoint pos against prev_pos (SIZE_MAX: none) and the reference,
 * and records it. *complete tells whether it is now complete. Returns non-zero only for
 * errors that stop the scan (the run file cannot be written, an interrupt). */
static int analyse(scan *sc, size_t pos, size_t prev_pos, int *complete)
{
    size_t idx = sc->sel[pos], prev = prev_pos == SIZE_MAX ? SIZE_MAX : sc->sel[prev_pos];
    const cks_ckpt_info *ci = cks_source_ckpt(sc->src, idx);
    const size_t keep[3] = {idx, prev, sc->ref_idx};
    views v = {NULL, NULL, NULL, -1, -1, NULL, NULL};
    table t;
    double t0 = cli_now(), bytes = 0;
    int err = slot_get(sc, idx, keep, &v.w);
    *complete = 0;
    memset(&t, 0, sizeof t);
    if (err == CKS_EINCOMPLETE) {
        char why[1200];
        missing_text(sc->src, idx, why, sizeof why);
        if ((err = write_row(sc, ci, "incomplete", NULL)) == 0) {
            sc->incomplete++;
            report(sc, pos, "incomplete: %s", why);
        }
        return err;
    }
    if (err) {
        char msg[1100];
        snprintf(msg, sizeof msg, "%s", cks_error_last());
        if ((err = write_row(sc, ci, "failed", NULL)) == 0) {
            sc->failed++;
            cli_progress_done(&sc->prog);
            fprintf(stderr, "ckptscope scan: error: %s failed: %s\n", ci->name, msg);
        }
        return err;
    }
    if (prev != SIZE_MAX) {
        if (slot_get(sc, prev, keep, &v.prev) != 0)
            warn(sc, ci->name, "drift/prev", cks_error_last());
        v.prev_name = cks_source_ckpt(sc->src, prev)->name;
        v.prev_step = cks_source_ckpt(sc->src, prev)->step;
    }
    if (sc->ref_idx != SIZE_MAX) {
        if (slot_get(sc, sc->ref_idx, keep, &v.ref) != 0)
            warn(sc, ci->name, "drift/ref", cks_error_last());
        v.ref_name = cks_source_ckpt(sc->src, sc->ref_idx)->name;
        v.ref_step = cks_source_ckpt(sc->src, sc->ref_idx)->step;
    }
    if ((err = table_build(sc, v.w, &t)) == 0 && (err = compute(sc, pos, &v, &t, &bytes)) == 0) {
        test_point("analysed", sc);
        err = write_row(sc, ci, "complete", &t);
    }
    if (err == 0) {
        char size[32];
        *complete = 1;
        sc->complete++;
        report(sc, pos, "complete, %zu tensors, %s in %.2f s", cks_weights_tensors(v.w)->count,
               cli_human_bytes((uint64_t)bytes, size, sizeof size), cli_now() - t0);
    }
    table_release(&t);
    return err;
}

/* Walks the selected checkpoints. A checkpoint the file holds as complete with the same
 * commit is skipped unless something before it changed since it was written (a checkpoint
 * analysed now that was missing, incomplete, failed or of another commit), which makes its
 * drift against the previous checkpoint stale; then it is analysed again, once. */
static int run(scan *sc)
{
    size_t prev_pos = SIZE_MAX;
    int dirty = 0, err = 0;
    /* a reference whose commit changed makes every drift/ref value stale */
    for (size_t i = 0; i < sc->nsel; i++)
        if (sc->sel[i] == sc->ref_idx && sc->state[i].any && !sc->state[i].same)
            dirty = 2;
    for (size_t pos = 0; pos < sc->nsel && !err; pos++) {
        const ckpt_state *st = &sc->state[pos];
        if (interrupted) {
            err = cks_error_set(CKS_EINTR, "interrupted");
            break;
        }
        if (st->same && !dirty) {
            sc->skipped++;
            prev_pos = pos;
            report(sc, pos, "already complete in %s: skipped", sc->o.output);
            continue;
        }
        int complete;
        if ((err = analyse(sc, pos, prev_pos, &complete)) != 0)
            break;
        sc->analysed++;
        int changed = !(st->same && complete) && (complete || st->any);
        if (dirty != 2)
            dirty = changed ? 1 : complete ? 0 : dirty;
        if (complete)
            prev_pos = pos;
    }
    cli_progress_done(&sc->prog);
    return err;
}

/* ---- the command ---- */

static int parse_args(int argc, char **argv, options *o)
{
    static const struct option opts[] = {
        {"output", required_argument, NULL, 'o'},   {"metrics", required_argument, NULL, 'm'},
        {"branches", required_argument, NULL, 'b'}, {"every", required_argument, NULL, 'e'},
        {"ref", required_argument, NULL, 'r'},      {"resume", no_argument, NULL, 'R'},
        {"threads", required_argument, NULL, 'T'},  {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},           {NULL, 0, NULL, 0}};
    int c;
    o->every = 1;
    o->threads = cli_default_threads();
    optind = 0;
    while ((c = getopt_long(argc, argv, "o:h", opts, NULL)) != -1) {
        switch (c) {
        case 'o':
            o->output = optarg;
            break;
        case 'm':
            o->metrics = optarg;
            break;
        case 'b':
            o->branches = optarg;
            break;
        case 'e':
            if (cli_parse_int("scan", "--every", optarg, 1, CKS_MAX_CHECKPOINTS, &o->every) != 0)
                return CLI_USAGE;
            break;
        case 'r':
            o->ref = optarg;
            break;
        case 'R':
            o->resume = 1;
            break;
        case 'T':
            if (cli_parse_threads("scan", optarg, &o->threads) != 0)
                return CLI_USAGE;
            break;
        case 'q':
            o->quiet = 1;
            break;
        case 'h':
            printf(usage_text, scan_default_metrics());
            return -1;
        default:
            return cli_usage_error("scan", "unknown option");
        }
    }
    if (optind != argc - 1)
        return cli_usage_error("scan", "expected one SOURCE");
    if (!o->output)
        return cli_usage_error("scan", "the run file is required: -o RUN.h5");
    o->source = argv[optind];
    return 0;
}

static int setup(scan *sc)
{
    size_t ref;
    int err;
    if ((err = scan_groups_parse(sc->o.metrics ? sc->o.metrics : scan_default_metrics(), sc->groups,
                                 &sc->ngroups, sc->canon, sizeof sc->canon)) ||
        (err = cks_source_open(&sc->src, sc->o.source, sc->o.branches)) ||
        (err = select_checkpoints(sc)))
        return err;
    /* a bad --ref is refused before a new run file is created */
    if (sc->o.ref && (err = cks_source_find(sc->src, sc->o.ref, &ref)) != 0)
        return cks_error_prefix(err, "--ref");
    if ((err = open_store(sc)) != 0)
        return err;
    test_point("opened", sc);
    if ((err = load_state(sc)) != 0)
        return err;
    return choose_ref(sc);
}

int cmd_scan(int argc, char **argv)
{
    scan sc;
    memset(&sc, 0, sizeof sc);
    for (int i = 0; i < SLOTS; i++)
        sc.slots[i].idx = SIZE_MAX;
    int err, status = parse_args(argc, argv, &sc.o);
    if (status)
        return status < 0 ? cli_finish("scan", 0) : status;
    struct sigaction sa, old_int, old_term;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
    interrupted = 0;
    test_hook_init(&sc);
    cli_progress_init(&sc.prog, sc.o.quiet);
    sc.t_start = cli_now();
    if ((err = setup(&sc)) != 0) {
        status = cli_fail("scan", err);
        goto done;
    }
    cks_store_set_hook(sc.store, test_point, &sc);
    if ((err = run(&sc)) != 0) {
        size_t rows = 0;
        cks_store_nrows(sc.store, &rows);
        if (err == CKS_EINTR)
            cks_error_set(err,
                          "interrupted; %s keeps its %zu finished checkpoints: run again "
                          "with --resume to finish",
                          sc.o.output, rows);
        status = cli_fail("scan", err);
        goto done;
    }
    if (!sc.o.quiet)
        fprintf(stderr,
                "ckptscope scan: %s: %zu checkpoints: %zu analysed (%zu complete, %zu "
                "incomplete, %zu failed), %zu skipped, %.1f s\n",
                sc.o.output, sc.nsel, sc.analysed, sc.complete, sc.incomplete, sc.failed,
                sc.skipped, cli_now() - sc.t_start);
    status = sc.failed ? CLI_USAGE : 0;
done:
    for (int i = 0; i < SLOTS; i++)
        slot_release(&sc.slots[i]);
    cks_store_free(sc.store);
    free(sc.sel);
    free(sc.state);
    cks_source_free(sc.src);
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    return cli_finish("scan", status);
}
