#!/usr/bin/python3
"""Function space of the embedded demo run, computed by PyTorch alone (no ckptscope): for
every checkpoint of a clone of examples/demo.bundle and every held-out set of
examples/reference_losses.json, against the previous checkpoint (DESIGN §3, under DESIGN
§5's windows, ctx 128, stride 64, BOS on): KL(P_prev || P_t) and its percentiles, top-1
agreement, forgetting and learning events, dnll with its block-bootstrap 95 % interval
(tools/make_fstats_refs.py's numpy re-implementation of GSL's mt19937 and
gsl_rng_uniform_int), and top1_acc; and memorisation (DESIGN §3, k = l = 32 greedy;
tools/memo_ref.py) of the training data files in examples/train_data/. The logits are
PyTorch float32 on the stored bf16 weights, everything after them float64.

It is how the demo recipe (tools/train_tiny.py) was checked to show what the demo is for
(memorisation rising on the duplicated training sequences and staying near zero on
held-out text, KL to the previous checkpoint shrinking as training settles), and with
--json it writes the golden file examples/fspace_reference.json that the demo's CI gate
(tests/cli/test_demo_gate.py) compares ckptscope's kl and memorization families with.

  /usr/bin/python3 tools/demo_fs_ref.py CLONE [--examples DIR] [--set jargon_heldout]
        [--data duplicated,ckpt_0096,heldout] [--json FILE]

Prints one line per checkpoint (the --set's numbers).
"""
import argparse
import gzip
import json
import math
import os
import subprocess
import sys

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import memo_ref  # noqa: E402
import tinyllama as tl  # noqa: E402
from make_fstats_refs import bootstrap  # noqa: E402

K = L = 32


def git(repo, *args):
    return subprocess.run(["git", "-C", repo] + list(args), check=True,
                          stdout=subprocess.PIPE).stdout


def branches(repo):
    out = git(repo, "for-each-ref", "--format=%(refname)", "refs/remotes/origin/ckpt_*",
              "refs/heads/ckpt_*").decode().split()
    names = sorted({r.rsplit("/", 1)[1] for r in out}, key=lambda n: int(n.split("_")[1]))
    return names


def logprobs(c, p, s, ctx, stride):
    """Log-probabilities [scored positions, vocab] (float64) of document s in scoring order
    (DESIGN §5's windows, each a fresh sequence), and the targets."""
    rows, tgts = [], []
    with torch.no_grad():
        for b, e, lo in tl.windows(len(s), ctx, stride):
            if lo >= e:
                continue
            ids = torch.tensor([s[b:e]], dtype=torch.int64)
            lp = torch.log_softmax(tl.forward(c, p, ids)[0], dim=-1)
            rows.append(lp[lo - b - 1:e - b - 1].double())
            tgts += s[lo:e]
    return torch.cat(rows), torch.tensor(tgts)


def compare(prev, cur, y):
    """DESIGN §3's numbers of checkpoint t (cur) against base c (prev), per position
    arrays in float64; one document per set, so the bootstrap blocks are its runs of
    256 positions."""
    kl = (prev.exp() * (prev - cur)).sum(-1).numpy()
    nll_c = -prev[torch.arange(len(y)), y].numpy()
    nll_t = -cur[torch.arange(len(y)), y].numpy()
    ac, at, yy = prev.argmax(-1).numpy(), cur.argmax(-1).numpy(), y.numpy()
    d = nll_t - nll_c
    lo, hi, _ = bootstrap(d, [len(d)])
    q = np.quantile(kl, [0.5, 0.9, 0.99])
    return {"kl_prev": float(kl.mean()), "kl_prev_p50": float(q[0]), "kl_prev_p90": float(q[1]),
            "kl_prev_p99": float(q[2]), "kl_prev_max": float(kl.max()),
            "top1_agree_prev": float(np.mean(ac == at)),
            "forgot_prev": float(np.mean((ac == yy) & (at != yy))),
            "learned_prev": float(np.mean((at == yy) & (ac != yy))),
            "dnll_prev": float(d.mean()), "dnll_prev_lo": lo, "dnll_prev_hi": hi}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("clone", help="git clone of examples/demo.bundle")
    ap.add_argument("--examples", default=os.path.join(os.path.dirname(HERE), "examples"))
    ap.add_argument("--set", default="jargon_heldout", help="held-out set printed")
    ap.add_argument("--data", default="duplicated,ckpt_0096,heldout",
                    help="train_data files (stems) for memorisation")
    ap.add_argument("--json", help="also write the numbers here")
    a = ap.parse_args()
    torch.set_num_threads(1)
    ref = json.load(open(os.path.join(a.examples, "reference_losses.json")))
    docs = {s["name"]: [ref["bos_id"]] + s["token_ids"] for s in ref["sets"]}
    data = {}
    for stem in a.data.split(","):
        path = os.path.join(a.examples, "train_data", stem + ".jsonl.gz")
        seqs = [json.loads(x)["token_ids"][:K + L]
                for x in gzip.decompress(open(path, "rb").read()).decode().splitlines()]
        data[stem] = np.array(seqs, dtype=np.int64)
    prev, rows = {}, []
    for name in branches(a.clone):
        c, p = memo_ref.load_checkpoint("%s@origin/%s" % (a.clone, name))
        row = {"checkpoint": name, "step": int(name.split("_")[1]), "eval": {}, "memo": {}}
        for set_, doc in docs.items():
            lp, y = logprobs(c, p, doc, ref["ctx"], ref["stride"])
            e = {"nll": float(-lp[torch.arange(len(y)), y].mean()),
                 "top1_acc": float((lp.argmax(-1) == y).double().mean()), "tokens": len(y)}
            if set_ in prev:
                e.update(compare(prev[set_], lp, y))
            prev[set_] = lp
            row["eval"][set_] = e
        for stem, arr in data.items():
            m = memo_ref.score(memo_ref.generate(c, p, arr[:, :K].tolist(), L), arr[:, K:])
            row["memo"][stem] = {k: m[k] for k in ("sequences", "token_match", "full_match",
                                                   "prefix_match")}
        rows.append(row)
        e = row["eval"][a.set]
        print("%-9s nll %.4f  kl_prev %-8s agree %-6s dnll %s  %s" % (
            name, e["nll"], "%.5f" % e["kl_prev"] if "kl_prev" in e else "-",
            "%.4f" % e["top1_agree_prev"] if "kl_prev" in e else "-",
            "%+.4f [%+.4f, %+.4f]" % (e["dnll_prev"], e["dnll_prev_lo"], e["dnll_prev_hi"])
            if "kl_prev" in e else "-",
            "  ".join("%s tm %.3f fm %.3f" % (s, m["token_match"], m["full_match"])
                      for s, m in row["memo"].items())), flush=True)
    if a.json:
        doc = {"format": "ckptscope-demo-fspace", "made_by": "tools/demo_fs_ref.py",
               "computed_with": "PyTorch %s float32 logits of the stored bf16 weights; KL, "
                                "quantiles and the bootstrap in float64 numpy" % torch.__version__,
               "ctx": ref["ctx"], "stride": ref["stride"], "bos": True, "prompt": K,
               "continuation": L, "bootstrap": {"block": 256, "resamples": 1000, "seed": 1},
               "checkpoints": rows}
        with open(a.json, "w") as f:
            json.dump(doc, f, indent=1)
            f.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
