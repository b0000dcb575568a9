/* The scan's hook for lm-eval results stored beside the weights (LLM360 keeps
 * eval_arc.json, eval_hellaswag.json, eval_mmlu.json, eval_truthfulqa.json at the top of
 * each checkpoint branch): imported into the checkpoint's row, in the transaction that
 * writes its metrics. */
#ifndef CKS_SCAN_EVALS_H
#define CKS_SCAN_EVALS_H

#include "cli.h"
#include "source.h"
#include "store.h"

#include <stddef.h>

#define SCAN_EVALS_GLOB "eval_*.json"

/* Imports every top-level file of checkpoint `name` of src matching SCAN_EVALS_GLOB into
 * row `row` of s (a transaction is open). A file that cannot be read or parsed is a
 * warning on stderr (naming SOURCE@branch:file) and is skipped; only run-file errors are
 * returned. *nfiles (may be NULL) receives the number of files imported. */
int scan_evals_import(cks_store *s, const cks_source *src, const char *name, size_t row,
                      cli_progress *prog, size_t *nfiles);

#endif
