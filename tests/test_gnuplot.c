/* gnuplot as a child process and the text buffer under it: quoting of untrusted names
 * (the expected literals follow gnuplot's documented rule for single-quoted strings: ''
 * is the only escape), the real gnuplot drawing a PNG, its error message coming back,
 * a missing gnuplot naming the Debian package, and fake gnuplots (shell scripts) that
 * hang, exit without reading their script, or flood stderr. Base64 against the test
 * vectors of RFC 4648 §10; the median against hand-computed cases. */
#include "testutil.h"

#include "error.h"
#include "gnuplot.h"
#include "gnuplot_pool.h"
#include "runview.h"
#include "textbuf.h"

#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static char *quoted(const char *s)
{
    cks_buf b;
    cks_buf_init(&b);
    cks_gnuplot_quote(&b, s);
    assert_int_equal(cks_buf_error(&b), 0);
    return b.data;
}

static void test_gnuplot__quote_escapes(void **state)
{
    struct {
        const char *in, *want;
    } cases[] = {
        {"plain", "'plain'"},
        {"it's", "'it''s'"},
        {"''", "''''''"},
        {"a\nb\rc\td", "'a b c d'"}, /* a newline would end the command */
        {"`touch /tmp/x`", "'`touch /tmp/x`'"},
        {"system(\"id\")", "'system(\"id\")'"},
        {"@macro {^_&}", "'@macro {^_&}'"},
        {"\xce\xbb = 2", "'\xce\xbb = 2'"},           /* UTF-8 kept */
        {"bad \xff\xc0\x80 end", "'bad \?\?\? end'"}, /* not UTF-8: one '?' per byte */
        {"\xed\xa0\x80", "'\?\?\?'"},                 /* a surrogate */
        {"", "''"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *q = quoted(cases[i].in);
        assert_string_equal(q, cases[i].want);
        free(q);
    }
    char longname[1000];
    memset(longname, 'x', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    char *q = quoted(longname);
    assert_int_equal(strlen(q), CKS_GNUPLOT_MAX_LABEL + 2 + 3);
    assert_string_equal(q + strlen(q) - 4, "...'");
    free(q);
}

static void test_gnuplot__find_missing_names_package(void **state)
{
    char *exe = NULL;
    assert_int_equal(cks_gnuplot_find("no-such-gnuplot-here", &exe), CKS_ENOTFOUND);
    assert_non_null(strstr(cks_error_last(), "gnuplot-nox"));
    assert_int_equal(cks_gnuplot_find("/nonexistent/gnuplot", &exe), CKS_ENOTFOUND);
    assert_non_null(strstr(cks_error_last(), "gnuplot-nox"));
    char *old = getenv("PATH") ? strdup(getenv("PATH")) : NULL;
    setenv("PATH", "/nonexistent:", 1);
    assert_int_equal(cks_gnuplot_find(NULL, &exe), CKS_ENOTFOUND);
    assert_non_null(strstr(cks_error_last(), "not found on PATH"));
    if (old)
        setenv("PATH", old, 1);
    free(old);
    assert_null(exe);
}

static char *real_gnuplot(void)
{
    char *exe = NULL;
    if (cks_gnuplot_find(NULL, &exe) != 0)
        return NULL;
    return exe;
}

static void test_gnuplot__draws_png(void **state)
{
    char *exe = real_gnuplot();
    if (!exe)
        cks_skip("gnuplot is not installed (tools/setup-deps.sh installs gnuplot-nox)");
    char *dir = cks_tmpdir_new("gp");
    const char *script = "set terminal pngcairo size 320,200 noenhanced\n"
                         "set output 'x.png'\n$d << EOD\n0 1\n1 NaN\n2 3\nEOD\n"
                         "plot $d using 1:2 with linespoints title 'a''b'\n";
    assert_int_equal(cks_gnuplot_run(exe, dir, script, strlen(script), 20000, "x.png"), 0);
    char path[4200];
    snprintf(path, sizeof path, "%s/x.png", dir);
    size_t n;
    unsigned char *png = cks_read_test_file(path, &n);
    assert_true(n > 24);
    assert_memory_equal(png, "\x89PNG\r\n\x1a\n", 8);
    assert_memory_equal(png + 12, "IHDR", 4);
    assert_int_equal(png[18] << 8 | png[19], 320); /* width, big-endian */
    assert_int_equal(png[22] << 8 | png[23], 200);
    free(png);
    cks_tmpdir_remove(dir);
    free(exe);
}

static void test_gnuplot__error_is_gnuplots_message(void **state)
{
    char *exe = real_gnuplot();
    if (!exe)
        cks_skip("gnuplot is not installed (tools/setup-deps.sh installs gnuplot-nox)");
    char *dir = cks_tmpdir_new("gp");
    const char *script = "set terminal svg\nset output 'y.svg'\nplot no_such_function(x)\n";
    assert_int_equal(cks_gnuplot_run(exe, dir, script, strlen(script), 20000, "y.svg"), CKS_ERROR);
    const char *msg = cks_error_last();
    assert_non_null(strstr(msg, "y.svg: gnuplot failed (exit status 1)"));
    assert_non_null(strstr(msg, "line 3")); /* gnuplot names the script line */
    assert_non_null(strstr(msg, "undefined function"));
    cks_tmpdir_remove(dir);
    free(exe);
}

/* A fake gnuplot: an executable shell script in dir. */
static char *fake(const char *dir, const char *body)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/fake-gnuplot", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f, "#!/bin/sh\n%s\n", body);
    fclose(f);
    chmod(path, 0755);
    return strdup(path);
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void test_gnuplot__hung_gnuplot_is_killed(void **state)
{
    char *dir = cks_tmpdir_new("gp");
    char *exe = fake(dir, "exec sleep 30");
    double t0 = now();
    assert_int_equal(cks_gnuplot_run(exe, dir, "plot x\n", 7, 300, "hang.png"), CKS_EIO);
    assert_true(now() - t0 < 5);
    assert_non_null(strstr(cks_error_last(), "did not finish within 0.3 s"));
    free(exe);
    cks_tmpdir_remove(dir);
}

static void test_gnuplot__early_exit_is_not_sigpipe(void **state)
{
    /* the child exits without reading a 4 MiB script: writing must fail with EPIPE, not
     * kill this process with SIGPIPE, and the exit status must come back */
    char *dir = cks_tmpdir_new("gp");
    char *exe = fake(dir, "echo 'cannot draw' >&2; exit 3");
    size_t n = 4u << 20;
    char *script = malloc(n);
    memset(script, '#', n);
    assert_int_equal(cks_gnuplot_run(exe, dir, script, n, 20000, "early.png"), CKS_ERROR);
    assert_non_null(
        strstr(cks_error_last(), "early.png: gnuplot failed (exit status 3): cannot draw"));
    sigset_t pending;
    sigpending(&pending);
    assert_false(sigismember(&pending, SIGPIPE));
    free(script);
    free(exe);
    cks_tmpdir_remove(dir);
}

static void test_gnuplot__stderr_flood_does_not_deadlock(void **state)
{
    /* 2 MB on stderr while we write a 2 MB script: both pipes fill unless drained together */
    char *dir = cks_tmpdir_new("gp");
    char *exe = fake(dir, "head -c 2000000 /dev/zero | tr '\\0' x >&2; cat >/dev/null; "
                          "echo last line >&2; exit 1");
    size_t n = 2000000;
    char *script = malloc(n);
    memset(script, '#', n);
    double t0 = now();
    assert_int_equal(cks_gnuplot_run(exe, dir, script, n, 20000, "flood.png"), CKS_ERROR);
    assert_true(now() - t0 < 15);
    assert_non_null(strstr(cks_error_last(), "exit status 1"));
    free(script);
    free(exe);
    cks_tmpdir_remove(dir);
}

static void test_gnuplot__pool_runs_jobs_at_once(void **state)
{
    /* four 0.5 s plots on four workers: about 0.5 s, not the 2 s of one after another
     * (sleeping takes no CPU, so a busy machine does not change this) */
    char *dir = cks_tmpdir_new("gp");
    char *exe = fake(dir, "cat >/dev/null; sleep 0.5");
    cks_gnuplot_pool *p;
    assert_int_equal(cks_gnuplot_pool_new(&p, exe, dir, 4, 20000), 0);
    double t0 = now();
    for (int i = 0; i < 4; i++)
        assert_int_equal(cks_gnuplot_pool_submit(p, strdup("plot x\n"), 7, "job.png"), 0);
    assert_int_equal(cks_gnuplot_pool_wait(p), 0);
    double t = now() - t0;
    assert_true(t >= 0.5 && t < 1.5);
    cks_gnuplot_pool_free(p);
    assert_int_equal(cks_gnuplot_pool_new(&p, exe, dir, 0, 20000), CKS_EINVAL);
    free(exe);
    cks_tmpdir_remove(dir);
}

static void test_gnuplot__pool_reports_first_failure(void **state)
{
    char *dir = cks_tmpdir_new("gp");
    char *exe = fake(dir, "if grep -q FAIL; then echo 'bad plot' >&2; exit 1; fi");
    cks_gnuplot_pool *p;
    assert_int_equal(cks_gnuplot_pool_new(&p, exe, dir, 2, 20000), 0);
    assert_int_equal(cks_gnuplot_pool_submit(p, strdup("fine\n"), 5, "a.png"), 0);
    assert_int_equal(cks_gnuplot_pool_submit(p, strdup("FAIL\n"), 5, "b.png"), 0);
    assert_int_equal(cks_gnuplot_pool_wait(p), CKS_ERROR);
    assert_string_equal(cks_error_last(), "b.png: gnuplot failed (exit status 1): bad plot");
    cks_error_clear();
    /* later submissions are refused with the same error, their scripts freed (ASan) */
    assert_int_equal(cks_gnuplot_pool_submit(p, strdup("fine\n"), 5, "c.png"), CKS_ERROR);
    assert_non_null(strstr(cks_error_last(), "b.png"));
    cks_gnuplot_pool_free(p);
    /* freeing with queued jobs drops them */
    assert_int_equal(cks_gnuplot_pool_new(&p, exe, dir, 1, 20000), 0);
    for (int i = 0; i < 2; i++)
        assert_int_equal(cks_gnuplot_pool_submit(p, strdup("fine\n"), 5, "d.png"), 0);
    cks_gnuplot_pool_free(p);
    free(exe);
    cks_tmpdir_remove(dir);
}

static void test_textbuf__base64_rfc4648(void **state)
{
    const char *in[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
    const char *want[] = {"", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};
    for (int i = 0; i < 7; i++) {
        cks_buf b;
        cks_buf_init(&b);
        cks_buf_put_base64(&b, (const unsigned char *)in[i], strlen(in[i]));
        assert_int_equal(cks_buf_error(&b), 0);
        assert_string_equal(cks_buf_text(&b), want[i]);
        cks_buf_release(&b);
    }
}

static const char *html_like(char c)
{
    return c == '<' ? "&lt;" : NULL;
}

static void test_textbuf__put_text_and_printf(void **state)
{
    cks_buf b;
    cks_buf_init(&b);
    assert_string_equal(cks_buf_text(&b), "");
    cks_buf_put_text(&b, "<a>\x01\xe2\x82", 100, html_like); /* truncated euro sign */
    assert_string_equal(cks_buf_text(&b), "&lt;a> \?\?");
    cks_buf_clear(&b);
    cks_buf_put_text(&b, "\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac", 2, NULL); /* three euro signs */
    assert_string_equal(cks_buf_text(&b), "\xe2\x82\xac\xe2\x82\xac...");
    cks_buf_clear(&b);
    char big[1000];
    memset(big, 'y', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    for (int i = 0; i < 100; i++) /* past the 256-byte fast path, many regrowths */
        cks_buf_printf(&b, "%d:%s;", i, big);
    assert_int_equal(cks_buf_error(&b), 0);
    assert_int_equal(b.len, 100 * (999 + 2) + 10 * 1 + 90 * 2); /* "i:" y... ";" */
    assert_int_equal(strlen(b.data), b.len);
    cks_buf_release(&b);
}

static void test_runview__median(void **state)
{
    double v[] = {5, NAN, 1, 4, INFINITY, 2, 3};
    size_t all[] = {0, 1, 2, 3, 4, 5, 6}, even[] = {0, 2, 3, 5}, none[] = {1, 4};
    double scratch[7];
    assert_close(cks_runview_median(v, all, 7, scratch), 3, 0, 0);  /* 1 2 3 4 5 */
    assert_close(cks_runview_median(v, even, 4, scratch), 3, 0, 0); /* 1 2 4 5 -> (2+4)/2 */
    assert_true(isnan(cks_runview_median(v, none, 2, scratch)));
    assert_true(isnan(cks_runview_median(v, all, 0, scratch)));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gnuplot__quote_escapes),
        cmocka_unit_test(test_gnuplot__find_missing_names_package),
        cmocka_unit_test(test_gnuplot__draws_png),
        cmocka_unit_test(test_gnuplot__error_is_gnuplots_message),
        cmocka_unit_test(test_gnuplot__hung_gnuplot_is_killed),
        cmocka_unit_test(test_gnuplot__early_exit_is_not_sigpipe),
        cmocka_unit_test(test_gnuplot__stderr_flood_does_not_deadlock),
        cmocka_unit_test(test_gnuplot__pool_runs_jobs_at_once),
        cmocka_unit_test(test_gnuplot__pool_reports_first_failure),
        cmocka_unit_test(test_textbuf__base64_rfc4648),
        cmocka_unit_test(test_textbuf__put_text_and_printf),
        cmocka_unit_test(test_runview__median),
    };
    return cks_tests_status(cmocka_run_group_tests(tests, NULL, NULL));
}
