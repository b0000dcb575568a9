#!/usr/bin/python3
"""Float64 PyTorch reference of `ckptscope ppl CKPT --vs BASE` (DESIGN §3, §8): per set,
KL(P_base || P_this) per scored position with its mean, p50/p90/p99 (numpy's linear
quantiles) and maximum, top1_agree, forgot, learned, dnll with its block-bootstrap
interval, and top1_acc, printed as JSON in the shape of `ppl --json` (sets[].vs).

Nothing here is shared with ckptscope's C code. The forward pass and the strided windows
are tools/family_ref.py's (float64 torch, every model family, from transformers' modeling
files); the per-position statistics and the bootstrap (GSL's mt19937 and
gsl_rng_uniform_int re-implemented on numpy's RandomState) are tools/make_fstats_refs.py's.
Text is tokenised by SentencePiece (the checkpoint's tokenizer.model), one document per
file, BOS prepended when on (DESIGN §5).

  kl_ref.py CKPT_DIR --vs BASE_DIR (--text NAME=FILE... | --set NAME=FILE[:FMT]...)
            --ctx N --stride N [--no-bos] [--bos-id ID]

Debian's python3 (torch, numpy, sentencepiece).
"""
import argparse
import json
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import family_ref as fr  # noqa: E402
import make_fstats_refs as fs  # noqa: E402


def text_docs(ckpt, spec):
    """NAME=FILE -> (name, [ids]) by the checkpoint's SentencePiece model."""
    import sentencepiece as spm
    name, _, path = spec.partition("=")
    sp = spm.SentencePieceProcessor(model_file=os.path.join(ckpt, "tokenizer.model"))
    with open(path, "rb") as f:
        return name, [sp.encode(f.read().decode("utf-8"))]


def positions(cfg_t, sd_t, cfg_c, sd_c, docs, ctx, stride, bos, bos_id):
    """Per-position statistics of a set (make_fstats_refs.per_position on the float64
    logits of both checkpoints over the same windows) and its documents' position counts."""
    parts, doc_npos = [], []
    for doc in docs:
        seq = ([bos_id] + doc) if bos else doc
        n = 0
        for (lt, y), (lc, y2) in zip(fr.strided_logits(cfg_t, sd_t, seq, ctx, stride),
                                     fr.strided_logits(cfg_c, sd_c, seq, ctx, stride)):
            assert torch.equal(y, y2)
            parts.append(fs.per_position(lc.numpy(), lt.numpy(), y.numpy()))
            n += len(y)
        doc_npos.append(n)
    pp = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    return pp, doc_npos


def compare(ckpt, base, sets, ctx, stride, bos, bos_id):
    cfg_t, sd_t = fr.load_model(ckpt)
    cfg_c, sd_c = fr.load_model(base)
    if bos_id is None:
        bos_id = cfg_t.bos_token_id
    out = []
    with torch.no_grad():
        for name, docs in sets:
            pp, doc_npos = positions(cfg_t, sd_t, cfg_c, sd_c, docs, ctx, stride, bos, bos_id)
            s = fs.summary(pp, [n for n in doc_npos])
            nll = float(np.mean(pp["nll_t"]))
            vs = {k: float(s[k]) for k in ("kl", "kl_p50", "kl_p90", "kl_p99", "kl_max",
                                          "top1_agree", "forgot", "learned", "dnll", "dnll_lo",
                                          "dnll_hi")}
            out.append({"name": name, "tokens": int(s["positions"]), "nll": nll,
                        "top1_acc": float(s["top1_acc"]), "vs": vs,
                        "token_kl": [float(x) for x in pp["kl"]]})
    return {"ctx": ctx, "stride": stride, "bos": bos, "bos_id": bos_id, "sets": out}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("ckpt")
    ap.add_argument("--vs", required=True)
    ap.add_argument("--text", action="append", default=[])
    ap.add_argument("--set", action="append", default=[])
    ap.add_argument("--ctx", type=int, required=True)
    ap.add_argument("--stride", type=int, required=True)
    ap.add_argument("--no-bos", action="store_true")
    ap.add_argument("--bos-id", type=int)
    a = ap.parse_args()
    torch.set_num_threads(1)
    sets = [text_docs(a.ckpt, s) for s in a.text] + [fr.read_tokens(s) for s in a.set]
    json.dump(compare(a.ckpt, a.vs, sets, a.ctx, a.stride, not a.no_bos, a.bos_id), sys.stdout)
    print()


if __name__ == "__main__":
    main()
