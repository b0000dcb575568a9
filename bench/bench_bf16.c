/* bench_bf16: the machine's bf16 dot-product peak and how close the weight products of
 * `--precision bf16` get to it. It measures; it never passes or fails.
 *
 * Peak: 24 independent accumulators each doing vdpbf16ps (AVX512_BF16: 16 lanes × 2
 * products = 64 FLOP per instruction) in a loop with nothing else, on 1 and 2 threads;
 * beside it the f32 FMA peak (vfmadd231ps, 32 FLOP) the same way. Reported per wall
 * second and per CPU-second of the threads (the second is what a core does while it runs,
 * which a busy shared machine does not disturb).
 *
 * Products: cks_matmul (metrics/gemm.h) at the stories110M layer shapes (4096 rows: q|k|v
 * 2304 × 768, o 768 × 768; 1024 rows: gate|up 4096 × 768, down 768 × 2048; 512 rows:
 * one 4096-column lm_head block) in f32 (oneDNN sgemm) and in bf16 with each kernel (ours,
 * oneDNN's matmul, the emulated f32 one), with the activations' rounding included; GFLOP/s
 * and the fraction of the bf16 peak measured in the same run.
 *
 * usage: bench_bf16 [--threads 1,2] [--reps N] */
#include "bf16.h"
#include "gemm.h"

#include <getopt.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#if CKS_BF16_X86
#include <immintrin.h>
#endif

#define ITERS 20000000L

#if CKS_BF16_X86
static double cpu_now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return (double)t.tv_sec + t.tv_nsec * 1e-9;
}

__attribute__((target("avx512f,avx512bw,avx512bf16"), noinline)) static float peak_bf16(long iters)
{
    __m512 acc[24];
    __m512bh a = (__m512bh)_mm512_set1_epi32(0x3f803f80), b = a;
    for (int i = 0; i < 24; i++)
        acc[i] = _mm512_setzero_ps();
    for (long it = 0; it < iters; it++) {
#pragma GCC unroll 24
        for (int i = 0; i < 24; i++)
            acc[i] = _mm512_dpbf16_ps(acc[i], a, b);
        __asm__ volatile("" : "+v"(a)); /* keeps the loop from being folded */
    }
    __m512 s = acc[0];
    for (int i = 1; i < 24; i++)
        s = _mm512_add_ps(s, acc[i]);
    return _mm512_reduce_add_ps(s);
}

__attribute__((target("avx512f"), noinline)) static float peak_f32(long iters)
{
    __m512 acc[24], a = _mm512_set1_ps(1.0f), b = _mm512_set1_ps(1e-9f);
    for (int i = 0; i < 24; i++)
        acc[i] = _mm512_setzero_ps();
    for (long it = 0; it < iters; it++) {
#pragma GCC unroll 24
        for (int i = 0; i < 24; i++)
            acc[i] = _mm512_fmadd_ps(a, b, acc[i]);
        __asm__ volatile("" : "+v"(a));
    }
    __m512 s = acc[0];
    for (int i = 1; i < 24; i++)
        s = _mm512_add_ps(s, acc[i]);
    return _mm512_reduce_add_ps(s);
}
#endif

/* GFLOP/s per wall second (*cpu: per CPU-second of all threads) of the peak loop. */
static double peak(int bf16, int threads, double *cpu)
{
#if CKS_BF16_X86
    double t0 = omp_get_wtime(), cs = 0;
    float sink = 0;
#pragma omp parallel num_threads(threads) reduction(+ : sink, cs)
    {
        double c0 = cpu_now();
        sink += bf16 ? peak_bf16(ITERS) : peak_f32(ITERS);
        cs += cpu_now() - c0;
    }
    double flop = (double)threads * ITERS * 24.0 * (bf16 ? 64.0 : 32.0), dt = omp_get_wtime() - t0;
    *cpu = flop / cs * 1e-9 * threads;
    return sink == 12345.0f ? 0 : flop / dt * 1e-9;
#else
    (void)bf16, (void)threads;
    *cpu = 0;
    return 0;
#endif
}

typedef struct {
    const char *name;
    int64_t m, n, k;
} shape;

static double proc_cpu(void)
{
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return (double)t.tv_sec + t.tv_nsec * 1e-9;
}

/* Best GFLOP/s of reps products (input rounding included); *cpu: per CPU-second of the
 * process (threads waiting at a barrier count). */
static double product(cks_precision p, cks_bf16_kernel kern, const shape *s, int threads, int reps,
                      int *ran, double *cpu)
{
    cks_mm mm;
    cks_wmat w;
    void *buf = NULL;
    int bad = 0;
    *ran = 0;
    if (cks_mm_init(&mm, p, kern) != 0 || (p == CKS_PRECISION_BF16 && mm.kernel != kern)) {
        cks_mm_release(&mm); /* this CPU cannot run the kernel */
        return 0;
    }
    float *A = malloc(sizeof(float) * (size_t)(s->m * s->k)),
          *W = malloc(sizeof(float) * (size_t)(s->n * s->k)),
          *C = malloc(sizeof(float) * (size_t)(s->m * s->n));
    size_t bytes = cks_wmat_bytes(&mm, s->n, s->k, &bad);
    if (!A || !W || !C || bad || posix_memalign(&buf, 64, bytes) != 0) {
        fprintf(stderr, "bench_bf16: out of memory\n");
        exit(1);
    }
    for (int64_t i = 0; i < s->m * s->k; i++)
        A[i] = (float)((i * 7919) % 2001) * 1e-3f - 1.0f;
    for (int64_t i = 0; i < s->n * s->k; i++)
        W[i] = (float)((i * 104729) % 2001) * 1e-4f - 0.1f;
    cks_wmat_init(&w, &mm, buf, s->n, s->k);
    cks_wmat_fill(&w, 0, s->n * s->k, CKS_DT_F32, W);
    double best = 1e30, bcpu = 1e30;
    for (int r = 0; r <= reps; r++) { /* the first is a warm-up */
        double t0 = omp_get_wtime(), c0 = proc_cpu();
        cks_matmul(&mm, &w, 0, s->n, s->m, A, s->k, 0.0f, C, s->n, threads);
        double dt = omp_get_wtime() - t0, dc = proc_cpu() - c0;
        if (r > 0 && dt < best)
            best = dt;
        if (r > 0 && dc < bcpu)
            bcpu = dc;
    }
    *cpu = 2.0 * (double)s->m * (double)s->n * (double)s->k / bcpu * 1e-9 * threads;
    free(buf);
    free(C);
    free(W);
    free(A);
    cks_mm_release(&mm);
    *ran = 1;
    return 2.0 * (double)s->m * (double)s->n * (double)s->k / best * 1e-9;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {{"threads", 1, 0, 'T'}, {"reps", 1, 0, 'r'}, {0, 0, 0, 0}};
    int th[2] = {1, 1}, reps = 5, c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (c == 'T') {
            th[0] = strchr(optarg, '1') != NULL;
            th[1] = strchr(optarg, '2') != NULL;
        } else if (c == 'r' && atoi(optarg) > 0) {
            reps = atoi(optarg);
        } else {
            fprintf(stderr, "usage: bench_bf16 [--threads 1,2] [--reps N]\n");
            return 2;
        }
    }
    double load[1] = {-1};
    getloadavg(load, 1);
    printf("bf16 dot-product peak and weight products; AVX512_BF16: %s; load %.2f\n",
           cks_cpu_has_avx512_bf16() ? "yes" : "no", load[0]);
    const shape shapes[] = {{"q|k|v", 4096, 2304, 768},
                            {"o", 4096, 768, 768},
                            {"gate|up", 1024, 4096, 768},
                            {"down", 1024, 768, 2048},
                            {"lm_head", 512, 4096, 768}};
    for (int t = 1; t <= 2; t++) {
        if (!th[t - 1])
            continue;
        double cb, cf, pb = peak(1, t, &cb), pf = peak(0, t, &cf);
        printf("\n%d thread(s): vdpbf16ps peak %.1f GFLOP/s (%.1f per CPU-second of the "
               "threads), vfmadd231ps f32 peak %.1f (%.1f)\n",
               t, pb, cb, pf, cf);
        printf("%-8s %16s %8s %8s %8s %8s | %8s %8s | %11s %10s\n", "product", "m x n x k", "f32",
               "avx512", "onednn", "emulated", "avx512", "onednn", "avx512/peak", "(CPU-time)");
        for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
            const shape *s = &shapes[i];
            double g[4], gc[4];
            int ran[4];
            g[0] = product(CKS_PRECISION_F32, CKS_BF16_AUTO, s, t, reps, &ran[0], &gc[0]);
            for (int k = CKS_BF16_AVX512; k <= CKS_BF16_EMULATED; k++)
                g[k] = product(CKS_PRECISION_BF16, (cks_bf16_kernel)k, s, t, reps, &ran[k], &gc[k]);
            char dims[32];
            snprintf(dims, sizeof dims, "%lldx%lldx%lld", (long long)s->m, (long long)s->n,
                     (long long)s->k);
            printf("%-8s %16s", s->name, dims);
            for (int k = 0; k < 6; k++) { /* four per wall second, two per CPU-second */
                const int r = k < 4 ? k : k - 3;
                if (k == 4)
                    printf(" |");
                if (ran[r])
                    printf(" %8.1f", k < 4 ? g[r] : gc[r]);
                else
                    printf(" %8s", "-");
            }
            printf(" | %11.2f %10.2f\n", ran[1] && pb > 0 ? g[1] / pb : 0.0,
                   ran[1] && cb > 0 ? gc[1] / cb : 0.0);
            fflush(stdout);
        }
    }
    getloadavg(load, 1);
    printf("\nGFLOP/s per wall second (f32 and the three bf16 kernels), then per CPU-second of the "
           "process (ours, oneDNN's), best of %d; avx512/peak: ours against the peak per wall "
           "second, and per CPU-second; load at the end %.2f\n",
           reps, load[0]);
    return 0;
}
