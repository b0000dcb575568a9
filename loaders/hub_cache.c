/* The hub cache layout (hub_cache.h): paths, safe folder creation, relative snapshot
 * links, refs and the per-blob locks huggingface_hub also takes. */
#include "hub_cache.h"
#include "error.h"
#include "map.h"
#include "path.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

int cks_hub_cache_init(cks_hub_cache *c, const char *hub, const char *repo)
{
    const char *slash = strchr(repo, '/');
    memset(c, 0, sizeof *c);
    if (!slash)
        return cks_error_set(CKS_EINVAL, "%s: expected ORG/NAME", repo);
    int org = (int)(slash - repo);
    if (asprintf(&c->dir, "%s/models--%.*s--%s", hub, org, repo, slash + 1) < 0 ||
        asprintf(&c->locks, "%s/.locks/models--%.*s--%s", hub, org, repo, slash + 1) < 0) {
        c->dir = c->locks = NULL; /* asprintf leaves them undefined on failure */
        return cks_error_set(CKS_ENOMEM, "out of memory");
    }
    return 0;
}

void cks_hub_cache_release(cks_hub_cache *c)
{
    free(c->dir);
    free(c->locks);
    memset(c, 0, sizeof *c);
}

/* mkdir -p of an absolute or relative path; every existing component must be a folder
 * (a symlink to one is accepted only above `trusted_len` bytes of the path, i.e. in the
 * user's own part of it, such as a cache folder on another disk). */
static int mkdirs(const char *path, size_t trusted_len)
{
    char p[PATH_MAX];
    size_t n = strlen(path);
    if (n >= sizeof p)
        return cks_error_set(CKS_ELIMIT, "%s: path too long", path);
    memcpy(p, path, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (p[i] != '/' && p[i] != '\0')
            continue;
        char keep = p[i];
        p[i] = '\0';
        struct stat st;
        if (mkdir(p, 0777) != 0 && errno != EEXIST)
            return cks_error_set(CKS_EIO, "%s: cannot create folder: %s", p, strerror(errno));
        int ok = i <= trusted_len ? stat(p, &st) == 0 && S_ISDIR(st.st_mode)
                                  : lstat(p, &st) == 0 && S_ISDIR(st.st_mode);
        if (!ok)
            return cks_error_set(CKS_EFORMAT,
                                 "%s: in the cache but not a folder (a file or a symlink)", p);
        p[i] = keep;
    }
    return 0;
}

int cks_hub_cache_create(const cks_hub_cache *c)
{
    char p[PATH_MAX];
    size_t trusted = strlen(c->dir); /* the repository folder itself may be a symlink */
    static const char *const sub[] = {"blobs", "snapshots", "refs"};
    int err;
    if ((err = mkdirs(c->dir, trusted)) != 0)
        return err;
    for (int i = 0; i < 3; i++) {
        snprintf(p, sizeof p, "%s/%s", c->dir, sub[i]);
        if ((err = mkdirs(p, trusted)) != 0)
            return err;
    }
    return mkdirs(c->locks, strlen(c->locks) - strlen(strrchr(c->locks, '/')));
}

int cks_hub_cache_blob_path(const cks_hub_cache *c, const char *blob, const char *suffix, char *buf,
                            size_t cap)
{
    int n = snprintf(buf, cap, "%s/blobs/%s%s", c->dir, blob, suffix ? suffix : "");
    if (n < 0 || (size_t)n >= cap)
        return cks_error_set(CKS_ELIMIT, "%s/blobs/%s: path too long", c->dir, blob);
    return 0;
}

static int snap_path(const cks_hub_cache *c, const char *commit, const char *path, char *buf,
                     size_t cap)
{
    int n = snprintf(buf, cap, "%s/snapshots/%s/%s", c->dir, commit, path);
    if (n < 0 || (size_t)n >= cap)
        return cks_error_set(CKS_ELIMIT, "%s/snapshots/%s/%s: path too long", c->dir, commit, path);
    return 0;
}

int cks_hub_cache_lookup(const cks_hub_cache *c, const char *commit, const char *path, char *buf,
                         size_t cap, int *found)
{
    char p[PATH_MAX], root[PATH_MAX], real[PATH_MAX];
    struct stat st;
    int err;
    *found = 0;
    if ((err = snap_path(c, commit, path, p, sizeof p)) != 0)
        return err;
    if (lstat(p, &st) != 0)
        return 0; /* absent (or a folder on the way is missing) */
    if (!realpath(c->dir, root))
        return cks_error_set(CKS_EIO, "%s: %s", c->dir, strerror(errno));
    if (!realpath(p, real)) {
        if (errno == ENOENT)
            return 0; /* a dangling link: the blob was deleted; fetch it again */
        return cks_error_set(CKS_EIO, "%s: %s", p, strerror(errno));
    }
    if (!cks_path_is_inside(root, real))
        return cks_error_set(CKS_EFORMAT, "%s: resolves to %s, outside the cache folder %s", p,
                             real, root);
    if (stat(real, &st) != 0 || !S_ISREG(st.st_mode))
        return cks_error_set(CKS_EFORMAT, "%s: in the cache but not a file", p);
    if (strlen(real) >= cap)
        return cks_error_set(CKS_ELIMIT, "%s: path too long", real);
    memcpy(buf, real, strlen(real) + 1);
    *found = 1;
    return 0;
}

static void link_target(const char *path, const char *blob, char *buf, size_t cap)
{
    size_t len = 0;
    for (int i = 0, up = 2; i < up; i++)
        len += (size_t)snprintf(buf + len, cap - len, "../");
    for (const char *s = strchr(path, '/'); s && len < cap; s = strchr(s + 1, '/'))
        len += (size_t)snprintf(buf + len, cap - len, "../");
    if (len < cap)
        snprintf(buf + len, cap - len, "blobs/%s", blob);
}

int cks_hub_cache_link(const cks_hub_cache *c, const char *commit, const char *path,
                       const char *blob, int *created)
{
    char p[PATH_MAX], target[PATH_MAX];
    struct stat st;
    int err;
    *created = 0;
    if ((err = snap_path(c, commit, path, p, sizeof p)) != 0)
        return err;
    char *slash = strrchr(p, '/');
    *slash = '\0';
    err = mkdirs(p, strlen(c->dir));
    *slash = '/';
    if (err)
        return err;
    link_target(path, blob, target, sizeof target);
    if (lstat(p, &st) == 0) {
        if (!S_ISLNK(st.st_mode) || stat(p, &st) == 0)
            return 0; /* there already (cks_hub_cache_lookup decides whether it is usable) */
        if (unlink(p) != 0)
            return cks_error_set(CKS_EIO, "%s: cannot replace a dangling link: %s", p,
                                 strerror(errno));
    }
    if (symlink(target, p) != 0) {
        if (errno == EEXIST)
            return 0; /* another process made it meanwhile */
        return cks_error_set(CKS_EIO, "%s: cannot create the link: %s", p, strerror(errno));
    }
    *created = 1;
    return 0;
}

void cks_hub_cache_unlink(const cks_hub_cache *c, const char *commit, const char *path,
                          const char *blob)
{
    char p[PATH_MAX], target[PATH_MAX], got[PATH_MAX], stop[PATH_MAX];
    if (snap_path(c, commit, path, p, sizeof p) != 0)
        return;
    link_target(path, blob, target, sizeof target);
    ssize_t n = readlink(p, got, sizeof got - 1);
    if (n < 0)
        return;
    got[n] = '\0';
    if (strcmp(got, target) != 0 || unlink(p) != 0)
        return;
    snprintf(stop, sizeof stop, "%s/snapshots", c->dir);
    for (char *s = strrchr(p, '/'); s && (size_t)(s - p) > strlen(stop); s = strrchr(p, '/')) {
        *s = '\0';
        if (rmdir(p) != 0)
            break;
    }
}

int cks_hub_cache_write_ref(const cks_hub_cache *c, const char *branch, const char *commit)
{
    char p[PATH_MAX], tmp[PATH_MAX + 16], *old = NULL;
    size_t len = 0;
    int n = snprintf(p, sizeof p, "%s/refs/%s", c->dir, branch), err;
    if (n < 0 || (size_t)n >= sizeof p)
        return cks_error_set(CKS_ELIMIT, "%s/refs/%s: path too long", c->dir, branch);
    if (cks_read_file(p, 128, &old, &len) == 0) {
        int same = len == strlen(commit) && memcmp(old, commit, len) == 0;
        free(old);
        if (same)
            return 0;
    }
    cks_error_clear();
    char *slash = strrchr(p, '/');
    *slash = '\0';
    err = mkdirs(p, strlen(c->dir));
    *slash = '/';
    if (err)
        return err;
    snprintf(tmp, sizeof tmp, "%s.%ld.tmp", p, (long)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0666);
    if (fd < 0)
        return cks_error_set(CKS_EIO, "%s: %s", tmp, strerror(errno));
    ssize_t w = write(fd, commit, strlen(commit));
    if (close(fd) != 0 || w != (ssize_t)strlen(commit) || rename(tmp, p) != 0) {
        err = cks_error_set(CKS_EIO, "%s: cannot write: %s", p, strerror(errno));
        unlink(tmp);
        return err;
    }
    return 0;
}

int cks_hub_cache_lock(const cks_hub_cache *c, const char *blob, int *fd)
{
    char p[PATH_MAX];
    int n = snprintf(p, sizeof p, "%s/%s.lock", c->locks, blob);
    if (n < 0 || (size_t)n >= sizeof p)
        return cks_error_set(CKS_ELIMIT, "%s/%s.lock: path too long", c->locks, blob);
    int f = open(p, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0666);
    if (f < 0)
        return cks_error_set(CKS_EIO, "%s: %s", p, strerror(errno));
    while (flock(f, LOCK_EX) != 0) {
        if (errno != EINTR) {
            int err = cks_error_set(CKS_EIO, "%s: cannot lock: %s", p, strerror(errno));
            close(f);
            return err;
        }
    }
    *fd = f;
    return 0;
}

int cks_hub_cache_claim(const cks_hub_cache *c, int exclusive, int *fd)
{
    char p[PATH_MAX];
    int err = cks_hub_cache_create(c);
    if (err)
        return err;
    int n = snprintf(p, sizeof p, "%s/ckptscope-scan.lock", c->locks);
    if (n < 0 || (size_t)n >= sizeof p)
        return cks_error_set(CKS_ELIMIT, "%s/ckptscope-scan.lock: path too long", c->locks);
    int f = open(p, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0666);
    if (f < 0)
        return cks_error_set(CKS_EIO, "%s: %s", p, strerror(errno));
    while (flock(f, (exclusive ? LOCK_EX : LOCK_SH) | LOCK_NB) != 0) {
        if (errno == EINTR)
            continue;
        if (errno == EWOULDBLOCK)
            err = cks_error_set(CKS_EEXISTS, "%s: %s (%s is locked)", c->dir,
                                exclusive ? "another process is using this hub cache"
                                          : "a process that evicts is using this hub cache",
                                p);
        else
            err = cks_error_set(CKS_EIO, "%s: cannot lock: %s", p, strerror(errno));
        close(f);
        return err;
    }
    *fd = f;
    return 0;
}
