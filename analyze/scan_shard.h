/* scan --shard I/N: one process's share of a scan split across machines (a Slurm array
 * task), written to a part file (reports/part.h) that `ckptscope merge` joins with the
 * others into the run file a single scan would have written.
 *
 * The shard analyses the selected checkpoints at positions I, I+N, I+2N, ... in step
 * order. Drift against the previous checkpoint needs that checkpoint's weights, not its
 * results: the shard finds it as a single scan would, the nearest earlier checkpoint
 * whose weights open (a missing LFS object is seen in the file list; nothing is
 * analysed), and maps it. The drift reference is chosen the same way as alone. With
 * --extend RUN.h5 the shard leaves out the checkpoints RUN.h5 already holds complete
 * with the same commit and the same previous checkpoint. */
#ifndef CKS_SCAN_SHARD_H
#define CKS_SCAN_SHARD_H

#include "scan.h"

/* Parses "I/N" (0 <= I < N); prints a usage error and returns CLI_USAGE when bad. */
int scan_shard_parse(const char *arg, int64_t *i, int64_t *n);

/* After the checkpoints are selected, before the part file is opened: reads the
 * --extend run (its metric families and reference are adopted) and chooses the drift
 * reference, so that a new part records it from the start. */
int scan_shard_setup(scan *sc);
/* Root attributes of a new part file: name, value pairs into attrs[cap], NULL-ended. */
void scan_shard_attrs(scan *sc, const char **attrs, size_t cap);
/* After the output is opened, for every scan: a part may only be resumed by the same
 * shard of the same checkpoints; a whole run file is not a part. */
int scan_shard_check_file(scan *sc);
/* The part's drift reference (*out NULL when none). */
int scan_shard_stored_ref(scan *sc, char **out);

/* In write_row's transaction: /part/tensor_order of a complete row (cols[i]: file
 * column of t's column i) and /part/prev of every row. */
int scan_shard_write_row(scan *sc, size_t row, const scan_table *t, const size_t *cols);
int scan_shard_write_prev(scan *sc, size_t row, size_t prev_pos);

/* Walks the shard's checkpoints (scan.h's scan_analyse for each). */
int scan_shard_run(scan *sc);
/* "shard I/N: k of n checkpoints" for the summary line. */
void scan_shard_describe(const scan *sc, char *buf, size_t cap);
void scan_shard_free(scan_shard *sh);

#endif
