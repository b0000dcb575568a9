/* The Hugging Face hub itself as a source, hf://ORG/NAME (DESIGN §2, source 4): branches
 * from the refs API, a checkpoint's files from the tree API, content fetched into the hub
 * cache when a file is first mapped (hub_fetch.c) or ahead of use (hub_prefetch.c). With
 * HF_HUB_OFFLINE=1 the repository's cache folder is read as an hf-cache source. */
#include "error.h"
#include "grow.h"
#include "hub_impl.h"
#include "map.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#define TOKEN_MAX 4096

const char *cks_hub_display(const hub_impl *h, size_t idx, const char *path, char *buf, size_t cap)
{
    snprintf(buf, cap, "hf://%s@%s%s%s", h->repo, h->s->ckpts[idx].name, path ? ":" : "",
             path ? path : "");
    return buf;
}

int cks_hub_http_error(const hub_impl *h, const cks_http_result *r, const char *what)
{
    const char *code = r->error_code;
    if (r->status == 401 || r->status == 403) {
        if (strcmp(code, "RepoNotFound") == 0)
            return cks_error_set(CKS_ENOTFOUND,
                                 "%s: no repository hf://%s on %s, or it is private and needs "
                                 "HF_TOKEN (HTTP %ld)",
                                 what, h->repo, h->endpoint, r->status);
        return cks_error_set(CKS_EINVAL,
                             "%s: the hub refused access (HTTP %ld%s%s): %s HF_TOKEN (or the "
                             "file $HF_HOME/token)",
                             what, r->status, *code ? ", " : "", code,
                             h->token ? "the token was refused; check" : "no token was sent; set");
    }
    if (r->status == 404) {
        if (strcmp(code, "RepoNotFound") == 0)
            return cks_error_set(CKS_ENOTFOUND, "%s: no repository hf://%s on %s (HTTP 404)", what,
                                 h->repo, h->endpoint);
        if (strcmp(code, "RevisionNotFound") == 0)
            return cks_error_set(CKS_ENOTFOUND, "%s: revision not found on the hub (HTTP 404)",
                                 what);
        return cks_error_set(CKS_ENOTFOUND, "%s: not found on the hub (HTTP 404)", what);
    }
    return cks_error_set(CKS_EIO, "%s: the hub answered HTTP %ld", what, r->status);
}

/* ---- the http handles, one per thread at a time ---- */

int cks_hub_http_acquire(hub_impl *h, cks_http **out)
{
    pthread_mutex_lock(&h->mu);
    cks_http *http = h->nidle ? h->idle[--h->nidle] : NULL;
    pthread_mutex_unlock(&h->mu);
    if (http) {
        *out = http;
        return 0;
    }
    cks_http_opts o = {h->endpoint, h->token, h->timeout, h->timeout};
    return cks_http_new(out, &o);
}

void cks_hub_http_release(hub_impl *h, cks_http *http)
{
    pthread_mutex_lock(&h->mu);
    if (cks_grow(&h->idle, &h->capidle, h->nidle, sizeof *h->idle, 8) == 0) {
        h->idle[h->nidle++] = http;
        http = NULL;
    }
    pthread_mutex_unlock(&h->mu);
    cks_http_free(http);
}

/* ---- the blob table (h->mu held) ---- */

static size_t hash_name(const char *s)
{
    uint64_t x = 1469598103934665603ull; /* FNV-1a */
    for (; *s; s++)
        x = (x ^ (unsigned char)*s) * 1099511628211ull;
    return (size_t)x;
}

hub_blob *cks_hub_blob_find(hub_impl *h, const char *name)
{
    if (!h->nblobs_cap)
        return NULL;
    for (size_t i = hash_name(name) & (h->nblobs_cap - 1);; i = (i + 1) & (h->nblobs_cap - 1)) {
        hub_blob *b = h->blobs[i];
        if (!b || strcmp(b->name, name) == 0)
            return b;
    }
}

static int blob_table_grow(hub_impl *h)
{
    size_t cap = h->nblobs_cap ? h->nblobs_cap * 2 : 256;
    hub_blob **t = calloc(cap, sizeof *t);
    if (!t)
        return -1;
    for (size_t i = 0; i < h->nblobs_cap; i++) {
        hub_blob *b = h->blobs[i];
        if (!b)
            continue;
        size_t k = hash_name(b->name) & (cap - 1);
        while (t[k])
            k = (k + 1) & (cap - 1);
        t[k] = b;
    }
    free(h->blobs);
    h->blobs = t;
    h->nblobs_cap = cap;
    return 0;
}

hub_blob *cks_hub_blob(hub_impl *h, const char *name, uint64_t size)
{
    hub_blob *b = cks_hub_blob_find(h, name);
    if (b)
        return b;
    if ((h->nblobs + 1) * 10 > h->nblobs_cap * 7 && blob_table_grow(h) != 0)
        return NULL;
    if (!(b = calloc(1, sizeof *b)) || !(b->name = strdup(name))) {
        free(b);
        return NULL;
    }
    b->size = size;
    size_t k = hash_name(name) & (h->nblobs_cap - 1);
    while (h->blobs[k])
        k = (k + 1) & (h->nblobs_cap - 1);
    h->blobs[k] = b;
    h->nblobs++;
    return b;
}

/* ---- listings ---- */

static int fetch_tree(hub_impl *h, size_t idx, cks_hub_tree *tree)
{
    char *url = NULL, disp[1024];
    char **seen = NULL;
    size_t nseen = 0, capseen = 0;
    cks_http *http = NULL;
    const cks_ckpt_info *ci = &h->s->ckpts[idx];
    int err;
    cks_hub_display(h, idx, NULL, disp, sizeof disp);
    if ((err = cks_hub_http_acquire(h, &http)) != 0)
        return err;
    if (asprintf(&url, "%s/api/models/%s/tree/%s?recursive=true", h->endpoint, h->repo,
                 ci->commit) < 0) {
        url = NULL;
        err = cks_error_set(CKS_ENOMEM, "out of memory");
    }
    while (!err) {
        cks_http_result r;
        char *next = NULL;
        if (nseen >= CKS_HUB_MAX_PAGES) {
            err = cks_error_set(CKS_ELIMIT, "%s: tree listing has more than %d pages", disp,
                                CKS_HUB_MAX_PAGES);
            break;
        }
        for (size_t i = 0; i < nseen; i++)
            if (strcmp(seen[i], url) == 0)
                err = cks_error_set(CKS_EFORMAT, "%s: tree listing pages link in a loop", disp);
        if (err || (err = cks_grow(&seen, &capseen, nseen, sizeof *seen, 8)) != 0)
            break;
        seen[nseen++] = url;
        err = cks_http_get(http, url, CKS_HUB_MAX_PAGE, &r);
        if (!err && r.status != 200)
            err = cks_hub_http_error(h, &r, disp);
        if (!err)
            err = cks_hub_tree_parse(r.body, r.len, disp, tree);
        if (!err && r.link)
            err = cks_hub_link_next(r.link, disp, &next);
        if (!err && next && (!strstr(next, "://") || !cks_http_same_origin(http, next))) {
            err = cks_error_set(CKS_EFORMAT, "%s: the next page of the listing is not on %s", disp,
                                h->endpoint);
        }
        cks_http_result_release(&r);
        if (err || !next) {
            free(next);
            url = NULL;
            break;
        }
        url = next;
    }
    if (!err)
        err = cks_hub_tree_finish(tree, disp);
    if (url && (nseen == 0 || seen[nseen - 1] != url))
        free(url); /* a page that was never fetched */
    for (size_t i = 0; i < nseen; i++)
        free(seen[i]);
    free(seen);
    cks_hub_http_release(h, http);
    return err;
}

int cks_hub_ensure_listed(hub_impl *h, size_t idx)
{
    hub_ckpt *c = &h->ck[idx];
    pthread_mutex_lock(&h->mu);
    while (c->listing)
        pthread_cond_wait(&h->cv, &h->mu);
    if (c->listed) {
        pthread_mutex_unlock(&h->mu);
        return 0;
    }
    c->listing = 1;
    pthread_mutex_unlock(&h->mu);
    cks_hub_tree tree = {0};
    int err = fetch_tree(h, idx, &tree);
    pthread_mutex_lock(&h->mu);
    c->listing = 0;
    if (!err) {
        c->tree = tree;
        c->listed = 1;
    }
    pthread_cond_broadcast(&h->cv);
    pthread_mutex_unlock(&h->mu);
    if (err)
        cks_hub_tree_release(&tree);
    return err;
}

static int hub_list_files(const cks_source *s, size_t idx, cks_file_vec *out)
{
    hub_impl *h = s->impl;
    int err = cks_hub_ensure_listed(h, idx);
    if (err)
        return err;
    const cks_hub_tree *t = &h->ck[idx].tree; /* immutable once listed */
    for (size_t i = 0; i < t->count && !err; i++) {
        const cks_hub_entry *e = &t->items[i];
        err = cks_file_vec_push(out, e->path, e->size, e->lfs, 1, e->lfs ? e->blob : NULL, e->blob);
    }
    return err;
}

/* ---- fetching one file when it is needed ---- */

/* Waits for the blob to be ready, downloading it on this thread when nobody else is. */
static int obtain_blob(hub_impl *h, size_t idx, const cks_hub_entry *e)
{
    pthread_mutex_lock(&h->mu);
    hub_blob *b = cks_hub_blob(h, e->blob, e->size);
    if (!b) {
        pthread_mutex_unlock(&h->mu);
        return cks_error_set(CKS_ENOMEM, "out of memory");
    }
    while (b->state == BLOB_BUSY)
        pthread_cond_wait(&h->cv, &h->mu);
    if (b->state == BLOB_FAILED) {
        int err = cks_error_set(b->err, "%s", b->msg ? b->msg : "download failed");
        pthread_mutex_unlock(&h->mu);
        return err;
    }
    if (b->state == BLOB_READY) {
        pthread_mutex_unlock(&h->mu);
        return 0;
    }
    b->state = BLOB_BUSY;
    pthread_mutex_unlock(&h->mu);

    cks_http *http = NULL;
    int downloaded = 0;
    int err = cks_hub_http_acquire(h, &http);
    if (!err) {
        err = cks_hub_download(h, http, idx, e, &downloaded);
        cks_hub_http_release(h, http);
    }
    pthread_mutex_lock(&h->mu);
    if (err && err != CKS_EINTR) {
        b->state = BLOB_FAILED;
        b->err = err;
        free(b->msg);
        b->msg = strdup(cks_error_last());
    } else {
        b->state = err ? BLOB_NONE : BLOB_READY;
        b->ours |= downloaded;
    }
    pthread_cond_broadcast(&h->cv);
    pthread_mutex_unlock(&h->mu);
    return err;
}

static int record_link(hub_impl *h, size_t idx, const cks_hub_entry *e)
{
    int err = 0;
    pthread_mutex_lock(&h->mu);
    hub_blob *b = cks_hub_blob_find(h, e->blob);
    if (b && cks_grow(&b->links, &b->caplinks, b->nlinks, sizeof *b->links, 4) == 0 &&
        (b->links[b->nlinks].path = strdup(e->path)) != NULL)
        b->links[b->nlinks++].idx = idx;
    else
        err = cks_error_set(CKS_ENOMEM, "out of memory");
    pthread_mutex_unlock(&h->mu);
    return err;
}

int cks_hub_ensure_file(hub_impl *h, size_t idx, const cks_hub_entry *e, char *real, size_t cap)
{
    const cks_ckpt_info *ci = &h->s->ckpts[idx];
    char disp[1024];
    int found = 0, created = 0, err;
    if ((err = cks_hub_cache_lookup(&h->cache, ci->commit, e->path, real, cap, &found)) != 0 ||
        found)
        return err; /* already in the cache (transformers, an earlier run): used as is */
    if ((err = obtain_blob(h, idx, e)) != 0)
        return err;
    if ((err = cks_hub_cache_link(&h->cache, ci->commit, e->path, e->blob, &created)) != 0 ||
        (created && (err = record_link(h, idx, e)) != 0))
        return err;
    pthread_mutex_lock(&h->mu);
    int write_ref = !h->ck[idx].ref_written;
    h->ck[idx].ref_written = 1;
    pthread_mutex_unlock(&h->mu);
    if (write_ref && (err = cks_hub_cache_write_ref(&h->cache, ci->name, ci->commit)) != 0)
        return err;
    if ((err = cks_hub_cache_lookup(&h->cache, ci->commit, e->path, real, cap, &found)) != 0)
        return err;
    if (!found)
        return cks_error_set(CKS_EIO, "%s: the cached file vanished after it was fetched",
                             cks_hub_display(h, idx, e->path, disp, sizeof disp));
    return 0;
}

static int hub_map_file(const cks_source *s, size_t idx, const cks_file_info *f, cks_map **out)
{
    hub_impl *h = s->impl;
    char real[PATH_MAX], disp[1024];
    const cks_hub_tree *t = &h->ck[idx].tree; /* listed: f came from it */
    const cks_hub_entry *e = NULL;
    for (size_t lo = 0, hi = t->count; lo < hi && !e;) {
        size_t mid = lo + (hi - lo) / 2;
        int r = strcmp(t->items[mid].path, f->path);
        if (r == 0)
            e = &t->items[mid];
        else if (r < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (!e)
        return cks_error_set(CKS_ENOTFOUND, "%s: not in the listing",
                             cks_hub_display(h, idx, f->path, disp, sizeof disp));
    int err = cks_hub_ensure_file(h, idx, e, real, sizeof real);
    if (err)
        return err;
    return cks_map_file(out, real, cks_hub_display(h, idx, f->path, disp, sizeof disp));
}

static const char *hub_fetch_hint(const cks_source *s, size_t idx, const char *path, char *buf,
                                  size_t cap)
{
    const hub_impl *h = s->impl;
    snprintf(buf, cap, "huggingface-cli download %s %s --revision %s", h->repo, path,
             s->ckpts[idx].name);
    return buf;
}

static void hub_impl_free(void *p)
{
    hub_impl *h = p;
    if (!h)
        return;
    cks_hub_stop_workers(h);
    if (h->claim_fd >= 0)
        close(h->claim_fd);
    for (size_t i = 0; h->ck && i < h->s->count; i++) {
        cks_hub_tree_release(&h->ck[i].tree);
        free(h->ck[i].msg);
    }
    free(h->ck);
    for (size_t i = 0; i < h->nblobs_cap; i++) {
        hub_blob *b = h->blobs[i];
        if (!b)
            continue;
        for (size_t k = 0; k < b->nlinks; k++)
            free(b->links[k].path);
        free(b->links);
        free(b->msg);
        free(b->name);
        free(b);
    }
    free(h->blobs);
    for (size_t i = 0; i < h->nidle; i++)
        cks_http_free(h->idle[i]);
    free(h->idle);
    free(h->jobs);
    free(h->workers);
    pthread_mutex_destroy(&h->mu);
    pthread_mutex_destroy(&h->pmu);
    pthread_cond_destroy(&h->cv);
    pthread_cond_destroy(&h->cv_jobs);
    cks_hub_cache_release(&h->cache);
    free(h->endpoint);
    free(h->token);
    free(h);
}

static const struct cks_source_ops hub_ops = {
    .list_files = hub_list_files,
    .map_file = hub_map_file,
    .fetch_hint = hub_fetch_hint,
    .free_impl = hub_impl_free,
};

static const struct cks_fetch_ops hub_fetch_ops = {
    .prefetch = cks_hub_prefetch,
    .wait = cks_hub_wait,
    .evict = cks_hub_evict,
    .set_progress = cks_hub_set_progress,
    .set_threads = cks_hub_set_threads,
    .claim = cks_hub_claim,
    .set_interrupt = cks_hub_set_interrupt,
};

/* ---- the environment (huggingface_hub's variables and defaults) ---- */

static int env_true(const char *name)
{
    const char *v = getenv(name);
    return v && (strcasecmp(v, "1") == 0 || strcasecmp(v, "on") == 0 || strcasecmp(v, "yes") == 0 ||
                 strcasecmp(v, "true") == 0);
}

static char *hf_home(void)
{
    const char *v = getenv("HF_HOME"), *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
    char *out = NULL;
    if (v && *v)
        return strdup(v);
    if (xdg && *xdg)
        return asprintf(&out, "%s/huggingface", xdg) < 0 ? NULL : out;
    return asprintf(&out, "%s/.cache/huggingface", home && *home ? home : ".") < 0 ? NULL : out;
}

/* HF_TOKEN, else the token file (HF_TOKEN_PATH, else $HF_HOME/token); NULL when none. */
static int read_token(const char *home, char **out)
{
    const char *env = getenv("HF_TOKEN"), *tpath = getenv("HF_TOKEN_PATH");
    char path[PATH_MAX], *text = NULL, *from = "HF_TOKEN";
    size_t len = 0;
    *out = NULL;
    if (env && *env) {
        if (!(text = strdup(env)))
            return cks_error_set(CKS_ENOMEM, "out of memory");
        len = strlen(text);
    } else {
        snprintf(path, sizeof path, "%s", tpath && *tpath ? tpath : "");
        if (!*path)
            snprintf(path, sizeof path, "%s/token", home);
        int err = cks_read_file(path, TOKEN_MAX, &text, &len);
        if (err == CKS_ENOTFOUND) {
            cks_error_clear();
            return 0;
        }
        if (err)
            return err;
        from = path;
    }
    size_t a = 0, b = len;
    while (a < b && (text[a] == ' ' || text[a] == '\t' || text[a] == '\n' || text[a] == '\r'))
        a++;
    while (b > a && (text[b - 1] == ' ' || text[b - 1] == '\t' || text[b - 1] == '\n' ||
                     text[b - 1] == '\r'))
        b--;
    for (size_t i = a; i < b; i++) {
        unsigned char c = (unsigned char)text[i];
        if (c <= ' ' || c >= 0x7f) {
            free(text);
            return cks_error_set(CKS_EINVAL, "%s: the token holds a space or control character",
                                 from);
        }
    }
    memmove(text, text + a, b - a);
    text[b - a] = '\0';
    if (b == a)
        free(text);
    else
        *out = text;
    return 0;
}

static long env_timeout(void)
{
    const char *v = getenv("HF_HUB_DOWNLOAD_TIMEOUT");
    char *end;
    double t = v && *v ? strtod(v, &end) : 10;
    if (v && *v && (*end || !(t > 0)))
        return 10;
    return t > 3600 ? 3600 : (long)ceil(t);
}

static int fetch_refs(hub_impl *h, cks_source *s)
{
    char *url = NULL, disp[300];
    cks_http *http = NULL;
    cks_http_result r;
    cks_hub_refs refs = {0};
    snprintf(disp, sizeof disp, "hf://%s", h->repo);
    int err = cks_hub_http_acquire(h, &http);
    if (err)
        return err;
    if (asprintf(&url, "%s/api/models/%s/refs", h->endpoint, h->repo) < 0) {
        cks_hub_http_release(h, http);
        return cks_error_set(CKS_ENOMEM, "out of memory");
    }
    err = cks_http_get(http, url, CKS_HUB_MAX_PAGE, &r);
    if (!err && r.status != 200)
        err = cks_hub_http_error(h, &r, disp);
    if (!err)
        err = cks_hub_refs_parse(r.body, r.len, disp, &refs);
    for (size_t i = 0; !err && i < refs.count; i++)
        err = cks_source_add(s, refs.items[i].name, refs.items[i].commit, NULL);
    if (err && err != CKS_ENOMEM && !strstr(cks_error_last(), disp))
        cks_error_prefix(err, "%s", disp);
    cks_hub_refs_release(&refs);
    cks_http_result_release(&r);
    cks_hub_http_release(h, http);
    free(url);
    return err;
}

int cks_source_hub_open(cks_source *s, int *recognised)
{
    const char *repo = s->path + 5, *ep = getenv("HF_ENDPOINT"), *hub = getenv("HF_HUB_CACHE");
    char *home = NULL, *hubdir = NULL;
    *recognised = 0;
    if (strncmp(s->path, "hf://", 5) != 0)
        return 0;
    *recognised = 1;
    s->kind = CKS_SOURCE_HF_HUB;
    int err = cks_hub_repo_check(repo);
    if (err)
        return err;
    hub_impl *h = calloc(1, sizeof *h);
    if (!h || !(home = hf_home()))
        goto nomem;
    if (hub && *hub)
        hubdir = strdup(hub);
    else if (asprintf(&hubdir, "%s/hub", home) < 0)
        hubdir = NULL;
    if (!hubdir)
        goto nomem;
    snprintf(h->repo, sizeof h->repo, "%s", repo);
    if ((err = cks_hub_cache_init(&h->cache, hubdir, repo)) != 0)
        goto fail;
    if (env_true("HF_HUB_OFFLINE")) {
        struct stat st;
        cks_hub_cache_release(&h->cache);
        free(h);
        h = NULL;
        cks_hub_cache c;
        if ((err = cks_hub_cache_init(&c, hubdir, repo)) != 0)
            goto fail;
        if (stat(c.dir, &st) != 0 || !S_ISDIR(st.st_mode))
            err = cks_error_set(CKS_ENOTFOUND,
                                "hf://%s: HF_HUB_OFFLINE is set and the repository is not in the "
                                "cache (%s)",
                                repo, c.dir);
        else
            err = cks_source_hf_open_dir(s, c.dir);
        s->kind = CKS_SOURCE_HF_HUB;
        cks_hub_cache_release(&c);
        goto done;
    }
    h->s = s;
    h->timeout = env_timeout();
    h->want_workers = CKS_HUB_WORKERS_DEFAULT;
    h->claim_fd = -1;
    pthread_mutex_init(&h->mu, NULL);
    pthread_mutex_init(&h->pmu, NULL);
    pthread_cond_init(&h->cv, NULL);
    pthread_cond_init(&h->cv_jobs, NULL);
    if (!(h->endpoint = strdup(ep && *ep ? ep : "https://huggingface.co")))
        goto nomem;
    for (size_t n = strlen(h->endpoint); n > 0 && h->endpoint[n - 1] == '/'; n--)
        h->endpoint[n - 1] = '\0';
    if ((err = read_token(home, &h->token)) != 0)
        goto fail;
    s->impl = h;
    s->ops = &hub_ops;
    s->fetch = &hub_fetch_ops;
    if ((err = fetch_refs(h, s)) != 0)
        goto done;
    /* one state per checkpoint; the source's array is final after cks_source_open sorts
     * it, so this is sized for every name added (dedup only shrinks it) */
    if (!(h->ck = calloc(s->count ? s->count : 1, sizeof *h->ck)))
        err = cks_error_set(CKS_ENOMEM, "out of memory");
    goto done;
nomem:
    err = cks_error_set(CKS_ENOMEM, "out of memory");
fail:
    if (h && s->impl != h) {
        cks_hub_cache_release(&h->cache);
        free(h->endpoint);
        free(h->token);
        free(h);
    }
done:
    free(home);
    free(hubdir);
    return err;
}
