/* Resource limits of the loaders (the CKS_MAX_* / CKS_PK_* / CKS_ZIP_* / CKS_LFS_*
 * constants): for each, an input exactly at the limit is accepted and one just past it is
 * refused with a message naming the file and the limit. Where a fully valid input at the
 * limit would be large, the limit check is shown to pass (the input is refused later, for
 * another, cheaper reason, or parses whole); inputs are built in memory, in anonymous
 * mappings whose untouched pages cost nothing. Limits that need a million entries to
 * reach are in test_limits_slow.c. */
#include "config.h"
#include "error.h"
#include "lfs.h"
#include "pickle.h"
#include "safetensors.h"
#include "source.h"
#include "testutil.h"
#include "torchfx.h"
#include "torchzip.h"
#include "weights.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>

#define PUT(b, s) cks_fx_put((b), (s), sizeof(s) - 1)

/* ---- safetensors: the header length ---- */

static int st_parse(unsigned char *b, size_t n, size_t *count)
{
    cks_map *m;
    cks_tensor_list l;
    assert_int_equal(cks_map_adopt(&m, b, n, NULL, NULL, "big.safetensors"), 0);
    cks_tensor_list_init(&l);
    int rc = cks_safetensors_parse(m, 0, &l);
    *count = l.count;
    cks_tensor_list_release(&l);
    cks_map_free(m);
    return rc;
}

static void test_limits__safetensors_header_bytes(void **state)
{
    /* a header of exactly CKS_MAX_ST_HEADER bytes: one tensor, then space padding (the
     * format allows trailing spaces) */
    const uint64_t n = CKS_MAX_ST_HEADER;
    static const char hdr[] = "{\"w\": {\"dtype\": \"F32\", \"shape\": [2], "
                              "\"data_offsets\": [0, 8]}}";
    unsigned char *b = cks_big_zeroed(8 + n + 1 + 8);
    for (int i = 0; i < 8; i++)
        b[i] = (unsigned char)(n >> (8 * i));
    memcpy(b + 8, hdr, sizeof hdr - 1);
    memset(b + 8 + sizeof hdr - 1, ' ', n - (sizeof hdr - 1));
    size_t count = 0;
    assert_int_equal(st_parse(b, 8 + n + 8, &count), 0);
    assert_int_equal(count, 1);
    /* one byte more is refused before the header is read */
    b[0] = (unsigned char)(n + 1);
    for (int i = 1; i < 8; i++)
        b[i] = (unsigned char)((n + 1) >> (8 * i));
    b[8 + n] = ' ';
    cks_expect_error(st_parse(b, 8 + n + 1 + 8, &count), CKS_ELIMIT, "big.safetensors", "exceeds");
    munmap(b, 8 + n + 1 + 8);
}

/* ---- tensor dimensions (safetensors headers and pickled state dicts) ---- */

static void test_limits__tensor_dims(void **state)
{
    for (int past = 0; past < 2; past++) {
        int nd = CKS_MAX_DIMS + past;
        char hdr[256];
        int k = snprintf(hdr, sizeof hdr, "{\"w\": {\"dtype\": \"F32\", \"shape\": [");
        for (int d = 0; d < nd; d++)
            k += snprintf(hdr + k, sizeof hdr - (size_t)k, "%s%d", d ? ", " : "", d == 0 ? 2 : 1);
        snprintf(hdr + k, sizeof hdr - (size_t)k, "], \"data_offsets\": [0, 8]}}");
        size_t hl = strlen(hdr), count = 0;
        unsigned char *b = cks_big_zeroed(8 + hl + 8);
        for (int i = 0; i < 8; i++)
            b[i] = (unsigned char)((uint64_t)hl >> (8 * i));
        memcpy(b + 8, hdr, hl);
        int rc = st_parse(b, 8 + hl + 8, &count);
        if (past)
            cks_expect_error(rc, CKS_ELIMIT, "big.safetensors", "9 dimensions (limit 8)");
        else
            assert_true(rc == 0 && count == 1);
        munmap(b, 8 + hl + 8);
        /* the same shape as a pickled tensor */
        cks_fx_buf pk = {0};
        int64_t shape[CKS_MAX_DIMS + 1], stride[CKS_MAX_DIMS + 1];
        for (int d = 0; d < nd; d++)
            shape[d] = d == 0 ? 2 : 1, stride[d] = 1;
        PUT(&pk, "\x80\x02");
        cks_fx_pk_odict(&pk);
        cks_fx_putc(&pk, '(');
        cks_fx_pk_str(&pk, "w");
        cks_fx_pk_tensor(&pk, "0", "FloatStorage", 2, 0, nd, shape, stride);
        PUT(&pk, "u.");
        cks_pk_state_dict sd = {0};
        cks_error_clear();
        rc = cks_pickle_state_dict(pk.p, pk.n, "t.bin", &sd);
        if (past) {
            cks_expect_error(rc, CKS_ELIMIT, "t.bin", "at most 8 non-negative ints");
        } else {
            assert_int_equal(rc, 0);
            assert_true(sd.count == 1 && sd.items[0].ndim == CKS_MAX_DIMS);
        }
        cks_pk_state_dict_release(&sd);
        cks_fx_buf_free(&pk);
    }
}

/* ---- config.json: every size and the file itself ---- */

static int config_with(const char *key, long long v)
{
    char text[512];
    /* a small valid model; the field under test replaces its default */
    long long hidden = 64, inter = 1, layers = 1, heads = 4, kv = 4, vocab = 5, pos = 2048;
    if (strcmp(key, "hidden_size") == 0)
        hidden = v;
    else if (strcmp(key, "intermediate_size") == 0)
        inter = v;
    else if (strcmp(key, "num_hidden_layers") == 0)
        layers = v;
    else if (strcmp(key, "num_attention_heads") == 0)
        heads = kv = v, hidden = 2 * (v > 4096 ? 4096 : v); /* head_dim 2 */
    else if (strcmp(key, "num_key_value_heads") == 0)
        kv = v, heads = 4096, hidden = 8192;
    else if (strcmp(key, "vocab_size") == 0)
        vocab = v;
    else if (strcmp(key, "max_position_embeddings") == 0)
        pos = v;
    snprintf(text, sizeof text,
             "{\"hidden_size\": %lld, \"intermediate_size\": %lld, \"num_hidden_layers\": %lld, "
             "\"num_attention_heads\": %lld, \"num_key_value_heads\": %lld, \"vocab_size\": %lld, "
             "\"max_position_embeddings\": %lld}",
             hidden, inter, layers, heads, kv, vocab, pos);
    cks_config c;
    cks_error_clear();
    int rc = cks_config_parse(text, strlen(text), "config.json", &c);
    if (rc == 0)
        assert_true(c.hidden_size == hidden && c.num_key_value_heads == kv);
    return rc;
}

static void test_limits__config_sizes(void **state)
{
    static const struct {
        const char *key;
        long long limit;
    } f[] = {{"hidden_size", CKS_MAX_HIDDEN},
             {"intermediate_size", CKS_MAX_INTERMEDIATE},
             {"num_hidden_layers", CKS_MAX_LAYERS},
             {"num_attention_heads", CKS_MAX_HEADS},
             {"num_key_value_heads", CKS_MAX_HEADS},
             {"vocab_size", CKS_MAX_VOCAB},
             {"max_position_embeddings", CKS_MAX_POSITIONS}};
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++) {
        if (config_with(f[i].key, f[i].limit) != 0)
            fail_msg("%s = %lld (the limit) refused: %s", f[i].key, f[i].limit, cks_error_last());
        cks_expect_error(config_with(f[i].key, f[i].limit + 1), CKS_EFORMAT, f[i].key,
                         "outside [1, ");
    }
}

static void test_limits__config_bytes(void **state)
{
    static const char cfg[] = "{\"hidden_size\": 64, \"intermediate_size\": 1, "
                              "\"num_hidden_layers\": 1, \"num_attention_heads\": 4, "
                              "\"vocab_size\": 5}";
    size_t n = CKS_MAX_CONFIG_BYTES + 1;
    char *text = cks_padded_json(cfg, n);
    cks_config c;
    assert_int_equal(cks_config_parse(text, CKS_MAX_CONFIG_BYTES, "config.json", &c), 0);
    cks_expect_error(cks_config_parse(text, n, "config.json", &c), CKS_ELIMIT, "config.json",
                     "1048576");
    free(text);
}

/* ---- Git LFS pointers: the pointer's bytes and the size it announces ---- */

#define OID "4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393"

static void test_limits__lfs_pointer_bytes_and_size(void **state)
{
    char p[CKS_LFS_POINTER_MAX + 2];
    static const char head[] = "version https://git-lfs.github.com/spec/v1\next-0-x ";
    static const char tail[] = "\noid sha256:" OID "\nsize 12\n";
    /* an extension line padded so that the pointer is exactly CKS_LFS_POINTER_MAX bytes */
    size_t pad = CKS_LFS_POINTER_MAX - (sizeof head - 1) - (sizeof tail - 1);
    memcpy(p, head, sizeof head - 1);
    memset(p + sizeof head - 1, 'a', pad);
    memcpy(p + sizeof head - 1 + pad, tail, sizeof tail);
    assert_int_equal(strlen(p), CKS_LFS_POINTER_MAX);
    cks_lfs_pointer ptr;
    assert_true(cks_lfs_is_pointer(p, strlen(p)));
    assert_int_equal(cks_lfs_pointer_parse(p, strlen(p), "ckpt:w", &ptr), 0);
    assert_string_equal(ptr.oid, OID);
    /* one byte longer is not a pointer: git-lfs writes them far below 1 KiB */
    memmove(p + sizeof head, p + sizeof head - 1, strlen(p) - (sizeof head - 1) + 1);
    assert_int_equal(strlen(p), CKS_LFS_POINTER_MAX + 1);
    assert_false(cks_lfs_is_pointer(p, strlen(p)));
    cks_expect_error(cks_lfs_pointer_parse(p, strlen(p), "ckpt:w", &ptr), CKS_EFORMAT, "ckpt:w",
                     "not a Git LFS pointer");
    /* the size it announces */
    char s[256];
    snprintf(s, sizeof s,
             "version https://git-lfs.github.com/spec/v1\noid sha256:" OID "\nsize %llu\n",
             (unsigned long long)CKS_LFS_MAX_SIZE);
    assert_int_equal(cks_lfs_pointer_parse(s, strlen(s), "ckpt:w", &ptr), 0);
    assert_true(ptr.size == CKS_LFS_MAX_SIZE);
    snprintf(s, sizeof s,
             "version https://git-lfs.github.com/spec/v1\noid sha256:" OID "\nsize %llu\n",
             (unsigned long long)CKS_LFS_MAX_SIZE + 1);
    cks_expect_error(cks_lfs_pointer_parse(s, strlen(s), "ckpt:w", &ptr), CKS_ELIMIT, "ckpt:w",
                     "too large");
}

/* ---- torch archives: entry names, format version, end-record comment ---- */

static int open_archive(const cks_fx_zip_entry *e, int n, size_t comment, int trailing)
{
    size_t len;
    unsigned char *z = cks_fx_torchzip_mem(e, n, &len);
    assert_non_null(z);
    if (comment || trailing) { /* the end record is the last 22 bytes: set its comment */
        unsigned char *g = realloc(z, len + comment + (size_t)trailing);
        assert_non_null(g);
        z = g;
        z[len - 2] = (unsigned char)comment;
        z[len - 1] = (unsigned char)(comment >> 8);
        memset(z + len, 'c', comment + (size_t)trailing);
        len += comment + (size_t)trailing;
    }
    cks_map *m;
    cks_torchzip a;
    assert_int_equal(cks_map_adopt(&m, z, len, free, z, "big.bin"), 0);
    cks_error_clear();
    int rc = cks_torchzip_open(m, &a);
    if (rc == 0)
        cks_torchzip_release(&a);
    cks_map_free(m);
    return rc;
}

static void test_limits__zip_name_version_comment(void **state)
{
    static const char pkl[] = "\x80\x02}.";
    char name[CKS_ZIP_MAX_NAME + 2];
    memset(name, 'n', sizeof name - 1);
    memcpy(name, "archive/", 8);
    name[CKS_ZIP_MAX_NAME] = '\0';
    cks_fx_zip_entry e[] = {{"archive/data.pkl", pkl, sizeof pkl - 1},
                            {name, "abcd", 4},
                            {"archive/version", "3\n", 2}};
    assert_int_equal(open_archive(e, 3, 0, 0), 0);
    name[CKS_ZIP_MAX_NAME] = 'n';
    name[CKS_ZIP_MAX_NAME + 1] = '\0';
    cks_expect_error(open_archive(e, 3, 0, 0), CKS_EFORMAT, "big.bin", "1025");
    /* the format version: torch reads up to its kMaxSupportedFileFormatVersion */
    char ver[8];
    snprintf(ver, sizeof ver, "%d\n", CKS_TORCH_MAX_VERSION);
    cks_fx_zip_entry v[] = {{"archive/data.pkl", pkl, sizeof pkl - 1},
                            {"archive/version", ver, strlen(ver)}};
    assert_int_equal(open_archive(v, 2, 0, 0), 0);
    snprintf(ver, sizeof ver, "%d\n", CKS_TORCH_MAX_VERSION + 1);
    v[1].size = strlen(ver);
    cks_expect_error(open_archive(v, 2, 0, 0), CKS_EUNSUPPORTED, "big.bin", "version");
    /* the end record's comment: its 16-bit length is the format's own limit, so "past it"
     * is a comment that does not end the file */
    assert_int_equal(open_archive(v, 1, 0, 0), CKS_EFORMAT); /* no version record */
    v[1].size = 2;
    memcpy(ver, "3\n", 3);
    assert_int_equal(open_archive(v, 2, CKS_ZIP_MAX_COMMENT, 0), 0);
    cks_expect_error(open_archive(v, 2, CKS_ZIP_MAX_COMMENT, 1), CKS_EFORMAT, "big.bin", NULL);
}

/* ---- the restricted unpickler ---- */

static int unpickle(const cks_fx_buf *b)
{
    cks_pk_state_dict sd = {0};
    cks_error_clear();
    int rc = cks_pickle_state_dict(b->p, b->n, "t.bin", &sd);
    cks_pk_state_dict_release(&sd);
    return rc;
}

/* OrderedDict() (3 objects: the global, the empty tuple, the dict; 1 value on the stack),
 * then its state: an empty dict (1 object) and the key "k" (1 object). The caller pushes
 * one value, then state() ends it: SETITEM, BUILD (the state is dropped), STOP. */
static void state_begin(cks_fx_buf *b)
{
    PUT(b, "\x80\x02");
    cks_fx_pk_odict(b);
    PUT(b, "}\x8c\x01k");
}

static void state_end(cks_fx_buf *b)
{
    PUT(b, "sb.");
}

static void test_limits__pickle_bytes(void **state)
{
    /* a valid pickle followed by junk: refused for the junk (not for its size) at the limit */
    size_t n = (size_t)CKS_PK_MAX_BYTES + 1;
    unsigned char *b = cks_big_zeroed(n);
    memcpy(b, "\x80\x02}.", 4);
    cks_pk_state_dict sd = {0};
    cks_expect_error(cks_pickle_state_dict(b, CKS_PK_MAX_BYTES, "t.bin", &sd), CKS_EFORMAT, "t.bin",
                     "bytes after STOP");
    cks_expect_error(cks_pickle_state_dict(b, n, "t.bin", &sd), CKS_ELIMIT, "t.bin", "268435456");
    munmap(b, n);
}

static void test_limits__pickle_string(void **state)
{
    for (int past = 0; past < 2; past++) {
        cks_fx_buf b = {0};
        uint32_t n = CKS_PK_MAX_STRING + (uint32_t)past;
        PUT(&b, "\x80\x02");
        cks_fx_pk_odict(&b);
        PUT(&b, "}X");
        for (int i = 0; i < 4; i++)
            cks_fx_putc(&b, (int)(n >> (8 * i)) & 0xFF);
        cks_fx_put(&b, NULL, n);
        memset(b.p + b.n - n, 'a', n);
        cks_fx_putc(&b, 'N');
        state_end(&b);
        if (past)
            cks_expect_error(unpickle(&b), CKS_ELIMIT, "t.bin",
                             "a string of 1048577 bytes (limit 1048576)");
        else
            assert_int_equal(unpickle(&b), 0);
        cks_fx_buf_free(&b);
    }
}

static void test_limits__pickle_stack(void **state)
{
    /* odict, state, key: 3 values; then lists up to CKS_PK_MAX_STACK values, folded into
     * one by APPEND */
    for (int past = 0; past < 2; past++) {
        cks_fx_buf b = {0};
        size_t lists = CKS_PK_MAX_STACK - 3 + (size_t)past;
        state_begin(&b);
        cks_fx_put(&b, NULL, lists);
        memset(b.p + b.n - lists, ']', lists);
        cks_fx_put(&b, NULL, lists - 1);
        memset(b.p + b.n - (lists - 1), 'a', lists - 1);
        state_end(&b);
        if (past)
            cks_expect_error(unpickle(&b), CKS_ELIMIT, "t.bin",
                             "more than 65536 values on the stack");
        else
            assert_int_equal(unpickle(&b), 0);
        cks_fx_buf_free(&b);
    }
}

static void test_limits__pickle_marks(void **state)
{
    for (int past = 0; past < 2; past++) {
        cks_fx_buf b = {0};
        int marks = CKS_PK_MAX_DEPTH + past;
        state_begin(&b);
        for (int i = 0; i < marks; i++)
            cks_fx_putc(&b, '(');
        for (int i = 0; i < marks; i++)
            cks_fx_putc(&b, 't'); /* nested tuples, one value */
        state_end(&b);
        if (past)
            cks_expect_error(unpickle(&b), CKS_ELIMIT, "t.bin", "MARKs nested deeper than 64");
        else
            assert_int_equal(unpickle(&b), 0);
        cks_fx_buf_free(&b);
    }
}

static void test_limits__pickle_memo(void **state)
{
    for (int past = 0; past < 2; past++) {
        cks_fx_buf b = {0};
        uint32_t idx = CKS_PK_MAX_MEMO - 1 + (uint32_t)past;
        PUT(&b, "\x80\x02}r");
        for (int i = 0; i < 4; i++)
            cks_fx_putc(&b, (int)(idx >> (8 * i)) & 0xFF);
        cks_fx_putc(&b, '.');
        if (past)
            cks_expect_error(unpickle(&b), CKS_ELIMIT, "t.bin",
                             "memo index 4194304 (limit 4194304)");
        else
            assert_int_equal(unpickle(&b), 0);
        cks_fx_buf_free(&b);
    }
}

/* Appends k copies of item (a 1- or 2-byte opcode) to the list on the stack, in APPENDS
 * batches that keep the stack far below its limit. */
static void append_many(cks_fx_buf *b, size_t k, const char *item, size_t ilen)
{
    while (k > 0) {
        size_t batch = k < 60000 ? k : 60000;
        cks_fx_putc(b, '(');
        for (size_t i = 0; i < batch; i++)
            cks_fx_put(b, item, ilen);
        cks_fx_putc(b, 'e');
        k -= batch;
    }
}

static void test_limits__pickle_objects(void **state)
{
    /* 3 (OrderedDict()) + 1 (state) + 1 (key) + 1 (list) objects, then Nones up to the
     * limit */
    for (int past = 0; past < 2; past++) {
        cks_fx_buf b = {0};
        state_begin(&b);
        cks_fx_putc(&b, ']');
        append_many(&b, CKS_PK_MAX_OBJECTS - 6 + (size_t)past, "N", 1);
        state_end(&b);
        if (past)
            cks_expect_error(unpickle(&b), CKS_ELIMIT, "t.bin", "more than 4194304 objects");
        else
            assert_int_equal(unpickle(&b), 0);
        cks_fx_buf_free(&b);
    }
}

static void test_limits__pickle_items(void **state)
{
    /* one None memoized and appended (1 item), references to it, and the state's SETITEM
     * (2 items): CKS_PK_MAX_ITEMS container items in all */
    for (int past = 0; past < 2; past++) {
        cks_fx_buf b = {0};
        state_begin(&b);
        PUT(&b, "]Nq\x00"
                "a");
        append_many(&b, CKS_PK_MAX_ITEMS - 3 + (size_t)past, "h\x00", 2);
        state_end(&b);
        if (past)
            cks_expect_error(unpickle(&b), CKS_ELIMIT, "t.bin", "container items (limit)");
        else
            assert_int_equal(unpickle(&b), 0);
        cks_fx_buf_free(&b);
    }
}

/* ---- checkpoint folders: nesting and the shard index's bytes ---- */

static void mkdir_ok(const char *p)
{
    assert_int_equal(mkdir(p, 0755), 0);
}

static void test_limits__folder_depth(void **state)
{
    char *root = cks_tmpdir_new("limits");
    for (int past = 0; past < 2; past++) {
        char p[4096];
        int n = snprintf(p, sizeof p, "%s/%s", root, past ? "ckpt_001" : "ckpt_000");
        mkdir_ok(p);
        for (int d = 0; d < CKS_MAX_TREE_DEPTH + past; d++) {
            n += snprintf(p + n, sizeof p - (size_t)n, "/d%d", d);
            mkdir_ok(p);
        }
        snprintf(p + n, sizeof p - (size_t)n, "/notes.txt");
        cks_write_file(p, "x", 1);
    }
    cks_source *s;
    cks_ckpt *c;
    assert_int_equal(cks_source_open(&s, root, NULL), 0);
    assert_int_equal(cks_ckpt_open(&c, s, 0), 0); /* 16 folders deep */
    assert_int_equal(cks_ckpt_nfiles(c), 1);
    cks_ckpt_free(c);
    cks_expect_error(cks_ckpt_open(&c, s, 1), CKS_ELIMIT, "ckpt_001", "nested deeper than 16");
    cks_source_free(s);
    cks_tmpdir_remove(root);
}

static void test_limits__shard_index_bytes(void **state)
{
    char *root = cks_tmpdir_new("limits");
    static const char ix[] = "{\"weight_map\": {\"w\": \"model-1.safetensors\"}}";
    size_t n = CKS_MAX_INDEX_BYTES + 1;
    char *text = cks_padded_json(ix, n);
    for (int past = 0; past < 2; past++) {
        char p[4096];
        snprintf(p, sizeof p, "%s/ckpt_00%d", root, past);
        mkdir_ok(p);
        snprintf(p, sizeof p, "%s/ckpt_00%d/model-1.safetensors", root, past);
        cks_write_file(p, "x", 1);
        snprintf(p, sizeof p, "%s/ckpt_00%d/model.safetensors.index.json", root, past);
        cks_write_file(p, text, CKS_MAX_INDEX_BYTES + (size_t)past);
    }
    free(text);
    cks_source *s;
    cks_ckpt *c;
    cks_weight_files wf;
    assert_int_equal(cks_source_open(&s, root, NULL), 0);
    for (int past = 0; past < 2; past++) {
        assert_int_equal(cks_ckpt_open(&c, s, (size_t)past), 0);
        int rc = cks_weight_files_find(c, &wf);
        if (past) {
            cks_expect_error(rc, CKS_ELIMIT, "model.safetensors.index.json", "67108864");
        } else {
            assert_int_equal(rc, 0);
            assert_int_equal(wf.nfiles, 1);
            cks_weight_files_release(&wf);
        }
        cks_ckpt_free(c);
    }
    cks_source_free(s);
    cks_tmpdir_remove(root);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_limits__safetensors_header_bytes),
        cmocka_unit_test(test_limits__tensor_dims),
        cmocka_unit_test(test_limits__config_sizes),
        cmocka_unit_test(test_limits__config_bytes),
        cmocka_unit_test(test_limits__lfs_pointer_bytes_and_size),
        cmocka_unit_test(test_limits__zip_name_version_comment),
        cmocka_unit_test(test_limits__pickle_bytes),
        cmocka_unit_test(test_limits__pickle_string),
        cmocka_unit_test(test_limits__pickle_stack),
        cmocka_unit_test(test_limits__pickle_marks),
        cmocka_unit_test(test_limits__pickle_memo),
        cmocka_unit_test(test_limits__pickle_objects),
        cmocka_unit_test(test_limits__pickle_items),
        cmocka_unit_test(test_limits__folder_depth),
        cmocka_unit_test(test_limits__shard_index_bytes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
