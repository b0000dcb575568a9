/* Drift throughput against memory bandwidth: cks_drift_compute over two tensors of
 * --mib MiB each (f32, bf16, f16, f64), and for comparison a plain streaming read of the
 * same bytes (a sum of 64-bit words, the same threads and chunking), reported in GB/s of
 * input read. The buffers are much larger than the caches, so both are memory-bound.
 * A second pass maps the tensors from files in the page cache, as scan does.
 * Usage: bench_drift [--mib N] [--threads N] [--reps N] */
#include "drift.h"
#include "map.h"
#include "simd.h"

#include <getopt.h>
#include <omp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* CPU seconds of the whole process: on a shared machine the wall clock also counts the
 * time other processes held our cores; bytes per CPU-second shows what the code needs */
static double cpu(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

CKS_CLONES static uint64_t sum_words(const uint64_t *p, size_t n)
{
    uint64_t s[8] = {0};
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int l = 0; l < 8; l++)
            s[l] += p[i + l];
    for (; i < n; i++)
        s[0] += p[i];
    return s[0] + s[1] + s[2] + s[3] + s[4] + s[5] + s[6] + s[7];
}

/* Reads both buffers once, chunked like the drift code, and returns seconds. */
static double stream_read(const void *a, const void *b, size_t bytes, int threads, uint64_t *sink)
{
    size_t words = bytes / 8, chunk = (1u << 20) / 2; /* 4 MiB per chunk and side */
    int64_t nchunks = (int64_t)((words + chunk - 1) / chunk);
    uint64_t total = 0;
    double t0 = now();
#pragma omp parallel for num_threads(threads) schedule(dynamic, 1) reduction(+ : total)
    for (int64_t c = 0; c < nchunks; c++) {
        size_t lo = (size_t)c * chunk, hi = lo + chunk < words ? lo + chunk : words;
        total += sum_words((const uint64_t *)a + lo, hi - lo);
        total += sum_words((const uint64_t *)b + lo, hi - lo);
    }
    double t = now() - t0;
    *sink += total;
    return t;
}

static cks_tensor view(cks_dtype dt, const void *p, int64_t numel)
{
    cks_tensor t;
    memset(&t, 0, sizeof t);
    t.name = "bench";
    t.dtype = dt;
    t.ndim = 2;
    t.shape[0] = numel / 4096;
    t.shape[1] = 4096;
    t.numel = numel;
    t.data = p;
    t.nbytes = (size_t)numel * cks_dtype_size(dt);
    t.layer = -1;
    t.kind = CKS_KIND_OTHER;
    return t;
}

static void fill(cks_dtype dt, unsigned char *p, int64_t n, float scale)
{
    for (int64_t i = 0; i < n; i++) {
        float v = scale * (float)((i * 2654435761u) % 1000) * 1e-5f;
        switch (dt) {
        case CKS_DT_F64: {
            double d = v;
            memcpy(p + 8 * i, &d, 8);
            break;
        }
        case CKS_DT_BF16: {
            uint16_t h = cks_f32_to_bf16(v);
            memcpy(p + 2 * i, &h, 2);
            break;
        }
        case CKS_DT_F16: {
            uint16_t h = cks_f32_to_f16(v);
            memcpy(p + 2 * i, &h, 2);
            break;
        }
        default:
            memcpy(p + 4 * i, &v, 4);
            break;
        }
    }
}

static double best_drift(const cks_tensor *a, const cks_tensor *b, int threads, int reps,
                         double *best_cpu)
{
    double best = 1e30;
    cks_drift d;
    *best_cpu = 1e30;
    for (int r = 0; r < reps; r++) {
        double t0 = now(), c0 = cpu();
        if (cks_drift_compute(a, 1, b, 0, threads, &d) != 0) {
            fprintf(stderr, "bench_drift: %s\n", "drift failed");
            exit(1);
        }
        double t = now() - t0, c = cpu() - c0;
        best = t < best ? t : best;
        *best_cpu = c < *best_cpu ? c : *best_cpu;
    }
    return best;
}

static int write_tmp(const char *path, const void *p, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(p, 1, n, f) != n) {
        if (f)
            fclose(f);
        return -1;
    }
    return fclose(f);
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"mib", 1, 0, 'm'}, {"threads", 1, 0, 't'}, {"reps", 1, 0, 'r'}, {0, 0, 0, 0}};
    long mib = 512, reps = 5;
    int threads = (int)sysconf(_SC_NPROCESSORS_ONLN), c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (c == 'm')
            mib = strtol(optarg, NULL, 10);
        else if (c == 't')
            threads = (int)strtol(optarg, NULL, 10);
        else if (c == 'r')
            reps = strtol(optarg, NULL, 10);
        else
            return 2;
    }
    if (mib < 1 || threads < 1 || reps < 1)
        return 2;
    size_t bytes = (size_t)mib << 20;
    unsigned char *a = aligned_alloc(64, bytes), *b = aligned_alloc(64, bytes);
    if (!a || !b)
        return 1;
    memset(a, 1, bytes); /* fault every page in before timing */
    memset(b, 2, bytes);
    uint64_t sink = 0;
    printf("bench_drift: 2 x %ld MiB, %d thread%s, best of %ld\n", mib, threads,
           threads > 1 ? "s" : "", reps);
    for (int th = 1; th <= threads; th *= 2) {
        double best = 1e30;
        for (int r = 0; r < reps; r++) {
            double t = stream_read(a, b, bytes, th, &sink);
            best = t < best ? t : best;
        }
        double bw = 2.0 * (double)bytes / best / 1e9;
        printf("  plain read (memory bandwidth), %d thread%s: %6.2f GB/s\n", th, th > 1 ? "s" : "",
               bw);
        const cks_dtype dts[] = {CKS_DT_F32, CKS_DT_BF16, CKS_DT_F16, CKS_DT_F64};
        for (size_t k = 0; k < 4; k++) {
            int64_t n = (int64_t)(bytes / cks_dtype_size(dts[k]));
            fill(dts[k], a, n, 1.0f);
            fill(dts[k], b, n, 1.01f);
            cks_tensor ta = view(dts[k], a, n), tb = view(dts[k], b, n);
            double tc, t = best_drift(&ta, &tb, th, (int)reps, &tc);
            double gbs = 2.0 * (double)bytes / t / 1e9;
            printf("  drift %-4s, %d thread%s:            %6.2f GB/s (%4.0f%% of the plain "
                   "read, %.0f Melem/s; %.1f GB per CPU-second)\n",
                   cks_dtype_name(dts[k]), th, th > 1 ? "s" : "", gbs, 100.0 * gbs / bw,
                   (double)n / t / 1e6, 2.0 * (double)bytes / tc / 1e9);
        }
    }
    /* the scan's situation: both tensors mmap'ed from files in the page cache */
    char pa[] = "/tmp/bench_drift_a_XXXXXX", pb[] = "/tmp/bench_drift_b_XXXXXX";
    int fa = mkstemp(pa), fb = mkstemp(pb);
    if (fa >= 0 && fb >= 0) {
        close(fa);
        close(fb);
        int64_t n = (int64_t)(bytes / 2);
        fill(CKS_DT_BF16, a, n, 1.0f);
        fill(CKS_DT_BF16, b, n, 1.01f);
        double best = 1e30;
        if (write_tmp(pa, a, bytes) == 0 && write_tmp(pb, b, bytes) == 0) {
            for (long r = 0; r < reps; r++) {
                /* a fresh mapping each time: the page faults are part of the cost */
                cks_map *ma = NULL, *mb = NULL;
                if (cks_map_file(&ma, pa, NULL) == 0 && cks_map_file(&mb, pb, NULL) == 0) {
                    cks_tensor ta = view(CKS_DT_BF16, ma->data, n);
                    cks_tensor tb = view(CKS_DT_BF16, mb->data, n);
                    double tc, t = best_drift(&ta, &tb, threads, 1, &tc);
                    best = t < best ? t : best;
                }
                cks_map_free(ma);
                cks_map_free(mb);
            }
            printf("  drift BF16, files mapped afresh (page cache), %d thread%s: %6.2f GB/s\n",
                   threads, threads > 1 ? "s" : "", 2.0 * (double)bytes / best / 1e9);
        }
    }
    unlink(pa);
    unlink(pb);
    free(a);
    free(b);
    return sink == 42 ? 3 : 0;
}
