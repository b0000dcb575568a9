/* bench_kl: what the function-space comparison costs beside the lm_head it follows.
 * Per position and vocabulary entry: cks_kl_block (KL, both logsumexps, argmaxes; float64
 * exps) fed in column blocks as the forward pass produces them, live (both checkpoints'
 * blocks in buffers) and against a kept base (klkeep.h: compare, then put t in its
 * place), beside the float32 logsumexp the perplexity path already does per row
 * (cks_vlogsumexp) and the lm_head GEMM that makes the logits (cks_sgemm); then the block
 * bootstrap of a set's dnll. It measures; it never passes or fails.
 *
 * Times are CPU seconds (below). usage: bench_kl [rows] [threads]   (default 512 rows, 1
 * thread) */
#include "bootstrap.h"
#include "error.h"
#include "gemm.h"
#include "klkeep.h"
#include "klrow.h"
#include "vmath.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

/* CPU time of the process, not wall-clock: on a machine shared with other jobs a wall
 * clock counts the time slices others took (at load 18 on 2 cores it varied tenfold);
 * with threads > 1 it is the sum over threads. */
static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void fill(float *p, size_t n, unsigned s, float scale)
{
    for (size_t i = 0; i < n; i++) {
        s = s * 1664525u + 1013904223u;
        p[i] = ((float)((s >> 8) & 0xffff) / 65536.0f - 0.5f) * scale;
    }
}

/* Best of 5 seconds of f() over rows × vocab entries. */
#define BEST(var, stmt)                        \
    do {                                       \
        for (int rep_ = 0; rep_ < 5; rep_++) { \
            double t0_ = now();                \
            stmt;                              \
            double dt_ = now() - t0_;          \
            var = dt_ < var ? dt_ : var;       \
        }                                      \
    } while (0)

static void one_shape(const char *name, int64_t rows, int64_t vocab, int64_t hidden, int64_t vblock,
                      int threads)
{
    size_t blk = (size_t)(rows * vblock);
    float *a = malloc(blk * sizeof *a), *b = malloc(blk * sizeof *b);
    float *h = malloc((size_t)(rows * hidden) * sizeof *h),
          *w = malloc((size_t)(vblock * hidden) * sizeof *w);
    cks_klrow *r = malloc((size_t)rows * sizeof *r);
    cks_klkeep *keep = NULL;
    fill(a, blk, 1, 16.0f);
    fill(b, blk, 2, 16.0f);
    fill(h, (size_t)(rows * hidden), 3, 1.0f);
    fill(w, (size_t)(vblock * hidden), 4, 0.1f);
    if (cks_klkeep_new(&keep, rows, vocab, 0, NULL) != 0) {
        fprintf(stderr, "bench_kl: %s\n", cks_error_last());
        exit(1);
    }
    for (int64_t c0 = 0; c0 < vocab; c0 += vblock) /* a kept base */
        cks_klkeep_put(keep, 0, rows, c0, vocab - c0 < vblock ? vocab - c0 : vblock, a, vblock);
    double live = 1e30, kept = 1e30, lse = 1e30, gemm = 1e30, sink = 0;
    /* live: both checkpoints' logits blocks in the forward pass's buffers (rows × vblock,
       the same buffer for every block, as the lm_head loop reuses it) */
    BEST(live, {
        for (int64_t i = 0; i < rows; i++)
            cks_klrow_init(&r[i], (int32_t)(i % vocab));
        for (int64_t c0 = 0; c0 < vocab; c0 += vblock) {
            int64_t n = vocab - c0 < vblock ? vocab - c0 : vblock;
            cks_kl_block(r, rows, a, vblock, b, vblock, c0, n, threads);
        }
    });
    /* kept: the base from the store, t from the buffer, then t put in its place */
    BEST(kept, {
        for (int64_t i = 0; i < rows; i++)
            cks_klrow_init(&r[i], (int32_t)(i % vocab));
        for (int64_t c0 = 0; c0 < vocab; c0 += vblock) {
            int64_t n = vocab - c0 < vblock ? vocab - c0 : vblock;
            cks_klkeep_compare(keep, r, 0, rows, c0, n, b, vblock, threads);
            cks_klkeep_put(keep, 0, rows, c0, n, b, vblock);
        }
    });
    cks_klpos p;
    cks_klrow_finish(&r[0], vocab, &p);
    sink += p.kl;
    BEST(lse, {
        for (int64_t c0 = 0; c0 < vocab; c0 += vblock)
            for (int64_t i = 0; i < rows; i++)
                sink += cks_vlogsumexp(b + i * vblock, vocab - c0 < vblock ? vocab - c0 : vblock);
    });
    BEST(gemm, {
        for (int64_t c0 = 0; c0 < vocab; c0 += vblock)
            cks_sgemm('N', 'T', rows, vocab - c0 < vblock ? vocab - c0 : vblock, hidden, 1.0f, h,
                      hidden, w, hidden, 0.0f, a, vblock, threads);
    });
    double per = (double)rows * (double)vocab * 1e-9;
    printf("%-15s vocab %6lld hidden %5lld (%lld rows, blocks of %lld): KL live %5.2f, kept "
           "%5.2f ns/entry; f32 logsumexp %5.2f; lm_head GEMM %7.2f ns/entry; kept base %zu "
           "bytes/position (%d thread%s)%s\n",
           name, (long long)vocab, (long long)hidden, (long long)rows, (long long)vblock,
           live / per, kept / per, lse / per, gemm / per, cks_klkeep_bytes_per_position(vocab),
           threads, threads == 1 ? "" : "s", sink == 12345.678 ? "!" : "");
    cks_klkeep_free(keep);
    free(a);
    free(b);
    free(h);
    free(w);
    free(r);
}

static void bootstrap(int64_t positions)
{
    double *v = malloc((size_t)positions * sizeof *v), lo, hi;
    int64_t docs = positions / 1000, *dp = malloc((size_t)docs * sizeof *dp);
    for (int64_t i = 0; i < positions; i++)
        v[i] = (double)(i % 97) / 97.0 - 0.4;
    for (int64_t d = 0; d < docs; d++)
        dp[d] = 1000;
    double t0 = now();
    cks_bootstrap_mean(&lo, &hi, v, docs * 1000, dp, docs, NULL);
    printf("bootstrap: %lld positions in %lld documents (%lld blocks), B = 1000: %.3f s "
           "[%.4f, %.4f]\n",
           (long long)(docs * 1000), (long long)docs, (long long)(docs * 4), now() - t0, lo, hi);
    free(v);
    free(dp);
}

int main(int argc, char **argv)
{
    int64_t rows = argc > 1 ? strtoll(argv[1], NULL, 10) : 512;
    int threads = argc > 2 ? (int)strtol(argv[2], NULL, 10) : 1;
    if (rows < 1 || threads < 1) {
        fprintf(stderr, "usage: bench_kl [rows] [threads]\n");
        return 2;
    }
    one_shape("demo", rows, 768, 56, 768, threads);
    one_shape("LLaMA-2/Amber", rows, 32000, 4096, 4096, threads);
    one_shape("K2", rows, 32032, 8192, 4096, threads);
    one_shape("Pythia-12B", rows, 50304, 5120, 4096, threads);
    bootstrap(100000);
    bootstrap(10000000);
    return 0;
}
