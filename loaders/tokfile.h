/* Held-out data given as token ids (DESIGN §5), read into a cks_docset.
 *
 * JSONL (LLM360's data release format): one JSON object per line with a "token_ids" array
 *   of integers; other keys are ignored; every non-blank line is one document. Checks:
 *   each line valid JSON (at most CKS_MAX_JSONL_LINE bytes), "token_ids" present and an
 *   array, every element an integer in [0, 2^31). Errors name the file and the line.
 * Raw: little-endian uint16 or uint32 ids, the whole file one document. Checks: the size
 *   is a multiple of the width; uint32 ids below 2^31.
 * Whether ids are below the model's vocabulary is checked by the consumer, which knows
 * it (metrics/ppl.h). The file is mapped, not read whole. */
#ifndef CKS_TOKFILE_H
#define CKS_TOKFILE_H

#include "docset.h"

#define CKS_MAX_JSONL_LINE ((size_t)256 << 20) /* 256 MiB: one document's JSON */

typedef enum {
    CKS_TOKFILE_AUTO = 0, /* from the extension: .jsonl/.json, .u16/.uint16, .u32/.uint32 */
    CKS_TOKFILE_JSONL,
    CKS_TOKFILE_U16,
    CKS_TOKFILE_U32
} cks_tokfile_format;

/* "jsonl", "u16", "u32" -> format; CKS_ENOTFOUND (no message) otherwise. */
int cks_tokfile_format_from_name(const char *s, cks_tokfile_format *out);

/* Reads path into *out (initialised here; release it), named name. AUTO with an unknown
 * extension is CKS_EINVAL naming the file and the accepted extensions. */
int cks_tokfile_read(cks_docset *out, const char *path, const char *name, cks_tokfile_format fmt);

#endif
