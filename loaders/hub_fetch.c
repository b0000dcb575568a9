/* Downloading one blob into the hub cache: blobs/<name>.incomplete, resumed from its length
 * (the part on disk is hashed again first), checked against the hash the listing names
 * (sha256 for LFS files; the git blob id, sha1 of "blob <size>\0" + content, for the
 * others), published by rename. A mismatch deletes it and fetches it once more; a second
 * mismatch fails, naming the file and both hashes. The per-blob lock is huggingface_hub's,
 * so two processes sharing a cache do not download the same file twice. */
#include "error.h"
#include "hub_impl.h"
#include "sha256.h"

#include <errno.h>
#include <fcntl.h>
#include <git2.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define REHASH_CHUNK ((size_t)1 << 20)

typedef struct {
    hub_impl *h;
    cks_sha256 sha;
    int lfs;
} sink_ctx;

static void on_data(void *ctx, const void *p, size_t n)
{
    sink_ctx *c = ctx;
    if (c->lfs)
        cks_sha256_update(&c->sha, p, n);
    cks_hub_progress_bytes(c->h, n);
}

/* Feeds the first n bytes of fd (a resumed download) to the hash. */
static int rehash(int fd, uint64_t n, cks_sha256 *sha, const char *path)
{
    unsigned char *buf = malloc(REHASH_CHUNK);
    uint64_t off = 0;
    if (!buf)
        return cks_error_set(CKS_ENOMEM, "out of memory");
    while (off < n) {
        size_t want = n - off < REHASH_CHUNK ? (size_t)(n - off) : REHASH_CHUNK;
        ssize_t r = pread(fd, buf, want, (off_t)off);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            free(buf);
            return cks_error_set(CKS_EIO, "%s: cannot read: %s", path,
                                 r < 0 ? strerror(errno) : "file shrank");
        }
        cks_sha256_update(sha, buf, (size_t)r);
        off += (uint64_t)r;
    }
    free(buf);
    return 0;
}

static int blob_id_of(const char *path, char hex[41])
{
    git_oid oid;
    if (git_odb_hashfile(&oid, path, GIT_OBJECT_BLOB) != 0) {
        const git_error *e = git_error_last();
        return cks_error_set(CKS_EIO, "%s: cannot hash: %s", path, e ? e->message : "?");
    }
    git_oid_tostr(hex, 41, &oid);
    return 0;
}

/* What the endpoint said about the file must agree with the listing. */
static int check_linked(const hub_impl *h, const cks_http_result *r, const cks_hub_entry *e,
                        const char *disp)
{
    if (r->linked_size >= 0 && (uint64_t)r->linked_size != e->size)
        return cks_error_set(
            CKS_EFORMAT, "%s: the hub serves %lld bytes (X-Linked-Size), the listing gives %llu",
            disp, (long long)r->linked_size, (unsigned long long)e->size);
    if (e->lfs && r->linked_etag[0] && strcmp(r->linked_etag, e->blob) != 0)
        return cks_error_set(CKS_EFORMAT,
                             "%s: the hub names sha256 %s (X-Linked-Etag), the listing %s", disp,
                             r->linked_etag, e->blob);
    return 0;
}

/* One try: resume or start blobs/<name>.incomplete and fetch the rest; the hash of the
 * whole file into got. */
static int fetch_once(hub_impl *h, cks_http *http, size_t idx, const cks_hub_entry *e,
                      const char *part, char got[65])
{
    char disp[1024], *url = NULL, *path = NULL;
    cks_hub_display(h, idx, e->path, disp, sizeof disp);
    int fd = open(part, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0666), err = 0;
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        err = cks_error_set(CKS_EIO, "%s: %s", part, strerror(errno));
        goto done;
    }
    sink_ctx sc = {.h = h, .lfs = e->lfs};
    cks_sha256_init(&sc.sha);
    uint64_t have = (uint64_t)st.st_size;
    if (!S_ISREG(st.st_mode) || have > e->size) {
        if (ftruncate(fd, 0) != 0) {
            err = cks_error_set(CKS_EIO, "%s: %s", part, strerror(errno));
            goto done;
        }
        have = 0;
    }
    if (have && e->lfs && (err = rehash(fd, have, &sc.sha, part)) != 0)
        goto done;
    if ((err = cks_http_escape(e->path, 1, &path)) != 0)
        goto done;
    if (asprintf(&url, "%s/%s/resolve/%s/%s", h->endpoint, h->repo, h->s->ckpts[idx].commit, path) <
        0) {
        url = NULL;
        err = cks_error_set(CKS_ENOMEM, "out of memory");
        goto done;
    }
    cks_http_sink sink = {fd, have, e->size, on_data, &sc, &h->cancel};
    cks_http_result r;
    cks_hub_progress_start(h, idx, e->size - have);
    if (have < e->size || e->size == 0) {
        err = cks_http_fetch(http, url, &sink, &r);
        if (!err && r.status >= 300)
            err = cks_hub_http_error(h, &r, disp);
        if (!err)
            err = check_linked(h, &r, e, disp);
        else if (err != CKS_ENOMEM && !strstr(cks_error_last(), disp))
            cks_error_prefix(err, "%s", disp);
        cks_http_result_release(&r);
    }
    cks_hub_progress_end(h);
    if (err)
        goto done;
    if (e->lfs)
        cks_sha256_final_hex(&sc.sha, got);
    else
        err = blob_id_of(part, got);
done:
    if (fd >= 0)
        close(fd);
    free(url);
    free(path);
    return err;
}

int cks_hub_download(hub_impl *h, cks_http *http, size_t idx, const cks_hub_entry *e,
                     int *downloaded)
{
    char blob[PATH_MAX], part[PATH_MAX], got[2][65], disp[1024];
    struct stat st;
    int lock = -1, err;
    *downloaded = 0;
    pthread_mutex_lock(&h->mu);
    int made = h->cache_made;
    pthread_mutex_unlock(&h->mu);
    if (!made) {
        if ((err = cks_hub_cache_create(&h->cache)) != 0)
            return err;
        pthread_mutex_lock(&h->mu);
        h->cache_made = 1;
        pthread_mutex_unlock(&h->mu);
    }
    if ((err = cks_hub_cache_blob_path(&h->cache, e->blob, NULL, blob, sizeof blob)) != 0 ||
        (err = cks_hub_cache_blob_path(&h->cache, e->blob, ".incomplete", part, sizeof part)) !=
            0 ||
        (err = cks_hub_cache_lock(&h->cache, e->blob, &lock)) != 0)
        return err;
    if (lstat(blob, &st) == 0) { /* there already: another checkpoint, process or tool */
        if (!S_ISREG(st.st_mode))
            err = cks_error_set(CKS_EFORMAT, "%s: in the cache but not a file", blob);
        goto done;
    }
    for (int attempt = 0; attempt < 2; attempt++) {
        if ((err = fetch_once(h, http, idx, e, part, got[attempt])) != 0)
            goto done;
        if (strcmp(got[attempt], e->blob) == 0) {
            if (rename(part, blob) != 0)
                err = cks_error_set(CKS_EIO, "%s: cannot publish: %s", blob, strerror(errno));
            else
                *downloaded = 1;
            goto done;
        }
        unlink(part); /* the content is wrong: start again from nothing */
    }
    err = cks_error_set(CKS_EFORMAT,
                        "%s: downloaded content has %s %s, then %s; the hub lists %s (fetched "
                        "twice)",
                        cks_hub_display(h, idx, e->path, disp, sizeof disp),
                        e->lfs ? "sha256" : "git blob id", got[0], got[1], e->blob);
done:
    close(lock);
    return err;
}
