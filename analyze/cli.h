/* Helpers shared by the subcommands: the one number parser, error reporting with exit
 * status, option tables for --help, JSON output, progress lines on a terminal. */
#ifndef CKS_CLI_H
#define CKS_CLI_H

#include "source.h"

#include <jansson.h>
#include <stdint.h>
#include <stdio.h>

enum { CLI_OK = 0, CLI_FAILCHECK = 1, CLI_USAGE = 2 };

/* Parses a whole decimal integer in [lo, hi]; on failure prints
 * "ckptscope <cmd>: <what> must be an integer in [lo, hi], not '<s>'" and returns -1. */
int cli_parse_int(const char *cmd, const char *what, const char *s, int64_t lo, int64_t hi,
                  int64_t *out);
int cli_parse_double(const char *cmd, const char *what, const char *s, double lo, double hi,
                     double *out);
/* --threads: 1..1024; 0 or "auto" means the number of online CPUs. */
int cli_parse_threads(const char *cmd, const char *s, int *out);
int cli_default_threads(void);

/* Prints "ckptscope <cmd>: error: <cks_error_last()>" and returns the exit status for
 * the CKS_E* code (CKS_EFAILCHECK -> 1, everything else -> 2). */
int cli_fail(const char *cmd, int code);
/* Prints "ckptscope <cmd>: <message>" plus a pointer to --help, returns CLI_USAGE. */
int cli_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Writes a JSON document to stdout (one line per document, numbers as numbers) and
 * decrefs it. Returns 0 or -1 on a write error. */
int cli_json_print(json_t *doc);

/* Flushes stdout and checks ferror: a full disk must not exit 0. Returns status, or 2
 * with a message when stdout failed. */
int cli_finish(const char *cmd, int status);

/* Progress on stderr when it is a terminal and not quiet: one line rewritten in place. */
typedef struct {
    int enabled;
    double t0;
    int dirty;
} cli_progress;
void cli_progress_init(cli_progress *p, int quiet);
void cli_progress_update(cli_progress *p, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void cli_progress_done(cli_progress *p);
double cli_now(void);

/* A cks_fetch_progress_fn for hf:// sources (ctx: a cli_progress): "fetching ckpt_001:
 * 1.2 GiB of 4.0 GiB, 3/8 files, 85.0 MiB/s" rewritten in place. */
void cli_fetch_progress(void *ctx, const cks_fetch_progress *p);
/* That line's text into buf. */
const char *cli_fetch_text(const cks_fetch_progress *p, char *buf, size_t cap);

/* Formats n bytes as "1.5 GiB" into buf. */
const char *cli_human_bytes(uint64_t n, char *buf, size_t cap);

#endif
