/* Tokenizer tests. Expected ids come from SentencePiece itself (python3-sentencepiece),
 * written with the corpus into tests/data/tok/refs.json by tools/make_tokenizer_refs.py;
 * the LLaMA model is read from ../shared/data when present. Hugging Face expectations follow
 * tokenizers' documented pipeline, computed by the same script with SentencePiece. The
 * rejection tests build broken models byte by byte. */
#include "testutil.h"

#include "error.h"
#include "fixture.h"
#include "json.h"
#include "map.h"
#include "sha256.h"
#include "tokenizer.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* ---- reference file ---- */

static json_t *refs;
static int load_hf_text(const char *json, cks_tokenizer **t);

static char *source_path(const char *rel)
{
    const char *root = getenv("CKS_SOURCE_DIR");
    char buf[4096];
    snprintf(buf, sizeof buf, "%s/%s", root ? root : ".", rel);
    return strdup(buf);
}

static int load_refs(void **state)
{
    char *p = source_path("tests/data/tok/refs.json"), *text = NULL;
    size_t len;
    if (cks_read_file(p, 1u << 24, &text, &len) != 0 ||
        cks_json_parse(text, len, p, 1, &refs) != 0) {
        fprintf(stderr, "cannot read %s: %s\n", p, cks_error_last());
        free(p);
        free(text);
        return -1;
    }
    free(p);
    free(text);
    return 0;
}

static int free_refs(void **state)
{
    json_decref(refs);
    return 0;
}

static const json_t *corpus(void)
{
    return json_object_get(refs, "corpus");
}

static const char *entry_name(size_t i)
{
    return json_string_value(json_object_get(json_array_get(corpus(), i), "name"));
}

static const json_t *entry_text(size_t i)
{
    return json_object_get(json_array_get(corpus(), i), "text");
}

static int has_added_token(size_t i)
{
    const char *s = json_string_value(entry_text(i));
    size_t n = json_string_length(entry_text(i));
    return memmem(s, n, "<s>", 3) || memmem(s, n, "</s>", 4) || memmem(s, n, "<unk>", 5);
}

static cks_tokenizer *load_path(const char *path)
{
    cks_tokenizer *t = NULL;
    int rc = cks_tokenizer_load_file(&t, path);
    if (rc)
        fail_msg("loading %s: %s", path, cks_error_last());
    return t;
}

static void encode(const cks_tokenizer *t, const json_t *text, int32_t **ids, size_t *n)
{
    int rc = cks_tokenizer_encode(t, json_string_value(text), json_string_length(text), ids, n);
    if (rc)
        fail_msg("encode: %s", cks_error_last());
}

/* Every corpus entry encodes to exactly the expected ids. */
static void check_ids(const cks_tokenizer *t, const json_t *expected, const char *what)
{
    assert_int_equal(json_array_size(expected), json_array_size(corpus()));
    for (size_t i = 0; i < json_array_size(corpus()); i++) {
        const json_t *want = json_array_get(expected, i);
        int32_t *ids = NULL;
        size_t n = 0;
        encode(t, entry_text(i), &ids, &n);
        size_t k = 0;
        while (k < n && k < json_array_size(want) &&
               ids[k] == json_integer_value(json_array_get(want, k)))
            k++;
        if (k != n || n != json_array_size(want))
            fail_msg("%s, text '%s': %zu ids, expected %zu; first difference at %zu (got %d, "
                     "expected %lld)",
                     what, entry_name(i), n, json_array_size(want), k, k < n ? ids[k] : -1,
                     (long long)json_integer_value(json_array_get(want, k)));
        free(ids);
    }
}

static void check_model(const char *name)
{
    const json_t *m = json_object_get(json_object_get(refs, "models"), name);
    assert_non_null(m);
    char *p = source_path(json_string_value(json_object_get(m, "file")));
    cks_tokenizer *t = load_path(p);
    assert_string_equal(cks_tokenizer_kind(t), "sentencepiece");
    assert_int_equal(cks_tokenizer_vocab_size(t),
                     json_integer_value(json_object_get(m, "vocab_size")));
    assert_int_equal(cks_tokenizer_bos_id(t), json_integer_value(json_object_get(m, "bos")));
    assert_int_equal(cks_tokenizer_eos_id(t), json_integer_value(json_object_get(m, "eos")));
    check_ids(t, json_object_get(m, "ids"), name);
    cks_tokenizer_free(t);
    free(p);
}

static void test_tokenizer__small_matches_sentencepiece(void **state)
{
    check_model("small");
}

static void test_tokenizer__user_defined_and_unk_runs_match_sentencepiece(void **state)
{
    check_model("uds");
}

static void test_tokenizer__unused_pieces_resplit_as_sentencepiece(void **state)
{
    const json_t *m = json_object_get(json_object_get(refs, "models"), "small_unused");
    assert_true(json_integer_value(json_object_get(m, "unused_pieces")) > 0);
    check_model("small_unused");
}

static void test_tokenizer__no_dummy_prefix_merged_spec_matches_sentencepiece(void **state)
{
    check_model("small_nodummy");
}

static void test_tokenizer__no_escape_whitespace_matches_sentencepiece(void **state)
{
    check_model("small_noescape");
}

/* Pieces with "▁" after other characters: the text is not cut at word starts. */
static void test_tokenizer__pieces_across_words_match_sentencepiece(void **state)
{
    check_model("nows");
}

static void test_tokenizer__llama_matches_sentencepiece(void **state)
{
    char *p = cks_shared_data("tokenizers/llama/tokenizer.model");
    if (!p) {
        print_message("skipped: ../shared/data/tokenizers/llama/tokenizer.model is absent\n");
        skip();
    }
    const json_t *m = json_object_get(json_object_get(refs, "models"), "llama");
    if (!m)
        fail_msg("refs.json has no LLaMA ids: rerun tools/make_tokenizer_refs.py");
    char *data = NULL, hex[65];
    size_t len;
    assert_int_equal(cks_read_file(p, 1u << 24, &data, &len), 0);
    cks_sha256_hex(data, len, hex);
    assert_string_equal(hex, json_string_value(json_object_get(m, "sha256")));
    cks_tokenizer *t = NULL;
    assert_int_equal(cks_tokenizer_load_spm(&t, data, len, p), 0);
    assert_int_equal(cks_tokenizer_vocab_size(t), 32000);
    assert_int_equal(cks_tokenizer_bos_id(t), 1);
    assert_int_equal(cks_tokenizer_eos_id(t), 2);
    assert_string_equal(cks_tokenizer_piece(t, 13), "<0x0A>");
    assert_null(cks_tokenizer_piece(t, 32000));
    assert_null(cks_tokenizer_piece(t, -1));
    check_ids(t, json_object_get(m, "ids"), "llama");
    cks_tokenizer_free(t);
    free(data);
    free(p);
}

static void check_hf(const char *file)
{
    char rel[256];
    snprintf(rel, sizeof rel, "tests/data/tok/%s", file);
    char *p = source_path(rel);
    cks_tokenizer *t = load_path(p);
    assert_string_equal(cks_tokenizer_kind(t), "hf");
    assert_int_equal(cks_tokenizer_vocab_size(t), 500);
    assert_int_equal(cks_tokenizer_bos_id(t), 1);
    assert_int_equal(cks_tokenizer_eos_id(t), 2);
    check_ids(t, json_object_get(json_object_get(refs, "hf"), file), file);
    cks_tokenizer_free(t);
    free(p);
}

static void test_tokenizer__hf_legacy_json_matches_reference(void **state)
{
    check_hf("small.tokenizer.json");
}

static void test_tokenizer__hf_metaspace_split_json_matches_reference(void **state)
{
    check_hf("small.metasplit.tokenizer.json");
}

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

static void test_tokenizer__hf_pieces_across_words_match_reference(void **state)
{
    check_hf("nows.tokenizer.json");
}

static void test_tokenizer__hf_metaspace_json_matches_reference(void **state)
{
    check_hf("small.metaspace.tokenizer.json");
}

/* tokenizer.json and tokenizer.model give the same ids, compared directly (not through the
 * reference file), for every text without added-token strings ("<s>" etc. are split out
 * as special tokens by Hugging Face, literal text to SentencePiece). */
static void json_equals_model(const char *model, const char *json)
{
    char *pm = source_path(model), *pj = source_path(json);
    cks_tokenizer *m = load_path(pm), *j = load_path(pj);
    int compared = 0;
    for (size_t i = 0; i < json_array_size(corpus()); i++) {
        if (has_added_token(i))
            continue;
        int32_t *a = NULL, *b = NULL;
        size_t na = 0, nb = 0;
        encode(m, entry_text(i), &a, &na);
        encode(j, entry_text(i), &b, &nb);
        if (na != nb || (na && memcmp(a, b, na * sizeof *a) != 0))
            fail_msg("%s, text '%s': tokenizer.json and tokenizer.model differ", json,
                     entry_name(i));
        for (size_t k = 0; k < na; k++)
            assert_string_equal(cks_tokenizer_piece(m, a[k]), cks_tokenizer_piece(j, b[k]));
        free(a);
        free(b);
        compared++;
    }
    assert_true(compared >= 25);
    cks_tokenizer_free(m);
    cks_tokenizer_free(j);
    free(pm);
    free(pj);
}

/* tokenizer.json and tokenizer.model give the same ids, compared directly (not through the
 * reference file), for every text without added-token strings ("<s>" etc. are split out
 * as special tokens by Hugging Face, literal text to SentencePiece). */
static void test_tokenizer__json_and_model_give_identical_ids(void **state)
{
    json_equals_model("tests/data/tok/small.model", "tests/data/tok/small.tokenizer.json");
    json_equals_model("tests/data/tok/nows.model", "tests/data/tok/nows.tokenizer.json");
}

static void test_tokenizer__empty_text_gives_no_ids(void **state)
{
    char *p = source_path("tests/data/tok/small.model");
    cks_tokenizer *t = load_path(p);
    int32_t *ids = (int32_t *)1;
    size_t n = 7;
    assert_int_equal(cks_tokenizer_encode(t, "", 0, &ids, &n), 0);
    assert_int_equal(n, 0);
    assert_null(ids);
    cks_tokenizer_free(t);
    free(p);
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

/* ---- loading helpers ---- */

static void test_tokenizer__checkpoint_tokenizer_and_add_bos(void **state)
{
    char *dir = cks_tmpdir_new("tok");
    char path[4096];
    cks_fx_model m;
    cks_fx_spec spec;
    cks_fx_spec_default(&spec, dir);
    m = spec.model;
    char *cfg = cks_fx_config_json(&m);
    char *small = source_path("tests/data/tok/small.model"), *data = NULL;
    size_t len;
    assert_int_equal(cks_read_file(small, 1u << 20, &data, &len), 0);
    static const char *names[] = {"ckpt_000", "ckpt_001", "ckpt_002"};
    for (int k = 0; k < 3; k++) {
        snprintf(path, sizeof path, "%s/%s", dir, names[k]);
        assert_int_equal(mkdir(path, 0755), 0);
        snprintf(path, sizeof path, "%s/%s/config.json", dir, names[k]);
        cks_write_file(path, cfg, strlen(cfg));
    }
    snprintf(path, sizeof path, "%s/ckpt_000/tokenizer.model", dir);
    cks_write_file(path, data, len);
    snprintf(path, sizeof path, "%s/ckpt_000/tokenizer_config.json", dir);
    cks_write_file(path, "{\"add_bos_token\": false}", 24);
    snprintf(path, sizeof path, "%s/ckpt_001/tokenizer_config.json", dir);
    cks_write_file(path, "{\"add_bos_token\": 1}", 20);

    cks_source *src = NULL;
    assert_int_equal(cks_source_open(&src, dir, NULL), 0);
    cks_ckpt *c = NULL;
    cks_tokenizer *t = NULL;
    int bos = 9;
    assert_int_equal(cks_ckpt_open(&c, src, 0), 0);
    assert_int_equal(cks_tokenizer_load_ckpt(&t, c), 0);
    assert_int_equal(cks_tokenizer_vocab_size(t), 500);
    assert_int_equal(cks_tokenizer_ckpt_add_bos(c, &bos), 0);
    assert_int_equal(bos, 0);
    cks_tokenizer_free(t);
    cks_ckpt_free(c);
    assert_int_equal(cks_ckpt_open(&c, src, 1), 0);
    assert_int_equal(cks_tokenizer_load_ckpt(&t, c), CKS_ENOTFOUND);
    assert_non_null(strstr(cks_error_last(), "@ckpt_001: the checkpoint has no tokenizer.model"));
    assert_int_equal(cks_tokenizer_ckpt_add_bos(c, &bos), CKS_EFORMAT);
    assert_non_null(strstr(cks_error_last(), "tokenizer_config.json"));
    assert_non_null(strstr(cks_error_last(), "not a boolean"));
    cks_ckpt_free(c);
    assert_int_equal(cks_ckpt_open(&c, src, 2), 0);
    assert_int_equal(cks_tokenizer_ckpt_add_bos(c, &bos), 0);
    assert_int_equal(bos, -1);
    cks_ckpt_free(c);
    cks_source_free(src);
    free(data);
    free(small);
    free(cfg);
    cks_tmpdir_remove(dir);
}

/* Real repositories keep tokenizer.model in Git LFS: read through the LFS object, and a
 * missing object is CKS_EINCOMPLETE with the fetch command. */
static void test_tokenizer__git_lfs_tokenizer_model(void **state)
{
    char *dir = cks_tmpdir_new("toklfs");
    char repo[4096];
    snprintf(repo, sizeof repo, "%s/repo", dir);
    cks_fx_spec spec;
    cks_fx_spec_default(&spec, dir);
    char *cfg = cks_fx_config_json(&spec.model);
    char *small = source_path("tests/data/tok/small.model"), *data = NULL;
    size_t len;
    assert_int_equal(cks_read_file(small, 1u << 20, &data, &len), 0);
    cks_fx_file files[] = {{"config.json", cfg, strlen(cfg)}, {"tokenizer.model", data, len}};
    const char *lfs[] = {"*.model", NULL};
    assert_int_equal(cks_fx_git_commit(repo, 0, "refs/heads/ckpt_000", files, 2, lfs, 0, NULL), 0);
    /* Other content (another oid), its LFS object not written. */
    files[1].len = len - 1;
    assert_int_equal(cks_fx_git_commit(repo, 0, "refs/heads/ckpt_001", files, 2, lfs, 1, NULL), 0);
    cks_source *src = NULL;
    cks_ckpt *c = NULL;
    cks_tokenizer *t = NULL;
    assert_int_equal(cks_source_open(&src, repo, NULL), 0);
    assert_int_equal(cks_ckpt_open(&c, src, 0), 0);
    assert_int_equal(cks_tokenizer_load_ckpt(&t, c), 0);
    assert_int_equal(cks_tokenizer_vocab_size(t), 500);
    cks_tokenizer_free(t);
    cks_ckpt_free(c);
    assert_int_equal(cks_ckpt_open(&c, src, 1), 0);
    assert_int_equal(cks_tokenizer_load_ckpt(&t, c), CKS_EINCOMPLETE);
    assert_non_null(
        strstr(cks_error_last(), "lfs fetch origin ckpt_001 --include=tokenizer.model"));
    cks_ckpt_free(c);
    cks_source_free(src);
    free(data);
    free(small);
    free(cfg);
    cks_tmpdir_remove(dir);
}

static void test_tokenizer__config_add_bos_values(void **state)
{
    int v = 7;
    assert_int_equal(cks_tokenizer_config_add_bos("{\"add_bos_token\": true}", 23, "c", &v), 0);
    assert_int_equal(v, 1);
    assert_int_equal(cks_tokenizer_config_add_bos("{\"add_bos_token\": null}", 23, "c", &v), 0);
    assert_int_equal(v, -1);
    assert_int_equal(cks_tokenizer_config_add_bos("{}", 2, "c", &v), 0);
    assert_int_equal(v, -1);
    assert_int_equal(cks_tokenizer_config_add_bos("{\"add_bos_token\"", 16, "cfg.json", &v),
                     CKS_EFORMAT);
    assert_non_null(strstr(cks_error_last(), "cfg.json"));
}

static void test_tokenizer__load_bytes_detects_format(void **state)
{
    char *p = source_path("tests/data/tok/small.tokenizer.json"), *data = NULL;
    size_t len;
    assert_int_equal(cks_read_file(p, 1u << 22, &data, &len), 0);
    cks_tokenizer *t = NULL;
    assert_int_equal(cks_tokenizer_load_bytes(&t, data, len, p), 0);
    assert_string_equal(cks_tokenizer_kind(t), "hf");
    cks_tokenizer_free(t);
    assert_int_equal(cks_tokenizer_load_file(&t, "/nonexistent/tokenizer.model"), CKS_ENOTFOUND);
    free(data);
    free(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tokenizer__small_matches_sentencepiece),
        cmocka_unit_test(test_tokenizer__user_defined_and_unk_runs_match_sentencepiece),
        cmocka_unit_test(test_tokenizer__unused_pieces_resplit_as_sentencepiece),
        cmocka_unit_test(test_tokenizer__no_dummy_prefix_merged_spec_matches_sentencepiece),
        cmocka_unit_test(test_tokenizer__no_escape_whitespace_matches_sentencepiece),
        cmocka_unit_test(test_tokenizer__pieces_across_words_match_sentencepiece),
        cmocka_unit_test(test_tokenizer__llama_matches_sentencepiece),
        cmocka_unit_test(test_tokenizer__hf_legacy_json_matches_reference),
        cmocka_unit_test(test_tokenizer__hf_pieces_across_words_match_reference),
        cmocka_unit_test(test_tokenizer__hf_metaspace_json_matches_reference),
        cmocka_unit_test(test_tokenizer__hf_metaspace_split_json_matches_reference),
        cmocka_unit_test(test_tokenizer__hf_ignore_merges_takes_whole_words),
        cmocka_unit_test(test_tokenizer__json_and_model_give_identical_ids),
        cmocka_unit_test(test_tokenizer__empty_text_gives_no_ids),
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
        cmocka_unit_test(test_tokenizer__checkpoint_tokenizer_and_add_bos),
        cmocka_unit_test(test_tokenizer__git_lfs_tokenizer_model),
        cmocka_unit_test(test_tokenizer__config_add_bos_values),
        cmocka_unit_test(test_tokenizer__load_bytes_detects_format),
    };
    return cmocka_run_group_tests(tests, load_refs, free_refs);
}
