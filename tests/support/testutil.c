/* cmocka helpers (see testutil.h). */
#include "testutil.h"

#include "error.h"

#include <ftw.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

void cks_assert_close_impl(double got, double want, double rtol, double atol, const char *expr,
                           const char *file, int line)
{
    if (isnan(got) && isnan(want))
        return;
    if (!(fabs(got - want) <= atol + rtol * fabs(want)) && got != want) {
        char msg[512];
        snprintf(msg, sizeof msg, "%s = %.17g, expected %.17g (rtol %g, atol %g)", expr, got, want,
                 rtol, atol);
        print_error("%s\n", msg);
        _fail(file, line);
    }
}

char *cks_tmpdir_new(const char *tag)
{
    const char *base = getenv("TMPDIR");
    char tmpl[4096];
    snprintf(tmpl, sizeof tmpl, "%s/cks-%s-XXXXXX", base && *base ? base : "/tmp", tag);
    char *d = mkdtemp(tmpl);
    assert_non_null(d);
    return strdup(d);
}

static int rm_one(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    return remove(p);
}

void cks_tmpdir_remove(char *dir)
{
    if (dir && !getenv("CKS_KEEP_TMP"))
        nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    free(dir);
}

char *cks_shared_data(const char *rel)
{
    const char *base = getenv("CKS_SHARED_DATA");
    char p[4096];
    if (!base)
        return NULL;
    snprintf(p, sizeof p, "%s/%s", base, rel);
    if (access(p, R_OK) != 0)
        return NULL;
    return strdup(p);
}

void cks_write_file(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

const char *cks_put_file(const char *dir, const char *name, const void *data, size_t len)
{
    static char path[4200];
    assert_true(snprintf(path, sizeof path, "%s/%s", dir, name) < (int)sizeof path);
    cks_write_file(path, data, len);
    return path;
}

static int skipped; /* cks_skip calls outside CI in this program */

int cks_skip_note(const char *fmt, ...)
{
    char why[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    const char *ci = getenv("CI");
    if (ci && strcmp(ci, "true") == 0) {
        print_error("%s (CI has every prerequisite: this fails)\n", why);
        return 0;
    }
    print_message("skipped: %s\n", why);
    skipped++;
    return 1;
}

int cks_tests_status(int failed)
{
    return failed ? failed : skipped ? 77 : 0;
}

char *cks_test_data(const char *rel)
{
    const char *base = getenv("CKS_SOURCE_DIR");
    char p[4096];
    if (!base)
        fail_msg("CKS_SOURCE_DIR is not set (run the test through ctest)");
    snprintf(p, sizeof p, "%s/tests/data/%s", base, rel);
    if (access(p, R_OK) != 0)
        fail_msg("missing test file %s", p);
    return strdup(p);
}

unsigned char *cks_read_test_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    long n = ftell(f);
    assert_true(n >= 0);
    rewind(f);
    unsigned char *buf = malloc((size_t)n + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *len = (size_t)n;
    return buf;
}

void cks_expect_error(int rc, int code, const char *want1, const char *want2)
{
    const char *msg = cks_error_last();
    if (rc != code || (want1 && !strstr(msg, want1)) || (want2 && !strstr(msg, want2)))
        fail_msg("got %d '%s', expected %d with '%s' and '%s'", rc, msg, code, want1 ? want1 : "",
                 want2 ? want2 : "");
    cks_error_clear();
}

unsigned char *cks_big_zeroed(size_t n)
{
    void *p =
        mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    assert_true(p != MAP_FAILED);
    return p;
}

size_t cks_put_varint(unsigned char *p, uint64_t v)
{
    size_t n = 0;
    do {
        p[n++] = (unsigned char)((v & 0x7F) | (v > 0x7F ? 0x80 : 0));
        v >>= 7;
    } while (v);
    return n;
}

char *cks_padded_json(const char *doc, size_t n)
{
    size_t len = strlen(doc);
    assert_true(n >= len);
    char *text = malloc(n ? n : 1);
    assert_non_null(text);
    memcpy(text, doc, len);
    memset(text + len, ' ', n - len);
    return text;
}
