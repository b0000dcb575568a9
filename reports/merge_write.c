/* merge's output (see merge.h): a new run file with the first part's root attributes
 * (less the part marks), the planned rows and columns, and every row-indexed dataset of
 * the inputs copied row by row to its new place, with the attributes of the datasets and
 * of their groups. One store transaction from creation (cks_store_create_tx): the file
 * appears whole or not at all. */
#include "error.h"
#include "grow.h"
#include "merge_impl.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define AXES_MATRIX "checkpoint,tensor"
#define AXES_SERIES "checkpoint"

typedef struct {
    char **v;
    size_t n, cap;
} strings;

static int strings_push(strings *s, char *x)
{
    int err = cks_grow(&s->v, &s->cap, s->n, sizeof *s->v, 32);
    if (err) {
        free(x);
        return err;
    }
    s->v[s->n++] = x;
    return 0;
}

static void strings_release(strings *s)
{
    cks_store_names_free(s->v, s->n);
    memset(s, 0, sizeof *s);
}

static int by_string(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sorts and drops duplicates. */
static void strings_unique(strings *s)
{
    size_t k = 0;
    qsort(s->v, s->n, sizeof *s->v, by_string);
    for (size_t i = 0; i < s->n; i++) {
        if (k && strcmp(s->v[k - 1], s->v[i]) == 0)
            free(s->v[i]);
        else
            s->v[k++] = s->v[i];
    }
    s->n = k;
}

static int is_part_path(const char *path)
{
    size_t n = strlen(CKS_PART_GROUP);
    return strncmp(path, CKS_PART_GROUP, n) == 0 && (path[n] == '/' || path[n] == '\0');
}

/* ---- the new file ---- */

/* Root attributes for the new file: every non-mark attribute of the first part except
 * those cks_store_create writes itself. */
static int root_attrs(cks_merge_plan *m, strings *kv)
{
    cks_store *s = m->in[m->first].s;
    char **names = NULL;
    size_t n = 0;
    int err = cks_store_attr_names(s, "/", &names, &n);
    for (size_t i = 0; i < n && !err; i++) {
        const char *a = names[i];
        char *v = NULL, *k = NULL;
        if (strcmp(a, "format") == 0 || strcmp(a, "format_version") == 0 ||
            strcmp(a, "created_by") == 0 || strcmp(a, "source") == 0 || strcmp(a, "config") == 0 ||
            strncmp(a, CKS_PART_ATTR_PREFIX, strlen(CKS_PART_ATTR_PREFIX)) == 0)
            continue;
        if ((err = cks_store_get_attr(s, "/", a, &v)) != 0)
            break;
        if (!(k = strdup(a))) {
            free(v);
            err = cks_error_set(CKS_ENOMEM, "out of memory");
            break;
        }
        if ((err = strings_push(kv, k)) == 0)
            err = strings_push(kv, v);
        else
            free(v);
    }
    cks_store_names_free(names, n);
    return err;
}

static int create(cks_merge_plan *m, const char *output, cks_store **out)
{
    cks_store *s = m->in[m->first].s;
    char *source = NULL, *config = NULL;
    strings kv = {NULL, 0, 0};
    const char **attrs = NULL;
    int err;
    if ((err = cks_store_get_attr(s, "/", "source", &source)) ||
        (err = cks_store_get_attr(s, "/", "config", &config)) || (err = root_attrs(m, &kv)))
        goto done;
    if (!(attrs = calloc(kv.n + 1, sizeof *attrs))) {
        err = cks_error_set(CKS_ENOMEM, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < kv.n; i++)
        attrs[i] = kv.v[i];
    cks_store_meta meta = {source, config, NULL, attrs};
    err = cks_store_create_tx(out, output, &meta);
done:
    if (err == CKS_ENOTFOUND)
        err = cks_error_set(CKS_EFORMAT, "%s: run file without a source or config attribute",
                            m->in[m->first].path);
    free(attrs);
    strings_release(&kv);
    free(source);
    free(config);
    return err;
}

/* Copies every attribute of obj in input s to obj in out. */
static int copy_attrs(cks_store *s, cks_store *out, const char *obj)
{
    char **names = NULL;
    size_t n = 0;
    int err = cks_store_attr_names(s, obj, &names, &n);
    for (size_t i = 0; i < n && !err; i++) {
        char *v = NULL;
        if ((err = cks_store_get_attr(s, obj, names[i], &v)) == 0)
            err = cks_store_set_attr(out, obj, names[i], v);
        free(v);
    }
    cks_store_names_free(names, n);
    return err;
}

/* ---- one dataset ---- */

typedef struct {
    const char *path;
    const char *axis; /* NULL: tensor matrix; "": series; else the second axis */
    int u8;           /* a uint8 row dataset (else f32) */
    char *description, *unit;
} target;

/* Writes the rows input i gives to the dataset, from its values v (r x c). */
static int copy_rows(cks_merge_plan *m, cks_store *out, const size_t *out_row, const target *t,
                     size_t i, const double *v, size_t r, size_t c, void *buf)
{
    const cks_merge_input *in = &m->in[i];
    int err = 0;
    for (size_t pos = 0; pos < m->list->n && !err; pos++) {
        size_t row = m->src_row[pos];
        if (m->src_in[pos] != i || row >= r)
            continue;
        const double *x = v + row * c;
        if (!t->axis) {
            double *d = buf;
            for (size_t k = 0; k < m->ncols; k++)
                d[k] = NAN;
            for (size_t k = 0; k < c; k++)
                d[in->colmap[k]] = x[k];
            err = cks_store_write_row(out, t->path, out_row[pos], d, m->ncols, t->description,
                                      t->unit);
        } else if (!*t->axis) {
            err = cks_store_write_series(out, t->path, out_row[pos], x[0], t->description, t->unit);
        } else if (t->u8) {
            uint8_t *f = buf;
            for (size_t k = 0; k < c; k++)
                f[k] = (uint8_t)x[k]; /* stored as uint8: exact */
            err = cks_store_write_row_u8(out, t->path, out_row[pos], f, c, t->axis, t->description,
                                         t->unit);
        } else {
            float *f = buf;
            for (size_t k = 0; k < c; k++)
                f[k] = (float)x[k]; /* stored as f32: exact */
            err = cks_store_write_row_f32(out, t->path, out_row[pos], f, c, t->axis, t->description,
                                          t->unit);
        }
    }
    return err;
}

static int target_init(cks_merge_plan *m, const char *path, size_t holder, target *t, char **axes)
{
    cks_store *s = m->in[holder].s;
    int err = cks_store_get_attr(s, path, "axes", axes);
    memset(t, 0, sizeof *t);
    t->path = path;
    if (err)
        return err;
    if (strcmp(*axes, AXES_MATRIX) == 0)
        t->axis = NULL;
    else if (strcmp(*axes, AXES_SERIES) == 0)
        t->axis = "";
    else if (strncmp(*axes, AXES_SERIES ",", strlen(AXES_SERIES) + 1) == 0)
        t->axis = *axes + strlen(AXES_SERIES) + 1;
    else
        return cks_error_set(CKS_EFORMAT, "%s: %s has axes '%.100s': not a row-indexed dataset",
                             m->in[holder].path, path, *axes);
    t->u8 = cks_store_is_u8(s, path);
    if ((err = cks_store_get_attr(s, path, "description", &t->description)) == CKS_ENOTFOUND)
        err = 0;
    if (!err && (err = cks_store_get_attr(s, path, "unit", &t->unit)) == CKS_ENOTFOUND)
        err = 0;
    return err;
}

static int copy_dataset(cks_merge_plan *m, cks_store *out, const size_t *out_row, const char *path)
{
    size_t holder = SIZE_MAX;
    char *axes = NULL;
    target t;
    int err = 0;
    memset(&t, 0, sizeof t);
    for (size_t i = 0; i < m->n && holder == SIZE_MAX; i++)
        if (cks_store_exists(m->in[i].s, path))
            holder = i;
    if (holder == SIZE_MAX || (err = target_init(m, path, holder, &t, &axes)) != 0)
        goto done;
    for (size_t i = holder; i < m->n && !err; i++) {
        cks_merge_input *in = &m->in[i];
        double *v = NULL;
        void *buf = NULL;
        char *have = NULL;
        size_t r = 0, c = 0;
        if (!cks_store_exists(in->s, path))
            continue;
        if ((err = cks_store_get_attr(in->s, path, "axes", &have)) == 0 && strcmp(have, axes) != 0)
            err = cks_error_set(CKS_EINVAL, "%s has axes '%.100s' in %s but '%.100s' in %s", path,
                                axes, m->in[holder].path, have, in->path);
        free(have);
        if (err || (err = cks_store_read_matrix(in->s, path, &v, &r, &c)) != 0)
            break;
        if (!t.axis && c != in->ntensors)
            err = cks_error_set(CKS_EFORMAT, "%s: %s has %zu columns for %zu tensors", in->path,
                                path, c, in->ntensors);
        else if (!(buf = malloc((m->ncols > c ? m->ncols : c) * sizeof(double) + 1)))
            err = cks_error_set(CKS_ENOMEM, "out of memory");
        else if (c > 0)
            err = copy_rows(m, out, out_row, &t, i, v, r, c, buf);
        free(buf);
        free(v);
    }
    if (!err && cks_store_exists(out, path))
        err = copy_attrs(m->in[holder].s, out, path);
    if (!err)
        m->stats.datasets++;
done:
    free(axes);
    free(t.description);
    free(t.unit);
    return err;
}

/* The attributes of every group above the datasets (/drift/ref's ref, ...), from the
 * first input that has the group. */
static int copy_group_attrs(cks_merge_plan *m, cks_store *out, const strings *paths)
{
    strings groups = {NULL, 0, 0};
    int err = 0;
    for (size_t i = 0; i < paths->n && !err; i++) {
        for (const char *p = strchr(paths->v[i] + 1, '/'); p && !err; p = strchr(p + 1, '/')) {
            char *g = strndup(paths->v[i], (size_t)(p - paths->v[i]));
            err = g ? strings_push(&groups, g) : cks_error_set(CKS_ENOMEM, "out of memory");
        }
    }
    strings_unique(&groups);
    for (size_t g = 0; g < groups.n && !err; g++) {
        for (size_t i = 0; i < m->n; i++) {
            if (!cks_store_exists(m->in[i].s, groups.v[g]))
                continue;
            if (cks_store_exists(out, groups.v[g]))
                err = copy_attrs(m->in[i].s, out, groups.v[g]);
            break;
        }
    }
    strings_release(&groups);
    return err;
}

/* Every row-indexed dataset of any input, less the part marks, sorted. */
static int all_datasets(cks_merge_plan *m, strings *out)
{
    int err = 0;
    for (size_t i = 0; i < m->n && !err; i++) {
        char **p = NULL;
        size_t n = 0;
        if ((err = cks_store_row_datasets(m->in[i].s, &p, &n)) != 0)
            break;
        for (size_t k = 0; k < n; k++) {
            if (err || is_part_path(p[k]))
                free(p[k]);
            else
                err = strings_push(out, p[k]);
        }
        free(p);
    }
    strings_unique(out);
    return err;
}

static int write_rows(cks_merge_plan *m, cks_store *out, size_t *out_row)
{
    int err = 0;
    for (size_t pos = 0; pos < m->list->n && !err; pos++) {
        if (m->src_in[pos] == SIZE_MAX)
            continue;
        const cks_store_ckpt *c = &m->in[m->src_in[pos]].rows[m->src_row[pos]];
        err = cks_store_put_checkpoint_at(out, c->name, c->step, c->commit, c->status,
                                          c->analysed_at, &out_row[pos]);
        m->stats.rows++;
    }
    return err;
}

int cks_merge_write(cks_merge_plan *m, const char *output)
{
    cks_store *out = NULL;
    strings paths = {NULL, 0, 0};
    size_t *out_row = calloc(m->list->n + 1, sizeof *out_row);
    int err = out_row ? 0 : cks_error_set(CKS_ENOMEM, "out of memory");
    if (err || (err = all_datasets(m, &paths)) || (err = create(m, output, &out)))
        goto done;
    if ((err = write_rows(m, out, out_row)) ||
        (err = cks_store_add_tensors(out, m->cols, m->ncols, NULL)))
        goto done;
    for (size_t i = 0; i < paths.n && !err; i++)
        err = copy_dataset(m, out, out_row, paths.v[i]);
    if (!err)
        err = copy_group_attrs(m, out, &paths);
    if (!err)
        err = cks_store_commit(out);
done:
    cks_store_free(out); /* after a failure: aborts, and nothing appears at output */
    strings_release(&paths);
    free(out_row);
    return err;
}
