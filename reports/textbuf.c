/* The growable text buffer of textbuf.h: doubling growth, sticky errors. */
#include "textbuf.h"
#include "utf8.h"
#include "error.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void cks_buf_init(cks_buf *b)
{
    memset(b, 0, sizeof *b);
}

void cks_buf_release(cks_buf *b)
{
    free(b->data);
    cks_buf_init(b);
}

void cks_buf_clear(cks_buf *b)
{
    b->len = 0;
    if (b->data)
        b->data[0] = '\0';
}

/* Room for n more bytes plus the NUL. */
static int reserve(cks_buf *b, size_t n)
{
    if (b->err)
        return b->err;
    if (n > CKS_BUF_MAX - b->len - 1 || b->len >= CKS_BUF_MAX) {
        b->err = cks_error_set(CKS_ELIMIT, "text buffer would pass %zu bytes", CKS_BUF_MAX);
        return b->err;
    }
    size_t need = b->len + n + 1;
    if (need <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need)
        cap = cap > CKS_BUF_MAX / 2 ? CKS_BUF_MAX : cap * 2;
    char *p = realloc(b->data, cap);
    if (!p) {
        b->err = cks_error_set(CKS_ENOMEM, "out of memory (text buffer of %zu bytes)", cap);
        return b->err;
    }
    b->data = p;
    b->cap = cap;
    return 0;
}

void cks_buf_put(cks_buf *b, const void *p, size_t n)
{
    if (reserve(b, n))
        return;
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
}

void cks_buf_puts(cks_buf *b, const char *s)
{
    cks_buf_put(b, s, strlen(s));
}

void cks_buf_printf(cks_buf *b, const char *fmt, ...)
{
    va_list ap;
    char small[256];
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0) {
        if (!b->err)
            b->err = cks_error_set(CKS_EINVAL, "bad format '%s'", fmt);
        return;
    }
    if ((size_t)n < sizeof small) {
        cks_buf_put(b, small, (size_t)n);
        return;
    }
    if (reserve(b, (size_t)n))
        return;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

void cks_buf_put_text(cks_buf *b, const char *s, size_t max, const char *(*esc)(char c))
{
    const unsigned char *p = (const unsigned char *)s;
    size_t n = strlen(s), chars = 0;
    for (size_t i = 0; i < n;) {
        if (chars++ == max) {
            cks_buf_puts(b, "...");
            return;
        }
        if (p[i] >= 0x80) {
            size_t len = cks_utf8_char(p + i, n - i);
            cks_buf_put(b, len ? (const char *)p + i : "?", len ? len : 1);
            i += len ? len : 1;
            continue;
        }
        char c = p[i] < 0x20 || p[i] == 0x7f ? ' ' : (char)p[i];
        const char *e = esc ? esc(c) : NULL;
        if (e)
            cks_buf_puts(b, e);
        else
            cks_buf_put(b, &c, 1);
        i++;
    }
}

void cks_buf_put_base64(cks_buf *b, const unsigned char *p, size_t n)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    if (n > CKS_BUF_MAX / 4 * 3) {
        if (!b->err)
            b->err =
                cks_error_set(CKS_ELIMIT, "base64 of %zu bytes would pass %zu", n, CKS_BUF_MAX);
        return;
    }
    if (reserve(b, (n + 2) / 3 * 4))
        return;
    char *o = b->data + b->len;
    size_t i = 0;
    for (; i + 3 <= n; i += 3) {
        unsigned v = (unsigned)p[i] << 16 | (unsigned)p[i + 1] << 8 | p[i + 2];
        *o++ = tab[v >> 18], *o++ = tab[(v >> 12) & 63], *o++ = tab[(v >> 6) & 63];
        *o++ = tab[v & 63];
    }
    if (i < n) {
        unsigned v = (unsigned)p[i] << 16 | (i + 1 < n ? (unsigned)p[i + 1] << 8 : 0);
        *o++ = tab[v >> 18], *o++ = tab[(v >> 12) & 63];
        *o++ = i + 1 < n ? tab[(v >> 6) & 63] : '=';
        *o++ = '=';
    }
    b->len = (size_t)(o - b->data);
    b->data[b->len] = '\0';
}

int cks_buf_error(const cks_buf *b)
{
    return b->err;
}

const char *cks_buf_text(const cks_buf *b)
{
    return b->data ? b->data : "";
}
