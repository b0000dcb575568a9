/* Resource limits of metrics/: the tokenizer's (CKS_TOK_MAX_*, tokenizer.h) and the
 * spectral statistics' matrix side (CKS_SPECTRAL_MAX_SIDE, esd.h). An input at each limit
 * is accepted and one just past it refused. For the byte limits of whole files and texts, the
 * input at the limit is shown to pass the size check (it is then refused for its content,
 * at byte 0); those inputs live in anonymous mappings whose untouched pages cost nothing.
 * The piece-count limit (4M pieces) is in test_limits_slow.c. */
#include "error.h"
#include "esd.h"
#include "testutil.h"
#include "tokenizer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

static void test_limits__tokenizer_file_bytes(void **state)
{
    size_t n = (size_t)CKS_TOK_MAX_FILE_BYTES + 1;
    unsigned char *b = cks_big_zeroed(n);
    cks_tokenizer *t;
    /* at the limit the content is read (and refused: zeros are no model) */
    cks_expect_error(cks_tokenizer_load_spm(&t, b, CKS_TOK_MAX_FILE_BYTES, "tokenizer.model"),
                     CKS_EFORMAT, "tokenizer.model", NULL);
    cks_expect_error(cks_tokenizer_load_spm(&t, b, n, "tokenizer.model"), CKS_ELIMIT,
                     "tokenizer.model", "268435456");
    cks_expect_error(
        cks_tokenizer_load_hf(&t, (const char *)b, CKS_TOK_MAX_FILE_BYTES, "tokenizer.json"),
        CKS_EFORMAT, "tokenizer.json", "not valid JSON");
    cks_expect_error(cks_tokenizer_load_hf(&t, (const char *)b, n, "tokenizer.json"), CKS_ELIMIT,
                     "tokenizer.json", "268435456");
    munmap(b, n);
    /* the same through a file (sparse: nothing is written) */
    char *dir = cks_tmpdir_new("limits"), path[4096];
    snprintf(path, sizeof path, "%s/tokenizer.model", dir);
    cks_write_file(path, "", 0);
    assert_int_equal(truncate(path, (off_t)CKS_TOK_MAX_FILE_BYTES), 0);
    cks_expect_error(cks_tokenizer_load_file(&t, path), CKS_EFORMAT, "tokenizer.model", NULL);
    assert_int_equal(truncate(path, (off_t)CKS_TOK_MAX_FILE_BYTES + 1), 0);
    cks_expect_error(cks_tokenizer_load_file(&t, path), CKS_ELIMIT, "tokenizer.model", NULL);
    cks_tmpdir_remove(dir);
}

/* ---- one piece's bytes ---- */

/* tests/data/tok/small.model with one more NORMAL piece of len bytes ('q' repeated): a
 * repeated field may follow the others, and the piece takes the next id. */
static int spm_with_piece(size_t len, int64_t *vocab)
{
    size_t n;
    char *path = cks_test_data("tok/small.model");
    unsigned char *base = cks_read_test_file(path, &n);
    unsigned char *m = malloc(n + len + 64), hdr[16];
    assert_non_null(m);
    memcpy(m, base, n);
    size_t k = cks_put_varint(hdr, len), inner = 1 + k + len + 5 + 2, at = n;
    m[at++] = 0x0A; /* ModelProto.pieces (1, length-delimited) */
    at += cks_put_varint(m + at, inner);
    m[at++] = 0x0A; /* SentencePiece.piece (1) */
    memcpy(m + at, hdr, k);
    at += k;
    memset(m + at, 'q', len);
    at += len;
    static const unsigned char score_type[] = {0x15, 0, 0, 0x80, 0xBF, 0x18, 0x01}; /* -1, NORMAL */
    memcpy(m + at, score_type, sizeof score_type);
    at += sizeof score_type;
    cks_tokenizer *t;
    cks_error_clear();
    int rc = cks_tokenizer_load_spm(&t, m, at, "small.model");
    if (rc == 0) {
        *vocab = cks_tokenizer_vocab_size(t);
        const char *p = cks_tokenizer_piece(t, (int32_t)(*vocab - 1));
        assert_int_equal(strlen(p), len);
        cks_tokenizer_free(t);
    }
    free(m);
    free(base);
    free(path);
    return rc;
}

/* A Hugging Face BPE tokenizer whose vocabulary is {"a": 0, "b": 1, <extra>: 2}, with
 * added tokens "<t0>".."<tN-1>" at ids 3.. */
static char *hf_json(const char *extra, size_t nadded)
{
    size_t cap = strlen(extra) + 64 * nadded + 256, at = 0;
    char *j = malloc(cap);
    assert_non_null(j);
    at +=
        (size_t)snprintf(j + at, cap - at,
                         "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"b\": 1, \"%s\": "
                         "2}, \"merges\": []}, \"added_tokens\": [",
                         extra);
    for (size_t i = 0; i < nadded; i++)
        at += (size_t)snprintf(j + at, cap - at,
                               "%s{\"id\": %zu, \"content\": \"<t%zu>\", "
                               "\"special\": true}",
                               i ? ", " : "", 3 + i, i);
    snprintf(j + at, cap - at, "]}");
    return j;
}

static void test_limits__piece_bytes(void **state)
{
    int64_t vocab = 0;
    assert_int_equal(spm_with_piece(CKS_TOK_MAX_PIECE_BYTES, &vocab), 0);
    assert_true(vocab > 256);
    cks_expect_error(spm_with_piece(CKS_TOK_MAX_PIECE_BYTES + 1, &vocab), CKS_ELIMIT, "small.model",
                     "bytes (limit 4096)");
    for (int past = 0; past < 2; past++) {
        char *piece = malloc(CKS_TOK_MAX_PIECE_BYTES + 2);
        memset(piece, 'q', CKS_TOK_MAX_PIECE_BYTES + (size_t)past);
        piece[CKS_TOK_MAX_PIECE_BYTES + past] = '\0';
        char *j = hf_json(piece, 0);
        cks_tokenizer *t;
        int rc = cks_tokenizer_load_hf(&t, j, strlen(j), "tokenizer.json");
        if (past) {
            cks_expect_error(rc, CKS_ELIMIT, "tokenizer.json", "(limit 4096)");
        } else {
            assert_int_equal(rc, 0);
            assert_int_equal(strlen(cks_tokenizer_piece(t, 2)), CKS_TOK_MAX_PIECE_BYTES);
            cks_tokenizer_free(t);
        }
        free(j);
        free(piece);
    }
}

static void test_limits__hf_added_tokens(void **state)
{
    for (int past = 0; past < 2; past++) {
        char *j = hf_json("ab", CKS_TOK_MAX_ADDED + (size_t)past);
        cks_tokenizer *t;
        int rc = cks_tokenizer_load_hf(&t, j, strlen(j), "tokenizer.json");
        if (past) {
            cks_expect_error(rc, CKS_ELIMIT, "tokenizer.json", "more than 65536 added tokens");
        } else {
            assert_int_equal(rc, 0);
            assert_int_equal(cks_tokenizer_vocab_size(t), 3 + CKS_TOK_MAX_ADDED);
            int32_t *ids = NULL;
            size_t n = 0;
            assert_int_equal(cks_tokenizer_encode(t, "a<t65535>b", 10, &ids, &n), 0);
            assert_int_equal(n, 3);
            assert_int_equal(ids[1], 3 + 65535);
            free(ids);
            cks_tokenizer_free(t);
        }
        free(j);
    }
}

static void test_limits__encode_text_bytes(void **state)
{
    char *j = hf_json("ab", 0);
    cks_tokenizer *t;
    assert_int_equal(cks_tokenizer_load_hf(&t, j, strlen(j), "tokenizer.json"), 0);
    free(j);
    size_t n = CKS_TOK_MAX_TEXT_BYTES + 1;
    unsigned char *b = cks_big_zeroed(n);
    b[0] = 0xFF; /* at the limit the text is read, and refused at its first byte */
    int32_t *ids = NULL;
    size_t k = 0;
    cks_expect_error(cks_tokenizer_encode(t, (const char *)b, CKS_TOK_MAX_TEXT_BYTES, &ids, &k),
                     CKS_EFORMAT, "byte offset 0", NULL);
    cks_expect_error(cks_tokenizer_encode(t, (const char *)b, n, &ids, &k), CKS_ELIMIT, "268435457",
                     "268435456");
    munmap(b, n);
    cks_tokenizer_free(t);
}

static void test_limits__tokenizer_config_bytes(void **state)
{
    char *root = cks_tmpdir_new("limits"), p[4096];
    static const char cfg[] = "{\"add_bos_token\": false}";
    size_t n = CKS_TOK_MAX_CONFIG_BYTES + 1;
    char *text = cks_padded_json(cfg, n);
    for (int past = 0; past < 2; past++) {
        snprintf(p, sizeof p, "%s/ckpt_00%d", root, past);
        assert_int_equal(mkdir(p, 0755), 0);
        snprintf(p, sizeof p, "%s/ckpt_00%d/tokenizer_config.json", root, past);
        cks_write_file(p, text, CKS_TOK_MAX_CONFIG_BYTES + (size_t)past);
    }
    free(text);
    cks_source *s;
    cks_ckpt *c;
    int bos = -2;
    assert_int_equal(cks_source_open(&s, root, NULL), 0);
    assert_int_equal(cks_ckpt_open(&c, s, 0), 0);
    assert_int_equal(cks_tokenizer_ckpt_add_bos(c, &bos), 0);
    assert_int_equal(bos, 0);
    cks_ckpt_free(c);
    assert_int_equal(cks_ckpt_open(&c, s, 1), 0);
    cks_expect_error(cks_tokenizer_ckpt_add_bos(c, &bos), CKS_ELIMIT, "tokenizer_config.json",
                     "4194304");
    cks_ckpt_free(c);
    cks_source_free(s);
    cks_tmpdir_remove(root);
}

/* ---- the spectral statistics' matrix side ---- */

static void test_limits__spectral_side(void **state)
{
    /* the check reads and allocates nothing: views without data are enough */
    int64_t max = CKS_SPECTRAL_MAX_SIDE;
    cks_tensor t = {.name = "w", .dtype = CKS_DT_BF16, .ndim = 2, .shape = {max, 4 * max}};
    t.numel = 4 * max * max;
    t.nbytes = (size_t)t.numel * 2;
    assert_int_equal(cks_esd_check(&t), 0); /* the smaller side decides */
    t.shape[0] = 4 * max, t.shape[1] = max;
    assert_int_equal(cks_esd_check(&t), 0);
    t.shape[0] = t.shape[1] = max + 1;
    t.numel = (max + 1) * (max + 1);
    t.nbytes = (size_t)t.numel * 2;
    cks_expect_error(cks_esd_check(&t), CKS_ELIMIT, "'w'", "at most 16384");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_limits__tokenizer_file_bytes),
        cmocka_unit_test(test_limits__piece_bytes),
        cmocka_unit_test(test_limits__hf_added_tokens),
        cmocka_unit_test(test_limits__encode_text_bytes),
        cmocka_unit_test(test_limits__tokenizer_config_bytes),
        cmocka_unit_test(test_limits__spectral_side),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
