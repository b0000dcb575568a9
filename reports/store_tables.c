/* The run file's two tables: /checkpoints (one record per row) and /tensors (one record
 * per column of the [checkpoint, tensor] datasets), compound records with variable-length
 * UTF-8 strings. Rewriting a checkpoint's record resets its row in every dataset
 * (store_values.c). See store.h. */
#include "error.h"
#include "store_impl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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

int cks_store_table_len(cks_store *s, const char *path, size_t *n)
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
    return cks_store_table_len(s, "/checkpoints", n);
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

int cks_store_ntensors(cks_store *s, size_t *n)
{
    return cks_store_table_len(s, "/tensors", n);
}

int cks_store_put_checkpoint(cks_store *s, const char *name, int64_t step, const char *commit,
                             const char *status, size_t *row)
{
    return cks_store_put_checkpoint_at(s, name, step, commit, status, NULL, row);
}

/* The reader refuses fields longer than CKS_STORE_MAX_NAME (field() above), so the writer
 * does too: whatever it writes reads back. */
static int check_len(const cks_store *s, const char *table, const char *what, const char *v)
{
    if (v && strnlen(v, CKS_STORE_MAX_NAME + 1) > CKS_STORE_MAX_NAME)
        return cks_error_set(CKS_ELIMIT, "%s: %s: a %s longer than %d bytes", s->path, table, what,
                             CKS_STORE_MAX_NAME);
    return 0;
}

int cks_store_put_checkpoint_at(cks_store *s, const char *name, int64_t step, const char *commit,
                                const char *status, const char *analysed_at, size_t *row)
{
    int err = cks_store_need_tx(s, "recording a checkpoint");
    size_t at, n;
    if (err || (err = check_len(s, "/checkpoints", "name", name)) ||
        (err = check_len(s, "/checkpoints", "commit", commit)) ||
        (err = check_len(s, "/checkpoints", "status", status)) ||
        (err = check_len(s, "/checkpoints", "analysed_at", analysed_at)))
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
    ckpt_rec r = {(char *)name, step, (char *)(commit ? commit : ""), (char *)status,
                  (char *)(analysed_at ? analysed_at : now)};
    hid_t mt = ckpt_mem_type();
    err = write_records(s, "/checkpoints", mt, &r, at, 1);
    H5Tclose(mt);
    if (!err && replace)
        err = cks_store_clear_row(s, at);
    if (!err)
        *row = at;
    return err;
}

typedef struct {
    const char *name;
    size_t at;
} name_at;

static int cmp_name_at(const void *pa, const void *pb)
{
    const name_at *a = pa, *b = pb;
    int c = strcmp(a->name, b->name);
    return c ? c : (a->at > b->at) - (a->at < b->at);
}

/* names[i] = {v[i].name, i} sorted by name (then position); NULL when out of memory. */
static name_at *sorted_names(const cks_store_tensor *v, size_t n)
{
    name_at *x = malloc((n ? n : 1) * sizeof *x);
    if (!x)
        return NULL;
    for (size_t i = 0; i < n; i++)
        x[i] = (name_at){v[i].name, i};
    qsort(x, n, sizeof *x, cmp_name_at);
    return x;
}

/* Position in have of the column named name, or SIZE_MAX (hv: have sorted by name). */
static size_t find_column(const name_at *hv, size_t nhave, const char *name)
{
    size_t lo = 0, hi = nhave;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(hv[mid].name, name);
        if (c == 0)
            return hv[mid].at;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return SIZE_MAX;
}

/* Names are matched through sorted copies, not pairwise: a checkpoint may hold a million
 * tensors, and comparing each with every column took hours. */
int cks_store_add_tensors(cks_store *s, const cks_store_tensor *t, size_t n, size_t *cols)
{
    int err = cks_store_need_tx(s, "adding tensors");
    cks_store_tensor *have = NULL;
    size_t nhave = 0, nnew = 0, *col = NULL, *first = NULL;
    tensor_rec *recs = NULL;
    name_at *hv = NULL, *in = NULL;
    if (err || (err = cks_store_tensors(s, &have, &nhave)) != 0)
        return err;
    if (!(recs = calloc(n ? n : 1, sizeof *recs)) || !(col = malloc((n ? n : 1) * sizeof *col)) ||
        !(first = malloc((n ? n : 1) * sizeof *first)) || !(hv = sorted_names(have, nhave)) ||
        !(in = sorted_names(t, n))) {
        err = cks_error_set(CKS_ENOMEM, "out of memory");
        goto done;
    }
    /* a name given twice takes the column of its first occurrence */
    for (size_t k = 0; k < n; k++)
        first[in[k].at] =
            k > 0 && strcmp(in[k - 1].name, in[k].name) == 0 ? first[in[k - 1].at] : in[k].at;
    for (size_t i = 0; i < n; i++) {
        col[i] = find_column(hv, nhave, t[i].name);
        if (col[i] == SIZE_MAX && first[i] != i)
            col[i] = col[first[i]];
        if (col[i] == SIZE_MAX) {
            if ((err = check_len(s, "/tensors", "name", t[i].name)) ||
                (err = check_len(s, "/tensors", "kind", t[i].kind)))
                goto done;
            col[i] = nhave + nnew;
            recs[nnew++] = (tensor_rec){(char *)t[i].name, t[i].layer,
                                        (char *)(t[i].kind ? t[i].kind : ""), t[i].rows, t[i].cols};
        }
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
    if (!err && cols)
        memcpy(cols, col, n * sizeof *cols);
done:
    free(in);
    free(hv);
    free(first);
    free(col);
    free(recs);
    cks_store_tensors_free(have, nhave);
    return err;
}
