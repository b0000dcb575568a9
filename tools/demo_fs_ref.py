#!/usr/bin/python3
"""Function space of the embedded demo run, computed by PyTorch alone (no ckptscope): for
every checkpoint of a clone of examples/demo.bundle, the KL divergence of its next-token
distributions from the previous checkpoint's (DESIGN §3: KL(P_prev || P_t), mean over the
scored positions of a held-out set under DESIGN §5's windows, ctx 128, stride 64, BOS on),
top-1 agreement with the previous checkpoint, and memorisation (DESIGN §3, k = l = 32
greedy; tools/memo_ref.py) of the training data files in examples/train_data/.

It is how the demo recipe (tools/train_tiny.py) was checked to show what the demo is for:
memorisation rising on the duplicated training sequences and staying near zero on
held-out text, KL to the previous checkpoint shrinking as training settles.

  /usr/bin/python3 tools/demo_fs_ref.py CLONE [--examples DIR] [--set jargon_heldout]
        [--data duplicated,ckpt_0096,heldout] [--json FILE]

Prints one line per checkpoint.
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


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("clone", help="git clone of examples/demo.bundle")
    ap.add_argument("--examples", default=os.path.join(os.path.dirname(HERE), "examples"))
    ap.add_argument("--set", default="jargon_heldout", help="held-out set for KL")
    ap.add_argument("--data", default="duplicated,ckpt_0096,heldout",
                    help="train_data files (stems) for memorisation")
    ap.add_argument("--json", help="also write the numbers here")
    a = ap.parse_args()
    torch.set_num_threads(1)
    ref = json.load(open(os.path.join(a.examples, "reference_losses.json")))
    hs = next(s for s in ref["sets"] if s["name"] == a.set)
    doc = [ref["bos_id"]] + hs["token_ids"]
    data = {}
    for stem in a.data.split(","):
        path = os.path.join(a.examples, "train_data", stem + ".jsonl.gz")
        seqs = [json.loads(x)["token_ids"][:K + L]
                for x in gzip.decompress(open(path, "rb").read()).decode().splitlines()]
        data[stem] = np.array(seqs, dtype=np.int64)
    prev, rows = None, []
    for name in branches(a.clone):
        c, p = memo_ref.load_checkpoint("%s@origin/%s" % (a.clone, name))
        lp, y = logprobs(c, p, doc, ref["ctx"], ref["stride"])
        row = {"checkpoint": name, "step": int(name.split("_")[1]),
               "nll": float(-lp[torch.arange(len(y)), y].mean()),
               "top1_acc": float((lp.argmax(-1) == y).double().mean())}
        if prev is not None:
            kl = (prev.exp() * (prev - lp)).sum(-1)
            row.update(kl_prev=float(kl.mean()), kl_prev_max=float(kl.max()),
                       top1_agree_prev=float((prev.argmax(-1) == lp.argmax(-1)).double().mean()))
        prev = lp
        for stem, arr in data.items():
            m = memo_ref.score(memo_ref.generate(c, p, arr[:, :K].tolist(), L), arr[:, K:])
            row[stem] = {k: m[k] for k in ("sequences", "token_match", "full_match",
                                           "prefix_match")}
        rows.append(row)
        print("%-9s nll %.4f  kl_prev %-8s agree %-6s  %s" % (
            name, row["nll"], "%.5f" % row["kl_prev"] if "kl_prev" in row else "-",
            "%.4f" % row["top1_agree_prev"] if "top1_agree_prev" in row else "-",
            "  ".join("%s tm %.3f fm %.3f" % (s, row[s]["token_match"], row[s]["full_match"])
                      for s in data)), flush=True)
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"set": a.set, "prompt": K, "continuation": L, "checkpoints": rows}, f,
                      indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
