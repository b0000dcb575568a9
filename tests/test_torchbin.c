/* PyTorch .bin checkpoints end to end: files written by real torch.save (Debian's torch
 * 1.13, tools/make_torch_fixtures.py) read as views and checked against what torch said
 * about them (tests/data/torch/expected.json: float64 sums, sums of squares, absmax,
 * first/last values, storage sharing); the hostile files refused with the errors listed
 * in hostile/expected.json; a > 4 GiB ZIP64 archive; and the same files reached through
 * every source kind (git blob, git LFS, HF cache, folder, shards with an index). */
#include "error.h"
#include "fixture.h"
#include "json.h"
#include "map.h"
#include "norms.h"
#include "safetensors.h"
#include "sha256.h"
#include "source.h"
#include "testutil.h"
#include "torchbin.h"
#include "torchfx.h"
#include "weights.h"

#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static json_t *load_json(const char *rel)
{
    char *path = cks_test_data(rel);
    size_t n;
    unsigned char *text = cks_read_test_file(path, &n);
    json_t *j = NULL;
    assert_int_equal(cks_json_parse((const char *)text, n, path, 1, &j), 0);
    free(text);
    free(path);
    return j;
}

/* What torch said about the tensors of one fixture file. */
static json_t *expected_for(json_t *all, const char *file)
{
    json_t *e = json_object_get(json_object_get(all, "files"), file);
    if (!e)
        fail_msg("expected.json has no entry for %s", file);
    return json_object_get(e, "tensors");
}

static double value_at(const cks_tensor *t, int64_t i)
{
    const unsigned char *p = (const unsigned char *)t->data + (size_t)i * cks_dtype_size(t->dtype);
    if (cks_dtype_is_float(t->dtype)) {
        double v;
        cks_widen_f64(t->dtype, p, &v, 1);
        return v;
    }
    if (t->dtype == CKS_DT_I64) {
        int64_t v;
        memcpy(&v, p, 8);
        return (double)v;
    }
    assert_int_equal(t->dtype, CKS_DT_U16);
    uint16_t v;
    memcpy(&v, p, 2);
    return v;
}

/* One tensor against torch's description: dtype, shape, float64 statistics (summation
 * order differs from numpy's pairwise sum: rtol 1e-12), exact first/last values. */
static void check_tensor(const cks_tensor *t, json_t *e)
{
    assert_string_equal(cks_dtype_name(t->dtype), json_string_value(json_object_get(e, "dtype")));
    json_t *shape = json_object_get(e, "shape");
    assert_int_equal(t->ndim, json_array_size(shape));
    for (int d = 0; d < t->ndim; d++)
        assert_int_equal(t->shape[d], json_integer_value(json_array_get(shape, (size_t)d)));
    assert_int_equal(t->nbytes, (size_t)t->numel * cks_dtype_size(t->dtype));
    if (t->numel == 0)
        return;
    double sum = 0, sumsq = 0, absmax = 0;
    for (int64_t i = 0; i < t->numel; i++) {
        double v = value_at(t, i);
        sum += v;
        sumsq += v * v;
        absmax = fabs(v) > absmax ? fabs(v) : absmax;
    }
    assert_close(sum, json_real_value(json_object_get(e, "sum")), 1e-12, 1e-15);
    if (json_object_get(e, "sumsq")) {
        assert_close(sumsq, json_real_value(json_object_get(e, "sumsq")), 1e-12, 0);
        assert_true(absmax == json_real_value(json_object_get(e, "absmax")));
    }
    json_t *first = json_object_get(e, "first");
    for (size_t i = 0; i < json_array_size(first) && (int64_t)i < t->numel; i++)
        assert_true(value_at(t, (int64_t)i) == json_real_value(json_array_get(first, i)));
    assert_true(value_at(t, t->numel - 1) == json_real_value(json_object_get(e, "last")));
}

/* Every tensor torch listed is there and matches, tensors sharing a storage point into
 * the same bytes at their offsets, and nothing else is listed. */
static void check_list(const cks_tensor_list *l, json_t *tensors, size_t first)
{
    const char *name;
    json_t *e;
    size_t n = 0;
    json_object_foreach(tensors, name, e)
    {
        long i = cks_tensor_list_find(l, name);
        if (i < 0 || (size_t)i < first)
            fail_msg("tensor %s is missing", name);
        const cks_tensor *t = &l->items[i];
        check_tensor(t, e);
        const char *base = json_string_value(json_object_get(e, "shares_with"));
        const cks_tensor *b = &l->items[cks_tensor_list_find(l, base)];
        int64_t delta = json_integer_value(json_object_get(e, "storage_offset")) -
                        json_integer_value(json_object_get(e, "shares_offset"));
        assert_ptr_equal(t->data, (const unsigned char *)b->data +
                                      delta * (int64_t)cks_dtype_size(t->dtype));
        n++;
    }
    assert_int_equal(l->count - first, n);
}

static cks_map *map_data(const char *rel)
{
    char *path = cks_test_data(rel);
    cks_map *m = NULL;
    assert_int_equal(cks_map_file(&m, path, NULL), 0);
    free(path);
    return m;
}

static void check_file(json_t *all, const char *file)
{
    char rel[256];
    snprintf(rel, sizeof rel, "torch/%s", file);
    cks_map *m = map_data(rel);
    cks_tensor_list l;
    cks_tensor_list_init(&l);
    assert_int_equal(cks_torchbin_parse(m, 3, &l), 0);
    check_list(&l, expected_for(all, file), 0);
    for (size_t i = 0; i < l.count; i++) {
        assert_int_equal(l.items[i].file, 3);
        assert_true((const unsigned char *)l.items[i].data >= m->data &&
                    (const unsigned char *)l.items[i].data + l.items[i].nbytes <=
                        m->data + m->size);
    }
    cks_tensor_list_release(&l);
    cks_map_free(m);
}

static void test_torchbin__llama_state_dicts_match_torch(void **state)
{
    json_t *all = load_json("torch/expected.json");
    check_file(all, "llama_f32.bin");
    check_file(all, "llama_f16.bin");
    check_file(all, "llama_bf16.bin");
    check_file(all, "llama_f32_proto4.bin");
    check_file(all, "sharded/pytorch_model-00001-of-00002.bin");
    check_file(all, "sharded/pytorch_model-00002-of-00002.bin");
    json_decref(all);
}

static void test_torchbin__tied_weights_share_one_storage(void **state)
{
    json_t *all = load_json("torch/expected.json");
    check_file(all, "tied_f32.bin");
    json_t *e = json_object_get(expected_for(all, "tied_f32.bin"), "lm_head.weight");
    assert_string_equal(json_string_value(json_object_get(e, "shares_with")),
                        "model.embed_tokens.weight"); /* so check_file compared pointers */
    json_decref(all);
}

static void test_torchbin__offset_views_into_a_shared_storage(void **state)
{
    json_t *all = load_json("torch/expected.json");
    check_file(all, "views_f32.bin");   /* q/k/v rows of a fused matrix, a row, a 0-d */
    check_file(all, "zip64_local.bin"); /* the same, re-zipped with ZIP64 local fields */
    cks_map *m = map_data("torch/views_f32.bin");
    cks_tensor_list l;
    cks_tensor_list_init(&l);
    assert_int_equal(cks_torchbin_parse(m, 0, &l), 0);
    const cks_tensor *s = &l.items[cks_tensor_list_find(&l, "scalar")],
                     *f = &l.items[cks_tensor_list_find(&l, "fused.weight")],
                     *e = &l.items[cks_tensor_list_find(&l, "empty")];
    assert_int_equal(s->ndim, 0);
    assert_int_equal(s->numel, 1);
    assert_ptr_equal(s->data, (const float *)f->data + 2 * 4 + 3); /* fused[2, 3] */
    assert_true(*(const float *)s->data == 11.0f / 8 - 2);
    assert_int_equal(e->numel, 0);
    assert_int_equal(e->nbytes, 0);
    cks_tensor_list_release(&l);
    cks_map_free(m);
    json_decref(all);
}

static void test_torchbin__rebuild_v3_untyped_storage(void **state)
{
    json_t *all = load_json("torch/expected.json");
    check_file(all, "v3_u16.bin");
    json_decref(all);
}

static void expect_parse_error(cks_map *m, int code, const char *want)
{
    cks_tensor_list l;
    cks_tensor t = {.name = "already.there", .dtype = CKS_DT_F32};
    cks_tensor_list_init(&l);
    assert_int_equal(cks_tensor_list_push(&l, &t), 0);
    int rc = cks_torchbin_parse(m, 0, &l);
    if (rc != code || !strstr(cks_error_last(), want) || !strstr(cks_error_last(), m->display))
        fail_msg("%s: got %d '%s', expected %d with '%s'", m->display, rc, cks_error_last(), code,
                 want);
    assert_int_equal(l.count, 1); /* nothing appended on error */
    cks_tensor_list_release(&l);
}

static void test_torchbin__refuses_non_contiguous_tensors(void **state)
{
    cks_map *m = map_data("torch/noncontig_f32.bin");
    expect_parse_error(m, CKS_EUNSUPPORTED,
                       "tensor 'w' is not contiguous (shape (4, 3), stride (1, 4)); only "
                       "row-major tensors can be read in place");
    cks_map_free(m);
}

static int code_of(const char *name)
{
    static const int codes[] = {CKS_EFORMAT, CKS_EUNSUPPORTED, CKS_ELIMIT};
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++)
        if (strcmp(cks_error_name(codes[i]), name) == 0)
            return codes[i];
    fail_msg("unknown error name %s", name);
    return 0;
}

/* Each hostile file is refused with the code and message tools/make_torch_fixtures.py
 * recorded for it, naming the file; none crashes or appends anything. */
static void test_torchbin__refuses_hostile_files(void **state)
{
    json_t *exp = load_json("torch/hostile/expected.json");
    const char *file;
    json_t *e;
    size_t n = 0;
    json_object_foreach(exp, file, e)
    {
        char rel[256];
        snprintf(rel, sizeof rel, "torch/hostile/%s", file);
        cks_map *m = map_data(rel);
        expect_parse_error(m, code_of(json_string_value(json_object_get(e, "code"))),
                           json_string_value(json_object_get(e, "message")));
        cks_map_free(m);
        n++;
    }
    assert_true(n >= 40);
    json_decref(exp);
}

/* Every prefix of a real file is refused; no byte change crashes, and when a changed
 * file still parses (a changed tensor value, say) every view stays inside the file. */
static void test_torchbin__truncations_and_byte_changes_are_safe(void **state)
{
    char *path = cks_test_data("torch/views_f32.bin");
    size_t n;
    unsigned char *orig = cks_read_test_file(path, &n);
    free(path);
    static const unsigned char vals[] = {0x00, 0xff, 0x80};
    for (size_t cut = 0; cut < n; cut++) {
        unsigned char *b = malloc(cut ? cut : 1);
        memcpy(b, orig, cut);
        cks_map *m = NULL;
        assert_int_equal(cks_map_adopt(&m, b, cut, free, b, "cut.bin"), 0);
        cks_tensor_list l;
        cks_tensor_list_init(&l);
        assert_int_not_equal(cks_torchbin_parse(m, 0, &l), 0);
        assert_int_equal(l.count, 0);
        cks_map_free(m);
    }
    for (size_t i = 0; i < n; i++) {
        for (size_t k = 0; k < sizeof vals; k++) {
            unsigned char *b = malloc(n);
            memcpy(b, orig, n);
            b[i] = vals[k];
            cks_map *m = NULL;
            assert_int_equal(cks_map_adopt(&m, b, n, free, b, "flip.bin"), 0);
            cks_tensor_list l;
            cks_tensor_list_init(&l);
            if (cks_torchbin_parse(m, 0, &l) == 0) {
                for (size_t t = 0; t < l.count; t++)
                    assert_true((const unsigned char *)l.items[t].data >= m->data &&
                                (const unsigned char *)l.items[t].data + l.items[t].nbytes <=
                                    m->data + m->size);
            }
            cks_tensor_list_release(&l);
            cks_map_free(m);
        }
    }
    free(orig);
}

/* A storage of 2^32 + 64 bytes followed by a small one: ZIP64 sizes and offsets past
 * 4 GiB in miniz's layout (the one torch 1.13 wrote for such a file when measured),
 * the big entry left as a hole so the test costs no disk. */
static void test_torchbin__zip64_archive_past_4gib(void **state)
{
    const int64_t big = (1LL << 32) + 64, bs[1] = {big}, ss[1] = {6}, one[1] = {1};
    const float small[6] = {0, 1, 2, 3, 4, 5};
    cks_fx_buf pk = {0};
    cks_fx_put(&pk, "\x80\x02", 2);
    cks_fx_pk_odict(&pk);
    cks_fx_putc(&pk, '(');
    cks_fx_pk_str(&pk, "big");
    cks_fx_pk_tensor(&pk, "0", "ByteStorage", big, 0, 1, bs, one);
    cks_fx_pk_str(&pk, "small");
    cks_fx_pk_tensor(&pk, "1", "FloatStorage", 6, 0, 1, ss, one);
    cks_fx_put(&pk, "u.", 2);
    cks_fx_zip_entry e[] = {{"big/data.pkl", pk.p, pk.n},
                            {"big/data/0", NULL, (uint64_t)big},
                            {"big/data/1", small, sizeof small},
                            {"big/version", "3\n", 2}};
    char *dir = cks_tmpdir_new("zip64"), path[4200];
    snprintf(path, sizeof path, "%s/big.bin", dir);
    assert_int_equal(cks_fx_torchzip_file(path, e, 4), 0);
    cks_map *m = NULL;
    assert_int_equal(cks_map_file(&m, path, NULL), 0);
    assert_true(m->size > (size_t)big);
    cks_tensor_list l;
    cks_tensor_list_init(&l);
    assert_int_equal(cks_torchbin_parse(m, 0, &l), 0);
    const cks_tensor *b = &l.items[cks_tensor_list_find(&l, "big")],
                     *s = &l.items[cks_tensor_list_find(&l, "small")];
    assert_int_equal(b->nbytes, (size_t)big);
    assert_int_equal(b->dtype, CKS_DT_U8);
    assert_true((const unsigned char *)s->data - m->data > (ptrdiff_t)big);
    assert_memory_equal(s->data, small, sizeof small);
    cks_norms nm;
    assert_int_equal(cks_norms_compute(s, 1, &nm), 0);
    assert_close(nm.fro, sqrt(55.0), 1e-15, 0); /* 0^2 + ... + 5^2 = 55 */
    cks_tensor_list_release(&l);
    cks_map_free(m);
    cks_fx_buf_free(&pk);
    cks_tmpdir_remove(dir);
}

/* An archive in memory with one storage of 12 floats and a tensor w of the given shape
 * and stride (torch's opcode sequence, miniz's layout). */
static int parse_shape(int ndim, const int64_t *shape, const int64_t *stride, cks_tensor_list *l)
{
    float data[12] = {0};
    cks_fx_buf pk = {0};
    size_t n;
    cks_fx_put(&pk, "\x80\x02", 2);
    cks_fx_pk_odict(&pk);
    cks_fx_putc(&pk, '(');
    cks_fx_pk_str(&pk, "w");
    cks_fx_pk_tensor(&pk, "0", "FloatStorage", 12, 0, ndim, shape, stride);
    cks_fx_put(&pk, "u.", 2);
    cks_fx_zip_entry e[] = {
        {"a/data.pkl", pk.p, pk.n}, {"a/data/0", data, sizeof data}, {"a/version", "3\n", 2}};
    unsigned char *buf = cks_fx_torchzip_mem(e, 3, &n);
    cks_map *m = NULL;
    assert_int_equal(cks_map_adopt(&m, buf, n, free, buf, "mem.bin"), 0);
    int rc = cks_torchbin_parse(m, 0, l);
    cks_map_free(m);
    cks_fx_buf_free(&pk);
    return rc;
}

/* Shapes whose element count overflows are refused; a zero dimension makes a tensor
 * empty whatever the others are; strides of size-1 dimensions do not matter (torch's
 * is_contiguous rule). */
static void test_torchbin__shape_edge_cases(void **state)
{
    cks_tensor_list l;
    cks_tensor_list_init(&l);
    const int64_t huge[3] = {1LL << 40, 1LL << 40, 4}, hs[3] = {4LL << 40, 4, 1};
    assert_int_equal(parse_shape(3, huge, hs, &l), CKS_EFORMAT);
    assert_non_null(strstr(cks_error_last(), "tensor 'w' has a shape of more than 2^63"));
    const int64_t empty[3] = {1LL << 40, 0, 1LL << 40}, es[3] = {0, 1LL << 40, 1};
    assert_int_equal(parse_shape(3, empty, es, &l), 0);
    assert_int_equal(l.items[0].numel, 0);
    const int64_t ones[3] = {3, 1, 4}, os[3] = {4, 99, 1};
    assert_int_equal(parse_shape(3, ones, os, &l), 0);
    assert_int_equal(l.items[1].numel, 12);
    const int64_t bad[2] = {3, 4}, bs[2] = {4, 2};
    assert_int_equal(parse_shape(2, bad, bs, &l), CKS_EUNSUPPORTED);
    assert_non_null(strstr(cks_error_last(), "not contiguous (shape (3, 4), stride (4, 2))"));
    assert_int_equal(l.count, 2);
    cks_tensor_list_release(&l);
}

/* inspect's numbers: the same norms, bit for bit, from the .bin and from the same
 * tensors written as safetensors by the fixture script. */
static void test_torchbin__same_norms_as_safetensors(void **state)
{
    static const char *const tags[] = {"f32", "f16", "bf16"};
    for (size_t k = 0; k < 3; k++) {
        char a[64], b[64];
        snprintf(a, sizeof a, "torch/llama_%s.bin", tags[k]);
        snprintf(b, sizeof b, "torch/llama_%s.safetensors", tags[k]);
        cks_map *ma = map_data(a), *mb = map_data(b);
        cks_tensor_list la, lb;
        cks_tensor_list_init(&la);
        cks_tensor_list_init(&lb);
        assert_int_equal(cks_torchbin_parse(ma, 0, &la), 0);
        assert_int_equal(cks_safetensors_parse(mb, 0, &lb), 0);
        assert_int_equal(la.count, lb.count);
        for (size_t i = 0; i < la.count; i++) {
            const cks_tensor *x = &la.items[i], *y = &lb.items[cks_tensor_list_find(&lb, x->name)];
            cks_norms nx, ny;
            assert_int_equal(cks_norms_compute(x, 1, &nx), 0);
            assert_int_equal(cks_norms_compute(y, 1, &ny), 0);
            assert_memory_equal(&nx, &ny, sizeof nx);
            assert_int_equal(x->nbytes, y->nbytes);
            assert_memory_equal(x->data, y->data, x->nbytes);
        }
        cks_tensor_list_release(&la);
        cks_tensor_list_release(&lb);
        cks_map_free(ma);
        cks_map_free(mb);
    }
}

/* ---- sources ---- */

typedef struct {
    char name[128];
    unsigned char *data;
    size_t len;
} file_blob;

static int read_fixture(file_blob *f, const char *rel, const char *as)
{
    char *path = cks_test_data(rel);
    f->data = cks_read_test_file(path, &f->len);
    snprintf(f->name, sizeof f->name, "%s", as);
    free(path);
    return 0;
}

/* Opens checkpoint ckpt_000 of the source at dir and checks its weights: format
 * pytorch, every tensor of the listed fixture files as torch described it. */
static void check_source(const char *dir, const char *const *files, size_t nfiles)
{
    json_t *all = load_json("torch/expected.json");
    cks_source *s = NULL;
    cks_ckpt *c = NULL;
    cks_weights *w = NULL;
    size_t idx;
    if (cks_source_open(&s, dir, NULL) != 0)
        fail_msg("%s", cks_error_last());
    assert_int_equal(cks_source_find(s, "ckpt_000", &idx), 0);
    assert_int_equal(cks_ckpt_open(&c, s, idx), 0);
    assert_int_equal(cks_weight_format_detect(c), CKS_FORMAT_PYTORCH);
    if (cks_weights_open(&w, c) != 0)
        fail_msg("%s", cks_error_last());
    assert_int_equal(cks_weights_format(w), CKS_FORMAT_PYTORCH);
    const cks_tensor_list *l = cks_weights_tensors(w);
    size_t total = 0;
    for (size_t i = 0; i < nfiles; i++) {
        json_t *t = expected_for(all, files[i]);
        const char *name;
        json_t *e;
        json_object_foreach(t, name, e)
        {
            long k = cks_tensor_list_find(l, name);
            assert_true(k >= 0);
            check_tensor(&l->items[k], e);
            total++;
        }
    }
    assert_int_equal(l->count, total);
    cks_weights_free(w);
    cks_ckpt_free(c);
    cks_source_free(s);
    json_decref(all);
}

static void free_blobs(file_blob *f, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(f[i].data);
}

static void write_hf_cache(const char *dir, const file_blob *f, size_t n)
{
    char p[4300], commit[65], oid[65];
    cks_sha256_hex("ckpt_000", 8, commit);
    commit[40] = '\0';
    const char *subs[] = {"", "/refs", "/blobs", "/snapshots"};
    for (size_t i = 0; i < 4; i++) {
        snprintf(p, sizeof p, "%s%s", dir, subs[i]);
        assert_int_equal(mkdir(p, 0755), 0);
    }
    snprintf(p, sizeof p, "%s/refs/ckpt_000", dir);
    cks_write_file(p, commit, 40);
    snprintf(p, sizeof p, "%s/snapshots/%s", dir, commit);
    assert_int_equal(mkdir(p, 0755), 0);
    for (size_t i = 0; i < n; i++) {
        char target[200];
        cks_sha256_hex(f[i].data, f[i].len, oid);
        snprintf(p, sizeof p, "%s/blobs/%s", dir, oid);
        cks_write_file(p, f[i].data, f[i].len);
        snprintf(p, sizeof p, "%s/snapshots/%s/%s", dir, commit, f[i].name);
        snprintf(target, sizeof target, "../../blobs/%s", oid);
        assert_int_equal(symlink(target, p), 0);
    }
}

static void write_folder(const char *dir, const file_blob *f, size_t n)
{
    char p[4300];
    assert_int_equal(mkdir(dir, 0755), 0);
    snprintf(p, sizeof p, "%s/ckpt_000", dir);
    assert_int_equal(mkdir(p, 0755), 0);
    for (size_t i = 0; i < n; i++) {
        snprintf(p, sizeof p, "%s/ckpt_000/%s", dir, f[i].name);
        cks_write_file(p, f[i].data, f[i].len);
    }
}

static void write_git(const char *dir, const file_blob *f, size_t n, int lfs)
{
    static const char *const pats[] = {"*.bin", NULL};
    cks_fx_file files[8];
    for (size_t i = 0; i < n; i++)
        files[i] = (cks_fx_file){f[i].name, f[i].data, f[i].len};
    assert_int_equal(
        cks_fx_git_commit(dir, 1, "refs/heads/ckpt_000", files, (int)n, lfs ? pats : NULL, 0, NULL),
        0);
}

/* A single-file checkpoint (the f16 state dict) and a sharded one (two shards and their
 * index) through a bare git repository with plain blobs and with LFS pointers, an HF
 * hub cache, and a plain folder. */
static void test_torchbin__reads_through_every_source(void **state)
{
    file_blob one[2], sh[4];
    read_fixture(&one[0], "torch/config.json", "config.json");
    read_fixture(&one[1], "torch/llama_f16.bin", "pytorch_model.bin");
    read_fixture(&sh[0], "torch/sharded/config.json", "config.json");
    read_fixture(&sh[1], "torch/sharded/pytorch_model.bin.index.json",
                 "pytorch_model.bin.index.json");
    read_fixture(&sh[2], "torch/sharded/pytorch_model-00001-of-00002.bin",
                 "pytorch_model-00001-of-00002.bin");
    read_fixture(&sh[3], "torch/sharded/pytorch_model-00002-of-00002.bin",
                 "pytorch_model-00002-of-00002.bin");
    static const char *const f_one[] = {"llama_f16.bin"};
    static const char *const f_sh[] = {"sharded/pytorch_model-00001-of-00002.bin",
                                       "sharded/pytorch_model-00002-of-00002.bin"};
    char *root = cks_tmpdir_new("torchsrc"), d[4200];
    for (int shard = 0; shard < 2; shard++) {
        const file_blob *f = shard ? sh : one;
        size_t n = shard ? 4 : 2;
        const char *const *want = shard ? f_sh : f_one;
        size_t nw = shard ? 2 : 1;
        snprintf(d, sizeof d, "%s/git%d", root, shard);
        write_git(d, f, n, 0);
        check_source(d, want, nw);
        snprintf(d, sizeof d, "%s/lfs%d", root, shard);
        write_git(d, f, n, 1);
        check_source(d, want, nw);
        snprintf(d, sizeof d, "%s/models--test--tiny%d", root, shard);
        write_hf_cache(d, f, n);
        check_source(d, want, nw);
        snprintf(d, sizeof d, "%s/folder%d", root, shard);
        write_folder(d, f, n);
        check_source(d, want, nw);
    }
    free_blobs(one, 2);
    free_blobs(sh, 4);
    cks_tmpdir_remove(root);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_torchbin__llama_state_dicts_match_torch),
        cmocka_unit_test(test_torchbin__tied_weights_share_one_storage),
        cmocka_unit_test(test_torchbin__offset_views_into_a_shared_storage),
        cmocka_unit_test(test_torchbin__rebuild_v3_untyped_storage),
        cmocka_unit_test(test_torchbin__refuses_non_contiguous_tensors),
        cmocka_unit_test(test_torchbin__refuses_hostile_files),
        cmocka_unit_test(test_torchbin__truncations_and_byte_changes_are_safe),
        cmocka_unit_test(test_torchbin__zip64_archive_past_4gib),
        cmocka_unit_test(test_torchbin__shape_edge_cases),
        cmocka_unit_test(test_torchbin__same_norms_as_safetensors),
        cmocka_unit_test(test_torchbin__reads_through_every_source),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
