/* bench_formats: norms over a page-cached PyTorch .bin checkpoint against the same
 * tensors in safetensors, f32 and bf16, 1 and 2 threads. Both readers hand out views
 * into a mapped file, so the figures should match; this measures that they do.
 *
 *   bench_formats [--mb N] [--reps R] [--dir DIR] [--keep]
 *
 * Files are written by tools/make_bench_checkpoint.py (real torch.save and a
 * hand-written safetensors file) into DIR, a fresh folder under /tmp by default, which
 * is removed afterwards unless --keep. Every file is read once before timing, so the
 * figures are for page-cached data; the two formats are timed in alternation (the
 * machine is shared) and the best of R passes of each is reported. */
#include "error.h"
#include "map.h"
#include "norms.h"
#include "safetensors.h"
#include "torchbin.h"

#include <ftw.h>
#include <getopt.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

typedef int (*parse_fn)(const cks_map *m, int file, cks_tensor_list *out);

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int make_files(const char *dir, double mb)
{
    char script[4096], mbs[32];
    snprintf(script, sizeof script, "%s/tools/make_bench_checkpoint.py", CKS_SOURCE_DIR);
    snprintf(mbs, sizeof mbs, "%g", mb);
    char *argv[] = {(char *)CKS_BENCH_PYTHON, script, (char *)dir, mbs, NULL};
    pid_t pid;
    int st;
    fprintf(stderr, "bench_formats: writing %g MB checkpoints into %s ...\n", mb, dir);
    if (posix_spawn(&pid, argv[0], NULL, NULL, argv, environ) != 0 || waitpid(pid, &st, 0) < 0 ||
        !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        fprintf(stderr, "bench_formats: %s %s failed\n", argv[0], script);
        return -1;
    }
    return 0;
}

/* One pass of norms over every tensor; returns seconds. */
static double pass(const cks_tensor_list *l, int threads)
{
    cks_norms n;
    double t0 = now(), sink = 0;
    for (size_t i = 0; i < l->count; i++) {
        if (cks_norms_compute(&l->items[i], threads, &n) == 0)
            sink += n.fro;
    }
    double dt = now() - t0;
    if (sink < 0) /* keeps the work observable */
        printf("%g\n", sink);
    return dt;
}

typedef struct {
    const char *file;
    cks_map *map;
    cks_tensor_list tensors;
    double parse_s;
    size_t bytes;
} opened;

static int open_one(const char *dir, const char *file, parse_fn parse, opened *o)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", dir, file);
    o->file = file;
    cks_tensor_list_init(&o->tensors);
    if (cks_map_file(&o->map, path, NULL) != 0) {
        fprintf(stderr, "bench_formats: %s\n", cks_error_last());
        return -1;
    }
    double t0 = now();
    if (parse(o->map, 0, &o->tensors) != 0) {
        fprintf(stderr, "bench_formats: %s\n", cks_error_last());
        return -1;
    }
    o->parse_s = now() - t0;
    for (size_t i = 0; i < o->tensors.count; i++)
        o->bytes += o->tensors.items[i].nbytes;
    pass(&o->tensors, 2); /* page in */
    return 0;
}

/* The .bin and the safetensors file of one dtype, timed in alternation so that both see
 * the same machine load; the best of reps passes each. */
static int measure_pair(const char *dir, const char *tag, int reps)
{
    char fb[64], fs[64];
    opened o[2] = {{0}, {0}};
    int rc = -1;
    snprintf(fb, sizeof fb, "%s.bin", tag);
    snprintf(fs, sizeof fs, "%s.safetensors", tag);
    if (open_one(dir, fb, cks_torchbin_parse, &o[0]) == 0 &&
        open_one(dir, fs, cks_safetensors_parse, &o[1]) == 0) {
        for (int threads = 1; threads <= 2; threads++) {
            double best[2] = {1e30, 1e30};
            for (int r = 0; r < reps; r++) {
                for (int k = 0; k < 2; k++) {
                    double dt = pass(&o[k].tensors, threads);
                    best[k] = dt < best[k] ? dt : best[k];
                }
            }
            for (int k = 0; k < 2; k++)
                printf("%-18s %4zu tensors %7.1f MB  parse %7.3f ms  threads %d  norms %6.3f s"
                       "  %6.2f GB/s\n",
                       o[k].file, o[k].tensors.count, (double)o[k].bytes / 1e6, 1e3 * o[k].parse_s,
                       threads, best[k], (double)o[k].bytes / best[k] / 1e9);
            printf("%-18s .bin / safetensors throughput: %.3f\n", tag, best[1] / best[0]);
        }
        rc = 0;
    }
    for (int k = 0; k < 2; k++) {
        cks_tensor_list_release(&o[k].tensors);
        cks_map_free(o[k].map);
    }
    return rc;
}

static int rm_one(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    return remove(p);
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {{"mb", 1, 0, 'm'},   {"reps", 1, 0, 'r'},
                                         {"dir", 1, 0, 'd'},  {"keep", 0, 0, 'k'},
                                         {"help", 0, 0, 'h'}, {0, 0, 0, 0}};
    double mb = 256;
    int reps = 5, keep = 0, c;
    char tmpl[] = "/tmp/cks-bench-formats-XXXXXX";
    const char *dir = NULL;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        char *end;
        switch (c) {
        case 'm':
            mb = strtod(optarg, &end);
            break;
        case 'r':
            reps = (int)strtol(optarg, &end, 10);
            break;
        case 'd':
            dir = optarg;
            keep = 1;
            break;
        case 'k':
            keep = 1;
            break;
        default:
            fputs("usage: bench_formats [--mb N] [--reps R] [--dir DIR] [--keep]\n", stderr);
            return c == 'h' ? 0 : 2;
        }
    }
    if (!(mb > 0) || reps < 1) {
        fputs("bench_formats: --mb and --reps must be positive\n", stderr);
        return 2;
    }
    if (!dir && !(dir = mkdtemp(tmpl))) {
        perror("bench_formats: mkdtemp");
        return 1;
    }
    char probe[4200];
    snprintf(probe, sizeof probe, "%s/bf16.safetensors", dir);
    int rc = access(probe, R_OK) == 0 ? 0 : make_files(dir, mb);
    for (int i = 0; rc == 0 && i < 2; i++)
        rc = measure_pair(dir, i == 0 ? "f32" : "bf16", reps);
    if (!keep)
        nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    return rc == 0 ? 0 : 1;
}
