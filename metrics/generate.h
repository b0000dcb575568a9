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
 * Layer-major over all n sequences: every prompt is embedded, all of them run through
 * layer 0, then layer 1, ... (each layer widened once from the mapped checkpoint, the
 * keys and values of every sequence kept), then the lm_head; each of the l - 1 decode
 * steps again loads layer 0, runs every sequence one token with its cache, then layer 1,
 * ... So each weight is read l times per call, whatever n is (stats: loads).
 *
 * Memory: the products run on batches of sequences whose cache (2 · layers · kvd · (k + l)
 * floats a sequence) fits cache_max (default CKS_GENERATE_CACHE_MAX, 256 MiB; at least one
 * sequence): batch = min(n, cache_max / (8 · layers · kvd · (k + l)), cache_max /
 * (4 · k · dim)) (the second: the prompts' residual stream within the same bound). The
 * caches of all sequences, the prompts' residual stream and each sequence's current row
 * live in memory when there is one batch, and otherwise in unlinked scratch files under
 * tmpdir (metrics rowstore), whose rows are dropped from the resident set once a batch is
 * done. Peak memory is one layer's weights (or the lm_head) plus about one
 * batch's cache and activations, whatever n is; the scratch files take
 * 4 · (2 · layers · kvd · (k + l) + (k + 1) · dim) bytes a sequence, and only the n · l
 * generated ids and n tokens grow in memory with n. */
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
    size_t cache_max;        /* bytes of one batch's cache, and the most each store keeps in
                                memory; 0: CKS_GENERATE_CACHE_MAX */
    const char *tmpdir;      /* scratch folder; NULL: $TMPDIR or /tmp */
    /* called before each step (done = steps finished so far, of l); may be NULL */
    void (*progress)(void *ctx, int64_t done, int64_t l);
    void *progress_ctx;
} cks_generate_options;

typedef struct {
    int64_t batch;                               /* sequences per batch */
    int64_t batches;                             /* batches per layer and step */
    int64_t loads;                               /* passes over the layers' weights (l) */
    int cache_file;                              /* the caches lived in a scratch file */
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
