/* libgit2 helpers for fixtures: commit a set of files as a root commit on a ref, with
 * optional Git LFS pointers (objects written under <gitdir>/lfs/objects). Deterministic:
 * fixed author and time. */
#include "fixture.h"
#include "sha256.h"

#include <errno.h>
#include <fnmatch.h>
#include <git2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int cks_fx_lfs_pointer(const void *data, size_t len, char *buf, size_t cap, char oid[65])
{
    cks_sha256_hex(data, len, oid);
    int n =
        snprintf(buf, cap, "version https://git-lfs.github.com/spec/v1\noid sha256:%s\nsize %zu\n",
                 oid, len);
    return n > 0 && (size_t)n < cap ? n : -1;
}

static int mkdirs(const char *path)
{
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s", path);
    for (char *p = tmp + 1; *p; p++) {
        if (*p == '/') {
            *p = '\0';
            if (mkdir(tmp, 0755) != 0 && errno != EEXIST)
                return -1;
            *p = '/';
        }
    }
    return mkdir(tmp, 0755) != 0 && errno != EEXIST ? -1 : 0;
}

static int store_lfs(git_repository *repo, const cks_fx_file *f, int skip, char *ptr, size_t cap)
{
    char oid[65], dir[4096], path[4200];
    int n = cks_fx_lfs_pointer(f->data, f->len, ptr, cap, oid);
    if (n < 0)
        return -1;
    if (skip)
        return n;
    snprintf(dir, sizeof dir, "%slfs/objects/%.2s/%.2s", git_repository_commondir(repo), oid,
             oid + 2);
    if (mkdirs(dir) != 0)
        return -1;
    snprintf(path, sizeof path, "%s/%s", dir, oid);
    FILE *fp = fopen(path, "wb");
    if (!fp)
        return -1;
    size_t w = fwrite(f->data, 1, f->len, fp);
    if (fclose(fp) != 0 || w != f->len)
        return -1;
    return n;
}

static int is_lfs(const char *path, const char *const *pats)
{
    for (; pats && *pats; pats++)
        if (fnmatch(*pats, path, 0) == 0)
            return 1;
    return 0;
}

/* Builds nested trees for paths with '/' by recursion over the files sharing a prefix. */
static int build_tree(git_repository *repo, const cks_fx_file *files, int n, const char *const *lfs,
                      int skip, const char *prefix, git_oid *out)
{
    git_treebuilder *tb = NULL;
    size_t pl = strlen(prefix);
    int rc = -1;
    if (git_treebuilder_new(&tb, repo, NULL) != 0)
        return -1;
    for (int i = 0; i < n; i++) {
        const char *p = files[i].path;
        if (strncmp(p, prefix, pl) != 0)
            continue;
        const char *rest = p + pl, *slash = strchr(rest, '/');
        git_oid id;
        if (slash) {
            char sub[1024], name[256];
            snprintf(name, sizeof name, "%.*s", (int)(slash - rest), rest);
            if (git_treebuilder_get(tb, name))
                continue;
            snprintf(sub, sizeof sub, "%s%s/", prefix, name);
            if (build_tree(repo, files, n, lfs, skip, sub, &id) != 0 ||
                git_treebuilder_insert(NULL, tb, name, &id, GIT_FILEMODE_TREE) != 0)
                goto done;
            continue;
        }
        if (is_lfs(p, lfs)) {
            char ptr[512];
            int len = store_lfs(repo, &files[i], skip, ptr, sizeof ptr);
            if (len < 0 || git_blob_create_from_buffer(&id, repo, ptr, (size_t)len) != 0)
                goto done;
        } else if (git_blob_create_from_buffer(&id, repo, files[i].data, files[i].len) != 0) {
            goto done;
        }
        if (git_treebuilder_insert(NULL, tb, rest, &id, GIT_FILEMODE_BLOB) != 0)
            goto done;
    }
    rc = git_treebuilder_write(out, tb) == 0 ? 0 : -1;
done:
    git_treebuilder_free(tb);
    return rc;
}

int cks_fx_git_commit(const char *repo_dir, int bare, const char *ref, const cks_fx_file *files,
                      int nfiles, const char *const *lfs_paths, int lfs_skip_objects,
                      char *commit_hex)
{
    git_repository *repo = NULL;
    git_signature *sig = NULL;
    git_tree *tree = NULL;
    git_oid tree_id, commit_id;
    git_reference *r = NULL;
    int rc = -1;
    git_libgit2_init();
    if (git_repository_open_ext(&repo, repo_dir, GIT_REPOSITORY_OPEN_NO_SEARCH, NULL) != 0 &&
        git_repository_init(&repo, repo_dir, (unsigned)bare) != 0)
        goto done;
    if (git_signature_new(&sig, "ckptscope fixture", "fixture@ckptscope.invalid", 1700000000, 0) !=
        0)
        goto done;
    if (build_tree(repo, files, nfiles, lfs_paths, lfs_skip_objects, "", &tree_id) != 0 ||
        git_tree_lookup(&tree, repo, &tree_id) != 0)
        goto done;
    if (git_commit_create(&commit_id, repo, NULL, sig, sig, NULL, ref, tree, 0, NULL) != 0)
        goto done;
    if (git_reference_create(&r, repo, ref, &commit_id, 1, "fixture") != 0)
        goto done;
    if (commit_hex)
        git_oid_tostr(commit_hex, 41, &commit_id);
    rc = 0;
done:
    if (rc != 0) {
        const git_error *e = git_error_last();
        fprintf(stderr, "fixture: git: %s\n", e && e->message ? e->message : "failed");
    }
    git_reference_free(r);
    git_tree_free(tree);
    git_signature_free(sig);
    git_repository_free(repo);
    git_libgit2_shutdown();
    return rc;
}
