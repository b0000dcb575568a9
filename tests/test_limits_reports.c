/* Resource limits of reports/: lm-eval result files (CKS_MAX_EVAL_*), the run file's
 * reader (CKS_STORE_*) and the gate's baseline (CKS_BASELINE_MAX_BYTES, CKS_GATE_MAX_ID).
 * For each, an input at the limit is accepted and one just past it refused. Where a valid
 * input at the limit would cost gigabytes (a 2^28-value dataset, a million-row table), the
 * input at the limit is shown to pass that limit's check and be refused by the next one
 * (unwritten data, empty records), which is what bounds the memory. Run files are built
 * through the store and, for what the store would never write, through the HDF5 API. */
#include "error.h"
#include "lmeval.h"
#include "regress.h"
#include "runview.h"
#include "store.h"
#include "testutil.h"

#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- lm-eval result files ---- */

static int lmeval(const char *text, size_t len, cks_eval_result *r)
{
    cks_error_clear();
    return cks_lmeval_parse(text, len, "eval.json", r);
}

static void test_limits__lmeval_bytes(void **state)
{
    static const char doc[] = "{\"results\": {\"arc\": {\"acc\": 0.5}}}";
    size_t n = CKS_MAX_EVAL_BYTES + 1;
    char *text = cks_padded_json(doc, n);
    cks_eval_result r;
    assert_int_equal(lmeval(text, CKS_MAX_EVAL_BYTES, &r), 0);
    assert_int_equal(r.count, 1);
    cks_lmeval_release(&r);
    cks_expect_error(lmeval(text, n, &r), CKS_ELIMIT, "eval.json", "67108864");
    free(text);
}

/* {"results": {"t0": {"acc": 0.5}, ...}, "groups": {...}}: tasks t<first>..t<first+n-1>
 * in results and g<i> in groups. */
static char *tasks_doc(size_t nresults, size_t ngroups, size_t *len)
{
    size_t cap = (nresults + ngroups) * 40 + 64, o = 0;
    char *t = malloc(cap);
    assert_non_null(t);
    o += (size_t)snprintf(t + o, cap - o, "{\"results\": {");
    for (size_t i = 0; i < nresults; i++)
        o += (size_t)snprintf(t + o, cap - o, "%s\"t%zu\": {\"acc\": 0.5}", i ? ", " : "", i);
    o += (size_t)snprintf(t + o, cap - o, "}, \"groups\": {");
    for (size_t i = 0; i < ngroups; i++)
        o += (size_t)snprintf(t + o, cap - o, "%s\"g%zu\": {\"acc\": 0.25}", i ? ", " : "", i);
    o += (size_t)snprintf(t + o, cap - o, "}}");
    *len = o;
    return t;
}

static void test_limits__lmeval_tasks(void **state)
{
    size_t len;
    cks_eval_result r;
    /* a hundred thousand tasks parse in linear time (values are merged after a sort) */
    char *t = tasks_doc(CKS_MAX_EVAL_TASKS, 0, &len);
    assert_int_equal(lmeval(t, len, &r), 0);
    assert_int_equal(r.count, CKS_MAX_EVAL_TASKS);
    cks_lmeval_release(&r);
    free(t);
    t = tasks_doc(CKS_MAX_EVAL_TASKS + 1, 0, &len);
    cks_expect_error(lmeval(t, len, &r), CKS_ELIMIT, "eval.json", "more than 100000 tasks");
    free(t);
    /* distinct tasks count over results and groups together */
    t = tasks_doc(CKS_MAX_EVAL_TASKS / 2, CKS_MAX_EVAL_TASKS / 2, &len);
    assert_int_equal(lmeval(t, len, &r), 0);
    assert_int_equal(r.count, CKS_MAX_EVAL_TASKS);
    cks_lmeval_release(&r);
    free(t);
    t = tasks_doc(CKS_MAX_EVAL_TASKS / 2, CKS_MAX_EVAL_TASKS / 2 + 1, &len);
    cks_expect_error(lmeval(t, len, &r), CKS_ELIMIT, "eval.json", "more than 100000 tasks");
    free(t);
}

/* One task with n metrics m0..m<n-1>, each with a stderr when with_stderr, and an alias. */
static char *metrics_doc(size_t n, int with_stderr, size_t *len)
{
    size_t cap = n * 80 + 128, o = 0;
    char *t = malloc(cap);
    assert_non_null(t);
    o += (size_t)snprintf(t + o, cap - o, "{\"results\": {\"mmlu\": {\"alias\": \"mmlu\"");
    for (size_t i = 0; i < n; i++) {
        o += (size_t)snprintf(t + o, cap - o, ", \"m%zu,none\": %zu", i, i);
        if (with_stderr)
            o += (size_t)snprintf(t + o, cap - o, ", \"m%zu_stderr,none\": 0.01", i);
    }
    o += (size_t)snprintf(t + o, cap - o, "}}}");
    *len = o;
    return t;
}

static void test_limits__lmeval_metrics_per_task(void **state)
{
    size_t len;
    cks_eval_result r;
    char *t = metrics_doc(CKS_MAX_EVAL_METRICS, 1, &len);
    assert_int_equal(lmeval(t, len, &r), 0);
    assert_int_equal(r.count, CKS_MAX_EVAL_METRICS);
    for (size_t i = 0; i < r.count; i++)
        assert_close(r.items[i].stderr_, 0.01, 0, 0);
    cks_lmeval_release(&r);
    free(t);
    t = metrics_doc(CKS_MAX_EVAL_METRICS + 1, 0, &len);
    cks_expect_error(lmeval(t, len, &r), CKS_ELIMIT, "eval.json",
                     "'mmlu' has more than 256 metrics");
    free(t);
}

static void test_limits__lmeval_names(void **state)
{
    char name[CKS_MAX_EVAL_NAME + 2], text[1024];
    cks_eval_result r;
    for (int metric = 0; metric < 2; metric++) {
        for (int past = 0; past < 2; past++) {
            memset(name, 'n', sizeof name);
            name[CKS_MAX_EVAL_NAME + past] = '\0';
            if (metric)
                snprintf(text, sizeof text, "{\"results\": {\"arc\": {\"%s\": 1}}}", name);
            else
                snprintf(text, sizeof text, "{\"results\": {\"%s\": {\"acc\": 1}}}", name);
            int rc = lmeval(text, strlen(text), &r);
            if (past) {
                cks_expect_error(rc, CKS_EFORMAT, "eval.json", "empty, too long or holds '/'");
            } else {
                assert_int_equal(rc, 0);
                assert_int_equal(strlen(metric ? r.items[0].metric : r.items[0].task),
                                 CKS_MAX_EVAL_NAME);
                cks_lmeval_release(&r);
            }
        }
    }
}

/* ---- the run file ---- */

static char *run_path(const char *dir)
{
    char *p = malloc(strlen(dir) + 16);
    assert_non_null(p);
    sprintf(p, "%s/RUN.h5", dir);
    return p;
}

/* A run file with one checkpoint and one tensor, written through the store. */
static void small_run(const char *path, const char *attr_value)
{
    cks_store *s;
    const char *attrs[] = {"note", attr_value, NULL};
    cks_store_meta meta = {"/src", NULL, NULL, attrs};
    cks_store_tensor t = {"w", 0, "q", 2, 2};
    size_t row;
    double v = 1.0;
    assert_int_equal(cks_store_create(&s, path, &meta), 0);
    assert_int_equal(cks_store_begin(s), 0);
    assert_int_equal(cks_store_add_tensors(s, &t, 1, NULL), 0);
    assert_int_equal(cks_store_put_checkpoint(s, "ckpt_000", 0, "", "complete", &row), 0);
    assert_int_equal(cks_store_write_row(s, "/norms/fro", row, &v, 1, "norm", NULL), 0);
    assert_int_equal(cks_store_commit(s), 0);
    cks_store_free(s);
}

static void test_limits__store_string_attribute(void **state)
{
    char *dir = cks_tmpdir_new("limits"), *path = run_path(dir);
    char *v = malloc(CKS_STORE_MAX_STRING + 2);
    assert_non_null(v);
    for (int past = 0; past < 2; past++) {
        memset(v, 's', CKS_STORE_MAX_STRING + 1);
        v[CKS_STORE_MAX_STRING + past] = '\0';
        small_run(path, v);
        cks_store *s;
        char *got = NULL;
        assert_int_equal(cks_store_open(&s, path, CKS_STORE_READ), 0);
        int rc = cks_store_get_attr(s, "/", "note", &got);
        if (past) {
            cks_expect_error(rc, CKS_ELIMIT, "RUN.h5", "longer than 16777216 bytes");
        } else {
            assert_int_equal(rc, 0);
            assert_int_equal(strlen(got), CKS_STORE_MAX_STRING);
            free(got);
        }
        cks_store_free(s);
        remove(path);
    }
    free(v);
    free(path);
    cks_tmpdir_remove(dir);
}

static void test_limits__store_names(void **state)
{
    char *dir = cks_tmpdir_new("limits"), *path = run_path(dir);
    char name[CKS_STORE_MAX_NAME + 2];
    memset(name, 'c', sizeof name);
    name[CKS_STORE_MAX_NAME] = '\0';
    small_run(path, "x");
    cks_store *s;
    size_t row, n;
    assert_int_equal(cks_store_open(&s, path, CKS_STORE_WRITE), 0);
    assert_int_equal(cks_store_begin(s), 0);
    assert_int_equal(cks_store_put_checkpoint(s, name, 1, name, "complete", &row), 0);
    cks_store_tensor t = {name, 1, "k", 2, 2};
    assert_int_equal(cks_store_add_tensors(s, &t, 1, NULL), 0);
    assert_int_equal(cks_store_commit(s), 0);
    /* one byte more: the writer refuses what the reader would refuse */
    name[CKS_STORE_MAX_NAME] = 'c';
    name[CKS_STORE_MAX_NAME + 1] = '\0';
    assert_int_equal(cks_store_begin(s), 0);
    cks_expect_error(cks_store_put_checkpoint(s, name, 2, "", "complete", &row), CKS_ELIMIT,
                     "RUN.h5", "a name longer than 4096 bytes");
    t.name = name;
    cks_expect_error(cks_store_add_tensors(s, &t, 1, NULL), CKS_ELIMIT, "RUN.h5",
                     "longer than 4096 bytes");
    cks_store_abort(s);
    cks_store_free(s);
    cks_store_ckpt *c;
    cks_store_tensor *tt;
    assert_int_equal(cks_store_open(&s, path, CKS_STORE_READ), 0);
    assert_int_equal(cks_store_checkpoints(s, &c, &n), 0);
    assert_int_equal(n, 2);
    assert_int_equal(strlen(c[1].name), CKS_STORE_MAX_NAME);
    cks_store_ckpts_free(c, n);
    assert_int_equal(cks_store_tensors(s, &tt, &n), 0);
    assert_int_equal(n, 2);
    cks_store_tensors_free(tt, n);
    cks_store_free(s);
    /* a longer name written behind the store's back is refused by the reader */
    hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT),
          d = H5Dopen2(f, "/checkpoints", H5P_DEFAULT);
    hid_t st = H5Tcopy(H5T_C_S1), mt = H5Tcreate(H5T_COMPOUND, sizeof(char *));
    H5Tset_size(st, H5T_VARIABLE);
    H5Tinsert(mt, "name", 0, st);
    hsize_t start = 0, count = 1;
    hid_t fs = H5Dget_space(d), ms = H5Screate_simple(1, &count, NULL);
    H5Sselect_hyperslab(fs, H5S_SELECT_SET, &start, NULL, &count, NULL);
    const char *p = name;
    assert_true(H5Dwrite(d, mt, ms, fs, H5P_DEFAULT, &p) >= 0);
    H5Sclose(ms);
    H5Sclose(fs);
    H5Tclose(mt);
    H5Tclose(st);
    H5Dclose(d);
    H5Fclose(f);
    assert_int_equal(cks_store_open(&s, path, CKS_STORE_READ), 0);
    cks_expect_error(cks_store_checkpoints(s, &c, &n), CKS_EFORMAT, "RUN.h5",
                     "longer than 4096 bytes");
    cks_store_free(s);
    free(path);
    cks_tmpdir_remove(dir);
}

/* Grows /checkpoints to rows records without writing them (HDF5 then reads empty ones). */
static void grow_table(const char *path, hsize_t rows)
{
    hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT),
          d = H5Dopen2(f, "/checkpoints", H5P_DEFAULT);
    assert_true(f >= 0 && d >= 0);
    assert_true(H5Dset_extent(d, &rows) >= 0);
    H5Dclose(d);
    H5Fclose(f);
}

static void test_limits__store_rows(void **state)
{
    char *dir = cks_tmpdir_new("limits"), *path = run_path(dir);
    small_run(path, "x");
    cks_store *s;
    cks_store_ckpt *c;
    size_t n;
    /* at the limit the table is read (and its unwritten records refused, not its length) */
    grow_table(path, CKS_STORE_MAX_ROWS);
    assert_int_equal(cks_store_open(&s, path, CKS_STORE_READ), 0);
    cks_expect_error(cks_store_checkpoints(s, &c, &n), CKS_EFORMAT, "RUN.h5", "a record has no");
    cks_store_free(s);
    grow_table(path, CKS_STORE_MAX_ROWS + 1);
    assert_int_equal(cks_store_open(&s, path, CKS_STORE_READ), 0);
    cks_expect_error(cks_store_checkpoints(s, &c, &n), CKS_ELIMIT, "RUN.h5",
                     "1000001 rows, more than 1000000");
    cks_store_free(s);
    free(path);
    cks_tmpdir_remove(dir);
}

/* A float32 [rows, cols] dataset at path, chunked one row per chunk, whose first written
 * rows are written (the rest never is: HDF5 allocates nothing for them). */
static void add_dataset(const char *file, const char *path, hsize_t rows, hsize_t cols,
                        hsize_t written)
{
    hid_t f = H5Fopen(file, H5F_ACC_RDWR, H5P_DEFAULT);
    hsize_t dims[2] = {rows, cols}, chunk[2] = {1, cols < 65536 ? cols : 65536};
    hid_t sp = H5Screate_simple(2, dims, NULL), dcpl = H5Pcreate(H5P_DATASET_CREATE);
    hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
    H5Pset_create_intermediate_group(lcpl, 1);
    H5Pset_chunk(dcpl, 2, chunk);
    float fill = NAN;
    H5Pset_fill_value(dcpl, H5T_NATIVE_FLOAT, &fill);
    hid_t d = H5Dcreate2(f, path, H5T_IEEE_F32LE, sp, lcpl, dcpl, H5P_DEFAULT);
    assert_true(d >= 0);
    if (written) {
        float *v = malloc(written * cols * sizeof *v);
        assert_non_null(v);
        for (hsize_t i = 0; i < written * cols; i++)
            v[i] = (float)(i % 1000);
        hsize_t start[2] = {0, 0}, count[2] = {written, cols};
        hid_t fs = H5Dget_space(d), ms = H5Screate_simple(2, count, NULL);
        H5Sselect_hyperslab(fs, H5S_SELECT_SET, start, NULL, count, NULL);
        assert_true(H5Dwrite(d, H5T_NATIVE_FLOAT, ms, fs, H5P_DEFAULT, v) >= 0);
        H5Sclose(ms);
        H5Sclose(fs);
        free(v);
    }
    H5Dclose(d);
    H5Pclose(lcpl);
    H5Pclose(dcpl);
    H5Sclose(sp);
    H5Fclose(f);
}

static int read_all(const char *file, const char *path, size_t *rows, size_t *cols)
{
    cks_store *s;
    double *m = NULL;
    assert_int_equal(cks_store_open(&s, file, CKS_STORE_READ), 0);
    cks_error_clear();
    int rc = cks_store_read_matrix(s, path, &m, rows, cols);
    free(m);
    cks_store_free(s);
    return rc;
}

static void test_limits__store_cells(void **state)
{
    char *dir = cks_tmpdir_new("limits"), *path = run_path(dir);
    size_t r, c;
    small_run(path, "x");
    const hsize_t sparse = CKS_STORE_SPARSE_CELLS;
    /* unwritten data: up to CKS_STORE_SPARSE_CELLS values read as NaN, one more refused */
    add_dataset(path, "/x/at_sparse", 1, sparse, 0);
    add_dataset(path, "/x/past_sparse", 1, sparse + 1, 0);
    assert_int_equal(read_all(path, "/x/at_sparse", &r, &c), 0);
    assert_int_equal(c, CKS_STORE_SPARSE_CELLS);
    cks_expect_error(read_all(path, "/x/past_sparse", &r, &c), CKS_ELIMIT, "/x/past_sparse",
                     "stores only 0 bytes");
    /* past it, what the file stores decides: 4 rows of which 2 are written is 2 bytes a
     * value (accepted); 1 written row of 4 is 1 byte a value (refused) */
    add_dataset(path, "/x/half", 4, sparse, 2);
    add_dataset(path, "/x/quarter", 4, sparse, 1);
    assert_int_equal(read_all(path, "/x/half", &r, &c), 0);
    assert_true(r == 4 && c == sparse);
    cks_expect_error(read_all(path, "/x/quarter", &r, &c), CKS_ELIMIT, "/x/quarter", "stores only");
    /* CKS_STORE_MAX_CELLS values pass the size limit (and fail the storage rule); one
     * more is past it whatever the file stores */
    add_dataset(path, "/x/at_max", 1u << 14, (hsize_t)CKS_STORE_MAX_CELLS >> 14, 0);
    add_dataset(path, "/x/past_max", 1, (hsize_t)CKS_STORE_MAX_CELLS + 1, 0);
    cks_expect_error(read_all(path, "/x/at_max", &r, &c), CKS_ELIMIT, "/x/at_max",
                     "stores only 0 bytes");
    cks_expect_error(read_all(path, "/x/past_max", &r, &c), CKS_ELIMIT, "/x/past_max",
                     "268435457 values, more than 268435456");
    /* the run view sizes a row buffer only after the same check */
    cks_runview *v;
    double *row = NULL;
    assert_int_equal(cks_runview_open(&v, path), 0);
    assert_int_equal(cks_runview_read_at(v, "/x/at_sparse", 0, &row, &c), 0);
    assert_true(c == sparse && isnan(row[0]));
    free(row);
    cks_expect_error(cks_runview_read_at(v, "/x/past_sparse", 0, &row, &c), CKS_ELIMIT,
                     "/x/past_sparse", "stores only");
    cks_runview_free(v);
    free(path);
    cks_tmpdir_remove(dir);
}

/* ---- the gate's baseline ---- */

#define HEAD                                                                                    \
    "{\"format\": \"ckptscope-baseline\", \"format_version\": 1, \"run\": {\"model\": \"m\"}, " \
    "\"checkpoint\": {\"name\": \"c\", \"step\": 5}, "

static void test_limits__baseline_bytes_and_ids(void **state)
{
    char *dir = cks_tmpdir_new("limits"), path[4096];
    snprintf(path, sizeof path, "%s/baseline.json", dir);
    static const char doc[] = HEAD "\"metrics\": [{\"id\": \"evals/arc/acc\", \"value\": 0.5}]}";
    size_t n = CKS_BASELINE_MAX_BYTES + 1;
    char *text = cks_padded_json(doc, n);
    cks_baseline b;
    cks_write_file(path, text, CKS_BASELINE_MAX_BYTES);
    assert_int_equal(cks_baseline_read(path, &b), 0);
    assert_int_equal(b.n, 1);
    cks_baseline_release(&b);
    cks_write_file(path, text, n);
    cks_expect_error(cks_baseline_read(path, &b), CKS_ELIMIT, "baseline.json", NULL);
    free(text);
    /* ids are kept in CKS_GATE_MAX_ID-byte buffers with their NUL */
    for (int past = 0; past < 2; past++) {
        char id[CKS_GATE_MAX_ID + 1], doc2[CKS_GATE_MAX_ID + 512];
        memset(id, 'i', sizeof id);
        id[CKS_GATE_MAX_ID - 1 + past] = '\0';
        snprintf(doc2, sizeof doc2, HEAD "\"metrics\": [{\"id\": \"%s\", \"value\": 1}]}", id);
        cks_write_file(path, doc2, strlen(doc2));
        int rc = cks_baseline_read(path, &b);
        if (past) {
            cks_expect_error(rc, CKS_EFORMAT, "baseline.json", "'id' is empty, too long");
        } else {
            assert_int_equal(rc, 0);
            assert_int_equal(strlen(b.m[0].id), CKS_GATE_MAX_ID - 1);
            cks_baseline_release(&b);
        }
    }
    cks_tmpdir_remove(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_limits__lmeval_bytes),
        cmocka_unit_test(test_limits__lmeval_tasks),
        cmocka_unit_test(test_limits__lmeval_metrics_per_task),
        cmocka_unit_test(test_limits__lmeval_names),
        cmocka_unit_test(test_limits__store_string_attribute),
        cmocka_unit_test(test_limits__store_names),
        cmocka_unit_test(test_limits__store_rows),
        cmocka_unit_test(test_limits__store_cells),
        cmocka_unit_test(test_limits__baseline_bytes_and_ids),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
