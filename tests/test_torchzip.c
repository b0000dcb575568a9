/* The zip container of torch.save files: real archives written by torch 1.13 (and by
 * Python's zipfile with ZIP64 local fields), archives in miniz's layout built by
 * tests/support/torchfx.c, and the structural refusals the committed hostile files do
 * not cover. Expected contents come from the files themselves (Python's zipfile agrees
 * on them when tools/make_torch_fixtures.py reads them back). */
#include "error.h"
#include "map.h"
#include "testutil.h"
#include "torchfx.h"
#include "torchzip.h"

#include <stdlib.h>
#include <string.h>

static cks_map *map_data(const char *rel)
{
    char *path = cks_test_data(rel);
    cks_map *m = NULL;
    assert_int_equal(cks_map_file(&m, path, NULL), 0);
    free(path);
    return m;
}

static void test_torchzip__reads_torch_save_archive(void **state)
{
    cks_map *m = map_data("torch/views_f32.bin");
    cks_torchzip z;
    assert_int_equal(cks_torchzip_open(m, &z), 0);
    assert_string_equal(z.prefix, "views_f32"); /* torch names the folder after the file */
    assert_int_equal(z.count, 4);               /* data.pkl, data/0, data/1, version */
    const cks_zip_entry *d0 = cks_torchzip_find(&z, "data/0"),
                        *v = cks_torchzip_find(&z, "version");
    assert_non_null(d0);
    assert_non_null(cks_torchzip_find(&z, "data/1"));
    assert_non_null(cks_torchzip_find(&z, "data.pkl"));
    assert_null(cks_torchzip_find(&z, "data/2"));
    assert_int_equal(d0->size, 48 * 4);             /* the fused 12x4 float storage */
    assert_int_equal((d0->data - m->data) % 64, 0); /* torch aligns data to 64 bytes */
    float x;
    memcpy(&x, d0->data + 4 * 47, 4);
    assert_true(x == 47.0f / 8 - 2); /* the script's formula: arange(48) / 8 - 2 */
    assert_int_equal(v->size, 2);
    assert_memory_equal(v->data, "3\n", 2);
    assert_int_equal(cks_torchzip_check_crc(&z, d0), 0);
    cks_torchzip_release(&z);
    cks_map_free(m);
}

/* The same entries re-zipped by Python's zipfile with ZIP64 local extra fields and no
 * data descriptors: the other way local headers carry sizes. */
static void test_torchzip__reads_zip64_local_fields(void **state)
{
    cks_map *a = map_data("torch/views_f32.bin"), *b = map_data("torch/zip64_local.bin");
    cks_torchzip za, zb;
    assert_int_equal(cks_torchzip_open(a, &za), 0);
    assert_int_equal(cks_torchzip_open(b, &zb), 0);
    assert_int_equal(za.count, zb.count);
    for (size_t i = 0; i < za.count; i++) {
        assert_string_equal(za.entries[i].name, zb.entries[i].name);
        assert_int_equal(za.entries[i].size, zb.entries[i].size);
        assert_memory_equal(za.entries[i].data, zb.entries[i].data, za.entries[i].size);
    }
    cks_torchzip_release(&za);
    cks_torchzip_release(&zb);
    cks_map_free(a);
    cks_map_free(b);
}

/* An archive in memory, adopted as a map (the way git blobs arrive). */
static cks_map *adopt(unsigned char *buf, size_t n)
{
    cks_map *m = NULL;
    assert_int_equal(cks_map_adopt(&m, buf, n, free, buf, "mem.bin"), 0);
    return m;
}

static unsigned char *small_archive(size_t *n, const char *name2)
{
    static const char pkl[] = "\x80\x02}.";
    cks_fx_zip_entry e[] = {{"archive/data.pkl", pkl, sizeof pkl - 1},
                            {name2, "abcd", 4},
                            {"archive/version", "3\n", 2}};
    unsigned char *buf = cks_fx_torchzip_mem(e, 3, n);
    assert_non_null(buf);
    return buf;
}

static void expect_open_error(unsigned char *buf, size_t n, int code, const char *want)
{
    cks_map *m = adopt(buf, n);
    cks_torchzip z;
    int rc = cks_torchzip_open(m, &z);
    if (rc != code || !strstr(cks_error_last(), want) || !strstr(cks_error_last(), "mem.bin"))
        fail_msg("got %d '%s', expected %d with '%s'", rc, cks_error_last(), code, want);
    cks_map_free(m);
}

/* Offset of the end record, and of the ZIP64 end record that miniz always writes. */
static size_t end_at(size_t n)
{
    return n - 22;
}

static size_t end64_at(size_t n)
{
    return n - 22 - 20 - 56;
}

static void put32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static void test_torchzip__reads_miniz_layout(void **state)
{
    size_t n;
    unsigned char *buf = small_archive(&n, "archive/data/0");
    cks_map *m = adopt(buf, n);
    cks_torchzip z;
    assert_int_equal(cks_torchzip_open(m, &z), 0);
    const cks_zip_entry *e = cks_torchzip_find(&z, "data/0");
    assert_non_null(e);
    assert_int_equal(e->size, 4);
    assert_memory_equal(e->data, "abcd", 4);
    assert_int_equal((e->data - m->data) % 64, 0);
    cks_torchzip_release(&z);
    cks_map_free(m);
}

static void test_torchzip__refuses_bad_names(void **state)
{
    size_t n;
    unsigned char *buf = small_archive(&n, "archive/data.pkl");
    expect_open_error(buf, n, CKS_EFORMAT, "entry 'data.pkl' appears twice");
    buf = small_archive(&n, "other/data/0");
    expect_open_error(buf, n, CKS_EFORMAT, "lie in different archive folders");
    buf = small_archive(&n, "archive/");
    expect_open_error(buf, n, CKS_EFORMAT, "is not '<archive>/<name>'");
    char longname[1100];
    memset(longname, 'x', sizeof longname - 1);
    memcpy(longname, "archive/", 8);
    longname[sizeof longname - 1] = '\0';
    buf = small_archive(&n, longname);
    expect_open_error(buf, n, CKS_EFORMAT, "has a name of 1099 bytes (1..1024, no NUL)");
    static const char pkl[] = "\x80\x02}.";
    cks_fx_zip_entry e[] = {{"archive/data/0", "abcd", 4}, {"archive/version", "3\n", 2}};
    buf = cks_fx_torchzip_mem(e, 2, &n);
    expect_open_error(buf, n, CKS_EFORMAT, "no 'archive/data.pkl'");
    cks_fx_zip_entry f[] = {{"archive/data.pkl", pkl, 4}, {"archive/.data/version", "3\n", 2}};
    buf = cks_fx_torchzip_mem(f, 2, &n);
    cks_map *m = adopt(buf, n);
    cks_torchzip z;
    assert_int_equal(cks_torchzip_open(m, &z), 0); /* newer formats' .data/version */
    cks_torchzip_release(&z);
    cks_map_free(m);
    cks_fx_zip_entry g[] = {{"archive/data.pkl", pkl, 4},
                            {"archive/version", "3\n", 2},
                            {"archive/byteorder", "little", 6}};
    buf = cks_fx_torchzip_mem(g, 3, &n); /* a valid byteorder record */
    m = adopt(buf, n);
    assert_int_equal(cks_torchzip_open(m, &z), 0);
    cks_torchzip_release(&z);
    cks_map_free(m);
}

static void test_torchzip__refuses_bad_end_records(void **state)
{
    size_t n;
    unsigned char *buf = small_archive(&n, "archive/data/0");
    /* bytes after the end record that its comment length does not account for */
    unsigned char *longer = realloc(buf, n + 10);
    memset(longer + n, 'x', 10);
    expect_open_error(longer, n + 10, CKS_EFORMAT, "no zip end record in its last");
    /* ... and the same bytes as a declared comment are fine */
    buf = small_archive(&n, "archive/data/0");
    longer = realloc(buf, n + 10);
    memset(longer + n, 'x', 10);
    longer[end_at(n) + 20] = 10;
    cks_map *m = adopt(longer, n + 10);
    cks_torchzip z;
    assert_int_equal(cks_torchzip_open(m, &z), 0);
    cks_torchzip_release(&z);
    cks_map_free(m);
    buf = small_archive(&n, "archive/data/0");
    buf[end_at(n) + 4] = 1; /* disk number */
    expect_open_error(buf, n, CKS_EUNSUPPORTED, "a multi-disk zip archive");
    buf = small_archive(&n, "archive/data/0");
    put32(buf + n - 22 - 20 + 8, (uint32_t)(n - 22 - 20 - 10)); /* locator -> past itself */
    expect_open_error(buf, n, CKS_EFORMAT, "does not lie before its locator");
    buf = small_archive(&n, "archive/data/0");
    buf[end64_at(n)] = 'X'; /* ZIP64 end record signature */
    expect_open_error(buf, n, CKS_EFORMAT, "no valid ZIP64 end record");
    buf = small_archive(&n, "archive/data/0");
    memset(buf + end64_at(n) + 24, 0, 16); /* zero entries announced */
    memset(buf + end_at(n) + 8, 0, 4);
    expect_open_error(buf, n, CKS_EFORMAT, "an empty zip archive");
    expect_open_error(calloc(1, 10), 10, CKS_EFORMAT, "too short for a zip archive");
}

/* The first central record starts right after the last entry's data descriptor. */
static size_t central_at(const unsigned char *b, size_t n)
{
    const unsigned char *p = b + end64_at(n) + 48;
    size_t off = 0;
    for (int i = 7; i >= 0; i--)
        off = (off << 8) | p[i];
    return off;
}

static void test_torchzip__refuses_bad_central_records(void **state)
{
    size_t n;
    unsigned char *buf = small_archive(&n, "archive/data/0");
    buf[central_at(buf, n) + 10] = 12; /* method 12: bzip2 */
    expect_open_error(buf, n, CKS_EUNSUPPORTED, "is compressed (method 12)");
    buf = small_archive(&n, "archive/data/0");
    buf[central_at(buf, n) + 8] |= 0x40; /* strong encryption */
    expect_open_error(buf, n, CKS_EUNSUPPORTED, "is encrypted");
    buf = small_archive(&n, "archive/data/0");
    buf[central_at(buf, n) + 46 + 8] = 0; /* a NUL inside the name */
    expect_open_error(buf, n, CKS_EFORMAT, "(1..1024, no NUL)");
    buf = small_archive(&n, "archive/data/0");
    buf[central_at(buf, n) + 20] = 5; /* csize 5 != usize 4 */
    expect_open_error(buf, n, CKS_EFORMAT, "has compressed size");
    buf = small_archive(&n, "archive/data/0");
    buf[central_at(buf, n) + 30] = 200; /* extra length past the directory */
    expect_open_error(buf, n, CKS_EFORMAT, "runs past the directory");
    buf = small_archive(&n, "archive/data/0");
    buf[central_at(buf, n)] = 'X';
    expect_open_error(buf, n, CKS_EFORMAT, "central directory record 1 of 3 is missing");
    buf = small_archive(&n, "archive/data/0");
    size_t local = 0; /* data.pkl's local header is first: break its signature */
    buf[local] = 'X';
    expect_open_error(buf, n, CKS_EFORMAT, "entry 'archive/data.pkl': no local header");
    buf = small_archive(&n, "archive/data/0");
    buf[28] = 0xff; /* local extra length runs into the central directory */
    buf[29] = 0xff;
    expect_open_error(buf, n, CKS_EFORMAT, "local header runs past its space");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_torchzip__reads_torch_save_archive),
        cmocka_unit_test(test_torchzip__reads_zip64_local_fields),
        cmocka_unit_test(test_torchzip__reads_miniz_layout),
        cmocka_unit_test(test_torchzip__refuses_bad_names),
        cmocka_unit_test(test_torchzip__refuses_bad_end_records),
        cmocka_unit_test(test_torchzip__refuses_bad_central_records),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
