/* Plain folders: subfolders matching the glob are checkpoints; a folder that holds
 * weights or config.json itself, with no matching subfolder, is one checkpoint. */
#include "error.h"
#include "source_impl.h"

#include <dirent.h>
#include <errno.h>
#include <fnmatch.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

typedef struct {
    char *root;
    int single; /* the root itself is the only checkpoint */
} folder_impl;

static void folder_impl_free(void *p)
{
    folder_impl *f = p;
    if (f)
        free(f->root);
    free(f);
}

static int looks_like_checkpoint(const char *dir)
{
    static const char *markers[] = {"config.json", "model.safetensors",
                                    "model.safetensors.index.json", "pytorch_model.bin",
                                    "pytorch_model.bin.index.json"};
    for (size_t i = 0; i < sizeof markers / sizeof markers[0]; i++) {
        char p[PATH_MAX];
        struct stat st;
        snprintf(p, sizeof p, "%s/%s", dir, markers[i]);
        if (stat(p, &st) == 0 && S_ISREG(st.st_mode))
            return 1;
    }
    return 0;
}

static void ckpt_dir(const cks_source *s, size_t idx, char *buf, size_t cap)
{
    const folder_impl *f = s->impl;
    if (f->single)
        snprintf(buf, cap, "%s", f->root);
    else
        snprintf(buf, cap, "%s/%s", f->root, s->ckpts[idx].name);
}

typedef struct {
    cks_file_vec *out;
} file_ctx;

static int add_file(void *ctx, const char *rel, const char *abs)
{
    file_ctx *fc = ctx;
    struct stat st;
    if (stat(abs, &st) != 0) {
        if (errno == ENOENT) /* dangling symlink */
            return cks_file_vec_push(fc->out, rel, 0, 0, 0, NULL, abs);
        return cks_error_set(CKS_EIO, "%s: %s", abs, strerror(errno));
    }
    if (!S_ISREG(st.st_mode))
        return 0;
    return cks_file_vec_push(fc->out, rel, (uint64_t)st.st_size, 0, 1, NULL, abs);
}

static int folder_list_files(const cks_source *s, size_t idx, cks_file_vec *out)
{
    char dir[PATH_MAX];
    ckpt_dir(s, idx, dir, sizeof dir);
    file_ctx fc = {out};
    return cks_walk_dir(dir, add_file, &fc);
}

static int folder_map_file(const cks_source *s, size_t idx, const cks_file_info *f, cks_map **out)
{
    return cks_map_file(out, f->locator, f->locator);
}

static const char *folder_fetch_hint(const cks_source *s, size_t idx, const char *path, char *buf,
                                     size_t cap)
{
    char dir[PATH_MAX];
    ckpt_dir(s, idx, dir, sizeof dir);
    snprintf(buf, cap, "restore %s/%s (the symlink points at a missing file)", dir, path);
    return buf;
}

static const struct cks_source_ops folder_ops = {folder_list_files, folder_map_file,
                                                 folder_fetch_hint, folder_impl_free};

int cks_source_folder_open(cks_source *s, int *recognised)
{
    char real[PATH_MAX];
    int err = 0;
    *recognised = 1;
    s->kind = CKS_SOURCE_FOLDER;
    if (!realpath(s->path, real))
        return cks_error_set(CKS_EIO, "%s: %s", s->path, strerror(errno));
    folder_impl *f = calloc(1, sizeof *f);
    if (!f || !(f->root = strdup(real))) {
        free(f);
        return cks_error_set(CKS_ENOMEM, "out of memory");
    }
    s->impl = f;
    s->ops = &folder_ops;
    DIR *d = opendir(real);
    if (!d)
        return cks_error_set(CKS_EIO, "%s: cannot read folder: %s", s->path, strerror(errno));
    struct dirent *e;
    while (!err && (e = readdir(d)) != NULL) {
        char p[PATH_MAX];
        struct stat st;
        if (e->d_name[0] == '.')
            continue;
        snprintf(p, sizeof p, "%s/%s", real, e->d_name);
        if (stat(p, &st) == 0 && S_ISDIR(st.st_mode))
            err = cks_source_add(s, e->d_name, NULL, NULL);
    }
    closedir(d);
    if (!err && s->count == 0 && looks_like_checkpoint(real)) {
        const char *base = strrchr(real, '/');
        base = base && base[1] ? base + 1 : real;
        f->single = 1;
        /* the glob selects among subfolders; a single-checkpoint folder is taken as is */
        char *glob = s->glob;
        s->glob = (char *)"*";
        err = cks_source_add(s, base, NULL, NULL);
        s->glob = glob;
    }
    return err;
}
