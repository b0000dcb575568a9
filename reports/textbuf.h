/* A growable text buffer for the things reports/ builds in memory: gnuplot scripts, HTML
 * pages, report tables. Failures are sticky: after an allocation fails (or the buffer would
 * pass CKS_BUF_MAX) every later append does nothing, so a builder appends freely and checks
 * cks_buf_error once at the end. */
#ifndef CKS_TEXTBUF_H
#define CKS_TEXTBUF_H

#include <stddef.h>

#define CKS_BUF_MAX ((size_t)1 << 30) /* 1 GiB: no script or page of ours comes near it */

typedef struct {
    char *data; /* NUL-terminated once anything was appended; NULL before */
    size_t len, cap;
    int err; /* 0, or the CKS_E* code of the first failed append (message set then) */
} cks_buf;

void cks_buf_init(cks_buf *b);
void cks_buf_release(cks_buf *b);
/* Empties the buffer, keeping its memory and its error. */
void cks_buf_clear(cks_buf *b);

void cks_buf_put(cks_buf *b, const void *p, size_t n);
void cks_buf_puts(cks_buf *b, const char *s);
void cks_buf_printf(cks_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Appends untrusted text s for display in a script, a page or a terminal: bytes that are
 * not part of valid UTF-8 (strict: no overlong forms, surrogates or code points past
 * U+10FFFF) become '?', control characters (C0, DEL; newlines too) a space, and after
 * max characters the rest becomes "...". esc, when not NULL, maps an ASCII character to
 * its escaped spelling ("''", "&amp;") or returns NULL to keep it. */
void cks_buf_put_text(cks_buf *b, const char *s, size_t max, const char *(*esc)(char c));

/* Appends n bytes as base64 (RFC 4648, with padding), for data URIs. */
void cks_buf_put_base64(cks_buf *b, const unsigned char *p, size_t n);

/* 0, or the code of the first failed append (its message is the thread's error). */
int cks_buf_error(const cks_buf *b);

/* The text so far, "" when empty; valid until the next append or release. */
const char *cks_buf_text(const cks_buf *b);

#endif
