/* Fetching ahead of use (source.h): passed to the backend that downloads (hf-hub); the
 * other sources have their files on disk, so every call is a no-op for them. */
#include "source_impl.h"

void cks_source_set_progress(cks_source *s, cks_fetch_progress_fn fn, void *ctx)
{
    if (s->fetch && s->fetch->set_progress)
        s->fetch->set_progress(s, fn, ctx);
}

int cks_source_prefetch(cks_source *s, size_t idx)
{
    return s->fetch && s->fetch->prefetch ? s->fetch->prefetch(s, idx) : 0;
}

int cks_source_wait(cks_source *s, size_t idx)
{
    return s->fetch && s->fetch->wait ? s->fetch->wait(s, idx) : 0;
}

int cks_source_evict(cks_source *s, const size_t *keep, size_t nkeep, uint64_t *freed)
{
    if (freed)
        *freed = 0;
    return s->fetch && s->fetch->evict ? s->fetch->evict(s, keep, nkeep, freed) : 0;
}

int cks_source_set_fetch_threads(cks_source *s, int n)
{
    return s->fetch && s->fetch->set_threads ? s->fetch->set_threads(s, n) : 0;
}

int cks_source_fetches(const cks_source *s)
{
    return s->fetch != NULL;
}

int cks_source_claim_cache(cks_source *s, int exclusive)
{
    return s->fetch && s->fetch->claim ? s->fetch->claim(s, exclusive) : 0;
}

void cks_source_set_interrupt(cks_source *s, const volatile sig_atomic_t *flag)
{
    if (s->fetch && s->fetch->set_interrupt)
        s->fetch->set_interrupt(s, flag);
}
