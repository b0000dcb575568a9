/* NFC normalization (Unicode Standard Annex #15): canonical decomposition, canonical
 * ordering of combining marks, canonical composition, with Hangul by arithmetic (Unicode
 * §3.12). Text is copied as it is up to the last normalization boundary before a character
 * that may change (the "safe" bit of tok_nfc_props.c); only the stretch from there to the
 * next boundary goes through the three steps, so ASCII and most text cost one table
 * look-up per character. */
#include "error.h"
#include "tok_impl.h"
#include "tok_nfc.h"

#include <stdlib.h>
#include <string.h>

enum { SBASE = 0xAC00, LBASE = 0x1100, VBASE = 0x1161, TBASE = 0x11A7 };
enum { LCOUNT = 19, VCOUNT = 21, TCOUNT = 28, NCOUNT = VCOUNT * TCOUNT, SCOUNT = 11172 };

typedef struct {
    uint32_t *cp;
    size_t n, cap;
} cpbuf;

/* Decodes the UTF-8 character at s (valid input; bounded by avail). */
static uint32_t utf8_get(const char *s, size_t avail, size_t *len)
{
    const uint8_t *u = (const uint8_t *)s;
    size_t l = cks_tok_utf8_len(s, avail);
    uint32_t c = u[0];
    if (l == 2)
        c = (c & 0x1Fu) << 6 | (u[1] & 0x3Fu);
    else if (l == 3)
        c = (c & 0x0Fu) << 12 | (u[1] & 0x3Fu) << 6 | (u[2] & 0x3Fu);
    else if (l == 4)
        c = (c & 0x07u) << 18 | (u[1] & 0x3Fu) << 12 | (u[2] & 0x3Fu) << 6 | (u[3] & 0x3Fu);
    *len = l;
    return c < 0x110000 ? c : 0xFFFD;
}

static size_t utf8_put(char *o, uint32_t c)
{
    if (c < 0x80) {
        o[0] = (char)c;
        return 1;
    }
    if (c < 0x800) {
        o[0] = (char)(0xC0 | c >> 6);
        o[1] = (char)(0x80 | (c & 0x3F));
        return 2;
    }
    if (c < 0x10000) {
        o[0] = (char)(0xE0 | c >> 12);
        o[1] = (char)(0x80 | (c >> 6 & 0x3F));
        o[2] = (char)(0x80 | (c & 0x3F));
        return 3;
    }
    o[0] = (char)(0xF0 | c >> 18);
    o[1] = (char)(0x80 | (c >> 12 & 0x3F));
    o[2] = (char)(0x80 | (c >> 6 & 0x3F));
    o[3] = (char)(0x80 | (c & 0x3F));
    return 4;
}

static unsigned ccc_of(uint32_t c)
{
    return cks_nfc_info(c) & 0xFFu;
}

static int cp_push(cpbuf *b, uint32_t c)
{
    if (b->n == b->cap) {
        size_t cap = b->cap ? 2 * b->cap : 256;
        uint32_t *p = realloc(b->cp, cap * sizeof *p);
        if (!p)
            return cks_error_set(CKS_ENOMEM, "out of memory (NFC of a long run of marks)");
        b->cp = p;
        b->cap = cap;
    }
    b->cp[b->n++] = c;
    return 0;
}

/* Appends the full canonical decomposition of c. */
static int decompose(cpbuf *b, uint32_t c)
{
    if (c - SBASE < SCOUNT) {
        uint32_t s = c - SBASE, t = s % TCOUNT;
        int rc = cp_push(b, LBASE + s / NCOUNT);
        if (!rc)
            rc = cp_push(b, VBASE + s % NCOUNT / TCOUNT);
        if (!rc && t)
            rc = cp_push(b, TBASE + t);
        return rc;
    }
    if (!(cks_nfc_info(c) & CKS_NFC_DECOMP))
        return cp_push(b, c);
    size_t lo = 0, hi = cks_nfc_ndecomp;
    while (lo < hi) { /* the tables list every character with the bit set */
        size_t mid = (lo + hi) / 2;
        if (cks_nfc_dcp[mid] < c)
            lo = mid + 1;
        else
            hi = mid;
    }
    unsigned v = cks_nfc_dval[lo];
    for (unsigned k = 0; k < (v & 7u); k++) {
        int rc = cp_push(b, cks_nfc_decomp[(v >> 3) + k]);
        if (rc)
            return rc;
    }
    return 0;
}

/* Sorts each run of non-starters by combining class, stably (insertion sort; a counting
 * pass over the run when it is long, so hostile runs of marks stay linear). */
static int canonical_order(cpbuf *b, cpbuf *tmp)
{
    size_t i = 0;
    while (i < b->n) {
        if (ccc_of(b->cp[i]) == 0) {
            i++;
            continue;
        }
        size_t j = i;
        while (j < b->n && ccc_of(b->cp[j]) != 0)
            j++;
        if (j - i <= 32) {
            for (size_t k = i + 1; k < j; k++) {
                uint32_t c = b->cp[k];
                unsigned cc = ccc_of(c);
                size_t m = k;
                while (m > i && ccc_of(b->cp[m - 1]) > cc) {
                    b->cp[m] = b->cp[m - 1];
                    m--;
                }
                b->cp[m] = c;
            }
        } else {
            size_t count[257] = {0};
            tmp->n = 0;
            for (size_t k = i; k < j; k++)
                count[ccc_of(b->cp[k]) + 1]++;
            for (int k = 1; k < 257; k++)
                count[k] += count[k - 1];
            for (size_t k = i; k < j; k++) {
                int rc = cp_push(tmp, 0);
                if (rc)
                    return rc;
            }
            for (size_t k = i; k < j; k++)
                tmp->cp[count[ccc_of(b->cp[k])]++] = b->cp[k];
            memcpy(b->cp + i, tmp->cp, (j - i) * sizeof *b->cp);
        }
        i = j;
    }
    return 0;
}

/* The primary composite of a + b, or 0. */
static uint32_t compose_pair(uint32_t a, uint32_t b)
{
    if (a - LBASE < LCOUNT && b - VBASE < VCOUNT)
        return SBASE + ((a - LBASE) * VCOUNT + (b - VBASE)) * TCOUNT;
    if (a - SBASE < SCOUNT && (a - SBASE) % TCOUNT == 0 && b - TBASE - 1 < TCOUNT - 1)
        return a + (b - TBASE);
    uint64_t key = (uint64_t)a << 21 | b;
    size_t lo = 0, hi = cks_nfc_ncomp;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (cks_nfc_comp[mid].key < key)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < cks_nfc_ncomp && cks_nfc_comp[lo].key == key ? cks_nfc_comp[lo].composite : 0;
}

/* Canonical composition in place (UAX #15's sample algorithm). */
static void compose(cpbuf *b)
{
    if (b->n == 0)
        return;
    size_t starter = 0, out = 1;
    unsigned last = ccc_of(b->cp[0]) ? 256 : 0;
    for (size_t k = 1; k < b->n; k++) {
        uint32_t c = b->cp[k];
        unsigned cc = ccc_of(c);
        uint32_t comp = compose_pair(b->cp[starter], c);
        if (comp && (last < cc || last == 0)) {
            b->cp[starter] = comp;
            continue;
        }
        if (cc == 0)
            starter = out;
        last = cc;
        b->cp[out++] = c;
    }
    b->n = out;
}

static int nfc_stretch(const char *s, size_t n, cpbuf *b, cpbuf *tmp, cks_tok_buf *o)
{
    b->n = 0;
    for (size_t i = 0; i < n;) {
        size_t l;
        int rc = decompose(b, utf8_get(s + i, n - i, &l));
        if (rc)
            return rc;
        i += l;
    }
    int rc = canonical_order(b, tmp);
    if (rc)
        return rc;
    compose(b);
    if ((rc = cks_tok_buf_reserve(o, 4 * b->n)))
        return rc;
    for (size_t k = 0; k < b->n; k++)
        o->n += utf8_put(o->p + o->n, b->cp[k]);
    return 0;
}

int cks_tok_nfc(const char *s, size_t n, cks_tok_buf *o)
{
    cpbuf b = {0}, tmp = {0};
    size_t done = 0, safe = 0, i = 0;
    int rc = 0;
    o->n = 0;
    while (i < n && !rc) {
        if ((uint8_t)s[i] < 0x80) {
            safe = i++;
            continue;
        }
        size_t l;
        uint32_t c = utf8_get(s + i, n - i, &l);
        if (cks_nfc_info(c) & CKS_NFC_SAFE) {
            safe = i;
            i += l;
            continue;
        }
        /* From the last boundary to the next one, through the three steps. */
        size_t end = i + l;
        while (end < n && !(cks_nfc_info(utf8_get(s + end, n - end, &l)) & CKS_NFC_SAFE))
            end += l;
        rc = cks_tok_buf_put(o, s + done, safe - done);
        if (!rc)
            rc = nfc_stretch(s + safe, end - safe, &b, &tmp, o);
        done = safe = i = end;
    }
    if (!rc)
        rc = cks_tok_buf_put(o, s + done, n - done);
    free(b.cp);
    free(tmp.cp);
    return rc;
}
