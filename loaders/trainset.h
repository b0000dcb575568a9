/* Training sequences for memorisation (DESIGN §3; LLM360 Analysis360's definition): JSONL
 * with a "token_ids" array per line (LLM360's data release format), plain, gzip or zstd
 * (lines.h, docfile.h: each line one JSON object, ids integers in [0, 2^31), errors name
 * the file and the line; a line without "token_ids" is an error).
 *
 * Of each line only the first width = k + l ids are kept (the prompt of k, the truth of l,
 * as stored: nothing is added), with the line's number and the largest id of the whole
 * line, so a file of billions of tokens costs width·4 + 12 bytes per kept sequence. Lines
 * with fewer than width ids are skipped and counted, not an error. Which sequences to keep
 * is the caller's choice (metrics/memo.h picks --samples of them): an index among the
 * long-enough lines, in file order. Whether ids are below the model's vocabulary is
 * checked at use, when it is known (cks_trainset_check_vocab), over every line of the
 * file: the kept ones, and the skipped and unpicked ones through the file's largest id (an
 * id past the vocabulary anywhere means data made for another tokenizer). */
#ifndef CKS_TRAINSET_H
#define CKS_TRAINSET_H

#include <stdint.h>

#define CKS_MAX_TRAIN_WIDTH ((int64_t)1 << 20) /* k + l */
#define CKS_MAX_TRAIN_IDS   ((int64_t)1 << 32) /* ids kept in all (16 GiB) */

typedef struct {
    char *display;           /* the file */
    int64_t width;           /* ids kept per sequence: k + l */
    int64_t n;               /* sequences kept */
    int32_t *ids;            /* [n × width]: sequence i at ids + i·width */
    int64_t *line;           /* [n] its 1-based line in the file */
    int32_t *maxid;          /* [n] the largest id of its whole line */
    int64_t eligible;        /* lines with at least width ids */
    int64_t skipped;         /* lines with fewer */
    int32_t file_maxid;      /* the largest id of every line read (kept or not); -1: none */
    int64_t file_maxid_line; /* the first line holding it */
} cks_trainset;

/* Counts the lines of path with at least width ids (*eligible) and with fewer (*skipped). */
int cks_trainset_count(const char *path, int64_t width, int64_t *eligible, int64_t *skipped);

/* Reads path into *out (release it): the long-enough sequences whose index among them is
 * in pick[0..npick) (strictly increasing, each below the eligible count, else CKS_EINVAL),
 * or all of them when pick is NULL. Errors: the file's (docfile.h), width outside
 * [1, CKS_MAX_TRAIN_WIDTH] (CKS_EINVAL), more than CKS_MAX_TRAIN_IDS ids (CKS_ELIMIT). */
int cks_trainset_read(cks_trainset *out, const char *path, int64_t width, const int64_t *pick,
                      int64_t npick);

/* CKS_EFORMAT naming the file, the line, the id and what (the checkpoint) when a line of
 * the file holds an id >= vocab: the first kept sequence's line holding one, else (a
 * skipped or unpicked line) the first line holding the file's largest id. */
int cks_trainset_check_vocab(const cks_trainset *t, int64_t vocab, const char *what);

void cks_trainset_release(cks_trainset *t);

#endif
