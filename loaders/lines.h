/* Data files that may be compressed, read as a stream of lines (held-out corpora and
 * training data as they ship: DESIGN §5).
 *
 * Compression is recognised by the first bytes, never by the name:
 *   gzip (RFC 1952)  1f 8b        zlib's inflate; concatenated members (pigz, bgzip) are
 *                                 one stream; bytes after the last member that do not
 *                                 start another member are an error.
 *   zstd (RFC 8878)  28 b5 2f fd  libzstd's streaming decoder; several frames and
 *                    (or a skippable frame, 5X 2a 4d 18) are one stream; frames needing
 *                                 a window above 128 MiB (zstd --long=28 and up) are
 *                                 refused by libzstd's default limit.
 *   anything else: the bytes as they are (mapped, not copied).
 *
 * Decompression streams: memory is one line plus at most one chunk (CKS_LINES_CHUNK),
 * whatever the file's size. Bounds, each a CKS_ELIMIT naming the file: a line longer than
 * max_line; more than max_bytes decompressed; more than max_ratio decompressed bytes per
 * compressed byte once past ratio_free bytes (a decompression bomb: gzip cannot
 * pass 1032:1, real text and token JSONL compress 3-20:1). A stream that ends before its
 * end (a truncated .gz or .zst) and corrupt data are CKS_EFORMAT naming the file, the line
 * being decoded when it went wrong (1 + the lines completed before) and the byte offset in
 * the file.
 *
 * Lines end at '\n'; the '\n' is not part of the line (a '\r' before it is, for the
 * caller's parser to treat as blank); a last line without '\n' is a line. Line numbers
 * are 1-based. */
#ifndef CKS_LINES_H
#define CKS_LINES_H

#include <stddef.h>
#include <stdint.h>

#define CKS_LINES_CHUNK       ((size_t)1 << 20)    /* decompressed bytes per step */
#define CKS_MAX_LINE          ((size_t)256 << 20)  /* default max_line */
#define CKS_MAX_INFLATE_BYTES ((uint64_t)64 << 30) /* default max_bytes */
#define CKS_MAX_INFLATE_RATIO 1000                 /* default max_ratio */
#define CKS_LINES_RATIO_FREE  ((uint64_t)64 << 20) /* output allowed before the ratio applies */

typedef enum { CKS_COMP_NONE = 0, CKS_COMP_GZIP, CKS_COMP_ZSTD } cks_compression;

typedef struct {
    size_t max_line;     /* 0: CKS_MAX_LINE */
    uint64_t max_bytes;  /* 0: CKS_MAX_INFLATE_BYTES */
    uint64_t max_ratio;  /* 0: CKS_MAX_INFLATE_RATIO */
    uint64_t ratio_free; /* 0: CKS_LINES_RATIO_FREE */
} cks_lines_limits;

typedef struct cks_lines cks_lines;

/* The compression of data by its first bytes. */
cks_compression cks_compression_of(const void *data, size_t size);
/* "plain", "gzip", "zstd". */
const char *cks_compression_name(cks_compression c);

/* Opens a file (mapped). lim may be NULL (the defaults). */
int cks_lines_open(cks_lines **out, const char *path, const cks_lines_limits *lim);
/* The same over size bytes at data, borrowed until cks_lines_free; display (copied) names
 * them in messages. For tests and fuzz targets. */
int cks_lines_open_mem(cks_lines **out, const void *data, size_t size, const char *display,
                       const cks_lines_limits *lim);
void cks_lines_free(cks_lines *r);

/* The next line: *line points at *len bytes (borrowed until the next call; not
 * NUL-terminated), *lineno is its 1-based number. CKS_ITEROVER after the last line. */
int cks_lines_next(cks_lines *r, const char **line, size_t *len, int64_t *lineno);

/* Starts again from the first line (a second pass over a file). */
int cks_lines_rewind(cks_lines *r);

/* The whole stream as one buffer of at most max bytes (more is CKS_ELIMIT naming the
 * file), from the start (it rewinds first): for plain input *data points into it and
 * *heap is NULL; otherwise the decompressed bytes are in *heap (= *data), the caller's
 * to free. */
int cks_lines_whole(cks_lines *r, size_t max, const unsigned char **data, size_t *len,
                    unsigned char **heap);

cks_compression cks_lines_compression(const cks_lines *r);
const char *cks_lines_display(const cks_lines *r);
/* Decompressed bytes handed out so far (lines and their '\n'). */
uint64_t cks_lines_bytes(const cks_lines *r);

/* A whole file, decompressed when it is compressed, as one buffer of at most max bytes
 * (more is CKS_ELIMIT naming the file): mapped when plain, on the heap otherwise. */
typedef struct {
    const unsigned char *data; /* NULL only when size == 0 */
    size_t size;
    cks_compression comp;
    /* private */
    void *map;
    unsigned char *heap;
} cks_zbuf;

int cks_zbuf_read(cks_zbuf *out, const char *path, size_t max, const cks_lines_limits *lim);
void cks_zbuf_release(cks_zbuf *b);

#endif
