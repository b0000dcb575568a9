/* Tokenizer tests. Expected ids come from SentencePiece itself (python3-sentencepiece),
 * written with the corpus into tests/data/tok/refs.json by tools/make_tokenizer_refs.py;
 * the LLaMA model is read from ../shared/data when present. Hugging Face expectations follow
 * tokenizers' documented pipeline, computed by the same script with SentencePiece. Models
 * built by hand and every refusal: test_tokenizer_refusals.c. */
#include "testutil.h"

#include "error.h"
#include "fixture.h"
#include "json.h"
#include "map.h"
#include "sha256.h"
#include "tokenizer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* ---- reference file ---- */

static json_t *refs;

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
    if (!p)
        cks_skip("../shared/data/tokenizers/llama/tokenizer.model is absent");
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
        cmocka_unit_test(test_tokenizer__json_and_model_give_identical_ids),
        cmocka_unit_test(test_tokenizer__empty_text_gives_no_ids),
        cmocka_unit_test(test_tokenizer__checkpoint_tokenizer_and_add_bos),
        cmocka_unit_test(test_tokenizer__git_lfs_tokenizer_model),
        cmocka_unit_test(test_tokenizer__config_add_bos_values),
        cmocka_unit_test(test_tokenizer__load_bytes_detects_format),
    };
    return cks_tests_status(cmocka_run_group_tests(tests, load_refs, free_refs));
}
