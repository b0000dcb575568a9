/* The cost of the run file's crash-atomic append (copy, write, fsync, rename) per
 * checkpoint, at K2's shape: --tensors 720 columns, --metrics 30 [N, T] datasets (norms,
 * spectral and drift together), --checkpoints 360 rows, optionally with --spectra K
 * eigenvalues per matrix. Prints the time per append at the start and the end of the run
 * and the file size, in a folder given by --dir (default /tmp): the copy is a reflink on
 * btrfs/xfs and a kernel copy elsewhere.
 * Usage: bench_store [--dir D] [--tensors T] [--metrics M] [--checkpoints N] [--spectra K] */
#include "store.h"

#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void die(const char *what)
{
    fprintf(stderr, "bench_store: %s failed\n", what);
    exit(1);
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {{"dir", 1, 0, 'd'},     {"tensors", 1, 0, 't'},
                                         {"metrics", 1, 0, 'm'}, {"checkpoints", 1, 0, 'n'},
                                         {"spectra", 1, 0, 'k'}, {0, 0, 0, 0}};
    const char *dir = "/tmp";
    long T = 720, M = 30, N = 360, K = 0;
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'd':
            dir = optarg;
            break;
        case 't':
            T = strtol(optarg, NULL, 10);
            break;
        case 'm':
            M = strtol(optarg, NULL, 10);
            break;
        case 'n':
            N = strtol(optarg, NULL, 10);
            break;
        case 'k':
            K = strtol(optarg, NULL, 10);
            break;
        default:
            return 2;
        }
    }
    if (T < 1 || M < 1 || N < 2 || K < 0)
        return 2;
    char path[4096];
    snprintf(path, sizeof path, "%s/bench_store_%ld.h5", dir, (long)getpid());
    cks_store *s;
    cks_store_meta meta = {"bench", "{}", NULL, NULL};
    if (cks_store_create(&s, path, &meta) != 0)
        die(path);
    cks_store_tensor *ts = calloc((size_t)T, sizeof *ts);
    char(*names)[64] = calloc((size_t)T, sizeof *names);
    double *row = malloc((size_t)T * sizeof *row);
    float *top = malloc((size_t)(K ? K : 1) * sizeof *top);
    for (long i = 0; i < T; i++) {
        snprintf(names[i], sizeof names[i], "model.layers.%ld.mlp.up_proj.weight", i);
        ts[i] = (cks_store_tensor){names[i], (int)i, "up", 8192, 28672};
    }
    for (long k = 0; k < K; k++)
        top[k] = (float)(K - k);
    double first = 0, last = 0, total = 0;
    long spectra_every = 1; /* an upper bound: scan writes spectra for the 2-D ones */
    for (long n = 0; n < N; n++) {
        char name[32];
        size_t r;
        snprintf(name, sizeof name, "ckpt_%03ld", n);
        for (long i = 0; i < T; i++)
            row[i] = sin((double)(n * T + i));
        double t0 = now();
        if (cks_store_begin(s) || cks_store_put_checkpoint(s, name, n, "0123abcd", "complete", &r))
            die("begin");
        if (n == 0 && cks_store_add_tensors(s, ts, (size_t)T, NULL))
            die("tensors");
        for (long m = 0; m < M; m++) {
            char p[64];
            snprintf(p, sizeof p, "/metric/m%02ld", m);
            if (cks_store_write_row(s, p, r, row, (size_t)T, "bench", NULL))
                die("write");
        }
        for (long i = 0; K && i < T; i += spectra_every) {
            char p[96];
            snprintf(p, sizeof p, "/spectra/%s", names[i]);
            if (cks_store_write_row_f32(s, p, r, top, (size_t)K, "rank", NULL, NULL))
                die("spectra");
        }
        if (cks_store_commit(s))
            die("commit");
        double t = now() - t0;
        total += t;
        if (n < 10)
            first += t / 10;
        if (n >= N - 10)
            last += t / 10;
    }
    struct stat st;
    stat(path, &st);
    printf("bench_store: %ld checkpoints x %ld tensors x %ld metrics%s in %s\n", N, T, M,
           K ? " + spectra" : "", dir);
    if (K)
        printf("  spectra: %ld eigenvalues for %ld matrices\n", K,
               (T + spectra_every - 1) / spectra_every);
    printf("  append (begin + rows + commit): first 10 %.1f ms, last 10 %.1f ms, mean %.1f ms\n",
           first * 1e3, last * 1e3, total / (double)N * 1e3);
    printf("  file: %.1f MiB (%.0f KiB per checkpoint); all appends %.1f s\n",
           (double)st.st_size / 1048576.0, (double)st.st_size / 1024.0 / (double)N, total);
    cks_store_free(s);
    unlink(path);
    free(ts);
    free(names);
    free(row);
    free(top);
    return 0;
}
