/* The HDF5 run file (reports/store.h): round trips through our own reader, NaN for what
 * was never written, row replacement, transactions that leave the file byte-identical
 * when aborted or when the disk is full, the writer lock, and refusal of foreign files.
 * h5py reads the files a scan writes in tests/cli/test_scan.py. */
#include "error.h"
#include "store.h"
#include "testutil.h"

#include <errno.h>
#include <hdf5.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

/* The disk-full tests leave HDF5 with a file it could not close (see store.c): HDF5 then
 * holds buffers it can never free. LeakSanitizer would report those; it cannot see our own
 * handle leaks inside HDF5 anyway (HDF5's tables keep them reachable), which is what
 * assert_no_open_hdf5 checks instead. */
const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void)
{
    return "leak:libhdf5_serial.so\n";
}

/* Every HDF5 object the store opened is closed again (no handle leaks). */
static void assert_no_open_hdf5(void)
{
    assert_int_equal(H5Fget_obj_count(H5F_OBJ_ALL, H5F_OBJ_ALL), 0);
}

static char *path_in(const char *dir, const char *name)
{
    char *p;
    assert_true(asprintf(&p, "%s/%s", dir, name) > 0);
    return p;
}

static unsigned char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc((size_t)n + 1);
    assert_int_equal(fread(b, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *len = (size_t)n;
    return b;
}

static void assert_same_file(const char *path, const unsigned char *want, size_t wlen)
{
    size_t len;
    unsigned char *got = slurp(path, &len);
    assert_int_equal(len, wlen);
    assert_memory_equal(got, want, len);
    free(got);
}

static const char *const extra[] = {"metrics", "norms,drift", NULL};
static const cks_store_meta meta = {"/data/K2", "{\"hidden_size\": 64}", NULL, extra};

/* A store with checkpoints a, b and tensors t0, t1 and /norms/fro written. */
static cks_store *two_by_two(const char *path)
{
    cks_store *s;
    size_t row, cols[2];
    cks_store_tensor t[2] = {{"t0", 0, "q", 4, 8}, {"t1", -1, "final_norm", 8, 0}};
    assert_int_equal(cks_store_create(&s, path, &meta), 0);
    assert_int_equal(cks_store_begin(s), 0);
    assert_int_equal(cks_store_put_checkpoint(s, "a", 0, "c0ffee", "complete", &row), 0);
    assert_int_equal(row, 0);
    assert_int_equal(cks_store_add_tensors(s, t, 2, cols), 0);
    assert_int_equal(cols[0], 0);
    assert_int_equal(cols[1], 1);
    double v0[2] = {1.5, 2.5};
    assert_int_equal(cks_store_write_row(s, "/norms/fro", 0, v0, 2, "Frobenius norm", NULL), 0);
    assert_int_equal(cks_store_commit(s), 0);
    assert_int_equal(cks_store_begin(s), 0);
    assert_int_equal(cks_store_put_checkpoint(s, "b", 100, "beef", "complete", &row), 0);
    assert_int_equal(row, 1);
    double v1[2] = {3.5, 4.5};
    assert_int_equal(cks_store_write_row(s, "/norms/fro", 1, v1, 2, NULL, NULL), 0);
    assert_int_equal(cks_store_commit(s), 0);
    return s;
}

static void test_store__round_trip(void **state)
{
    char *dir = cks_tmpdir_new("store"), *path = path_in(dir, "RUN.h5");
    cks_store *w = two_by_two(path), *r;
    cks_store_free(w);
    assert_int_equal(cks_store_open(&r, path, CKS_STORE_READ), 0);
    char *a;
    assert_int_equal(cks_store_get_attr(r, "/", "format", &a), 0);
    assert_string_equal(a, "ckptscope-run");
    free(a);
    assert_int_equal(cks_store_get_attr(r, "/", "source", &a), 0);
    assert_string_equal(a, "/data/K2");
    free(a);
    assert_int_equal(cks_store_get_attr(r, "/", "config", &a), 0);
    assert_string_equal(a, "{\"hidden_size\": 64}");
    free(a);
    assert_int_equal(cks_store_get_attr(r, "/", "metrics", &a), 0);
    assert_string_equal(a, "norms,drift");
    free(a);
    assert_int_equal(cks_store_get_attr(r, "/", "created_by", &a), 0);
    assert_string_equal(a, "ckptscope " CKS_VERSION);
    free(a);
    assert_int_equal(cks_store_get_attr(r, "/norms/fro", "description", &a), 0);
    assert_string_equal(a, "Frobenius norm");
    free(a);
    assert_int_equal(cks_store_get_attr(r, "/norms/fro", "axes", &a), 0);
    assert_string_equal(a, "checkpoint,tensor");
    free(a);
    assert_int_equal(cks_store_get_attr(r, "/norms/fro", "unit", &a), CKS_ENOTFOUND);

    cks_store_ckpt *c;
    size_t n;
    assert_int_equal(cks_store_checkpoints(r, &c, &n), 0);
    assert_int_equal(n, 2);
    assert_string_equal(c[0].name, "a");
    assert_int_equal(c[0].step, 0);
    assert_string_equal(c[0].commit, "c0ffee");
    assert_string_equal(c[1].name, "b");
    assert_int_equal(c[1].step, 100);
    assert_string_equal(c[1].status, "complete");
    assert_int_equal(strlen(c[1].analysed_at), 20); /* 2026-01-01T00:00:00Z */
    cks_store_ckpts_free(c, n);

    cks_store_tensor *t;
    assert_int_equal(cks_store_tensors(r, &t, &n), 0);
    assert_int_equal(n, 2);
    assert_string_equal(t[1].name, "t1");
    assert_string_equal(t[1].kind, "final_norm");
    assert_int_equal(t[1].layer, -1);
    assert_int_equal(t[0].rows, 4);
    assert_int_equal(t[0].cols, 8);
    cks_store_tensors_free(t, n);

    double *m, row[2], col[2];
    size_t rows, cols;
    assert_int_equal(cks_store_read_matrix(r, "/norms/fro", &m, &rows, &cols), 0);
    assert_int_equal(rows, 2);
    assert_int_equal(cols, 2);
    assert_close(m[0], 1.5, 0, 0);
    assert_close(m[3], 4.5, 0, 0);
    free(m);
    assert_int_equal(cks_store_read_row(r, "/norms/fro", 1, row, 2), 0);
    assert_close(row[0], 3.5, 0, 0);
    assert_int_equal(cks_store_read_column(r, "/norms/fro", 1, col, 2), 0);
    assert_close(col[0], 2.5, 0, 0);
    assert_close(col[1], 4.5, 0, 0);
    assert_int_equal(cks_store_read_row(r, "/norms/fro", 2, row, 2), CKS_EINVAL);
    assert_int_equal(cks_store_read_matrix(r, "/norms/rms", &m, &rows, &cols), CKS_ENOTFOUND);
    size_t row_b;
    assert_int_equal(cks_store_find_checkpoint(r, "b", &row_b), 0);
    assert_int_equal(row_b, 1);
    assert_int_equal(cks_store_find_checkpoint(r, "zz", &row_b), CKS_ENOTFOUND);
    char **names;
    assert_int_equal(cks_store_list(r, "/", &names, &n), 0);
    assert_int_equal(n, 3);
    assert_string_equal(names[0], "checkpoints");
    assert_string_equal(names[1], "norms");
    assert_string_equal(names[2], "tensors");
    cks_store_names_free(names, n);
    /* a reader cannot write */
    assert_int_equal(cks_store_begin(r), CKS_EINVAL);
    cks_store_free(r);
    free(path);
    assert_no_open_hdf5();
    cks_tmpdir_remove(dir);
}

static void test_store__unwritten_is_nan(void **state)
{
    char *dir = cks_tmpdir_new("store"), *path = path_in(dir, "RUN.h5");
    cks_store *s = two_by_two(path);
    size_t row, col, rows, cols;
    cks_store_tensor t = {"t2", 1, "k", 2, 2};
    assert_int_equal(cks_store_begin(s), 0);
    assert_int_equal(cks_store_put_checkpoint(s, "c", 200, "", "incomplete", &row), 0);
    assert_int_equal(cks_store_add_tensors(s, &t, 1, &col), 0);
    assert_int_equal(col, 2);
    /* a series and a spectrum appear only now, at row 2 */
    assert_int_equal(cks_store_write_series(s, "/eval/wiki/ppl", 2, 12.5, "perplexity", NULL), 0);
    float top[3] = {9, 4, 1};
    assert_int_equal(
        cks_store_write_row_f32(s, "/spectra/t0", 2, top, 3, "rank", "largest eigenvalues", NULL),
        0);
    assert_int_equal(cks_store_commit(s), 0);
    /* then a fourth checkpoint that writes nothing */
    assert_int_equal(cks_store_begin(s), 0);
    assert_int_equal(cks_store_put_checkpoint(s, "d", 300, "", "failed", &row), 0);
    assert_int_equal(cks_store_commit(s), 0);

    double *m;
    assert_int_equal(cks_store_read_matrix(s, "/norms/fro", &m, &rows, &cols), 0);
    assert_int_equal(rows, 4); /* every row-indexed dataset follows N and T */
    assert_int_equal(cols, 3);
    assert_close(m[0 * 3 + 1], 2.5, 0, 0);
    assert_true(isnan(m[0 * 3 + 2]) && isnan(m[1 * 3 + 2])); /* the new column */
    assert_true(isnan(m[2 * 3 + 0]) && isnan(m[3 * 3 + 1])); /* rows never written */
    free(m);
    assert_int_equal(cks_store_read_matrix(s, "/eval/wiki/ppl", &m, &rows, &cols), 0);
    assert_int_equal(rows, 4);
    assert_int_equal(cols, 1);
    assert_true(isnan(m[0]) && isnan(m[1]) && isnan(m[3]));
    assert_close(m[2], 12.5, 0, 0);
    free(m);
    assert_int_equal(cks_store_read_matrix(s, "/spectra/t0", &m, &rows, &cols), 0);
    assert_int_equal(rows, 4);
    assert_int_equal(cols, 3);
    assert_true(isnan(m[0]) && isnan(m[11]));
    assert_close(m[2 * 3 + 1], 4.0, 0, 0);
    free(m);
    /* a longer spectrum widens the dataset; the shorter rows end in NaN */
    float top4[4] = {8, 3, 2, 1};
    assert_int_equal(cks_store_begin(s), 0);
    assert_int_equal(cks_store_write_row_f32(s, "/spectra/t0", 3, top4, 4, "rank", NULL, NULL), 0);
    assert_int_equal(cks_store_commit(s), 0);
    assert_int_equal(cks_store_shape(s, "/spectra/t0", &rows, &cols), 0);
    assert_int_equal(cols, 4);
    double r2[4];
    assert_int_equal(cks_store_read_row(s, "/spectra/t0", 2, r2, 4), 0);
    assert_close(r2[2], 1.0, 0, 0);
    assert_true(isnan(r2[3]));
    cks_store_free(s);
    free(path);
    assert_no_open_hdf5();
    cks_tmpdir_remove(dir);
}

/* uint8 rows (/memo/<set>/full): written and read back as numbers, 255 where no value
 * (other rows, past a shorter row, a row replaced), and refused as a float row. */
static void test_store__u8_rows(void **state)
{
    char *dir = cks_tmpdir_new("store"), *path = path_in(dir, "RUN.h5");
    cks_store *s = two_by_two(path);
    size_t rows, cols, row;
    double *m;
    const uint8_t f3[3] = {1, 0, 1}, f4[4] = {0, 1, 1, 0};
    assert_int_equal(cks_store_begin(s), 0);
    assert_int_equal(cks_store_write_row_u8(s, "/memo/t/full", 1, f3, 3, "sequence", "flags", NULL),
                     0);
    assert_int_equal(cks_store_write_row_f32(s, "/memo/t/full", 1, (const float[]){1}, 1,
                                             "sequence", NULL, NULL),
                     CKS_EFORMAT);
    assert_int_equal(cks_store_commit(s), 0);
    assert_int_equal(cks_store_is_u8(s, "/memo/t/full"), 1);
    assert_int_equal(cks_store_is_u8(s, "/norms/fro"), 0);
    assert_int_equal(cks_store_begin(s), 0);
    assert_int_equal(cks_store_put_checkpoint(s, "c", 200, "", "complete", &row), 0);
    assert_int_equal(cks_store_write_row_u8(s, "/memo/t/full", row, f4, 4, "sequence", NULL, NULL),
                     0);
    assert_int_equal(cks_store_commit(s), 0);
    assert_int_equal(cks_store_read_matrix(s, "/memo/t/full", &m, &rows, &cols), 0);
    assert_int_equal(rows, 3);
    assert_int_equal(cols, 4);
    const double want[12] = {255, 255, 255, 255, 1, 0, 1, 255, 0, 1, 1, 0};
    for (int i = 0; i < 12; i++)
        assert_close(m[i], want[i], 0, 0);
    free(m);
    /* checkpoint b again: its row goes back to no value */
    assert_int_equal(cks_store_begin(s), 0);
    assert_int_equal(cks_store_put_checkpoint(s, "b", 100, "beef", "complete", &row), 0);
    assert_int_equal(row, 1);
    assert_int_equal(cks_store_commit(s), 0);
    double r[4];
    assert_int_equal(cks_store_read_row(s, "/memo/t/full", 1, r, 4), 0);
    for (int i = 0; i < 4; i++)
        assert_close(r[i], 255, 0, 0);
    cks_store_free(s);
    free(path);
    assert_no_open_hdf5();
    cks_tmpdir_remove(dir);
}

static void test_store__replace_row_resets(void **state)
{
    char *dir = cks_tmpdir_new("store"), *path = path_in(dir, "RUN.h5");
    cks_store *s = two_by_two(path);
    size_t row, n;
    assert_int_equal(cks_store_begin(s), 0);
    assert_int_equal(cks_store_write_series(s, "/evals/arc/acc", 0, 0.25, NULL, NULL), 0);
    assert_int_equal(cks_store_commit(s), 0);
    /* checkpoint a again (its commit changed): same row, every old value gone */
    assert_int_equal(cks_store_begin(s), 0);
    assert_int_equal(cks_store_put_checkpoint(s, "a", 0, "d00d", "complete", &row), 0);
    assert_int_equal(row, 0);
    assert_int_equal(cks_store_commit(s), 0);
    assert_int_equal(cks_store_nrows(s, &n), 0);
    assert_int_equal(n, 2);
    double v[2];
    assert_int_equal(cks_store_read_row(s, "/norms/fro", 0, v, 2), 0);
    assert_true(isnan(v[0]) && isnan(v[1]));
    assert_int_equal(cks_store_read_row(s, "/norms/fro", 1, v, 2), 0);
    assert_close(v[0], 3.5, 0, 0); /* the other row is untouched */
    double *m;
    size_t rows, cols;
    assert_int_equal(cks_store_read_matrix(s, "/evals/arc/acc", &m, &rows, &cols), 0);
    assert_true(isnan(m[0]));
    free(m);
    cks_store_ckpt *c;
    assert_int_equal(cks_store_checkpoints(s, &c, &n), 0);
    assert_string_equal(c[0].commit, "d00d");
    cks_store_ckpts_free(c, n);
    cks_store_free(s);
    free(path);
    assert_no_open_hdf5();
    cks_tmpdir_remove(dir);
}

static void test_store__abort_leaves_file_unchanged(void **state)
{
    char *dir = cks_tmpdir_new("store"), *path = path_in(dir, "RUN.h5");
    char *tmp = path_in(dir, "RUN.h5.tmp");
    cks_store *s = two_by_two(path);
    size_t len, row;
    unsigned char *before = slurp(path, &len);
    double v[2] = {7, 7};
    assert_int_equal(cks_store_begin(s), 0);
    assert_int_equal(access(tmp, F_OK), 0);
    assert_int_equal(cks_store_put_checkpoint(s, "c", 200, "", "complete", &row), 0);
    assert_int_equal(cks_store_write_row(s, "/norms/fro", row, v, 2, NULL, NULL), 0);
    assert_same_file(path, before, len); /* writes go to the copy */
    cks_store_abort(s);
    assert_same_file(path, before, len);
    assert_int_not_equal(access(tmp, F_OK), 0);
    /* freeing with a transaction open aborts it too */
    assert_int_equal(cks_store_begin(s), 0);
    assert_int_equal(cks_store_put_checkpoint(s, "c", 200, "", "complete", &row), 0);
    cks_store_free(s);
    assert_same_file(path, before, len);
    assert_int_not_equal(access(tmp, F_OK), 0);
    free(before);
    free(tmp);
    free(path);
    assert_no_open_hdf5();
    cks_tmpdir_remove(dir);
}

static void test_store__writes_need_transaction(void **state)
{
    char *dir = cks_tmpdir_new("store"), *path = path_in(dir, "RUN.h5");
    cks_store *s = two_by_two(path);
    size_t row;
    double v[2] = {0, 0};
    assert_int_equal(cks_store_put_checkpoint(s, "c", 1, "", "complete", &row), CKS_EINVAL);
    assert_int_equal(cks_store_write_row(s, "/norms/fro", 0, v, 2, NULL, NULL), CKS_EINVAL);
    assert_non_null(strstr(cks_error_last(), "transaction"));
    assert_int_equal(cks_store_commit(s), CKS_EINVAL);
    assert_int_equal(cks_store_begin(s), 0);
    assert_int_equal(cks_store_begin(s), CKS_EINVAL);
    /* rows that do not exist, rows of the wrong length, and the tables themselves */
    assert_int_equal(cks_store_write_row(s, "/norms/fro", 2, v, 2, NULL, NULL), CKS_EINVAL);
    assert_int_equal(cks_store_write_row(s, "/norms/fro", 0, v, 1, NULL, NULL), CKS_EINVAL);
    assert_int_equal(cks_store_write_series(s, "/tensors", 0, 1.0, NULL, NULL), CKS_EINVAL);
    /* a series where a matrix is: refused, not reshaped */
    assert_int_equal(cks_store_write_series(s, "/norms/fro", 0, 1.0, NULL, NULL), CKS_EFORMAT);
    cks_store_free(s);
    free(path);
    assert_no_open_hdf5();
    cks_tmpdir_remove(dir);
}

static void test_store__second_writer_refused(void **state)
{
    char *dir = cks_tmpdir_new("store"), *path = path_in(dir, "RUN.h5");
    char *lock = path_in(dir, "RUN.h5.lock");
    cks_store *s = two_by_two(path), *t = NULL, *r = NULL;
    char pid[32];
    snprintf(pid, sizeof pid, "pid %ld", (long)getpid());
    assert_int_equal(cks_store_open(&t, path, CKS_STORE_WRITE), CKS_EEXISTS);
    assert_non_null(strstr(cks_error_last(), "another ckptscope"));
    assert_non_null(strstr(cks_error_last(), pid));
    assert_int_equal(cks_store_create(&t, path, &meta), CKS_EEXISTS);
    /* readers are never blocked */
    assert_int_equal(cks_store_open(&r, path, CKS_STORE_READ), 0);
    cks_store_free(r);
    cks_store_free(s);
    assert_int_not_equal(access(lock, F_OK), 0); /* removed by its holder */
    assert_int_equal(cks_store_open(&t, path, CKS_STORE_WRITE), 0);
    cks_store_free(t);
    free(lock);
    free(path);
    assert_no_open_hdf5();
    cks_tmpdir_remove(dir);
}

static void h5_with_format(const char *path, const char *format, int64_t version)
{
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    assert_true(f >= 0);
    hid_t sp = H5Screate(H5S_SCALAR);
    if (format) {
        hid_t t = H5Tcopy(H5T_C_S1);
        H5Tset_size(t, strlen(format)); /* fixed-length, as other tools often write */
        hid_t a = H5Acreate2(f, "format", t, sp, H5P_DEFAULT, H5P_DEFAULT);
        H5Awrite(a, t, format);
        H5Aclose(a);
        H5Tclose(t);
    }
    if (version >= 0) {
        hid_t a = H5Acreate2(f, "format_version", H5T_STD_I32LE, sp, H5P_DEFAULT, H5P_DEFAULT);
        int v = (int)version;
        H5Awrite(a, H5T_NATIVE_INT, &v);
        H5Aclose(a);
    }
    H5Sclose(sp);
    H5Fclose(f);
}

static void expect_refused(const char *path, int code, const char *words)
{
    cks_store *s = NULL;
    assert_int_equal(cks_store_open(&s, path, CKS_STORE_READ), code);
    assert_null(s);
    if (!strstr(cks_error_last(), words))
        fail_msg("message '%s' lacks '%s'", cks_error_last(), words);
    assert_non_null(strstr(cks_error_last(), path));
}

static void test_store__rejects_foreign_files(void **state)
{
    char *dir = cks_tmpdir_new("store");
    char *text = path_in(dir, "notes.txt"), *other = path_in(dir, "other.h5");
    char *noattr = path_in(dir, "plain.h5"), *v2 = path_in(dir, "v2.h5"),
         *bare = path_in(dir, "bare.h5");
    cks_write_file(text, "hello\n", 6);
    h5_with_format(other, "weightwatcher-results", 1);
    h5_with_format(noattr, NULL, -1);
    h5_with_format(v2, "ckptscope-run", 2);
    h5_with_format(bare, "ckptscope-run", 1); /* the right attributes, no tables */
    expect_refused(text, CKS_EFORMAT, "not HDF5");
    expect_refused(other, CKS_EFORMAT, "format is 'weightwatcher-results'");
    expect_refused(noattr, CKS_EFORMAT, "another tool");
    expect_refused(v2, CKS_EFORMAT, "format_version 2");
    expect_refused(bare, CKS_EFORMAT, "/checkpoints is missing");
    char *missing = path_in(dir, "none.h5");
    expect_refused(missing, CKS_ENOTFOUND, "none.h5");
    /* a writer refuses too, and leaves the foreign file alone */
    cks_store *s = NULL;
    size_t len;
    unsigned char *before = slurp(other, &len);
    assert_int_equal(cks_store_open(&s, other, CKS_STORE_WRITE), CKS_EFORMAT);
    assert_same_file(other, before, len);
    free(before);
    free(missing);
    free(text);
    free(other);
    free(noattr);
    free(v2);
    free(bare);
    assert_no_open_hdf5();
    cks_tmpdir_remove(dir);
}

typedef struct {
    char points[256];
} hook_log;

static void log_point(const char *point, void *ctx)
{
    hook_log *l = ctx;
    strcat(l->points, point);
    strcat(l->points, " ");
}

static void test_store__commit_points(void **state)
{
    char *dir = cks_tmpdir_new("store"), *path = path_in(dir, "RUN.h5");
    cks_store *s = two_by_two(path);
    hook_log l = {""};
    size_t row;
    cks_store_set_hook(s, log_point, &l);
    assert_int_equal(cks_store_begin(s), 0);
    assert_int_equal(cks_store_put_checkpoint(s, "c", 200, "", "complete", &row), 0);
    assert_int_equal(cks_store_commit(s), 0);
    assert_string_equal(l.points, "begin copied closed renamed committed ");
    cks_store_free(s);
    free(path);
    assert_no_open_hdf5();
    cks_tmpdir_remove(dir);
}

static void test_store__escape_name(void **state)
{
    const char *cases[][2] = {
        {"model.layers.0.self_attn.q_proj.weight", "model.layers.0.self_attn.q_proj.weight"},
        {"a/b%c", "a%2Fb%25c"},
        {".", "%2E"},
        {"..", "%2E%2E"}};
    for (size_t i = 0; i < 4; i++) {
        char *e = cks_store_escape_name(cases[i][0]);
        assert_string_equal(e, cases[i][1]);
        free(e);
    }
}

/* Fills the file system under dir with commits until one fails; then checks the file. */
static void fill_until_full(const char *dir, const char *expect, int row_floats)
{
    char *path = path_in(dir, "RUN.h5"), *tmp = path_in(dir, "RUN.h5.tmp");
    cks_store *s = two_by_two(path);
    enum { T = 2 };
    size_t row, nrows = 2, len;
    int err = 0;
    float *big = malloc((size_t)row_floats * sizeof *big);
    for (int i = 0; i < row_floats; i++)
        big[i] = (float)i;
    for (int k = 0; k < 1000 && !err; k++) {
        char name[32];
        snprintf(name, sizeof name, "x%d", k);
        if ((err = cks_store_begin(s)) != 0)
            break;
        if ((err = cks_store_put_checkpoint(s, name, k, "", "complete", &row)) == 0 &&
            (err = cks_store_write_row_f32(s, "/spectra/big", row, big, (size_t)row_floats, "rank",
                                           NULL, NULL)) == 0)
            err = cks_store_commit(s);
        else
            cks_store_abort(s);
        if (!err)
            nrows++;
    }
    assert_int_equal(err, CKS_EIO);
    print_message("after %zu rows: %s\n", nrows, cks_error_last());
    if (!strstr(cks_error_last(), expect))
        fail_msg("message '%s' lacks '%s'", cks_error_last(), expect);
    unsigned char *after = slurp(path, &len);
    cks_store_free(s);
    /* the file holds exactly the committed rows, and nothing is left behind */
    assert_same_file(path, after, len);
    assert_int_not_equal(access(tmp, F_OK), 0);
    cks_store *r;
    size_t n;
    assert_int_equal(cks_store_open(&r, path, CKS_STORE_READ), 0);
    assert_int_equal(cks_store_nrows(r, &n), 0);
    assert_int_equal(n, nrows);
    double v[2];
    assert_int_equal(cks_store_read_row(r, "/norms/fro", 1, v, T), 0);
    assert_close(v[0], 3.5, 0, 0);
    cks_store_free(r);
    free(after);
    free(big);
    free(tmp);
    free(path);
}

static void test_store__disk_full_tmpfs(void **state)
{
    /* a 2 MiB file system that fills up while the file is copied */
    char *dir = cks_tmpdir_new("store");
    if (mount("tmpfs", dir, "tmpfs", 0, "size=2m") != 0) {
        cks_tmpdir_remove(dir);
        /* test_store__disk_full_rlimit runs anywhere */
        cks_skip("mounting a tmpfs needs root (CAP_SYS_ADMIN)");
    }
    fill_until_full(dir, "No space left on device", 64 * 1024);
    assert_int_equal(umount(dir), 0);
    cks_tmpdir_remove(dir);
}

static void test_store__disk_full_while_writing(void **state)
{
    /* the copy succeeds, then another file takes the rest of the disk: HDF5's own writes
     * fail (at the latest when the copy is closed), and the file stays as it was */
    char *dir = cks_tmpdir_new("store");
    if (mount("tmpfs", dir, "tmpfs", 0, "size=2m") != 0) {
        cks_tmpdir_remove(dir);
        cks_skip("mounting a tmpfs needs root (CAP_SYS_ADMIN)");
    }
    char *path = path_in(dir, "RUN.h5"), *filler = path_in(dir, "filler");
    cks_store *s = two_by_two(path);
    size_t len, row;
    unsigned char *before = slurp(path, &len);
    assert_int_equal(cks_store_begin(s), 0);
    FILE *f = fopen(filler, "wb");
    assert_non_null(f);
    static char block[4096];
    while (fwrite(block, 1, sizeof block, f) == sizeof block && fflush(f) == 0)
        ;
    fclose(f);
    float *big = calloc(64 * 1024, sizeof *big);
    for (int i = 0; i < 64 * 1024; i++)
        big[i] = 1.0f + (float)i;
    int err = cks_store_put_checkpoint(s, "c", 200, "", "complete", &row);
    if (!err)
        err = cks_store_write_row_f32(s, "/spectra/big", row, big, 64 * 1024, "rank", NULL, NULL);
    if (!err)
        err = cks_store_commit(s);
    assert_int_equal(err, CKS_EIO);
    print_message("%s\n", cks_error_last());
    assert_non_null(strstr(cks_error_last(), "No space left on device"));
    /* a caller that commits anyway gets a refusal, not a file without the row's data */
    assert_int_equal(cks_store_commit(s), CKS_EIO);
    assert_non_null(strstr(cks_error_last(), "unchanged"));
    assert_same_file(path, before, len);
    /* the store still works once there is room again */
    unlink(filler);
    assert_int_equal(cks_store_begin(s), 0);
    assert_int_equal(cks_store_put_checkpoint(s, "c", 200, "", "complete", &row), 0);
    assert_int_equal(cks_store_commit(s), 0);
    assert_int_equal(cks_store_nrows(s, &row), 0);
    assert_int_equal(row, 3);
    cks_store_free(s);
    free(big);
    free(before);
    free(filler);
    free(path);
    assert_int_equal(umount(dir), 0);
    cks_tmpdir_remove(dir);
}

static void test_store__disk_full_rlimit(void **state)
{
    /* the same failure through RLIMIT_FSIZE (EFBIG with SIGXFSZ ignored): runs without
     * root; the soft limit is put back afterwards */
    char *dir = cks_tmpdir_new("store");
    struct rlimit old, rl;
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
    rl = old;
    rl.rlim_cur = 1 << 20;
    void (*prev)(int) = signal(SIGXFSZ, SIG_IGN);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &rl), 0);
    fill_until_full(dir, "File too large", 64 * 1024);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
    signal(SIGXFSZ, prev);
    cks_tmpdir_remove(dir);
}

static void test_store__read_only_folder(void **state)
{
    char *dir = cks_tmpdir_new("store"), *path = path_in(dir, "RUN.h5");
    cks_store *s = two_by_two(path), *t = NULL;
    cks_store_free(s);
    const char *why;
    int mounted = 0;
    if (geteuid() == 0) {
        /* root ignores permissions: make the folder a read-only bind mount of itself */
        if (mount(dir, dir, NULL, MS_BIND, NULL) != 0 ||
            mount(NULL, dir, NULL, MS_BIND | MS_REMOUNT | MS_RDONLY, NULL) != 0) {
            cks_tmpdir_remove(dir);
            free(path);
            cks_skip("a read-only bind mount failed");
        }
        mounted = 1;
        why = "Read-only file system";
    } else {
        assert_int_equal(chmod(dir, 0555), 0);
        why = "Permission denied";
    }
    size_t len;
    unsigned char *before = slurp(path, &len);
    char *other = path_in(dir, "NEW.h5");
    assert_int_equal(cks_store_create(&t, other, &meta), CKS_EIO);
    assert_non_null(strstr(cks_error_last(), why));
    assert_int_equal(cks_store_open(&t, path, CKS_STORE_WRITE), CKS_EIO);
    assert_non_null(strstr(cks_error_last(), why));
    assert_non_null(strstr(cks_error_last(), "RUN.h5.lock"));
    assert_same_file(path, before, len);
    assert_int_equal(cks_store_open(&t, path, CKS_STORE_READ), 0); /* reading still works */
    cks_store_free(t);
    if (mounted)
        assert_int_equal(umount(dir), 0);
    else
        chmod(dir, 0755);
    free(before);
    free(other);
    free(path);
    assert_no_open_hdf5();
    cks_tmpdir_remove(dir);
}

/* cks_store_create_tx: nothing at the path until the commit; an abort leaves nothing. */
static void test_store__create_tx_appears_at_commit(void **state)
{
    char *dir = cks_tmpdir_new("store"), *path = path_in(dir, "NEW.h5");
    char *tmp = path_in(dir, "NEW.h5.tmp"), *lock = path_in(dir, "NEW.h5.lock");
    cks_store *s;
    size_t row, n;
    assert_int_equal(cks_store_create_tx(&s, path, &meta), 0);
    assert_int_equal(cks_store_put_checkpoint(s, "a", 0, "", "complete", &row), 0);
    assert_int_not_equal(access(path, F_OK), 0); /* not yet */
    cks_store_free(s);                           /* aborts */
    assert_int_not_equal(access(path, F_OK), 0);
    assert_int_not_equal(access(tmp, F_OK), 0);
    assert_int_not_equal(access(lock, F_OK), 0);
    assert_int_equal(cks_store_create_tx(&s, path, &meta), 0);
    assert_int_equal(cks_store_put_checkpoint(s, "a", 0, "", "complete", &row), 0);
    assert_int_equal(cks_store_commit(s), 0);
    assert_int_equal(access(path, F_OK), 0);
    assert_int_equal(cks_store_nrows(s, &n), 0); /* open for reading after the commit */
    assert_int_equal(n, 1);
    assert_int_equal(cks_store_begin(s), 0); /* and further transactions work */
    assert_int_equal(cks_store_put_checkpoint(s, "b", 1, "", "complete", &row), 0);
    assert_int_equal(cks_store_commit(s), 0);
    cks_store_free(s);
    /* a path that exists is refused before anything is written */
    assert_int_equal(cks_store_create_tx(&s, path, &meta), CKS_EEXISTS);
    free(tmp);
    free(lock);
    free(path);
    assert_no_open_hdf5();
    cks_tmpdir_remove(dir);
}

/* Attribute names, the row-indexed datasets, the tensor count and a given analysed_at:
 * what merge reads and writes. */
static void test_store__listing_and_analysed_at(void **state)
{
    char *dir = cks_tmpdir_new("store"), *path = path_in(dir, "RUN.h5");
    cks_store *s = two_by_two(path);
    char **names = NULL;
    size_t n = 0, row, t;
    assert_int_equal(cks_store_attr_names(s, "/", &names, &n), 0);
    const char *want[] = {"config", "created_by", "format", "format_version", "metrics", "source"};
    assert_int_equal(n, 6);
    for (size_t i = 0; i < n; i++)
        assert_string_equal(names[i], want[i]); /* sorted */
    cks_store_names_free(names, n);
    assert_int_equal(cks_store_attr_names(s, "/nowhere", &names, &n), CKS_ENOTFOUND);
    assert_int_equal(cks_store_begin(s), 0);
    assert_int_equal(cks_store_write_series(s, "/evals/arc/acc", 1, 0.5, "accuracy", NULL), 0);
    float f[3] = {1, 2, 3};
    assert_int_equal(cks_store_write_row_f32(s, "/spectra/t0", 0, f, 3, "rank", NULL, NULL), 0);
    assert_int_equal(cks_store_set_attr(s, "/norms/fro", "ref", "a"), 0);
    assert_int_equal(
        cks_store_put_checkpoint_at(s, "c", 200, "", "failed", "2020-01-02T03:04:05Z", &row), 0);
    assert_int_equal(cks_store_commit(s), 0);
    assert_int_equal(cks_store_row_datasets(s, &names, &n), 0);
    const char *paths[] = {"/evals/arc/acc", "/norms/fro", "/spectra/t0"};
    assert_int_equal(n, 3); /* not /checkpoints nor /tensors */
    for (size_t i = 0; i < n; i++)
        assert_string_equal(names[i], paths[i]);
    cks_store_names_free(names, n);
    assert_int_equal(cks_store_attr_names(s, "/norms/fro", &names, &n), 0);
    const char *dattrs[] = {"axes", "description", "ref"};
    assert_int_equal(n, 3);
    for (size_t i = 0; i < n; i++)
        assert_string_equal(names[i], dattrs[i]);
    cks_store_names_free(names, n);
    assert_int_equal(cks_store_ntensors(s, &t), 0);
    assert_int_equal(t, 2);
    cks_store_ckpt *c;
    assert_int_equal(cks_store_checkpoints(s, &c, &n), 0);
    assert_int_equal(n, 3);
    assert_string_equal(c[2].analysed_at, "2020-01-02T03:04:05Z");
    assert_string_equal(c[2].status, "failed");
    cks_store_ckpts_free(c, n);
    cks_store_free(s);
    free(path);
    assert_no_open_hdf5();
    cks_tmpdir_remove(dir);
}

int main(void)
{
    /* as the store does (see store.c): this binary also calls HDF5 directly, first */
    H5dont_atexit();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_store__round_trip),
        cmocka_unit_test(test_store__unwritten_is_nan),
        cmocka_unit_test(test_store__u8_rows),
        cmocka_unit_test(test_store__replace_row_resets),
        cmocka_unit_test(test_store__abort_leaves_file_unchanged),
        cmocka_unit_test(test_store__writes_need_transaction),
        cmocka_unit_test(test_store__second_writer_refused),
        cmocka_unit_test(test_store__rejects_foreign_files),
        cmocka_unit_test(test_store__commit_points),
        cmocka_unit_test(test_store__escape_name),
        cmocka_unit_test(test_store__read_only_folder),
        cmocka_unit_test(test_store__create_tx_appears_at_commit),
        cmocka_unit_test(test_store__listing_and_analysed_at),
        /* last: they leave HDF5 holding a file it could not close */
        cmocka_unit_test(test_store__disk_full_tmpfs),
        cmocka_unit_test(test_store__disk_full_while_writing),
        cmocka_unit_test(test_store__disk_full_rlimit),
    };
    return cks_tests_status(cmocka_run_group_tests(tests, NULL, NULL));
}
