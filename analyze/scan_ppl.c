/* Perplexity as a scan family (see scan_ppl.h): held-out sets through the built-in
 * forward pass, one evaluation per checkpoint, layer-major (metrics/ppl.h). */
#include "scan_ppl.h"
#include "error.h"
#include "evalset.h"
#include "ppl.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const cks_metric_info ppl_metrics[] = {
    {"nll", "mean negative log-likelihood per scored token (DESIGN 5)", "nats/token"},
    {"ppl", "perplexity exp(nll)", NULL},
    {"bpb", "summed NLL / (ln 2 * UTF-8 bytes of the set's text); NaN for token inputs",
     "bits/byte"},
    {"tokens", "scored tokens", "tokens"},
};

const cks_metric_info *scan_ppl_metrics(size_t *count)
{
    *count = sizeof ppl_metrics / sizeof ppl_metrics[0];
    return ppl_metrics;
}

int scan_ppl_prepare(const scan *sc, char *buf, size_t cap)
{
    const scan_options *o = &sc->o;
    char names[CKS_MAX_EVAL_SETS][256];
    json_t *sets = json_array();
    for (size_t i = 0; i < o->neval; i++) {
        if (access(o->evals[i], R_OK) != 0) {
            json_decref(sets);
            return cks_error_set(CKS_ENOTFOUND, "--eval %s: cannot read the file", o->evals[i]);
        }
        cks_evalset_name(o->evals[i], names[i], sizeof names[i]);
        for (size_t j = 0; j < i; j++)
            if (strcmp(names[j], names[i]) == 0) {
                json_decref(sets);
                return cks_error_set(CKS_EINVAL,
                                     "--eval %s and %s would both be set '%s'; rename one",
                                     o->evals[j], o->evals[i], names[i]);
            }
        json_array_append_new(sets, json_string(names[i]));
    }
    /* ctx/stride 0 and bos -1 mean "the checkpoint's defaults" and are recorded as such */
    json_t *doc = json_pack("{s:o, s:I, s:I, s:i}", "sets", sets, "ctx", (json_int_t)o->ctx,
                            "stride", (json_int_t)o->stride, "bos", o->bos);
    char *s = json_dumps(doc, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(doc);
    if (!s)
        return cks_error_set(CKS_ENOMEM, "out of memory");
    int n = snprintf(buf, cap, "%s", s);
    free(s);
    if (n < 0 || (size_t)n >= cap)
        return cks_error_set(CKS_ELIMIT, "the --eval list is too long");
    return 0;
}

static const cks_ckpt *slot_ckpt(const scan *sc, size_t idx)
{
    for (int i = 0; i < SCAN_SLOTS; i++)
        if (sc->slots[i].idx == idx)
            return sc->slots[i].c;
    return NULL;
}

/* Options for this checkpoint: the scan's protocol, else the checkpoint's defaults. */
static int options_for(const scan *sc, const cks_ckpt *c, const cks_config *cfg,
                       const cks_tokenizer *tok, cks_ppl_options *po)
{
    cks_ppl_options_default(po, cfg);
    if (sc->o.ctx)
        po->ctx = sc->o.ctx;
    po->stride = sc->o.stride ? sc->o.stride : po->ctx / 2 > 0 ? po->ctx / 2 : 1;
    po->nthreads = sc->o.threads;
    if (po->stride > po->ctx)
        return cks_error_set(CKS_EINVAL, "--stride %lld is larger than ctx %lld",
                             (long long)po->stride, (long long)po->ctx);
    return cks_evalset_bos(c, cfg, tok, sc->o.bos, &po->bos, &po->bos_id);
}

int scan_ppl_compute(scan *sc, size_t idx, const cks_weights *w, scan_table *t)
{
    const scan_options *o = &sc->o;
    const cks_ckpt *c = slot_ckpt(sc, idx);
    cks_tokenizer *tok = NULL;
    cks_docset sets[CKS_MAX_EVAL_SETS];
    cks_ppl_result res[CKS_MAX_EVAL_SETS];
    cks_ppl_options po;
    cks_config cfg;
    char disp[1024];
    int err, text = 0;
    memset(sets, 0, sizeof sets);
    memset(res, 0, sizeof res);
    if (!c)
        return cks_error_set(CKS_ERROR, "checkpoint not mapped");
    snprintf(disp, sizeof disp, "%s@%s", cks_source_path(sc->src), cks_ckpt_info_of(c)->name);
    for (size_t i = 0; i < o->neval; i++)
        text |= !cks_evalset_is_tokens(o->evals[i]);
    if ((err = cks_ckpt_config(c, &cfg)) != 0 ||
        (text && ((err = cks_tokenizer_load_ckpt(&tok, c)) != 0 ||
                  (err = cks_evalset_check_vocab(tok, &cfg, disp)) != 0)) ||
        (err = options_for(sc, c, &cfg, tok, &po)) != 0 ||
        (err = cks_evalset_load(sets, o->evals, o->neval, 0, 0, tok)) != 0)
        goto done;
    if (po.ctx > cfg.max_position_embeddings) {
        err = cks_error_set(CKS_EINVAL, "%s: ctx %lld is larger than max_position_embeddings %lld",
                            disp, (long long)po.ctx, (long long)cfg.max_position_embeddings);
        goto done;
    }
    if ((err = cks_ppl_evaluate(res, w, &cfg, disp, sets, o->neval, &po, NULL)) != 0)
        goto done;
    for (size_t i = 0; i < o->neval; i++) {
        double *v = t->ppl_vals + i * SCAN_PPL_VALUES;
        v[0] = res[i].nll;
        v[1] = res[i].ppl;
        v[2] = res[i].bpb;
        v[3] = (double)res[i].tokens;
        t->token_nll[i] = res[i].token_nll; /* the table owns them now */
        t->ntok[i] = res[i].tokens;
        res[i].token_nll = NULL;
    }
done:
    for (size_t i = 0; i < o->neval; i++) {
        cks_ppl_result_release(&res[i]);
        cks_docset_release(&sets[i]);
    }
    cks_tokenizer_free(tok);
    return err;
}

int scan_ppl_write(scan *sc, size_t row, const scan_table *t)
{
    size_t count;
    const cks_metric_info *m = scan_ppl_metrics(&count);
    for (size_t i = 0; i < t->nsets; i++) {
        char name[256], path[512];
        cks_evalset_name(sc->o.evals[i], name, sizeof name);
        char *esc = cks_store_escape_name(name);
        if (!esc)
            return cks_error_set(CKS_ENOMEM, "out of memory");
        int err = 0;
        for (size_t k = 0; k < count && !err; k++) {
            snprintf(path, sizeof path, "/eval/%s/%s", esc, m[k].name);
            err = cks_store_write_series(sc->store, path, row, t->ppl_vals[i * SCAN_PPL_VALUES + k],
                                         m[k].description, m[k].unit);
        }
        if (!err && t->token_nll[i]) {
            snprintf(path, sizeof path, "/eval/%s/token_nll", esc);
            err = cks_store_write_row_f32(sc->store, path, row, t->token_nll[i], (size_t)t->ntok[i],
                                          "token", "NLL of every scored token, in scoring order",
                                          "nats");
        }
        free(esc);
        if (err)
            return err;
    }
    return 0;
}
