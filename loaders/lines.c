/* Plain, gzip and zstd files as a stream of lines (see lines.h): the compressed bytes are
 * mapped and decompressed a chunk at a time into one buffer that holds the line being
 * assembled, so memory does not grow with the file. */
#include "lines.h"
#include "error.h"
#include "map.h"

#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#include <zstd.h>
#include <zstd_errors.h>

/* The least free room decompressed into at a time (up to CKS_LINES_CHUNK when there is
 * more): the buffer starts at twice this and doubles, so small files cost little. */
#define LINES_ROOM ((size_t)64 << 10)

/* libzstd's default largest window, ZSTD_WINDOWLOG_LIMIT_DEFAULT (a static-linking-only name) */
#define ZSTD_WINDOW_LOG_DEFAULT_MAX 27

struct cks_lines {
    char *display;
    cks_map *map; /* the file; NULL over borrowed memory */
    const unsigned char *in;
    size_t insize;
    cks_compression comp;
    cks_lines_limits lim;
    /* decompressor */
    z_stream z;
    int zinit;
    size_t fed; /* gzip: input bytes handed to zlib */
    ZSTD_DStream *zs;
    size_t zpos;   /* zstd: input bytes consumed */
    int eof;       /* the compressed stream ended where it should */
    uint64_t made; /* decompressed bytes so far */
    /* lines */
    unsigned char *buf;
    size_t cap, start, end; /* bytes not handed out yet: buf[start, end) */
    size_t scanned;         /* buf[start, start + scanned) holds no '\n' */
    size_t pos;             /* plain: the next byte */
    uint64_t handed;
    int64_t lineno;
};

cks_compression cks_compression_of(const void *data, size_t size)
{
    const unsigned char *b = data;
    if (size >= 2 && b[0] == 0x1f && b[1] == 0x8b)
        return CKS_COMP_GZIP;
    if (size >= 4) {
        uint32_t m =
            (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
        if (m == 0xfd2fb528u || (m & 0xfffffff0u) == 0x184d2a50u) /* frame, skippable frame */
            return CKS_COMP_ZSTD;
    }
    return CKS_COMP_NONE;
}

const char *cks_compression_name(cks_compression c)
{
    return c == CKS_COMP_GZIP ? "gzip" : c == CKS_COMP_ZSTD ? "zstd" : "plain";
}

static int decoder_start(cks_lines *r)
{
    if (r->comp == CKS_COMP_GZIP) {
        memset(&r->z, 0, sizeof r->z);
        if (inflateInit2(&r->z, 16 + MAX_WBITS) != Z_OK) /* 16: gzip wrapper only */
            return cks_error_set(CKS_ENOMEM, "%s: cannot start zlib", r->display);
        r->zinit = 1;
    } else if (r->comp == CKS_COMP_ZSTD) {
        r->zs = ZSTD_createDStream();
        if (!r->zs || ZSTD_isError(ZSTD_initDStream(r->zs)))
            return cks_error_set(CKS_ENOMEM, "%s: cannot start libzstd", r->display);
    }
    return 0;
}

static int open_common(cks_lines *r, const cks_lines_limits *lim)
{
    r->lim.max_line = lim && lim->max_line ? lim->max_line : CKS_MAX_LINE;
    r->lim.max_bytes = lim && lim->max_bytes ? lim->max_bytes : CKS_MAX_INFLATE_BYTES;
    r->lim.max_ratio = lim && lim->max_ratio ? lim->max_ratio : CKS_MAX_INFLATE_RATIO;
    r->lim.ratio_free = lim && lim->ratio_free ? lim->ratio_free : CKS_LINES_RATIO_FREE;
    r->comp = cks_compression_of(r->in, r->insize);
    return decoder_start(r);
}

int cks_lines_open(cks_lines **out, const char *path, const cks_lines_limits *lim)
{
    cks_lines *r = calloc(1, sizeof *r);
    int err;
    if (!r || !(r->display = strdup(path))) {
        free(r);
        return cks_error_set(CKS_ENOMEM, "%s: out of memory", path);
    }
    if ((err = cks_map_file(&r->map, path, path)) != 0 ||
        (r->in = r->map->data, r->insize = r->map->size, err = open_common(r, lim)) != 0) {
        cks_lines_free(r);
        return err;
    }
    *out = r;
    return 0;
}

int cks_lines_open_mem(cks_lines **out, const void *data, size_t size, const char *display,
                       const cks_lines_limits *lim)
{
    cks_lines *r = calloc(1, sizeof *r);
    int err;
    if (!r || !(r->display = strdup(display))) {
        free(r);
        return cks_error_set(CKS_ENOMEM, "%s: out of memory", display);
    }
    r->in = data;
    r->insize = size;
    if ((err = open_common(r, lim)) != 0) {
        cks_lines_free(r);
        return err;
    }
    *out = r;
    return 0;
}

void cks_lines_free(cks_lines *r)
{
    if (!r)
        return;
    if (r->zinit)
        inflateEnd(&r->z);
    ZSTD_freeDStream(r->zs);
    cks_map_free(r->map);
    free(r->buf);
    free(r->display);
    free(r);
}

/* The line a decompression error falls in: the lines handed out (or, in slurp, passed)
 * plus those completed in the got bytes this step decompressed before it failed
 * (decompression runs only when the bytes not handed out yet hold no complete line). */
static long long at_line(const cks_lines *r, const unsigned char *got, size_t n)
{
    long long line = (long long)r->lineno + 1;
    for (const unsigned char *e = got + n; n && (got = memchr(got, '\n', (size_t)(e - got))); got++)
        line++;
    return line;
}

static int truncated(const cks_lines *r, const unsigned char *got, size_t n)
{
    return cks_error_set(CKS_EFORMAT,
                         "%s: line %lld: truncated %s data: the file ends (%zu bytes) before its "
                         "compressed stream does",
                         r->display, at_line(r, got, n), cks_compression_name(r->comp), r->insize);
}

/* Bytes past the end of one gzip member: another member, or an error. */
static int gzip_member_end(cks_lines *r, const unsigned char *got, size_t n)
{
    size_t at = r->fed - r->z.avail_in, left = r->insize - at;
    if (left == 0) {
        r->eof = 1;
        return 0;
    }
    if (left >= 2 && r->in[at] == 0x1f && r->in[at + 1] == 0x8b) {
        inflateReset(&r->z);
        return 0;
    }
    return cks_error_set(CKS_EFORMAT,
                         "%s: line %lld: %zu bytes after the end of the gzip data (at byte %zu)",
                         r->display, at_line(r, got, n), left, at);
}

static int gzip_produce(cks_lines *r, unsigned char *dst, size_t n, size_t *got)
{
    r->z.next_out = dst;
    r->z.avail_out = (uInt)n;
    while (r->z.avail_out > 0 && !r->eof) {
        if (r->z.avail_in == 0 && r->fed < r->insize) {
            size_t k =
                r->insize - r->fed < ((size_t)1 << 30) ? r->insize - r->fed : (size_t)1 << 30;
            r->z.next_in = (unsigned char *)r->in + r->fed; /* zlib does not write it */
            r->z.avail_in = (uInt)k;
            r->fed += k;
        }
        int ret = inflate(&r->z, Z_NO_FLUSH), err;
        if (ret == Z_STREAM_END) {
            if ((err = gzip_member_end(r, dst, n - r->z.avail_out)) != 0)
                return err;
        } else if (ret == Z_BUF_ERROR && r->z.avail_in == 0 && r->fed == r->insize) {
            return truncated(r, dst, n - r->z.avail_out);
        } else if (ret == Z_MEM_ERROR) {
            return cks_error_set(CKS_ENOMEM, "%s: out of memory in zlib", r->display);
        } else if (ret != Z_OK) {
            return cks_error_set(CKS_EFORMAT,
                                 "%s: line %lld: corrupt gzip data near byte %zu (zlib: %s)",
                                 r->display, at_line(r, dst, n - r->z.avail_out),
                                 r->fed - r->z.avail_in, r->z.msg ? r->z.msg : "error");
        }
    }
    *got = n - r->z.avail_out;
    return 0;
}

static int zstd_produce(cks_lines *r, unsigned char *dst, size_t n, size_t *got)
{
    ZSTD_inBuffer ib = {r->in, r->insize, r->zpos};
    ZSTD_outBuffer ob = {dst, n, 0};
    while (ob.pos < ob.size && !r->eof) {
        size_t before = ob.pos;
        size_t ret = ZSTD_decompressStream(r->zs, &ob, &ib);
        r->zpos = ib.pos;
        if (ZSTD_isError(ret)) {
            if (ZSTD_getErrorCode(ret) == ZSTD_error_frameParameter_windowTooLarge)
                return cks_error_set(CKS_EUNSUPPORTED,
                                     "%s: a zstd frame needs a window larger than %d MiB (written "
                                     "with zstd --long?); recompress without it",
                                     r->display, 1 << (ZSTD_WINDOW_LOG_DEFAULT_MAX - 20));
            if (ZSTD_getErrorCode(ret) == ZSTD_error_memory_allocation)
                return cks_error_set(CKS_ENOMEM, "%s: out of memory in libzstd", r->display);
            return cks_error_set(
                CKS_EFORMAT, "%s: line %lld: corrupt zstd data near byte %zu (libzstd: %s)",
                r->display, at_line(r, dst, ob.pos), ib.pos, ZSTD_getErrorName(ret));
        }
        if (ib.pos == ib.size && ret == 0)
            r->eof = 1; /* all input used, at a frame boundary, everything flushed */
        else if (ib.pos == ib.size && ob.pos == before)
            return truncated(r, dst,
                             ob.pos); /* no progress: it needs input the file does not have */
    }
    *got = ob.pos;
    return 0;
}

/* Up to n more decompressed bytes into dst; *got == 0 only at the end of the stream. */
static int produce(cks_lines *r, unsigned char *dst, size_t n, size_t *got)
{
    int err =
        r->comp == CKS_COMP_GZIP ? gzip_produce(r, dst, n, got) : zstd_produce(r, dst, n, got);
    if (err)
        return err;
    r->made += *got;
    if (r->made > r->lim.max_bytes)
        return cks_error_set(CKS_ELIMIT, "%s: more than %llu bytes once decompressed", r->display,
                             (unsigned long long)r->lim.max_bytes);
    if (r->made > r->lim.ratio_free && r->made / r->lim.max_ratio > r->insize)
        return cks_error_set(CKS_ELIMIT,
                             "%s: decompresses to more than %llu times its %zu bytes: refused as "
                             "a likely decompression bomb",
                             r->display, (unsigned long long)r->lim.max_ratio, r->insize);
    return 0;
}

static int too_long(const cks_lines *r)
{
    return cks_error_set(CKS_ELIMIT, "%s: line %lld is longer than %zu bytes", r->display,
                         (long long)r->lineno + 1, r->lim.max_line);
}

static int next_plain(cks_lines *r, const char **line, size_t *len)
{
    if (r->pos >= r->insize)
        return CKS_ITEROVER;
    const unsigned char *p = r->in + r->pos;
    const unsigned char *nl = memchr(p, '\n', r->insize - r->pos);
    size_t n = nl ? (size_t)(nl - p) : r->insize - r->pos;
    if (n > r->lim.max_line)
        return too_long(r);
    *line = (const char *)p;
    *len = n;
    r->pos += n + (nl != NULL);
    r->handed += n + (nl != NULL);
    return 0;
}

/* Room for one more chunk after buf[end]: the pending bytes moved to the front first. */
static int make_room(cks_lines *r)
{
    if (r->start > 0) {
        memmove(r->buf, r->buf + r->start, r->end - r->start);
        r->end -= r->start;
        r->start = 0;
    }
    if (r->cap - r->end >= LINES_ROOM)
        return 0;
    size_t c = r->cap ? 2 * r->cap : 2 * LINES_ROOM; /* small files stay small */
    if (c > r->end + CKS_LINES_CHUNK)
        c = r->end + CKS_LINES_CHUNK;
    unsigned char *b = realloc(r->buf, c);
    if (!b)
        return cks_error_set(CKS_ENOMEM, "%s: out of memory for a line of %zu bytes", r->display,
                             r->end);
    r->buf = b;
    r->cap = c;
    return 0;
}

static int next_stream(cks_lines *r, const char **line, size_t *len)
{
    for (;;) {
        size_t pending = r->end - r->start;
        unsigned char *p = r->buf ? r->buf + r->start : NULL; /* no buffer before a chunk */
        unsigned char *nl =
            pending > r->scanned ? memchr(p + r->scanned, '\n', pending - r->scanned) : NULL;
        if (nl || (r->eof && pending > 0)) {
            size_t n = nl ? (size_t)(nl - p) : pending;
            if (n > r->lim.max_line)
                return too_long(r);
            *line = (const char *)p;
            *len = n;
            r->start += n + (nl != NULL);
            r->handed += n + (nl != NULL);
            r->scanned = 0;
            return 0;
        }
        r->scanned = pending;
        if (pending > r->lim.max_line)
            return too_long(r);
        if (r->eof)
            return CKS_ITEROVER;
        size_t got = 0;
        int err = make_room(r);
        size_t room = r->cap - r->end < CKS_LINES_CHUNK ? r->cap - r->end : CKS_LINES_CHUNK;
        if (err || (err = produce(r, r->buf + r->end, room, &got)) != 0)
            return err;
        r->end += got;
    }
}

int cks_lines_next(cks_lines *r, const char **line, size_t *len, int64_t *lineno)
{
    int err = r->comp == CKS_COMP_NONE ? next_plain(r, line, len) : next_stream(r, line, len);
    if (err)
        return err;
    *lineno = ++r->lineno;
    return 0;
}

int cks_lines_rewind(cks_lines *r)
{
    if (r->zinit)
        inflateReset(&r->z);
    r->z.next_in = NULL;
    r->z.avail_in = 0;
    if (r->zs && ZSTD_isError(ZSTD_DCtx_reset(r->zs, ZSTD_reset_session_only)))
        return cks_error_set(CKS_ERROR, "%s: cannot restart libzstd", r->display);
    r->fed = r->zpos = 0;
    r->eof = 0;
    r->made = r->handed = 0;
    r->start = r->end = r->scanned = r->pos = 0;
    r->lineno = 0;
    return 0;
}

cks_compression cks_lines_compression(const cks_lines *r)
{
    return r->comp;
}

const char *cks_lines_display(const cks_lines *r)
{
    return r->display;
}

uint64_t cks_lines_bytes(const cks_lines *r)
{
    return r->handed;
}

/* Decompresses the whole stream into a heap buffer of at most max bytes. */
static int slurp(cks_lines *r, size_t max, unsigned char **out, size_t *len)
{
    unsigned char *b = NULL;
    size_t cap = 0, n = 0;
    int err = 0;
    while (!r->eof) {
        if (cap - n < LINES_ROOM) {
            size_t c = cap ? 2 * cap : 2 * LINES_ROOM;
            if (c > max + LINES_ROOM + 1)
                c = max + LINES_ROOM + 1;
            unsigned char *q = c > cap ? realloc(b, c) : NULL;
            if (!q) {
                err = cks_error_set(CKS_ENOMEM, "%s: out of memory", r->display);
                break;
            }
            b = q;
            cap = c;
        }
        size_t got = 0;
        size_t room = cap - n < CKS_LINES_CHUNK ? cap - n : CKS_LINES_CHUNK;
        if ((err = produce(r, b + n, room, &got)) != 0)
            break;
        for (const unsigned char *q = b + n, *e = b + n + got;
             (q = memchr(q, '\n', (size_t)(e - q))) != NULL; q++)
            r->lineno++; /* for at_line */
        n += got;
        if (n > max) {
            err = cks_error_set(CKS_ELIMIT, "%s: more than %zu bytes once decompressed", r->display,
                                max);
            break;
        }
    }
    r->lineno = 0; /* lines are numbered by cks_lines_next only */
    if (err) {
        free(b);
        return err;
    }
    *out = b;
    *len = n;
    return 0;
}

int cks_lines_whole(cks_lines *r, size_t max, const unsigned char **data, size_t *len,
                    unsigned char **heap)
{
    int err = cks_lines_rewind(r);
    *heap = NULL;
    if (err)
        return err;
    if (r->comp != CKS_COMP_NONE) {
        if ((err = slurp(r, max, heap, len)) == 0)
            *data = *heap;
        return err;
    }
    if (r->insize > max)
        return cks_error_set(CKS_ELIMIT, "%s: %zu bytes, more than the %zu allowed", r->display,
                             r->insize, max);
    *data = r->in;
    *len = r->insize;
    return 0;
}

int cks_zbuf_read(cks_zbuf *out, const char *path, size_t max, const cks_lines_limits *lim)
{
    cks_lines *r = NULL;
    int err = cks_lines_open(&r, path, lim);
    memset(out, 0, sizeof *out);
    if (err)
        return err;
    out->comp = r->comp;
    if ((err = cks_lines_whole(r, max, &out->data, &out->size, &out->heap)) == 0 && !out->heap) {
        out->map = r->map; /* plain: the mapping is the buffer */
        r->map = NULL;
    }
    cks_lines_free(r);
    return err;
}

void cks_zbuf_release(cks_zbuf *b)
{
    if (!b)
        return;
    cks_map_free(b->map);
    free(b->heap);
    memset(b, 0, sizeof *b);
}
