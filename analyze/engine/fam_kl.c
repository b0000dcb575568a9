/* The kl family (DESIGN §3, §4): how each checkpoint's next-token distributions moved
 * against the previous complete checkpoint (`_prev`) and the reference (`_ref`), per
 * --eval set: /eval/<set>/kl_B, kl_B_p50, kl_B_p90, kl_B_p99, kl_B_max, top1_agree_B,
 * forgot_B, learned_B, dnll_B, dnll_B_lo, dnll_B_hi for B in prev and ref (NaN where that
 * base is absent) and the row /eval/<set>/token_kl_prev. It extends the ppl family: the
 * same forward pass scores the checkpoint (the ppl values, which this family writes in
 * place of fam_ppl.c) and feeds its logits blocks to the comparisons (metrics/klpass.h).
 *
 * Each checkpoint's forward pass runs once in a serial scan: its logits are kept
 * (metrics/klkeep.h: memory, or a scratch file in $TMPDIR past 2 GiB) as its carry, the
 * base of the next checkpoint, which compares each block against them and then
 * overwrites them in place with its own (one store travels along the scan). The
 * reference's logits are kept in a second store for the whole scan (handed from carry to
 * carry), rather than recomputed for every checkpoint: that would add a forward pass per
 * checkpoint, against 4·vocab bytes per scored token of memory or scratch disk. A task
 * whose base has no carry in this process (the first task of a shard or an MPI rank, a
 * resumed scan, a reference after the current checkpoint) recomputes the base's logits
 * from its weights with the same protocol, sets and arithmetic: the same floats as the
 * serial scan kept, so the run file is the same. A base whose vocabulary, tokenizer or
 * protocol (ctx, stride, BOS) differs from the checkpoint's is absent (NaN) with a
 * warning. */
#include "error.h"
#include "evalset.h"
#include "fam_ppl.h"
#include "family.h"
#include "klcompat.h"
#include "klpass.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* What the logits of a pass depend on besides the weights. */
typedef struct {
    int64_t ctx, stride, npos, vocab;
    int bos;
    int32_t bos_id;
    int precision;
} proto;

/* What a checkpoint keeps (its carry): its own logits, and the reference's when this
 * process computed them (handed on to the next checkpoint). */
typedef struct {
    cks_klkeep *own;
    proto p;
    cks_klkeep *ref;
    size_t ref_pos;
} klcarry;

static void carry_free(void *arg)
{
    klcarry *k = arg;
    if (!k)
        return;
    cks_klkeep_free(k->own);
    cks_klkeep_free(k->ref);
    free(k);
}

/* A base of the current task. */
typedef struct {
    cks_klkeep *store; /* its logits; NULL when absent or self */
    int self;          /* the current checkpoint is its own base */
    int owned;         /* this task holds store (frees it or hands it on) */
} base;

static int same_proto(const proto *a, const proto *b)
{
    return a->ctx == b->ctx && a->stride == b->stride && a->npos == b->npos &&
           a->vocab == b->vocab && a->bos == b->bos && (!a->bos || a->bos_id == b->bos_id) &&
           a->precision == b->precision;
}

static proto proto_of(const cks_ppl_options *po, int64_t npos, int64_t vocab)
{
    return (proto){po->ctx, po->stride, npos, vocab, po->bos, po->bos_id, (int)po->precision};
}

/* The task's own protocol and sets. */
typedef struct {
    const cks_family_ckpt *in;
    cks_config cfg;
    cks_ppl_options po;
    cks_docset sets[CKS_MAX_EVAL_SETS];
    proto p;
} task;

static void display_of(const cks_family_ckpt *in, const cks_family_view *v, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s@%s", cks_source_path(cks_ckpt_source(v->ckpt)),
             cks_ckpt_info_of(v->ckpt)->name);
    (void)in;
}

/* The base's logits recomputed from its weights (the forward pass it would have run as
 * the current checkpoint) into a new store. */
static int recompute(const task *t, const cks_family_view *v, const char *disp, cks_klkeep **out)
{
    const cks_family_ckpt *in = t->in;
    cks_docset sets[CKS_MAX_EVAL_SETS];
    cks_ppl_result res[CKS_MAX_EVAL_SETS];
    cks_ppl_options po;
    cks_config cfg;
    cks_klkeep *keep = NULL;
    cks_klpass *kp = NULL;
    int err;
    memset(sets, 0, sizeof sets);
    memset(res, 0, sizeof res);
    if (!v->w) {
        err = cks_error_set(CKS_EINVAL, "%s: its weights are not mapped", disp);
        goto done;
    }
    if ((err = cks_fam_ppl_setup(in, v->ckpt, disp, &cfg, &po, sets)) != 0)
        goto done;
    proto p = proto_of(&po, cks_ppl_positions(sets, in->o->neval, &po), cfg.vocab_size);
    if (!same_proto(&p, &t->p)) {
        err = cks_error_set(CKS_EINVAL,
                            "%s and %s evaluate the sets with different windows, BOS or "
                            "positions (ctx %lld/%lld, stride %lld/%lld, %lld/%lld positions)",
                            disp, in->display, (long long)p.ctx, (long long)t->p.ctx,
                            (long long)p.stride, (long long)t->p.stride, (long long)p.npos,
                            (long long)t->p.npos);
        goto done;
    }
    cks_fam_ppl_progress(in, "KL base: logits of an earlier checkpoint");
    if ((err = cks_klkeep_new(&keep, p.npos, p.vocab, 0, NULL)) != 0 ||
        (err = cks_klpass_new(&kp, p.npos, p.vocab, keep, NULL, 0, in->o->threads)) != 0)
        goto done;
    cks_ppl_sink sink = cks_klpass_sink(kp);
    po.sink = &sink;
    if ((err = cks_ppl_evaluate(res, v->w, &cfg, disp, sets, in->o->neval, &po, NULL)) != 0 ||
        (err = cks_weights_check(v->w)) != 0)
        goto done;
    *out = keep;
    keep = NULL;
done:
    for (size_t i = 0; i < in->o->neval; i++) {
        cks_ppl_result_release(&res[i]);
        cks_docset_release(&sets[i]);
    }
    cks_klpass_free(kp);
    cks_klkeep_free(keep);
    return err;
}

/* Whether v can be a base of the current checkpoint (vocabulary and tokenizer). */
static int compatible(const task *t, const cks_family_view *v, char *disp, size_t cap)
{
    cks_config cfg;
    int err;
    display_of(t->in, v, disp, cap);
    if ((err = cks_ckpt_config(v->ckpt, &cfg)) != 0)
        return err;
    return cks_kl_check_compatible(v->ckpt, &cfg, disp, t->in->cur.ckpt, &t->cfg, t->in->display);
}

/* The previous checkpoint as a base: its carry taken over (it is nobody's base after
 * this task, unless it is the reference too), else recomputed. */
static int prev_base(const task *t, base *b)
{
    const cks_family_ckpt *in = t->in;
    klcarry *k = in->prev.carry;
    char disp[1024];
    int err;
    memset(b, 0, sizeof *b);
    if (!in->prev.ckpt)
        return 0;
    if ((err = compatible(t, &in->prev, disp, sizeof disp)) != 0)
        return err;
    if (k && k->own && same_proto(&k->p, &t->p)) {
        b->store = k->own;
        if (in->prev.pos != in->ref.pos) {
            k->own = NULL; /* taken: overwritten by this checkpoint's logits */
            b->owned = 1;
        }
        return 0;
    }
    if ((err = recompute(t, &in->prev, disp, &b->store)) == 0)
        b->owned = 1;
    return err;
}

/* The reference as a base: itself, the previous base, its own carry, the one the
 * previous checkpoint handed on, or recomputed. */
static int ref_base(const task *t, const base *pb, int perr, base *b)
{
    const cks_family_ckpt *in = t->in;
    klcarry *rk = in->ref.carry, *pk = in->prev.carry;
    char disp[1024];
    int err;
    memset(b, 0, sizeof *b);
    if (!in->ref.ckpt)
        return 0;
    if (in->ref.pos == in->cur.pos) {
        b->self = 1;
        return 0;
    }
    if (in->ref.pos == in->prev.pos) {
        b->store = pb->store; /* owned through pb */
        return perr;
    }
    if ((err = compatible(t, &in->ref, disp, sizeof disp)) != 0)
        return err;
    if (rk && rk->own && same_proto(&rk->p, &t->p)) {
        b->store = rk->own;
        return 0;
    }
    if (pk && pk->ref && pk->ref_pos == in->ref.pos && same_proto(&pk->p, &t->p)) {
        b->store = pk->ref;
        pk->ref = NULL; /* handed on to this checkpoint's carry */
        b->owned = 1;
        return 0;
    }
    if ((err = recompute(t, &in->ref, disp, &b->store)) == 0)
        b->owned = 1;
    return err;
}

#define NKL 11
static const struct {
    const char *pre, *suf, *unit, *what; /* name: pre_B suf */
} kl_metrics[NKL] = {
    {"kl", "", "nats", "mean KL(P_base || P_t) over scored positions"},
    {"kl", "_p50", "nats", "median of the per-position KL"},
    {"kl", "_p90", "nats", "90th percentile of the per-position KL"},
    {"kl", "_p99", "nats", "99th percentile of the per-position KL"},
    {"kl", "_max", "nats", "largest per-position KL"},
    {"top1_agree", "", "fraction", "fraction of positions where both argmaxes agree"},
    {"forgot", "", "fraction", "fraction of positions the base predicted right and t does not"},
    {"learned", "", "fraction", "fraction of positions t predicts right and the base did not"},
    {"dnll", "", "nats/token", "mean nll_t - nll_base"},
    {"dnll", "_lo", "nats/token", "2.5% quantile of the block bootstrap of dnll"},
    {"dnll", "_hi", "nats/token", "97.5% quantile of the block bootstrap of dnll"},
};

/* One base's series of a set (NaN when k is NULL). */
static int emit_base(const char *esc, const char *bname, const cks_klsummary *k, cks_items *out)
{
    const double v[NKL] = {k ? k->kl : NAN,      k ? k->kl_p50 : NAN,  k ? k->kl_p90 : NAN,
                           k ? k->kl_p99 : NAN,  k ? k->kl_max : NAN,  k ? k->top1_agree : NAN,
                           k ? k->forgot : NAN,  k ? k->learned : NAN, k ? k->dnll : NAN,
                           k ? k->dnll_lo : NAN, k ? k->dnll_hi : NAN};
    int err = 0;
    for (int m = 0; m < NKL && !err; m++) {
        char name[64], path[512], what[256];
        snprintf(name, sizeof name, "%s_%s%s", kl_metrics[m].pre, bname, kl_metrics[m].suf);
        snprintf(path, sizeof path, "/eval/%s/%s", esc, name);
        snprintf(what, sizeof what, "%s (base: the %s checkpoint)", kl_metrics[m].what,
                 strcmp(bname, "prev") == 0 ? "previous complete" : "reference");
        err = cks_items_series(out, path, v[m], what, kl_metrics[m].unit);
    }
    return err;
}

/* What the pass gave for set i: the ppl values, both bases' series, token_kl_prev. */
static int emit_set(const char *file, cks_ppl_result *res, cks_klpass *kp, const int idx[2],
                    int64_t pos0, cks_items *out)
{
    static const char *bnames[2] = {"prev", "ref"};
    char name[256], path[512];
    int64_t n = res ? res->tokens : 0;
    int err = 0;
    cks_evalset_name(file, name, sizeof name);
    char *esc = cks_store_escape_name(name);
    if (!esc)
        return cks_error_set(CKS_ENOMEM, "out of memory");
    for (int b = 0; b < 2 && !err; b++) {
        cks_klsummary k;
        int have =
            res && kp && idx[b] >= 0 && (err = cks_klpass_summary(kp, idx[b], pos0, res, &k)) == 0;
        if (!err)
            err = emit_base(esc, bnames[b], have ? &k : NULL, out);
    }
    if (!err && res) {
        float *row = malloc((size_t)(n ? n : 1) * sizeof *row);
        const cks_klpos *kl = kp && idx[0] >= 0 ? cks_klpass_result(kp, idx[0]) + pos0 : NULL;
        if (!row)
            err = cks_error_set(CKS_ENOMEM, "out of memory");
        for (int64_t i = 0; i < n && row; i++)
            row[i] = kl ? (float)kl[i].kl : NAN;
        snprintf(path, sizeof path, "/eval/%s/token_kl_prev", esc);
        if (!err)
            err = cks_items_row(out, path, row, (size_t)n, "token",
                                "KL(P_prev || P_t) of every scored token, in scoring order "
                                "(NaN without a previous checkpoint)",
                                "nats");
    }
    free(esc);
    return err ? err : cks_fam_ppl_emit(file, res, out);
}

/* Runs the pass against the bases; on success hands the stores to a new carry. */
static int run(task *t, base *pb, base *rb, cks_ppl_result *res, cks_klpass **kp, int idx[2],
               klcarry **carry)
{
    const cks_family_ckpt *in = t->in;
    cks_klkeep *bases[2], *keep = NULL;
    int nb = 0, err;
    idx[0] = idx[1] = -1;
    if (pb->store)
        bases[idx[0] = nb++] = pb->store;
    if (rb->self)
        bases[idx[1] = nb++] = NULL;
    else if (rb->store && rb->store == pb->store)
        idx[1] = idx[0];
    else if (rb->store)
        bases[idx[1] = nb++] = rb->store;
    if (pb->owned && pb->store != rb->store) { /* compared, then overwritten in place */
        keep = pb->store;
        pb->owned = 0;
    } else if ((err = cks_klkeep_new(&keep, t->p.npos, t->p.vocab, 0, NULL)) != 0)
        return err;
    klcarry *k = calloc(1, sizeof *k);
    if (!k) {
        cks_klkeep_free(keep);
        return cks_error_set(CKS_ENOMEM, "out of memory");
    }
    k->own = keep;
    k->p = t->p;
    cks_ppl_options po = t->po;
    if ((err = cks_klpass_new(kp, t->p.npos, t->p.vocab, keep, bases, nb, in->o->threads)) == 0) {
        cks_ppl_sink sink = cks_klpass_sink(*kp);
        po.sink = &sink;
        err = cks_ppl_evaluate(res, in->cur.w, &t->cfg, in->display, t->sets, in->o->neval, &po,
                               NULL);
    }
    if (err) {
        carry_free(k);
        return err;
    }
    /* the reference's store travels on unless it is this checkpoint's or the engine's */
    base *owner = rb->owned ? rb : pb->owned && rb->store == pb->store ? pb : NULL;
    if (owner && owner->store) {
        k->ref = owner->store;
        k->ref_pos = in->ref.pos;
        owner->owned = 0;
    }
    *carry = k;
    return 0;
}

static int checkpoint(const cks_family_ckpt *in, cks_items *out)
{
    task t;
    cks_ppl_result res[CKS_MAX_EVAL_SETS];
    cks_klpass *kp = NULL;
    base pb, rb;
    klcarry *carry = NULL;
    int idx[2] = {-1, -1}, err, kerr = 0, e2 = 0;
    char msg[1024] = "";
    memset(&t, 0, sizeof t);
    memset(res, 0, sizeof res);
    memset(&pb, 0, sizeof pb);
    memset(&rb, 0, sizeof rb);
    t.in = in;
    cks_fam_ppl_progress(in, "perplexity and KL");
    if ((err = cks_fam_ppl_setup(in, in->cur.ckpt, in->display, &t.cfg, &t.po, t.sets)) == 0) {
        t.p = proto_of(&t.po, cks_ppl_positions(t.sets, in->o->neval, &t.po), t.cfg.vocab_size);
        /* an absent base is a warning; the checkpoint's own values are still computed */
        int perr = prev_base(&t, &pb);
        if (perr)
            snprintf(msg, sizeof msg, "%s", cks_error_last());
        int rerr = ref_base(&t, &pb, perr, &rb);
        if (rerr && !perr)
            snprintf(msg, sizeof msg, "%s", cks_error_last());
        kerr = perr ? perr : rerr;
        err = run(&t, &pb, &rb, res, &kp, idx, &carry);
    }
    if (err)
        snprintf(msg, sizeof msg, "%s", cks_error_last());
    int64_t pos0 = 0;
    for (size_t i = 0; i < in->o->neval; i++) {
        if (!e2)
            e2 = emit_set(in->o->evals[i], err ? NULL : &res[i], err ? NULL : kp, idx, pos0, out);
        pos0 += res[i].tokens;
        cks_ppl_result_release(&res[i]);
        cks_docset_release(&t.sets[i]);
    }
    cks_klpass_free(kp);
    if (pb.owned)
        cks_klkeep_free(pb.store);
    if (rb.owned)
        cks_klkeep_free(rb.store);
    if (carry && !e2)
        *in->carry = carry;
    else
        carry_free(carry);
    err = err ? err : kerr;
    if (err && !e2)
        cks_error_set(err, "%s", msg); /* the evaluation's message, not a later one */
    return e2 ? e2 : err;
}

static int never(const cks_scan_options *o)
{
    (void)o;
    return 0; /* joins only when --metrics names it */
}

const cks_family cks_family_kl = {.option = "kl",
                                  .path = "/eval",
                                  .needs = CKS_FAMILY_PREV | CKS_FAMILY_REF,
                                  .checkpoint = checkpoint,
                                  .carry_free = carry_free,
                                  .inputs = "--eval",
                                  .given = never,
                                  .requires = "ppl"};
