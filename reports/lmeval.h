/* lm-evaluation-harness result files (what LLM360 keeps as eval_*.json on each branch).
 *
 * v0.3:  {"results": {"<task>": {"acc": v, "acc_stderr": v, ...}}, "versions": {...},
 *         "config": {"model_args": "pretrained=...,revision=step143000", ...}}
 * v0.4:  {"results": {"<task>": {"alias": s, "acc,none": v, "acc_stderr,none": v|"N/A"}},
 *         "groups": {...same shape...}, "higher_is_better": {"<task>": {"acc": true}},
 *         "n-samples": {"<task>": {"original": n, "effective": n}},
 *         "config": {"model_args": ...}}
 * Metric names drop the ",none" filter suffix (other filters stay: "exact_match,strict-match");
 * "<m>_stderr" values become the stderr of <m>. Python writes bare NaN / Infinity, which
 * JSON forbids: they are read as NaN. Checks: the top level and "results" are objects;
 * values are numbers, null, NaN or "N/A" (non-numeric strings such as "alias" are skipped);
 * at most CKS_MAX_EVAL_TASKS distinct tasks and CKS_MAX_EVAL_METRICS distinct metrics per task
 * (over "results" and "groups"; a metric's stderr is not counted apart); names at most
 * CKS_MAX_EVAL_NAME bytes and free of '/' (they become HDF5 paths). */
#ifndef CKS_LMEVAL_H
#define CKS_LMEVAL_H

#include <stddef.h>
#include <stdint.h>

/* Real result files are tens of KiB (Pythia's: 24 KiB; v0.4 with configs: a few MiB);
 * jansson holds about 15 times the text, so 64 MiB bounds a hostile file to ~1 GiB. */
#define CKS_MAX_EVAL_BYTES   (64u << 20)
#define CKS_MAX_EVAL_TASKS   100000
#define CKS_MAX_EVAL_METRICS 256
#define CKS_MAX_EVAL_NAME    200

typedef struct {
    char *task;
    char *metric;
    double value;         /* NaN when absent or not a number */
    double stderr_;       /* NaN when absent or "N/A" */
    int64_t n;            /* samples (v0.4 n-samples), -1 when unknown */
    int higher_is_better; /* 1, 0, or -1 when the file does not say */
} cks_eval_entry;

typedef struct {
    cks_eval_entry *items; /* sorted by (task, metric) */
    size_t count;
    int version;      /* 3 or 4 */
    char *model_args; /* config.model_args, or NULL */
} cks_eval_result;

/* Parses one result file. display names it in messages. */
int cks_lmeval_parse(const char *text, size_t len, const char *display, cks_eval_result *out);
void cks_lmeval_release(cks_eval_result *r);

/* The checkpoint a result belongs to: "revision=<x>" in model_args, else the last path
 * component of "pretrained=<path>" when it holds a digit, else the file name's stem (from
 * its last '/' to ".json"). CKS_ENOTFOUND when none applies. */
int cks_lmeval_checkpoint(const cks_eval_result *r, const char *filename, char *out, size_t cap);

/* The model a result belongs to, when model_args names it apart from the checkpoint: the
 * "pretrained=<id>" of a result that also has "revision=" (a hub model id such as
 * EleutherAI/pythia-v1.1-12b). CKS_ENOTFOUND (no message) otherwise: a pretrained= path
 * that ends in the checkpoint folder does not name the model reliably. */
int cks_lmeval_model(const cks_eval_result *r, char *out, size_t cap);

#endif
