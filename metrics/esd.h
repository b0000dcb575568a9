/* Empirical spectral density of a weight matrix: the eigenvalues λ = σ² of WᵀW (DESIGN §3),
 * computed in f64 through BLAS/LAPACK (OpenBLAS) from a tensor view in any float dtype.
 * See esd.c for the method (Gram matrix of the smaller side + symmetric eigensolver) and
 * the measurements behind it. */
#ifndef CKS_ESD_H
#define CKS_ESD_H

#include "tensor.h"

#include <stdint.h>

/* The smaller side of a matrix is at most this: the Gram matrix takes side² doubles
 * (2 GiB at 16384; K2's 8192 needs 512 MiB) and the eigensolver O(side³) time. */
#define CKS_SPECTRAL_MAX_SIDE 16384

/* 0 when t is a 2-D float matrix within CKS_SPECTRAL_MAX_SIDE; else CKS_EUNSUPPORTED or
 * CKS_ELIMIT with the message set. Nothing is read or allocated. */
int cks_esd_check(const cks_tensor *t);

/* Writes the min(m, n) eigenvalues of WᵀW for the m×n tensor t into lambda[], ascending,
 * and ||W||_F² (the trace, accumulated in f64) into *fro2. When W holds a NaN or an
 * infinity, returns 0 with *fro2 = NaN and lambda[] unspecified: the spectrum is not
 * defined. nthreads (<= 0: one) bounds the BLAS/LAPACK threads; the previous OpenBLAS
 * thread count is restored. Errors: CKS_EUNSUPPORTED (not a 2-D float matrix),
 * CKS_ELIMIT (smaller side above CKS_SPECTRAL_MAX_SIDE), CKS_ENOMEM, CKS_ERROR (LAPACK
 * did not converge). Memory: side² + side·256 doubles besides LAPACK's workspace. */
int cks_esd_compute(const cks_tensor *t, int nthreads, double *lambda, double *fro2);

/* The eigensolver for G. AUTO is cks_esd_pick's choice (what cks_esd_compute does); the
 * others force one, for tests and benchmarks. All three reduce G to tridiagonal form and
 * take its eigenvalues with dsterf; they differ in how they reduce (see esd.c). */
typedef enum {
    CKS_ESD_AUTO = 0,
    CKS_ESD_SYEVD,
    CKS_ESD_SYEVR,
    CKS_ESD_SYEVD_2STAGE
} cks_esd_solver;
/* Side of G from which one thread uses dsyevd_2stage (measured, see esd.c). */
#define CKS_ESD_TWO_STAGE_FROM 2048
/* The solver AUTO uses for a p×p Gram matrix on nthreads threads (never AUTO). */
cks_esd_solver cks_esd_pick(int64_t p, int nthreads);
/* Name of the LAPACK routine ("dsyevd", ...). */
const char *cks_esd_solver_name(cks_esd_solver s);
int cks_esd_compute_with(const cks_tensor *t, int nthreads, cks_esd_solver solver, double *lambda,
                         double *fro2);

#endif
