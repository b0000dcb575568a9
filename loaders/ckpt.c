/* The files of one checkpoint: listing (through the source backend), lookup, mapping,
 * small-file reads and config.json. */
#include "error.h"
#include "source_impl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct cks_ckpt {
    const cks_source *s;
    size_t idx;
    cks_file_vec files;
};

int cks_file_vec_push(cks_file_vec *v, const char *path, uint64_t size, int lfs, int present,
                      const char *lfs_oid, const char *locator)
{
    if (v->count == v->cap) {
        size_t cap = v->cap ? v->cap * 2 : 16;
        cks_file_info *items = realloc(v->items, cap * sizeof *items);
        if (!items)
            return cks_error_set(CKS_ENOMEM, "out of memory");
        v->items = items;
        v->cap = cap;
    }
    cks_file_info *f = &v->items[v->count];
    memset(f, 0, sizeof *f);
    f->path = strdup(path);
    f->locator = strdup(locator);
    f->lfs_oid = lfs_oid ? strdup(lfs_oid) : NULL;
    f->size = size;
    f->lfs = lfs;
    f->present = present;
    if (!f->path || !f->locator || (lfs_oid && !f->lfs_oid)) {
        free((char *)f->path);
        free((char *)f->locator);
        free((char *)f->lfs_oid);
        return cks_error_set(CKS_ENOMEM, "out of memory");
    }
    v->count++;
    return 0;
}

void cks_file_vec_release(cks_file_vec *v)
{
    for (size_t i = 0; i < v->count; i++) {
        free((char *)v->items[i].path);
        free((char *)v->items[i].locator);
        free((char *)v->items[i].lfs_oid);
    }
    free(v->items);
    memset(v, 0, sizeof *v);
}

static int cmp_file(const void *a, const void *b)
{
    return strcmp(((const cks_file_info *)a)->path, ((const cks_file_info *)b)->path);
}

int cks_ckpt_open(cks_ckpt **out, const cks_source *s, size_t idx)
{
    if (idx >= s->count)
        return cks_error_set(CKS_EINVAL, "checkpoint index %zu out of range", idx);
    cks_ckpt *c = calloc(1, sizeof *c);
    if (!c)
        return cks_error_set(CKS_ENOMEM, "out of memory");
    c->s = s;
    c->idx = idx;
    int err = s->ops->list_files(s, idx, &c->files);
    if (err) {
        cks_ckpt_free(c);
        return err;
    }
    if (c->files.count > 1)
        qsort(c->files.items, c->files.count, sizeof *c->files.items, cmp_file);
    *out = c;
    return 0;
}

void cks_ckpt_free(cks_ckpt *c)
{
    if (!c)
        return;
    cks_file_vec_release(&c->files);
    free(c);
}

const cks_ckpt_info *cks_ckpt_info_of(const cks_ckpt *c)
{
    return &c->s->ckpts[c->idx];
}

const cks_source *cks_ckpt_source(const cks_ckpt *c)
{
    return c->s;
}

size_t cks_ckpt_nfiles(const cks_ckpt *c)
{
    return c->files.count;
}

const cks_file_info *cks_ckpt_file(const cks_ckpt *c, size_t i)
{
    return i < c->files.count ? &c->files.items[i] : NULL;
}

long cks_ckpt_find_file(const cks_ckpt *c, const char *path)
{
    size_t lo = 0, hi = c->files.count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int r = strcmp(c->files.items[mid].path, path);
        if (r == 0)
            return (long)mid;
        if (r < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -1;
}

int cks_ckpt_complete(const cks_ckpt *c)
{
    if (c->files.count == 0)
        return 0;
    for (size_t i = 0; i < c->files.count; i++)
        if (!c->files.items[i].present)
            return 0;
    return 1;
}

const char *cks_ckpt_fetch_hint(const cks_ckpt *c, const char *path, char *buf, size_t cap)
{
    return c->s->ops->fetch_hint(c->s, c->idx, path, buf, cap);
}

const char *cks_ckpt_display(const cks_ckpt *c, const char *path, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s@%s:%s", c->s->path, c->s->ckpts[c->idx].name, path);
    return buf;
}

int cks_ckpt_map(const cks_ckpt *c, const char *path, cks_map **out)
{
    char display[4096], hint[4096];
    long i = cks_ckpt_find_file(c, path);
    cks_ckpt_display(c, path, display, sizeof display);
    if (i < 0)
        return cks_error_set(CKS_ENOTFOUND, "%s: no such file in the checkpoint", display);
    const cks_file_info *f = &c->files.items[i];
    if (!f->present)
        return cks_error_set(CKS_EINCOMPLETE, "%s: %s is not on disk; fetch it with: %s", display,
                             f->lfs ? "the LFS object" : "the file",
                             cks_ckpt_fetch_hint(c, path, hint, sizeof hint));
    return c->s->ops->map_file(c->s, c->idx, f, out);
}

int cks_ckpt_read(const cks_ckpt *c, const char *path, size_t limit, char **out, size_t *len)
{
    char display[4096];
    long i = cks_ckpt_find_file(c, path);
    cks_ckpt_display(c, path, display, sizeof display);
    if (i >= 0 && c->files.items[i].size > limit)
        return cks_error_set(CKS_ELIMIT, "%s: %llu bytes, more than the %zu allowed", display,
                             (unsigned long long)c->files.items[i].size, limit);
    cks_map *m;
    int err = cks_ckpt_map(c, path, &m);
    if (err)
        return err;
    if (m->size > limit) {
        cks_map_free(m);
        return cks_error_set(CKS_ELIMIT, "%s: %zu bytes, more than the %zu allowed", display,
                             m->size, limit);
    }
    char *buf = malloc(m->size + 1);
    if (!buf) {
        cks_map_free(m);
        return cks_error_set(CKS_ENOMEM, "out of memory");
    }
    if (m->size)
        memcpy(buf, m->data, m->size);
    buf[m->size] = '\0';
    /* a file that shrank or failed to read while copied gave zeros (map.h) */
    if ((err = cks_map_check(m)) != 0) {
        free(buf);
        cks_map_free(m);
        return err;
    }
    *len = m->size;
    *out = buf;
    cks_map_free(m);
    return 0;
}

int cks_ckpt_config(const cks_ckpt *c, cks_config *out)
{
    char *text = NULL, display[4096];
    size_t len;
    int err = cks_ckpt_read(c, "config.json", CKS_MAX_CONFIG_BYTES, &text, &len);
    if (err)
        return err;
    err = cks_config_parse(text, len, cks_ckpt_display(c, "config.json", display, sizeof display),
                           out);
    free(text);
    return err;
}
