/* Fuzz target: a shard index (model.safetensors.index.json / pytorch_model.bin.index.json)
 * through cks_shard_index_parse. Accepted indexes must keep shard_index.h's promises:
 * every tensor names one of the files, files sorted and distinct, each a safe relative
 * path. */
#include "check.h"
#include "fuzz.h"
#include "shard_index.h"

#define DISPLAY "fuzz/model.safetensors.index.json"

static void check_path(const char *p)
{
    FUZZ_REQUIRE(*p && p[0] != '/');
    for (const char *c = p; *c;) {
        size_t n = strcspn(c, "/");
        FUZZ_REQUIRE(!(n == 2 && c[0] == '.' && c[1] == '.'));
        c += n;
        if (*c == '/')
            c++;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cks_shard_index ix;
    int err = cks_shard_index_parse((const char *)data, size, DISPLAY, &ix);
    if (err) {
        fuzz_check_refusal(err, DISPLAY);
        return 0;
    }
    for (size_t i = 0; i < ix.nfiles; i++) {
        check_path(ix.files[i]);
        FUZZ_REQUIRE(i == 0 || strcmp(ix.files[i - 1], ix.files[i]) < 0);
    }
    for (size_t i = 0; i < ix.ntensors; i++) {
        FUZZ_REQUIRE(ix.tensors[i] != NULL);
        FUZZ_REQUIRE(ix.file_of[i] < ix.nfiles);
    }
    cks_shard_index_release(&ix);
    return 0;
}
