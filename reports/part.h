/* Part files (DESIGN §10): what `scan --shard I/N` writes and `merge` joins.
 *
 * A part is a run file (store.h) holding the rows of the checkpoints whose position in
 * step order, among all the checkpoints the scan selected, is I modulo N, plus marks that
 * merge checks and leaves out of the joined file:
 *   root attributes (strings)
 *     part_shard        "I"
 *     part_count        "N"
 *     part_checkpoints  JSON array, every selected checkpoint in step order, the
 *                       shard's and the others': [{"name": str, "step": int,
 *                       "commit": str ("" for plain folders)}, ...]
 *     part_ref          name of the drift reference, "" when none
 *     part_extends      path of the finished run the part extends (scan --extend),
 *                       absent otherwise
 *   /part/prev          float64 [N] (axes "checkpoint"): position in part_checkpoints of
 *                       the checkpoint a row's /drift/prev was measured against; NaN when
 *                       none (then --resume knows whether that neighbour changed)
 *   /part/tensor_order  float64 [N, T]: position of each tensor in its checkpoint's own
 *                       tensor list, NaN when absent, so merge lays out the columns in
 *                       the order a single scan appends them
 * Part files are read back as hostile input: the list is parsed through loaders/json.h
 * with limits, and every row is checked against it. */
#ifndef CKS_PART_H
#define CKS_PART_H

#include "store.h"

#include <stddef.h>
#include <stdint.h>

#define CKS_PART_SHARD       "part_shard"
#define CKS_PART_COUNT       "part_count"
#define CKS_PART_CHECKPOINTS "part_checkpoints"
#define CKS_PART_REF         "part_ref"
#define CKS_PART_EXTENDS     "part_extends"
#define CKS_PART_PREV        "/part/prev"
#define CKS_PART_ORDER       "/part/tensor_order"
#define CKS_PART_GROUP       "/part"
#define CKS_PART_ATTR_PREFIX "part_"

typedef struct {
    char *name;
    int64_t step;
    char *commit; /* "" when the source has none */
} cks_part_ckpt;

typedef struct {
    int64_t shard, count;
    cks_part_ckpt *ckpts; /* the scan's whole selection, step order */
    size_t n;
    char *ref;     /* "" when none */
    char *extends; /* NULL when absent */
} cks_part_info;

/* The JSON text of part_checkpoints for n checkpoints (*out: new string). */
int cks_part_list_encode(const cks_part_ckpt *c, size_t n, char **out);

/* Reads a file's marks. CKS_ENOTFOUND (no message) when it is not a part (no
 * part_shard); CKS_EFORMAT naming the file and the attribute when they are damaged. */
int cks_part_read(cks_store *s, cks_part_info *out);
void cks_part_info_release(cks_part_info *p);

/* Compares two checkpoint lists; 0 when equal, else 1 and a description of the first
 * difference ("ckpt_003 has commit X in A and Y in B", "ckpt_007 is only in A") in
 * buf[cap], naming the lists a and b. */
int cks_part_list_diff(const cks_part_ckpt *a, size_t na, const char *name_a,
                       const cks_part_ckpt *b, size_t nb, const char *name_b, char *buf,
                       size_t cap);

#endif
