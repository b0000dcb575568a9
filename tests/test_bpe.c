/* Byte-level BPE tests. Expected ids come from Hugging Face's own Rust library (npm package
 * `tokenizers`) and, for GPT-2, from `tiktoken` as a second, independent implementation:
 * tools/make_bpe_refs.py wrote them with the corpus into tests/data/bpe/refs.json (ctest
 * bpe_refs_current reruns it). The real GPT-NeoX-20B and GPT-2 files are read from
 * ../shared/data: absent, the test fails in CI and is skipped elsewhere. The rejection tests
 * build broken tokenizer.json documents by hand. */
#include "testutil.h"

#include "error.h"
#include "json.h"
#include "map.h"
#include "sha256.h"
#include "tokenizer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static json_t *refs;

static int load_refs(void **state)
{
    (void)state;
    char *p = cks_test_data("bpe/refs.json"), *text = NULL;
    size_t len;
    int rc = cks_read_file(p, 1u << 24, &text, &len);
    if (!rc)
        rc = cks_json_parse(text, len, p, 1, &refs);
    if (rc)
        fprintf(stderr, "cannot read %s: %s\n", p, cks_error_last());
    free(p);
    free(text);
    return rc ? -1 : 0;
}

static int free_refs(void **state)
{
    (void)state;
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

/* The path of a reference tokenizer: tests/data/... or ../shared/data/... (NULL: skipped). */
static char *ref_path(const char *file)
{
    static const char shared[] = "../shared/data/";
    if (strncmp(file, shared, sizeof shared - 1) != 0) {
        char *p = cks_test_data(file + strlen("tests/data/"));
        return p;
    }
    char *p = cks_shared_data(file + sizeof shared - 1);
    if (!p) {
        const char *ci = getenv("CI");
        if (ci && strcmp(ci, "true") == 0)
            fail_msg("%s is absent (CI must have ../shared/data)", file);
        print_message("skipped: %s is absent\n", file);
    }
    return p;
}

static void expect_ids(const int32_t *ids, size_t n, const json_t *want, const char *what,
                       size_t entry)
{
    size_t k = 0;
    while (k < n && k < json_array_size(want) &&
           ids[k] == json_integer_value(json_array_get(want, k)))
        k++;
    if (k != n || n != json_array_size(want))
        fail_msg("%s, text '%s': %zu ids, expected %zu; first difference at %zu (got %d, "
                 "expected %lld)",
                 what, entry_name(entry), n, json_array_size(want), k, k < n ? ids[k] : -1,
                 (long long)json_integer_value(json_array_get(want, k)));
}

/* Every corpus text encodes to the ids of `tokenizers` and decodes to its decode(ids). */
static cks_tokenizer *check_tokenizer(const char *name)
{
    const json_t *r = json_object_get(json_object_get(refs, "tokenizers"), name);
    assert_non_null(r);
    char *p = ref_path(json_string_value(json_object_get(r, "file")));
    if (!p)
        skip();
    char *data = NULL, hex[65];
    size_t len;
    assert_int_equal(cks_read_file(p, CKS_TOK_MAX_FILE_BYTES, &data, &len), 0);
    cks_sha256_hex(data, len, hex);
    assert_string_equal(hex, json_string_value(json_object_get(r, "sha256")));
    cks_tokenizer *t = NULL;
    if (cks_tokenizer_load_hf(&t, data, len, p) != 0)
        fail_msg("loading %s: %s", p, cks_error_last());
    assert_int_equal(cks_tokenizer_byte_level(t), 1);
    assert_string_equal(cks_tokenizer_kind(t), "hf");
    const json_t *ids = json_object_get(r, "ids"), *dec = json_object_get(r, "decoded");
    assert_int_equal(json_array_size(ids), json_array_size(corpus()));
    for (size_t i = 0; i < json_array_size(corpus()); i++) {
        const json_t *text = entry_text(i);
        int32_t *got = NULL;
        size_t n = 0;
        if (cks_tokenizer_encode(t, json_string_value(text), json_string_length(text), &got, &n) !=
            0)
            fail_msg("%s, text '%s': %s", name, entry_name(i), cks_error_last());
        expect_ids(got, n, json_array_get(ids, i), name, i);
        char *back = NULL;
        size_t blen = 0;
        assert_int_equal(cks_tokenizer_decode(t, got, n, &back, &blen), 0);
        const json_t *want = json_array_get(dec, i);
        if (blen != json_string_length(want) || memcmp(back, json_string_value(want), blen) != 0)
            fail_msg("%s, text '%s': decoded text differs from tokenizers' decode", name,
                     entry_name(i));
        free(back);
        free(got);
    }
    free(data);
    free(p);
    return t;
}

static void test_bpe__gpt_neox_20b_matches_hf_tokenizers(void **state)
{
    (void)state;
    cks_tokenizer *t = check_tokenizer("gpt-neox-20b");
    assert_int_equal(cks_tokenizer_vocab_size(t), 50277);
    assert_int_equal(cks_tokenizer_bos_id(t), 0); /* <|endoftext|> */
    assert_int_equal(cks_tokenizer_eos_id(t), 0);
    assert_int_equal(cks_tokenizer_piece_id(t, "<|padding|>", 11), 1);
    assert_int_equal(cks_tokenizer_piece_id(t, "  ", 2), 50276); /* an added run of spaces */
    assert_int_equal(cks_tokenizer_piece_id(t, "nope", 4), -1);
    cks_tokenizer_free(t);
}

static void test_bpe__gpt2_matches_hf_tokenizers_and_tiktoken(void **state)
{
    (void)state;
    cks_tokenizer *t = check_tokenizer("gpt2");
    assert_int_equal(cks_tokenizer_vocab_size(t), 50257);
    assert_int_equal(cks_tokenizer_bos_id(t), 50256);
    size_t len = 0;
    const char *b = cks_tokenizer_token_bytes(t, 220, &len); /* "Ġ" */
    assert_true(b && len == 1 && b[0] == ' ');
    assert_null(cks_tokenizer_token_bytes(t, 50257, &len));
    /* tiktoken is an independent implementation of GPT-2's encoding. */
    const json_t *tik = json_object_get(refs, "tiktoken_gpt2");
    for (size_t i = 0; i < json_array_size(corpus()); i++) {
        const json_t *text = entry_text(i);
        int32_t *got = NULL;
        size_t n = 0;
        assert_int_equal(
            cks_tokenizer_encode(t, json_string_value(text), json_string_length(text), &got, &n),
            0);
        expect_ids(got, n, json_array_get(tik, i), "gpt2 vs tiktoken", i);
        free(got);
    }
    cks_tokenizer_free(t);
}

static void test_bpe__qwen2_style_matches_hf_tokenizers(void **state)
{
    (void)state;
    cks_tokenizer *t = check_tokenizer("qwen2_style");
    assert_int_equal(cks_tokenizer_bos_id(t), cks_tokenizer_piece_id(t, "<|endoftext|>", 13));
    cks_tokenizer_free(t);
}

static void test_bpe__llama3_style_ignore_merges_matches_hf_tokenizers(void **state)
{
    (void)state;
    cks_tokenizer_free(check_tokenizer("llama3_style"));
}

static void test_bpe__byte_map_and_prefix_space_match_hf_tokenizers(void **state)
{
    (void)state;
    cks_tokenizer *t = check_tokenizer("bytes_nfc");
    /* Analytic: ids are the bytes of " " + NFC(text) here (id = byte value, no merges). */
    const char text[] = "a\tb \x7f\xc3\xa9"
                        "e\xcc\x81";
    int32_t *ids = NULL;
    size_t n = 0;
    assert_int_equal(cks_tokenizer_encode(t, text, sizeof text - 1, &ids, &n), 0);
    const int32_t want[] = {' ', 'a', '\t', 'b', ' ', 0x7f, 0xc3, 0xa9, 0xc3, 0xa9};
    assert_int_equal(n, sizeof want / sizeof want[0]);
    assert_memory_equal(ids, want, sizeof want);
    free(ids);
    cks_tokenizer_free(t);
}

/* ---- refusals ---- */

#define VOCAB_DOC                                                                             \
    "{%s\"normalizer\": %s, \"pre_tokenizer\": %s, \"model\": {\"type\": \"%s\", \"vocab\": " \
    "{\"a\": 0, \"b\": 1, \"ab\": 2, \"\\u0120\": 3}, \"merges\": [%s]}}"

static int load_doc(const char *added, const char *norm, const char *pre, const char *type,
                    const char *merges, cks_tokenizer **t)
{
    char buf[8192];
    snprintf(buf, sizeof buf, VOCAB_DOC, added, norm, pre, type, merges);
    *t = NULL;
    return cks_tokenizer_load_hf(t, buf, strlen(buf), "broken.json");
}

static void expect_refused(const char *norm, const char *pre, const char *type, const char *merges,
                           int code, const char *needle)
{
    cks_tokenizer *t;
    int rc = load_doc("", norm, pre, type, merges, &t);
    if (rc != code || !strstr(cks_error_last(), needle) || !strstr(cks_error_last(), "broken.json"))
        fail_msg("expected %d with '%s', got %d: %s", code, needle, rc, cks_error_last());
    assert_null(t);
}

#define BL "{\"type\": \"ByteLevel\", \"use_regex\": false, \"add_prefix_space\": false}"
#define SPLIT(p) \
    "{\"type\": \"Split\", \"pattern\": {\"Regex\": \"" p "\"}, \"behavior\": \"Isolated\"}"
#define SEQ(a, b) "{\"type\": \"Sequence\", \"pretokenizers\": [" a ", " b "]}"

static void test_bpe__minimal_byte_level_loads(void **state)
{
    (void)state;
    cks_tokenizer *t;
    assert_int_equal(load_doc("", "null", SEQ(SPLIT("\\\\p{L}+"), BL), "BPE", "\"a b\"", &t), 0);
    int32_t *ids = NULL;
    size_t n = 0;
    /* "ab ab": Split gives "ab", " ", "ab"; each "ab" merges; the space is "Ġ". */
    assert_int_equal(cks_tokenizer_encode(t, "ab ab", 5, &ids, &n), 0);
    const int32_t want[] = {2, 3, 2};
    assert_int_equal(n, 3);
    assert_memory_equal(ids, want, sizeof want);
    free(ids);
    /* "ac": c is no token and the model has no unk: dropped, as tokenizers does (both
     * checked with npm tokenizers 0.23.2). */
    assert_int_equal(cks_tokenizer_encode(t, "ac", 2, &ids, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(ids[0], 0);
    free(ids);
    cks_tokenizer_free(t);
}

static void test_bpe__unsupported_parts_are_refused(void **state)
{
    (void)state;
    expect_refused("null", SEQ(SPLIT("x"), "{\"type\": \"Digits\"}"), "BPE", "", CKS_EUNSUPPORTED,
                   "pre_tokenizer 'Digits' is not supported");
    expect_refused("null", SEQ(BL, SPLIT("x")), "BPE", "", CKS_EUNSUPPORTED,
                   "ByteLevel must be the last step");
    expect_refused("null", SEQ(SEQ(BL, BL), BL), "BPE", "", CKS_EUNSUPPORTED,
                   "nested pre_tokenizer 'Sequence'");
    expect_refused("null", SPLIT("x"), "BPE", "", CKS_EUNSUPPORTED, "Split pre_tokenizer without");
    expect_refused("null",
                   SEQ("{\"type\": \"Split\", \"pattern\": {\"Regex\": \"x\"}, \"behavior\": "
                       "\"MergedWithPrevious\"}",
                       BL),
                   "BPE", "", CKS_EUNSUPPORTED, "Split behavior 'MergedWithPrevious'");
    expect_refused("null",
                   SEQ("{\"type\": \"Split\", \"pattern\": {\"Glob\": \"x\"}, "
                       "\"behavior\": \"Isolated\"}",
                       BL),
                   "BPE", "", CKS_EFORMAT, "not a Regex or String");
    expect_refused("null", "{\"type\": \"ByteLevel\", \"use_regex\": 1}", "BPE", "", CKS_EFORMAT,
                   "\"use_regex\" is not a boolean");
    expect_refused("{\"type\": \"Sequence\", \"normalizers\": [{\"type\": \"NFC\"}, {\"type\": "
                   "\"NFKC\"}]}",
                   BL, "BPE", "", CKS_EUNSUPPORTED, "normalizer 'NFKC'");
    expect_refused("null", BL, "WordPiece", "", CKS_EUNSUPPORTED, "model type 'WordPiece'");
    expect_refused("null", SEQ(SPLIT("\\\\w+"), BL), "BPE", "", CKS_EUNSUPPORTED,
                   "uses \\w, which Oniguruma");
}

static void test_bpe__bad_split_pattern_names_pcre2_error(void **state)
{
    (void)state;
    expect_refused("null", SEQ(SPLIT("(\\\\p{L}+"), BL), "BPE", "", CKS_EFORMAT,
                   "split pattern '(\\p{L}+' is refused by PCRE2 at offset 7: missing closing "
                   "parenthesis");
    expect_refused("null", SEQ(SPLIT("\\\\p{Nope}"), BL), "BPE", "", CKS_EFORMAT,
                   "unknown property");
}

static void test_bpe__bad_merges_and_vocab_are_refused(void **state)
{
    (void)state;
    expect_refused("null", BL, "BPE", "\"a c\"", CKS_EFORMAT, "names unknown token 'c'");
    expect_refused("null", BL, "BPE", "\"b a\"", CKS_EFORMAT, "'ba' is not in the vocabulary");
    expect_refused("null", BL, "BPE", "[\"a\", \"\\u0121\"]", CKS_EFORMAT, "names unknown token");
    cks_tokenizer *t;
    const char *dup = "{\"pre_tokenizer\": " BL ", \"model\": {\"vocab\": {\"a\": 0, \"b\": 0}, "
                      "\"merges\": []}}";
    assert_int_equal(cks_tokenizer_load_hf(&t, dup, strlen(dup), "broken.json"), CKS_EFORMAT);
    assert_non_null(strstr(cks_error_last(), "id 0 is given to"));
    const char *range = "{\"pre_tokenizer\": " BL ", \"model\": {\"vocab\": {\"a\": 0, \"b\": "
                        "99999999}, \"merges\": []}}";
    assert_int_equal(cks_tokenizer_load_hf(&t, range, strlen(range), "broken.json"), CKS_EFORMAT);
    assert_non_null(strstr(cks_error_last(), "has id outside"));
}

static void test_bpe__split_limits(void **state)
{
    (void)state;
    /* A pattern past 64 KiB is refused before PCRE2 sees it. */
    size_t big = (64u << 10) + 1;
    char *pat = malloc(big + 1);
    memset(pat, 'x', big);
    pat[big] = '\0';
    char *buf = malloc(big + 1024);
    snprintf(buf, big + 1024,
             "{\"pre_tokenizer\": {\"type\": \"Sequence\", \"pretokenizers\": [{\"type\": "
             "\"Split\", \"pattern\": {\"Regex\": \"%s\"}, \"behavior\": \"Isolated\"}, " BL
             "]}, \"model\": {\"vocab\": {\"a\": 0}, \"merges\": []}}",
             pat);
    cks_tokenizer *t;
    cks_expect_error(cks_tokenizer_load_hf(&t, buf, strlen(buf), "broken.json"), CKS_ELIMIT,
                     "broken.json", "split pattern of 65537 bytes");
    free(buf);
    free(pat);
    /* Nine Split steps: one more than the limit. */
    char seq[4096] = "{\"type\": \"Sequence\", \"pretokenizers\": [";
    for (int k = 0; k < 9; k++)
        strcat(seq, SPLIT("a") ", ");
    strcat(seq, BL "]}");
    cks_expect_error(load_doc("", "null", seq, "BPE", "", &t), CKS_ELIMIT, "broken.json",
                     "more than 8 Split");
    /* Catastrophic backtracking stops at PCRE2's match limit, naming the file. */
    assert_int_equal(load_doc("", "null", SEQ(SPLIT("(a|a)+$"), BL), "BPE", "", &t), 0);
    char text[64];
    memset(text, 'a', 60);
    text[59] = '!';
    int32_t *ids = NULL;
    size_t n = 0;
    cks_expect_error(cks_tokenizer_encode(t, text, 60, &ids, &n), CKS_ELIMIT, "broken.json",
                     "match limit");
    cks_tokenizer_free(t);
}

/* CKS_TOK_MAX_ADDED_BYTES: 256 added tokens of 4095 bytes (4096 with their NUL) fill it
 * exactly and load; one more is refused, naming the file. */
static void test_bpe__added_token_bytes_limit(void **state)
{
    (void)state;
    for (int extra = 0; extra <= 1; extra++) {
        int count = (int)(CKS_TOK_MAX_ADDED_BYTES / 4096) + extra;
        size_t cap = (size_t)count * 4200 + 1024;
        char *doc = malloc(cap), *tok = malloc(4096);
        size_t n = (size_t)snprintf(doc, cap, "{\"added_tokens\": [");
        for (int i = 0; i < count; i++) {
            snprintf(tok, 4096, "%04d", i);
            memset(tok + 4, 'x', 4091);
            tok[4095] = '\0';
            n += (size_t)snprintf(doc + n, cap - n, "%s{\"id\": %d, \"content\": \"%s\"}",
                                  i ? ", " : "", i + 1, tok);
        }
        snprintf(doc + n, cap - n,
                 "], \"pre_tokenizer\": " BL ", \"model\": {\"vocab\": {\"a\": 0}, "
                 "\"merges\": []}}");
        cks_tokenizer *t = NULL;
        int rc = cks_tokenizer_load_hf(&t, doc, strlen(doc), "big.json");
        if (extra == 0) {
            if (rc)
                fail_msg("at the limit: %s", cks_error_last());
            int32_t *ids = NULL;
            size_t k = 0;
            assert_int_equal(cks_tokenizer_encode(t, tok, 4095, &ids, &k), 0);
            assert_int_equal(k, 1); /* the last token, matched whole */
            assert_int_equal(ids[0], count);
            free(ids);
            cks_tokenizer_free(t);
        } else {
            cks_expect_error(rc, CKS_ELIMIT, "big.json", "more than 1048576 bytes in all");
        }
        free(tok);
        free(doc);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bpe__gpt_neox_20b_matches_hf_tokenizers),
        cmocka_unit_test(test_bpe__gpt2_matches_hf_tokenizers_and_tiktoken),
        cmocka_unit_test(test_bpe__qwen2_style_matches_hf_tokenizers),
        cmocka_unit_test(test_bpe__llama3_style_ignore_merges_matches_hf_tokenizers),
        cmocka_unit_test(test_bpe__byte_map_and_prefix_space_match_hf_tokenizers),
        cmocka_unit_test(test_bpe__minimal_byte_level_loads),
        cmocka_unit_test(test_bpe__unsupported_parts_are_refused),
        cmocka_unit_test(test_bpe__bad_split_pattern_names_pcre2_error),
        cmocka_unit_test(test_bpe__bad_merges_and_vocab_are_refused),
        cmocka_unit_test(test_bpe__split_limits),
        cmocka_unit_test(test_bpe__added_token_bytes_limit),
    };
    return cmocka_run_group_tests(tests, load_refs, free_refs);
}
