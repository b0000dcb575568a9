/* Tokenizer models built by hand: a SentencePiece protobuf written byte by byte and small
 * tokenizer.json documents. The little valid ones encode to the ids worked out by hand in
 * each test (the merges applied on paper); every broken one is refused with CKS_EFORMAT or
 * CKS_EUNSUPPORTED and a message naming the file and what was wrong; invalid UTF-8 text is
 * refused with its byte offset. Reference ids from SentencePiece: test_tokenizer.c. */
#include "testutil.h"

#include "error.h"
#include "tokenizer.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static cks_tokenizer *load_path(const char *path)
{
    cks_tokenizer *t = NULL;
    int rc = cks_tokenizer_load_file(&t, path);
    if (rc)
        fail_msg("loading %s: %s", path, cks_error_last());
    return t;
}

static char *source_path(const char *rel)
{
    const char *root = getenv("CKS_SOURCE_DIR");
    char buf[4096];
    snprintf(buf, sizeof buf, "%s/%s", root ? root : ".", rel);
    return strdup(buf);
}

static int load_hf_text(const char *json, cks_tokenizer **t);

static void test_tokenizer__hf_ignore_merges_takes_whole_words(void **state)
{
    static const char doc[] = "{\"model\": {\"ignore_merges\": %s, \"vocab\": {\"a\": 0, "
                              "\"b\": 1, \"ab\": 2, \"abb\": 3}, \"merges\": [\"a b\"]}}";
    char buf[256];
    int32_t want[2][2] = {{2, 1}, {3, -1}};
    for (int k = 0; k < 2; k++) {
        snprintf(buf, sizeof buf, doc, k ? "true" : "false");
        cks_tokenizer *t;
        int32_t *ids;
        size_t n;
        assert_int_equal(load_hf_text(buf, &t), 0);
        assert_int_equal(cks_tokenizer_encode(t, "abb", 3, &ids, &n), 0);
        assert_int_equal(n, k ? 1 : 2);
        assert_memory_equal(ids, want[k], n * sizeof *ids);
        free(ids);
        cks_tokenizer_free(t);
    }
}

/* ---- invalid UTF-8 ---- */

static void test_tokenizer__invalid_utf8_is_refused_with_offset(void **state)
{
    static const struct {
        const char *text;
        size_t len, offset;
    } cases[] = {
        {"ab\x80", 3, 2},              /* lone continuation byte */
        {"a\xC0\x80", 3, 1},           /* overlong NUL */
        {"xy\xE0\x80\x80", 5, 2},      /* overlong 3-byte */
        {"\xED\xA0\x80", 3, 0},        /* UTF-16 surrogate */
        {"ok \xF4\x90\x80\x80", 7, 3}, /* past U+10FFFF */
        {"\xF5\x80\x80\x80", 4, 0},    /* invalid lead byte */
        {"end\xE2\x82", 5, 3},         /* truncated sequence */
        {"caf\xC3\xA9\xFF", 6, 5},     /* valid é, then 0xFF */
    };
    char *p1 = source_path("tests/data/tok/small.model");
    char *p2 = source_path("tests/data/tok/small.tokenizer.json");
    cks_tokenizer *ts[2] = {load_path(p1), load_path(p2)};
    for (int k = 0; k < 2; k++) {
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
            int32_t *ids = NULL;
            size_t n = 0;
            assert_int_equal(cks_tokenizer_encode(ts[k], cases[i].text, cases[i].len, &ids, &n),
                             CKS_EFORMAT);
            char want[64];
            snprintf(want, sizeof want, "byte offset %zu ", cases[i].offset);
            if (!strstr(cks_error_last(), want))
                fail_msg("case %zu: message '%s' lacks '%s'", i, cks_error_last(), want);
            assert_null(ids);
        }
        cks_tokenizer_free(ts[k]);
    }
    free(p1);
    free(p2);
}

/* ---- a protobuf writer for broken models ---- */

typedef struct {
    unsigned char *p;
    size_t n, cap;
} pbw;

static void pbw_raw(pbw *w, const void *p, size_t n)
{
    if (w->n + n > w->cap) {
        w->cap = (w->n + n) * 2 + 64;
        w->p = realloc(w->p, w->cap);
        assert_non_null(w->p);
    }
    memcpy(w->p + w->n, p, n);
    w->n += n;
}

static void pbw_varint(pbw *w, uint64_t v)
{
    do {
        unsigned char b = (unsigned char)(v & 0x7F);
        v >>= 7;
        if (v)
            b |= 0x80;
        pbw_raw(w, &b, 1);
    } while (v);
}

static void pbw_len(pbw *w, uint32_t field, const void *p, size_t n)
{
    pbw_varint(w, (uint64_t)field << 3 | 2);
    pbw_varint(w, n);
    pbw_raw(w, p, n);
}

static void pbw_int(pbw *w, uint32_t field, uint64_t v)
{
    pbw_varint(w, (uint64_t)field << 3);
    pbw_varint(w, v);
}

static void pbw_piece(pbw *w, const char *piece, float score, int type)
{
    pbw m = {0};
    pbw_len(&m, 1, piece, strlen(piece));
    pbw_varint(&m, 2 << 3 | 5);
    pbw_raw(&m, &score, 4);
    pbw_int(&m, 3, (uint64_t)type);
    pbw_len(w, 1, m.p, m.n);
    free(m.p);
}

/* A tiny valid BPE model: <unk> <s> </s> ▁ a b ab ▁ab; extra lets a test add records. */
static void mini_model(pbw *w, int model_type, const char *norm_name)
{
    static const char *normal[] = {"\xe2\x96\x81", "a", "b", "ab", "\342\226\201ab"};
    pbw_piece(w, "<unk>", 0, 2);
    pbw_piece(w, "<s>", 0, 3);
    pbw_piece(w, "</s>", 0, 3);
    for (int i = 0; i < 5; i++)
        pbw_piece(w, normal[i], -(float)i, 1);
    pbw tr = {0}, nm = {0};
    pbw_int(&tr, 3, (uint64_t)model_type);
    pbw_len(w, 2, tr.p, tr.n);
    pbw_len(&nm, 1, norm_name, strlen(norm_name));
    pbw_int(&nm, 4, 0);
    pbw_len(w, 3, nm.p, nm.n);
    free(tr.p);
    free(nm.p);
}

static int load_spm_bytes(const pbw *w, cks_tokenizer **t)
{
    *t = NULL;
    return cks_tokenizer_load_spm(t, w->p, w->n, "broken.model");
}

static void expect_spm_error(const pbw *w, int code, const char *needle)
{
    cks_tokenizer *t;
    int rc = load_spm_bytes(w, &t);
    if (rc != code || !strstr(cks_error_last(), needle) ||
        !strstr(cks_error_last(), "broken.model"))
        fail_msg("expected %d with '%s', got %d: %s", code, needle, rc, cks_error_last());
    assert_null(t);
}

static void test_tokenizer__mini_model_encodes_by_hand(void **state)
{
    pbw w = {0};
    mini_model(&w, 2, "identity");
    cks_tokenizer *t;
    assert_int_equal(load_spm_bytes(&w, &t), 0);
    /* "ab ab" -> "▁ab▁ab": ▁+a? no piece; a+b = ab (score -3) merges first, then ▁+ab = ▁ab
     * (score -4) at both places; 'c' is unknown and without byte_fallback one <unk>. */
    int32_t *ids;
    size_t n;
    assert_int_equal(cks_tokenizer_encode(t, "ab abcc", 7, &ids, &n), 0);
    assert_int_equal(n, 3);
    assert_int_equal(ids[0], 7);
    assert_int_equal(ids[1], 7);
    assert_int_equal(ids[2], 0);
    free(ids);
    cks_tokenizer_free(t);
    free(w.p);
}

static void test_tokenizer__unsupported_model_type_is_refused(void **state)
{
    pbw w = {0};
    mini_model(&w, 1, "identity");
    expect_spm_error(&w, CKS_EUNSUPPORTED, "model_type UNIGRAM is not supported");
    free(w.p);
    /* No trainer_spec at all: proto2's default model_type is UNIGRAM. */
    pbw v = {0};
    pbw_piece(&v, "<unk>", 0, 2);
    expect_spm_error(&v, CKS_EUNSUPPORTED, "UNIGRAM");
    free(v.p);
}

static void test_tokenizer__unsupported_normalizer_is_refused(void **state)
{
    pbw w = {0};
    mini_model(&w, 2, "nmt_nfkc");
    expect_spm_error(&w, CKS_EUNSUPPORTED, "normalization rule 'nmt_nfkc'");
    /* A precompiled charsmap (appended normalizer_spec merges into the first). */
    pbw nm = {0};
    pbw_len(&nm, 2, "\x04\x00\x00\x00xxxx", 8);
    pbw v = {0};
    mini_model(&v, 2, "identity");
    pbw_len(&v, 3, nm.p, nm.n);
    expect_spm_error(&v, CKS_EUNSUPPORTED, "charsmap of 8 bytes");
    free(nm.p);
    free(v.p);
    free(w.p);
}

static void test_tokenizer__truncated_protobuf_is_refused(void **state)
{
    char *p = source_path("tests/data/tok/small.model"), *data = NULL;
    size_t len;
    assert_int_equal(cks_read_file(p, 1u << 20, &data, &len), 0);
    /* Cuts between top-level records leave a shorter valid protobuf: note where they are. */
    unsigned char *boundary = calloc(len + 1, 1);
    for (size_t i = 0; i < len;) {
        uint64_t v = 0;
        boundary[i] = 1;
        i++; /* key: fields 1..3, one byte */
        for (int sh = 0;; sh += 7) {
            v |= (uint64_t)(data[i] & 0x7F) << sh;
            if (!(data[i++] & 0x80))
                break;
        }
        i += v;
    }
    /* Every other cut in the first pieces and the last records fails cleanly. */
    for (size_t cut = 1; cut < len; cut += cut < 400 || cut > len - 400 ? 1 : 97) {
        if (boundary[cut])
            continue;
        cks_tokenizer *t = NULL;
        int rc = cks_tokenizer_load_spm(&t, data, cut, "small.model");
        if (rc == 0)
            fail_msg("a model cut at %zu of %zu bytes was accepted", cut, len);
        assert_null(t);
        assert_true(strstr(cks_error_last(), "small.model") != NULL);
    }
    free(boundary);
    cks_tokenizer *t = NULL;
    assert_int_equal(cks_tokenizer_load_spm(&t, data, len - 1, "small.model"), CKS_EFORMAT);
    assert_non_null(strstr(cks_error_last(), "truncated protobuf"));
    free(data);
    free(p);
}

static void test_tokenizer__varint_overflow_is_refused(void **state)
{
    pbw w = {0};
    mini_model(&w, 2, "identity");
    static const unsigned char big[] = {0x20, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
                                        0xFF, 0xFF, 0xFF, 0xFF, 0x7F}; /* field 4, 11 bytes */
    pbw_raw(&w, big, sizeof big);
    expect_spm_error(&w, CKS_EFORMAT, "overflows 64 bits");
    free(w.p);
    pbw v = {0};
    static const unsigned char ten[] = {0x20, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
                                        0xFF, 0xFF, 0xFF, 0xFF, 0x02}; /* 10th byte > 1 */
    mini_model(&v, 2, "identity");
    pbw_raw(&v, ten, sizeof ten);
    expect_spm_error(&v, CKS_EFORMAT, "overflows 64 bits");
    free(v.p);
}

static void test_tokenizer__length_past_end_is_refused(void **state)
{
    pbw w = {0};
    mini_model(&w, 2, "identity");
    static const unsigned char past[] = {0x0A, 0x7F, 0x0A, 0x01}; /* piece of 127 bytes: 2 left */
    pbw_raw(&w, past, sizeof past);
    expect_spm_error(&w, CKS_EFORMAT, "has length 127 but the file ends 2 bytes later");
    free(w.p);
    /* A piece string longer than its enclosing piece record. */
    pbw v = {0};
    mini_model(&v, 2, "identity");
    static const unsigned char inner[] = {0x0A, 0x03, 0x0A, 0x05, 'x'};
    pbw_raw(&v, inner, sizeof inner);
    pbw_int(&v, 9, 1); /* more of the file after the piece record */
    expect_spm_error(&v, CKS_EFORMAT, "past the end of a piece");
    free(v.p);
}

static void test_tokenizer__piece_count_over_limit_is_refused(void **state)
{
    pbw w = {0};
    static const unsigned char one[] = {0x0A, 0x03, 0x0A, 0x01, 'a'};
    w.cap = (size_t)(CKS_TOK_MAX_PIECES + 1) * sizeof one;
    w.p = malloc(w.cap);
    assert_non_null(w.p);
    for (int i = 0; i <= CKS_TOK_MAX_PIECES; i++)
        pbw_raw(&w, one, sizeof one);
    expect_spm_error(&w, CKS_ELIMIT, "more than 4194304 pieces");
    free(w.p);
}

static void test_tokenizer__bad_pieces_are_refused(void **state)
{
    static const struct {
        const char *piece;
        int type;
        float score;
        int code;
        const char *needle;
    } cases[] = {
        {"a", 1, 0, CKS_EFORMAT, "piece 'a' is defined twice"},
        {"<unk2>", 2, 0, CKS_EFORMAT, "two UNKNOWN pieces"},
        {"<0x41>", 6, 0, CKS_EFORMAT, "although byte_fallback is off"},
        {"", 1, 0, CKS_EFORMAT, "piece 8 is empty"},
        {"z", 9, 0, CKS_EFORMAT, "unknown type 9"},
        {"z", 1, NAN, CKS_EFORMAT, "NaN score"},
        {"\xC3", 1, 0, CKS_EFORMAT, "not valid UTF-8"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        pbw w = {0};
        mini_model(&w, 2, "identity");
        pbw_piece(&w, cases[i].piece, cases[i].score, cases[i].type);
        expect_spm_error(&w, cases[i].code, cases[i].needle);
        free(w.p);
    }
    /* Too long a piece; a NUL inside; no UNKNOWN piece; byte_fallback without bytes. */
    char *big = malloc(CKS_TOK_MAX_PIECE_BYTES + 2);
    memset(big, 'x', CKS_TOK_MAX_PIECE_BYTES + 1);
    big[CKS_TOK_MAX_PIECE_BYTES + 1] = '\0';
    pbw w = {0};
    mini_model(&w, 2, "identity");
    pbw_piece(&w, big, 0, 1);
    expect_spm_error(&w, CKS_ELIMIT, "bytes (limit 4096)");
    free(w.p);
    free(big);
    pbw v = {0};
    pbw_len(&v, 1, "\x0a\x03x\x00y", 5);
    pbw tr = {0};
    pbw_int(&tr, 3, 2);
    pbw_len(&v, 2, tr.p, tr.n);
    expect_spm_error(&v, CKS_EFORMAT, "NUL byte");
    free(v.p);
    pbw u = {0};
    pbw_piece(&u, "a", 0, 1);
    pbw_len(&u, 2, tr.p, tr.n);
    expect_spm_error(&u, CKS_EFORMAT, "no UNKNOWN piece");
    free(u.p);
    pbw b = {0};
    mini_model(&b, 2, "identity");
    pbw tb = {0};
    pbw_int(&tb, 35, 1);
    pbw_len(&b, 2, tb.p, tb.n);
    pbw_piece(&b, "<0x41>", 0, 6);
    expect_spm_error(&b, CKS_EFORMAT, "only 1 of the 256 byte pieces");
    free(b.p);
    free(tb.p);
    free(tr.p);
}

static void test_tokenizer__bad_wire_types_are_refused(void **state)
{
    pbw w = {0};
    mini_model(&w, 2, "identity");
    static const unsigned char group[] = {0x23}; /* field 4, start group */
    pbw_raw(&w, group, 1);
    expect_spm_error(&w, CKS_EFORMAT, "wire type 3");
    free(w.p);
    pbw v = {0};
    mini_model(&v, 2, "identity");
    pbw_int(&v, 1, 5); /* pieces as a varint */
    expect_spm_error(&v, CKS_EFORMAT, "expected 2");
    free(v.p);
    pbw z = {0};
    static const unsigned char zero[] = {0x02, 0x00}; /* field number 0 */
    pbw_raw(&z, zero, 2);
    expect_spm_error(&z, CKS_EFORMAT, "invalid field number 0");
    free(z.p);
}

/* ---- Hugging Face rejections ---- */

static const char hf_head[] =
    "{\"added_tokens\": [], \"normalizer\": %s, \"pre_tokenizer\": %s, "
    "\"model\": {\"type\": \"%s\", \"unk_token\": \"<unk>\", \"byte_fallback\": false, "
    "\"vocab\": {%s}, \"merges\": [%s]}}";

static int load_hf_text(const char *json, cks_tokenizer **t)
{
    *t = NULL;
    return cks_tokenizer_load_hf(t, json, strlen(json), "broken.json");
}

static void expect_hf(const char *norm, const char *pre, const char *type, const char *vocab,
                      const char *merges, int code, const char *needle)
{
    char buf[2048];
    snprintf(buf, sizeof buf, hf_head, norm, pre, type, vocab, merges);
    cks_tokenizer *t;
    int rc = load_hf_text(buf, &t);
    if (rc != code || (needle && !strstr(cks_error_last(), needle)) ||
        (code && !strstr(cks_error_last(), "broken.json")))
        fail_msg("expected %d with '%s', got %d: %s", code, needle ? needle : "", rc,
                 cks_error_last());
    if (!code) {
        assert_non_null(t);
        cks_tokenizer_free(t);
    }
}

static const char vocab3[] = "\"<unk>\": 0, \"a\": 1, \"b\": 2, \"ab\": 3";

static void test_tokenizer__hf_valid_minimal_loads_and_merges(void **state)
{
    expect_hf("null", "null", "BPE", vocab3, "\"a b\"", 0, NULL);
    char buf[1024];
    snprintf(buf, sizeof buf, hf_head, "null", "null", "BPE", vocab3, "[\"a\", \"b\"]");
    cks_tokenizer *t;
    assert_int_equal(load_hf_text(buf, &t), 0);
    int32_t *ids;
    size_t n;
    /* "abxa": ab merges; x is unknown (no byte fallback): one <unk>; a stays. */
    assert_int_equal(cks_tokenizer_encode(t, "abxa", 4, &ids, &n), 0);
    assert_int_equal(n, 3);
    assert_int_equal(ids[0], 3);
    assert_int_equal(ids[1], 0);
    assert_int_equal(ids[2], 1);
    assert_int_equal(cks_tokenizer_bos_id(t), -1);
    free(ids);
    cks_tokenizer_free(t);
}

static void test_tokenizer__hf_malformed_json_is_refused(void **state)
{
    static const char *docs[] = {"{\"model\": {\"vocab\": {\"a\": 0}", "[1, 2]", "{}",
                                 "{\"model\": {\"type\": \"BPE\", \"vocab\": [], \"merges\": []}}",
                                 "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}}}"};
    static const char *needles[] = {"not valid JSON", "not an object", "no \"model\" object",
                                    "model.vocab is missing", "model.merges is missing"};
    for (size_t i = 0; i < 5; i++) {
        cks_tokenizer *t;
        assert_int_not_equal(load_hf_text(docs[i], &t), 0);
        if (!strstr(cks_error_last(), needles[i]) || !strstr(cks_error_last(), "broken.json"))
            fail_msg("doc %zu: '%s' lacks '%s'", i, cks_error_last(), needles[i]);
        assert_null(t);
    }
}

static void test_tokenizer__hf_bad_merges_are_refused(void **state)
{
    expect_hf("null", "null", "BPE", vocab3, "\"a c\"", CKS_EFORMAT, "names unknown token 'c'");
    expect_hf("null", "null", "BPE", vocab3, "[\"q\", \"b\"]", CKS_EFORMAT,
              "names unknown token 'q'");
    expect_hf("null", "null", "BPE", vocab3, "\"b a\"", CKS_EFORMAT, "'ba' is not in the vocab");
    expect_hf("null", "null", "BPE", vocab3, "\"ab\"", CKS_EFORMAT, "is not two tokens");
    expect_hf("null", "null", "BPE", vocab3, "\"a b b\"", CKS_EFORMAT, "is not two tokens");
    expect_hf("null", "null", "BPE", vocab3, "[\"a\"]", CKS_EFORMAT, "neither");
    expect_hf("null", "null", "BPE", vocab3, "7", CKS_EFORMAT, "neither");
}

static void test_tokenizer__hf_bad_vocab_is_refused(void **state)
{
    expect_hf("null", "null", "BPE", "\"<unk>\": 0, \"a\": 0", "", CKS_EFORMAT, "id 0 is given to");
    expect_hf("null", "null", "BPE", "\"<unk>\": 0, \"a\": 2", "", CKS_EFORMAT,
              "no token has id 1");
    expect_hf("null", "null", "BPE", "\"<unk>\": 0, \"a\": -1", "", CKS_EFORMAT, "outside");
    expect_hf("null", "null", "BPE", "\"<unk>\": 0, \"a\": \"1\"", "", CKS_EFORMAT, "outside");
    expect_hf("null", "null", "BPE", "\"<unk>\": 0, \"\": 1", "", CKS_EFORMAT,
              "empty vocabulary token");
    expect_hf("null", "null", "BPE", "\"a\": 0", "", CKS_EFORMAT, "unk_token is not");
}

static void test_tokenizer__hf_unsupported_parts_are_refused(void **state)
{
    expect_hf("null", "null", "Unigram", vocab3, "", CKS_EUNSUPPORTED, "model type 'Unigram'");
    expect_hf("{\"type\": \"NFKC\"}", "null", "BPE", vocab3, "", CKS_EUNSUPPORTED,
              "normalizer 'NFKC'");
    expect_hf("{\"type\": \"Replace\", \"pattern\": {\"Regex\": \" +\"}, \"content\": \"x\"}",
              "null", "BPE", vocab3, "", CKS_EUNSUPPORTED, "Regex");
    expect_hf("{\"type\": \"Sequence\", \"normalizers\": [{\"type\": \"Sequence\"}]}", "null",
              "BPE", vocab3, "", CKS_EUNSUPPORTED, "nested normalizer");
    expect_hf("null", "{\"type\": \"Whitespace\"}", "BPE", vocab3, "", CKS_EUNSUPPORTED,
              "pre_tokenizer 'Whitespace'");
    expect_hf("null", "{\"type\": \"Metaspace\", \"replacement\": \"ab\"}", "BPE", vocab3, "",
              CKS_EFORMAT, "not one character");
    const char *added = "{\"added_tokens\": [{\"id\": 4, \"content\": \"<x>\", \"lstrip\": true}], "
                        "\"model\": {\"vocab\": {\"a\": 0, \"b\": 1, \"c\": 2, \"d\": 3}, "
                        "\"merges\": []}}";
    cks_tokenizer *t;
    assert_int_equal(load_hf_text(added, &t), CKS_EUNSUPPORTED);
    assert_non_null(strstr(cks_error_last(), "lstrip"));
    const char *clash = "{\"added_tokens\": [{\"id\": 0, \"content\": \"<x>\"}], "
                        "\"model\": {\"vocab\": {\"a\": 0}, \"merges\": []}}";
    assert_int_equal(load_hf_text(clash, &t), CKS_EFORMAT);
    assert_non_null(strstr(cks_error_last(), "has id 0, which is 'a'"));
}

static void test_tokenizer__hf_normalizer_growth_is_bounded(void **state)
{
    char big[4200], doc[8192];
    memset(big, 'a', 4100);
    big[4100] = '\0';
    snprintf(doc, sizeof doc,
             "{\"normalizer\": {\"type\": \"Replace\", \"pattern\": {\"String\": \"a\"},"
             " \"content\": \"%s\"}, \"model\": {\"vocab\": {\"a\": 0}, \"merges\": []}}",
             big);
    cks_tokenizer *t;
    assert_int_equal(load_hf_text(doc, &t), 0);
    int32_t *ids = NULL;
    size_t n;
    assert_int_equal(cks_tokenizer_encode(t, "aaaa", 4, &ids, &n), CKS_ELIMIT);
    assert_non_null(strstr(cks_error_last(), "more than 8 times longer"));
    assert_int_equal(cks_tokenizer_encode(t, "a", 1, &ids, &n), 0); /* 4100 <= 8 + 4096 */
    assert_int_equal(n, 4100);
    free(ids);
    cks_tokenizer_free(t);
}

/* Added tokens beyond model.vocab extend the id space and are split out of the text. */
static void test_tokenizer__hf_added_tokens_extend_vocab(void **state)
{
    const char *doc = "{\"added_tokens\": [{\"id\": 3, \"content\": \"<pad>\", \"special\": true,"
                      " \"normalized\": false}, {\"id\": 4, \"content\": \"xy\","
                      " \"normalized\": true}],"
                      " \"normalizer\": {\"type\": \"Prepend\", \"prepend\": \"_\"},"
                      " \"model\": {\"unk_token\": \"?\", \"fuse_unk\": true,"
                      " \"vocab\": {\"?\": 0, \"_\": 1, \"x\": 2}, \"merges\": []}}";
    cks_tokenizer *t;
    assert_int_equal(load_hf_text(doc, &t), 0);
    assert_int_equal(cks_tokenizer_vocab_size(t), 5);
    assert_string_equal(cks_tokenizer_piece(t, 3), "<pad>");
    int32_t *ids;
    size_t n;
    /* "x<pad>_xyzz": split at <pad> -> "x" | <pad> | "_xyzz"; each part normalized on its
     * own ("_x", "__xyzz"); the normalized token "xy" is matched as its normalized form
     * "_xy", so "__xyzz" -> "_" | <xy> | "zz" -> zz is one fused unk. */
    assert_int_equal(cks_tokenizer_encode(t, "x<pad>_xyzz", 11, &ids, &n), 0);
    int32_t want[] = {1, 2, 3, 1, 4, 0};
    assert_int_equal(n, 6);
    assert_memory_equal(ids, want, sizeof want);
    free(ids);
    cks_tokenizer_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tokenizer__hf_ignore_merges_takes_whole_words),
        cmocka_unit_test(test_tokenizer__invalid_utf8_is_refused_with_offset),
        cmocka_unit_test(test_tokenizer__mini_model_encodes_by_hand),
        cmocka_unit_test(test_tokenizer__unsupported_model_type_is_refused),
        cmocka_unit_test(test_tokenizer__unsupported_normalizer_is_refused),
        cmocka_unit_test(test_tokenizer__truncated_protobuf_is_refused),
        cmocka_unit_test(test_tokenizer__varint_overflow_is_refused),
        cmocka_unit_test(test_tokenizer__length_past_end_is_refused),
        cmocka_unit_test(test_tokenizer__piece_count_over_limit_is_refused),
        cmocka_unit_test(test_tokenizer__bad_pieces_are_refused),
        cmocka_unit_test(test_tokenizer__bad_wire_types_are_refused),
        cmocka_unit_test(test_tokenizer__hf_valid_minimal_loads_and_merges),
        cmocka_unit_test(test_tokenizer__hf_malformed_json_is_refused),
        cmocka_unit_test(test_tokenizer__hf_bad_merges_are_refused),
        cmocka_unit_test(test_tokenizer__hf_bad_vocab_is_refused),
        cmocka_unit_test(test_tokenizer__hf_unsupported_parts_are_refused),
        cmocka_unit_test(test_tokenizer__hf_normalizer_growth_is_bounded),
        cmocka_unit_test(test_tokenizer__hf_added_tokens_extend_vocab),
    };
    return cks_tests_status(cmocka_run_group_tests(tests, NULL, NULL));
}
