/* The count limits that take a million of something to reach (label slow; the others are
 * in test_limits_loaders.c, test_limits_tok.c and test_limits_reports.c): tensors in a
 * safetensors header and in a shard index, entries in a torch zip archive, checkpoints in
 * a source and files in a checkpoint, pieces in a SentencePiece model, scores in a gate
 * baseline. At each limit the input is accepted whole; one past it is refused. */
#include "error.h"
#include "regress.h"
#include "safetensors.h"
#include "shard_index.h"
#include "source.h"
#include "testutil.h"
#include "tokenizer.h"
#include "torchfx.h"
#include "torchzip.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- a million tensors: safetensors header, shard index ---- */

/* n empty F32 tensors t0..t<n-1> (empty tensors may share offsets). */
static unsigned char *st_many(size_t n, size_t *len)
{
    size_t cap = n * 64 + 64, o = 8;
    unsigned char *b = malloc(cap);
    assert_non_null(b);
    b[o++] = '{';
    for (size_t i = 0; i < n; i++)
        o += (size_t)snprintf((char *)b + o, cap - o,
                              "%s\"t%zu\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[0,0]}",
                              i ? "," : "", i);
    b[o++] = '}';
    for (int i = 0; i < 8; i++)
        b[i] = (unsigned char)((uint64_t)(o - 8) >> (8 * i));
    *len = o;
    return b;
}

static void test_limits__safetensors_tensors(void **state)
{
    for (int past = 0; past < 2; past++) {
        size_t len;
        unsigned char *b = st_many(CKS_MAX_TENSORS + (size_t)past, &len);
        cks_map *m;
        cks_tensor_list l;
        assert_int_equal(cks_map_adopt(&m, b, len, free, b, "many.safetensors"), 0);
        cks_tensor_list_init(&l);
        int rc = cks_safetensors_parse(m, 0, &l);
        if (past) {
            cks_expect_error(rc, CKS_ELIMIT, "many.safetensors", "1048577 tensors (limit 1048576)");
        } else {
            assert_int_equal(rc, 0);
            assert_int_equal(l.count, CKS_MAX_TENSORS);
        }
        cks_tensor_list_release(&l);
        cks_map_free(m);
    }
}

static void test_limits__shard_index_tensors(void **state)
{
    for (int past = 0; past < 2; past++) {
        size_t n = CKS_MAX_TENSORS + (size_t)past, cap = n * 48 + 64, o = 0;
        char *t = malloc(cap);
        assert_non_null(t);
        o += (size_t)snprintf(t + o, cap - o, "{\"weight_map\": {");
        for (size_t i = 0; i < n; i++)
            o += (size_t)snprintf(t + o, cap - o, "%s\"t%zu\": \"model-%zu.safetensors\"",
                                  i ? ", " : "", i, i % 7);
        o += (size_t)snprintf(t + o, cap - o, "}}");
        cks_shard_index ix;
        int rc = cks_shard_index_parse(t, o, "model.safetensors.index.json", &ix);
        if (past) {
            cks_expect_error(rc, CKS_ELIMIT, "index.json", "1048577 tensors (limit 1048576)");
        } else {
            assert_int_equal(rc, 0);
            assert_int_equal(ix.ntensors, CKS_MAX_TENSORS);
            assert_int_equal(ix.nfiles, 7);
            cks_shard_index_release(&ix);
        }
        free(t);
    }
}

/* ---- a million zip entries ---- */

static uint64_t rd64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

static void test_limits__zip_entries(void **state)
{
    /* data.pkl, version and empty storages: CKS_ZIP_MAX_ENTRIES entries in all */
    size_t n = CKS_ZIP_MAX_ENTRIES;
    cks_fx_zip_entry *e = calloc(n, sizeof *e);
    char *names = malloc(n * 24);
    assert_true(e && names);
    static const char pkl[] = "\x80\x02}.";
    e[0] = (cks_fx_zip_entry){"archive/data.pkl", pkl, sizeof pkl - 1};
    e[1] = (cks_fx_zip_entry){"archive/version", "3\n", 2};
    for (size_t i = 2; i < n; i++) {
        snprintf(names + 24 * i, 24, "archive/data/%zu", i);
        e[i] = (cks_fx_zip_entry){names + 24 * i, "", 0};
    }
    size_t len;
    unsigned char *z = cks_fx_torchzip_mem(e, (int)n, &len);
    assert_non_null(z);
    free(e);
    free(names);
    cks_map *m;
    cks_torchzip a;
    assert_int_equal(cks_map_adopt(&m, z, len, free, z, "many.bin"), 0);
    assert_int_equal(cks_torchzip_open(m, &a), 0);
    assert_int_equal(a.count, CKS_ZIP_MAX_ENTRIES);
    cks_torchzip_release(&a);
    /* one more announced (the ZIP64 end record holds the counts: 56 bytes, then the 20-byte
     * locator and the 22-byte end record, whose counts are saturated) */
    unsigned char *z64 = z + len - 22 - 20 - 56;
    assert_true(z64[0] == 0x50 && z64[1] == 0x4b && z64[2] == 6 && z64[3] == 6);
    assert_int_equal(rd64(z64 + 32), CKS_ZIP_MAX_ENTRIES);
    for (int off = 24; off <= 32; off += 8)
        for (int i = 0; i < 8; i++)
            z64[off + i] = (unsigned char)(((uint64_t)CKS_ZIP_MAX_ENTRIES + 1) >> (8 * i));
    cks_expect_error(cks_torchzip_open(m, &a), CKS_ELIMIT, "many.bin",
                     "1048577 zip entries (limit");
    cks_map_free(m);
}

/* ---- a hundred thousand checkpoints, and files in one ---- */

/* A fresh folder for 100k entries: a tmpfs mounted on it when we may (root), where they
 * take half a second to make instead of half a minute on ext4, and vanish on umount. */
static char *many_dir(int *mounted)
{
    char *root = cks_tmpdir_new("limits");
    *mounted = mount("tmpfs", root, "tmpfs", 0, "size=256m") == 0;
    return root;
}

static void many_dir_remove(char *root, int mounted)
{
    if (mounted)
        assert_int_equal(umount(root), 0);
    cks_tmpdir_remove(root);
}

static void test_limits__source_checkpoints(void **state)
{
    int mounted;
    char *root = many_dir(&mounted), p[4096];
    for (int i = 0; i < CKS_MAX_CHECKPOINTS; i++) {
        snprintf(p, sizeof p, "%s/ckpt_%06d", root, i);
        assert_int_equal(mkdir(p, 0755), 0);
    }
    cks_source *s;
    assert_int_equal(cks_source_open(&s, root, NULL), 0);
    assert_int_equal(cks_source_count(s), CKS_MAX_CHECKPOINTS);
    assert_int_equal(cks_source_ckpt(s, CKS_MAX_CHECKPOINTS - 1)->step, CKS_MAX_CHECKPOINTS - 1);
    cks_source_free(s);
    snprintf(p, sizeof p, "%s/ckpt_%06d", root, CKS_MAX_CHECKPOINTS);
    assert_int_equal(mkdir(p, 0755), 0);
    cks_expect_error(cks_source_open(&s, root, NULL), CKS_ELIMIT, root,
                     "more than 100000 checkpoints");
    many_dir_remove(root, mounted);
}

static void test_limits__checkpoint_files(void **state)
{
    int mounted;
    char *root = many_dir(&mounted), p[4096];
    snprintf(p, sizeof p, "%s/ckpt_000", root);
    assert_int_equal(mkdir(p, 0755), 0);
    for (int i = 0; i < CKS_MAX_FILES; i++) {
        snprintf(p, sizeof p, "%s/ckpt_000/f%06d", root, i);
        int fd = open(p, O_CREAT | O_WRONLY, 0644);
        assert_true(fd >= 0);
        close(fd);
    }
    cks_source *s;
    cks_ckpt *c;
    assert_int_equal(cks_source_open(&s, root, NULL), 0);
    assert_int_equal(cks_ckpt_open(&c, s, 0), 0);
    assert_int_equal(cks_ckpt_nfiles(c), CKS_MAX_FILES);
    cks_ckpt_free(c);
    snprintf(p, sizeof p, "%s/ckpt_000/f%06d", root, CKS_MAX_FILES);
    cks_write_file(p, "", 0);
    cks_expect_error(cks_ckpt_open(&c, s, 0), CKS_ELIMIT, "ckpt_000", "more than 100000 files");
    cks_source_free(s);
    many_dir_remove(root, mounted);
}

/* ---- four million pieces ---- */

static void test_limits__spm_pieces(void **state)
{
    /* tests/data/tok/small.model and distinct NORMAL pieces "z<base-32 number>" appended up
     * to CKS_TOK_MAX_PIECES (a repeated field may follow the others) */
    size_t n;
    char *path = cks_test_data("tok/small.model");
    unsigned char *base = cks_read_test_file(path, &n);
    free(path);
    cks_tokenizer *t;
    assert_int_equal(cks_tokenizer_load_spm(&t, base, n, "small.model"), 0);
    size_t have = (size_t)cks_tokenizer_vocab_size(t);
    cks_tokenizer_free(t);
    size_t add = CKS_TOK_MAX_PIECES - have, cap = n + (add + 1) * 24;
    unsigned char *m = malloc(cap);
    assert_non_null(m);
    memcpy(m, base, n);
    size_t at = n;
    for (size_t i = 0; i <= add; i++) {
        char piece[16];
        size_t k = 0, v = i;
        piece[k++] = 'z';
        do {
            piece[k++] = "0123456789abcdefghijklmnopqrstuv"[v % 32];
            v /= 32;
        } while (v);
        m[at++] = 0x0A;
        at += cks_put_varint(m + at, 2 + k + 7);
        m[at++] = 0x0A;
        m[at++] = (unsigned char)k;
        memcpy(m + at, piece, k);
        at += k;
        static const unsigned char st[] = {0x15, 0, 0, 0x80, 0xBF, 0x18, 0x01};
        memcpy(m + at, st, sizeof st);
        at += sizeof st;
        if (i == add - 1) { /* exactly CKS_TOK_MAX_PIECES */
            assert_int_equal(cks_tokenizer_load_spm(&t, m, at, "big.model"), 0);
            assert_int_equal(cks_tokenizer_vocab_size(t), CKS_TOK_MAX_PIECES);
            cks_tokenizer_free(t);
        }
    }
    cks_expect_error(cks_tokenizer_load_spm(&t, m, at, "big.model"), CKS_ELIMIT, "big.model",
                     "more than 4194304 pieces");
    free(m);
    free(base);
}

/* ---- a million gate scores ---- */

static void test_limits__baseline_metrics(void **state)
{
    char *dir = cks_tmpdir_new("limits"), path[4096];
    snprintf(path, sizeof path, "%s/baseline.json", dir);
    for (int past = 0; past < 2; past++) {
        size_t n = CKS_GATE_MAX_METRICS + (size_t)past, cap = n * 40 + 256, o = 0;
        char *t = malloc(cap);
        assert_non_null(t);
        o += (size_t)snprintf(t + o, cap - o,
                              "{\"format\": \"ckptscope-baseline\", \"format_version\": 1, "
                              "\"run\": {}, \"checkpoint\": {\"name\": \"c\", \"step\": 5}, "
                              "\"metrics\": [");
        for (size_t i = 0; i < n; i++)
            o += (size_t)snprintf(t + o, cap - o, "%s{\"id\": \"m%zu\", \"value\": 1}",
                                  i ? ", " : "", i);
        o += (size_t)snprintf(t + o, cap - o, "]}");
        cks_write_file(path, t, o);
        free(t);
        cks_baseline b;
        int rc = cks_baseline_read(path, &b);
        if (past) {
            cks_expect_error(rc, CKS_EFORMAT, "baseline.json", "at most 1000000 scores");
        } else {
            assert_int_equal(rc, 0);
            assert_int_equal(b.n, CKS_GATE_MAX_METRICS);
            cks_baseline_release(&b);
        }
    }
    cks_tmpdir_remove(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_limits__safetensors_tensors),
        cmocka_unit_test(test_limits__shard_index_tensors),
        cmocka_unit_test(test_limits__zip_entries),
        cmocka_unit_test(test_limits__source_checkpoints),
        cmocka_unit_test(test_limits__checkpoint_files),
        cmocka_unit_test(test_limits__spm_pieces),
        cmocka_unit_test(test_limits__baseline_metrics),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
