/* Compressed data files as lines (loaders/lines.h): plain, gzip (one or several members)
 * and zstd (frames, skippable frames) give the same lines; truncated, corrupt and trailing
 * data, over-long lines, too much output and decompression bombs are refused with the file
 * named. The compressed inputs are made here with zlib's deflate and libzstd's compressor,
 * independent of the decoder under test; the expected lines are the plain text split at
 * '\n' by the test itself. */
#include "error.h"
#include "lines.h"
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#include <zstd.h>

static char *tmp;

static int setup(void **state)
{
    tmp = cks_tmpdir_new("lines");
    return 0;
}

static int teardown(void **state)
{
    cks_tmpdir_remove(tmp);
    return 0;
}

/* gzip (RFC 1952) of data by zlib's deflate, level 9. */
static unsigned char *gz(const void *data, size_t n, size_t *out)
{
    z_stream z;
    memset(&z, 0, sizeof z);
    assert_int_equal(deflateInit2(&z, 9, Z_DEFLATED, 16 + 15, 8, Z_DEFAULT_STRATEGY), Z_OK);
    size_t cap = deflateBound(&z, (uLong)n) + 64;
    unsigned char *b = malloc(cap);
    z.next_in = (unsigned char *)data;
    z.avail_in = (uInt)n;
    z.next_out = b;
    z.avail_out = (uInt)cap;
    assert_int_equal(deflate(&z, Z_FINISH), Z_STREAM_END);
    *out = cap - z.avail_out;
    deflateEnd(&z);
    return b;
}

/* zstd frame of data (level 3, content size recorded). */
static unsigned char *zst(const void *data, size_t n, size_t *out)
{
    size_t cap = ZSTD_compressBound(n);
    unsigned char *b = malloc(cap);
    *out = ZSTD_compress(b, cap, data, n, 3);
    assert_false(ZSTD_isError(*out));
    return b;
}

static unsigned char *concat(const void *a, size_t na, const void *b, size_t nb, size_t *n)
{
    unsigned char *p = malloc(na + nb + 1);
    memcpy(p, a, na);
    memcpy(p + na, b, nb);
    *n = na + nb;
    return p;
}

/* Reads every line of path and checks them against text split at '\n'. */
static void expect_lines(const char *path, const char *text, size_t len, cks_compression comp)
{
    cks_lines *r;
    const char *line;
    size_t n;
    int64_t no, want_no = 0;
    assert_int_equal(cks_lines_open(&r, path, NULL), 0);
    assert_int_equal(cks_lines_compression(r), comp);
    for (int pass = 0; pass < 2; pass++) {
        size_t at = 0;
        want_no = 0;
        while (at < len) {
            const char *nl = memchr(text + at, '\n', len - at);
            size_t k = nl ? (size_t)(nl - (text + at)) : len - at;
            assert_int_equal(cks_lines_next(r, &line, &n, &no), 0);
            assert_int_equal(no, ++want_no);
            assert_int_equal(n, k);
            assert_memory_equal(line, text + at, k);
            at += k + (nl != NULL);
        }
        assert_int_equal(cks_lines_next(r, &line, &n, &no), CKS_ITEROVER);
        assert_int_equal(cks_lines_bytes(r), len);
        assert_int_equal(cks_lines_rewind(r), 0); /* the second pass reads the same */
    }
    cks_lines_free(r);
}

static const char sample[] = "{\"text\": \"one\"}\r\n\n  \nsecond line\nlast, no newline";

static void test_lines__plain_gzip_zstd_give_the_same_lines(void **state)
{
    size_t len = sizeof sample - 1, ng, nz, nc;
    unsigned char *g = gz(sample, len, &ng), *z = zst(sample, len, &nz);
    expect_lines(cks_put_file(tmp, "s.txt", sample, len), sample, len, CKS_COMP_NONE);
    expect_lines(cks_put_file(tmp, "s.gz", g, ng), sample, len, CKS_COMP_GZIP);
    expect_lines(cks_put_file(tmp, "s.zst", z, nz), sample, len, CKS_COMP_ZSTD);
    /* names do not matter: the first bytes do */
    expect_lines(cks_put_file(tmp, "s.txt.weird", z, nz), sample, len, CKS_COMP_ZSTD);
    /* gzip members and zstd frames follow one another (pigz, bgzip, zstd of parts) */
    size_t split = 20, n1, n2;
    unsigned char *g1 = gz(sample, split, &n1), *g2 = gz(sample + split, len - split, &n2);
    unsigned char *c = concat(g1, n1, g2, n2, &nc);
    expect_lines(cks_put_file(tmp, "m.gz", c, nc), sample, len, CKS_COMP_GZIP);
    free(c);
    free(g1);
    free(g2);
    unsigned char *z1 = zst(sample, split, &n1), *z2 = zst(sample + split, len - split, &n2);
    c = concat(z1, n1, z2, n2, &nc);
    expect_lines(cks_put_file(tmp, "m.zst", c, nc), sample, len, CKS_COMP_ZSTD);
    free(c);
    /* a skippable frame (magic 0x184D2A5?) before the data */
    static const unsigned char skip[] = {0x53, 0x2a, 0x4d, 0x18, 3, 0, 0, 0, 'a', 'b', 'c'};
    c = concat(skip, sizeof skip, z1, n1, &nc);
    unsigned char *c2 = concat(c, nc, z2, n2, &nc);
    expect_lines(cks_put_file(tmp, "skip.zst", c2, nc), sample, len, CKS_COMP_ZSTD);
    free(c);
    free(c2);
    free(z1);
    free(z2);
    free(g);
    free(z);
    /* empty files and a file of one newline */
    expect_lines(cks_put_file(tmp, "empty", "", 0), "", 0, CKS_COMP_NONE);
    g = gz("", 0, &ng);
    expect_lines(cks_put_file(tmp, "empty.gz", g, ng), "", 0, CKS_COMP_GZIP);
    free(g);
    z = zst("\n", 1, &nz);
    expect_lines(cks_put_file(tmp, "nl.zst", z, nz), "\n", 1, CKS_COMP_ZSTD);
    free(z);
}

/* Lines across the 1 MiB chunks of the decoder: lengths 0 to 3 MiB. */
static void test_lines__lines_across_chunks(void **state)
{
    size_t len = 9u << 20, ng, nz;
    char *text = malloc(len);
    uint64_t x = 88172645463325252ull;
    size_t at = 0;
    while (at < len) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        size_t k = (x % 5 == 0) ? (size_t)(x >> 20) % (3u << 20) : (size_t)(x >> 8) % 300;
        for (size_t i = 0; i < k && at < len; i++)
            text[at] = (char)('a' + (at * 7 + i) % 26), at++;
        if (at < len)
            text[at++] = '\n';
    }
    unsigned char *g = gz(text, len, &ng), *z = zst(text, len, &nz);
    expect_lines(cks_put_file(tmp, "big.gz", g, ng), text, len, CKS_COMP_GZIP);
    expect_lines(cks_put_file(tmp, "big.zst", z, nz), text, len, CKS_COMP_ZSTD);
    free(g);
    free(z);
    free(text);
}

static int read_all(const char *path, const cks_lines_limits *lim)
{
    cks_lines *r;
    const char *line;
    size_t n;
    int64_t no;
    int err = cks_lines_open(&r, path, lim);
    if (err)
        return err;
    while ((err = cks_lines_next(r, &line, &n, &no)) == 0)
        ;
    cks_lines_free(r);
    return err == CKS_ITEROVER ? 0 : err;
}

static void expect_refused(const char *path, const cks_lines_limits *lim, int code,
                           const char *needle)
{
    int err = read_all(path, lim);
    if (err != code || !strstr(cks_error_last(), path) ||
        (needle && !strstr(cks_error_last(), needle))) {
        print_error("%s: got %d '%s', want %d with '%s'\n", path, err, cks_error_last(), code,
                    needle ? needle : "");
        fail();
    }
    cks_error_clear();
}

/* "line N", N the line where decoding stops in a cut gzip or zstd stream: 1 + the
 * newlines of all that zlib's inflate or libzstd's streaming decoder, called directly,
 * gets out of it. */
static const char *stop_line(const unsigned char *c, size_t n, int zstd, char *buf, size_t cap)
{
    static unsigned char out[1 << 16];
    size_t got = 0;
    if (zstd) {
        ZSTD_DStream *d = ZSTD_createDStream();
        ZSTD_inBuffer ib = {c, n, 0};
        ZSTD_outBuffer ob = {out, sizeof out, 0};
        size_t before;
        do {
            before = ob.pos;
        } while (!ZSTD_isError(ZSTD_decompressStream(d, &ob, &ib)) && ob.pos > before);
        got = ob.pos;
        ZSTD_freeDStream(d);
    } else {
        z_stream z;
        memset(&z, 0, sizeof z);
        assert_int_equal(inflateInit2(&z, 16 + MAX_WBITS), Z_OK);
        z.next_in = (unsigned char *)c;
        z.avail_in = (uInt)n;
        z.next_out = out;
        z.avail_out = sizeof out;
        inflate(&z, Z_SYNC_FLUSH);
        got = sizeof out - z.avail_out;
        inflateEnd(&z);
    }
    int line = 1;
    for (size_t i = 0; i < got; i++)
        line += out[i] == '\n';
    snprintf(buf, cap, "line %d: truncated %s", line, zstd ? "zstd" : "gzip");
    return buf;
}

static void test_lines__truncated_files_are_refused(void **state)
{
    char want[64];
    char text[4000];
    for (size_t i = 0; i < sizeof text; i++)
        text[i] = (char)(i % 61 == 60 ? '\n' : 'A' + (i * i) % 53 % 26);
    size_t ng, nz;
    unsigned char *g = gz(text, sizeof text, &ng), *z = zst(text, sizeof text, &nz);
    assert_int_equal(read_all(cks_put_file(tmp, "ok.gz", g, ng), NULL), 0);
    assert_int_equal(read_all(cks_put_file(tmp, "ok.zst", z, nz), NULL), 0);
    /* every cut of the compressed file, from just past the magic to one byte short */
    for (size_t cut = 2; cut < ng; cut++)
        expect_refused(cks_put_file(tmp, "cut.gz", g, cut), NULL, CKS_EFORMAT,
                       stop_line(g, cut, 0, want, sizeof want));
    for (size_t cut = 4; cut < nz; cut++)
        expect_refused(cks_put_file(tmp, "cut.zst", z, cut), NULL, CKS_EFORMAT,
                       stop_line(z, cut, 1, want, sizeof want));
    free(g);
    free(z);
}

static void test_lines__corrupt_and_trailing_data_are_refused(void **state)
{
    const char *text = "line one\nline two\nline three\n";
    size_t ng, nz, n;
    unsigned char *g = gz(text, strlen(text), &ng), *z = zst(text, strlen(text), &nz);
    /* a changed byte: the CRC-32 (gzip) or the frame's checks (zstd) catch it */
    unsigned char *c = concat(g, ng, "", 0, &n);
    c[ng - 6] ^= 0x40; /* inside the CRC-32 of the trailer */
    /* found after the three lines came out: it is in line 4 (after the last) */
    expect_refused(cks_put_file(tmp, "crc.gz", c, n), NULL, CKS_EFORMAT, "line 4: corrupt gzip");
    free(c);
    c = concat(g, ng, "garbage", 7, &n);
    expect_refused(cks_put_file(tmp, "trail.gz", c, n), NULL, CKS_EFORMAT,
                   "line 4: 7 bytes after the end");
    free(c);
    c = concat(z, nz, "garbage!", 8, &n);
    expect_refused(cks_put_file(tmp, "trail.zst", c, n), NULL, CKS_EFORMAT, "line 4: corrupt zstd");
    free(c);
    c = concat(z, nz, "", 0, &n);
    c[5] = 0xff; /* the frame header descriptor's reserved bit */
    expect_refused(cks_put_file(tmp, "hdr.zst", c, n), NULL, CKS_EFORMAT, "line 1: corrupt zstd");
    free(c);
    free(g);
    free(z);
    /* a frame that needs a window of 256 MiB (libzstd's default limit is 128 MiB) */
    ZSTD_CCtx *cc = ZSTD_createCCtx();
    assert_false(ZSTD_isError(ZSTD_CCtx_setParameter(cc, ZSTD_c_windowLog, 28)));
    assert_false(ZSTD_isError(ZSTD_CCtx_setParameter(cc, ZSTD_c_contentSizeFlag, 0)));
    unsigned char big[256];
    /* streamed with no size given, so that the compressor cannot shrink the window */
    ZSTD_inBuffer ib = {text, strlen(text), 0};
    ZSTD_outBuffer ob = {big, sizeof big, 0};
    assert_false(ZSTD_isError(ZSTD_compressStream2(cc, &ob, &ib, ZSTD_e_continue)));
    ZSTD_inBuffer none = {NULL, 0, 0};
    assert_int_equal(ZSTD_compressStream2(cc, &ob, &none, ZSTD_e_end), 0);
    size_t nb = ob.pos;
    ZSTD_freeCCtx(cc);
    expect_refused(cks_put_file(tmp, "window.zst", big, nb), NULL, CKS_EUNSUPPORTED, "window");
}

static void test_lines__limits(void **state)
{
    /* line length: at the limit accepted, one byte more refused; plain and compressed */
    char line[101];
    memset(line, 'x', 100);
    line[100] = '\n';
    cks_lines_limits lim = {.max_line = 100};
    size_t ng, nz;
    unsigned char *g = gz(line, 101, &ng), *z;
    assert_int_equal(read_all(cks_put_file(tmp, "l100", line, 101), &lim), 0);
    assert_int_equal(read_all(cks_put_file(tmp, "l100.gz", g, ng), &lim), 0);
    free(g);
    lim.max_line = 99;
    expect_refused(cks_put_file(tmp, "l100", line, 101), &lim, CKS_ELIMIT,
                   "line 1 is longer than 99");
    g = gz(line, 101, &ng);
    expect_refused(cks_put_file(tmp, "l100.gz", g, ng), &lim, CKS_ELIMIT,
                   "line 1 is longer than 99");
    free(g);
    /* total output */
    size_t big = 3u << 20;
    char *zeros = calloc(1, big);
    z = zst(zeros, big, &nz);
    cks_lines_limits total = {.max_bytes = big};
    assert_int_equal(read_all(cks_put_file(tmp, "z.zst", z, nz), &total), 0);
    total.max_bytes = big - 1;
    expect_refused(cks_put_file(tmp, "z.zst", z, nz), &total, CKS_ELIMIT,
                   "more than 3145727 bytes");
    /* a bomb: 3 MiB from a few hundred bytes; the ratio applies past ratio_free */
    cks_lines_limits bomb = {.ratio_free = 1 << 20};
    expect_refused(cks_put_file(tmp, "z.zst", z, nz), &bomb, CKS_ELIMIT, "decompression bomb");
    bomb.max_ratio = 100000; /* allowed when the ratio is */
    assert_int_equal(read_all(cks_put_file(tmp, "z.zst", z, nz), &bomb), 0);
    bomb.max_ratio = 0;
    bomb.ratio_free = big; /* and below ratio_free */
    assert_int_equal(read_all(cks_put_file(tmp, "z.zst", z, nz), &bomb), 0);
    free(z);
    g = gz(zeros, big, &ng);
    bomb.ratio_free = 1 << 20;
    bomb.max_ratio = 500; /* gzip reaches about 1000:1 on zeros */
    expect_refused(cks_put_file(tmp, "z.gz", g, ng), &bomb, CKS_ELIMIT, "decompression bomb");
    free(g);
    free(zeros);
}

static void test_lines__whole_file_buffers(void **state)
{
    const char *text = "a whole document\nin two lines";
    size_t ng;
    unsigned char *g = gz(text, strlen(text), &ng);
    cks_zbuf b;
    assert_int_equal(cks_zbuf_read(&b, cks_put_file(tmp, "doc.txt", text, strlen(text)), 100, NULL),
                     0);
    assert_int_equal(b.comp, CKS_COMP_NONE);
    assert_int_equal(b.size, strlen(text));
    assert_memory_equal(b.data, text, b.size);
    cks_zbuf_release(&b);
    assert_int_equal(cks_zbuf_read(&b, cks_put_file(tmp, "doc.gz", g, ng), 100, NULL), 0);
    assert_int_equal(b.comp, CKS_COMP_GZIP);
    assert_int_equal(b.size, strlen(text));
    assert_memory_equal(b.data, text, b.size);
    cks_zbuf_release(&b);
    const char *p = cks_put_file(tmp, "doc.gz", g, ng);
    cks_expect_error(cks_zbuf_read(&b, p, 10, NULL), CKS_ELIMIT, p, "more than 10 bytes");
    p = cks_put_file(tmp, "doc.txt", text, strlen(text));
    cks_expect_error(cks_zbuf_read(&b, p, 10, NULL), CKS_ELIMIT, p, "more than the 10");
    p = cks_put_file(tmp, "doc.gz", g, ng - 1);
    /* the text all came out (the cut is in the trailer): the stream ends in line 2 */
    cks_expect_error(cks_zbuf_read(&b, p, 100, NULL), CKS_EFORMAT, p, "line 2: truncated gzip");
    free(g);
    char missing[4200];
    snprintf(missing, sizeof missing, "%s/missing.gz", tmp);
    cks_expect_error(cks_zbuf_read(&b, missing, 100, NULL), CKS_ENOTFOUND, "missing.gz", NULL);
}

static void test_lines__magic_bytes(void **state)
{
    static const unsigned char gzm[] = {0x1f, 0x8b}, zsm[] = {0x28, 0xb5, 0x2f, 0xfd},
                               skm[] = {0x5f, 0x2a, 0x4d, 0x18}, no1[] = {0x1f, 0x8c},
                               no2[] = {0x28, 0xb5, 0x2f, 0xfc}, no3[] = {0x60, 0x2a, 0x4d, 0x18};
    assert_int_equal(cks_compression_of(gzm, 2), CKS_COMP_GZIP);
    assert_int_equal(cks_compression_of(gzm, 1), CKS_COMP_NONE);
    assert_int_equal(cks_compression_of(zsm, 4), CKS_COMP_ZSTD);
    assert_int_equal(cks_compression_of(zsm, 3), CKS_COMP_NONE);
    assert_int_equal(cks_compression_of(skm, 4), CKS_COMP_ZSTD);
    assert_int_equal(cks_compression_of(no1, 2), CKS_COMP_NONE);
    assert_int_equal(cks_compression_of(no2, 4), CKS_COMP_NONE);
    assert_int_equal(cks_compression_of(no3, 4), CKS_COMP_NONE);
    assert_string_equal(cks_compression_name(CKS_COMP_ZSTD), "zstd");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lines__plain_gzip_zstd_give_the_same_lines),
        cmocka_unit_test(test_lines__lines_across_chunks),
        cmocka_unit_test(test_lines__truncated_files_are_refused),
        cmocka_unit_test(test_lines__corrupt_and_trailing_data_are_refused),
        cmocka_unit_test(test_lines__limits),
        cmocka_unit_test(test_lines__whole_file_buffers),
        cmocka_unit_test(test_lines__magic_bytes),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
