/* Fuzz target: training data for memorisation (loaders/trainset.h, metrics/memo.h): a
 * JSONL file of "token_ids" lines, plain or compressed, read for a prompt k and a
 * continuation l and optionally sampled with gsl_ran_choose. The first byte chooses k and l
 * (1..4 each) and the sample size (0: all, else 1..3); the rest is the file, written to one
 * temporary file (the reader takes paths). Checks: kept + skipped lines and the kept lines'
 * order, the sample's size, each kept sequence's largest id, that scoring the truth as the
 * generation is a full match, and that a refusal names the file. */
#include "check.h"
#include "fuzz.h"
#include "memo.h"
#include "trainset.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char path[64];

static void remove_tmp(void)
{
    unlink(path);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    snprintf(path, sizeof path, "/tmp/cks-fuzz-trainset-XXXXXX");
    int fd = mkstemp(path);
    if (fd < 0)
        abort();
    close(fd);
    atexit(remove_tmp);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    if (!path[0])
        LLVMFuzzerInitialize(NULL, NULL);
    FILE *fp = fopen(path, "wb");
    FUZZ_REQUIRE(fp && fwrite(data + 1, 1, size - 1, fp) == size - 1 && fclose(fp) == 0);
    int64_t k = 1 + (data[0] & 3), l = 1 + ((data[0] >> 2) & 3), samples = (data[0] >> 4) & 3;
    cks_trainset t;
    int err = cks_memo_load(&t, path, k, l, samples, data[0] >> 6);
    if (err) {
        fuzz_check_refusal(err, path);
        return 0;
    }
    FUZZ_REQUIRE(t.width == k + l && t.n <= t.eligible);
    FUZZ_REQUIRE(samples == 0 || t.eligible <= samples ? t.n == t.eligible : t.n == samples);
    int32_t *gen = malloc((size_t)(t.n * l + 1) * sizeof *gen);
    FUZZ_REQUIRE(gen != NULL);
    for (int64_t i = 0; i < t.n; i++) {
        FUZZ_REQUIRE(i == 0 || t.line[i] > t.line[i - 1]);
        for (int64_t j = 0; j < t.width; j++)
            FUZZ_REQUIRE(t.ids[i * t.width + j] >= 0 && t.ids[i * t.width + j] <= t.maxid[i]);
        FUZZ_REQUIRE(t.maxid[i] <= t.file_maxid && t.file_maxid_line >= 1);
        memcpy(gen + i * l, t.ids + i * t.width + k, (size_t)l * sizeof *gen);
    }
    cks_memo_summary s;
    cks_memo_score(&s, &t, k, gen, NULL, NULL);
    FUZZ_REQUIRE(s.sequences == t.n && s.skipped == t.skipped);
    FUZZ_REQUIRE(t.n == 0 ||
                 (s.token_match == 1.0 && s.full_match == 1.0 && s.prefix_match == 1.0));
    int64_t vocab = 1 + (int64_t)(data[0] & 0x7f);
    err = cks_trainset_check_vocab(&t, vocab, "fuzz@ckpt");
    FUZZ_REQUIRE((err != 0) == (t.file_maxid >= vocab)); /* every line read is checked */
    if (err)
        fuzz_check_refusal(err, path);
    free(gen);
    cks_trainset_release(&t);
    return 0;
}
