/* Joining run files (DESIGN §10): the part files of a sharded scan (part.h), and
 * optionally one finished run they extend, into one new run file equal, dataset by
 * dataset, to what a single `scan` of the same checkpoints writes.
 *
 * Checks, each a CKS_EINVAL naming the files and the checkpoints:
 *   - at least one part; at most one whole run (the base being extended); no file twice;
 *     the output is none of the inputs and does not exist;
 *   - every input has the same root attributes (source, config, metrics, ...), except
 *     created_by and the part marks; every part the same checkpoint list (part_checkpoints)
 *     and the same drift reference, which a base must share too;
 *   - each checkpoint of the list is in at most one part (an overlap is always refused)
 *     and in exactly one of the parts or the base (a gap is refused unless allow_gaps);
 *   - every row of a part is a checkpoint of its list at the listed commit; every row of
 *     the base is a checkpoint of the list, and one that no part holds must have the
 *     listed commit (a stale row would not equal a new scan).
 * Extending: a checkpoint held by the base and by a part takes the part's row (the newer
 * analysis: `scan --extend` re-analyses a checkpoint only when its commit or its previous
 * checkpoint changed); each such replacement is reported through the note callback.
 *
 * The output: rows in the list's order (step order, the order a single scan appends
 * them), each with the analysed_at of its input; columns in the order a single scan adds
 * them (the base's first, then each complete row's new tensors in its checkpoint's own
 * order, from /part/tensor_order); every row-indexed dataset of the inputs (except /part)
 * with its attributes and those of its groups. Written through the store in one
 * transaction, so it appears complete or not at all. */
#ifndef CKS_MERGE_H
#define CKS_MERGE_H

#include <stddef.h>

#define CKS_MERGE_MAX_INPUTS 100000
#define CKS_MERGE_NAMED      8 /* checkpoints named in one message before "and N more" */

typedef struct {
    int allow_gaps;
    /* NULL, or called with a one-line note (a replaced row, gaps left): libraries never
     * print */
    void (*note)(void *ctx, const char *msg);
    void *ctx;
} cks_merge_opts;

typedef struct {
    size_t parts, rows, from_base, replaced, gaps, tensors, datasets;
} cks_merge_stats;

/* Merges inputs[0..n) into the new run file output. *stats may be NULL. */
int cks_merge(const char *const *inputs, size_t n, const char *output, const cks_merge_opts *opts,
              cks_merge_stats *stats);

#endif
