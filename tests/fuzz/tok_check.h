/* Shared by the tokenizer fuzz targets: encode a text and check what comes back. */
#ifndef CKS_FUZZ_TOK_CHECK_H
#define CKS_FUZZ_TOK_CHECK_H

#include "check.h"
#include "tokenizer.h"
#include "utf8.h"

/* Encodes text with t; an accepted text gives ids inside the vocabulary, each with a piece;
 * a refused one (invalid UTF-8, a limit) names the byte offset, not a file. */
static inline void fuzz_encode(const cks_tokenizer *t, const char *text, size_t len)
{
    int32_t *ids = NULL;
    size_t n = 0;
    int err = cks_tokenizer_encode(t, text, len, &ids, &n);
    if (err) {
        fuzz_check_refusal(err, NULL);
        return;
    }
    int64_t vocab = cks_tokenizer_vocab_size(t);
    FUZZ_REQUIRE(n == 0 || ids);
    /* At most one id per byte of the normalized text (NFC: at most 3 times the input) and
     * per prefix space (one per piece at most): 6 per input byte. */
    FUZZ_REQUIRE(n <= 6 * len + 4);
    for (size_t i = 0; i < n; i++) {
        FUZZ_REQUIRE(ids[i] >= 0 && ids[i] < vocab);
        FUZZ_REQUIRE(cks_tokenizer_piece(t, ids[i]) != NULL);
    }
    char *text8 = NULL;
    size_t len8 = 0;
    FUZZ_REQUIRE(cks_tokenizer_decode_utf8(t, ids, n, &text8, &len8) == 0);
    FUZZ_REQUIRE(cks_utf8_check(text8, len8) == len8 && text8[len8] == '\0');
    free(text8);
    free(ids);
}

/* Texts every loaded tokenizer encodes: ASCII words, runs of spaces, digits, accents, CJK,
 * an emoji (byte fallback or <unk>), control characters and special-token spellings. */
static const char *const fuzz_texts[] = {
    "Hello world",
    "  two  spaces\tand a tab\nnewline ",
    "12345 67.89",
    "caf\xc3\xa9 na\xc3\xafve \xe2\x96\x81 \xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e",
    "\xf0\x9f\x98\x80 <s> </s> <unk> <0x41>",
    "",
};

static inline void fuzz_encode_all(const cks_tokenizer *t)
{
    int64_t vocab = cks_tokenizer_vocab_size(t);
    FUZZ_REQUIRE(vocab > 0 && vocab <= CKS_TOK_MAX_PIECES);
    int32_t bos = cks_tokenizer_bos_id(t), eos = cks_tokenizer_eos_id(t);
    FUZZ_REQUIRE(bos >= -1 && bos < vocab && eos >= -1 && eos < vocab);
    FUZZ_REQUIRE(cks_tokenizer_piece(t, -1) == NULL &&
                 cks_tokenizer_piece(t, (int32_t)vocab) == NULL);
    for (size_t i = 0; i < sizeof fuzz_texts / sizeof fuzz_texts[0]; i++)
        fuzz_encode(t, fuzz_texts[i], strlen(fuzz_texts[i]));
}

#endif
