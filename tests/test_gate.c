/* The gate's decision for one score (reports/gate.h) and the baseline reader's rejections
 * (reports/regress.h). Expected values are worked out by hand in each test from the
 * definitions, or are published ones: the Wilson interval of 0/10 at 95% is [0, 0.2775]
 * and Newcombe's method-10 interval for 56/70 - 48/80 is [0.0524, 0.3339] (Newcombe 1998,
 * Statistics in Medicine 17:873, Table II, example (a)). */
#include "testutil.h"

#include "error.h"
#include "gate.h"
#include "regress.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define Z95 1.959963984540054

static cks_tolerance tol(const char *spec)
{
    cks_tolerance t;
    assert_int_equal(cks_tolerance_parse(spec, &t), 0);
    return t;
}

static cks_gate_result judge(double a, double sa, double r, double sr, cks_direction d,
                             const char *spec)
{
    cks_gate_point pa = {a, sa, NAN}, pr = {r, sr, NAN};
    cks_tolerance t = tol(spec);
    cks_gate_result g;
    cks_gate_compare(&pa, &pr, d, 0, &t, "new", "old", &g);
    return g;
}

static void test_gate__tolerance_parse(void **state)
{
    char buf[128];
    cks_tolerance t = tol("se:2,rel:0.01,abs:0.5");
    assert_int_equal(t.n, 3);
    assert_int_equal(t.t[0].kind, CKS_TOL_SE);
    assert_close(t.t[1].x, 0.01, 0, 0);
    assert_string_equal(cks_tolerance_format(&t, buf, sizeof buf), "se:2,rel:0.01,abs:0.5");
    t = tol("abs:0");
    assert_int_equal(t.n, 1);
    static const char *const bad[] = {
        "",        "se",      "se:",       "se:0",  "abs:-1",
        "rel:x",   "foo:1",   "se:2,",     ",se:2", "se:2,,abs:1",
        "abs:inf", "abs:nan", "rel:1e999", "se:1 ", "abs:1,abs:1,abs:1,abs:1,abs:1"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cks_tolerance out = {.n = 77};
        assert_int_equal(cks_tolerance_parse(bad[i], &out), CKS_EINVAL);
        assert_int_equal(out.n, 77); /* untouched on failure */
        assert_non_null(strstr(cks_error_last(), "tolerance"));
    }
}

/* se:K: sigma = sqrt(0.02^2 + 0.02^2) = 0.0282843; a drop of 0.1 is 3.54 sigma. */
static void test_gate__standard_errors(void **state)
{
    cks_gate_result g = judge(0.5, 0.02, 0.6, 0.02, CKS_DIR_HIGHER, "se:2");
    assert_int_equal(g.severity, CKS_SEV_REGRESSION);
    assert_close(g.delta, -0.1, 1e-12, 0);
    assert_close(g.sigma, 0.02 * sqrt(2), 1e-12, 0);
    assert_close(g.z, -0.1 / (0.02 * sqrt(2)), 1e-12, 0);
    assert_close(g.worse_tol, 2 * 0.02 * sqrt(2), 1e-12, 0);
    assert_string_equal(g.rule, "se:2");
    assert_non_null(strstr(g.note, "beyond the tolerance"));
    g = judge(0.5, 0.02, 0.6, 0.02, CKS_DIR_HIGHER, "se:4"); /* 4 sigma = 0.113 > 0.1 */
    assert_int_equal(g.severity, CKS_SEV_WARNING);
    assert_non_null(strstr(g.note, "within noise"));
    g = judge(0.7, 0.02, 0.6, 0.02, CKS_DIR_HIGHER, "se:2");
    assert_int_equal(g.severity, CKS_SEV_IMPROVEMENT);
    assert_string_equal(g.note, "");
    g = judge(0.61, 0.02, 0.6, 0.02, CKS_DIR_HIGHER, "se:2");
    assert_int_equal(g.severity, CKS_SEV_UNCHANGED);
    g = judge(0.6, 0.02, 0.6, 0.02, CKS_DIR_HIGHER, "se:2");
    assert_int_equal(g.severity, CKS_SEV_UNCHANGED);
    assert_close(g.z, 0, 0, 0);
}

/* Lower is better: a rise is the bad direction. rel:0.01 of 3.876 = 0.03876. */
static void test_gate__lower_is_better_relative(void **state)
{
    cks_gate_result g = judge(3.924, NAN, 3.876, NAN, CKS_DIR_LOWER, "rel:0.01");
    assert_int_equal(g.severity, CKS_SEV_REGRESSION);
    assert_close(g.worse_tol, 0.03876, 1e-12, 0);
    assert_true(isnan(g.z) && isnan(g.sigma));
    g = judge(3.9, NAN, 3.876, NAN, CKS_DIR_LOWER, "rel:0.01");
    assert_int_equal(g.severity, CKS_SEV_WARNING);
    g = judge(3.8, NAN, 3.876, NAN, CKS_DIR_LOWER, "rel:0.01");
    assert_int_equal(g.severity, CKS_SEV_IMPROVEMENT);
    /* the same rise for a higher-is-better score is an improvement */
    g = judge(3.924, NAN, 3.876, NAN, CKS_DIR_HIGHER, "rel:0.01");
    assert_int_equal(g.severity, CKS_SEV_IMPROVEMENT);
}

/* equal: any move beyond the tolerance, either way, is a regression; none is a warning. */
static void test_gate__equal_direction(void **state)
{
    assert_int_equal(judge(10.001, NAN, 10, NAN, CKS_DIR_EQUAL, "abs:0.01").severity,
                     CKS_SEV_UNCHANGED);
    assert_int_equal(judge(9.999, NAN, 10, NAN, CKS_DIR_EQUAL, "abs:0.01").severity,
                     CKS_SEV_UNCHANGED);
    cks_gate_result g = judge(10.02, NAN, 10, NAN, CKS_DIR_EQUAL, "abs:0.01");
    assert_int_equal(g.severity, CKS_SEV_REGRESSION);
    assert_non_null(strstr(g.note, "changed by"));
    assert_int_equal(judge(9.98, NAN, 10, NAN, CKS_DIR_EQUAL, "abs:0.01").severity,
                     CKS_SEV_REGRESSION);
    assert_int_equal(judge(10, NAN, 10, NAN, CKS_DIR_EQUAL, "abs:0").severity, CKS_SEV_UNCHANGED);
    assert_int_equal(judge(10 + 1e-9, NAN, 10, NAN, CKS_DIR_EQUAL, "abs:0").severity,
                     CKS_SEV_REGRESSION);
}

/* The first term that applies decides: se needs both stderrs, rel a non-zero reference. */
static void test_gate__first_applicable_term(void **state)
{
    cks_gate_result g = judge(0.5, NAN, 0.6, 0.02, CKS_DIR_HIGHER, "se:2,rel:0.5");
    assert_string_equal(g.rule, "rel:0.5");
    assert_close(g.worse_tol, 0.3, 1e-12, 0);
    assert_int_equal(g.severity, CKS_SEV_WARNING);
    g = judge(-0.5, NAN, 0, NAN, CKS_DIR_HIGHER, "rel:0.5,abs:0.25");
    assert_string_equal(g.rule, "abs:0.25");
    assert_int_equal(g.severity, CKS_SEV_REGRESSION);
    /* no term applies: a drop is a warning that says so, never a pass */
    g = judge(0.5, NAN, 0.6, NAN, CKS_DIR_HIGHER, "se:2");
    assert_int_equal(g.severity, CKS_SEV_WARNING);
    assert_non_null(strstr(g.note, "no tolerance term applies (no standard error)"));
    assert_string_equal(g.rule, "");
    g = judge(0.7, NAN, 0.6, NAN, CKS_DIR_HIGHER, "se:2");
    assert_int_equal(g.severity, CKS_SEV_IMPROVEMENT);
}

static void test_gate__nan_and_unknown_direction_warn(void **state)
{
    cks_gate_result g = judge(NAN, NAN, 0.6, 0.01, CKS_DIR_HIGHER, "se:2");
    assert_int_equal(g.severity, CKS_SEV_WARNING);
    assert_string_equal(g.note, "no value at new (NaN): cannot compare");
    g = judge(0.6, NAN, NAN, NAN, CKS_DIR_HIGHER, "se:2");
    assert_string_equal(g.note, "no value at old (NaN): cannot compare");
    g = judge(NAN, NAN, NAN, NAN, CKS_DIR_HIGHER, "se:2");
    assert_string_equal(g.note, "no value at new nor at old (NaN): cannot compare");
    /* an unknown direction is a warning whichever way the score moved */
    g = judge(0.9, 0.01, 0.1, 0.01, CKS_DIR_UNKNOWN, "se:2");
    assert_int_equal(g.severity, CKS_SEV_WARNING);
    assert_non_null(strstr(g.note, "direction unknown"));
    assert_close(g.delta, 0.8, 1e-12, 0);
}

static void test_gate__infinities(void **state)
{
    cks_gate_result g = judge(INFINITY, NAN, 3.9, NAN, CKS_DIR_LOWER, "rel:0.01");
    assert_int_equal(g.severity, CKS_SEV_REGRESSION);
    g = judge(INFINITY, NAN, INFINITY, NAN, CKS_DIR_LOWER, "rel:0.01");
    assert_int_equal(g.severity, CKS_SEV_WARNING);
    assert_non_null(strstr(g.note, "both infinite"));
}

static void test_gate__wilson_published(void **state)
{
    double lo, hi;
    cks_wilson_interval(0, 10, Z95, &lo, &hi);
    assert_close(lo, 0, 0, 0);
    assert_close(hi, 0.2775, 0, 5e-5);
    /* symmetric: 10/10 */
    cks_wilson_interval(1, 10, Z95, &lo, &hi);
    assert_close(lo, 1 - 0.2775, 0, 5e-5);
    assert_close(hi, 1, 0, 1e-12);
}

/* Newcombe's interval for 56/70 - 48/80 is [0.0524, 0.3339]: the score may rise by
 * delta - L before it is an improvement and fall by U - delta before it is a regression
 * (delta = 0.2). Without stderrs, n known: the binomial path. */
static void test_gate__newcombe_published(void **state)
{
    cks_gate_point a = {56.0 / 70, NAN, 70}, r = {48.0 / 80, NAN, 80};
    cks_tolerance t = tol("se:1.959963984540054");
    cks_gate_result g;
    cks_gate_compare(&a, &r, CKS_DIR_HIGHER, 1, &t, "a", "r", &g);
    assert_non_null(strstr(g.rule, "wilson:1.95996"));
    assert_close(g.delta - g.better_tol, 0.0524, 0, 5e-5);
    assert_close(g.delta + g.worse_tol, 0.3339, 0, 5e-5);
    /* L = 0.0524 > 0 is an improvement, but 70 and 80 documents are not the same
     * evaluation: the gate says so */
    assert_int_equal(g.severity, CKS_SEV_WARNING);
    assert_non_null(strstr(g.note, "sample counts differ (70 at a, 80 at r)"));
    /* the binomial standard error of the difference stands in for sigma */
    double want = sqrt(0.8 * 0.2 / 70 + 0.6 * 0.4 / 80);
    assert_close(g.sigma, want, 1e-12, 0);
    assert_close(g.z, 0.2 / want, 1e-12, 0);
    cks_gate_point a2 = {56.0 / 70, NAN, NAN}, r2 = {48.0 / 80, NAN, NAN};
    a2.n = r2.n = 75; /* same n: improvement */
    cks_gate_compare(&a2, &r2, CKS_DIR_HIGHER, 1, &t, "a", "r", &g);
    assert_int_equal(g.severity, CKS_SEV_IMPROVEMENT);
    assert_string_equal(g.note, "");
    /* reversed it is a regression for a higher-is-better score */
    cks_gate_compare(&r, &a, CKS_DIR_HIGHER, 1, &t, "r", "a", &g);
    assert_int_equal(g.severity, CKS_SEV_REGRESSION);
    /* the same pair is not binomial when the score is not a proportion: se does not apply */
    cks_gate_compare(&r, &a, CKS_DIR_HIGHER, 0, &t, "r", "a", &g);
    assert_int_equal(g.severity, CKS_SEV_WARNING);
    assert_non_null(strstr(g.note, "no tolerance term applies"));
}

/* One side with a stored stderr, the other binomial: plain K-sigma with both errors. */
static void test_gate__binomial_fills_missing_stderr(void **state)
{
    cks_gate_point a = {0.22, NAN, 400}, r = {0.30, 0.02, NAN};
    cks_tolerance t = tol("se:2");
    cks_gate_result g;
    cks_gate_compare(&a, &r, CKS_DIR_HIGHER, 1, &t, "a", "r", &g);
    double sigma = hypot(sqrt(0.22 * 0.78 / 400), 0.02);
    assert_close(g.sigma, sigma, 1e-12, 0);
    assert_close(g.worse_tol, 2 * sigma, 1e-12, 0);
    assert_string_equal(g.rule, "se:2");
    assert_int_equal(g.severity, CKS_SEV_REGRESSION); /* 0.08 > 2 * 0.02879 */
    a.value = 0.25;                                   /* 0.05 < 2 * 0.02947: within noise */
    cks_gate_compare(&a, &r, CKS_DIR_HIGHER, 1, &t, "a", "r", &g);
    assert_int_equal(g.severity, CKS_SEV_WARNING);
}

static void test_gate__sample_counts_differ(void **state)
{
    cks_gate_point a = {0.61, 0.01, 1000}, r = {0.60, 0.01, 500};
    cks_tolerance t = tol("se:2");
    cks_gate_result g;
    cks_gate_compare(&a, &r, CKS_DIR_HIGHER, 1, &t, "a", "r", &g);
    assert_int_equal(g.severity, CKS_SEV_WARNING);
    assert_non_null(strstr(g.note, "sample counts differ (1000 at a, 500 at r)"));
    a.value = 0.3; /* a regression stays one, with the note */
    cks_gate_compare(&a, &r, CKS_DIR_HIGHER, 1, &t, "a", "r", &g);
    assert_int_equal(g.severity, CKS_SEV_REGRESSION);
    assert_non_null(strstr(g.note, "sample counts differ"));
}

/* ---- a change with its own interval (held-out nll with the bootstrap of dnll) ---- */

static cks_gate_result judge_iv(double a, double r, double lo, double hi, cks_direction d,
                                const char *spec)
{
    cks_gate_point pa = {a, NAN, 100}, pr = {r, NAN, 100};
    cks_tolerance t = tol(spec);
    cks_gate_result g;
    cks_gate_compare_interval(&pa, &pr, lo, hi, d, &t, "new", "old", &g);
    return g;
}

/* nll 3.00 -> 3.05, interval [0.04, 0.06]. abs:0.03: lo 0.04 > 0.03, a regression;
 * abs:0.05: lo < 0.05, worse within the margin, a warning; rel:0.01: t = 0.03. */
static void test_gate__interval_margins(void **state)
{
    cks_gate_result g = judge_iv(3.05, 3.00, 0.04, 0.06, CKS_DIR_LOWER, "abs:0.03");
    assert_int_equal(g.severity, CKS_SEV_REGRESSION);
    assert_int_equal(g.interval, 1);
    assert_close(g.lo, 0.04, 0, 0);
    assert_close(g.hi, 0.06, 0, 0);
    assert_close(g.worse_tol, 0.03, 0, 0);
    assert_true(isnan(g.sigma) && isnan(g.z));
    assert_string_equal(g.rule, "bootstrap+abs:0.03");
    assert_non_null(strstr(g.note, "95% interval [0.04, 0.06]"));
    g = judge_iv(3.05, 3.00, 0.04, 0.06, CKS_DIR_LOWER, "abs:0.05");
    assert_int_equal(g.severity, CKS_SEV_WARNING);
    assert_non_null(strstr(g.note, "within noise"));
    g = judge_iv(3.05, 3.00, 0.04, 0.06, CKS_DIR_LOWER, "rel:0.01");
    assert_int_equal(g.severity, CKS_SEV_REGRESSION);
    assert_close(g.worse_tol, 0.03, 1e-12, 0);
    /* falls: improvement when the whole interval is below -t */
    g = judge_iv(2.90, 3.00, -0.12, -0.08, CKS_DIR_LOWER, "abs:0.05");
    assert_int_equal(g.severity, CKS_SEV_IMPROVEMENT);
    g = judge_iv(2.90, 3.00, -0.12, -0.08, CKS_DIR_LOWER, "abs:0.1");
    assert_int_equal(g.severity, CKS_SEV_UNCHANGED);
    /* higher is better: the mirror image */
    g = judge_iv(0.45, 0.50, -0.06, -0.04, CKS_DIR_HIGHER, "abs:0.03");
    assert_int_equal(g.severity, CKS_SEV_REGRESSION);
    g = judge_iv(0.55, 0.50, 0.04, 0.06, CKS_DIR_HIGHER, "abs:0.03");
    assert_int_equal(g.severity, CKS_SEV_IMPROVEMENT);
    /* equal: beyond the margin either way */
    g = judge_iv(2.90, 3.00, -0.12, -0.08, CKS_DIR_EQUAL, "abs:0.05");
    assert_int_equal(g.severity, CKS_SEV_REGRESSION);
    g = judge_iv(2.90, 3.00, -0.12, 0.01, CKS_DIR_EQUAL, "abs:0.05");
    assert_int_equal(g.severity, CKS_SEV_UNCHANGED);
}

/* se:K: margin 0, halves scaled by K / 1.959964 around the change d = 0.01: for [-0.01,
 * 0.03] and se:1, [0.01 - 0.02/z, 0.01 + 0.02/z] = [-0.000204, 0.020204]: still reaching
 * below 0, a warning; [0.005, 0.015] with se:1 gives [0.00745, 0.01255]: a regression,
 * and with se:4 [-0.0002, 0.0202]: a warning. */
static void test_gate__interval_se_scaling(void **state)
{
    cks_gate_result g = judge_iv(3.01, 3.00, -0.01, 0.03, CKS_DIR_LOWER, "se:1");
    assert_int_equal(g.severity, CKS_SEV_WARNING);
    assert_close(g.lo, 0.01 - 0.02 / Z95, 1e-9, 0);
    assert_close(g.hi, 0.01 + 0.02 / Z95, 1e-9, 0);
    assert_close(g.worse_tol, 0, 0, 0);
    assert_string_equal(g.rule, "bootstrap+se:1");
    g = judge_iv(3.01, 3.00, 0.005, 0.015, CKS_DIR_LOWER, "se:1");
    assert_int_equal(g.severity, CKS_SEV_REGRESSION);
    g = judge_iv(3.01, 3.00, 0.005, 0.015, CKS_DIR_LOWER, "se:4");
    assert_int_equal(g.severity, CKS_SEV_WARNING);
    assert_close(g.lo, 0.01 - 0.005 * 4 / Z95, 1e-9, 0);
    /* se:1.959964: the interval itself */
    g = judge_iv(3.01, 3.00, 0.005, 0.015, CKS_DIR_LOWER, "se:1.959963984540054");
    assert_close(g.lo, 0.005, 1e-12, 0);
    assert_close(g.hi, 0.015, 1e-12, 0);
}

/* No usable interval (a NaN bound), no direction or no applicable term: as
 * cks_gate_compare; sample counts that differ still warn. */
static void test_gate__interval_fallbacks(void **state)
{
    cks_gate_result g = judge_iv(3.05, 3.00, NAN, 0.06, CKS_DIR_LOWER, "abs:0.03");
    assert_int_equal(g.interval, 0);
    assert_true(isnan(g.lo));
    assert_int_equal(g.severity, CKS_SEV_REGRESSION); /* worse by 0.05 > 0.03 */
    assert_string_equal(g.rule, "abs:0.03");
    g = judge_iv(3.05, 3.00, 0.04, 0.06, CKS_DIR_UNKNOWN, "abs:0.03");
    assert_int_equal(g.interval, 0);
    assert_int_equal(g.severity, CKS_SEV_WARNING);
    g = judge_iv(3.05, 0, 0.04, 0.06, CKS_DIR_LOWER, "rel:0.01"); /* rel of 0: no term */
    assert_int_equal(g.interval, 0);
    assert_int_equal(g.severity, CKS_SEV_WARNING);
    cks_gate_point pa = {2.99, NAN, 100}, pr = {3.0, NAN, 90};
    cks_tolerance t = tol("abs:0.1");
    cks_gate_compare_interval(&pa, &pr, -0.02, 0.0, CKS_DIR_LOWER, &t, "new", "old", &g);
    assert_int_equal(g.interval, 1);
    assert_int_equal(g.severity, CKS_SEV_WARNING);
    assert_non_null(strstr(g.note, "sample counts differ"));
}

/* ---- baseline reader ---- */

static void expect_bad_baseline(const char *dir, const char *text, const char *msg)
{
    char path[4200];
    cks_baseline b;
    snprintf(path, sizeof path, "%s/b.json", dir);
    cks_write_file(path, text, strlen(text));
    int err = cks_baseline_read(path, &b);
    if (err == 0 || !strstr(cks_error_last(), msg))
        fail_msg("baseline %s: got %d '%s', expected an error with '%s'", text, err,
                 cks_error_last(), msg);
    assert_non_null(strstr(cks_error_last(), path));
}

#define HEAD                                                                                    \
    "{\"format\": \"ckptscope-baseline\", \"format_version\": 1, \"run\": {\"model\": \"m\"}, " \
    "\"checkpoint\": {\"name\": \"c\", \"step\": 5}, "

static void test_gate__baseline_rejections(void **state)
{
    char *dir = cks_tmpdir_new("gate");
    expect_bad_baseline(dir, "{\"format\": ", "line");
    expect_bad_baseline(dir, "[1]", "");
    expect_bad_baseline(dir, "{\"format\": \"ckptscope-run\", \"format_version\": 1}",
                        "not a ckptscope baseline");
    expect_bad_baseline(dir,
                        "{\"format\": \"ckptscope-baseline\", \"format_version\": 2, \"run\": {}, "
                        "\"checkpoint\": {\"name\": \"c\", \"step\": 1}, \"metrics\": []}",
                        "format_version 2");
    expect_bad_baseline(dir, HEAD "\"metrics\": {}}", "'metrics' must be an array");
    expect_bad_baseline(dir, HEAD "\"metrics\": [3]}", "metrics[0] is not an object");
    expect_bad_baseline(dir, HEAD "\"metrics\": [{\"value\": 1}]}", "id");
    expect_bad_baseline(dir, HEAD "\"metrics\": [{\"id\": \"x\", \"value\": \"1\"}]}",
                        "'value' must be a number or null");
    expect_bad_baseline(dir, HEAD "\"metrics\": [{\"id\": \"x\", \"direction\": \"up\"}]}",
                        "'direction' must be higher, lower, equal or unknown");
    expect_bad_baseline(dir, HEAD "\"metrics\": [{\"id\": \"x\", \"tolerance\": \"se:-1\"}]}",
                        "bad tolerance 'se:-1'");
    expect_bad_baseline(dir, HEAD "\"metrics\": [{\"id\": \"x\"}, {\"id\": \"x\"}]}",
                        "listed twice");
    expect_bad_baseline(dir, HEAD "\"metrics\": [{\"id\": \"a\\u0000b\"}]}", "NUL");
    expect_bad_baseline(dir,
                        "{\"format\": \"ckptscope-baseline\", \"format_version\": 1, \"run\": "
                        "{\"config\": 3}, \"checkpoint\": {\"name\": \"c\", \"step\": 1}, "
                        "\"metrics\": []}",
                        "'config' must be an object or null");

    /* a good one: sorted by id, nulls as NaN */
    char path[4200];
    cks_baseline b;
    const char *good = HEAD "\"metrics\": [{\"id\": \"z\", \"value\": null}, {\"id\": \"a\", "
                            "\"value\": 0.5, \"stderr\": 0.1, \"n\": 10, \"direction\": "
                            "\"lower\", \"tolerance\": \"abs:1\"}]}";
    snprintf(path, sizeof path, "%s/good.json", dir);
    cks_write_file(path, good, strlen(good));
    assert_int_equal(cks_baseline_read(path, &b), 0);
    assert_int_equal(b.n, 2);
    assert_string_equal(b.m[0].id, "a");
    assert_int_equal(b.m[0].dir, CKS_DIR_LOWER);
    assert_true(b.m[0].has_tol && b.m[0].tol.t[0].kind == CKS_TOL_ABS);
    assert_true(isnan(b.m[1].value) && !b.m[1].has_tol && b.m[1].dir == CKS_DIR_UNKNOWN);
    assert_string_equal(b.model, "m");
    assert_int_equal(b.step, 5);
    cks_baseline_release(&b);
    cks_tmpdir_remove(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gate__tolerance_parse),
        cmocka_unit_test(test_gate__standard_errors),
        cmocka_unit_test(test_gate__lower_is_better_relative),
        cmocka_unit_test(test_gate__equal_direction),
        cmocka_unit_test(test_gate__first_applicable_term),
        cmocka_unit_test(test_gate__nan_and_unknown_direction_warn),
        cmocka_unit_test(test_gate__infinities),
        cmocka_unit_test(test_gate__wilson_published),
        cmocka_unit_test(test_gate__newcombe_published),
        cmocka_unit_test(test_gate__binomial_fills_missing_stderr),
        cmocka_unit_test(test_gate__sample_counts_differ),
        cmocka_unit_test(test_gate__interval_margins),
        cmocka_unit_test(test_gate__interval_se_scaling),
        cmocka_unit_test(test_gate__interval_fallbacks),
        cmocka_unit_test(test_gate__baseline_rejections),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
