#!/usr/bin/python3
"""PyTorch reference for memorisation (DESIGN §3; LLM360 Analysis360's definition): for each
training sequence of a JSONL file with "token_ids" (plain, .gz or .zst), the first k tokens
as stored (no BOS added) are the prompt, the next l the truth; greedy generation of l tokens
(argmax in float32, ties to the lowest id: torch.argmax returns the first maximum) with a
KV cache; token_match, full_match and prefix_match; sequences shorter than k + l skipped
and counted. --samples N picks N of the long-enough ones with gsl_ran_choose on GSL's
mt19937 seeded --seed, reproduced in numpy (tools/make_fstats_refs.py), in file order.

  /usr/bin/python3 tools/memo_ref.py CKPT_DIR_OR_GIT_REPO[@BRANCH] --data FILE...
        [--prompt 32] [--continuation 32] [--samples N] [--seed 1] [--per-sequence]

A checkpoint is a folder with config.json and model.safetensors / pytorch_model.bin, or a
git repository (a clone of examples/demo.bundle) and a branch. Prints one JSON document.
Also a module: load_sequences(), generate(), score().
"""
import argparse
import gzip
import io
import json
import math
import os
import subprocess
import sys

import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import tinyllama as tl  # noqa: E402
from make_fstats_refs import choose  # noqa: E402


def read_bytes(path):
    """A data file's bytes, decompressed by its magic (gzip 1f 8b, zstd 28 b5 2f fd)."""
    raw = open(path, "rb").read()
    if raw[:2] == b"\x1f\x8b":
        return gzip.decompress(raw)
    if raw[:4] == b"\x28\xb5\x2f\xfd":
        return subprocess.run(["zstd", "-dc"], input=raw, stdout=subprocess.PIPE,
                              check=True).stdout
    return raw


def load_sequences(path, k, l, samples=0, seed=1):
    """(kept sequences' first k + l ids, their 1-based lines, eligible count, skipped)."""
    seqs, lines, skipped = [], [], 0
    for no, line in enumerate(read_bytes(path).decode("utf-8").split("\n"), 1):
        if not line.strip(" \t\r"):
            continue
        ids = json.loads(line)["token_ids"]
        if len(ids) < k + l:
            skipped += 1
            continue
        seqs.append(ids[:k + l])
        lines.append(no)
    eligible = len(seqs)
    if 0 < samples < eligible:
        pick = choose(eligible, samples, seed)
        seqs, lines = [seqs[i] for i in pick], [lines[i] for i in pick]
    return seqs, lines, eligible, skipped


def forward_cached(c, p, ids, cache, pos0):
    """tinyllama.forward for new tokens ids [B, T] at positions pos0.., attending to the
    keys and values in cache (one (k, v) per layer, extended here)."""
    B, T = ids.shape
    H, KV, hd = c.num_attention_heads, c.num_key_value_heads, c.head_dim
    cos, sin = tl.rope_cos_sin(c, pos0 + T)
    cos, sin = cos[pos0:], sin[pos0:]
    x = F.embedding(ids, p["model.embed_tokens.weight"])
    P = pos0 + T
    mask = torch.full((T, P), float("-inf")).triu(pos0 + 1)
    for i in range(c.num_hidden_layers):
        q_ = "model.layers.%d." % i
        h = tl.rms_norm(x, p[q_ + "input_layernorm.weight"], c.rms_norm_eps)
        q = F.linear(h, p[q_ + "self_attn.q_proj.weight"]).view(B, T, H, hd).transpose(1, 2)
        k = F.linear(h, p[q_ + "self_attn.k_proj.weight"]).view(B, T, KV, hd).transpose(1, 2)
        v = F.linear(h, p[q_ + "self_attn.v_proj.weight"]).view(B, T, KV, hd).transpose(1, 2)
        q = q * cos + tl.rotate_half(q) * sin
        k = k * cos + tl.rotate_half(k) * sin
        if cache[i] is not None:
            k = torch.cat([cache[i][0], k], dim=2)
            v = torch.cat([cache[i][1], v], dim=2)
        cache[i] = (k, v)
        kk = k.repeat_interleave(H // KV, dim=1)
        vv = v.repeat_interleave(H // KV, dim=1)
        att = torch.softmax((q @ kk.transpose(2, 3)) / math.sqrt(hd) + mask, dim=-1)
        o = (att @ vv).transpose(1, 2).reshape(B, T, H * hd)
        x = x + F.linear(o, p[q_ + "self_attn.o_proj.weight"])
        h = tl.rms_norm(x, p[q_ + "post_attention_layernorm.weight"], c.rms_norm_eps)
        x = x + F.linear(F.silu(F.linear(h, p[q_ + "mlp.gate_proj.weight"])) *
                         F.linear(h, p[q_ + "mlp.up_proj.weight"]), p[q_ + "mlp.down_proj.weight"])
    x = tl.rms_norm(x, p["model.norm.weight"], c.rms_norm_eps)
    return F.linear(x, p["lm_head.weight"])


def generate(c, p, prompts, l, batch=512):
    """Greedy continuations [n, l] of prompts [n, k] (float32, ties to the lowest id)."""
    out = []
    with torch.no_grad():
        for b in range(0, len(prompts), batch):
            x = torch.tensor(prompts[b:b + batch], dtype=torch.int64)
            cache = [None] * c.num_hidden_layers
            logits = forward_cached(c, p, x, cache, 0)[:, -1, :]
            got = []
            for j in range(l):
                nxt = logits.argmax(-1, keepdim=True)  # the first maximum: lowest id
                got.append(nxt)
                if j + 1 < l:
                    logits = forward_cached(c, p, nxt, cache, x.shape[1] + j)[:, -1, :]
            out.append(torch.cat(got, dim=1).numpy())
    return np.concatenate(out) if out else np.zeros((0, l), dtype=np.int64)


def score(gen, truth):
    """DESIGN §3's three numbers and the per-token matches."""
    m = np.asarray(gen) == np.asarray(truth)
    n, l = m.shape if m.size else (0, truth.shape[1] if len(truth.shape) > 1 else 0)
    if n == 0:
        return {"sequences": 0, "token_match": None, "full_match": None, "prefix_match": None,
                "match": []}
    lcp = np.where(m.all(1), l, np.argmin(m, axis=1))
    return {"sequences": int(n), "token_match": float(m.mean(1).mean()),
            "full_match": float(m.all(1).mean()), "prefix_match": float((lcp / l).mean()),
            "match": m.astype(int).tolist()}


def load_checkpoint(spec):
    """(config, f32 weights) of a folder or a git repository@branch."""
    if "@" in spec and not os.path.isdir(spec):
        repo, ref = spec.rsplit("@", 1)

        def blob(name):
            r = subprocess.run(["git", "-C", repo, "cat-file", "blob", "%s:%s" % (ref, name)],
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
            return r.stdout if r.returncode == 0 else None
    else:
        def blob(name):
            path = os.path.join(spec, name)
            return open(path, "rb").read() if os.path.exists(path) else None
    c = tl.Config.from_json(json.loads(blob("config.json")))
    data = blob("model.safetensors")
    if data is not None:
        return c, tl.read_safetensors_f32(data)
    return c, tl.read_torch_bin_f32(io.BytesIO(blob("pytorch_model.bin")))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("checkpoint")
    ap.add_argument("--data", nargs="+", required=True)
    ap.add_argument("--prompt", type=int, default=32)
    ap.add_argument("--continuation", type=int, default=32)
    ap.add_argument("--samples", type=int, default=0)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--per-sequence", action="store_true", help="include the match lists")
    a = ap.parse_args()
    torch.set_num_threads(1)
    c, p = load_checkpoint(a.checkpoint)
    sets = []
    for path in a.data:
        seqs, lines, eligible, skipped = load_sequences(path, a.prompt, a.continuation,
                                                        a.samples, a.seed)
        arr = np.array(seqs, dtype=np.int64).reshape(len(seqs), a.prompt + a.continuation)
        r = score(generate(c, p, arr[:, :a.prompt].tolist(), a.continuation),
                  arr[:, a.prompt:])
        if not a.per_sequence:
            r.pop("match")
        r.update(name=os.path.basename(path).split(".")[0], skipped=skipped, lines=lines)
        sets.append(r)
    json.dump({"checkpoint": a.checkpoint, "prompt": a.prompt, "continuation": a.continuation,
               "sets": sets}, sys.stdout)
    print()


if __name__ == "__main__":
    main()
