/* Hugging Face hub cache folders (models--ORG--NAME): refs/<ref> hold commit ids,
 * snapshots/<commit>/ hold symlinks into blobs/. Every resolved file must lie inside
 * the cache folder, so a hostile cache cannot point us at /etc/passwd. */
#include "error.h"
#include "path.h"
#include "source_impl.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

typedef struct {
    char *root;     /* realpath of the cache folder */
    char repo[256]; /* ORG/NAME */
} hf_impl;

static void hf_impl_free(void *p)
{
    hf_impl *h = p;
    if (h)
        free(h->root);
    free(h);
}

static int is_dir(const char *root, const char *sub)
{
    char p[PATH_MAX];
    struct stat st;
    snprintf(p, sizeof p, "%s/%s", root, sub);
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

typedef struct {
    cks_source *s;
    hf_impl *h;
} ref_ctx;

static int add_ref(void *ctx, const char *rel, const char *abs)
{
    ref_ctx *rc = ctx;
    char buf[128], *text = NULL;
    size_t n = 0;
    /* a ref is one commit id; cks_read_file refuses FIFOs and devices without blocking */
    int err = cks_read_file(abs, sizeof buf - 1, &text, &n);
    if (err == CKS_ENOTFOUND) {
        cks_error_clear();
        return 0;
    }
    if (err)
        return err;
    memcpy(buf, text, n + 1);
    free(text);
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
        buf[--n] = '\0';
    if (n != 40 && n != 64)
        return cks_error_set(CKS_EFORMAT, "%s: not a commit id (40 hex digits)", abs);
    for (size_t i = 0; i < n; i++) {
        if (!((buf[i] >= '0' && buf[i] <= '9') || (buf[i] >= 'a' && buf[i] <= 'f')))
            return cks_error_set(CKS_EFORMAT, "%s: not a commit id (40 hex digits)", abs);
    }
    return cks_source_add(rc->s, rel, buf, NULL);
}

typedef struct {
    const hf_impl *h;
    cks_file_vec *out;
} file_ctx;

static int add_file(void *ctx, const char *rel, const char *abs)
{
    file_ctx *fc = ctx;
    char real[PATH_MAX];
    struct stat st;
    if (!realpath(abs, real)) {
        if (errno == ENOENT) /* dangling symlink: the blob was never downloaded */
            return cks_file_vec_push(fc->out, rel, 0, 0, 0, NULL, abs);
        return cks_error_set(CKS_EIO, "%s: %s", abs, strerror(errno));
    }
    if (!cks_path_is_inside(fc->h->root, real))
        return cks_error_set(CKS_EFORMAT, "%s: resolves to %s, outside the cache folder %s", abs,
                             real, fc->h->root);
    if (stat(real, &st) != 0 || !S_ISREG(st.st_mode))
        return 0;
    return cks_file_vec_push(fc->out, rel, (uint64_t)st.st_size, 0, 1, NULL, real);
}

static int hf_list_files(const cks_source *s, size_t idx, cks_file_vec *out)
{
    const hf_impl *h = s->impl;
    char dir[PATH_MAX];
    struct stat st;
    snprintf(dir, sizeof dir, "%s/snapshots/%s", h->root, s->ckpts[idx].commit);
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
        return 0; /* nothing downloaded for this ref: no files (incomplete) */
    file_ctx fc = {h, out};
    return cks_walk_dir(dir, add_file, &fc);
}

static int hf_map_file(const cks_source *s, size_t idx, const cks_file_info *f, cks_map **out)
{
    char display[PATH_MAX];
    snprintf(display, sizeof display, "%s@%s:%s", s->path, s->ckpts[idx].name, f->path);
    return cks_map_file(out, f->locator, display);
}

static const char *hf_fetch_hint(const cks_source *s, size_t idx, const char *path, char *buf,
                                 size_t cap)
{
    const hf_impl *h = s->impl;
    snprintf(buf, cap, "huggingface-cli download %s %s --revision %s", h->repo, path,
             s->ckpts[idx].name);
    return buf;
}

static const struct cks_source_ops hf_ops = {hf_list_files, hf_map_file, hf_fetch_hint,
                                             hf_impl_free};

static int hf_open_at(cks_source *s, const char *dir, int *recognised)
{
    char real[PATH_MAX];
    *recognised = 0;
    if (!realpath(dir, real))
        return cks_error_set(CKS_EIO, "%s: %s", dir, strerror(errno));
    if (!is_dir(real, "refs") || !is_dir(real, "snapshots"))
        return 0;
    *recognised = 1;
    s->kind = CKS_SOURCE_HF_CACHE;
    hf_impl *h = calloc(1, sizeof *h);
    if (!h || !(h->root = strdup(real))) {
        free(h);
        return cks_error_set(CKS_ENOMEM, "out of memory");
    }
    /* models--ORG--NAME -> ORG/NAME for the download hint */
    const char *base = strrchr(real, '/');
    base = base ? base + 1 : real;
    if (strncmp(base, "models--", 8) == 0) {
        snprintf(h->repo, sizeof h->repo, "%s", base + 8);
        char *sep = strstr(h->repo, "--");
        if (sep) {
            sep[0] = '/';
            memmove(sep + 1, sep + 2, strlen(sep + 2) + 1);
        }
    } else {
        snprintf(h->repo, sizeof h->repo, "%s", base);
    }
    s->impl = h;
    s->ops = &hf_ops;
    char refs[PATH_MAX];
    snprintf(refs, sizeof refs, "%s/refs", real);
    ref_ctx rc = {s, h};
    return cks_walk_dir(refs, add_ref, &rc);
}

int cks_source_hf_open(cks_source *s, int *recognised)
{
    return hf_open_at(s, s->path, recognised);
}

int cks_source_hf_open_dir(cks_source *s, const char *dir)
{
    int recognised = 0, err = hf_open_at(s, dir, &recognised);
    if (!err && !recognised)
        err =
            cks_error_set(CKS_EFORMAT, "%s: not a hub cache folder (no refs/ and snapshots/)", dir);
    return err;
}
