/* Outcomes on the wire (see wire.h). Layout, native byte order (every rank runs the same
 * binary): u64 flags (interrupted, stale, status, prev_avail, ref_avail), u64 pos, prev,
 * ref, action, own; f64 bytes, seconds; str message, other; then for a complete outcome:
 * u64 n, nvals; per column str name, str kind, i64 layer, rows, cols; f64 vals[nvals*n];
 * u8 has_top[n]; f32 top[K] per column that has it; u64 item count; per item str path,
 * description, unit, axis (u64 1 + str, or u64 0 when absent), u64 row length (with
 * bit 63 set for a uint8 row) or UINT64_MAX for a series value, then f64 value, f32 row
 * or u8 row. */
#include "wire.h"
#include "error.h"

#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MAX_MESSAGE INT_MAX
#define SERIES      UINT64_MAX
#define U8_ROW      ((uint64_t)1 << 63)

static void put(cks_wbuf *b, const void *v, size_t n)
{
    if (b->oom || n == 0)
        return;
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->oom = 1;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, v, n);
    b->len += n;
}

static void put_u64(cks_wbuf *b, uint64_t v)
{
    put(b, &v, sizeof v);
}

static void put_str(cks_wbuf *b, const char *s)
{
    size_t n = strlen(s);
    put_u64(b, n);
    put(b, s, n);
}

static void put_opt(cks_wbuf *b, const char *s)
{
    put_u64(b, s != NULL);
    if (s)
        put_str(b, s);
}

static void pack_values(const cks_values *v, cks_wbuf *b)
{
    put_u64(b, v->n);
    put_u64(b, v->nvals);
    for (size_t i = 0; i < v->n; i++) {
        const cks_store_tensor *c = &v->cols[i];
        int64_t layer = c->layer;
        put_str(b, c->name);
        put_str(b, c->kind);
        put(b, &layer, sizeof layer);
        put(b, &c->rows, sizeof c->rows);
        put(b, &c->cols, sizeof c->cols);
    }
    put(b, v->vals, v->nvals * v->n * sizeof *v->vals);
    for (size_t i = 0; i < v->n; i++) {
        unsigned char h = (unsigned char)(v->has_top[i] != 0);
        put(b, &h, 1);
    }
    for (size_t i = 0; i < v->n; i++)
        if (v->has_top[i])
            put(b, v->top + i * CKS_SPECTRA_K, CKS_SPECTRA_K * sizeof *v->top);
    put_u64(b, v->items.n);
    for (size_t i = 0; i < v->items.n; i++) {
        const cks_item *x = &v->items.v[i];
        put_str(b, x->path);
        put_str(b, x->description);
        put_opt(b, x->unit);
        put_opt(b, x->axis);
        put_u64(b, x->row ? x->n : x->flags ? x->n | U8_ROW : SERIES);
        if (x->row)
            put(b, x->row, x->n * sizeof *x->row);
        else if (x->flags)
            put(b, x->flags, x->n);
        else
            put(b, &x->value, sizeof x->value);
    }
}

int cks_wire_pack(const cks_outcome *o, int interrupted, cks_wbuf *b)
{
    const cks_task *t = &o->task;
    int complete = !interrupted && !o->stale && o->status == CKS_SCAN_COMPLETE;
    put_u64(b, (uint64_t)interrupted | (uint64_t)o->stale << 1 | (uint64_t)o->status << 2 |
                   (uint64_t)o->prev_avail << 8 | (uint64_t)o->ref_avail << 16);
    const uint64_t task[] = {t->pos, t->prev, t->ref, (uint64_t)t->action, (uint64_t)t->own};
    put(b, task, sizeof task);
    put(b, &o->bytes, sizeof o->bytes);
    put(b, &o->seconds, sizeof o->seconds);
    put_str(b, o->message);
    put_str(b, o->other);
    if (complete)
        pack_values(&o->v, b);
    if (b->oom || b->len > MAX_MESSAGE)
        return cks_error_set(CKS_ENOMEM, "cannot pack the result of a checkpoint (%zu bytes)",
                             b->len);
    return 0;
}

typedef struct {
    const char *p;
    size_t len, at;
    int bad;
} rbuf;

static void get(rbuf *b, void *v, size_t n)
{
    if (b->bad || n > b->len - b->at) {
        b->bad = 1;
        memset(v, 0, n);
        return;
    }
    memcpy(v, b->p + b->at, n);
    b->at += n;
}

static uint64_t get_u64(rbuf *b)
{
    uint64_t v;
    get(b, &v, sizeof v);
    return v;
}

/* A string of the message into *dst (advanced) inside storage ending at end. */
static char *get_str(rbuf *b, char **dst, const char *end)
{
    uint64_t n = get_u64(b);
    if (b->bad || n > b->len - b->at || n >= (uint64_t)(end - *dst)) {
        b->bad = 1;
        return NULL;
    }
    char *s = *dst;
    get(b, s, (size_t)n);
    s[n] = '\0';
    *dst += n + 1;
    return s;
}

static void get_text(rbuf *b, char *out, size_t cap)
{
    char *p = out;
    if (!get_str(b, &p, out + cap))
        out[0] = '\0';
}

static int unpack_items(rbuf *b, cks_items *it, char *scratch, size_t cap)
{
    uint64_t n = get_u64(b);
    if (b->bad || n > (b->len - b->at) / 40) /* an item takes at least 40 bytes */
        return -1;
    for (uint64_t i = 0; i < n && !b->bad; i++) {
        char *dst = scratch, *end = scratch + cap, *unit = NULL, *axis = NULL;
        char *path = get_str(b, &dst, end), *desc = get_str(b, &dst, end);
        if (get_u64(b))
            unit = get_str(b, &dst, end);
        if (get_u64(b))
            axis = get_str(b, &dst, end);
        uint64_t k = get_u64(b);
        if (b->bad || !path || !desc)
            return -1;
        if (k == SERIES) {
            double v;
            get(b, &v, sizeof v);
            if (b->bad || cks_items_series(it, path, v, desc, unit) != 0)
                return -1;
            continue;
        }
        if (k & U8_ROW) {
            uint8_t *flags;
            k &= ~U8_ROW;
            if (k > b->len - b->at || !axis || !(flags = malloc(k ? k : 1)))
                return -1;
            get(b, flags, (size_t)k);
            if (b->bad) {
                free(flags);
                return -1;
            }
            if (cks_items_row_u8(it, path, flags, (size_t)k, axis, desc, unit) != 0)
                return -1;
            continue;
        }
        float *row;
        if (k > (b->len - b->at) / sizeof *row || !(row = malloc(k ? k * sizeof *row : 1)))
            return -1;
        get(b, row, (size_t)k * sizeof *row);
        if (b->bad || !axis) {
            free(row);
            return -1;
        }
        if (cks_items_row(it, path, row, (size_t)k, axis, desc, unit) != 0)
            return -1;
    }
    return b->bad ? -1 : 0;
}

static int unpack_values(rbuf *b, size_t nvals, cks_values *v)
{
    uint64_t n = get_u64(b), nv = get_u64(b);
    size_t len = b->len;
    /* each column takes at least 40 bytes of the message: n is bounded by it */
    if (b->bad || n > len / 40 || nv != nvals || cks_values_alloc(v, (size_t)n, nvals) != 0 ||
        !(v->strings = malloc(len + 1)))
        return -1;
    char *dst = v->strings, *end = v->strings + len + 1;
    for (size_t i = 0; i < n && !b->bad; i++) {
        cks_store_tensor *c = &v->cols[i];
        int64_t layer;
        c->name = get_str(b, &dst, end);
        c->kind = get_str(b, &dst, end);
        get(b, &layer, sizeof layer);
        get(b, &c->rows, sizeof c->rows);
        get(b, &c->cols, sizeof c->cols);
        c->layer = (int32_t)layer;
    }
    get(b, v->vals, nvals * v->n * sizeof *v->vals);
    for (size_t i = 0; i < n && !b->bad; i++) {
        unsigned char h;
        get(b, &h, 1);
        v->has_top[i] = h != 0;
    }
    for (size_t i = 0; i < n && !b->bad; i++)
        if (v->has_top[i])
            get(b, v->top + i * CKS_SPECTRA_K, CKS_SPECTRA_K * sizeof *v->top);
    return b->bad ? -1 : unpack_items(b, &v->items, dst, (size_t)(end - dst));
}

static int avail_ok(uint64_t a)
{
    return a <= CKS_AVAIL_FAILED;
}

int cks_wire_unpack(const char *msg, size_t len, size_t nsel, size_t nvals, int rank,
                    cks_outcome *o, int *interrupted)
{
    rbuf b = {msg, len, 0, 0};
    uint64_t task[5];
    memset(o, 0, sizeof *o);
    uint64_t flags = get_u64(&b);
    get(&b, task, sizeof task);
    get(&b, &o->bytes, sizeof o->bytes);
    get(&b, &o->seconds, sizeof o->seconds);
    get_text(&b, o->message, sizeof o->message);
    get_text(&b, o->other, sizeof o->other);
    *interrupted = (int)(flags & 1);
    o->stale = (int)(flags >> 1 & 1);
    uint64_t status = flags >> 2 & 0x3f, pa = flags >> 8 & 0xff, ra = flags >> 16 & 0xff;
    o->task = (cks_task){(size_t)task[0], (size_t)task[1], (size_t)task[2],
                         (cks_task_action)task[3], (int)task[4]};
    o->rank = rank;
    int bad = b.bad || status > CKS_SCAN_FAILED || !avail_ok(pa) || !avail_ok(ra) ||
              task[0] >= nsel || (task[1] != SIZE_MAX && task[1] >= task[0]) ||
              (task[2] != SIZE_MAX && task[2] > nsel) || task[3] > CKS_TASK_REUSE || flags >> 24;
    if (!bad) {
        o->status = (cks_scan_status)status;
        o->prev_avail = (cks_avail)pa;
        o->ref_avail = (cks_avail)ra;
        if (!*interrupted && !o->stale && o->status == CKS_SCAN_COMPLETE)
            bad = unpack_values(&b, nvals, &o->v) != 0;
    }
    if (!bad && !b.bad && b.at == len)
        return 0;
    cks_outcome_release(o);
    return cks_error_set(CKS_EFORMAT, "rank %d sent a malformed result (%zu bytes)", rank, len);
}
