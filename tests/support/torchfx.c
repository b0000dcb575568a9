/* torch.save-like pickles and archives for tests (see torchfx.h). The archive layout
 * follows PyTorch's caffe2/serialize/inline_container.cc (getPadding) and miniz's
 * mz_zip_writer_add_mem_ex_v2, as observed in a > 4 GiB file written by torch 1.13. */
#include "torchfx.h"
#include "torchzip.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX32 0xFFFFFFFFull

void cks_fx_put(cks_fx_buf *b, const void *data, size_t n)
{
    if (b->n + n > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->n + n)
            cap *= 2;
        unsigned char *p = realloc(b->p, cap);
        if (!p)
            abort();
        b->p = p;
        b->cap = cap;
    }
    if (n && data)
        memcpy(b->p + b->n, data, n);
    else if (n)
        memset(b->p + b->n, 0, n);
    b->n += n;
}

void cks_fx_putc(cks_fx_buf *b, int c)
{
    unsigned char x = (unsigned char)c;
    cks_fx_put(b, &x, 1);
}

void cks_fx_buf_free(cks_fx_buf *b)
{
    free(b->p);
    memset(b, 0, sizeof *b);
}

static void put_le(cks_fx_buf *b, uint64_t v, int n) /* n <= 8 */
{
    for (int i = 0; i < n; i++)
        cks_fx_putc(b, (int)((v >> (8 * i)) & 0xFF));
}

void cks_fx_pk_str(cks_fx_buf *b, const char *s)
{
    cks_fx_putc(b, 'X');
    put_le(b, strlen(s), 4);
    cks_fx_put(b, s, strlen(s));
}

void cks_fx_pk_int(cks_fx_buf *b, int64_t i)
{
    if (i >= 0 && i < 256) {
        cks_fx_putc(b, 'K');
        put_le(b, (uint64_t)i, 1);
    } else if (i >= 0 && i < 65536) {
        cks_fx_putc(b, 'M');
        put_le(b, (uint64_t)i, 2);
    } else if (i >= INT32_MIN && i <= INT32_MAX) {
        cks_fx_putc(b, 'J');
        put_le(b, (uint64_t)(uint32_t)(int32_t)i, 4);
    } else {
        cks_fx_putc(b, 0x8a);
        cks_fx_putc(b, 8);
        put_le(b, (uint64_t)i, 8);
    }
}

void cks_fx_pk_global(cks_fx_buf *b, const char *mod, const char *name)
{
    cks_fx_putc(b, 'c');
    cks_fx_put(b, mod, strlen(mod));
    cks_fx_putc(b, '\n');
    cks_fx_put(b, name, strlen(name));
    cks_fx_putc(b, '\n');
}

void cks_fx_pk_odict(cks_fx_buf *b)
{
    cks_fx_pk_global(b, "collections", "OrderedDict");
    cks_fx_put(b, ")R", 2);
}

void cks_fx_pk_tensor(cks_fx_buf *b, const char *key, const char *cls, int64_t numel,
                      int64_t offset, int ndim, const int64_t *size, const int64_t *stride)
{
    cks_fx_pk_global(b, "torch._utils", "_rebuild_tensor_v2");
    cks_fx_put(b, "((", 2);
    cks_fx_pk_str(b, "storage");
    cks_fx_pk_global(b, "torch", cls);
    cks_fx_pk_str(b, key);
    cks_fx_pk_str(b, "cpu");
    cks_fx_pk_int(b, numel);
    cks_fx_put(b, "tQ", 2);
    cks_fx_pk_int(b, offset);
    cks_fx_putc(b, '(');
    for (int d = 0; d < ndim; d++)
        cks_fx_pk_int(b, size[d]);
    cks_fx_put(b, "t(", 2);
    for (int d = 0; d < ndim; d++)
        cks_fx_pk_int(b, stride[d]);
    cks_fx_putc(b, 't');
    cks_fx_putc(b, 0x89); /* NEWFALSE: requires_grad */
    cks_fx_pk_odict(b);   /* backward hooks */
    cks_fx_put(b, "tR", 2);
}

/* ---- archives ---- */

typedef struct {
    int fd;         /* a file (pwrite), or -1: */
    cks_fx_buf mem; /* a buffer written at offsets, zero-filled */
    uint64_t end;
    int failed;
} sink;

static void emit(sink *s, uint64_t at, const void *data, size_t n)
{
    if (s->fd >= 0) {
        if (n && pwrite(s->fd, data, n, (off_t)at) != (ssize_t)n)
            s->failed = 1;
    } else {
        if (at + n > s->mem.n)
            cks_fx_put(&s->mem, NULL, (size_t)(at + n - s->mem.n));
        if (n)
            memcpy(s->mem.p + at, data, n);
    }
    if (at + n > s->end)
        s->end = at + n;
}

typedef struct {
    uint64_t offset, size;
    uint32_t crc;
} placed;

/* Local header, padding, data and descriptor of one entry at off; returns the end. */
static uint64_t write_entry(sink *s, const cks_fx_zip_entry *e, uint64_t off, placed *pl)
{
    size_t nl = strlen(e->name);
    int big = e->size >= MAX32, far = off >= MAX32;
    cks_fx_buf h = {0};
    /* inline_container.cc getPadding: data starts 64-byte aligned behind "FB" */
    uint64_t start = off + 30 + nl + 4 + (big || far ? 4 : 0) + (big ? 16 : 0) + (far ? 8 : 0);
    uint64_t pad = (64 - start % 64) % 64;
    put_le(&h, 0x04034b50, 4);
    put_le(&h, 0, 2);      /* version needed, as miniz writes for torch */
    put_le(&h, 0x0808, 2); /* bit 3: descriptor; bit 11: UTF-8 */
    put_le(&h, 0, 2);      /* stored */
    put_le(&h, 0, 4);      /* time, date */
    put_le(&h, 0, 4);      /* crc and sizes follow the data */
    put_le(&h, 0, 4);
    put_le(&h, 0, 4);
    put_le(&h, nl, 2);
    put_le(&h, (big || far ? 4 + (big ? 16 : 0) + (far ? 8 : 0) : 0) + 4 + pad, 2);
    cks_fx_put(&h, e->name, nl);
    if (big || far) { /* miniz: usize and a zero csize when big, the offset when far */
        put_le(&h, 1, 2);
        put_le(&h, (big ? 16 : 0) + (far ? 8 : 0), 2);
        if (big) {
            put_le(&h, e->size, 8);
            put_le(&h, 0, 8);
        }
        if (far)
            put_le(&h, off, 8);
    }
    put_le(&h, 0x4246, 2);
    put_le(&h, pad, 2);
    for (uint64_t i = 0; i < pad; i++)
        cks_fx_putc(&h, 'Z');
    emit(s, off, h.p, h.n);
    uint64_t at = off + h.n;
    pl->offset = off;
    pl->size = e->size;
    pl->crc = e->data ? cks_zip_crc32(e->data, e->size) : 0;
    if (e->data)
        emit(s, at, e->data, (size_t)e->size);
    at += e->size;
    h.n = 0;
    put_le(&h, 0x08074b50, 4);
    put_le(&h, pl->crc, 4);
    put_le(&h, e->size, big || far ? 8 : 4);
    put_le(&h, e->size, big || far ? 8 : 4);
    emit(s, at, h.p, h.n);
    at += h.n;
    cks_fx_buf_free(&h);
    return at;
}

static void central(cks_fx_buf *cd, const cks_fx_zip_entry *e, const placed *p)
{
    size_t nl = strlen(e->name);
    int big = p->size >= MAX32, far = p->offset >= MAX32;
    put_le(cd, 0x02014b50, 4);
    put_le(cd, 0, 2); /* made by */
    put_le(cd, 0, 2); /* needed */
    put_le(cd, 0x0808, 2);
    put_le(cd, 0, 2);
    put_le(cd, 0, 4);
    put_le(cd, p->crc, 4);
    put_le(cd, big ? MAX32 : p->size, 4);
    put_le(cd, big ? MAX32 : p->size, 4);
    put_le(cd, nl, 2);
    put_le(cd, big || far ? 4 + (big ? 16 : 0) + (far ? 8 : 0) : 0, 2);
    put_le(cd, 0, 2); /* comment */
    put_le(cd, 0, 2); /* disk */
    put_le(cd, 0, 2);
    put_le(cd, 0, 4);
    put_le(cd, far ? MAX32 : p->offset, 4);
    cks_fx_put(cd, e->name, nl);
    if (big || far) {
        put_le(cd, 1, 2);
        put_le(cd, (big ? 16 : 0) + (far ? 8 : 0), 2);
        if (big) {
            put_le(cd, p->size, 8);
            put_le(cd, p->size, 8);
        }
        if (far)
            put_le(cd, p->offset, 8);
    }
}

static int write_archive(sink *s, const cks_fx_zip_entry *e, int n)
{
    placed *pl = calloc((size_t)n, sizeof *pl);
    cks_fx_buf cd = {0}, end = {0};
    uint64_t at = 0;
    if (!pl)
        return -1;
    for (int i = 0; i < n; i++)
        at = write_entry(s, &e[i], at, &pl[i]);
    for (int i = 0; i < n; i++)
        central(&cd, &e[i], &pl[i]);
    uint64_t cd_at = at, z64_at = at + cd.n;
    put_le(&end, 0x06064b50, 4); /* ZIP64 end record: miniz always writes it */
    put_le(&end, 44, 8);
    put_le(&end, 0x031e, 2);
    put_le(&end, 0x2d, 2);
    put_le(&end, 0, 8);
    put_le(&end, (uint64_t)n, 8);
    put_le(&end, (uint64_t)n, 8);
    put_le(&end, cd.n, 8);
    put_le(&end, cd_at, 8);
    put_le(&end, 0x07064b50, 4); /* locator */
    put_le(&end, 0, 4);
    put_le(&end, z64_at, 8);
    put_le(&end, 1, 4);
    put_le(&end, 0x06054b50, 4);
    put_le(&end, 0, 4);
    put_le(&end, (uint64_t)(n < 0xFFFF ? n : 0xFFFF), 2);
    put_le(&end, (uint64_t)(n < 0xFFFF ? n : 0xFFFF), 2);
    put_le(&end, cd.n < MAX32 ? cd.n : MAX32, 4);
    put_le(&end, cd_at < MAX32 ? cd_at : MAX32, 4);
    put_le(&end, 0, 2);
    emit(s, cd_at, cd.p, cd.n);
    emit(s, z64_at, end.p, end.n);
    cks_fx_buf_free(&cd);
    cks_fx_buf_free(&end);
    free(pl);
    return s->failed ? -1 : 0;
}

int cks_fx_torchzip_file(const char *path, const cks_fx_zip_entry *e, int n)
{
    sink s = {.fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644)};
    if (s.fd < 0) {
        fprintf(stderr, "torchfx: cannot create %s: %s\n", path, strerror(errno));
        return -1;
    }
    int rc = write_archive(&s, e, n);
    if (close(s.fd) != 0 || rc != 0) {
        fprintf(stderr, "torchfx: cannot write %s\n", path);
        return -1;
    }
    return 0;
}

unsigned char *cks_fx_torchzip_mem(const cks_fx_zip_entry *e, int n, size_t *size)
{
    sink s = {.fd = -1};
    if (write_archive(&s, e, n) != 0) {
        cks_fx_buf_free(&s.mem);
        return NULL;
    }
    *size = s.mem.n;
    return s.mem.p;
}
