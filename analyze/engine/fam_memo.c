/* The memorization family (DESIGN §3, §4 /memo): the training sequences of every
 * --train-data file (one set each, named as --eval sets are), the same --samples of them
 * (gsl_ran_choose seeded --seed) for every checkpoint, continued greedily by the
 * checkpoint's own weights (metrics/generate.h, all sets in one layer-major generation)
 * and scored (metrics/memo.h): /memo/<set>/{token_match, full_match, prefix_match,
 * sequences} series and the /memo/<set>/full uint8 row (1 where a sequence was reproduced
 * whole, in the sample's order). The files, k, l, the sample and the arithmetic are the
 * run file's root attribute "memorization", so that a resumed scan or a shard cannot mix
 * them. */
#include "error.h"
#include "evalset.h"
#include "family.h"
#include "generate.h"
#include "memo.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define K CKS_MEMO_PROMPT
#define L CKS_MEMO_CONTINUATION

static int given(const cks_scan_options *o)
{
    return o->ntrain > 0;
}

static int prepare(const cks_scan_options *o, char **value)
{
    char names[CKS_SCAN_MAX_EVAL][256];
    json_t *sets;
    *value = NULL;
    if (!o->ntrain)
        return cks_error_set(CKS_EINVAL,
                             "the memorization family needs training data: --train-data FILE");
    if (o->ntrain > CKS_SCAN_MAX_EVAL)
        return cks_error_set(CKS_EINVAL, "more than %d --train-data files", CKS_SCAN_MAX_EVAL);
    if (o->precision < 0 || o->precision >= CKS_PRECISION_COUNT)
        return cks_error_set(CKS_EINVAL, "unknown precision %d", o->precision);
    sets = json_array();
    for (size_t i = 0; i < o->ntrain; i++) {
        if (access(o->trains[i], R_OK) != 0) {
            json_decref(sets);
            return cks_error_set(CKS_ENOTFOUND, "--train-data %s: cannot read the file",
                                 o->trains[i]);
        }
        cks_evalset_name(o->trains[i], names[i], sizeof names[i]);
        for (size_t j = 0; j < i; j++)
            if (strcmp(names[j], names[i]) == 0) {
                json_decref(sets);
                return cks_error_set(CKS_EINVAL,
                                     "--train-data %s and %s would both be set '%s'; rename one",
                                     o->trains[j], o->trains[i], names[i]);
            }
        json_array_append_new(sets, json_string(names[i]));
    }
    json_t *doc =
        json_pack("{s:o, s:i, s:i, s:I, s:I, s:s}", "sets", sets, "prompt", K, "continuation", L,
                  "samples", (json_int_t)o->samples, "seed", (json_int_t)o->seed, "precision",
                  cks_precision_name((cks_precision)o->precision));
    *value = json_dumps(doc, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(doc);
    return *value ? 0 : cks_error_set(CKS_ENOMEM, "out of memory");
}

/* The sampled sequences of every file, their prompts gathered for one generation. */
typedef struct {
    cks_trainset *t; /* [ntrain] */
    int64_t total;
    int32_t *ids; /* [total × K] */
    int32_t *gen; /* [total × L] */
} memo_data;

static void data_release(memo_data *d, size_t n)
{
    for (size_t i = 0; d->t && i < n; i++)
        cks_trainset_release(&d->t[i]);
    free(d->t);
    free(d->ids);
    free(d->gen);
}

static int data_load(memo_data *d, const cks_scan_options *o, int64_t vocab, const char *display)
{
    int err = 0;
    if (!(d->t = calloc(o->ntrain, sizeof *d->t)))
        return cks_error_set(CKS_ENOMEM, "out of memory");
    for (size_t i = 0; i < o->ntrain && !err; i++)
        if ((err = cks_memo_load(&d->t[i], o->trains[i], K, L, o->samples,
                                 (unsigned long)o->seed)) == 0 &&
            (err = cks_trainset_check_vocab(&d->t[i], vocab, display)) == 0)
            d->total += d->t[i].n;
    if (err)
        return err;
    d->ids = malloc((size_t)(d->total ? d->total : 1) * K * sizeof *d->ids);
    d->gen = malloc((size_t)(d->total ? d->total : 1) * L * sizeof *d->gen);
    if (!d->ids || !d->gen)
        return cks_error_set(CKS_ENOMEM, "out of memory for %lld sequences", (long long)d->total);
    int64_t q = 0;
    for (size_t i = 0; i < o->ntrain; i++)
        for (int64_t s = 0; s < d->t[i].n; s++, q++)
            memcpy(d->ids + q * K, d->t[i].ids + s * d->t[i].width, K * sizeof *d->ids);
    return 0;
}

/* One set's items: the scores (NaN when gen is NULL) and, with a generation, its flags. */
static int emit(const char *file, const cks_trainset *t, const int32_t *gen, cks_items *out)
{
    static const struct {
        const char *name, *what;
    } m[] = {{"token_match", "mean over sequences of the fraction of continuation tokens the "
                             "greedy generation reproduced"},
             {"full_match", "fraction of sequences whose continuation was reproduced whole"},
             {"prefix_match", "mean over sequences of the longest reproduced prefix of the "
                              "continuation / its length"},
             {"sequences", "training sequences scored (those with at least prompt + "
                           "continuation ids, sampled)"}};
    char name[256], path[512];
    cks_memo_summary s = {.token_match = NAN, .full_match = NAN, .prefix_match = NAN};
    uint8_t *full = NULL;
    int err = 0;
    cks_evalset_name(file, name, sizeof name);
    char *esc = cks_store_escape_name(name);
    if (!esc)
        return cks_error_set(CKS_ENOMEM, "out of memory");
    if (gen) {
        if (!(full = malloc((size_t)(t->n ? t->n : 1)))) {
            free(esc);
            return cks_error_set(CKS_ENOMEM, "out of memory");
        }
        cks_memo_score(&s, t, K, gen, NULL, full);
    }
    const double v[] = {s.token_match, s.full_match, s.prefix_match,
                        gen ? (double)s.sequences : NAN};
    for (size_t k = 0; k < sizeof m / sizeof m[0] && !err; k++) {
        snprintf(path, sizeof path, "/memo/%s/%s", esc, m[k].name);
        err = cks_items_series(out, path, v[k], m[k].what, k == 3 ? "sequences" : NULL);
    }
    if (!err && gen && t->n > 0) {
        snprintf(path, sizeof path, "/memo/%s/full", esc);
        err = cks_items_row_u8(out, path, full, (size_t)t->n, "sequence",
                               "1 where the sequence's continuation was reproduced whole, 0 "
                               "where not (255: no value), in the sample's order",
                               NULL);
        full = NULL; /* adopted, also on failure */
    }
    free(full);
    free(esc);
    return err;
}

static int generate(const cks_family_ckpt *in, memo_data *d)
{
    const cks_scan_options *o = in->o;
    cks_config cfg;
    int err;
    if ((err = cks_ckpt_config(in->cur.ckpt, &cfg)) != 0 ||
        (err = data_load(d, o, cfg.vocab_size, in->display)) != 0)
        return err;
    cks_generate_options go = {
        .k = K, .l = L, .nthreads = o->threads, .precision = (cks_precision)o->precision};
    return cks_generate(d->gen, in->cur.w, &cfg, in->display, d->ids, K, d->total, &go, NULL);
}

static int checkpoint(const cks_family_ckpt *in, cks_items *out)
{
    const cks_scan_options *o = in->o;
    memo_data d;
    memset(&d, 0, sizeof d);
    if (in->h->progress) {
        cks_scan_progress p = {.pos = in->cur.pos,
                               .nsel = in->nsel,
                               .name = cks_ckpt_info_of(in->cur.ckpt)->name,
                               .what = "memorization",
                               .frac = -1};
        in->h->progress(in->h->ctx, &p);
    }
    int err = generate(in, &d), e2 = 0;
    char msg[1024] = "";
    if (err)
        snprintf(msg, sizeof msg, "%s", cks_error_last());
    int64_t q = 0;
    for (size_t i = 0; i < o->ntrain && !e2; i++) {
        e2 = emit(o->trains[i], d.t ? &d.t[i] : NULL, err ? NULL : d.gen + q * L, out);
        q += d.t ? d.t[i].n : 0;
    }
    data_release(&d, o->ntrain);
    if (err && !e2)
        cks_error_set(err, "%s", msg); /* the generation's message, not a later one */
    return e2 ? e2 : err;
}

const cks_family cks_family_memo = {.option = "memorization",
                                    .path = "/memo",
                                    .checkpoint = checkpoint,
                                    .inputs = "--train-data",
                                    .given = given,
                                    .attr = "memorization",
                                    .prepare = prepare};
