/* Helpers for cmocka tests: a double-precision assert, temporary folders, and access to
 * the reference data beside the project. */
#ifndef CKS_TESTUTIL_H
#define CKS_TESTUTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

/* Fails unless |got - want| <= atol + rtol * |want| (NaN equals NaN). */
#define assert_close(got, want, rtol, atol) \
    cks_assert_close_impl((double)(got), (double)(want), (rtol), (atol), #got, __FILE__, __LINE__)
void cks_assert_close_impl(double got, double want, double rtol, double atol, const char *expr,
                           const char *file, int line);

/* A fresh empty folder under $TMPDIR (or /tmp), removed by cks_tmpdir_remove. Returns a
 * static buffer's copy (free it). */
char *cks_tmpdir_new(const char *tag);
void cks_tmpdir_remove(char *dir); /* rm -rf and free */

/* Path of a file in ../shared/data (from CKS_SHARED_DATA), or NULL when absent. */
char *cks_shared_data(const char *rel);

/* A prerequisite from outside the tree is missing (a file of ../shared/data, gnuplot, the
 * root a mount needs): prints why (a printf format), then fails the test in CI (CI=true,
 * where everything is present: DESIGN, shared/data/README.md) and skips it elsewhere.
 * A test program that may skip returns cks_tests_status(cmocka_run_group_tests(...)):
 * 77 (ctest's SKIP_RETURN_CODE) when something was skipped and nothing failed. */
#define cks_skip(...)                   \
    do {                                \
        if (cks_skip_note(__VA_ARGS__)) \
            skip();                     \
        fail();                         \
    } while (0)
int cks_skip_note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int cks_tests_status(int failed);

/* Path of a committed test file, tests/data/<rel> under CKS_SOURCE_DIR (set by
 * cks_unit_test); fails the test when it is missing. Free it. */
char *cks_test_data(const char *rel);

/* Reads a whole file into a heap buffer; fails the test on error. Free it. */
unsigned char *cks_read_test_file(const char *path, size_t *len);

/* Writes bytes to a file; fails the test on error. */
void cks_write_file(const char *path, const void *data, size_t len);

/* Writes bytes to DIR/NAME and returns that path (static storage: valid until the next
 * call); fails the test on error. */
const char *cks_put_file(const char *dir, const char *name, const void *data, size_t len);

/* Fails unless rc == code and the last error message (error.h) contains want1 and want2
 * (either may be NULL); then clears the error. For the refusal paths of the limit tests. */
void cks_expect_error(int rc, int code, const char *want1, const char *want2);

/* n bytes of zeroed memory that cost nothing until touched (an anonymous MAP_NORESERVE
 * mapping: inputs at a size limit of gigabytes); release with munmap. */
unsigned char *cks_big_zeroed(size_t n);

/* A heap copy of the JSON document doc padded with spaces to n bytes (n >= strlen(doc)):
 * the same document at any size, for the byte limits of the JSON readers. Free it. */
char *cks_padded_json(const char *doc, size_t n);

/* Writes v as a protobuf base-128 varint at p; returns its length (at most 10). */
size_t cks_put_varint(unsigned char *p, uint64_t v);

#endif
