/* Our own AVX512_BF16 matrix kernel (see gemm_bf16.h): operand packing and a 14 × 32
 * register-blocked micro-kernel driven over cache-sized tiles (Goto & van de Geijn,
 * "Anatomy of high-performance matrix multiplication", ACM TOMS 34(3), 2008; the BLIS
 * loop order: a KC × NR panel of W stays in L1 while MC rows of A stream from L2). */
#include "gemm_bf16.h"

#include <assert.h>
#include <omp.h>
#include <string.h>

#if CKS_BF16_X86
#include <immintrin.h>
#endif

#define MR CKS_BF16_MR
#define NR CKS_BF16_NR
/* k pairs per block: up to k = 2048 in one pass. Measured (bench_bf16): blocking k at 192 or
 * 384 pairs to keep the W micro-panel in L1 ran 10-20 % slower; the micro-kernel streams it
 * from L2 fast enough, and each C element is then written once. */
#define KCP 1024
#define MCP 24 /* A micro-panels per tile (336 rows) */
#define NCP 8  /* W panels per tile (256 columns of C) */

static inline int64_t cdiv(int64_t a, int64_t b)
{
    return (a + b - 1) / b;
}

size_t cks_bf16_packed_w_elems(int64_t n, int64_t k)
{
    return (size_t)cdiv(n, NR) * NR * (size_t)(2 * cdiv(k, 2));
}

size_t cks_bf16_packed_a_elems(int64_t m, int64_t k)
{
    return (size_t)cdiv(m, MR) * MR * (size_t)(2 * cdiv(k, 2));
}

/* Element (r, c) of W in its packed form. */
static inline size_t w_at(int64_t kp, int64_t r, int64_t c)
{
    return (size_t)((r / NR) * kp * NR * 2 + (c / 2) * NR * 2 + (r % NR) * 2 + (c & 1));
}

void cks_bf16_pack_w_pad(uint16_t *pw, int64_t n, int64_t k)
{
    const int64_t kp = cdiv(k, 2), npad = cdiv(n, NR) * NR;
    for (int64_t r = n; r < npad; r++)
        for (int64_t c = 0; c < 2 * kp; c++)
            pw[w_at(kp, r, c)] = 0;
    if (k & 1)
        for (int64_t r = 0; r < n; r++)
            pw[w_at(kp, r, k)] = 0;
}

void cks_bf16_pack_w(uint16_t *pw, int64_t n, int64_t k, int64_t e0, int64_t ne,
                     const uint16_t *src)
{
    const int64_t kp = cdiv(k, 2);
    assert(e0 >= 0 && ne >= 0 && e0 + ne <= n * k);
    for (int64_t e = e0; e < e0 + ne;) {
        const int64_t r = e / k, c0 = e % k;
        const int64_t c1 = k < c0 + (e0 + ne - e) ? k : c0 + (e0 + ne - e);
        uint16_t *lane = pw + (r / NR) * kp * NR * 2 + (r % NR) * 2;
        const uint16_t *s = src + (e - e0);
        int64_t c = c0;
        if (c & 1) { /* the second half of a pair */
            lane[(c / 2) * NR * 2 + 1] = *s++;
            c++;
        }
        for (; c + 1 < c1; c += 2, s += 2)
            memcpy(lane + (c / 2) * NR * 2, s, 2 * sizeof *s);
        if (c < c1) /* the first half of a pair */
            lane[(c / 2) * NR * 2] = *s;
        e += c1 - c0;
    }
}

/* Pairs [p0, kp) of row r of a micro-panel from the f32 row (k elements), one at a time. */
static void pack_a_pairs(uint32_t *dst, const float *row, int64_t k, int64_t r, int64_t p0)
{
    for (int64_t p = p0; p < cdiv(k, 2); p++) {
        uint32_t lo = cks_bf16_round(row[2 * p]);
        uint32_t hi = 2 * p + 1 < k ? cks_bf16_round(row[2 * p + 1]) : 0; /* odd k: pad */
        dst[p * MR + r] = lo | hi << 16;
    }
}

#if CKS_BF16_X86
/* 16 pairs (32 columns) of each row at a time: rounded in registers and scattered to the
 * row's lane (measured 1.8x faster than rounding a row into a buffer and copying it out). */
__attribute__((target("avx512f,avx512bw"))) static int64_t
pack_a_avx512(uint32_t *dst, const float *row, int64_t k, int64_t r)
{
    const __m512i idx =
        _mm512_mullo_epi32(_mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
                           _mm512_set1_epi32(MR));
    int64_t c = 0;
    for (; c + 32 <= k; c += 32) {
        __m512i v =
            _mm512_inserti64x4(_mm512_castsi256_si512(cks_bf16_round16(_mm512_loadu_ps(row + c))),
                               cks_bf16_round16(_mm512_loadu_ps(row + c + 16)), 1);
        _mm512_i32scatter_epi32(dst + (c / 2) * MR + r, idx, v, 4);
    }
    return c / 2;
}
#endif

/* One micro-panel of A: rows r0 .. r0+MR-1 (those < m; the others zero), pair by pair. */
static void pack_a_panel(uint32_t *dst, const float *A, int64_t lda, int64_t m, int64_t k,
                         int64_t r0, int simd)
{
    for (int64_t r = 0; r < MR; r++) {
        if (r0 + r >= m) {
            for (int64_t p = 0; p < cdiv(k, 2); p++)
                dst[p * MR + r] = 0;
            continue;
        }
        const float *row = A + (r0 + r) * lda;
        int64_t p0 = 0;
#if CKS_BF16_X86
        if (simd)
            p0 = pack_a_avx512(dst, row, k, r);
#endif
        pack_a_pairs(dst, row, k, r, p0);
    }
}

void cks_bf16_pack_a(uint16_t *pa, const float *A, int64_t lda, int64_t m, int64_t k, int nthreads)
{
    const int64_t kp = cdiv(k, 2), np = cdiv(m, MR);
    uint32_t *dst = (uint32_t *)(void *)pa;
    const int simd = CKS_BF16_X86 && cks_cpu_has_avx512_bf16();
#pragma omp parallel for num_threads(nthreads < 1 ? 1 : nthreads) schedule(static)
    for (int64_t i = 0; i < np; i++)
        pack_a_panel(dst + i * kp * MR, A, lda, m, k, i * MR, simd);
}

#if CKS_BF16_X86
#define TARGET_BF16 __attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16")))

/* C[0..mr)[0..32) (+)= the kp pairs of a (MR dwords each) times those of b (NR dwords
 * each); columns past the masks are left alone. */
TARGET_BF16 static void ukernel(int64_t kp, const uint32_t *restrict a, const uint32_t *restrict b,
                                float *c, int64_t ldc, int mr, __mmask16 m0, __mmask16 m1, int add)
{
    __m512 acc[MR][2];
#pragma GCC unroll 14
    for (int i = 0; i < MR; i++)
        acc[i][0] = acc[i][1] = _mm512_setzero_ps();
    for (int64_t p = 0; p < kp; p++) {
        const __m512bh b0 = (__m512bh)_mm512_load_si512(b),
                       b1 = (__m512bh)_mm512_load_si512(b + 16);
#pragma GCC unroll 14
        for (int i = 0; i < MR; i++) {
            const __m512bh ai = (__m512bh)_mm512_set1_epi32((int)a[i]);
            acc[i][0] = _mm512_dpbf16_ps(acc[i][0], ai, b0);
            acc[i][1] = _mm512_dpbf16_ps(acc[i][1], ai, b1);
        }
        a += MR;
        b += NR;
    }
#pragma GCC unroll 14
    for (int i = 0; i < MR; i++) {
        if (i >= mr)
            break;
        float *ci = c + i * ldc;
        if (add) {
            acc[i][0] = _mm512_add_ps(acc[i][0], _mm512_maskz_loadu_ps(m0, ci));
            acc[i][1] = _mm512_add_ps(acc[i][1], _mm512_maskz_loadu_ps(m1, ci + 16));
        }
        _mm512_mask_storeu_ps(ci, m0, acc[i][0]);
        _mm512_mask_storeu_ps(ci + 16, m1, acc[i][1]);
    }
}

/* One tile of C: A micro-panels [ip0, ip1), W panels [jp0, jp1) (relative to j0). */
TARGET_BF16 static void tile(int64_t m, int64_t kp, int64_t nn, const uint32_t *A,
                             const uint32_t *W, int64_t ip0, int64_t ip1, int64_t jp0, int64_t jp1,
                             int beta, float *C, int64_t ldc)
{
    for (int64_t pc = 0; pc < kp; pc += KCP) {
        const int64_t kc = kp - pc < KCP ? kp - pc : KCP;
        for (int64_t jp = jp0; jp < jp1; jp++) {
            const int64_t cols = nn - jp * NR < NR ? nn - jp * NR : NR;
            const __mmask16 m0 = cols >= 16 ? 0xffff : (__mmask16)((1u << cols) - 1);
            const __mmask16 m1 = cols >= 32   ? 0xffff
                                 : cols <= 16 ? 0
                                              : (__mmask16)((1u << (cols - 16)) - 1);
            const uint32_t *b = W + jp * kp * NR + pc * NR;
            for (int64_t ip = ip0; ip < ip1; ip++) {
                const int64_t rows = m - ip * MR < MR ? m - ip * MR : MR;
                ukernel(kc, A + ip * kp * MR + pc * MR, b, C + ip * MR * ldc + jp * NR, ldc,
                        (int)rows, m0, m1, pc > 0 || beta);
            }
        }
    }
}
#endif

#if CKS_BF16_X86
/* The threads as a grid: tn_threads × (nt / tn_threads), tn_threads the largest divisor of
 * nt that has a W panel for each (split the columns first: each thread then streams only
 * its own W panels, and the rows only when there are more threads than panels). */
static int column_threads(int nt, int64_t np)
{
    for (int d = nt; d > 1; d--)
        if (nt % d == 0 && d <= np)
            return d;
    return 1;
}

/* Thread t's share: W panels [jp0, jp1), A micro-panels [ip0, ip1), balanced to one panel
 * (measured: static tiles of 24 × 8 panels left one of two threads 10-20 % more of the
 * o and down products), walked in MCP × NCP tiles. */
static void share(int64_t m, int64_t kp, int64_t nn, const uint32_t *A, const uint32_t *W, int t,
                  int nt, int beta, float *C, int64_t ldc)
{
    const int64_t mp = cdiv(m, MR), np = cdiv(nn, NR);
    const int tnt = column_threads(nt, np), tmt = nt / tnt;
    const int64_t jp0 = np * (t % tnt) / tnt, jp1 = np * (t % tnt + 1) / tnt;
    const int64_t ip0 = mp * (t / tnt) / tmt, ip1 = mp * (t / tnt + 1) / tmt;
    for (int64_t j = jp0; j < jp1; j += NCP)
        for (int64_t i = ip0; i < ip1; i += MCP)
            tile(m, kp, nn, A, W, i, i + MCP < ip1 ? i + MCP : ip1, j,
                 j + NCP < jp1 ? j + NCP : jp1, beta, C, ldc);
}
#endif

void cks_bf16_gemm_packed(int64_t m, int64_t n, int64_t k, int64_t j0, int64_t nn,
                          const uint16_t *pa, const uint16_t *pw, float beta, float *C, int64_t ldc,
                          int nthreads)
{
    assert(j0 % NR == 0 && j0 + nn <= n && (beta == 0.0f || beta == 1.0f));
#if CKS_BF16_X86
    const int64_t kp = cdiv(k, 2);
    const int nt = nthreads < 1 ? 1 : nthreads;
    const uint32_t *A = (const uint32_t *)(const void *)pa;
    const uint32_t *W = (const uint32_t *)(const void *)pw + (j0 / NR) * kp * NR;
    if (m == 0 || nn == 0)
        return;
#pragma omp parallel num_threads(nt)
    share(m, kp, nn, A, W, omp_get_thread_num(), omp_get_num_threads(), beta != 0.0f, C, ldc);
#else
    (void)m, (void)n, (void)k, (void)nn, (void)pa, (void)pw, (void)C, (void)ldc, (void)nthreads;
    assert(!"the AVX512_BF16 kernel is not compiled in");
#endif
}
