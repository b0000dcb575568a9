/* Token-id files: JSONL with "token_ids" per line, raw little-endian uint16/uint32 (see
 * tokfile.h for the checks). */
#include "tokfile.h"
#include "error.h"
#include "json.h"
#include "map.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int cks_tokfile_format_from_name(const char *s, cks_tokfile_format *out)
{
    if (strcmp(s, "jsonl") == 0)
        *out = CKS_TOKFILE_JSONL;
    else if (strcmp(s, "u16") == 0)
        *out = CKS_TOKFILE_U16;
    else if (strcmp(s, "u32") == 0)
        *out = CKS_TOKFILE_U32;
    else
        return CKS_ENOTFOUND;
    return 0;
}

static int detect(const char *path, cks_tokfile_format *out)
{
    static const struct {
        const char *ext;
        cks_tokfile_format f;
    } exts[] = {{".jsonl", CKS_TOKFILE_JSONL}, {".json", CKS_TOKFILE_JSONL},
                {".u16", CKS_TOKFILE_U16},     {".uint16", CKS_TOKFILE_U16},
                {".u32", CKS_TOKFILE_U32},     {".uint32", CKS_TOKFILE_U32}};
    size_t n = strlen(path);
    for (size_t i = 0; i < sizeof exts / sizeof exts[0]; i++) {
        size_t k = strlen(exts[i].ext);
        if (n > k && strcmp(path + n - k, exts[i].ext) == 0) {
            *out = exts[i].f;
            return 0;
        }
    }
    return cks_error_set(CKS_EINVAL,
                         "%s: cannot tell the token format from the name; use .jsonl, .u16 or "
                         ".u32 (or name the format)",
                         path);
}

static int is_blank(const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] != ' ' && p[i] != '\t' && p[i] != '\r')
            return 0;
    return 1;
}

/* One JSONL line -> one document. ids is a scratch buffer grown as needed. */
static int jsonl_line(cks_docset *d, const char *text, size_t len, int64_t lineno, int32_t **ids,
                      size_t *cap)
{
    char where[512];
    json_t *j = NULL;
    int err;
    snprintf(where, sizeof where, "%s: line %lld", d->display, (long long)lineno);
    if (len > CKS_MAX_JSONL_LINE)
        return cks_error_set(CKS_ELIMIT, "%s: %zu bytes, more than the %zu allowed per line", where,
                             len, CKS_MAX_JSONL_LINE);
    if ((err = cks_json_parse(text, len, where, 1, &j)) != 0)
        return err;
    json_t *a = json_object_get(j, "token_ids");
    if (!a || !json_is_array(a)) {
        err = cks_error_set(CKS_EFORMAT, "%s: no \"token_ids\" array", where);
        goto done;
    }
    size_t n = json_array_size(a);
    if (n > *cap) {
        int32_t *q = realloc(*ids, n * sizeof *q);
        if (!q) {
            err = cks_error_set(CKS_ENOMEM, "%s: out of memory", where);
            goto done;
        }
        *ids = q;
        *cap = n;
    }
    for (size_t i = 0; i < n; i++) {
        json_t *v = json_array_get(a, i);
        json_int_t x = json_is_integer(v) ? json_integer_value(v) : -1;
        if (!json_is_integer(v) || x < 0 || x > INT32_MAX) {
            err = cks_error_set(
                CKS_EFORMAT, "%s: token_ids[%zu] is not an integer in [0, 2147483647]", where, i);
            goto done;
        }
        (*ids)[i] = (int32_t)x;
    }
    err = cks_docset_add(d, *ids, (int64_t)n, lineno);
done:
    json_decref(j);
    return err;
}

static int read_jsonl(cks_docset *d, const cks_map *m)
{
    const char *p = (const char *)m->data, *end = p + m->size;
    int32_t *ids = NULL;
    size_t cap = 0;
    int64_t lineno = 0;
    int err = 0;
    while (p < end && !err) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t len = nl ? (size_t)(nl - p) : (size_t)(end - p);
        lineno++;
        if (!is_blank(p, len))
            err = jsonl_line(d, p, len, lineno, &ids, &cap);
        p += len + (nl != NULL);
    }
    free(ids);
    return err;
}

static int read_raw(cks_docset *d, const cks_map *m, size_t width)
{
    if (m->size % width != 0)
        return cks_error_set(CKS_EFORMAT,
                             "%s: %zu bytes is not a whole number of %zu-byte token ids",
                             d->display, m->size, width);
    size_t n = m->size / width;
    if ((int64_t)n > CKS_MAX_SET_TOKENS)
        return cks_error_set(CKS_ELIMIT, "%s: more than %lld tokens", d->display,
                             (long long)CKS_MAX_SET_TOKENS);
    int32_t *ids = malloc((n ? n : 1) * sizeof *ids);
    if (!ids)
        return cks_error_set(CKS_ENOMEM, "%s: out of memory for %zu tokens", d->display, n);
    const unsigned char *b = m->data;
    int err = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t v = width == 2 ? (uint32_t)b[2 * i] | (uint32_t)b[2 * i + 1] << 8
                                : (uint32_t)b[4 * i] | (uint32_t)b[4 * i + 1] << 8 |
                                      (uint32_t)b[4 * i + 2] << 16 | (uint32_t)b[4 * i + 3] << 24;
        if (v > INT32_MAX) {
            err = cks_error_set(CKS_EFORMAT, "%s: token %zu (byte %zu) is %u, not below 2^31",
                                d->display, i, i * width, v);
            break;
        }
        ids[i] = (int32_t)v;
    }
    if (!err)
        err = cks_docset_add(d, ids, (int64_t)n, 0);
    free(ids);
    return err;
}

int cks_tokfile_read(cks_docset *out, const char *path, const char *name, cks_tokfile_format fmt)
{
    cks_map *m = NULL;
    cks_docset d;
    int err;
    if (fmt == CKS_TOKFILE_AUTO && (err = detect(path, &fmt)) != 0)
        return err;
    if ((err = cks_docset_init(&d, name, path)) != 0)
        return err;
    if ((err = cks_map_file(&m, path, path)) != 0)
        goto done;
    if (fmt == CKS_TOKFILE_JSONL)
        err = read_jsonl(&d, m);
    else
        err = read_raw(&d, m, fmt == CKS_TOKFILE_U16 ? 2 : 4);
done:
    cks_map_free(m);
    if (err) {
        cks_docset_release(&d);
        return err;
    }
    *out = d;
    return 0;
}
