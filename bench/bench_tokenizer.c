/* Tokenizer throughput: MB/s of encoding about 1 MiB of English text (Debian's license
 * texts, repeated) with a SentencePiece model (default: the LLaMA tokenizer beside the
 * project) and, when given, a tokenizer.json. Also the same text with its newlines turned
 * into spaces, so the whole MiB is one segment for the merge engine.
 * With --text, the given text with each given tokenizer, one thread, best of 5, and a
 * tab-separated line per tokenizer for bench/bench_bpe.py:
 * RESULT <file> <best seconds> <tokens> <load seconds> <best CPU seconds>.
 *
 * usage: bench_tokenizer [tokenizer.model [tokenizer.json]]
 *        bench_tokenizer --text FILE TOKENIZER... */
#include "error.h"
#include "map.h"
#include "tokenizer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double clock_s(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static double now(void)
{
    return clock_s(CLOCK_MONOTONIC);
}

static char *english(size_t want, size_t *len)
{
    static const char *files[] = {
        "/usr/share/common-licenses/GPL-3", "/usr/share/common-licenses/Apache-2.0",
        "/usr/share/common-licenses/MPL-2.0", "/usr/share/common-licenses/GFDL-1.3"};
    char *out = malloc(want + 65536);
    size_t n = 0;
    while (out && n < want) {
        size_t before = n;
        for (size_t i = 0; i < sizeof files / sizeof files[0] && n < want; i++) {
            char *t = NULL;
            size_t l = 0;
            if (cks_read_file(files[i], 1 << 20, &t, &l) == 0 && l <= 65536) {
                memcpy(out + n, t, l);
                n += l;
            }
            free(t);
        }
        if (n == before)
            break;
    }
    *len = n;
    return out;
}

/* Best of 5 wall-clock seconds; *cpu: best of 5 CPU seconds of the process (what a loaded
 * machine does not inflate). */
static double bench(const char *label, const cks_tokenizer *t, const char *text, size_t len,
                    size_t *ntokens, double *cpu)
{
    double best = 1e30, best_cpu = 1e30;
    size_t ntok = 0;
    for (int rep = 0; rep < 5; rep++) {
        int32_t *ids = NULL;
        double t0 = now(), c0 = clock_s(CLOCK_PROCESS_CPUTIME_ID);
        if (cks_tokenizer_encode(t, text, len, &ids, &ntok) != 0) {
            fprintf(stderr, "bench_tokenizer: %s\n", cks_error_last());
            exit(1);
        }
        double dt = now() - t0, dc = clock_s(CLOCK_PROCESS_CPUTIME_ID) - c0;
        if (dt < best)
            best = dt;
        if (dc < best_cpu)
            best_cpu = dc;
        free(ids);
    }
    printf("%-34s %8.2f MB/s  %10.0f tokens/s  (%zu bytes -> %zu tokens, best of 5: %.1f ms)\n",
           label, (double)len / best / 1e6, (double)ntok / best, len, ntok, best * 1e3);
    if (ntokens)
        *ntokens = ntok;
    if (cpu)
        *cpu = best_cpu;
    return best;
}

static void run(const char *path, const char *text, size_t len, char *flat)
{
    cks_tokenizer *t = NULL;
    double t0 = now();
    if (cks_tokenizer_load_file(&t, path) != 0) {
        fprintf(stderr, "bench_tokenizer: %s\n", cks_error_last());
        exit(1);
    }
    printf("%s: %s, %lld pieces, loaded in %.1f ms\n", path, cks_tokenizer_kind(t),
           (long long)cks_tokenizer_vocab_size(t), (now() - t0) * 1e3);
    bench("  English text", t, text, len, NULL, NULL);
    bench("  same, newlines as spaces", t, flat, len, NULL, NULL);
    cks_tokenizer_free(t);
}

static int text_mode(int argc, char **argv)
{
    char *text = NULL;
    size_t len = 0;
    if (cks_read_file(argv[2], CKS_TOK_MAX_TEXT_BYTES, &text, &len) != 0) {
        fprintf(stderr, "bench_tokenizer: %s\n", cks_error_last());
        return 1;
    }
    for (int i = 3; i < argc; i++) {
        cks_tokenizer *t = NULL;
        double t0 = now();
        if (cks_tokenizer_load_file(&t, argv[i]) != 0) {
            fprintf(stderr, "bench_tokenizer: %s\n", cks_error_last());
            return 1;
        }
        double load = now() - t0;
        printf("%s: %s%s, %lld pieces, loaded in %.1f ms\n", argv[i], cks_tokenizer_kind(t),
               cks_tokenizer_byte_level(t) ? " byte-level" : "",
               (long long)cks_tokenizer_vocab_size(t), load * 1e3);
        size_t ntok = 0;
        double cpu = 0, best = bench("  text", t, text, len, &ntok, &cpu);
        printf("RESULT\t%s\t%.6f\t%zu\t%.6f\t%.6f\n", argv[i], best, ntok, load, cpu);
        cks_tokenizer_free(t);
    }
    free(text);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc >= 3 && strcmp(argv[1], "--text") == 0)
        return text_mode(argc, argv);
    const char *model = argc > 1 ? argv[1] : "../shared/data/tokenizers/llama/tokenizer.model";
    size_t len;
    char *text = english(1 << 20, &len);
    if (!text || len == 0) {
        fprintf(stderr, "bench_tokenizer: no text under /usr/share/common-licenses\n");
        return 1;
    }
    char *flat = malloc(len);
    memcpy(flat, text, len);
    for (size_t i = 0; i < len; i++)
        if (flat[i] == '\n')
            flat[i] = ' ';
    run(model, text, len, flat);
    if (argc > 2)
        run(argv[2], text, len, flat);
    free(flat);
    free(text);
    return 0;
}
