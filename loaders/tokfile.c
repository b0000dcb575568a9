/* Token-id files: JSONL with "token_ids" per line (docfile.h), raw little-endian
 * uint16/uint32; plain or compressed (see tokfile.h for the checks). */
#include "tokfile.h"
#include "docfile.h"
#include "error.h"

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

static int ends_with(const char *s, size_t n, const char *ext)
{
    size_t k = strlen(ext);
    return n > k && memcmp(s + n - k, ext, k) == 0;
}

cks_tokfile_format cks_tokfile_format_of_name(const char *path)
{
    static const char *const comp[] = {".gz", ".zst", ".zstd"};
    static const struct {
        const char *ext;
        cks_tokfile_format f;
    } raw[] = {{".u16", CKS_TOKFILE_U16},
               {".uint16", CKS_TOKFILE_U16},
               {".u32", CKS_TOKFILE_U32},
               {".uint32", CKS_TOKFILE_U32}};
    size_t n = strlen(path);
    for (size_t i = 0; i < sizeof comp / sizeof comp[0]; i++)
        if (ends_with(path, n, comp[i])) {
            n -= strlen(comp[i]);
            break;
        }
    for (size_t i = 0; i < sizeof raw / sizeof raw[0]; i++)
        if (ends_with(path, n, raw[i].ext))
            return raw[i].f;
    return CKS_TOKFILE_AUTO;
}

static int read_raw(cks_docset *d, const char *path, size_t width)
{
    cks_zbuf b;
    int err = cks_zbuf_read(&b, path, (size_t)CKS_MAX_SET_TOKENS * width, NULL);
    if (err)
        return err;
    int32_t *ids = NULL;
    size_t n = b.size / width;
    if (b.size % width != 0) {
        err = cks_error_set(CKS_EFORMAT,
                            "%s: %zu bytes%s is not a whole number of %zu-byte token ids", path,
                            b.size, b.comp ? " (decompressed)" : "", width);
        goto done;
    }
    if (!(ids = malloc((n ? n : 1) * sizeof *ids))) {
        err = cks_error_set(CKS_ENOMEM, "%s: out of memory for %zu tokens", path, n);
        goto done;
    }
    const unsigned char *p = b.data;
    for (size_t i = 0; i < n; i++) {
        uint32_t v = width == 2 ? (uint32_t)p[2 * i] | (uint32_t)p[2 * i + 1] << 8
                                : (uint32_t)p[4 * i] | (uint32_t)p[4 * i + 1] << 8 |
                                      (uint32_t)p[4 * i + 2] << 16 | (uint32_t)p[4 * i + 3] << 24;
        if (v > INT32_MAX) {
            err = cks_error_set(CKS_EFORMAT, "%s: token %zu (byte %zu) is %u, not below 2^31", path,
                                i, i * width, v);
            goto done;
        }
        ids[i] = (int32_t)v;
    }
    err = cks_docset_add(d, ids, (int64_t)n, 0);
done:
    free(ids);
    cks_zbuf_release(&b);
    return err;
}

/* A file the name does not type: JSONL of token ids by content, or refused. */
static int check_auto(const cks_docfile *f, const char *path)
{
    if (!cks_docfile_is_jsonl(f))
        return cks_error_set(CKS_EINVAL,
                             "%s: cannot tell the token format: not JSONL (.jsonl) and not named "
                             ".u16 or .u32; name the format",
                             path);
    if (cks_docfile_kind(f) != CKS_DOC_TOKENS)
        return cks_error_set(
            CKS_EFORMAT, "%s: its JSONL lines hold \"text\", not \"token_ids\": give it as text",
            path);
    return 0;
}

static int read_jsonl(cks_docsets *l, const char *path, const char *stem, int split, size_t max,
                      int by_content)
{
    cks_docfile_options o = {.want = by_content ? CKS_DOC_AUTO : CKS_DOC_TOKENS,
                             .split_by_meta = split};
    cks_docfile *f = NULL;
    cks_doc doc;
    cks_docset *d = NULL;
    char name[CKS_MAX_SUBSET_NAME + 300];
    int err = cks_docfile_open(&f, path, &o);
    if (err)
        return err;
    if (by_content)
        err = check_auto(f, path);
    if (!err && !split)
        err = cks_docsets_get(l, stem, path, max, &d);
    while (!err && (err = cks_docfile_next(f, &doc)) == 0) {
        if (split) {
            snprintf(name, sizeof name, "%s:%s", stem, doc.subset);
            if ((err = cks_docsets_get(l, name, path, max, &d)) != 0)
                break;
        }
        err = cks_docset_add(d, doc.ids, doc.n, doc.line);
    }
    cks_docfile_free(f);
    return err == CKS_ITEROVER ? 0 : err;
}

/* 1 when the name, without a compression suffix, ends in .jsonl or .json. */
static int named_jsonl(const char *path)
{
    static const char *const comp[] = {".gz", ".zst", ".zstd"};
    size_t n = strlen(path);
    for (size_t i = 0; i < sizeof comp / sizeof comp[0]; i++)
        if (ends_with(path, n, comp[i])) {
            n -= strlen(comp[i]);
            break;
        }
    return ends_with(path, n, ".jsonl") || ends_with(path, n, ".json");
}

int cks_tokfile_read_sets(cks_docsets *l, const char *path, const char *stem,
                          cks_tokfile_format fmt, int split_by_meta, size_t max)
{
    int by_content = 0;
    if (fmt == CKS_TOKFILE_AUTO) {
        fmt = cks_tokfile_format_of_name(path);
        if (fmt == CKS_TOKFILE_AUTO) {
            by_content = !named_jsonl(path);
            fmt = CKS_TOKFILE_JSONL;
        }
    }
    if (fmt == CKS_TOKFILE_JSONL)
        return read_jsonl(l, path, stem, split_by_meta, max, by_content);
    if (split_by_meta)
        return cks_error_set(CKS_EINVAL,
                             "%s: --split-by-meta needs JSONL with a \"meta\" object per line; "
                             "this is a raw token file",
                             path);
    cks_docset *d;
    int err = cks_docsets_get(l, stem, path, max, &d);
    return err ? err : read_raw(d, path, fmt == CKS_TOKFILE_U16 ? 2 : 4);
}

int cks_tokfile_read(cks_docset *out, const char *path, const char *name, cks_tokfile_format fmt)
{
    cks_docsets l = {0};
    int err = cks_tokfile_read_sets(&l, path, name, fmt, 0, 1);
    if (!err && l.n != 1) /* a JSONL file the reader refused before its first line */
        err = cks_error_set(CKS_ERROR, "%s: no set was read", path);
    if (err) {
        cks_docsets_release(&l);
        return err;
    }
    *out = l.v[0];
    free(l.v);
    return 0;
}
