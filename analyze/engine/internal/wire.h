/* Outcomes on the wire between MPI ranks (drive_mpi.c): a worker packs what it computed,
 * rank 0 unpacks it as hostile input (every count and position checked against the
 * message and the selection). Private to the engine. */
#ifndef CKS_ENGINE_WIRE_H
#define CKS_ENGINE_WIRE_H

#include "engine.h"

#include <stddef.h>

typedef struct {
    char *p;
    size_t len, cap;
    int oom;
} cks_wbuf;

/* Packs o (interrupted: its computation was interrupted; only the task goes). */
int cks_wire_pack(const cks_outcome *o, int interrupted, cks_wbuf *b);
/* Unpacks a message of rank into o (release with cks_outcome_release). CKS_EFORMAT
 * naming the rank when it is malformed. */
int cks_wire_unpack(const char *msg, size_t len, size_t nsel, size_t nvals, int rank,
                    cks_outcome *o, int *interrupted);

#endif
