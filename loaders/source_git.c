/* Git repositories through libgit2: checkpoints are branches, files are blobs of the
 * branch's tree, Git LFS pointers resolve to <commondir>/lfs/objects. Read-only: no
 * checkout, no index, no ref or object is written. */
#include "error.h"
#include "grow.h"
#include "lfs.h"
#include "source_impl.h"

#include <errno.h>
#include <git2.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

typedef struct {
    git_repository *repo;
    char *lfs_dir;
} git_impl;

static int git_fail(int code, const char *what, const char *path)
{
    const git_error *e = git_error_last();
    return cks_error_set(code, "%s: %s: %s", path, what, e && e->message ? e->message : "failed");
}

static void git_impl_free(void *p)
{
    git_impl *g = p;
    if (!g)
        return;
    git_repository_free(g->repo);
    free(g->lfs_dir);
    free(g);
    git_libgit2_shutdown();
}

typedef struct {
    const cks_source *s;
    size_t idx;
    git_impl *g;
    cks_file_vec *out;
} list_ctx;

static int add_blob(list_ctx *lc, const char *rel, const git_oid *id)
{
    char display[4096], hex[GIT_OID_HEXSZ + 1];
    git_odb *odb = NULL;
    git_blob *blob = NULL;
    size_t size;
    git_object_t type;
    int err = 0;
    const char *branch = lc->s->ckpts[lc->idx].name;

    git_oid_tostr(hex, sizeof hex, id);
    snprintf(display, sizeof display, "%s:%s", branch, rel);
    if (git_repository_odb(&odb, lc->g->repo) != 0)
        return git_fail(CKS_EIO, "cannot open the object database", lc->s->path);
    if (git_odb_read_header(&size, &type, odb, id) != 0) {
        err = git_fail(CKS_EIO, "cannot read a blob header", display);
        goto done;
    }
    if (size <= CKS_LFS_POINTER_MAX) {
        if (git_blob_lookup(&blob, lc->g->repo, id) != 0) {
            err = git_fail(CKS_EIO, "cannot read blob", display);
            goto done;
        }
        const char *buf = git_blob_rawcontent(blob);
        size_t len = (size_t)git_blob_rawsize(blob);
        if (cks_lfs_is_pointer(buf, len)) {
            cks_lfs_pointer p;
            char obj[4096];
            struct stat st;
            if ((err = cks_lfs_pointer_parse(buf, len, display, &p)) != 0 ||
                (err = cks_lfs_object_path(lc->g->lfs_dir, &p, obj, sizeof obj)) != 0)
                goto done;
            int present = stat(obj, &st) == 0;
            if (present && (!S_ISREG(st.st_mode) || (uint64_t)st.st_size != p.size)) {
                err = cks_error_set(
                    CKS_EFORMAT, "%s: LFS object %s has %lld bytes, its pointer says %llu", display,
                    obj, (long long)st.st_size, (unsigned long long)p.size);
                goto done;
            }
            err = cks_file_vec_push(lc->out, rel, p.size, 1, present, p.oid, obj);
            goto done;
        }
    }
    err = cks_file_vec_push(lc->out, rel, size, 0, 1, NULL, hex);
done:
    git_blob_free(blob);
    git_odb_free(odb);
    return err;
}

static int walk_tree(list_ctx *lc, git_tree *tree, const char *prefix, int depth)
{
    if (depth > CKS_MAX_TREE_DEPTH)
        return cks_error_set(CKS_ELIMIT, "%s:%s: trees nested deeper than %d",
                             lc->s->ckpts[lc->idx].name, prefix, CKS_MAX_TREE_DEPTH);
    size_t n = git_tree_entrycount(tree);
    for (size_t i = 0; i < n; i++) {
        const git_tree_entry *e = git_tree_entry_byindex(tree, i);
        char rel[4096];
        int len =
            snprintf(rel, sizeof rel, "%s%s%s", prefix, *prefix ? "/" : "", git_tree_entry_name(e));
        if (len < 0 || (size_t)len >= sizeof rel)
            continue;
        git_filemode_t mode = git_tree_entry_filemode(e);
        int err = 0;
        if (mode == GIT_FILEMODE_TREE) {
            git_tree *sub = NULL;
            if (git_tree_lookup(&sub, lc->g->repo, git_tree_entry_id(e)) != 0)
                return git_fail(CKS_EIO, "cannot read tree", rel);
            err = walk_tree(lc, sub, rel, depth + 1);
            git_tree_free(sub);
        } else if (mode == GIT_FILEMODE_BLOB || mode == GIT_FILEMODE_BLOB_EXECUTABLE) {
            if (lc->out->count >= CKS_MAX_FILES)
                return cks_error_set(CKS_ELIMIT, "%s: more than %d files",
                                     lc->s->ckpts[lc->idx].name, CKS_MAX_FILES);
            err = add_blob(lc, rel, git_tree_entry_id(e));
        } /* symlinks and submodules are not checkpoint files */
        if (err)
            return err;
    }
    return 0;
}

static int git_list_files(const cks_source *s, size_t idx, cks_file_vec *out)
{
    git_impl *g = s->impl;
    git_oid oid;
    git_commit *commit = NULL;
    git_tree *tree = NULL;
    int err;
    list_ctx lc = {s, idx, g, out};
    if (git_oid_fromstr(&oid, s->ckpts[idx].commit) != 0 ||
        git_commit_lookup(&commit, g->repo, &oid) != 0 || git_commit_tree(&tree, commit) != 0) {
        err = git_fail(CKS_EIO, "cannot read the commit of branch", s->ckpts[idx].name);
        goto done;
    }
    err = walk_tree(&lc, tree, "", 0);
done:
    git_tree_free(tree);
    git_commit_free(commit);
    return err;
}

static void blob_release(void *p)
{
    git_blob_free(p);
}

static int git_map_file(const cks_source *s, size_t idx, const cks_file_info *f, cks_map **out)
{
    git_impl *g = s->impl;
    char display[4096];
    snprintf(display, sizeof display, "%s:%s", s->ckpts[idx].name, f->path);
    if (f->lfs) {
        cks_map *m;
        int err = cks_map_file(&m, f->locator, display);
        if (err)
            return err;
        if (m->size != f->size) { /* changed since the checkpoint was listed */
            cks_map_free(m);
            return cks_error_set(CKS_EFORMAT, "%s: LFS object has %zu bytes, its pointer says %llu",
                                 display, m->size, (unsigned long long)f->size);
        }
        *out = m;
        return 0;
    }
    git_oid oid;
    git_blob *blob;
    if (git_oid_fromstr(&oid, f->locator) != 0 || git_blob_lookup(&blob, g->repo, &oid) != 0)
        return git_fail(CKS_EIO, "cannot read blob", display);
    return cks_map_adopt(out, git_blob_rawcontent(blob), (size_t)git_blob_rawsize(blob),
                         blob_release, blob, display);
}

static const char *git_fetch_hint(const cks_source *s, size_t idx, const char *path, char *buf,
                                  size_t cap)
{
    const cks_ckpt_info *c = &s->ckpts[idx];
    snprintf(buf, cap, "git -C %s lfs fetch %s %s --include=%s", s->path,
             c->remote ? c->remote : "origin", c->name, path);
    return buf;
}

static const struct cks_source_ops git_ops = {git_list_files, git_map_file, git_fetch_hint,
                                              git_impl_free};

/* Remote names, read once per source from the config keys remote.<name>.url with a plain
 * config iterator. Neither git_branch_remote_name() per branch nor git_remote_list() is
 * used: both search the config with a regex, and libgit2 1.5.1 (Debian 12) leaks the pcre2
 * match data of every search that does not match (fixed upstream by libgit2 PR #6382),
 * about 1 MB per branch in a fresh clone. */
typedef struct {
    char **names;
    size_t count, cap;
} remote_names;

static void remote_names_release(remote_names *r)
{
    for (size_t i = 0; i < r->count; i++)
        free(r->names[i]);
    free(r->names);
}

static int remote_names_add(remote_names *r, const char *name, size_t len)
{
    int err = cks_grow(&r->names, &r->cap, r->count, sizeof *r->names, 4);
    if (err)
        return err;
    if (!(r->names[r->count] = strndup(name, len)))
        return cks_error_set(CKS_ENOMEM, "out of memory");
    r->count++;
    return 0;
}

static int remote_names_read(remote_names *out, git_repository *repo, const char *path)
{
    static const char pre[] = "remote.", suf[] = ".url";
    const size_t np = sizeof pre - 1, ns = sizeof suf - 1;
    git_config *cfg = NULL;
    git_config_iterator *it = NULL;
    git_config_entry *e;
    int err = 0, rc;
    memset(out, 0, sizeof *out);
    if (git_repository_config_snapshot(&cfg, repo) != 0 || git_config_iterator_new(&it, cfg) != 0) {
        err = git_fail(CKS_EIO, "cannot read the git config", path);
        goto done;
    }
    while (!err && (rc = git_config_next(&e, it)) == 0) {
        size_t n = strlen(e->name);
        if (n > np + ns && strncmp(e->name, pre, np) == 0 && strcmp(e->name + n - ns, suf) == 0)
            err = remote_names_add(out, e->name + np, n - np - ns);
    }
    if (!err && rc != GIT_ITEROVER)
        err = git_fail(CKS_EIO, "cannot read the git config", path);
done:
    git_config_iterator_free(it);
    git_config_free(cfg);
    if (err)
        remote_names_release(out);
    return err;
}

/* The remote of a remote-tracking branch's short name ("origin/ckpt_000" -> "origin"): the
 * longest configured remote name followed by '/', else the text before the first '/'. */
static void remote_of(const remote_names *remotes, const char *short_name, char *out, size_t cap)
{
    size_t best = 0;
    const char *slash = strchr(short_name, '/');
    out[0] = '\0';
    for (size_t i = 0; i < remotes->count; i++) {
        size_t n = strlen(remotes->names[i]);
        if (n > best && strncmp(short_name, remotes->names[i], n) == 0 && short_name[n] == '/') {
            best = n;
            snprintf(out, cap, "%s", remotes->names[i]);
        }
    }
    if (!best && slash)
        snprintf(out, cap, "%.*s", (int)(slash - short_name), short_name);
}

static int add_branches(cks_source *s, git_impl *g)
{
    git_branch_iterator *it = NULL;
    git_reference *ref = NULL;
    git_branch_t type;
    remote_names remotes;
    int err = remote_names_read(&remotes, g->repo, s->path), rc;
    if (err)
        return err;
    if (git_branch_iterator_new(&it, g->repo, GIT_BRANCH_ALL) != 0) {
        remote_names_release(&remotes);
        return git_fail(CKS_EIO, "cannot list branches", s->path);
    }
    while ((rc = git_branch_next(&ref, &type, it)) == 0) {
        const char *short_name = NULL;
        git_object *obj = NULL;
        char hex[GIT_OID_HEXSZ + 1], remote[256] = "";
        const char *name;
        if (git_branch_name(&short_name, ref) != 0 || !short_name)
            goto next;
        name = short_name;
        if (type == GIT_BRANCH_REMOTE) {
            remote_of(&remotes, short_name, remote, sizeof remote);
            size_t rl = strlen(remote);
            if (rl == 0 || strncmp(short_name, remote, rl) != 0 || short_name[rl] != '/')
                goto next;
            name = short_name + rl + 1;
            if (strcmp(name, "HEAD") == 0)
                goto next;
        }
        if (git_reference_peel(&obj, ref, GIT_OBJECT_COMMIT) != 0)
            goto next; /* a branch that does not point at a commit is not a checkpoint */
        git_oid_tostr(hex, sizeof hex, git_object_id(obj));
        err = cks_source_add(s, name, hex, type == GIT_BRANCH_REMOTE ? remote : NULL);
        git_object_free(obj);
    next:
        git_reference_free(ref);
        ref = NULL;
        if (err)
            break;
    }
    if (!err && rc != GIT_ITEROVER)
        err = git_fail(CKS_EIO, "cannot list branches", s->path);
    git_branch_iterator_free(it);
    remote_names_release(&remotes);
    return err;
}

int cks_source_git_open(cks_source *s, int *recognised)
{
    git_impl *g = NULL;
    git_repository *repo = NULL;
    int err = 0;
    *recognised = 0;
    git_libgit2_init();
    int rc = git_repository_open_ext(&repo, s->path, GIT_REPOSITORY_OPEN_NO_SEARCH, NULL);
    if (rc == GIT_ENOTFOUND) {
        git_libgit2_shutdown();
        return 0;
    }
    *recognised = 1;
    s->kind = CKS_SOURCE_GIT;
    if (rc != 0) {
        err = git_fail(CKS_EIO, "cannot open git repository", s->path);
        git_libgit2_shutdown();
        return err;
    }
    const char *common = git_repository_commondir(repo);
    size_t n = strlen(common) + 8;
    if (!(g = calloc(1, sizeof *g)) || !(g->lfs_dir = malloc(n))) {
        free(g);
        git_repository_free(repo);
        git_libgit2_shutdown();
        return cks_error_set(CKS_ENOMEM, "out of memory");
    }
    snprintf(g->lfs_dir, n, "%s%slfs", common, common[strlen(common) - 1] == '/' ? "" : "/");
    g->repo = repo;
    s->impl = g;
    s->ops = &git_ops;
    err = add_branches(s, g);
    return err;
}
