/* bench_gemm: sgemm GFLOP/s of oneDNN and OpenBLAS on the projection shapes of a LLaMA
 * layer (C = X Wᵀ with X tokens×in, W out×in), on 1 and 2 threads. The figures decide
 * CKS_GEMM_DEFAULT in metrics/gemm.h. It measures; it never passes or fails.
 *
 * usage: bench_gemm [M] [reps]   (M = tokens per product, default 2048) */
#include "gemm.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void fill(float *p, size_t n, unsigned s)
{
    for (size_t i = 0; i < n; i++) {
        s = s * 1664525u + 1013904223u;
        p[i] = (float)((s >> 8) & 0xffff) / 65536.0f - 0.5f;
    }
}

/* Best-of-reps GFLOP/s of C(M×N) = A(M×K) B(N×K)ᵀ. */
static double measure(cks_gemm_backend b, int64_t M, int64_t N, int64_t K, int threads, int reps,
                      const float *A, const float *B, float *C)
{
    double best = 1e30;
    cks_sgemm_with(b, 'N', 'T', M, N, K, 1.0f, A, K, B, K, 0.0f, C, N, threads); /* warm */
    for (int r = 0; r < reps; r++) {
        double t0 = now();
        cks_sgemm_with(b, 'N', 'T', M, N, K, 1.0f, A, K, B, K, 0.0f, C, N, threads);
        double dt = now() - t0;
        if (dt < best)
            best = dt;
    }
    return 2.0 * (double)M * (double)N * (double)K / best * 1e-9;
}

int main(int argc, char **argv)
{
    int64_t M = argc > 1 ? strtoll(argv[1], NULL, 10) : 2048;
    int reps = argc > 2 ? atoi(argv[2]) : 5;
    /* (N, K): q/k/v/o of dim 768, gate/up 768->2048, down 2048->768, lm_head 768->32000 */
    static const int64_t shapes[][2] = {{768, 768}, {2048, 768}, {768, 2048}, {32000, 768}};
    const int nshapes = (int)(sizeof shapes / sizeof shapes[0]);
    const char *env = getenv("OPENBLAS_CORETYPE");
    if (M < 1 || reps < 1) {
        fprintf(stderr, "usage: bench_gemm [M] [reps]\n");
        return 2;
    }
    size_t maxa = (size_t)M * 2048, maxb = (size_t)32000 * 2048, maxc = (size_t)M * 32000;
    float *A = malloc(maxa * sizeof *A), *B = malloc(maxb * sizeof *B),
          *C = malloc(maxc * sizeof *C);
    if (!A || !B || !C) {
        fprintf(stderr, "bench_gemm: out of memory\n");
        return 1;
    }
    fill(A, maxa, 1);
    fill(B, maxb, 2);
    printf("sgemm C = X W^T, M = %lld tokens, best of %d; OPENBLAS_CORETYPE=%s\n", (long long)M,
           reps, env ? env : "(unset)");
    printf("%-10s %7s %7s %8s %12s %12s\n", "backend", "N", "K", "threads", "GFLOP/s", "ms");
    for (int b = 0; b < CKS_GEMM_COUNT; b++)
        for (int th = 1; th <= 2; th++)
            for (int s = 0; s < nshapes; s++) {
                int64_t N = shapes[s][0], K = shapes[s][1];
                double gf = measure((cks_gemm_backend)b, M, N, K, th, reps, A, B, C);
                printf("%-10s %7lld %7lld %8d %12.1f %12.2f\n",
                       cks_gemm_backend_name((cks_gemm_backend)b), (long long)N, (long long)K, th,
                       gf, 2.0 * (double)M * (double)N * (double)K / gf * 1e-6);
            }
    printf("default backend: %s\n", cks_gemm_backend_name(CKS_GEMM_DEFAULT));
    free(A);
    free(B);
    free(C);
    return 0;
}
