/* Token-id files (loaders/tokfile.h) and document sets (loaders/docset.h): JSONL lines,
 * raw little-endian uint16/uint32, format detection, and every rejection. Expected ids are
 * written by the tests themselves. */
#include "docset.h"
#include "error.h"
#include "testutil.h"
#include "tokfile.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *tmp;

static int setup(void **state)
{
    tmp = cks_tmpdir_new("tokfile");
    return 0;
}

static int teardown(void **state)
{
    cks_tmpdir_remove(tmp);
    return 0;
}

static const char *write_tmp(const char *name, const void *data, size_t len)
{
    static char path[4200];
    snprintf(path, sizeof path, "%s/%s", tmp, name);
    cks_write_file(path, data, len);
    return path;
}

static void test_tokfile__jsonl_lines_are_documents(void **state)
{
    const char *text = "{\"token_ids\": [1, 2, 3], \"source\": \"a\"}\n"
                       "\n"
                       "   \r\n"
                       "{\"token_ids\": []}\n"
                       "{\"meta\": {\"x\": [9]}, \"token_ids\": [2147483647, 0]}"; /* no final \n */
    const char *p = write_tmp("a.jsonl", text, strlen(text));
    cks_docset d;
    int64_t n;
    assert_int_equal(cks_tokfile_read(&d, p, "a", CKS_TOKFILE_AUTO), 0);
    assert_string_equal(d.name, "a");
    assert_string_equal(d.display, p);
    assert_int_equal(d.ndocs, 3);
    assert_int_equal(d.bytes, -1);
    const int32_t *t = cks_docset_doc(&d, 0, &n);
    assert_int_equal(n, 3);
    assert_int_equal(t[0], 1);
    assert_int_equal(t[2], 3);
    assert_int_equal(d.line[0], 1);
    cks_docset_doc(&d, 1, &n);
    assert_int_equal(n, 0);
    assert_int_equal(d.line[1], 4);
    t = cks_docset_doc(&d, 2, &n);
    assert_int_equal(n, 2);
    assert_int_equal(t[0], 2147483647);
    assert_int_equal(d.line[2], 5);
    cks_docset_release(&d);
}

static void test_tokfile__raw_u16_u32_little_endian(void **state)
{
    const unsigned char u16[] = {0x01, 0x00, 0x34, 0x12, 0xff, 0xff};
    const unsigned char u32[] = {0x78, 0x56, 0x34, 0x12, 0x05, 0x00, 0x00, 0x00};
    cks_docset d;
    int64_t n;
    const char *p = write_tmp("x.u16", u16, sizeof u16);
    assert_int_equal(cks_tokfile_read(&d, p, "x", CKS_TOKFILE_AUTO), 0);
    const int32_t *t = cks_docset_doc(&d, 0, &n);
    assert_int_equal(d.ndocs, 1);
    assert_int_equal(d.line[0], 0);
    assert_int_equal(n, 3);
    assert_int_equal(t[0], 1);
    assert_int_equal(t[1], 0x1234);
    assert_int_equal(t[2], 65535);
    cks_docset_release(&d);
    p = write_tmp("y.uint32", u32, sizeof u32);
    assert_int_equal(cks_tokfile_read(&d, p, "y", CKS_TOKFILE_AUTO), 0);
    t = cks_docset_doc(&d, 0, &n);
    assert_int_equal(n, 2);
    assert_int_equal(t[0], 0x12345678);
    assert_int_equal(t[1], 5);
    cks_docset_release(&d);
    /* the same bytes read as u16 by an explicit format, whatever the name */
    p = write_tmp("z.bin", u32, sizeof u32);
    assert_int_equal(cks_tokfile_read(&d, p, "z", CKS_TOKFILE_U16), 0);
    t = cks_docset_doc(&d, 0, &n);
    assert_int_equal(n, 4);
    assert_int_equal(t[0], 0x5678);
    assert_int_equal(t[1], 0x1234);
    cks_docset_release(&d);
    /* an empty raw file is one empty document */
    p = write_tmp("e.u16", "", 0);
    assert_int_equal(cks_tokfile_read(&d, p, "e", CKS_TOKFILE_AUTO), 0);
    assert_int_equal(d.ndocs, 1);
    assert_int_equal(d.nids, 0);
    cks_docset_release(&d);
}

static void expect_reject(const char *name, const char *content, size_t len, cks_tokfile_format fmt,
                          int code, const char *needle)
{
    cks_docset d;
    const char *p = write_tmp(name, content, len);
    char path[4200];
    snprintf(path, sizeof path, "%s", p);
    int err = cks_tokfile_read(&d, path, "bad", fmt);
    if (err != code)
        print_error("%s: got %d (%s), want %d\n", name, err, cks_error_last(), code);
    assert_int_equal(err, code);
    assert_non_null(strstr(cks_error_last(), path));
    if (needle && !strstr(cks_error_last(), needle)) {
        print_error("'%s' not in '%s'\n", needle, cks_error_last());
        fail();
    }
}

static void test_tokfile__rejects_bad_files(void **state)
{
#define S(x) x, sizeof(x) - 1
    expect_reject("b1.jsonl", S("{\"token_ids\": [1]}\n{\"token_ids\": [1,]}\n"), 0, CKS_EFORMAT,
                  "line 2");
    expect_reject("b2.jsonl", S("{\"tokens\": [1]}\n"), 0, CKS_EFORMAT, "token_ids");
    expect_reject("b3.jsonl", S("{\"token_ids\": \"1 2\"}\n"), 0, CKS_EFORMAT, "token_ids");
    expect_reject("b4.jsonl", S("{\"token_ids\": [1, 2.5]}\n"), 0, CKS_EFORMAT, "token_ids[1]");
    expect_reject("b5.jsonl", S("{\"token_ids\": [-1]}\n"), 0, CKS_EFORMAT, "token_ids[0]");
    expect_reject("b6.jsonl", S("{\"token_ids\": [2147483648]}\n"), 0, CKS_EFORMAT, "token_ids[0]");
    expect_reject("b7.jsonl", S("{\"token_ids\": [\"5\"]}\n"), 0, CKS_EFORMAT, "token_ids[0]");
    expect_reject("b8.jsonl", S("[1, 2, 3]\n"), 0, CKS_EFORMAT, "line 1");
    expect_reject("b9.jsonl", S("{\"token_ids\": [1], \"token_ids\": [2]}\n"), 0, CKS_EFORMAT,
                  "line 1");
    expect_reject("b10.jsonl", S("{\"token_ids\": [1]}\n\x00garbage\n"), 0, CKS_EFORMAT, "line 2");
    expect_reject("odd.u16", S("\x01\x00\x02"), 0, CKS_EFORMAT, "3 bytes");
    expect_reject("odd.u32", S("\x01\x00\x00\x00\x02\x00"), 0, CKS_EFORMAT, "6 bytes");
    expect_reject("big.u32", S("\x01\x00\x00\x00\x00\x00\x00\x80"), 0, CKS_EFORMAT, "token 1");
    expect_reject("what.bin", S("\x01\x00"), CKS_TOKFILE_AUTO, CKS_EINVAL, ".jsonl");
#undef S
    cks_docset d;
    char missing[4200];
    snprintf(missing, sizeof missing, "%s/missing.u16", tmp);
    assert_int_equal(cks_tokfile_read(&d, missing, "m", CKS_TOKFILE_AUTO), CKS_ENOTFOUND);
    assert_non_null(strstr(cks_error_last(), "missing.u16"));
    /* a folder is not a token file */
    assert_int_equal(cks_tokfile_read(&d, tmp, "m", CKS_TOKFILE_U16), CKS_EFORMAT);
}

static void test_tokfile__format_names(void **state)
{
    cks_tokfile_format f;
    assert_int_equal(cks_tokfile_format_from_name("jsonl", &f), 0);
    assert_int_equal(f, CKS_TOKFILE_JSONL);
    assert_int_equal(cks_tokfile_format_from_name("u16", &f), 0);
    assert_int_equal(f, CKS_TOKFILE_U16);
    assert_int_equal(cks_tokfile_format_from_name("u32", &f), 0);
    assert_int_equal(f, CKS_TOKFILE_U32);
    assert_int_equal(cks_tokfile_format_from_name("u8", &f), CKS_ENOTFOUND);
}

static void test_tokfile__docset_grows(void **state)
{
    cks_docset d;
    int32_t ids[1000];
    for (int i = 0; i < 1000; i++)
        ids[i] = i;
    assert_int_equal(cks_docset_init(&d, "g", "g.txt"), 0);
    for (int k = 0; k < 700; k++)
        assert_int_equal(cks_docset_add(&d, ids + k % 7, k % 300, k + 1), 0);
    assert_int_equal(d.ndocs, 700);
    int64_t total = 0;
    for (int k = 0; k < 700; k++) {
        int64_t n;
        const int32_t *t = cks_docset_doc(&d, k, &n);
        assert_int_equal(n, k % 300);
        if (n)
            assert_int_equal(t[0], k % 7);
        assert_int_equal(d.line[k], k + 1);
        total += n;
    }
    assert_int_equal(d.nids, total);
    assert_int_equal(cks_docset_add(&d, ids, -1, 0), CKS_ELIMIT);
    cks_docset_release(&d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tokfile__jsonl_lines_are_documents),
        cmocka_unit_test(test_tokfile__raw_u16_u32_little_endian),
        cmocka_unit_test(test_tokfile__rejects_bad_files),
        cmocka_unit_test(test_tokfile__format_names),
        cmocka_unit_test(test_tokfile__docset_grows),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
