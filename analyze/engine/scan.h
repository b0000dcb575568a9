/* The scan engine's API for the `scan` command (analyze/cmd_scan.c): the options, the
 * hooks through which the engine reports (it never prints), and the three drivers.
 *
 * A driver plans the selected checkpoints (plan.h), computes each task with the engine
 * (every enabled metric family, DESIGN §3) and records it as one crash-atomic row of the
 * run file (DESIGN §4):
 *   cks_scan_serial  one process, the whole selection;
 *   cks_scan_shard   one process, the positions I modulo N, into a part file that
 *                    `merge` joins (DESIGN §10);
 *   cks_scan_mpi     under mpirun/srun (a build with CKS_HAVE_MPI): rank 0 plans and
 *                    records, the other ranks compute.
 * They return 0 when every task was executed (whatever the checkpoints' states: the
 * summary counts them), or a negative CKS_E* code with its message (the run file cannot
 * be written, bad input, an interrupt: the finished rows are kept). */
#ifndef CKS_SCAN_H
#define CKS_SCAN_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#define CKS_SCAN_MAX_EVAL 256 /* --eval files */

typedef struct {
    const char *source, *output; /* SOURCE, -o RUN.h5 */
    const char *metrics;         /* --metrics, NULL: the defaults */
    const char *branches, *ref;  /* NULL: the defaults */
    int64_t every;               /* --every K (>= 1) */
    int resume;
    int threads, threads_given; /* --threads, and whether it was given */
    int64_t shard, nshards;     /* --shard I/N; nshards 0 when not sharded */
    const char *extend;         /* --extend RUN.h5 (shards only) */
    const char *const *evals;   /* --eval FILE... (the ppl family) */
    size_t neval;
    int64_t ctx, stride; /* ppl windows; 0: the checkpoint's defaults */
    int bos;             /* --bos 1, --no-bos 0, -1: tokenizer_config.json */
    int evict;           /* --evict: delete downloaded blobs no longer needed (hf://) */
    int no_prefetch;     /* fetch a checkpoint only when its task runs (benchmarks) */
    int precision;       /* ppl arithmetic (DESIGN §5): a cks_precision of metrics/bf16.h,
                            0 (f32) by default */

    /* the memorization family (its arithmetic is precision too) */
    const char *const *trains; /* --train-data FILE... */
    size_t ntrain;
    int64_t samples; /* --samples N of each training file (0: all) */
    int64_t seed;    /* --seed S of the sample (default 1) */
} cks_scan_options;

typedef enum { CKS_SCAN_COMPLETE = 0, CKS_SCAN_INCOMPLETE, CKS_SCAN_FAILED } cks_scan_status;

typedef enum {
    CKS_ROW_RECORDED, /* a row was written */
    CKS_ROW_SKIPPED,  /* the run file's row stands */
    CKS_ROW_LEFT_OUT  /* --extend: the extended run's row stands */
} cks_row_kind;

/* A checkpoint finished (strings live until the hook returns). */
typedef struct {
    cks_row_kind kind;
    size_t pos, nsel; /* position in the selection, of nsel */
    const char *name;
    int64_t step;
    cks_scan_status status; /* recorded: its state */
    const char *message;    /* recorded incomplete: what is missing; failed: the error */
    size_t ntensors;
    double bytes, seconds;
    int rank; /* MPI rank that computed it; -1 in one process */
} cks_scan_row;

/* Progress inside a checkpoint. */
typedef struct {
    size_t pos, nsel;
    const char *name;
    const char *what; /* the tensor being read, or the per-checkpoint family's work */
    double frac;      /* of the checkpoint's tensor bytes read; -1 during a family's work */
    double rate;      /* bytes per second on this checkpoint */
} cks_scan_progress;

/* Downloads of a source that fetches checkpoints (hf://, DESIGN §2), summed over the
 * files in flight since fetching last went idle. */
typedef struct {
    const char *name; /* the checkpoint whose file last made progress */
    uint64_t done, total;
    double seconds;
    int files_done, files_total;
} cks_scan_fetch;

/* How the engine talks to its caller. Every member may be NULL. */
typedef struct {
    void *ctx;
    void (*row)(void *ctx, const cks_scan_row *r);
    void (*progress)(void *ctx, const cks_scan_progress *p);
    /* something left out of a checkpoint's row that did not fail it */
    void (*warning)(void *ctx, const char *ckpt, const char *what, const char *msg);
    /* test points, so that tests can kill the process there: "opened" (the run file),
     * "tensor" (one tensor computed), "analysed" (a complete checkpoint computed, not
     * written), "written" (its row written, not committed), and the store's transaction
     * points (reports/store.h) */
    void (*point)(void *ctx, const char *name);
    const volatile sig_atomic_t *interrupted; /* non-zero: stop, keeping what is finished */
    /* download progress: called on a download thread, never twice at once, but while the
     * other hooks may run on the scan's thread */
    void (*fetch)(void *ctx, const cks_scan_fetch *f);
} cks_scan_hooks;

typedef struct {
    size_t nsel, own; /* checkpoints selected; those of this shard (nsel when unsharded) */
    size_t analysed, complete, incomplete, failed, skipped;
    size_t rows;        /* rows the run file holds at the end */
    int rank;           /* MPI: this process's rank; -1 otherwise */
    int error_reported; /* MPI: another rank reports the error this one returns */
} cks_scan_summary;

/* The families --metrics defaults to ("norms,spectral,drift"; ppl joins with --eval). */
const char *cks_scan_default_metrics(void);

int cks_scan_serial(const cks_scan_options *o, const cks_scan_hooks *h, cks_scan_summary *out);
int cks_scan_shard(const cks_scan_options *o, const cks_scan_hooks *h, cks_scan_summary *out);

#ifdef CKS_HAVE_MPI
/* 1 when this process was started by an MPI launcher (mpirun, mpiexec, srun with PMI). */
int cks_scan_mpi_launched(void);
/* The whole scan under MPI, on every rank (MPI_Init to MPI_Finalize). */
int cks_scan_mpi(const cks_scan_options *o, const cks_scan_hooks *h, cks_scan_summary *out);
#endif

#endif
