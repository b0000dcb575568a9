#!/usr/bin/python3
"""Float64 PyTorch reference for the real trained models of ../shared/data/real-models
(stories260K, llama2xs500: llama2.c format) on the four held-out TinyStories stories, and
its golden file tools/llama2c_ref.json, which tests/cli/test_real_models.py compares
`ckptscope ppl` with after tools/llama2c_to_hf.py has converted the models.

The model is read here straight from the llama2.c file, independently of the converter,
and run as llama2.c's own model.py runs it (Transformer.forward: RMSNorm eps 1e-5,
interleaved-pair RoPE with theta 10000 as apply_rotary_emb computes it, grouped-query
attention by repeat_kv, SwiGLU FFN w2(silu(w1 x) * w3 x), the classifier tied or not), in
float64. The stories are split at their "<|endoftext|>" lines and stripped; each is one
document, tokenised by SentencePiece itself (encode, no BOS) and scored with BOS (id 1) in
front by the strided protocol of DESIGN §5 with ckptscope's defaults: ctx =
max_position_embeddings = the model's seq_len, stride = ctx / 2.

    llama2c_ref.py golden [--data DIR] [--out FILE]   writes tools/llama2c_ref.json
    llama2c_ref.py check  [--data DIR]                exit 0 when the golden file is
        current, 1 when not, 77 when torch, sentencepiece or the data are missing outside CI
        (CI=true: 1)

Debian's python3 (torch, numpy, sentencepiece).
"""
import argparse
import json
import math
import os
import struct
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
GOLDEN = os.path.join(HERE, "llama2c_ref.json")
DATA = os.path.join(HERE, "..", "..", "shared", "data", "real-models")
MODELS = ["stories260K", "llama2xs500"]
BOS = 1


def load(path):
    import torch
    with open(path, "rb") as f:
        b = f.read()
    dim, hidden, layers, heads, kv_heads, vocab, seq_len = struct.unpack("<7i", b[:28])
    tied, vocab = vocab > 0, abs(vocab)
    a = np.frombuffer(b, dtype="<f4", offset=28).astype(np.float64)
    hd, o, w = dim // heads, 0, {}

    def take(name, *shape):
        nonlocal o
        n = int(np.prod(shape))
        w[name] = torch.from_numpy(a[o:o + n].reshape(shape).copy())
        o += n

    take("tok", vocab, dim)
    take("attn_norm", layers, dim)
    take("wq", layers, dim, dim)
    take("wk", layers, kv_heads * hd, dim)
    take("wv", layers, kv_heads * hd, dim)
    take("wo", layers, dim, dim)
    take("ffn_norm", layers, dim)
    take("w1", layers, hidden, dim)
    take("w2", layers, dim, hidden)
    take("w3", layers, hidden, dim)
    take("norm", dim)
    take("fr", seq_len, hd // 2)
    take("fi", seq_len, hd // 2)
    if not tied:
        take("cls", vocab, dim)
    w["cls"] = w["tok"] if tied else w["cls"]
    return dict(dim=dim, hidden=hidden, layers=layers, heads=heads, kv_heads=kv_heads,
                vocab=vocab, seq_len=seq_len, tied=tied), w


def forward(c, w, ids):
    """llama2.c model.py Transformer.forward, float64, logits of every position."""
    import torch
    import torch.nn.functional as F
    n, hd = len(ids), c["dim"] // c["heads"]

    def rms(x, g):
        return g * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-5))

    # precompute_freqs_cis: theta 10000, pairs (2i, 2i+1)
    freqs = 1.0 / (10000.0 ** (torch.arange(0, hd, 2, dtype=torch.float64)[: hd // 2] / hd))
    ang = torch.arange(n, dtype=torch.float64)[:, None] * freqs[None, :]
    cos, sin = ang.cos()[:, None, :], ang.sin()[:, None, :]

    def rope(x):  # apply_rotary_emb on interleaved pairs
        x = x.reshape(n, x.shape[1], hd // 2, 2)
        re, im = x[..., 0], x[..., 1]
        return torch.stack([re * cos - im * sin, re * sin + im * cos], -1).reshape(n, -1, hd)

    x = w["tok"][torch.tensor(ids)]
    mask = torch.full((n, n), float("-inf"), dtype=torch.float64).triu(1)
    rep = c["heads"] // c["kv_heads"]
    for l in range(c["layers"]):
        h = rms(x, w["attn_norm"][l])
        q = rope((h @ w["wq"][l].T).view(n, c["heads"], hd))
        k = rope((h @ w["wk"][l].T).view(n, c["kv_heads"], hd)).repeat_interleave(rep, 1)
        v = (h @ w["wv"][l].T).view(n, c["kv_heads"], hd).repeat_interleave(rep, 1)
        s = torch.einsum("qhd,khd->hqk", q, k) / math.sqrt(hd) + mask
        o = torch.einsum("hqk,khd->qhd", F.softmax(s, -1), v).reshape(n, c["dim"])
        x = x + o @ w["wo"][l].T
        h = rms(x, w["ffn_norm"][l])
        x = x + (F.silu(h @ w["w1"][l].T) * (h @ w["w3"][l].T)) @ w["w2"][l].T
    return rms(x, w["norm"]) @ w["cls"].T


def stories(data):
    with open(os.path.join(data, "tinystories_valid_4.txt"), encoding="utf-8") as f:
        text = f.read()
    return [s.strip() for s in text.split("<|endoftext|>") if s.strip()]


def strided(c, w, seq, ctx, stride):
    """DESIGN §5: windows s[b:e], each token scored once (the HF strided method)."""
    import torch.nn.functional as F
    import torch
    losses, done = [], 1
    for b in range(0, len(seq), stride):
        e = min(b + ctx, len(seq))
        lo = max(done, b + 1)
        if e > lo:
            lp = F.log_softmax(forward(c, w, seq[b:e - 1]), -1)
            losses += [-float(lp[p - 1 - b, seq[p]]) for p in range(lo, e)]
        done = e
        if e == len(seq):
            break
    return losses


def golden(data):
    import sentencepiece as spm
    import torch
    torch.set_num_threads(1)
    sp = spm.SentencePieceProcessor(model_file=os.path.join(data, "tok512.model"))
    docs = [sp.encode(s) for s in stories(data)]
    out = {"about": "float64 PyTorch reference of the real llama2.c models on the four "
                    "TinyStories stories, made by tools/llama2c_ref.py golden; do not edit",
           "stories": docs, "bos_id": BOS, "models": []}
    with torch.no_grad():
        for m in MODELS:
            c, w = load(os.path.join(data, m + ".bin"))
            ctx = c["seq_len"]
            losses = []
            for d in docs:
                losses += strided(c, w, [BOS] + d, ctx, ctx // 2)
            total = math.fsum(losses)
            out["models"].append({"name": m, "ctx": ctx, "stride": ctx // 2, "tokens": len(losses),
                                  "nll_sum": float("%.12g" % total),
                                  "nll": float("%.12g" % (total / len(losses)))})
    return out


def missing(data):
    try:
        import sentencepiece  # noqa: F401
        import torch  # noqa: F401
    except ImportError as e:
        return str(e)
    for f in ["tok512.model", "tinystories_valid_4.txt"] + [m + ".bin" for m in MODELS]:
        if not os.path.exists(os.path.join(data, f)):
            return "%s is missing" % os.path.join(data, f)
    return None


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("cmd", choices=["golden", "check"])
    ap.add_argument("--data", default=DATA)
    ap.add_argument("--out", default=GOLDEN)
    a = ap.parse_args()
    why = missing(a.data)
    if why:
        print("llama2c_ref: %s" % why)
        sys.exit(1 if a.cmd == "golden" or os.environ.get("CI") == "true" else 77)
    got = golden(a.data)
    if a.cmd == "golden":
        with open(a.out, "w") as f:
            json.dump(got, f, separators=(",", ":"))
            f.write("\n")
        return
    with open(GOLDEN) as f:
        want = json.load(f)
    ok = got["stories"] == want["stories"] and all(
        g["tokens"] == x["tokens"] and abs(g["nll"] - x["nll"]) <= 1e-9 * abs(x["nll"])
        for g, x in zip(got["models"], want["models"])) and len(got["models"]) == len(want["models"])
    for g in got["models"]:
        print("llama2c_ref: %s nll %.6f over %d tokens" % (g["name"], g["nll"], g["tokens"]))
    if not ok:
        print("llama2c_ref: %s is not current: run `tools/llama2c_ref.py golden`" % GOLDEN)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
