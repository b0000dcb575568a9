/* The run file's tables and datasets: /checkpoints and /tensors (compound records with
 * variable-length UTF-8 strings), and the row-indexed float datasets, which are created
 * on first write, tagged with an "axes" attribute, and kept at N rows (and T columns for
 * tensor matrices) by cks_store_extend_all before every commit. See store.h. */
#include "error.h"
#include "store_impl.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define AXES_MATRIX "checkpoint,tensor"
#define AXES_SERIES "checkpoint"
#define TABLE_CHUNK 64

typedef struct {
    char *name;
    int64_t step;
    char *commit;
    char *status;
    char *analysed_at;
} ckpt_rec;

typedef struct {
    char *name;
    int32_t layer;
    char *kind;
    int64_t rows, cols;
} tensor_rec;

static hid_t ckpt_mem_type(void)
{
    hid_t s = cks_store_str_type(), t = H5Tcreate(H5T_COMPOUND, sizeof(ckpt_rec));
    H5Tinsert(t, "name", HOFFSET(ckpt_rec, name), s);
    H5Tinsert(t, "step", HOFFSET(ckpt_rec, step), H5T_NATIVE_INT64);
    H5Tinsert(t, "commit", HOFFSET(ckpt_rec, commit), s);
    H5Tinsert(t, "status", HOFFSET(ckpt_rec, status), s);
    H5Tinsert(t, "analysed_at", HOFFSET(ckpt_rec, analysed_at), s);
    H5Tclose(s);
    return t;
}

static hid_t tensor_mem_type(void)
{
    hid_t s = cks_store_str_type(), t = H5Tcreate(H5T_COMPOUND, sizeof(tensor_rec));
    H5Tinsert(t, "name", HOFFSET(tensor_rec, name), s);
    H5Tinsert(t, "layer", HOFFSET(tensor_rec, layer), H5T_NATIVE_INT32);
    H5Tinsert(t, "kind", HOFFSET(tensor_rec, kind), s);
    H5Tinsert(t, "rows", HOFFSET(tensor_rec, rows), H5T_NATIVE_INT64);
    H5Tinsert(t, "cols", HOFFSET(tensor_rec, cols), H5T_NATIVE_INT64);
    H5Tclose(s);
    return t;
}

/* ---- table creation (at cks_store_create) ---- */

static int create_table(cks_store *s, const char *path, hid_t memtype, const char *description)
{
    hsize_t dims = 0, maxdims = H5S_UNLIMITED, chunk = TABLE_CHUNK;
    hid_t ft = H5Tcopy(memtype), sp = H5Screate_simple(1, &dims, &maxdims);
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE), d = H5I_INVALID_HID;
    int err = 0;
    H5Tpack(ft);
    H5Pset_chunk(dcpl, 1, &chunk);
    if ((d = H5Dcreate2(s->fid, path, ft, sp, H5P_DEFAULT, dcpl, H5P_DEFAULT)) < 0)
        err = cks_store_h5err(CKS_EIO, "%s: cannot create %s", s->path, path);
    else
        err = cks_store_attr_write(d, "description", description, s->path);
    if (d >= 0)
        err = cks_store_close_written(s, d, path, err);
    H5Pclose(dcpl);
    H5Sclose(sp);
    H5Tclose(ft);
    return err;
}

int cks_store_init_tables(cks_store *s)
{
    hid_t c = ckpt_mem_type(), t = tensor_mem_type();
    int err = create_table(s, "/checkpoints", c,
                           "one record per row of every row-indexed dataset: name, step, "
                           "commit, status, analysed_at");
    if (!err)
        err = create_table(s, "/tensors", t,
                           "one record per column of every [checkpoint, tensor] dataset: name, "
                           "layer, kind, rows, cols (0 for 1-D tensors)");
    H5Tclose(c);
    H5Tclose(t);
    return err;
}

/* ---- reading the tables ---- */

/* Reads every record of a 1-D compound table into a zeroed buffer (fields missing from
 * the file stay zero/NULL). The caller reclaims strings with H5Dvlen_reclaim. */
static int read_table(cks_store *s, const char *path, hid_t memtype, size_t recsize, void **out,
                      size_t *n, hid_t *space)
{
    hid_t d = H5Dopen2(s->fid, path, H5P_DEFAULT), sp = H5I_INVALID_HID;
    hsize_t dims[2] = {0, 0};
    void *buf = NULL;
    int err = 0;
    if (d < 0 || (sp = H5Dget_space(d)) < 0) {
        err = cks_store_h5err(CKS_EFORMAT, "%s: cannot open %s", s->path, path);
        goto done;
    }
    if (H5Sget_simple_extent_ndims(sp) != 1 || H5Sget_simple_extent_dims(sp, dims, NULL) < 0) {
        err = cks_error_set(CKS_EFORMAT, "%s: %s is not a 1-D table", s->path, path);
        goto done;
    }
    if (dims[0] > CKS_STORE_MAX_ROWS) {
        err = cks_error_set(CKS_ELIMIT, "%s: %s has %llu rows, more than %d", s->path, path,
                            (unsigned long long)dims[0], CKS_STORE_MAX_ROWS);
        goto done;
    }
    if (!(buf = calloc(dims[0] ? dims[0] : 1, recsize))) {
        err = cks_error_set(CKS_ENOMEM, "out of memory");
        goto done;
    }
    if (dims[0] && H5Dread(d, memtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) < 0) {
        err = cks_store_h5err(CKS_EFORMAT, "%s: cannot read %s", s->path, path);
        goto done;
    }
    *out = buf;
    *n = dims[0];
    *space = sp;
    sp = H5I_INVALID_HID;
    buf = NULL;
done:
    free(buf);
    if (sp >= 0)
        H5Sclose(sp);
    if (d >= 0)
        H5Dclose(d);
    return err;
}

/* A copy of a string field; NULL fields (absent from the file) and overlong ones are a
 * damaged file. */
static int field(cks_store *s, const char *table, const char *what, const char *v, char **out)
{
    if (!v)
        return cks_error_set(CKS_EFORMAT, "%s: damaged %s: a record has no %s", s->path, table,
                             what);
    size_t len = strnlen(v, CKS_STORE_MAX_NAME + 1);
    if (len > CKS_STORE_MAX_NAME)
        return cks_error_set(CKS_EFORMAT, "%s: damaged %s: a %s longer than %d bytes", s->path,
                             table, what, CKS_STORE_MAX_NAME);
    if (!(*out = strndup(v, len)))
        return cks_error_set(CKS_ENOMEM, "out of memory");
    return 0;
}

void cks_store_ckpts_free(cks_store_ckpt *c, size_t n)
{
    for (size_t i = 0; c && i < n; i++) {
        free(c[i].name);
        free(c[i].commit);
        free(c[i].status);
        free(c[i].analysed_at);
    }
    free(c);
}

int cks_store_checkpoints(cks_store *s, cks_store_ckpt **out, size_t *n)
{
    hid_t mt = ckpt_mem_type(), sp = H5I_INVALID_HID;
    ckpt_rec *r = NULL;
    cks_store_ckpt *c = NULL;
    size_t k = 0;
    int err = read_table(s, "/checkpoints", mt, sizeof *r, (void **)&r, &k, &sp);
    if (err)
        goto done;
    if (!(c = calloc(k ? k : 1, sizeof *c))) {
        err = cks_error_set(CKS_ENOMEM, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < k && !err; i++) {
        c[i].step = r[i].step;
        if ((err = field(s, "/checkpoints", "name", r[i].name, &c[i].name)) ||
            (err = field(s, "/checkpoints", "commit", r[i].commit, &c[i].commit)) ||
            (err = field(s, "/checkpoints", "status", r[i].status, &c[i].status)))
            break;
        err = field(s, "/checkpoints", "analysed_at", r[i].analysed_at ? r[i].analysed_at : "",
                    &c[i].analysed_at);
    }
    if (!err) {
        *out = c;
        *n = k;
        c = NULL;
    }
done:
    if (r && sp >= 0)
        H5Dvlen_reclaim(mt, sp, H5P_DEFAULT, r);
    free(r);
    cks_store_ckpts_free(c, k);
    if (sp >= 0)
        H5Sclose(sp);
    H5Tclose(mt);
    return err;
}

void cks_store_tensors_free(cks_store_tensor *t, size_t n)
{
    for (size_t i = 0; t && i < n; i++) {
        free(t[i].name);
        free(t[i].kind);
    }
    free(t);
}

int cks_store_tensors(cks_store *s, cks_store_tensor **out, size_t *n)
{
    hid_t mt = tensor_mem_type(), sp = H5I_INVALID_HID;
    tensor_rec *r = NULL;
    cks_store_tensor *t = NULL;
    size_t k = 0;
    int err = read_table(s, "/tensors", mt, sizeof *r, (void **)&r, &k, &sp);
    if (err)
        goto done;
    if (!(t = calloc(k ? k : 1, sizeof *t))) {
        err = cks_error_set(CKS_ENOMEM, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < k && !err; i++) {
        t[i].layer = r[i].layer;
        t[i].rows = r[i].rows;
        t[i].cols = r[i].cols;
        if ((err = field(s, "/tensors", "name", r[i].name, &t[i].name)) == 0)
            err = field(s, "/tensors", "kind", r[i].kind, &t[i].kind);
    }
    if (!err) {
        *out = t;
        *n = k;
        t = NULL;
    }
done:
    if (r && sp >= 0)
        H5Dvlen_reclaim(mt, sp, H5P_DEFAULT, r);
    free(r);
    cks_store_tensors_free(t, k);
    if (sp >= 0)
        H5Sclose(sp);
    H5Tclose(mt);
    return err;
}

static int table_len(cks_store *s, const char *path, size_t *n)
{
    hid_t d = H5Dopen2(s->fid, path, H5P_DEFAULT), sp = d >= 0 ? H5Dget_space(d) : -1;
    hsize_t dims[1];
    int ok = sp >= 0 && H5Sget_simple_extent_ndims(sp) == 1 &&
             H5Sget_simple_extent_dims(sp, dims, NULL) >= 0;
    if (sp >= 0)
        H5Sclose(sp);
    if (d >= 0)
        H5Dclose(d);
    if (!ok)
        return cks_store_h5err(CKS_EFORMAT, "%s: cannot read the size of %s", s->path, path);
    *n = dims[0];
    return 0;
}

int cks_store_nrows(cks_store *s, size_t *n)
{
    return table_len(s, "/checkpoints", n);
}

int cks_store_find_checkpoint(cks_store *s, const char *name, size_t *row)
{
    cks_store_ckpt *c;
    size_t n;
    int err = cks_store_checkpoints(s, &c, &n);
    if (err)
        return err;
    err = CKS_ENOTFOUND;
    for (size_t i = 0; i < n; i++) {
        if (strcmp(c[i].name, name) == 0) {
            *row = i;
            err = 0;
            break;
        }
    }
    cks_store_ckpts_free(c, n);
    return err;
}

/* ---- writing the tables ---- */

/* Writes k records at [at, at + k) of a 1-D table, growing it when needed. */
static int write_records(cks_store *s, const char *path, hid_t memtype, const void *recs, size_t at,
                         size_t k)
{
    hid_t d = H5Dopen2(s->fid, path, H5P_DEFAULT), fs = H5I_INVALID_HID, ms = H5I_INVALID_HID;
    hsize_t dims[1], start = at, count = k;
    int err = 0;
    if (d < 0 || (fs = H5Dget_space(d)) < 0 || H5Sget_simple_extent_dims(fs, dims, NULL) < 0)
        goto h5fail;
    if (at + k > dims[0]) {
        hsize_t grown = at + k;
        H5Sclose(fs);
        if (H5Dset_extent(d, &grown) < 0 || (fs = H5Dget_space(d)) < 0)
            goto h5fail;
    }
    ms = H5Screate_simple(1, &count, NULL);
    if (H5Sselect_hyperslab(fs, H5S_SELECT_SET, &start, NULL, &count, NULL) < 0 ||
        H5Dwrite(d, memtype, ms, fs, H5P_DEFAULT, recs) < 0)
        goto h5fail;
    goto done;
h5fail:
    err = cks_store_h5err(CKS_EIO, "%s: cannot write %s", s->path, path);
done:
    if (ms >= 0)
        H5Sclose(ms);
    if (fs >= 0)
        H5Sclose(fs);
    if (d >= 0)
        err = cks_store_close_written(s, d, path, err);
    return cks_store_fail(s, err);
}

static int clear_row(cks_store *s, size_t row);

int cks_store_put_checkpoint(cks_store *s, const char *name, int64_t step, const char *commit,
                             const char *status, size_t *row)
{
    int err = cks_store_need_tx(s, "recording a checkpoint");
    size_t at, n;
    if (err)
        return err;
    if ((err = cks_store_nrows(s, &n)) != 0)
        return err;
    err = cks_store_find_checkpoint(s, name, &at);
    int replace = err == 0;
    if (err && err != CKS_ENOTFOUND)
        return err;
    if (!replace)
        at = n;
    char now[32];
    time_t t = time(NULL);
    struct tm tm;
    strftime(now, sizeof now, "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&t, &tm));
    ckpt_rec r = {(char *)name, step, (char *)(commit ? commit : ""), (char *)status, now};
    hid_t mt = ckpt_mem_type();
    err = write_records(s, "/checkpoints", mt, &r, at, 1);
    H5Tclose(mt);
    if (!err && replace)
        err = clear_row(s, at);
    if (!err)
        *row = at;
    return err;
}

int cks_store_add_tensors(cks_store *s, const cks_store_tensor *t, size_t n, size_t *cols)
{
    int err = cks_store_need_tx(s, "adding tensors");
    cks_store_tensor *have = NULL;
    size_t nhave = 0, nnew = 0;
    tensor_rec *recs = NULL;
    if (err || (err = cks_store_tensors(s, &have, &nhave)) != 0)
        return err;
    if (!(recs = calloc(n ? n : 1, sizeof *recs))) {
        err = cks_error_set(CKS_ENOMEM, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < n; i++) {
        size_t col = SIZE_MAX;
        for (size_t j = 0; j < nhave && col == SIZE_MAX; j++)
            if (strcmp(have[j].name, t[i].name) == 0)
                col = j;
        for (size_t j = 0; j < nnew && col == SIZE_MAX; j++) /* a name given twice */
            if (strcmp(recs[j].name, t[i].name) == 0)
                col = nhave + j;
        if (col == SIZE_MAX) {
            col = nhave + nnew;
            recs[nnew++] = (tensor_rec){(char *)t[i].name, t[i].layer,
                                        (char *)(t[i].kind ? t[i].kind : ""), t[i].rows, t[i].cols};
        }
        if (cols)
            cols[i] = col;
    }
    if (nhave + nnew > CKS_STORE_MAX_ROWS) {
        err = cks_error_set(CKS_ELIMIT, "%s: more than %d tensors", s->path, CKS_STORE_MAX_ROWS);
        goto done;
    }
    if (nnew) {
        hid_t mt = tensor_mem_type();
        err = write_records(s, "/tensors", mt, recs, nhave, nnew);
        H5Tclose(mt);
    }
done:
    free(recs);
    cks_store_tensors_free(have, nhave);
    return err;
}

/* ---- row-indexed datasets ---- */

typedef struct {
    char **paths;
    int *matrix; /* axes == AXES_MATRIX */
    size_t n, cap;
    int err;
    const char *display;
} ds_list;

static void ds_list_release(ds_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->paths[i]);
    free(l->paths);
    free(l->matrix);
}

static herr_t visit_one(hid_t obj, const char *name, const H5O_info_t *info, void *op)
{
    ds_list *l = op;
    if (info->type != H5O_TYPE_DATASET)
        return 0;
    hid_t d = H5Dopen2(obj, name, H5P_DEFAULT);
    char *axes = NULL;
    int err = d < 0 ? CKS_EFORMAT : cks_store_attr_read(d, "axes", 256, l->display, &axes);
    if (d >= 0)
        H5Dclose(d);
    if (err == CKS_ENOTFOUND || (!err && strncmp(axes, AXES_SERIES, strlen(AXES_SERIES)) != 0)) {
        free(axes); /* not row-indexed (the tables themselves, or a foreign dataset) */
        return 0;
    }
    if (err) {
        l->err = err;
        return -1;
    }
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 32;
        char **p = realloc(l->paths, cap * sizeof *p);
        if (p)
            l->paths = p;
        int *m = p ? realloc(l->matrix, cap * sizeof *m) : NULL;
        if (m)
            l->matrix = m;
        if (!p || !m) {
            free(axes);
            l->err = cks_error_set(CKS_ENOMEM, "out of memory");
            return -1;
        }
        l->cap = cap;
    }
    l->matrix[l->n] = strcmp(axes, AXES_MATRIX) == 0;
    free(axes);
    if (asprintf(&l->paths[l->n], "/%s", name) < 0) {
        l->err = cks_error_set(CKS_ENOMEM, "out of memory");
        return -1;
    }
    l->n++;
    return 0;
}

static int list_row_datasets(cks_store *s, ds_list *l)
{
    memset(l, 0, sizeof *l);
    l->display = s->path;
    if (H5Ovisit2(s->fid, H5_INDEX_NAME, H5_ITER_INC, visit_one, l, H5O_INFO_BASIC) < 0) {
        int err =
            l->err ? l->err : cks_store_h5err(CKS_EFORMAT, "%s: cannot list datasets", s->path);
        H5Eclear2(H5E_DEFAULT);
        ds_list_release(l);
        return err;
    }
    return 0;
}

static int dataset_dims(hid_t d, int *rank, hsize_t dims[2])
{
    hid_t sp = H5Dget_space(d);
    int r = sp >= 0 ? H5Sget_simple_extent_ndims(sp) : -1;
    int ok = r >= 1 && r <= 2 && H5Sget_simple_extent_dims(sp, dims, NULL) >= 0;
    if (sp >= 0)
        H5Sclose(sp);
    if (!ok)
        return -1;
    if (r == 1)
        dims[1] = 1;
    *rank = r;
    return 0;
}

int cks_store_extend_all(cks_store *s)
{
    ds_list l;
    size_t n, t;
    int err;
    if ((err = cks_store_nrows(s, &n)) || (err = table_len(s, "/tensors", &t)) ||
        (err = list_row_datasets(s, &l)))
        return err;
    for (size_t i = 0; i < l.n && !err; i++) {
        hid_t d = H5Dopen2(s->fid, l.paths[i], H5P_DEFAULT);
        hsize_t dims[2], want[2];
        int rank;
        if (d < 0 || dataset_dims(d, &rank, dims) != 0) {
            err = cks_store_h5err(CKS_EFORMAT, "%s: cannot read %s", s->path, l.paths[i]);
        } else {
            want[0] = n;
            want[1] = l.matrix[i] && rank == 2 && t > dims[1] ? t : dims[1];
            if ((want[0] != dims[0] || want[1] != dims[1]) && H5Dset_extent(d, want) < 0)
                err = cks_store_h5err(CKS_EIO, "%s: cannot extend %s", s->path, l.paths[i]);
        }
        if (d >= 0)
            err = cks_store_close_written(s, d, l.paths[i], err);
    }
    ds_list_release(&l);
    return cks_store_fail(s, err);
}

/* Writes NaN over one row of every row-indexed dataset that has it. */
static int clear_row(cks_store *s, size_t row)
{
    ds_list l;
    int err = list_row_datasets(s, &l);
    double *nan = NULL;
    size_t cap = 0;
    for (size_t i = 0; i < l.n && !err; i++) {
        hid_t d = H5Dopen2(s->fid, l.paths[i], H5P_DEFAULT), fs = -1, ms = -1;
        hsize_t dims[2], start[2] = {row, 0}, count[2];
        int rank;
        if (d < 0 || dataset_dims(d, &rank, dims) != 0) {
            err = cks_store_h5err(CKS_EFORMAT, "%s: cannot read %s", s->path, l.paths[i]);
        } else if (row < dims[0] && dims[1] > 0) {
            if (dims[1] > cap) {
                double *p = realloc(nan, dims[1] * sizeof *p);
                if (!p) {
                    err = cks_error_set(CKS_ENOMEM, "out of memory");
                    H5Dclose(d);
                    break;
                }
                nan = p;
                cap = dims[1];
            }
            for (size_t k = 0; k < dims[1]; k++)
                nan[k] = NAN;
            count[0] = 1;
            count[1] = dims[1];
            fs = H5Dget_space(d);
            ms = H5Screate_simple(1, &count[1], NULL);
            if (H5Sselect_hyperslab(fs, H5S_SELECT_SET, start, NULL, count, NULL) < 0 ||
                H5Dwrite(d, H5T_NATIVE_DOUBLE, ms, fs, H5P_DEFAULT, nan) < 0)
                err = cks_store_h5err(CKS_EIO, "%s: cannot clear row %zu of %s", s->path, row,
                                      l.paths[i]);
        }
        if (ms >= 0)
            H5Sclose(ms);
        if (fs >= 0)
            H5Sclose(fs);
        if (d >= 0)
            err = cks_store_close_written(s, d, l.paths[i], err);
    }
    free(nan);
    ds_list_release(&l);
    return cks_store_fail(s, err);
}

int cks_store_exists(cks_store *s, const char *path)
{
    /* H5Lexists needs every parent to exist: test each prefix */
    char buf[4096];
    size_t len = strlen(path);
    if (len == 0 || len >= sizeof buf || path[0] != '/')
        return 0;
    if (strcmp(path, "/") == 0)
        return 1;
    memcpy(buf, path, len + 1);
    for (char *p = buf + 1;; p++) {
        if (*p == '/' || *p == '\0') {
            char c = *p;
            *p = '\0';
            htri_t e = H5Lexists(s->fid, buf, H5P_DEFAULT);
            *p = c;
            if (e <= 0) {
                H5Eclear2(H5E_DEFAULT);
                return 0;
            }
            if (c == '\0')
                return 1;
        }
    }
}

/* Opens a row-indexed dataset, creating it (rows = N, cols = cols, NaN fill) when
 * missing. rank 1 for series. An existing dataset must be a float dataset of that rank
 * with the same axes. */
static int open_or_create(cks_store *s, const char *path, hid_t ftype, int rank, size_t cols,
                          const char *axes, const char *description, const char *unit, hid_t *out)
{
    hid_t d = H5I_INVALID_HID;
    int err = 0;
    if (cks_store_exists(s, path)) {
        char *have = NULL;
        hsize_t dims[2];
        int r;
        hid_t t = H5I_INVALID_HID;
        if ((d = H5Dopen2(s->fid, path, H5P_DEFAULT)) < 0)
            return cks_store_h5err(CKS_EFORMAT, "%s: %s is not a dataset", s->path, path);
        t = H5Dget_type(d);
        err = cks_store_attr_read(d, "axes", 256, s->path, &have);
        if (err || t < 0 || H5Tget_class(t) != H5T_FLOAT || dataset_dims(d, &r, dims) != 0 ||
            r != rank || strcmp(have, axes) != 0)
            err = cks_error_set(CKS_EFORMAT,
                                "%s: %s exists but is not a float %dD dataset with "
                                "axes '%s'",
                                s->path, path, rank, axes);
        free(have);
        if (t >= 0)
            H5Tclose(t);
        if (err) {
            H5Dclose(d);
            H5Eclear2(H5E_DEFAULT);
            return err;
        }
        *out = d;
        return 0;
    }
    size_t n;
    if ((err = cks_store_nrows(s, &n)) != 0)
        return err;
    hsize_t dims[2] = {n, cols}, maxdims[2] = {H5S_UNLIMITED, H5S_UNLIMITED};
    hsize_t chunk[2] = {rank == 1 ? CKS_STORE_SERIES_CHUNK : 1, cols ? cols : 1};
    double fill = NAN;
    hid_t sp = H5Screate_simple(rank, dims, maxdims), dcpl = H5Pcreate(H5P_DATASET_CREATE);
    hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
    H5Pset_create_intermediate_group(lcpl, 1);
    H5Pset_chunk(dcpl, rank, chunk);
    H5Pset_fill_value(dcpl, H5T_NATIVE_DOUBLE, &fill);
    d = H5Dcreate2(s->fid, path, ftype, sp, lcpl, dcpl, H5P_DEFAULT);
    H5Pclose(lcpl);
    H5Pclose(dcpl);
    H5Sclose(sp);
    if (d < 0)
        return cks_store_h5err(CKS_EIO, "%s: cannot create %s", s->path, path);
    if ((err = cks_store_attr_write(d, "axes", axes, s->path)) ||
        (description && (err = cks_store_attr_write(d, "description", description, s->path))) ||
        (unit && (err = cks_store_attr_write(d, "unit", unit, s->path)))) {
        H5Dclose(d);
        return err;
    }
    *out = d;
    return 0;
}

/* Writes n values (memory type mt) at row, widening the dataset to n columns if needed. */
static int write_at(cks_store *s, const char *path, hid_t d, int rank, size_t row, const void *v,
                    hid_t mt, size_t n)
{
    hsize_t dims[2], start[2] = {row, 0}, count[2] = {1, n};
    hid_t fs = H5I_INVALID_HID, ms = H5I_INVALID_HID;
    int r, err = 0;
    if (dataset_dims(d, &r, dims) != 0)
        return cks_store_h5err(CKS_EFORMAT, "%s: cannot read %s", s->path, path);
    if (row >= dims[0] || (rank == 2 && n > dims[1])) {
        hsize_t want[2] = {row >= dims[0] ? row + 1 : dims[0],
                           rank == 2 && n > dims[1] ? n : dims[1]};
        if (H5Dset_extent(d, want) < 0)
            return cks_store_h5err(CKS_EIO, "%s: cannot extend %s", s->path, path);
    }
    fs = H5Dget_space(d);
    ms = H5Screate_simple(1, rank == 2 ? &count[1] : &count[0], NULL);
    if (fs < 0 || ms < 0 || H5Sselect_hyperslab(fs, H5S_SELECT_SET, start, NULL, count, NULL) < 0 ||
        H5Dwrite(d, mt, ms, fs, H5P_DEFAULT, v) < 0)
        err = cks_store_h5err(CKS_EIO, "%s: cannot write row %zu of %s", s->path, row, path);
    if (ms >= 0)
        H5Sclose(ms);
    if (fs >= 0)
        H5Sclose(fs);
    return err;
}

static int check_row(cks_store *s, const char *path, size_t row)
{
    size_t n = 0;
    int err = cks_store_nrows(s, &n);
    if (err)
        return err;
    if (row >= n)
        return cks_error_set(CKS_EINVAL, "%s: %s: row %zu but only %zu checkpoints", s->path, path,
                             row, n);
    if (path[0] != '/' || strcmp(path, "/checkpoints") == 0 || strcmp(path, "/tensors") == 0)
        return cks_error_set(CKS_EINVAL, "%s: '%s' cannot hold values", s->path, path);
    return 0;
}

int cks_store_write_row(cks_store *s, const char *path, size_t row, const double *v, size_t n,
                        const char *description, const char *unit)
{
    size_t t;
    hid_t d = H5I_INVALID_HID;
    int err = cks_store_need_tx(s, "writing values");
    if (err || (err = check_row(s, path, row)) || (err = table_len(s, "/tensors", &t)))
        return err;
    if (n != t)
        return cks_error_set(CKS_EINVAL, "%s: %s: a row of %zu values but %zu tensors", s->path,
                             path, n, t);
    if ((err = open_or_create(s, path, H5T_IEEE_F64LE, 2, n, AXES_MATRIX, description, unit, &d)) !=
        0)
        return err;
    err = write_at(s, path, d, 2, row, v, H5T_NATIVE_DOUBLE, n);
    return cks_store_fail(s, cks_store_close_written(s, d, path, err));
}

int cks_store_write_row_f32(cks_store *s, const char *path, size_t row, const float *v, size_t n,
                            const char *axis, const char *description, const char *unit)
{
    char axes[256];
    hid_t d = H5I_INVALID_HID;
    int err = cks_store_need_tx(s, "writing values");
    if (err || (err = check_row(s, path, row)))
        return err;
    if (!axis || !*axis || strcmp(axis, "tensor") == 0 || strlen(axis) > 200 || n == 0)
        return cks_error_set(CKS_EINVAL, "%s: %s: bad second axis or empty row", s->path, path);
    snprintf(axes, sizeof axes, "%s,%s", AXES_SERIES, axis);
    if ((err = open_or_create(s, path, H5T_IEEE_F32LE, 2, n, axes, description, unit, &d)) != 0)
        return err;
    err = write_at(s, path, d, 2, row, v, H5T_NATIVE_FLOAT, n);
    return cks_store_fail(s, cks_store_close_written(s, d, path, err));
}

int cks_store_write_series(cks_store *s, const char *path, size_t row, double v,
                           const char *description, const char *unit)
{
    hid_t d = H5I_INVALID_HID;
    int err = cks_store_need_tx(s, "writing values");
    if (err || (err = check_row(s, path, row)))
        return err;
    if ((err = open_or_create(s, path, H5T_IEEE_F64LE, 1, 0, AXES_SERIES, description, unit, &d)) !=
        0)
        return err;
    err = write_at(s, path, d, 1, row, &v, H5T_NATIVE_DOUBLE, 1);
    return cks_store_fail(s, cks_store_close_written(s, d, path, err));
}

/* ---- reading values ---- */

static int open_float(cks_store *s, const char *path, hid_t *d, hsize_t dims[2])
{
    int rank;
    if (!cks_store_exists(s, path))
        return cks_error_set(CKS_ENOTFOUND, "%s: no dataset %s", s->path, path);
    hid_t t = H5I_INVALID_HID;
    *d = H5Dopen2(s->fid, path, H5P_DEFAULT);
    if (*d < 0 || (t = H5Dget_type(*d)) < 0 || H5Tget_class(t) != H5T_FLOAT ||
        dataset_dims(*d, &rank, dims) != 0) {
        if (t >= 0)
            H5Tclose(t);
        if (*d >= 0)
            H5Dclose(*d);
        H5Eclear2(H5E_DEFAULT);
        return cks_error_set(CKS_EFORMAT, "%s: %s is not a 1-D or 2-D float dataset", s->path,
                             path);
    }
    H5Tclose(t);
    return 0;
}

int cks_store_shape(cks_store *s, const char *path, size_t *rows, size_t *cols)
{
    hid_t d = H5I_INVALID_HID;
    hsize_t dims[2] = {0, 0};
    int err = open_float(s, path, &d, dims);
    if (err)
        return err;
    H5Dclose(d);
    *rows = dims[0];
    *cols = dims[1];
    return 0;
}

/* Reads the hyperslab [r0, r0+nr) x [c0, c0+nc) of an open float dataset as doubles
 * (for 1-D datasets only r0 and nr count). */
static int read_block(cks_store *s, const char *path, hid_t d, hsize_t r0, hsize_t nr, hsize_t c0,
                      hsize_t nc, double *out)
{
    hsize_t start[2] = {r0, c0}, count[2] = {nr, nc}, total = nr * nc;
    hid_t fs = H5Dget_space(d), ms = H5Screate_simple(1, &total, NULL);
    int err = 0;
    if (total && (H5Sselect_hyperslab(fs, H5S_SELECT_SET, start, NULL, count, NULL) < 0 ||
                  H5Dread(d, H5T_NATIVE_DOUBLE, ms, fs, H5P_DEFAULT, out) < 0))
        err = cks_store_h5err(CKS_EFORMAT, "%s: cannot read %s", s->path, path);
    H5Sclose(ms);
    H5Sclose(fs);
    return err;
}

int cks_store_read_matrix(cks_store *s, const char *path, double **out, size_t *rows, size_t *cols)
{
    hid_t d = H5I_INVALID_HID;
    hsize_t dims[2] = {0, 0};
    size_t cells;
    int err = open_float(s, path, &d, dims);
    if (err)
        return err;
    if (__builtin_mul_overflow((size_t)dims[0], (size_t)dims[1], &cells) ||
        cells > CKS_STORE_MAX_CELLS) {
        H5Dclose(d);
        return cks_error_set(CKS_ELIMIT, "%s: %s has %llux%llu values, more than %u", s->path, path,
                             (unsigned long long)dims[0], (unsigned long long)dims[1],
                             CKS_STORE_MAX_CELLS);
    }
    double *buf = malloc((cells ? cells : 1) * sizeof *buf);
    if (!buf) {
        H5Dclose(d);
        return cks_error_set(CKS_ENOMEM, "out of memory");
    }
    err = read_block(s, path, d, 0, dims[0], 0, dims[1], buf);
    H5Dclose(d);
    if (err) {
        free(buf);
        return err;
    }
    *out = buf;
    *rows = dims[0];
    *cols = dims[1];
    return 0;
}

int cks_store_read_row(cks_store *s, const char *path, size_t row, double *out, size_t n)
{
    hid_t d = H5I_INVALID_HID;
    hsize_t dims[2] = {0, 0};
    int err = open_float(s, path, &d, dims);
    if (err)
        return err;
    if (row >= dims[0] || n != dims[1])
        err = cks_error_set(CKS_EINVAL, "%s: %s is %llux%llu: no row %zu of %zu values", s->path,
                            path, (unsigned long long)dims[0], (unsigned long long)dims[1], row, n);
    else
        err = read_block(s, path, d, row, 1, 0, dims[1], out);
    H5Dclose(d);
    return err;
}

int cks_store_read_column(cks_store *s, const char *path, size_t col, double *out, size_t n)
{
    hid_t d = H5I_INVALID_HID;
    hsize_t dims[2] = {0, 0};
    int err = open_float(s, path, &d, dims);
    if (err)
        return err;
    if (col >= dims[1] || n != dims[0])
        err = cks_error_set(CKS_EINVAL, "%s: %s is %llux%llu: no column %zu of %zu values", s->path,
                            path, (unsigned long long)dims[0], (unsigned long long)dims[1], col, n);
    else
        err = read_block(s, path, d, 0, dims[0], col, 1, out);
    H5Dclose(d);
    return err;
}

typedef struct {
    char **names;
    size_t n, cap;
    int err;
} name_list;

static herr_t list_one(hid_t g, const char *name, const H5L_info_t *info, void *op)
{
    name_list *l = op;
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 32;
        char **p = realloc(l->names, cap * sizeof *p);
        if (!p) {
            l->err = cks_error_set(CKS_ENOMEM, "out of memory");
            return -1;
        }
        l->names = p;
        l->cap = cap;
    }
    if (!(l->names[l->n] = strdup(name))) {
        l->err = cks_error_set(CKS_ENOMEM, "out of memory");
        return -1;
    }
    l->n++;
    return 0;
}

void cks_store_names_free(char **names, size_t n)
{
    for (size_t i = 0; names && i < n; i++)
        free(names[i]);
    free(names);
}

int cks_store_list(cks_store *s, const char *group, char ***names, size_t *n)
{
    name_list l = {NULL, 0, 0, 0};
    hsize_t idx = 0;
    if (!cks_store_exists(s, group))
        return cks_error_set(CKS_ENOTFOUND, "%s: no group %s", s->path, group);
    hid_t g = H5Gopen2(s->fid, group, H5P_DEFAULT);
    if (g < 0)
        return cks_store_h5err(CKS_EFORMAT, "%s: %s is not a group", s->path, group);
    herr_t r = H5Literate(g, H5_INDEX_NAME, H5_ITER_INC, &idx, list_one, &l);
    H5Gclose(g);
    if (r < 0) {
        int err =
            l.err ? l.err : cks_store_h5err(CKS_EFORMAT, "%s: cannot list %s", s->path, group);
        H5Eclear2(H5E_DEFAULT);
        cks_store_names_free(l.names, l.n);
        return err;
    }
    *names = l.names;
    *n = l.n;
    return 0;
}
