/* The documents of a data file as corpora ship them (DESIGN §5), one at a time, whatever
 * the file's compression (lines.h: plain, gzip, zstd by their first bytes).
 *
 * JSONL (the layout of the Pile, SlimPajama, Dolma, and LLM360's data release): each
 * non-blank line is one JSON object and one document. Its content is the line's "text"
 * string (CKS_DOC_TEXT) or its "token_ids" array of integers in [0, 2^31)
 * (CKS_DOC_TOKENS); other keys are ignored. With split_by_meta the line also names its
 * subset: "meta"."pile_set_name" (the Pile), else "meta"."redpajama_set_name"
 * (RedPajama, SlimPajama): a non-empty string of at most CKS_MAX_SUBSET_NAME bytes, no
 * control characters; a line without one is an error.
 * Plain text: the whole file is one document (text only).
 *
 * Which one a file is, is decided by its content: JSONL when its first non-blank line
 * starts with '{' and ends with '}' (spaces aside), plain text otherwise; a first line
 * that looks like an object but is not valid JSON is an error, never read as text. With
 * CKS_DOC_AUTO, a JSONL file whose first line has "token_ids" holds tokens (even when it
 * also has "text"), else text; every later line must have the same field. Blank lines (spaces,
 * tabs, '\r') are skipped. Every error names the file and the line: a line that is not a JSON
 * object, a missing or mistyped field, an id out of range, a line longer than the limit. */
#ifndef CKS_DOCFILE_H
#define CKS_DOCFILE_H

#include "lines.h"

#include <stddef.h>
#include <stdint.h>

#define CKS_MAX_SUBSET_NAME 128

typedef enum { CKS_DOC_AUTO = 0, CKS_DOC_TEXT, CKS_DOC_TOKENS } cks_doc_kind;

typedef struct {
    cks_doc_kind want;    /* what the caller asked for (--text, --tokens, or either) */
    int split_by_meta;    /* read each line's subset */
    size_t max_text;      /* largest whole-file text document; 0: CKS_MAX_LINE */
    cks_lines_limits lim; /* zeros: the defaults */
} cks_docfile_options;

/* One document; every pointer is borrowed until the next cks_docfile_next. */
typedef struct {
    int64_t line;     /* 1-based line; 0 for a whole-file text document */
    const char *text; /* CKS_DOC_TEXT: len bytes of UTF-8 (JSON strings may hold NUL) */
    size_t len;
    const int32_t *ids; /* CKS_DOC_TOKENS: n ids */
    int64_t n;
    const char *subset; /* with split_by_meta, else NULL */
} cks_doc;

typedef struct cks_docfile cks_docfile;

/* Opens path and decides what it holds (above). A JSONL file of the other kind than
 * o->want, or a plain file when tokens are wanted, is CKS_EFORMAT naming the file, the
 * line and the field it lacks. o may be NULL (AUTO, no split, default limits). */
int cks_docfile_open(cks_docfile **out, const char *path, const cks_docfile_options *o);
/* The same over size bytes at data (borrowed until cks_docfile_free); display names them. */
int cks_docfile_open_mem(cks_docfile **out, const void *data, size_t size, const char *display,
                         const cks_docfile_options *o);
void cks_docfile_free(cks_docfile *f);

/* CKS_DOC_TEXT or CKS_DOC_TOKENS: what the documents are. */
cks_doc_kind cks_docfile_kind(const cks_docfile *f);
/* 1 for JSONL, 0 for a plain text file. */
int cks_docfile_is_jsonl(const cks_docfile *f);
cks_compression cks_docfile_compression(const cks_docfile *f);
const char *cks_docfile_display(const cks_docfile *f);

/* The next document; CKS_ITEROVER after the last. */
int cks_docfile_next(cks_docfile *f, cks_doc *doc);
/* Back to the first document (a second pass). */
int cks_docfile_rewind(cks_docfile *f);

/* What a file holds without reading it all: *kind is CKS_DOC_TOKENS for a JSONL file whose
 * first line has "token_ids", else CKS_DOC_TEXT. Errors as cks_docfile_open's. */
int cks_docfile_sniff(const char *path, cks_doc_kind *kind);

#endif
