/* Parser of SentencePiece model files (tokenizer.model): a protobuf ModelProto, read
 * with a bounded reader, then checked as sentencepiece's ModelInterface::InitializePieces
 * and Normalizer do before the tokenizer is built.
 *
 * Layout (sentencepiece_model.proto, proto2; fields not listed are skipped by wire type):
 *   ModelProto     { repeated SentencePiece pieces = 1; TrainerSpec trainer_spec = 2;
 *                    NormalizerSpec normalizer_spec = 3; (4 self_test_data, 5 denormalizer) }
 *   SentencePiece  { string piece = 1; float score = 2; Type type = 3 [default NORMAL];
 *                    Type: NORMAL 1, UNKNOWN 2, CONTROL 3, USER_DEFINED 4, UNUSED 5, BYTE 6 }
 *   TrainerSpec    { ModelType model_type = 3 [default UNIGRAM] (UNIGRAM 1, BPE 2, WORD 3,
 *                    CHAR 4); bool treat_whitespace_as_suffix = 24; bool split_digits = 25
 *                    (training only); bool byte_fallback = 35; int32 unk_id..pad_id = 40..43;
 *                    string unk_piece = 45, bos_piece = 46, eos_piece = 47, pad_piece = 48 }
 *   NormalizerSpec { string name = 1; bytes precompiled_charsmap = 2;
 *                    bool add_dummy_prefix = 3, remove_extra_whitespaces = 4,
 *                    escape_whitespaces = 5 (all default true) }
 *
 * Reader checks: varints at most 10 bytes (the 10th at most 1); every length within its
 * enclosing message; wire types 0, 1, 2, 5 only (groups refused: nothing here recurses
 * on input); field numbers >= 1. At most CKS_TOK_MAX_PIECES pieces of at most
 * CKS_TOK_MAX_PIECE_BYTES bytes. Model checks: model_type BPE; pieces non-empty, without
 * NUL, valid UTF-8, a known type, not defined twice; exactly one UNKNOWN piece; BYTE
 * pieces spelled <0xXX> and only with byte_fallback, which needs all 256; scores not NaN;
 * normalizer "identity" (or unnamed) with no precompiled charsmap;
 * treat_whitespace_as_suffix off. */
#include "error.h"
#include "tok_impl.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "spm_model.c reads protobuf fixed32 floats as little-endian host floats"
#endif

enum { WT_VARINT = 0, WT_I64 = 1, WT_LEN = 2, WT_I32 = 5 };
enum { MT_UNIGRAM = 1, MT_BPE = 2, MT_WORD = 3, MT_CHAR = 4 };

typedef struct {
    const uint8_t *p, *end, *base, *file_end;
    const char *display;
    const char *what; /* the message being read, for errors */
} pb;

static int pb_truncated(const pb *r)
{
    return cks_error_set(CKS_EFORMAT, "%s: truncated protobuf: %s ends inside a field at byte %zu",
                         r->display, r->what, (size_t)(r->end - r->base));
}

static int pb_varint(pb *r, uint64_t *out)
{
    uint64_t x = 0;
    const uint8_t *start = r->p;
    for (int i = 0; i < 10; i++) {
        if (r->p >= r->end)
            return pb_truncated(r);
        uint8_t b = *r->p++;
        if (i == 9 && b > 1)
            break;
        x |= (uint64_t)(b & 0x7F) << (7 * i);
        if (!(b & 0x80)) {
            *out = x;
            return 0;
        }
    }
    return cks_error_set(CKS_EFORMAT, "%s: varint at byte %zu overflows 64 bits (in %s)",
                         r->display, (size_t)(start - r->base), r->what);
}

static int pb_key(pb *r, uint32_t *field, int *wire)
{
    uint64_t k = 0;
    const uint8_t *at = r->p;
    int rc = pb_varint(r, &k);
    if (rc)
        return rc;
    *wire = (int)(k & 7);
    if (k >> 3 == 0 || k >> 3 > 0x1FFFFFFF)
        return cks_error_set(CKS_EFORMAT, "%s: invalid field number %llu at byte %zu (in %s)",
                             r->display, (unsigned long long)(k >> 3), (size_t)(at - r->base),
                             r->what);
    *field = (uint32_t)(k >> 3);
    if (*wire != WT_VARINT && *wire != WT_I64 && *wire != WT_LEN && *wire != WT_I32)
        return cks_error_set(CKS_EFORMAT,
                             "%s: field %u at byte %zu has wire type %d (groups and unknown "
                             "wire types are not supported) (in %s)",
                             r->display, *field, (size_t)(at - r->base), *wire, r->what);
    return 0;
}

/* A length-delimited field: sets *sub to its bytes (within r) and advances r past it. */
static int pb_len(pb *r, uint32_t field, pb *sub)
{
    uint64_t n = 0;
    const uint8_t *at = r->p;
    int rc = pb_varint(r, &n);
    if (rc)
        return rc;
    size_t left = (size_t)(r->end - r->p);
    if (n > left && r->end == r->file_end)
        return cks_error_set(CKS_EFORMAT,
                             "%s: truncated protobuf: field %u at byte %zu (in %s) has length "
                             "%llu but the file ends %zu bytes later",
                             r->display, field, (size_t)(at - r->base), r->what,
                             (unsigned long long)n, left);
    if (n > left)
        return cks_error_set(CKS_EFORMAT,
                             "%s: field %u at byte %zu has length %llu, past the end of %s "
                             "(%zu bytes left)",
                             r->display, field, (size_t)(at - r->base), (unsigned long long)n,
                             r->what, left);
    *sub = *r;
    sub->end = r->p + n;
    r->p += n;
    return 0;
}

static int pb_skip(pb *r, uint32_t field, int wire)
{
    uint64_t v;
    pb sub;
    size_t need = wire == WT_I64 ? 8 : 4;
    switch (wire) {
    case WT_VARINT:
        return pb_varint(r, &v);
    case WT_LEN:
        return pb_len(r, field, &sub);
    default:
        if ((size_t)(r->end - r->p) < need)
            return pb_truncated(r);
        r->p += need;
        return 0;
    }
}

static int pb_want(const pb *r, uint32_t field, int wire, int want)
{
    if (wire == want)
        return 0;
    return cks_error_set(CKS_EFORMAT, "%s: field %u of %s has wire type %d, expected %d",
                         r->display, field, r->what, wire, want);
}

typedef struct {
    const uint8_t *p;
    size_t len;
    int set;
} pb_str;

typedef struct {
    int model_type, treat_ws_suffix, byte_fallback;
    pb_str bos_piece, eos_piece;
    pb_str norm_name;
    size_t charsmap_len;
    int add_dummy_prefix, remove_extra_ws, escape_ws;
    int32_t cap; /* of score/type */
} spm_spec;

static int read_trainer(pb *r, spm_spec *s)
{
    r->what = "trainer_spec";
    while (r->p < r->end) {
        uint32_t f = 0;
        int wt = 0, rc;
        uint64_t v;
        pb sub;
        if ((rc = pb_key(r, &f, &wt)))
            return rc;
        if (f == 3 || f == 24 || f == 35) {
            if ((rc = pb_want(r, f, wt, WT_VARINT)) || (rc = pb_varint(r, &v)))
                return rc;
            if (f == 3)
                s->model_type = (int)(v > 100 ? 100 : v);
            else if (f == 24)
                s->treat_ws_suffix = v != 0;
            else
                s->byte_fallback = v != 0;
        } else if (f == 46 || f == 47) {
            if ((rc = pb_want(r, f, wt, WT_LEN)) || (rc = pb_len(r, f, &sub)))
                return rc;
            pb_str *d = f == 46 ? &s->bos_piece : &s->eos_piece;
            d->p = sub.p;
            d->len = (size_t)(sub.end - sub.p);
            d->set = 1;
        } else if ((rc = pb_skip(r, f, wt))) {
            return rc;
        }
    }
    return 0;
}

static int read_normalizer(pb *r, spm_spec *s)
{
    r->what = "normalizer_spec";
    while (r->p < r->end) {
        uint32_t f = 0;
        int wt = 0, rc;
        uint64_t v;
        pb sub;
        if ((rc = pb_key(r, &f, &wt)))
            return rc;
        if (f == 1 || f == 2) {
            if ((rc = pb_want(r, f, wt, WT_LEN)) || (rc = pb_len(r, f, &sub)))
                return rc;
            if (f == 1) {
                s->norm_name.p = sub.p;
                s->norm_name.len = (size_t)(sub.end - sub.p);
                s->norm_name.set = 1;
            } else {
                s->charsmap_len = (size_t)(sub.end - sub.p);
            }
        } else if (f >= 3 && f <= 5) {
            if ((rc = pb_want(r, f, wt, WT_VARINT)) || (rc = pb_varint(r, &v)))
                return rc;
            int *d = f == 3 ? &s->add_dummy_prefix : f == 4 ? &s->remove_extra_ws : &s->escape_ws;
            *d = v != 0;
        } else if ((rc = pb_skip(r, f, wt))) {
            return rc;
        }
    }
    return 0;
}

static int read_piece(pb *r, cks_tokenizer *t, spm_spec *s)
{
    int32_t id = t->pieces.n;
    const uint8_t *text = NULL;
    size_t tlen = 0;
    float score = 0;
    uint64_t type = SPM_NORMAL;
    r->what = "a piece";
    if (id >= CKS_TOK_MAX_PIECES)
        return cks_error_set(CKS_ELIMIT, "%s: more than %d pieces", r->display, CKS_TOK_MAX_PIECES);
    while (r->p < r->end) {
        uint32_t f = 0;
        int wt = 0, rc;
        pb sub;
        if ((rc = pb_key(r, &f, &wt)))
            return rc;
        if (f == 1) {
            if ((rc = pb_want(r, f, wt, WT_LEN)) || (rc = pb_len(r, f, &sub)))
                return rc;
            text = sub.p;
            tlen = (size_t)(sub.end - sub.p);
        } else if (f == 2) {
            if ((rc = pb_want(r, f, wt, WT_I32)))
                return rc;
            if (r->end - r->p < 4)
                return pb_truncated(r);
            memcpy(&score, r->p, 4);
            r->p += 4;
        } else if (f == 3) {
            if ((rc = pb_want(r, f, wt, WT_VARINT)) || (rc = pb_varint(r, &type)))
                return rc;
        } else if ((rc = pb_skip(r, f, wt))) {
            return rc;
        }
    }
    if (tlen > CKS_TOK_MAX_PIECE_BYTES)
        return cks_error_set(CKS_ELIMIT, "%s: piece %d is %zu bytes (limit %d)", r->display, id,
                             tlen, CKS_TOK_MAX_PIECE_BYTES);
    if (tlen == 0)
        return cks_error_set(CKS_EFORMAT, "%s: piece %d is empty", r->display, id);
    if (memchr(text, 0, tlen))
        return cks_error_set(CKS_EFORMAT, "%s: piece %d contains a NUL byte", r->display, id);
    if (cks_utf8_check((const char *)text, tlen) != tlen)
        return cks_error_set(CKS_EFORMAT, "%s: piece %d is not valid UTF-8", r->display, id);
    if (type < SPM_NORMAL || type > SPM_BYTE)
        return cks_error_set(CKS_EFORMAT, "%s: piece %d ('%.*s') has unknown type %llu", r->display,
                             id, (int)tlen, (const char *)text, (unsigned long long)type);
    if (isnan(score))
        return cks_error_set(CKS_EFORMAT, "%s: piece %d has a NaN score", r->display, id);
    if (id == s->cap) {
        int32_t cap = s->cap ? s->cap * 2 : 1024;
        if (cap > CKS_TOK_MAX_PIECES)
            cap = CKS_TOK_MAX_PIECES;
        float *sc = realloc(t->score, (size_t)cap * sizeof *sc);
        if (!sc)
            return cks_error_set(CKS_ENOMEM, "out of memory (%d pieces)", cap);
        t->score = sc;
        uint8_t *ty = realloc(t->type, (size_t)cap);
        if (!ty)
            return cks_error_set(CKS_ENOMEM, "out of memory (%d pieces)", cap);
        t->type = ty;
        s->cap = cap;
    }
    t->score[id] = score;
    t->type[id] = (uint8_t)type;
    return cks_tok_strs_add(&t->pieces, (const char *)text, tlen);
}

static int read_model(pb *r, cks_tokenizer *t, spm_spec *s)
{
    while (r->p < r->end) {
        uint32_t f = 0;
        int wt = 0, rc;
        pb sub;
        r->what = "the ModelProto";
        if ((rc = pb_key(r, &f, &wt)))
            return rc;
        if (f >= 1 && f <= 3) {
            if ((rc = pb_want(r, f, wt, WT_LEN)) || (rc = pb_len(r, f, &sub)))
                return rc;
            rc = f == 1   ? read_piece(&sub, t, s)
                 : f == 2 ? read_trainer(&sub, s)
                          : read_normalizer(&sub, s);
            if (rc)
                return rc;
        } else if ((rc = pb_skip(r, f, wt))) {
            return rc;
        }
    }
    return 0;
}

/* "<0xXX>" with two uppercase hex digits (sentencepiece's ByteToPiece), else -1. */
static int byte_of_piece(const char *p, size_t len)
{
    static const char hex[] = "0123456789ABCDEF";
    if (len != 6 || memcmp(p, "<0x", 3) != 0 || p[5] != '>')
        return -1;
    const char *a = strchr(hex, p[3]), *b = strchr(hex, p[4]);
    if (!a || !b || !p[3] || !p[4])
        return -1;
    return (int)(a - hex) * 16 + (int)(b - hex);
}

static int check_spec(const cks_tokenizer *t, const spm_spec *s)
{
    static const char *types[] = {"?", "UNIGRAM", "BPE", "WORD", "CHAR"};
    const char *d = t->display;
    if (s->model_type != MT_BPE)
        return cks_error_set(
            CKS_EUNSUPPORTED, "%s: model_type %s is not supported (only BPE models, as LLaMA's)", d,
            s->model_type >= 1 && s->model_type <= 4 ? types[s->model_type] : "(unknown)");
    if (s->treat_ws_suffix)
        return cks_error_set(CKS_EUNSUPPORTED, "%s: treat_whitespace_as_suffix is not supported",
                             d);
    int named_identity = !s->norm_name.set || s->norm_name.len == 0 ||
                         (s->norm_name.len == 8 && memcmp(s->norm_name.p, "identity", 8) == 0);
    if (!named_identity || s->charsmap_len) {
        char name[64];
        size_t n = s->norm_name.len < sizeof name - 1 ? s->norm_name.len : sizeof name - 1;
        memcpy(name, s->norm_name.set ? (const char *)s->norm_name.p : "", n);
        name[n] = '\0';
        return cks_error_set(CKS_EUNSUPPORTED,
                             "%s: normalization rule '%s' (precompiled charsmap of %zu bytes) is "
                             "not supported; only 'identity' (LLaMA's)",
                             d, name, s->charsmap_len);
    }
    if (t->pieces.n == 0)
        return cks_error_set(CKS_EFORMAT, "%s: the model has no pieces", d);
    return 0;
}

static int build_maps(cks_tokenizer *t, const spm_spec *s)
{
    const char *d = t->display;
    int rc = cks_tok_strmap_init(&t->normal, (size_t)t->pieces.n);
    if (!rc)
        rc = cks_tok_strmap_init(&t->reserved, (size_t)t->pieces.n);
    if (rc)
        return rc;
    int nbytes = 0;
    for (int32_t i = 0; i < t->pieces.n; i++) {
        int ty = t->type[i];
        const char *p = cks_tok_str(&t->pieces, i);
        int normal = ty == SPM_NORMAL || ty == SPM_USER_DEFINED || ty == SPM_UNUSED;
        int32_t prev = cks_tok_strmap_put(normal ? &t->normal : &t->reserved, &t->pieces, i);
        if (prev >= 0)
            return cks_error_set(CKS_EFORMAT, "%s: piece '%s' is defined twice (ids %d and %d)", d,
                                 p, prev, i);
        if (ty == SPM_USER_DEFINED &&
            (rc = cks_tok_matcher_add(&t->prefix, p, t->pieces.len[i], i)))
            return cks_error_prefix(rc, "%s", d);
        if (ty == SPM_UNUSED)
            t->has_unused = 1;
        if (ty == SPM_UNKNOWN) {
            if (t->unk_id >= 0)
                return cks_error_set(CKS_EFORMAT, "%s: two UNKNOWN pieces (ids %d and %d)", d,
                                     t->unk_id, i);
            t->unk_id = i;
        }
        if (ty == SPM_BYTE) {
            if (!s->byte_fallback)
                return cks_error_set(CKS_EFORMAT,
                                     "%s: byte piece '%s' (id %d) although byte_fallback is off", d,
                                     p, i);
            int b = byte_of_piece(p, t->pieces.len[i]);
            if (b < 0)
                return cks_error_set(CKS_EFORMAT, "%s: byte piece '%s' (id %d) is not <0xXX>", d, p,
                                     i);
            if (t->byte_id[b] < 0)
                nbytes++;
            t->byte_id[b] = i;
        }
    }
    if (t->unk_id < 0)
        return cks_error_set(CKS_EFORMAT, "%s: the model has no UNKNOWN piece", d);
    if (s->byte_fallback && nbytes != 256)
        return cks_error_set(CKS_EFORMAT,
                             "%s: byte_fallback is on but only %d of the 256 byte pieces exist", d,
                             nbytes);
    return cks_tok_matcher_build(&t->prefix);
}

/* SentencePieceProcessor::bos_id(): the id of the piece, when it is a CONTROL piece. */
static int32_t control_id(const cks_tokenizer *t, const pb_str *name, const char *dflt)
{
    const char *p = name->set && name->len ? (const char *)name->p : dflt;
    size_t len = name->set && name->len ? name->len : strlen(dflt);
    int32_t id = cks_tok_strmap_get(&t->reserved, &t->pieces, p, len);
    return id >= 0 && t->type[id] == SPM_CONTROL ? id : -1;
}

int cks_tokenizer_load_spm(cks_tokenizer **out, const void *data, size_t len, const char *display)
{
    cks_tokenizer *t = cks_tok_new(TOK_SPM, display);
    if (!t)
        return cks_error_set(CKS_ENOMEM, "out of memory");
    if (len > CKS_TOK_MAX_FILE_BYTES) {
        int rc = cks_error_set(CKS_ELIMIT, "%s: %zu bytes, over the limit of %u", t->display, len,
                               CKS_TOK_MAX_FILE_BYTES);
        cks_tokenizer_free(t);
        return rc;
    }
    spm_spec s;
    memset(&s, 0, sizeof s);
    s.model_type = MT_UNIGRAM;
    s.add_dummy_prefix = s.remove_extra_ws = s.escape_ws = 1;
    const uint8_t *d = data;
    pb r = {d, d + len, d, d + len, t->display, "the ModelProto"};
    int rc = read_model(&r, t, &s);
    if (!rc)
        rc = check_spec(t, &s);
    if (!rc)
        rc = build_maps(t, &s);
    if (rc) {
        cks_tokenizer_free(t);
        return rc;
    }
    t->byte_fallback = s.byte_fallback;
    t->add_dummy_prefix = s.add_dummy_prefix;
    t->remove_extra_ws = s.remove_extra_ws;
    t->escape_ws = s.escape_ws;
    t->bos_id = control_id(t, &s.bos_piece, "<s>");
    t->eos_id = control_id(t, &s.eos_piece, "</s>");
    cks_tok_barriers(t, NULL);
    if ((rc = cks_tok_build_text(t)) != 0) {
        cks_tokenizer_free(t);
        return rc;
    }
    *out = t;
    return 0;
}
