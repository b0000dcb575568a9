/* Held-out data given as token ids (DESIGN §5), read into cks_docsets; plain, gzip or zstd
 * (lines.h: recognised by the first bytes).
 *
 * JSONL (LLM360's data release format): one JSON object per line with a "token_ids" array
 *   of integers; other keys are ignored; every non-blank line is one document (see
 *   docfile.h for the checks: each line valid JSON of at most CKS_MAX_JSONL_LINE bytes,
 *   "token_ids" an array of integers in [0, 2^31); errors name the file and the line).
 *   Optionally split into one set per "meta" subset (docfile.h).
 * Raw: little-endian uint16 or uint32 ids, the whole file one document. Checks: the size
 *   (decompressed) is a multiple of the width; uint32 ids below 2^31.
 * CKS_TOKFILE_AUTO: raw when the name, without a .gz/.zst/.zstd suffix, ends in .u16,
 *   .uint16, .u32 or .uint32; otherwise JSONL, which the content must be.
 * Whether ids are below the model's vocabulary is checked by the consumer, which knows
 * it (metrics/ppl.h; cks_docset_check_vocab). Plain files are mapped, compressed ones
 * streamed. */
#ifndef CKS_TOKFILE_H
#define CKS_TOKFILE_H

#include "docset.h"
#include "lines.h"

#include <stddef.h>

#define CKS_MAX_JSONL_LINE CKS_MAX_LINE /* 256 MiB: one document's JSON */

typedef enum {
    CKS_TOKFILE_AUTO = 0, /* raw by the name (.u16/.u32), else JSONL by content */
    CKS_TOKFILE_JSONL,
    CKS_TOKFILE_U16,
    CKS_TOKFILE_U32
} cks_tokfile_format;

/* "jsonl", "u16", "u32" -> format; CKS_ENOTFOUND (no message) otherwise. */
int cks_tokfile_format_from_name(const char *s, cks_tokfile_format *out);

/* The raw format a name implies (CKS_TOKFILE_U16/U32, ignoring a compression suffix), or
 * CKS_TOKFILE_AUTO. */
cks_tokfile_format cks_tokfile_format_of_name(const char *path);

/* Reads path into *out (initialised here; release it), named name. With AUTO, a file that
 * is neither JSONL nor named like a raw file is CKS_EINVAL naming the file and the
 * accepted forms. */
int cks_tokfile_read(cks_docset *out, const char *path, const char *name, cks_tokfile_format fmt);

/* Reads path into the sets of l: all documents into one set named stem, or with
 * split_by_meta each JSONL line into the set "<stem>:<subset>" (docfile.h), sets created
 * in the order their subsets first appear; at most max sets in l (CKS_ELIMIT). A set name
 * that l already holds from another file is CKS_EINVAL. On failure l keeps what it held
 * (the sets this call created may be left in it, empty or partly read: release l). */
int cks_tokfile_read_sets(cks_docsets *l, const char *path, const char *stem,
                          cks_tokfile_format fmt, int split_by_meta, size_t max);

#endif
