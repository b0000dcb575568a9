/* lm-eval result parsing: the real Pythia-12B step-143000 file (v0.3; expected values are
 * the file's own numbers, read here by jansson directly), the same series rewritten in the
 * v0.4 layout by this test, Python's bare NaN, hostile files, checkpoint naming. */
#include "testutil.h"

#include "error.h"
#include "lmeval.h"
#include "map.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *slurp(const char *path, size_t *n)
{
    char *buf;
    assert_int_equal(cks_read_file(path, 1 << 24, &buf, n), 0);
    return buf;
}

static const cks_eval_entry *find(const cks_eval_result *r, const char *task, const char *m)
{
    for (size_t i = 0; i < r->count; i++)
        if (!strcmp(r->items[i].task, task) && !strcmp(r->items[i].metric, m))
            return &r->items[i];
    return NULL;
}

/* Every (task, metric) of the v0.3 file, read with plain jansson, must be in r. */
static void check_against_file(const cks_eval_result *r, json_t *file)
{
    const char *task, *key;
    json_t *ms, *v;
    size_t expected = 0;
    json_object_foreach(json_object_get(file, "results"), task, ms)
    {
        json_object_foreach(ms, key, v)
        {
            size_t kl = strlen(key);
            if (kl > 7 && strcmp(key + kl - 7, "_stderr") == 0)
                continue;
            expected++;
            const cks_eval_entry *e = find(r, task, key);
            assert_non_null(e);
            assert_true(e->value == json_number_value(v));
            char se[256];
            snprintf(se, sizeof se, "%s_stderr", key);
            json_t *s = json_object_get(ms, se);
            if (s)
                assert_true(e->stderr_ == json_number_value(s));
            else
                assert_true(isnan(e->stderr_));
        }
    }
    assert_int_equal(r->count, expected);
}

static void test_lmeval__pythia_v03(void **state)
{
    char *path = cks_shared_data("evals/pythia-12b/12b_step143000.json");
    if (!path)
        cks_skip("../shared/data/evals/pythia-12b is absent");
    size_t n;
    char *text = slurp(path, &n);
    cks_eval_result r;
    assert_int_equal(cks_lmeval_parse(text, n, path, &r), 0);
    assert_int_equal(r.version, 3);
    json_t *file = json_loadb(text, n, 0, NULL);
    check_against_file(&r, file);
    /* a value quoted in the reference data's README */
    const cks_eval_entry *e = find(&r, "lambada_openai", "ppl");
    assert_close(e->value, 3.924, 1e-3, 0);
    assert_int_equal(e->n, -1);
    char ck[64];
    assert_int_equal(cks_lmeval_checkpoint(&r, path, ck, sizeof ck), 0);
    assert_string_equal(ck, "step143000");
    json_decref(file);
    cks_lmeval_release(&r);
    free(text);
    free(path);
}

/* The v0.3 file rewritten as lm-eval 0.4 writes it: "<m>,none", "<m>_stderr,none", alias,
 * higher_is_better and n-samples side tables, one group. */
static char *to_v04(json_t *file)
{
    json_t *res = json_object(), *hib = json_object(), *ns = json_object();
    const char *task, *key;
    json_t *ms, *v;
    json_object_foreach(json_object_get(file, "results"), task, ms)
    {
        json_t *t = json_pack("{s:s}", "alias", task), *h = json_object();
        json_object_foreach(ms, key, v)
        {
            char k[256];
            size_t kl = strlen(key);
            snprintf(k, sizeof k, "%s,none", key);
            json_object_set(t, k, v);
            if (!(kl > 7 && strcmp(key + kl - 7, "_stderr") == 0))
                json_object_set_new(h, key, json_boolean(strcmp(key, "ppl") != 0));
        }
        json_object_set_new(res, task, t);
        json_object_set_new(hib, task, h);
        json_object_set_new(ns, task, json_pack("{s:i, s:i}", "original", 500, "effective", 500));
    }
    json_t *doc = json_pack("{s:o, s:{s:{s:s, s:f, s:s}}, s:o, s:o, s:{s:s}}", "results", res,
                            "groups", "mmlu", "alias", "mmlu", "acc,none", 0.25, "acc_stderr,none",
                            "N/A", "higher_is_better", hib, "n-samples", ns, "config", "model_args",
                            "pretrained=/data/k2/ckpt_349,dtype=float16");
    char *s = json_dumps(doc, JSON_COMPACT);
    json_decref(doc);
    return s;
}

static void test_lmeval__v04_same_numbers(void **state)
{
    char *path = cks_shared_data("evals/pythia-12b/12b_step133000.json");
    if (!path)
        cks_skip("../shared/data/evals/pythia-12b is absent");
    size_t n;
    char *text = slurp(path, &n);
    json_t *file = json_loadb(text, n, 0, NULL);
    char *v4 = to_v04(file);
    cks_eval_result a, b;
    assert_int_equal(cks_lmeval_parse(text, n, "v03.json", &a), 0);
    assert_int_equal(cks_lmeval_parse(v4, strlen(v4), "v04.json", &b), 0);
    assert_int_equal(b.version, 4);
    assert_int_equal(b.count, a.count + 1); /* plus the mmlu group */
    for (size_t i = 0; i < a.count; i++) {
        const cks_eval_entry *e = find(&b, a.items[i].task, a.items[i].metric);
        assert_non_null(e);
        assert_true(e->value == a.items[i].value);
        assert_true(e->stderr_ == a.items[i].stderr_ ||
                    (isnan(e->stderr_) && isnan(a.items[i].stderr_)));
        assert_int_equal(e->n, 500);
        assert_int_equal(e->higher_is_better, strcmp(e->metric, "ppl") != 0);
    }
    const cks_eval_entry *g = find(&b, "mmlu", "acc");
    assert_non_null(g);
    assert_true(g->value == 0.25 && isnan(g->stderr_)); /* "N/A" */
    char ck[64];
    assert_int_equal(cks_lmeval_checkpoint(&b, "whatever.json", ck, sizeof ck), 0);
    assert_string_equal(ck, "ckpt_349");
    cks_lmeval_release(&a);
    cks_lmeval_release(&b);
    json_decref(file);
    free(v4);
    free(text);
    free(path);
}

static void test_lmeval__python_nan_and_filters(void **state)
{
    const char *text =
        "{\"results\": {\"gsm8k\": {\"alias\": \"NaN, not a number\","
        " \"exact_match,strict-match\": 0.5, \"exact_match_stderr,strict-match\": NaN,"
        " \"acc,none\": -Infinity}}}";
    cks_eval_result r;
    assert_int_equal(cks_lmeval_parse(text, strlen(text), "x.json", &r), 0);
    assert_int_equal(r.count, 2);
    const cks_eval_entry *e = find(&r, "gsm8k", "exact_match,strict-match");
    assert_non_null(e);
    assert_true(e->value == 0.5 && isnan(e->stderr_));
    assert_true(isnan(find(&r, "gsm8k", "acc")->value));
    char ck[64];
    cks_error_clear();
    assert_int_equal(cks_lmeval_checkpoint(&r, "results.json", ck, sizeof ck), CKS_ENOTFOUND);
    assert_non_null(strstr(cks_error_last(), "--ckpt"));
    assert_int_equal(cks_lmeval_checkpoint(&r, "/evals/eval_ckpt_120.json", ck, sizeof ck), 0);
    assert_string_equal(ck, "eval_ckpt_120");
    cks_lmeval_release(&r);
}

/* Every "NaN" grows by a byte when it becomes "null": a file of nothing but NaN values
 * must fit (ASan caught the sanitizer writing past its buffer). */
static void test_lmeval__many_nans(void **state)
{
    char text[4096];
    size_t k = (size_t)snprintf(text, sizeof text, "{\"results\": {\"t\": {\"a\":NaN");
    for (int i = 0; i < 200; i++)
        k += (size_t)snprintf(text + k, sizeof text - k, ",\"m%d\":NaN", i);
    snprintf(text + k, sizeof text - k, "}}}");
    cks_eval_result r;
    assert_int_equal(cks_lmeval_parse(text, strlen(text), "nan.json", &r), 0);
    assert_int_equal(r.count, 201);
    for (size_t i = 0; i < r.count; i++)
        assert_true(isnan(r.items[i].value));
    cks_lmeval_release(&r);
}

static void expect_error(const char *text, int code, const char *needle)
{
    cks_eval_result r;
    cks_error_clear();
    int err = cks_lmeval_parse(text, strlen(text), "bad.json", &r);
    if (err != code || !strstr(cks_error_last(), needle) || !strstr(cks_error_last(), "bad.json")) {
        print_error("%s -> %d '%s'\n", text, err, cks_error_last());
        fail();
    }
}

static void test_lmeval__rejects_bad_files(void **state)
{
    expect_error("{\"results\": ", CKS_EFORMAT, "not valid JSON");
    expect_error("[]", CKS_EFORMAT, "not an object");
    expect_error("{\"config\": {}}", CKS_EFORMAT, "not an lm-eval result");
    expect_error("{\"results\": [1]}", CKS_EFORMAT, "not an object");
    expect_error("{\"results\": {\"arc\": 0.5}}", CKS_EFORMAT, "task 'arc'");
    expect_error("{\"results\": {\"a/../../b\": {\"acc\": 1}}}", CKS_EFORMAT, "holds '/'");
    expect_error("{\"results\": {\"arc\": {\"a/b\": 1}}}", CKS_EFORMAT, "holds '/'");
    /* more tasks than the limit */
    size_t cap = (CKS_MAX_EVAL_TASKS + 2) * 24 + 64, o = 0;
    char *big = malloc(cap);
    o += (size_t)snprintf(big + o, cap - o, "{\"results\": {");
    for (int i = 0; i <= CKS_MAX_EVAL_TASKS; i++)
        o += (size_t)snprintf(big + o, cap - o, "%s\"t%d\": {}", i ? "," : "", i);
    snprintf(big + o, cap - o, "}}");
    expect_error(big, CKS_ELIMIT, "more than");
    free(big);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lmeval__pythia_v03),
        cmocka_unit_test(test_lmeval__v04_same_numbers),
        cmocka_unit_test(test_lmeval__python_nan_and_filters),
        cmocka_unit_test(test_lmeval__many_nans),
        cmocka_unit_test(test_lmeval__rejects_bad_files),
    };
    return cks_tests_status(cmocka_run_group_tests(tests, NULL, NULL));
}
