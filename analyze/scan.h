/* The scan command's state and the per-checkpoint steps that the serial loop
 * (cmd_scan.c), `--shard I/N` (scan_shard.c) and the MPI coordinator and workers
 * (scan_mpi.c) share. Private to analyze/.
 *
 * One checkpoint is analysed in two steps: scan_compute() opens it (and its previous
 * checkpoint and the drift reference) and computes every enabled family into a
 * scan_outcome without touching the run file; scan_record() writes the outcome as the
 * checkpoint's row in one transaction and reports it. The serial loop does both in one
 * process; under MPI a worker computes and rank 0 records. */
#ifndef CKS_SCAN_H
#define CKS_SCAN_H

#include "cli.h"
#include "scan_metrics.h"
#include "source.h"
#include "store.h"
#include "weights.h"

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#define SCAN_SLOTS 3 /* checkpoints mapped at once: current, previous, reference */

typedef struct {
    const char *source, *output, *metrics, *branches, *ref;
    int64_t every;
    int resume, threads, threads_given, quiet;
    int64_t shard, nshards; /* --shard I/N; nshards = 0 when not sharded */
    const char *extend;     /* --extend RUN.h5 (shards only) */
    const char *evals[256]; /* --eval FILE (the ppl family), CKS_MAX_EVAL_SETS at most */
    size_t neval;
    int64_t ctx, stride; /* ppl windows; 0: the checkpoint's defaults */
    int bos;             /* --bos 1, --no-bos 0, -1: tokenizer_config.json */
} scan_options;

/* A checkpoint mapped for reading. */
typedef struct {
    size_t idx; /* index in the source; SIZE_MAX when the slot is empty */
    cks_ckpt *c;
    cks_weights *w;
} scan_slot;

/* What the run file held for a selected checkpoint when the scan started. */
typedef struct {
    int same; /* a complete row with the checkpoint's current commit */
    int any;  /* a complete row, whatever its commit */
} scan_state;

typedef struct scan_shard scan_shard;

typedef struct {
    scan_options o;
    cks_source *src;
    cks_store *store;  /* NULL on MPI workers */
    size_t *sel, nsel; /* selected checkpoints (source indices, step order) */
    scan_state *state; /* per selected checkpoint */
    const scan_group *groups[SCAN_MAX_GROUPS];
    size_t ngroups;
    char canon[256];
    int ppl;          /* the ppl family is enabled */
    char eval[65536]; /* its protocol: the run file's "eval" attribute */
    size_t ref_idx;   /* source index of the drift reference; SIZE_MAX when none */
    scan_slot slots[SCAN_SLOTS];
    cli_progress prog;
    double t_start;
    size_t analysed, complete, incomplete, failed, skipped;
    scan_shard *shard; /* --shard state (scan_shard.c); NULL otherwise */
    /* test hook: CKS_TEST_KILL_AT=point:n kills the process at the n-th point */
    char kill_point[32];
    long kill_count;
    long tensor_delay_ms; /* CKS_TEST_TENSOR_DELAY_MS (tests that interrupt a scan) */
} scan;

/* The values of one checkpoint before they are written: one column per tensor of the
 * checkpoint, in the order its weights list them. */
typedef struct {
    cks_store_tensor *cols; /* name/kind borrowed from the weights, or from strings */
    size_t n;
    const cks_tensor **cur;               /* per column; NULL when unpacked from a message */
    size_t first[SCAN_MAX_GROUPS], nvals; /* group g's metric m is row first[g] + m */
    double *vals;                         /* nvals x n */
    float *top;                           /* n x SCAN_SPECTRA_K */
    int *has_top;                         /* per column */
    char *strings;                        /* owned storage of names/kinds (MPI messages) */
    /* the ppl family, per --eval set: nll, ppl, bpb, tokens (NaN until computed) and the
     * per-token losses (owned; NULL when not computed) */
    size_t nsets;
    double *ppl_vals; /* nsets x SCAN_PPL_VALUES */
    float **token_nll;
    int64_t *ntok;
} scan_table;

#define SCAN_PPL_VALUES 4

void scan_table_release(scan_table *t);
/* Column layout and NaN-filled buffers for n tensors (cols and cur filled by the caller). */
int scan_table_alloc(const scan *sc, size_t n, scan_table *t);

typedef enum { SCAN_COMPLETE = 0, SCAN_INCOMPLETE, SCAN_FAILED } scan_status;

/* One analysed checkpoint: what scan_record writes and reports. */
typedef struct {
    size_t pos, prev_pos; /* selected positions; prev_pos SIZE_MAX when none */
    scan_status status;
    char message[1200]; /* incomplete: what is missing; failed: the error */
    scan_table t;       /* complete only */
    double bytes, seconds;
    int rank; /* MPI rank that computed it; -1 in a single process */
} scan_outcome;

extern volatile sig_atomic_t scan_interrupted;

/* The weights of checkpoint idx, mapping it in a free slot when needed. Slots whose
 * checkpoint is not in keep[0..2] are released first. CKS_EINCOMPLETE when Git LFS
 * objects are missing (known from the file list, nothing is read). */
int scan_slot_get(scan *sc, size_t idx, const size_t keep[3], const cks_weights **out);
void scan_slot_release(scan_slot *s);

/* Analyses selected checkpoint pos against the selected checkpoint prev_pos (SIZE_MAX:
 * none) and the reference. Never touches the run file. Returns non-zero only for errors
 * that stop the scan (out of memory, an interrupt); a checkpoint that cannot be read is
 * an outcome (failed). Release out->t with scan_table_release. */
int scan_compute(scan *sc, size_t pos, size_t prev_pos, scan_outcome *out);
/* Writes an outcome as its checkpoint's row in one transaction, counts and reports it.
 * Non-zero when the run file cannot be written. */
int scan_record(scan *sc, const scan_outcome *o);
/* Both: one checkpoint in one process. *complete tells whether it is now complete. */
int scan_analyse(scan *sc, size_t pos, size_t prev_pos, int *complete);

/* A "[pos/nsel] name (step s): ..." line on stderr unless --quiet. */
void scan_report(scan *sc, size_t pos, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* The kill hook of the crash tests (see CKS_TEST_KILL_AT). */
void scan_test_point(const char *point, void *ctx);

/* The drift reference: stored (the one a run file already measures against, held by
 * the file named holder), else --ref, else the first selected checkpoint whose weights
 * open. Sets sc->ref_idx. */
int scan_choose_ref(scan *sc, const char *stored, const char *holder);
/* config.json of selected checkpoint 0 (NULL when unreadable: reported when scanned). */
void scan_read_config(const scan *sc, char **out);
/* Takes the metric families of run file st (resume, --extend); refuses a --metrics that
 * differs. */
int scan_adopt_metrics(scan *sc, cks_store *st);

/* The command's phases, for scan_mpi.c: open the source and the run file, choose the
 * reference (scan_setup); the serial walk (scan_run); the summary line and exit status
 * after a walk that returned err (scan_finish); freeing everything (scan_release). */
int scan_setup(scan *sc);
int scan_run(scan *sc);
int scan_finish(scan *sc, int err);
void scan_release(scan *sc);

#endif
