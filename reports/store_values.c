/* The run file's row-indexed float datasets: created on first write with NaN fill and an
 * "axes" attribute, kept at N rows (and T columns for tensor matrices) before every
 * commit, read whole, by row or by column. See store.h. */
#include "error.h"
#include "store_impl.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define AXES_MATRIX "checkpoint,tensor"
#define AXES_SERIES "checkpoint"

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
    if ((err = cks_store_nrows(s, &n)) || (err = cks_store_table_len(s, "/tensors", &t)) ||
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

int cks_store_clear_row(cks_store *s, size_t row)
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
            hid_t ty = H5Dget_type(d); /* uint8 rows: CKS_STORE_U8_NONE, read as 255 */
            double none = ty >= 0 && H5Tget_class(ty) == H5T_INTEGER ? CKS_STORE_U8_NONE : NAN;
            if (ty >= 0)
                H5Tclose(ty);
            for (size_t k = 0; k < dims[1]; k++)
                nan[k] = none;
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

int cks_store_row_datasets(cks_store *s, char ***paths, size_t *n)
{
    ds_list l;
    int err = list_row_datasets(s, &l);
    if (err)
        return err;
    free(l.matrix);
    *paths = l.paths;
    *n = l.n;
    return 0;
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

/* Opens a row-indexed dataset, creating it (rows = N, cols = cols, NaN fill; uint8:
 * CKS_STORE_U8_NONE) when missing. rank 1 for series. An existing dataset must be of
 * ftype's class (float or integer), of that rank and with the same axes. */
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
        if (err || t < 0 || H5Tget_class(t) != H5Tget_class(ftype) ||
            dataset_dims(d, &r, dims) != 0 || r != rank || strcmp(have, axes) != 0)
            err = cks_error_set(CKS_EFORMAT,
                                "%s: %s exists but is not a %s %dD dataset with "
                                "axes '%s'",
                                s->path, path, H5Tget_class(ftype) == H5T_FLOAT ? "float" : "uint8",
                                rank, axes);
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
    unsigned char none = CKS_STORE_U8_NONE;
    hid_t sp = H5Screate_simple(rank, dims, maxdims), dcpl = H5Pcreate(H5P_DATASET_CREATE);
    hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
    H5Pset_create_intermediate_group(lcpl, 1);
    H5Pset_chunk(dcpl, rank, chunk);
    if (H5Tget_class(ftype) == H5T_INTEGER)
        H5Pset_fill_value(dcpl, H5T_NATIVE_UCHAR, &none);
    else
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
    if (err || (err = check_row(s, path, row)) || (err = cks_store_table_len(s, "/tensors", &t)))
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

/* One row of a [N, n] dataset of file type ft along a named second axis. */
static int write_row(cks_store *s, const char *path, size_t row, const void *v, size_t n,
                     const char *axis, const char *description, const char *unit, hid_t ft,
                     hid_t mt)
{
    char axes[256];
    hid_t d = H5I_INVALID_HID;
    int err = cks_store_need_tx(s, "writing values");
    if (err || (err = check_row(s, path, row)))
        return err;
    if (!axis || !*axis || strcmp(axis, "tensor") == 0 || strlen(axis) > 200 || n == 0)
        return cks_error_set(CKS_EINVAL, "%s: %s: bad second axis or empty row", s->path, path);
    snprintf(axes, sizeof axes, "%s,%s", AXES_SERIES, axis);
    if ((err = open_or_create(s, path, ft, 2, n, axes, description, unit, &d)) != 0)
        return err;
    err = write_at(s, path, d, 2, row, v, mt, n);
    return cks_store_fail(s, cks_store_close_written(s, d, path, err));
}

int cks_store_write_row_f32(cks_store *s, const char *path, size_t row, const float *v, size_t n,
                            const char *axis, const char *description, const char *unit)
{
    return write_row(s, path, row, v, n, axis, description, unit, H5T_IEEE_F32LE, H5T_NATIVE_FLOAT);
}

int cks_store_write_row_u8(cks_store *s, const char *path, size_t row, const uint8_t *v, size_t n,
                           const char *axis, const char *description, const char *unit)
{
    return write_row(s, path, row, v, n, axis, description, unit, H5T_STD_U8LE, H5T_NATIVE_UCHAR);
}

int cks_store_is_u8(cks_store *s, const char *path)
{
    if (!cks_store_exists(s, path))
        return 0;
    hid_t d = H5Dopen2(s->fid, path, H5P_DEFAULT), t = d >= 0 ? H5Dget_type(d) : -1;
    int yes = t >= 0 && H5Tget_class(t) == H5T_INTEGER;
    if (t >= 0)
        H5Tclose(t);
    if (d >= 0)
        H5Dclose(d);
    H5Eclear2(H5E_DEFAULT);
    return yes;
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
    if (*d < 0 || (t = H5Dget_type(*d)) < 0 ||
        (H5Tget_class(t) != H5T_FLOAT && H5Tget_class(t) != H5T_INTEGER) ||
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

/* Reading cells values of the open dataset d allocates 8 * cells bytes. HDF5 returns the
 * fill value for chunks that were never written, so a tiny hostile file can declare a
 * huge dataset: past CKS_STORE_SPARSE_CELLS, the file must store at least 2 bytes per cell
 * read (a float32 dataset half written; ours are fully written), which bounds what a file
 * can make us allocate to 4 times its size. */
static int check_backed(cks_store *s, const char *path, hid_t d, uint64_t cells)
{
    char p[256]; /* dataset names come from the file */
    if (cells > CKS_STORE_MAX_CELLS)
        return cks_error_set(CKS_ELIMIT, "%s: %s: reading %llu values, more than %u", s->path,
                             cks_printable(p, sizeof p, path, strlen(path)),
                             (unsigned long long)cells, CKS_STORE_MAX_CELLS);
    if (cells <= CKS_STORE_SPARSE_CELLS)
        return 0;
    hsize_t stored = H5Dget_storage_size(d);
    H5Eclear2(H5E_DEFAULT);
    if (stored / 2 < cells)
        return cks_error_set(CKS_ELIMIT,
                             "%s: %s: reading %llu values, but the file stores only %llu bytes "
                             "of them (unwritten data past %u values: a damaged or hostile file)",
                             s->path, cks_printable(p, sizeof p, path, strlen(path)),
                             (unsigned long long)cells, (unsigned long long)stored,
                             CKS_STORE_SPARSE_CELLS);
    return 0;
}

int cks_store_check_read(cks_store *s, const char *path, size_t cells)
{
    hid_t d = H5I_INVALID_HID;
    hsize_t dims[2] = {0, 0};
    int err = open_float(s, path, &d, dims);
    if (err)
        return err;
    err = check_backed(s, path, d, cells);
    H5Dclose(d);
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
    if (__builtin_mul_overflow((size_t)dims[0], (size_t)dims[1], &cells))
        cells = SIZE_MAX;
    if ((err = check_backed(s, path, d, cells)) != 0) {
        H5Dclose(d);
        return err;
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

static herr_t list_one(hid_t g, const char *name, const H5L_info_t *info, void *op)
{
    return cks_store_names_push(op, name);
}

void cks_store_names_free(char **names, size_t n)
{
    for (size_t i = 0; names && i < n; i++)
        free(names[i]);
    free(names);
}

int cks_store_list(cks_store *s, const char *group, char ***names, size_t *n)
{
    cks_store_names l = {NULL, 0, 0, 0};
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
