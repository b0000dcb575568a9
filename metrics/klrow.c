/* KL divergence, nll and argmax of two logits rows streamed by column blocks, in float64
 * (the algebra is in klrow.h). The per-block loop is compiled for AVX-512, AVX2 and
 * baseline x86-64 and picked at load time, as in vmath.c. */
#include "klrow.h"

#include <assert.h>
#include <math.h>
#include <string.h>

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && \
    !defined(__SANITIZE_ADDRESS__)
#define CKS_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define CKS_CLONES
#endif

/* exp(x) = 2^n exp(r), n = round(x / ln 2), r = x − n ln 2 in two parts (Cody & Waite;
 * fdlibm's ln2_hi/ln2_lo, ln2_hi having enough trailing zeros that n·ln2_hi is exact for
 * |n| < 2^11), |r| <= ln2/2 = 0.3466; exp(r) by its Taylor series through r^13/13!, whose
 * remainder r^14/14! < 4e-18 is far below the float64 rounding of the Horner steps.
 * n is rounded by adding 1.5·2^52, which leaves it in the low bits of the sum, from where
 * 2^n is built with integer adds and shifts: no float-to-integer conversion, which x86
 * vectorises only with AVX-512DQ. Branch-free, so that the loops calling it vectorise. */
static inline double exp_d(double x)
{
    const double lo = -708.0, hi = 709.0, shift = 0x1.8p52;
    double c = x > lo ? x : lo; /* NaN becomes lo here; restored below */
    c = c < hi ? c : hi;
    union {
        double d;
        uint64_t u;
    } k = {.d = c * 1.4426950408889634074 + shift}, s; /* a union, not memcpy: under omp
                                                           simd GCC vectorises only this */
    double n = k.d - shift;
    double r = c - n * 6.93147180369123816490e-01;
    r = r - n * 1.90821492927058770002e-10;
    double p = 1.0 / 6227020800.0; /* 1/13! */
    p = p * r + 1.0 / 479001600.0;
    p = p * r + 1.0 / 39916800.0;
    p = p * r + 1.0 / 3628800.0;
    p = p * r + 1.0 / 362880.0;
    p = p * r + 1.0 / 40320.0;
    p = p * r + 1.0 / 5040.0;
    p = p * r + 1.0 / 720.0;
    p = p * r + 1.0 / 120.0;
    p = p * r + 1.0 / 24.0;
    p = p * r + 1.0 / 6.0;
    p = p * r + 0.5;
    p = p * r + 1.0;
    p = p * r + 1.0;
    s.u = (k.u + 1023) << 52; /* 2^n: the low bits of k.u are n, n in [-1022, 1023] */
    double v = x < lo ? 0.0 : p * s.d;
    return x == x ? v : x;
}

double cks_kl_exp(double x)
{
    return exp_d(x);
}

void cks_klrow_init(cks_klrow *r, int32_t y)
{
    memset(r, 0, sizeof *r);
    r->ma = r->mb = -INFINITY;
    r->maxa = r->maxb = -INFINITY;
    r->arga = r->argb = -1;
    r->ya = r->yb = NAN;
    r->y = y;
}

/* Largest element of x[0..n) (NaN skipped; -inf when there is none) and whether x holds
 * a NaN or +inf (a row that cannot be a distribution). */
CKS_CLONES static float block_max(const float *x, int64_t n, int *bad)
{
    float m = -INFINITY;
    int b = 0;
#pragma omp simd reduction(max : m) reduction(| : b)
    for (int64_t i = 0; i < n; i++) {
        m = x[i] > m ? x[i] : m;
        b |= !(x[i] < INFINITY);
    }
    *bad |= b;
    return m;
}

/* The first index of the value m in x (it is there). */
static int64_t first_of(const float *x, int64_t n, float m)
{
    int64_t i = 0;
    while (i < n && x[i] != m)
        i++;
    return i;
}

/* Σ exp(a − ma), Σ exp(b − mb), Σ exp(a − ma)(a − b) over the block. */
CKS_CLONES static void block_sums(const float *a, const float *b, int64_t n, double ma, double mb,
                                  double *sa, double *sb, double *w)
{
    double s1 = 0, s2 = 0, s3 = 0;
#pragma omp simd reduction(+ : s1, s2, s3)
    for (int64_t i = 0; i < n; i++) {
        double x = a[i], z = b[i];
        double ea = exp_d(x - ma);
        s1 += ea;
        s2 += exp_d(z - mb);
        s3 += ea > 0 ? ea * (x - z) : 0.0; /* P_c(v) = 0 adds nothing, whatever a − b is */
    }
    *sa += s1;
    *sb += s2;
    *w += s3;
}

void cks_klrow_update(cks_klrow *r, const float *a, const float *b, int64_t col0, int64_t n)
{
    assert(col0 == r->next && n >= 1);
    int bad = 0;
    float bma = block_max(a, n, &bad), bmb = block_max(b, n, &bad);
    if (bad)
        r->sa = NAN;     /* sticks through every later sum */
    if (bma > r->maxa) { /* strictly: an equal value later keeps the lower id */
        r->maxa = bma;
        r->arga = (int32_t)(col0 + first_of(a, n, bma));
    }
    if (bmb > r->maxb) {
        r->maxb = bmb;
        r->argb = (int32_t)(col0 + first_of(b, n, bmb));
    }
    double ma = r->maxa, mb = r->maxb;
    if (ma > r->ma) { /* rescale the sums kept relative to the old maximum */
        double s = exp_d(r->ma - ma);
        r->sa *= s;
        r->w *= s;
        r->ma = ma;
    }
    if (mb > r->mb) {
        r->sb *= exp_d(r->mb - mb);
        r->mb = mb;
    }
    if (r->ma > -INFINITY && r->mb > -INFINITY) /* else every term so far is 0 */
        block_sums(a, b, n, r->ma, r->mb, &r->sa, &r->sb, &r->w);
    if (r->y >= col0 && r->y < col0 + n) {
        r->ya = a[r->y - col0];
        r->yb = b[r->y - col0];
    }
    r->next = col0 + n;
}

void cks_klrow_finish(const cks_klrow *r, int64_t vocab, cks_klpos *out)
{
    assert(r->next == vocab);
    (void)vocab;
    out->arg_c = r->arga;
    out->arg_t = r->argb;
    out->y = r->y;
    if (!(r->ma > -INFINITY && r->mb > -INFINITY) || isnan(r->sa)) {
        out->kl = out->nll_c = out->nll_t = NAN;
        return;
    }
    double la = log(r->sa), lb = log(r->sb);
    double kl = r->w / r->sa - (r->ma - r->mb) - (la - lb);
    out->kl = kl < 0 ? 0.0 : kl;
    out->nll_c = r->ma + la - r->ya;
    out->nll_t = r->mb + lb - r->yb;
}

void cks_kl_block(cks_klrow *rows, int64_t nrows, const float *a, int64_t lda, const float *b,
                  int64_t ldb, int64_t col0, int64_t n, int nthreads)
{
    int nt = nthreads > 0 ? nthreads : 1;
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1 && nrows > 1)
    for (int64_t i = 0; i < nrows; i++)
        cks_klrow_update(&rows[i], a + i * lda, b + i * ldb, col0, n);
}
