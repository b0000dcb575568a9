/* The perplexity family (DESIGN §4 /eval, §5): every --eval set through the built-in
 * forward pass with the checkpoint's own weights and tokenizer (metrics/ppl.h), one
 * layer-major evaluation per checkpoint, emitted as /eval/<set>/{nll,ppl,bpb,tokens}
 * series (names, units and descriptions from reports/eval_metrics.h, the table the gate
 * reads too) and the /eval/<set>/token_nll row. The sets and the protocol (ctx, stride,
 * BOS, the arithmetic: --precision) are the run file's root attribute "eval", so that a
 * resumed scan or a shard cannot mix protocols or precisions. */
#include "error.h"
#include "eval_metrics.h"
#include "evalset.h"
#include "fam_ppl.h"
#include "family.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int given(const cks_scan_options *o)
{
    return o->neval > 0;
}

static int prepare(const cks_scan_options *o, char **value)
{
    char names[CKS_MAX_EVAL_SETS][256];
    json_t *sets = json_array();
    *value = NULL;
    if (o->precision < 0 || o->precision >= CKS_PRECISION_COUNT) {
        json_decref(sets);
        return cks_error_set(CKS_EINVAL, "unknown precision %d", o->precision);
    }
    if (!o->neval) {
        json_decref(sets);
        return cks_error_set(CKS_EINVAL, "the ppl family needs held-out text: --eval FILE");
    }
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
    json_t *doc = json_pack("{s:o, s:I, s:I, s:i, s:s}", "sets", sets, "ctx", (json_int_t)o->ctx,
                            "stride", (json_int_t)o->stride, "bos", o->bos, "precision",
                            cks_precision_name((cks_precision)o->precision));
    *value = json_dumps(doc, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(doc);
    return *value ? 0 : cks_error_set(CKS_ENOMEM, "out of memory");
}

/* Options for checkpoint ck: the scan's protocol, else the checkpoint's defaults. */
static int options_for(const cks_family_ckpt *in, const cks_ckpt *ck, const char *display,
                       const cks_config *cfg, const cks_tokenizer *tok, cks_ppl_options *po)
{
    const cks_scan_options *o = in->o;
    cks_ppl_options_default(po, cfg);
    if (o->ctx)
        po->ctx = o->ctx;
    po->stride = o->stride ? o->stride : po->ctx / 2 > 0 ? po->ctx / 2 : 1;
    po->nthreads = o->threads;
    po->precision = (cks_precision)o->precision;
    if (po->stride > po->ctx)
        return cks_error_set(CKS_EINVAL, "--stride %lld is larger than ctx %lld",
                             (long long)po->stride, (long long)po->ctx);
    if (po->ctx > cfg->max_position_embeddings)
        return cks_error_set(CKS_EINVAL, "%s: ctx %lld is larger than max_position_embeddings %lld",
                             display, (long long)po->ctx, (long long)cfg->max_position_embeddings);
    return cks_evalset_bos(ck, cfg, tok, o->bos, &po->bos, &po->bos_id);
}

int cks_fam_ppl_emit(const char *file, cks_ppl_result *res, cks_items *out)
{
    size_t count;
    const cks_eval_metric_info *m = cks_ppl_metrics(&count);
    char name[256], path[512];
    int err = 0;
    cks_evalset_name(file, name, sizeof name);
    char *esc = cks_store_escape_name(name);
    if (!esc)
        return cks_error_set(CKS_ENOMEM, "out of memory");
    const double v[] = {res ? res->nll : NAN, res ? res->ppl : NAN, res ? res->bpb : NAN,
                        res ? (double)res->tokens : NAN, res ? res->top1_acc : NAN};
    for (size_t k = 0; k < count && k < sizeof v / sizeof v[0] && !err; k++) {
        snprintf(path, sizeof path, "/eval/%s/%s", esc, m[k].name);
        err = cks_items_series(out, path, v[k], m[k].what, m[k].unit);
    }
    if (!err && res && res->token_nll) {
        snprintf(path, sizeof path, "/eval/%s/token_nll", esc);
        err = cks_items_row(out, path, res->token_nll, (size_t)res->tokens, "token",
                            "NLL of every scored token, in scoring order", "nats");
        res->token_nll = NULL; /* adopted, also on failure */
    }
    free(esc);
    return err;
}

int cks_fam_ppl_setup(const cks_family_ckpt *in, const cks_ckpt *ck, const char *display,
                      cks_config *cfg, cks_ppl_options *po, cks_docset *sets)
{
    const cks_scan_options *o = in->o;
    cks_tokenizer *tok = NULL;
    int err, text = 0;
    for (size_t i = 0; i < o->neval; i++)
        text |= !cks_evalset_is_tokens(o->evals[i]);
    if ((err = cks_ckpt_config(ck, cfg)) == 0 &&
        (!text || ((err = cks_tokenizer_load_ckpt(&tok, ck)) == 0 &&
                   (err = cks_evalset_check_vocab(tok, cfg, display)) == 0)) &&
        (err = options_for(in, ck, display, cfg, tok, po)) == 0)
        err = cks_evalset_load(sets, o->evals, o->neval, 0, 0, tok);
    cks_tokenizer_free(tok);
    return err;
}

void cks_fam_ppl_progress(const cks_family_ckpt *in, const char *what)
{
    if (in->h->progress) {
        cks_scan_progress p = {.pos = in->cur.pos,
                               .nsel = in->nsel,
                               .name = cks_ckpt_info_of(in->cur.ckpt)->name,
                               .what = what,
                               .frac = -1};
        in->h->progress(in->h->ctx, &p);
    }
}

static int evaluate(const cks_family_ckpt *in, cks_ppl_result *res, cks_docset *sets)
{
    cks_ppl_options po;
    cks_config cfg;
    int err = cks_fam_ppl_setup(in, in->cur.ckpt, in->display, &cfg, &po, sets);
    if (!err)
        err = cks_ppl_evaluate(res, in->cur.w, &cfg, in->display, sets, in->o->neval, &po, NULL);
    return err;
}

static int checkpoint(const cks_family_ckpt *in, cks_items *out)
{
    const cks_scan_options *o = in->o;
    cks_docset sets[CKS_MAX_EVAL_SETS];
    cks_ppl_result res[CKS_MAX_EVAL_SETS];
    memset(sets, 0, sizeof sets);
    memset(res, 0, sizeof res);
    if (cks_family_enabled(in, "kl"))
        return 0; /* the kl family runs this forward pass and writes its values too */
    cks_fam_ppl_progress(in, "perplexity");
    int err = evaluate(in, res, sets), e2 = 0;
    char msg[1024] = "";
    if (err)
        snprintf(msg, sizeof msg, "%s", cks_error_last());
    for (size_t i = 0; i < o->neval; i++) {
        if (!e2)
            e2 = cks_fam_ppl_emit(o->evals[i], err ? NULL : &res[i], out);
        cks_ppl_result_release(&res[i]);
        cks_docset_release(&sets[i]);
    }
    if (err && !e2)
        cks_error_set(err, "%s", msg); /* the evaluation's message, not a later one */
    return e2 ? e2 : err;
}

const cks_family cks_family_ppl = {.option = "ppl",
                                   .path = "/eval",
                                   .checkpoint = checkpoint,
                                   .inputs = "--eval",
                                   .given = given,
                                   .attr = "eval",
                                   .prepare = prepare};
