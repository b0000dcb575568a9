/* scan under MPI (a build with -DCKPTSCOPE_MPI=ON, started by mpirun or srun): rank 0
 * opens the run file and hands checkpoints to the other ranks as they become free; they
 * compute a checkpoint's rows (scan.h's scan_compute) and send them back; rank 0 writes
 * them in step order through the store, one transaction per checkpoint, exactly as the
 * serial scan does. See scan_mpi.c for the protocol and the choice of serial HDF5.
 * Without MPI in the build these are stubs: a scan is never "launched by MPI". */
#ifndef CKS_SCAN_MPI_H
#define CKS_SCAN_MPI_H

#include "scan.h"

#ifdef CKS_HAVE_MPI
/* 1 when this process was started by an MPI launcher (mpirun, mpiexec, srun with PMI). */
int scan_mpi_launched(void);
/* The whole scan under MPI, on every rank; returns the exit status. */
int scan_mpi_main(scan *sc);
#else
static inline int scan_mpi_launched(void)
{
    return 0;
}
static inline int scan_mpi_main(scan *sc)
{
    (void)sc;
    return CLI_USAGE;
}
#endif

#endif
