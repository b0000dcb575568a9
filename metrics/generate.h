/* Greedy generation for memorisation (DESIGN §3), batched across sequences with a key/value
 * cache and run layer-major like the perplexity pass (ppl.h).
 *
 * For each of n sequences the first k ids (the prompt, as given: nothing is added) go
 * through the model at positions 0..k-1; then l tokens are generated greedily: G_0 is
 * the argmax of the logits after the prompt, G_j the argmax after G_{j-1} at position
 * k + j - 1 (RoPE positions continue k, k + 1, ...). Argmax ties go to the lowest id; only
 * the argmax is needed, so the logits are made vblock columns at a time and never
 * softmaxed.
 *
 * Layer-major: a batch of sequences is embedded, its prompts run through layer 0, then
 * layer 1, ... (each layer widened once from the mapped checkpoint, its keys and values
 * kept in the batch's cache), then the lm_head; each of the l - 1 decode steps again loads
 * layer 0, runs every sequence of the batch one token with its cache, then layer 1, ...
 * So the weights are read l times per batch (prefill, then l - 1 steps).
 *
 * Memory: the cache of one batch is 2 · layers · kvd · (k + l) · batch floats, bounded by
 * cache_max (default CKS_GENERATE_CACHE_MAX, 256 MiB; at least one sequence per batch):
 * batch = min(n, cache_max / (8 · layers · kvd · (k + l)), cache_max / (4 · k · dim)) (the
 * second: the prompts' residual stream within the same bound). Peak memory is one layer's
 * weights (or the lm_head) plus the cache and activations of one batch, whatever n is;
 * only the n · l generated ids grow with n. */
#ifndef CKS_GENERATE_H
#define CKS_GENERATE_H

#include "bf16.h"
#include "config.h"
#include "weights.h"

#include <stddef.h>
#include <stdint.h>

#define CKS_GENERATE_CACHE_MAX ((size_t)256 << 20)

typedef struct {
    int64_t k, l;            /* prompt and continuation lengths, >= 1 */
    int nthreads;            /* <= 0: one */
    cks_precision precision; /* arithmetic of the weight products (DESIGN §5); 0: f32 */
    size_t cache_max;        /* bytes of one batch's cache; 0: CKS_GENERATE_CACHE_MAX */
    /* called before each batch b of nb (done = sequences finished so far); may be NULL */
    void (*progress)(void *ctx, int64_t done, int64_t n);
    void *progress_ctx;
} cks_generate_options;

typedef struct {
    int64_t batch;                               /* sequences per batch */
    int64_t batches;                             /* batches run */
    size_t cache_bytes;                          /* bytes of one batch's cache */
    double t_prefill, t_decode, t_head, t_total; /* wall-clock seconds */
} cks_generate_stats;

/* Generates l tokens after the prompt ids + i·width (its first k ids) of each sequence
 * i < n, into gen[i·l .. i·l + l). display names the checkpoint in messages. Errors: a
 * config.json the forward pass does not implement; k + l past max_position_embeddings or a
 * sliding window that would apply (CKS_EINVAL / CKS_EUNSUPPORTED); width < k; a prompt id
 * not below the vocabulary (CKS_EINVAL; callers check their data first, naming the file:
 * trainset.h); a missing or misshapen tensor; CKS_ENOMEM. stats may be NULL. */
int cks_generate(int32_t *gen, const cks_weights *cw, const cks_config *cfg, const char *display,
                 const int32_t *ids, int64_t width, int64_t n, const cks_generate_options *o,
                 cks_generate_stats *stats);

#endif
