/* merge (see merge.h): opens the inputs, checks that they belong together, decides which
 * input gives each checkpoint's row and in which order the tensor columns come, then
 * writes the joined run file (merge_write.c). Every input is read through the store API
 * and treated as hostile: rows are checked against the part's checkpoint list. */
#include "merge.h"
#include "error.h"
#include "merge_impl.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* ---- a name -> index map (open addressing, FNV-1a) ---- */

static int merge_map_init(cks_merge_map *m, size_t n)
{
    size_t cap = 16;
    while (cap < 2 * n + 2)
        cap *= 2;
    m->cap = cap;
    m->keys = calloc(cap, sizeof *m->keys);
    m->vals = calloc(cap, sizeof *m->vals);
    if (!m->keys || !m->vals)
        return cks_error_set(CKS_ENOMEM, "out of memory");
    return 0;
}

static void merge_map_release(cks_merge_map *m)
{
    free(m->keys);
    free(m->vals);
}

static size_t hash(const char *key)
{
    uint64_t h = 1469598103934665603ull;
    for (const unsigned char *p = (const unsigned char *)key; *p; p++)
        h = (h ^ *p) * 1099511628211ull;
    return (size_t)h;
}

/* The value slot of key, inserted with SIZE_MAX when absent (the map must have room:
 * merge_map_init sized it for every key). key is borrowed. */
static size_t *merge_map_slot(cks_merge_map *m, const char *key)
{
    for (size_t i = hash(key) & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
        if (!m->keys[i]) {
            m->keys[i] = key;
            m->vals[i] = SIZE_MAX;
            return &m->vals[i];
        }
        if (strcmp(m->keys[i], key) == 0)
            return &m->vals[i];
    }
}

static size_t merge_map_find(const cks_merge_map *m, const char *key)
{
    for (size_t i = hash(key) & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
        if (!m->keys[i])
            return SIZE_MAX;
        if (strcmp(m->keys[i], key) == 0)
            return m->vals[i];
    }
}

/* "a, b, c and 4 more" from the names of the k flagged list positions. */
static void name_list(const cks_merge_plan *m, const unsigned char *flag, char *buf, size_t cap)
{
    size_t k = 0, shown = 0, len = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < m->list->n; i++) {
        if (!flag[i])
            continue;
        if (shown < CKS_MERGE_NAMED && len < cap) {
            len += (size_t)snprintf(buf + len, cap - len, "%s%.200s", shown ? ", " : "",
                                    m->list->ckpts[i].name);
            shown++;
        }
        k++;
    }
    if (k > shown && len < cap)
        snprintf(buf + len, cap - len, " and %zu more", k - shown);
}

static void note(const cks_merge_plan *m, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void note(const cks_merge_plan *m, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    if (!m->o || !m->o->note)
        return;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    m->o->note(m->o->ctx, msg);
}

/* ---- the inputs ---- */

static void input_release(cks_merge_input *in)
{
    cks_part_info_release(&in->part);
    cks_store_ckpts_free(in->rows, in->nrows);
    cks_store_tensors_free(in->tensors, in->ntensors);
    free(in->ref);
    free(in->colmap);
    cks_store_free(in->s);
}

static int open_inputs(cks_merge_plan *m, const char *const *paths, size_t n, const char *output)
{
    struct stat out;
    int have_out = stat(output, &out) == 0;
    if (n > CKS_MERGE_MAX_INPUTS)
        return cks_error_set(CKS_ELIMIT, "%zu inputs, more than %d", n, CKS_MERGE_MAX_INPUTS);
    if (!(m->in = calloc(n ? n : 1, sizeof *m->in)))
        return cks_error_set(CKS_ENOMEM, "out of memory");
    m->base = SIZE_MAX;
    for (size_t i = 0; i < n; i++) {
        cks_merge_input *in = &m->in[i];
        struct stat st;
        int err;
        in->path = paths[i];
        m->n = i + 1;
        if ((err = cks_store_open(&in->s, in->path, CKS_STORE_READ)) != 0)
            return err;
        if (stat(in->path, &st) != 0)
            return cks_error_set(CKS_EIO, "%s: cannot stat", in->path);
        if (have_out && st.st_dev == out.st_dev && st.st_ino == out.st_ino)
            return cks_error_set(CKS_EINVAL,
                                 "-o %s is one of the inputs: merge writes a new file (rename "
                                 "it over the old one afterwards)",
                                 output);
        in->dev = st.st_dev;
        in->ino = st.st_ino;
        for (size_t k = 0; k < i; k++)
            if (m->in[k].dev == in->dev && m->in[k].ino == in->ino)
                return cks_error_set(CKS_EINVAL, "%s and %s are the same file", m->in[k].path,
                                     in->path);
        err = cks_part_read(in->s, &in->part);
        in->is_part = err == 0;
        if (err && err != CKS_ENOTFOUND)
            return err;
        if (!in->is_part && m->base != SIZE_MAX)
            return cks_error_set(CKS_EINVAL,
                                 "%s and %s are both whole run files; merge takes part files "
                                 "(scan --shard) and at most one finished run they extend",
                                 m->in[m->base].path, in->path);
        if (!in->is_part)
            m->base = i;
        else
            m->nparts++;
        if ((err = cks_store_checkpoints(in->s, &in->rows, &in->nrows)) ||
            (err = cks_store_tensors(in->s, &in->tensors, &in->ntensors)))
            return err;
        err = cks_store_get_attr(in->s, "/drift/ref", "ref", &in->ref);
        if (err && err != CKS_ENOTFOUND)
            return err;
    }
    if (m->nparts == 0)
        return cks_error_set(CKS_EINVAL,
                             "no part file among the inputs (parts are written by 'ckptscope scan "
                             "--shard I/N')");
    if (have_out)
        return cks_error_set(CKS_EEXISTS, "%s already exists: choose another -o", output);
    for (size_t i = 0; i < m->n && !m->list; i++)
        if (m->in[i].is_part)
            m->first = i, m->list = &m->in[i].part;
    return 0;
}

/* ---- do they belong together? ---- */

static int skipped_attr(const char *name)
{
    return strcmp(name, "format") == 0 || strcmp(name, "format_version") == 0 ||
           strcmp(name, "created_by") == 0 ||
           strncmp(name, CKS_PART_ATTR_PREFIX, strlen(CKS_PART_ATTR_PREFIX)) == 0;
}

static int show(const char *v)
{
    if (strlen(v) > 80)
        return 0;
    for (const char *p = v; *p; p++)
        if ((unsigned char)*p < 0x20)
            return 0;
    return 1;
}

/* The root attribute name of b must exist in a with the same value. */
static int same_attr(cks_merge_input *a, cks_merge_input *b, const char *name)
{
    char *va = NULL, *vb = NULL;
    int ea = cks_store_get_attr(a->s, "/", name, &va),
        eb = cks_store_get_attr(b->s, "/", name, &vb);
    int err = 0;
    if ((ea && ea != CKS_ENOTFOUND) || (eb && eb != CKS_ENOTFOUND))
        err = ea ? ea : eb;
    else if (ea || eb)
        err = cks_error_set(CKS_EINVAL, "%s has the root attribute '%s' and %s has not",
                            ea ? b->path : a->path, name, ea ? a->path : b->path);
    else if (strcmp(va, vb) != 0 && show(va) && show(vb))
        err = cks_error_set(CKS_EINVAL,
                            "%s and %s differ in '%s' ('%s' vs '%s'): not parts of one scan",
                            a->path, b->path, name, va, vb);
    else if (strcmp(va, vb) != 0)
        err = cks_error_set(CKS_EINVAL,
                            "%s and %s differ in '%s' (%zu vs %zu bytes): not parts of one scan",
                            a->path, b->path, name, strlen(va), strlen(vb));
    free(va);
    free(vb);
    return err;
}

/* Source, config, metric families and any other root attribute agree with the first
 * part's, in both directions. */
static int check_roots(cks_merge_plan *m)
{
    cks_merge_input *ref = &m->in[m->first];
    int err = 0;
    for (size_t i = 0; i < m->n && !err; i++) {
        cks_merge_input *pair[2] = {ref, &m->in[i]};
        if (i == m->first)
            continue;
        for (int side = 0; side < 2 && !err; side++) {
            char **names = NULL;
            size_t k = 0;
            if ((err = cks_store_attr_names(pair[side]->s, "/", &names, &k)) != 0)
                break;
            for (size_t j = 0; j < k && !err; j++)
                if (!skipped_attr(names[j]))
                    err = same_attr(ref, &m->in[i], names[j]);
            cks_store_names_free(names, k);
        }
    }
    return err;
}

/* The drift reference a file measures against: what its rows say, else what the part
 * recorded; NULL when none. */
static const char *effective_ref(const cks_merge_input *in)
{
    if (in->ref && *in->ref)
        return in->ref;
    return in->is_part && *in->part.ref ? in->part.ref : NULL;
}

static int check_lists(cks_merge_plan *m)
{
    const cks_merge_input *a = &m->in[m->first];
    char diff[1200];
    for (size_t i = 0; i < m->n; i++) {
        const cks_merge_input *b = &m->in[i];
        if (b->is_part && i != m->first &&
            cks_part_list_diff(a->part.ckpts, a->part.n, a->path, b->part.ckpts, b->part.n, b->path,
                               diff, sizeof diff))
            return cks_error_set(CKS_EINVAL,
                                 "%s and %s are parts of scans of different checkpoints (%s)",
                                 a->path, b->path, diff);
        if (b->is_part && i != m->first && strcmp(a->part.ref, b->part.ref) != 0)
            return cks_error_set(CKS_EINVAL,
                                 "%s and %s measure drift against different references ('%s' vs "
                                 "'%s')",
                                 a->path, b->path, a->part.ref, b->part.ref);
        const char *ra = effective_ref(a), *rb = effective_ref(b);
        if (ra && rb && strcmp(ra, rb) != 0)
            return cks_error_set(CKS_EINVAL,
                                 "%s and %s measure drift against different references ('%s' vs "
                                 "'%s')",
                                 a->path, b->path, ra, rb);
    }
    return 0;
}

/* ---- which input gives each row ---- */

static int index_list(cks_merge_plan *m)
{
    int err = merge_map_init(&m->pos_of, m->list->n);
    for (size_t i = 0; i < m->list->n && !err; i++)
        *merge_map_slot(&m->pos_of, m->list->ckpts[i].name) = i;
    if (!err && (!(m->src_in = malloc((m->list->n + 1) * sizeof *m->src_in)) ||
                 !(m->src_row = malloc((m->list->n + 1) * sizeof *m->src_row)) ||
                 !(m->flag = calloc(m->list->n + 1, 1))))
        err = cks_error_set(CKS_ENOMEM, "out of memory");
    for (size_t i = 0; i < m->list->n && !err; i++)
        m->src_in[i] = m->src_row[i] = SIZE_MAX;
    return err;
}

static size_t list_pos(const cks_merge_plan *m, const char *name)
{
    return merge_map_find(&m->pos_of, name);
}

static int take_parts(cks_merge_plan *m)
{
    size_t first_overlap = SIZE_MAX;
    for (size_t i = 0; i < m->n; i++) {
        const cks_merge_input *in = &m->in[i];
        for (size_t r = 0; in->is_part && r < in->nrows; r++) {
            const cks_store_ckpt *c = &in->rows[r];
            size_t pos = list_pos(m, c->name);
            if (pos == SIZE_MAX)
                return cks_error_set(CKS_EFORMAT,
                                     "%s: damaged part: it holds %.200s, which is not in its "
                                     "part_checkpoints",
                                     in->path, c->name);
            const cks_part_ckpt *want = &m->list->ckpts[pos];
            if (strcmp(c->commit, want->commit) != 0 || c->step != want->step)
                return cks_error_set(CKS_EFORMAT,
                                     "%s: damaged part: %.200s has commit '%.64s', its list "
                                     "says '%.64s'",
                                     in->path, c->name, c->commit, want->commit);
            if (m->src_in[pos] != SIZE_MAX) {
                m->flag[pos] = 1;
                if (first_overlap == SIZE_MAX)
                    first_overlap = pos;
                continue;
            }
            m->src_in[pos] = i;
            m->src_row[pos] = r;
        }
    }
    if (first_overlap != SIZE_MAX) {
        char names[1024];
        name_list(m, m->flag, names, sizeof names);
        const cks_merge_input *a = &m->in[m->src_in[first_overlap]];
        size_t b = 0;
        for (size_t i = 0; i < m->n; i++)
            for (size_t r = 0; m->in[i].is_part && r < m->in[i].nrows && !b; r++)
                if (i != m->src_in[first_overlap] &&
                    strcmp(m->in[i].rows[r].name, m->list->ckpts[first_overlap].name) == 0)
                    b = i;
        return cks_error_set(CKS_EINVAL,
                             "%s %s in more than one part (%s is in %s and %s): each checkpoint "
                             "must come from one part (a shard given twice, or parts of "
                             "different --shard N?)",
                             names, strchr(names, ',') || strstr(names, " more") ? "are" : "is",
                             m->list->ckpts[first_overlap].name, a->path, m->in[b].path);
    }
    return 0;
}

static int take_base(cks_merge_plan *m)
{
    if (m->base == SIZE_MAX)
        return 0;
    const cks_merge_input *in = &m->in[m->base];
    for (size_t r = 0; r < in->nrows; r++) {
        const cks_store_ckpt *c = &in->rows[r];
        size_t pos = list_pos(m, c->name);
        if (pos == SIZE_MAX)
            return cks_error_set(CKS_EINVAL,
                                 "%s holds %.200s, which the parts' checkpoints do not include "
                                 "(scanned with other --branches or --every?)",
                                 in->path, c->name);
        if (m->src_in[pos] != SIZE_MAX) {
            m->stats.replaced++;
            note(m, "%.200s: the row of %s replaces the one of %s", c->name,
                 m->in[m->src_in[pos]].path, in->path);
            continue;
        }
        const cks_part_ckpt *want = &m->list->ckpts[pos];
        if (strcmp(c->commit, want->commit) != 0 || c->step != want->step)
            return cks_error_set(CKS_EINVAL,
                                 "%s holds %.200s at commit '%.64s' but the parts list it at "
                                 "'%.64s', and no part analysed it again: scan the shards with "
                                 "--extend %s, which does",
                                 in->path, c->name, c->commit, want->commit, in->path);
        m->src_in[pos] = m->base;
        m->src_row[pos] = r;
        m->stats.from_base++;
    }
    return 0;
}

static int check_gaps(cks_merge_plan *m)
{
    memset(m->flag, 0, m->list->n);
    for (size_t i = 0; i < m->list->n; i++)
        if (m->src_in[i] == SIZE_MAX)
            m->flag[i] = 1, m->stats.gaps++;
    if (!m->stats.gaps)
        return 0;
    char names[1024], hint[600] = "";
    name_list(m, m->flag, names, sizeof names);
    if (m->base == SIZE_MAX && m->list->extends)
        snprintf(hint, sizeof hint, " (the parts extend %.400s: pass it too)", m->list->extends);
    if (m->o && m->o->allow_gaps) {
        note(m, "no input holds %s: left out (--allow-gaps)%s", names, hint);
        return 0;
    }
    return cks_error_set(CKS_EINVAL,
                         "no input holds %s (%zu of %zu checkpoints)%s: pass every part, or "
                         "--allow-gaps to merge what there is",
                         names, m->stats.gaps, m->list->n, hint);
}

/* ---- the columns ---- */

/* Appends tensor t (borrowed) unless a column of that name exists; returns its column. */
static int add_column(cks_merge_plan *m, const cks_store_tensor *t, size_t *col)
{
    size_t *v = merge_map_slot(&m->col_of, t->name);
    if (*v == SIZE_MAX) {
        m->cols[m->ncols] = *t;
        *v = m->ncols++;
    }
    *col = *v;
    return 0;
}

typedef struct {
    double order;
    size_t col;
} ordered;

static int by_order(const void *a, const void *b)
{
    const ordered *x = a, *y = b;
    return x->order < y->order ? -1 : x->order > y->order ? 1 : 0;
}

/* The new tensors of a complete part row, in its checkpoint's own order. */
static int add_row_columns(cks_merge_plan *m, cks_merge_input *in, size_t row)
{
    double *v = malloc((in->ntensors ? in->ntensors : 1) * sizeof *v);
    ordered *o = malloc((in->ntensors ? in->ntensors : 1) * sizeof *o);
    size_t k = 0, col;
    int err = 0;
    if (!v || !o) {
        err = cks_error_set(CKS_ENOMEM, "out of memory");
        goto done;
    }
    if (!cks_store_exists(in->s, CKS_PART_ORDER)) {
        err = cks_error_set(CKS_EFORMAT, "%s: damaged part: no %s", in->path, CKS_PART_ORDER);
        goto done;
    }
    if ((err = cks_store_read_row(in->s, CKS_PART_ORDER, row, v, in->ntensors)) != 0)
        goto done;
    for (size_t c = 0; c < in->ntensors; c++)
        if (isfinite(v[c]))
            o[k++] = (ordered){v[c], c};
    qsort(o, k, sizeof *o, by_order);
    for (size_t i = 0; i < k && !err; i++)
        err = add_column(m, &in->tensors[o[i].col], &col);
done:
    free(v);
    free(o);
    return err;
}

static int plan_columns(cks_merge_plan *m)
{
    size_t total = 0, col;
    int err;
    for (size_t i = 0; i < m->n; i++)
        total += m->in[i].ntensors;
    if ((err = merge_map_init(&m->col_of, total)) != 0)
        return err;
    if (!(m->cols = calloc(total ? total : 1, sizeof *m->cols)))
        return cks_error_set(CKS_ENOMEM, "out of memory");
    /* a single scan resuming the base keeps its columns and appends new tensors */
    for (size_t c = 0; m->base != SIZE_MAX && c < m->in[m->base].ntensors; c++)
        add_column(m, &m->in[m->base].tensors[c], &col);
    for (size_t pos = 0; pos < m->list->n; pos++) {
        size_t i = m->src_in[pos];
        if (i == SIZE_MAX || !m->in[i].is_part ||
            strcmp(m->in[i].rows[m->src_row[pos]].status, "complete") != 0)
            continue;
        if ((err = add_row_columns(m, &m->in[i], m->src_row[pos])) != 0)
            return err;
    }
    /* columns no row claims (not written by scan, but keep whatever a file holds) */
    for (size_t i = 0; i < m->n; i++)
        for (size_t c = 0; c < m->in[i].ntensors; c++)
            add_column(m, &m->in[i].tensors[c], &col);
    for (size_t i = 0; i < m->n; i++) {
        cks_merge_input *in = &m->in[i];
        if (!(in->colmap = malloc((in->ntensors ? in->ntensors : 1) * sizeof *in->colmap)))
            return cks_error_set(CKS_ENOMEM, "out of memory");
        for (size_t c = 0; c < in->ntensors; c++)
            in->colmap[c] = merge_map_find(&m->col_of, in->tensors[c].name);
    }
    m->stats.tensors = m->ncols;
    return 0;
}

int cks_merge(const char *const *inputs, size_t n, const char *output, const cks_merge_opts *opts,
              cks_merge_stats *stats)
{
    cks_merge_plan m;
    memset(&m, 0, sizeof m);
    m.o = opts;
    int err;
    if ((err = open_inputs(&m, inputs, n, output)) || (err = check_roots(&m)) ||
        (err = check_lists(&m)) || (err = index_list(&m)) || (err = take_parts(&m)) ||
        (err = take_base(&m)) || (err = check_gaps(&m)) || (err = plan_columns(&m)))
        goto done;
    m.stats.parts = m.nparts;
    if ((err = cks_merge_write(&m, output)) == 0 && stats)
        *stats = m.stats;
done:
    for (size_t i = 0; i < m.n; i++)
        input_release(&m.in[i]);
    free(m.in);
    free(m.src_in);
    free(m.src_row);
    free(m.flag);
    free(m.cols);
    merge_map_release(&m.pos_of);
    merge_map_release(&m.col_of);
    return err;
}
