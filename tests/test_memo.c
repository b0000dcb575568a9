/* Memorisation inputs and scores (loaders/trainset.h, metrics/memo.h): training JSONL read
 * plain and compressed, short sequences skipped and counted, the --samples choice in file
 * order (its indices against tools/make_fstats_refs.py's numpy gsl_ran_choose), every
 * refusal naming the file and the line, and the scores of continuations built to be
 * reproduced exactly, partly and not at all (expected values worked out by hand). */
#include "error.h"
#include "json.h"
#include "memo.h"
#include "testutil.h"
#include "trainset.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

static char *tmp;

static int setup(void **state)
{
    tmp = cks_tmpdir_new("memo");
    return 0;
}

static int teardown(void **state)
{
    cks_tmpdir_remove(tmp);
    return 0;
}

/* A JSONL file of sequences: line i (1-based) has len[i-1] ids, id j of line i is
 * (i * 100 + j) % 997. Returns the text (free it). */
static char *jsonl(const int *len, int n)
{
    size_t cap = 1 << 20, at = 0;
    char *s = malloc(cap);
    for (int i = 0; i < n; i++) {
        at += (size_t)snprintf(s + at, cap - at, "{\"source\": \"x\", \"token_ids\": [");
        for (int j = 0; j < len[i]; j++)
            at += (size_t)snprintf(s + at, cap - at, "%s%d", j ? ", " : "",
                                   ((i + 1) * 100 + j) % 997);
        at += (size_t)snprintf(s + at, cap - at, "]}\n");
    }
    return s;
}

static unsigned char *gz(const char *text, size_t *n)
{
    uLongf cap = compressBound((uLong)strlen(text)) + 64;
    unsigned char *b = malloc(cap);
    z_stream z;
    memset(&z, 0, sizeof z);
    assert_int_equal(deflateInit2(&z, 6, Z_DEFLATED, 16 + 15, 8, Z_DEFAULT_STRATEGY), Z_OK);
    z.next_in = (unsigned char *)text;
    z.avail_in = (uInt)strlen(text);
    z.next_out = b;
    z.avail_out = (uInt)cap;
    assert_int_equal(deflate(&z, Z_FINISH), Z_STREAM_END);
    *n = cap - z.avail_out;
    deflateEnd(&z);
    return b;
}

static void test_memo__reads_keeps_and_skips(void **state)
{
    const int len[] = {70, 63, 64, 200, 0, 10, 64};
    char *text = jsonl(len, 7);
    size_t ng;
    unsigned char *g = gz(text, &ng);
    const char *files[2];
    char p0[4200], p1[4200];
    snprintf(p0, sizeof p0, "%s", cks_put_file(tmp, "train.jsonl", text, strlen(text)));
    snprintf(p1, sizeof p1, "%s", cks_put_file(tmp, "train.jsonl.gz", g, ng));
    files[0] = p0;
    files[1] = p1;
    for (int f = 0; f < 2; f++) {
        cks_trainset t;
        int64_t e, s;
        assert_int_equal(cks_trainset_count(files[f], 64, &e, &s), 0);
        assert_int_equal(e, 4);
        assert_int_equal(s, 3);
        assert_int_equal(cks_memo_load(&t, files[f], 32, 32, 0, 1), 0);
        assert_int_equal(t.width, 64);
        assert_int_equal(t.n, 4);
        assert_int_equal(t.eligible, 4);
        assert_int_equal(t.skipped, 3);
        static const int64_t lines[] = {1, 3, 4, 7};
        for (int i = 0; i < 4; i++) {
            assert_int_equal(t.line[i], lines[i]);
            for (int j = 0; j < 64; j++)
                assert_int_equal(t.ids[i * 64 + j], (lines[i] * 100 + j) % 997);
        }
        /* the largest id of the whole line, not only of the kept 64 */
        assert_int_equal(t.maxid[2], (4 * 100 + 199) % 997);
        assert_int_equal(cks_trainset_check_vocab(&t, 997, "model@ckpt"), 0);
        cks_expect_error(cks_trainset_check_vocab(&t, 599, "model@ckpt"), CKS_EFORMAT, "line 4",
                         "599 of model@ckpt");
        cks_trainset_release(&t);
        /* two of the four, picked by index among the long-enough lines */
        int64_t pick[2] = {1, 3};
        assert_int_equal(cks_trainset_read(&t, files[f], 64, pick, 2), 0);
        assert_int_equal(t.n, 2);
        assert_int_equal(t.line[0], 3);
        assert_int_equal(t.line[1], 7);
        assert_int_equal(t.eligible, 4);
        cks_trainset_release(&t);
        /* an id past the vocabulary on a line not picked is refused too, naming that line:
           line 1 kept (ids below 170), line 7 holds the file's largest id, 763 */
        int64_t first[1] = {0};
        assert_int_equal(cks_trainset_read(&t, files[f], 64, first, 1), 0);
        assert_int_equal(t.n, 1);
        assert_int_equal(t.file_maxid, 763);
        assert_int_equal(t.file_maxid_line, 7);
        assert_int_equal(cks_trainset_check_vocab(&t, 764, "model@ckpt"), 0);
        cks_expect_error(cks_trainset_check_vocab(&t, 700, "model@ckpt"), CKS_EFORMAT,
                         "line 7: token id 763", "700 of model@ckpt");
        cks_trainset_release(&t);
        int64_t back[2] = {3, 1}, past[1] = {4};
        cks_expect_error(cks_trainset_read(&t, files[f], 64, back, 2), CKS_EINVAL, files[f],
                         "not increasing");
        cks_expect_error(cks_trainset_read(&t, files[f], 64, past, 1), CKS_EINVAL, files[f],
                         "not below the 4");
    }
    free(g);
    free(text);
}

/* --samples: gsl_ran_choose's indices (the numpy re-implementation's, refs.json) among the
 * long-enough lines, in file order; short lines in between do not count. */
static void test_memo__samples_follow_gsl_ran_choose(void **state)
{
    int len[100], n = 0, eligible = 0;
    int64_t line_of[64];
    while (eligible < 64) {
        len[n] = n % 3 == 1 ? 20 : 64 + n % 5; /* every third line too short */
        if (len[n] >= 64)
            line_of[eligible++] = n + 1;
        n++;
    }
    char *text = jsonl(len, n);
    const char *p = cks_put_file(tmp, "sample.jsonl", text, strlen(text));
    char *refp = cks_test_data("fstats/refs.json");
    size_t rlen;
    unsigned char *rtext = cks_read_test_file(refp, &rlen);
    json_t *refs;
    assert_int_equal(cks_json_parse((const char *)rtext, rlen, refp, 1, &refs), 0);
    json_t *c = json_array_get(json_object_get(refs, "choose"), 3); /* n 64, k 32, seed 1 */
    assert_int_equal(json_integer_value(json_object_get(c, "n")), 64);
    assert_int_equal(json_integer_value(json_object_get(c, "k")), 32);
    json_t *want = json_object_get(c, "pick");
    cks_trainset t;
    assert_int_equal(cks_memo_load(&t, p, 32, 32, 32, 1), 0);
    assert_int_equal(t.n, 32);
    assert_int_equal(t.eligible, 64);
    assert_int_equal(t.skipped, n - 64);
    for (int64_t i = 0; i < 32; i++)
        assert_int_equal(t.line[i], line_of[json_integer_value(json_array_get(want, (size_t)i))]);
    cks_trainset_release(&t);
    /* more samples than sequences: all of them */
    assert_int_equal(cks_memo_load(&t, p, 32, 32, 1000, 1), 0);
    assert_int_equal(t.n, 64);
    cks_trainset_release(&t);
    /* another seed, another sample (of the same size) */
    assert_int_equal(cks_memo_load(&t, p, 32, 32, 32, 2), 0);
    int differ = 0;
    for (int64_t i = 0; i < 32; i++)
        differ |= t.line[i] != line_of[json_integer_value(json_array_get(want, (size_t)i))];
    assert_true(differ);
    cks_trainset_release(&t);
    json_decref(refs);
    free(rtext);
    free(refp);
    free(text);
}

static void expect_refused(const char *name, const char *text, int code, const char *needle)
{
    char path[4200];
    cks_trainset t;
    snprintf(path, sizeof path, "%s", cks_put_file(tmp, name, text, strlen(text)));
    cks_expect_error(cks_memo_load(&t, path, 2, 2, 0, 1), code, path, needle);
    cks_expect_error(cks_memo_load(&t, path, 2, 2, 1, 1), code, path, needle);
}

static void test_memo__refusals_name_file_and_line(void **state)
{
    expect_refused("noids.jsonl", "{\"token_ids\": [1, 2, 3, 4]}\n{\"text\": \"hi\"}\n",
                   CKS_EFORMAT, "line 2: no \"token_ids\" array");
    expect_refused("first.jsonl", "{\"text\": \"hi\"}\n", CKS_EFORMAT, "line 1: no \"token_ids\"");
    expect_refused("notjson.jsonl", "{\"token_ids\": [1, 2, 3, 4]}\n\n{\"token_ids\": [1,]}\n",
                   CKS_EFORMAT, "line 3");
    expect_refused("neg.jsonl", "{\"token_ids\": [1, 2, -3, 4]}\n", CKS_EFORMAT,
                   "line 1: token_ids[2]");
    expect_refused("plain.txt", "just some text\n", CKS_EFORMAT, "line 1: not JSONL");
    expect_refused("array.jsonl", "[1, 2, 3, 4]\n", CKS_EFORMAT, "line 1");
    char p[4200];
    snprintf(p, sizeof p, "%s/none.jsonl", tmp);
    cks_trainset t;
    cks_expect_error(cks_memo_load(&t, p, 32, 32, 0, 1), CKS_ENOTFOUND, "none.jsonl", NULL);
    const char *ok = cks_put_file(tmp, "ok.jsonl", "{\"token_ids\": [1, 2]}\n", 22);
    cks_expect_error(cks_memo_load(&t, ok, 0, 32, 0, 1), CKS_EINVAL, "prompt 0", NULL);
    cks_expect_error(cks_memo_load(&t, ok, 32, 0, 0, 1), CKS_EINVAL, "continuation 0", NULL);
    /* short sequences are counted, not refused; an empty file has none */
    assert_int_equal(cks_memo_load(&t, ok, 32, 32, 5, 1), 0);
    assert_int_equal(t.n, 0);
    assert_int_equal(t.skipped, 1);
    /* a skipped line's ids are checked against the vocabulary all the same */
    assert_int_equal(cks_trainset_check_vocab(&t, 3, "model@ckpt"), 0);
    cks_expect_error(cks_trainset_check_vocab(&t, 2, "model@ckpt"), CKS_EFORMAT,
                     "line 1: token id 2", NULL);
    cks_memo_summary s;
    cks_memo_score(&s, &t, 32, NULL, NULL, NULL);
    assert_int_equal(s.sequences, 0);
    assert_int_equal(s.skipped, 1);
    assert_true(isnan(s.token_match) && isnan(s.full_match) && isnan(s.prefix_match));
    cks_trainset_release(&t);
    assert_int_equal(cks_memo_load(&t, cks_put_file(tmp, "empty.jsonl", "", 0), 32, 32, 0, 1), 0);
    assert_int_equal(t.n + t.skipped, 0);
    cks_trainset_release(&t);
}

/* Three sequences of k = 2, l = 4: reproduced exactly; right but for the second token;
 * wrong from the first token on, though two later tokens happen to match. */
static void test_memo__scores(void **state)
{
    const char *text = "{\"token_ids\": [9, 9, 1, 2, 3, 4]}\n"
                       "{\"token_ids\": [8, 8, 5, 6, 7, 8, 99]}\n"
                       "{\"token_ids\": [7]}\n"
                       "{\"token_ids\": [7, 7, 1, 1, 1, 1]}\n";
    cks_trainset t;
    assert_int_equal(
        cks_memo_load(&t, cks_put_file(tmp, "s.jsonl", text, strlen(text)), 2, 4, 0, 1), 0);
    assert_int_equal(t.n, 3);
    const int32_t gen[12] = {1, 2, 3, 4, /* all */ 5, 0, 7, 8, /* 3 of 4, prefix 1 */
                             0, 0, 1, 1 /* 2 of 4, prefix 0 */};
    uint8_t match[12], full[3];
    cks_memo_summary s;
    cks_memo_score(&s, &t, 2, gen, match, full);
    static const uint8_t want_match[12] = {1, 1, 1, 1, 1, 0, 1, 1, 0, 0, 1, 1};
    assert_memory_equal(match, want_match, 12);
    assert_int_equal(full[0], 1);
    assert_int_equal(full[1], 0);
    assert_int_equal(full[2], 0);
    assert_int_equal(s.k, 2);
    assert_int_equal(s.l, 4);
    assert_int_equal(s.sequences, 3);
    assert_int_equal(s.skipped, 1);
    assert_close(s.token_match, (4.0 / 4 + 3.0 / 4 + 2.0 / 4) / 3, 1e-15, 0);
    assert_close(s.full_match, 1.0 / 3, 1e-15, 0);
    assert_close(s.prefix_match, (4.0 / 4 + 1.0 / 4 + 0.0 / 4) / 3, 1e-15, 0);
    cks_trainset_release(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_memo__reads_keeps_and_skips),
        cmocka_unit_test(test_memo__samples_follow_gsl_ran_choose),
        cmocka_unit_test(test_memo__refusals_name_file_and_line),
        cmocka_unit_test(test_memo__scores),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
