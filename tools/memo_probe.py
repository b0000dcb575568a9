#!/usr/bin/python3
"""What it takes for the demo model to show memorisation (DESIGN §3; Analysis360's
definition, k = l = 32 greedy): a probe, not part of the demo.

The demo run (tools/train_tiny.py) draws every training window at a random offset of a
730,916-token stream, so a recorded training sequence was seen once as such (its tokens a
few more times in other windows), by a model of about 0.2 M parameters: at k = l = 32 its
greedy continuations match the training sequences no better than held-out text (see
examples/train_data/README.md). This script retrains the same model with the same recipe
(the duplicated sequences included), except that canaries, windows of the in-domain
held-out text (never otherwise trained on), replace the second-last window of some batches
(the last holds the recipe's duplicate), each canary repeated r times spread over the whole
run, r in --repeats; the canaries of r = 0 are the held-out control. At every --every steps
it measures memorisation with tools/memo_ref.py's PyTorch greedy generation (the weights
rounded to bf16, as the demo stores them) on each group and on the demo's recorded kind of
training sequences (the first window of each step): those of steps 1..96 (trained early)
and of the 96 steps before the measurement (trained recently).

  /usr/bin/python3 tools/memo_probe.py [--repeats 0,4,16,64] [--every 192] [--json FILE]

Prints one line per measurement and group (token_match, full_match, prefix_match); the
whole run takes about as long as training the demo (5-8 minutes on one thread).
"""
import argparse
import json
import os
import sys
import tempfile
import time

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import memo_ref  # noqa: E402
import tinyllama as tl  # noqa: E402
import train_tiny as tt  # noqa: E402

K = L = 32


def schedule(nwin, repeats, steps, seed=0):
    """Canary window of each group (round robin over the held-out windows) and the step
    at which each repetition replaces a batch's last window: {step: window}."""
    groups = {r: [w for w in range(nwin) if w % len(repeats) == g] for g, r in enumerate(repeats)}
    occ = [w for r, ws in groups.items() for w in ws for _ in range(r)]
    if len(occ) > steps:
        sys.exit("memo_probe: %d canary repetitions do not fit in %d steps" % (len(occ), steps))
    np.random.RandomState(seed).shuffle(occ)
    return groups, {1 + (i * steps) // len(occ): w for i, w in enumerate(occ)}


def bf16(params):
    return {n: tl.bf16_bits_to_f32(tl.to_bf16_bits(p), tuple(p.shape)) for n, p in params.items()}


def measure(cfg, p, seqs):
    arr = np.array(seqs, dtype=np.int64)[:, :K + L]
    r = memo_ref.score(memo_ref.generate(cfg, p, arr[:, :K].tolist(), L), arr[:, K:])
    r.pop("match")
    return r


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", default="0,4,16,64",
                    help="repetitions of each canary group (0: held-out control)")
    ap.add_argument("--every", type=int, default=192, help="steps between measurements")
    ap.add_argument("--json", help="also write the measurements here")
    a = ap.parse_args()
    repeats = [int(x) for x in a.repeats.split(",")]
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    with tempfile.TemporaryDirectory(prefix="memo_probe.") as work:
        _, _, stream, _, sets = tt.prepare(work)
    width, steps, batch = tt.TRAIN["ctx"] + 1, tt.TRAIN["steps"], tt.TRAIN["batch"]
    held = sets[0]["doc"]  # [BOS] + the in-domain held-out ids, as train_data/heldout.jsonl.gz
    wins = [held[o:o + width] for o in range(0, len(held) - width + 1, width)]
    groups, at = schedule(len(wins), repeats, steps)
    canary = {w: torch.tensor(wins[w], dtype=torch.int64) for w in range(len(wins))}

    def hook(step, seq):
        if step in at:
            seq = seq.clone()
            seq[batch - 2] = canary[at[step]]
        return seq

    cfg = tl.Config(**tt.MODEL)
    drawn, rows, t0 = [], [], time.time()

    def on_checkpoint(step, params, loss):
        if step % a.every and step != steps:
            return
        p = bf16(params)
        first = [stream[o[0]:o[0] + width].tolist() for o in drawn[:96]]
        recent = [stream[o[0]:o[0] + width].tolist() for o in drawn[max(0, step - 96):step]]
        named = [("canary_r%d" % r, [wins[w] for w in groups[r]]) for r in repeats]
        if step:
            named += [("train_steps_1_96", first), ("train_last_96", recent)]
        for name, seqs in named:
            m = measure(cfg, p, seqs)
            m.update(step=step, set=name)
            rows.append(m)
            print("step %4d  %-17s n=%3d  token_match %.4f  full_match %.4f  prefix_match %.4f"
                  % (step, name, m["sequences"], m["token_match"], m["full_match"],
                     m["prefix_match"]), flush=True)

    tt.train(cfg, stream, on_checkpoint, drawn, hook, dups=tt.duplicate_windows(stream)[1])
    print("memo_probe: %d canary windows of %d tokens (groups of %d), repeats %s, %.0f s"
          % (len(wins), width, len(groups[repeats[0]]), repeats, time.time() - t0))
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"prompt": K, "continuation": L, "repeats": repeats,
                       "canary_steps": {str(s): w for s, w in sorted(at.items())},
                       "measurements": rows}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
