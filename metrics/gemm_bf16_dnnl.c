/* The bf16 product through oneDNN's matmul primitive (see gemm_bf16.h): bf16 source and
 * weights, f32 destination, the weights read in their stored row-major layout ("ba" for
 * the K × N operand), beta = 1 as a sum post-op. A primitive is made for each call;
 * oneDNN's primitive cache returns the compiled kernel of a shape seen before. */
#include "gemm_bf16.h"
#include "error.h"

#include <oneapi/dnnl/dnnl.h>
#include <omp.h>
#include <stdlib.h>

struct cks_bf16_dnnl {
    dnnl_engine_t eng;
    dnnl_stream_t stream;
};

int cks_bf16_dnnl_new(cks_bf16_dnnl **out)
{
    cks_bf16_dnnl *d = calloc(1, sizeof *d);
    if (!d)
        return cks_error_set(CKS_ENOMEM, "out of memory");
    if (dnnl_engine_create(&d->eng, dnnl_cpu, 0) != dnnl_success ||
        dnnl_stream_create(&d->stream, d->eng, dnnl_stream_default_flags) != dnnl_success) {
        cks_bf16_dnnl_free(d);
        return cks_error_set(CKS_ERROR, "oneDNN: cannot create the CPU engine");
    }
    *out = d;
    return 0;
}

void cks_bf16_dnnl_free(cks_bf16_dnnl *d)
{
    if (!d)
        return;
    if (d->stream)
        dnnl_stream_destroy(d->stream);
    if (d->eng)
        dnnl_engine_destroy(d->eng);
    free(d);
}

/* A 2-D descriptor with explicit strides (dnnl_dims_t-sized arrays, as the API reads). */
static dnnl_status_t md2(dnnl_memory_desc_t *md, int64_t d0, int64_t d1, int64_t s0, int64_t s1,
                         dnnl_data_type_t dt)
{
    dnnl_dims_t dims = {d0, d1}, strides = {s0, s1};
    return dnnl_memory_desc_init_by_strides(md, 2, dims, dt, strides);
}

static int fail(dnnl_status_t st, int64_t m, int64_t nn, int64_t k)
{
    if (st == dnnl_out_of_memory)
        return cks_error_set(CKS_ENOMEM, "out of memory in a %lldx%lldx%lld bf16 product",
                             (long long)m, (long long)nn, (long long)k);
    return cks_error_set(CKS_ERROR, "oneDNN refused a %lldx%lldx%lld bf16 product (status %d)",
                         (long long)m, (long long)nn, (long long)k, (int)st);
}

int cks_bf16_gemm_dnnl(cks_bf16_dnnl *d, int64_t m, int64_t k, int64_t nn, const uint16_t *A,
                       int64_t lda, const uint16_t *W, float beta, float *C, int64_t ldc,
                       int nthreads)
{
    dnnl_memory_desc_t amd, wmd, cmd;
    dnnl_matmul_desc_t desc;
    dnnl_primitive_attr_t attr = NULL;
    dnnl_post_ops_t po = NULL;
    dnnl_primitive_desc_t pd = NULL;
    dnnl_primitive_t prim = NULL;
    dnnl_memory_t ma = NULL, mw = NULL, mc = NULL;
    dnnl_status_t st;
    if (m == 0 || nn == 0)
        return 0;
    /* oneDNN's OpenMP runtime sizes its team from omp_get_max_threads() of the caller, and
       a primitive splits its work for the count it was created with: set it first */
    int saved = omp_get_max_threads();
    omp_set_num_threads(nthreads < 1 ? 1 : nthreads);
    if ((st = md2(&amd, m, k, lda, 1, dnnl_bf16)) != dnnl_success ||
        (st = md2(&wmd, k, nn, 1, k, dnnl_bf16)) != dnnl_success ||
        (st = md2(&cmd, m, nn, ldc, 1, dnnl_f32)) != dnnl_success ||
        (st = dnnl_matmul_desc_init(&desc, &amd, &wmd, NULL, &cmd)) != dnnl_success ||
        (st = dnnl_primitive_attr_create(&attr)) != dnnl_success)
        goto done;
    if (beta != 0.0f) {
        if ((st = dnnl_post_ops_create(&po)) != dnnl_success ||
            (st = dnnl_post_ops_append_sum(po, beta)) != dnnl_success ||
            (st = dnnl_primitive_attr_set_post_ops(attr, po)) != dnnl_success)
            goto done;
    }
    if ((st = dnnl_primitive_desc_create(&pd, &desc, attr, d->eng, NULL)) != dnnl_success ||
        (st = dnnl_primitive_create(&prim, pd)) != dnnl_success ||
        (st = dnnl_memory_create(&ma, &amd, d->eng, (void *)A)) != dnnl_success ||
        (st = dnnl_memory_create(&mw, &wmd, d->eng, (void *)W)) != dnnl_success ||
        (st = dnnl_memory_create(&mc, &cmd, d->eng, C)) != dnnl_success)
        goto done;
    dnnl_exec_arg_t args[3] = {{DNNL_ARG_SRC, ma}, {DNNL_ARG_WEIGHTS, mw}, {DNNL_ARG_DST, mc}};
    st = dnnl_primitive_execute(prim, d->stream, 3, args);
    if (st == dnnl_success)
        st = dnnl_stream_wait(d->stream);
done:
    omp_set_num_threads(saved);
    if (mc)
        dnnl_memory_destroy(mc);
    if (mw)
        dnnl_memory_destroy(mw);
    if (ma)
        dnnl_memory_destroy(ma);
    if (prim)
        dnnl_primitive_destroy(prim);
    if (pd)
        dnnl_primitive_desc_destroy(pd);
    if (po)
        dnnl_post_ops_destroy(po);
    if (attr)
        dnnl_primitive_attr_destroy(attr);
    return st == dnnl_success ? 0 : fail(st, m, nn, k);
}
