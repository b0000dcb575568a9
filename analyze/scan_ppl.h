/* The scan's per-checkpoint perplexity family ("ppl", DESIGN §4 /eval): every --eval set
 * evaluated with the checkpoint's own weights and tokenizer (metrics/ppl.h), written as
 * /eval/<set>/{nll,ppl,bpb,tokens} series and the /eval/<set>/token_nll rows in the
 * transaction that writes the checkpoint's other metrics. The sets and the protocol
 * (ctx, stride, BOS) are a root attribute "eval" of the run file, so a resumed scan (or a
 * shard) cannot mix protocols. Private to analyze/. */
#ifndef CKS_SCAN_PPL_H
#define CKS_SCAN_PPL_H

#include "scan.h"

/* The family's values, in the order scan_table holds them per set. */
const cks_metric_info *scan_ppl_metrics(size_t *count);

/* Checks the --eval files (readable; distinct set names) and writes the canonical
 * protocol description into buf (the run file's "eval" attribute). */
int scan_ppl_prepare(const scan *sc, char *buf, size_t cap);

/* Evaluates the sets on checkpoint idx, whose weights are w, into t's perplexity slots.
 * A failure is returned with its message (the caller warns; values stay NaN). */
int scan_ppl_compute(scan *sc, size_t idx, const cks_weights *w, scan_table *t);

/* Writes t's perplexity values at row (a transaction is open). */
int scan_ppl_write(scan *sc, size_t row, const scan_table *t);

#endif
