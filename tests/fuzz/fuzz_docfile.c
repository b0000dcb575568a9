/* Fuzz target: a held-out data file as corpora ship it, through the line reader (plain,
 * gzip, zstd by the first bytes: loaders/lines.h) and the document reader (JSONL "text" /
 * "token_ids" / meta subset, or plain text: loaders/docfile.h). The first byte chooses what
 * is asked for: bits 0-1 the kind (auto, text, tokens), bit 2 --split-by-meta; the rest is
 * the file. Limits are small (64 KiB lines, 1 MiB decompressed, 64 KiB before the ratio
 * applies) so that a bomb is cut at once. Checks: documents come in line order with ids in
 * [0, 2^31) and valid subset names, text lies within the decompressed bytes, a second pass
 * after rewinding gives the same documents, and a refusal names the file. */
#include "check.h"
#include "docfile.h"
#include "fuzz.h"

#include <string.h>

#define DISPLAY "fuzz/data.jsonl"

typedef struct {
    int64_t docs, ids, bytes, last_line;
    uint64_t idsum;
} tally;

static int pass(cks_docfile *f, const cks_docfile_options *o, tally *t)
{
    cks_doc d;
    int err;
    memset(t, 0, sizeof *t);
    while ((err = cks_docfile_next(f, &d)) == 0) {
        t->docs++;
        if (cks_docfile_is_jsonl(f)) {
            FUZZ_REQUIRE(d.line > t->last_line);
            t->last_line = d.line;
        } else {
            FUZZ_REQUIRE(d.line == 0 && t->docs == 1);
        }
        if (cks_docfile_kind(f) == CKS_DOC_TOKENS) {
            FUZZ_REQUIRE(d.n >= 0 && (d.n == 0 || d.ids));
            for (int64_t i = 0; i < d.n; i++) {
                FUZZ_REQUIRE(d.ids[i] >= 0);
                t->idsum += (uint64_t)d.ids[i];
            }
            t->ids += d.n;
        } else {
            FUZZ_REQUIRE(d.len <= (1u << 20) && (d.len == 0 || d.text));
            t->bytes += (int64_t)d.len;
            if (d.len) /* the text is readable to its end */
                t->idsum += (unsigned char)d.text[d.len - 1];
        }
        if (o->split_by_meta) {
            size_t n = strlen(d.subset);
            FUZZ_REQUIRE(n > 0 && n <= CKS_MAX_SUBSET_NAME);
            for (size_t i = 0; i < n; i++)
                FUZZ_REQUIRE((unsigned char)d.subset[i] >= 0x20 && d.subset[i] != 0x7f);
        } else {
            FUZZ_REQUIRE(d.subset == NULL);
        }
    }
    return err;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    cks_docfile_options o = {
        .want = (cks_doc_kind)(data[0] & 3) % 3,
        .split_by_meta = (data[0] >> 2) & 1,
        .max_text = 1u << 20,
        .lim = {.max_line = 1u << 16, .max_bytes = 1u << 20, .ratio_free = 1u << 16}};
    cks_docfile *f = NULL;
    tally a, b;
    int err = cks_docfile_open_mem(&f, data + 1, size - 1, DISPLAY, &o);
    if (!err) {
        FUZZ_REQUIRE(cks_docfile_kind(f) == CKS_DOC_TEXT || cks_docfile_kind(f) == CKS_DOC_TOKENS);
        FUZZ_REQUIRE(o.want == CKS_DOC_AUTO || cks_docfile_kind(f) == o.want);
        FUZZ_REQUIRE(cks_docfile_is_jsonl(f) || cks_docfile_kind(f) == CKS_DOC_TEXT);
        err = pass(f, &o, &a);
        if (err == CKS_ITEROVER) {
            FUZZ_REQUIRE(cks_docfile_rewind(f) == 0);
            FUZZ_REQUIRE(pass(f, &o, &b) == CKS_ITEROVER);
            FUZZ_REQUIRE(memcmp(&a, &b, sizeof a) == 0);
            err = 0;
        }
    }
    cks_docfile_free(f);
    if (err)
        fuzz_check_refusal(err, DISPLAY);
    return 0;
}
