/* cks-hub-walk: walks every checkpoint of a source the way a scan driver uses the
 * fetch-ahead API of source.h (wait for the current checkpoint, prefetch the next, read
 * the current one, evict what is no longer needed) and prints one JSON line per
 * checkpoint: whether every file read back with the hash its listing names, how long the
 * wait took, the most bytes the repository's blobs/ folder held meanwhile (sampled every
 * few milliseconds by a second thread) and the bytes evicted. For the hf:// tests and
 * the download benchmark; local sources walk the same way with the calls as no-ops.
 *
 * With --progress, every progress report of the source goes to stderr as a JSON line.
 *
 * usage: cks-hub-walk SOURCE [--evict] [--ref I] [--threads N] [--no-prefetch]
 *                     [--first I] [--count N] [--branches GLOB] [--progress] */
#include "error.h"
#include "sha256.h"
#include "source.h"

#include <dirent.h>
#include <git2.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

typedef struct {
    char dir[PATH_MAX]; /* the repository's blobs/ folder ("" for local sources) */
    pthread_mutex_t mu;
    unsigned long long max;
    int stop;
} sampler;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static unsigned long long folder_bytes(const char *dir)
{
    unsigned long long sum = 0;
    DIR *d = opendir(dir);
    struct dirent *e;
    if (!d)
        return 0;
    while ((e = readdir(d)) != NULL) {
        char p[PATH_MAX * 2];
        struct stat st;
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        if (lstat(p, &st) == 0 && S_ISREG(st.st_mode))
            sum += (unsigned long long)st.st_size;
    }
    closedir(d);
    return sum;
}

static void *sample(void *arg)
{
    sampler *sm = arg;
    for (;;) {
        unsigned long long b = folder_bytes(sm->dir);
        pthread_mutex_lock(&sm->mu);
        if (b > sm->max)
            sm->max = b;
        int stop = sm->stop;
        pthread_mutex_unlock(&sm->mu);
        if (stop)
            return NULL;
        struct timespec ts = {0, 3 * 1000000L};
        nanosleep(&ts, NULL);
    }
}

static unsigned long long take_max(sampler *sm)
{
    unsigned long long b = folder_bytes(sm->dir);
    pthread_mutex_lock(&sm->mu);
    unsigned long long m = sm->max > b ? sm->max : b;
    sm->max = b;
    pthread_mutex_unlock(&sm->mu);
    return m;
}

/* Maps every file and checks LFS files against their sha256. Returns 0 or -1. */
static int read_all(const cks_source *s, size_t idx, unsigned long long *bytes)
{
    cks_ckpt *c;
    if (cks_ckpt_open(&c, s, idx) != 0)
        return -1;
    int bad = 0;
    for (size_t i = 0; i < cks_ckpt_nfiles(c) && !bad; i++) {
        const cks_file_info *f = cks_ckpt_file(c, i);
        cks_map *m;
        if (cks_ckpt_map(c, f->path, &m) != 0) {
            bad = 1;
            break;
        }
        *bytes += m->size;
        if (f->lfs_oid) {
            char hex[65];
            cks_sha256_hex(m->data, m->size, hex);
            if (strcmp(hex, f->lfs_oid) != 0)
                bad = cks_error_set(CKS_EFORMAT, "%s: sha256 %s, listed %s", f->path, hex,
                                    f->lfs_oid) != 0;
        }
        cks_map_free(m);
    }
    cks_ckpt_free(c);
    return bad ? -1 : 0;
}

static void on_progress(void *ctx, const cks_fetch_progress *p)
{
    fprintf(stderr,
            "{\"progress\": \"%s\", \"done\": %llu, \"total\": %llu, \"files_done\": %d, "
            "\"files_total\": %d, \"seconds\": %.4f}\n",
            p->ckpt, (unsigned long long)p->done, (unsigned long long)p->total, p->files_done,
            p->files_total, p->seconds);
}

static void blobs_dir(const char *src, char *out, size_t cap)
{
    const char *hub = getenv("HF_HUB_CACHE"), *home = getenv("HF_HOME");
    char base[PATH_MAX];
    out[0] = '\0';
    if (strncmp(src, "hf://", 5) != 0)
        return;
    if (hub && *hub)
        snprintf(base, sizeof base, "%s", hub);
    else if (home && *home)
        snprintf(base, sizeof base, "%s/hub", home);
    else
        snprintf(base, sizeof base, "%s/.cache/huggingface/hub", getenv("HOME"));
    char repo[512];
    snprintf(repo, sizeof repo, "%s", src + 5);
    char *slash = strchr(repo, '/');
    if (!slash)
        return;
    *slash = '\0';
    snprintf(out, cap, "%s/models--%s--%s/blobs", base, repo, slash + 1);
}

int main(int argc, char **argv)
{
    const char *src = NULL, *glob = NULL;
    int evict = 0, prefetch = 1, threads = 0, progress = 0;
    long ref = 0, first = 0, count = -1;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--evict") == 0)
            evict = 1;
        else if (strcmp(argv[i], "--progress") == 0)
            progress = 1;
        else if (strcmp(argv[i], "--no-prefetch") == 0)
            prefetch = 0;
        else if (strcmp(argv[i], "--ref") == 0 && i + 1 < argc)
            ref = strtol(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc)
            threads = (int)strtol(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--first") == 0 && i + 1 < argc)
            first = strtol(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--count") == 0 && i + 1 < argc)
            count = strtol(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--branches") == 0 && i + 1 < argc)
            glob = argv[++i];
        else if (!src)
            src = argv[i];
        else
            return fprintf(stderr, "cks-hub-walk: unexpected '%s'\n", argv[i]), 2;
    }
    if (!src)
        return fprintf(stderr, "usage: cks-hub-walk SOURCE [--evict] [--ref I] [--threads N] "
                               "[--no-prefetch] [--first I] [--count N] [--branches GLOB] "
                               "[--progress]\n"),
               2;
    git_libgit2_init();
    cks_source *s;
    if (cks_source_open(&s, src, glob) != 0) {
        fprintf(stderr, "cks-hub-walk: %s\n", cks_error_last());
        return 2;
    }
    size_t n = cks_source_count(s);
    size_t last = count < 0 || (size_t)(first + count) > n ? n : (size_t)(first + count);
    if ((threads && cks_source_set_fetch_threads(s, threads) != 0) || ref < 0 || (size_t)ref >= n ||
        first < 0 || (size_t)first >= n) {
        fprintf(stderr, "cks-hub-walk: bad --threads, --ref or --first\n");
        cks_source_free(s);
        return 2;
    }
    if (progress)
        cks_source_set_progress(s, on_progress, NULL);
    sampler sm = {.max = 0};
    pthread_t tid;
    pthread_mutex_init(&sm.mu, NULL);
    blobs_dir(src, sm.dir, sizeof sm.dir);
    pthread_create(&tid, NULL, sample, &sm);
    size_t *keep = calloc(n + 1, sizeof *keep);
    int status = 0;
    double t_all = now_s();
    for (size_t i = (size_t)first; i < last; i++) {
        double t0 = now_s();
        int err = cks_source_wait(s, i);
        double waited = now_s() - t0;
        if (prefetch && i + 1 < last)
            cks_source_prefetch(s, i + 1);
        unsigned long long bytes = 0;
        double t1 = now_s();
        if (!err)
            err = read_all(s, i, &bytes);
        double analysed = now_s() - t1;
        char msg[1024] = "";
        if (err) {
            snprintf(msg, sizeof msg, "%s", cks_error_last());
            for (char *p = msg; *p; p++)
                if (*p == '"' || *p == '\\')
                    *p = '\'';
            status = 1;
        }
        uint64_t freed = 0;
        if (evict) {
            size_t k = 0;
            keep[k++] = (size_t)ref;
            for (size_t j = i; j < last; j++)
                if (j != (size_t)ref)
                    keep[k++] = j;
            if (cks_source_evict(s, keep, k, &freed) != 0) {
                fprintf(stderr, "cks-hub-walk: evict: %s\n", cks_error_last());
                status = 1;
            }
        }
        printf("{\"ckpt\": \"%s\", \"ok\": %s, \"bytes\": %llu, \"wait_s\": %.4f, "
               "\"read_s\": %.4f, \"blob_bytes_max\": %llu, \"freed\": %llu, \"error\": \"%s\"}\n",
               cks_source_ckpt(s, i)->name, err ? "false" : "true", bytes, waited, analysed,
               take_max(&sm), (unsigned long long)freed, msg);
        fflush(stdout);
    }
    fprintf(stderr, "cks-hub-walk: %zu checkpoints in %.3f s\n", last - (size_t)first,
            now_s() - t_all);
    pthread_mutex_lock(&sm.mu);
    sm.stop = 1;
    pthread_mutex_unlock(&sm.mu);
    pthread_join(tid, NULL);
    free(keep);
    cks_source_free(s);
    git_libgit2_shutdown();
    return status;
}
