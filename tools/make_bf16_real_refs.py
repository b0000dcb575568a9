#!/usr/bin/python3
"""Golden references for `--precision bf16` on real trained models (DESIGN §5): the llama2.c
checkpoints of ../shared/data/real-models/ (stories260K, llama2xs500) on its four
TinyStories validation stories, computed without the C code: PyTorch in float64 on the
llama2.c file as stored (llama2.c's own layout and interleaved RoPE, as its model.py runs
it), the perplexity protocol of DESIGN §5 written out (windows of CTX advancing by STRIDE,
each token scored once).

Writes OUTDIR/real.json (default tests/data/bf16/real.json):
  "ids"      the stories' token ids (SentencePiece tok512.model, no BOS; one document each)
  "ctx", "stride", "bos"
  "models"   for each model file, {"plain": [nll sum, tokens], "rounded": [nll sum, tokens],
             "sha256"}: plain = the float64 forward pass of the stored weights; rounded =
             the same with both operands of every weight product (q, k, v, o, w1, w2, w3,
             the classifier) rounded to bf16 (through float32, round to nearest even)
             before a float64 product -- what --precision bf16 computes, with float64 in
             place of its float32 sums.

write_hf() writes a llama2.c file as the Hugging Face LLaMA layout ckptscope reads
(config.json, model.safetensors in F32): the rows of wq and wk are permuted within each
head from llama2.c's interleaved RoPE pairs (2i, 2i+1) to Hugging Face's rotate-half
(i, i + head_dim/2), as llama2.c's export.py does. The test (tests/cli/test_bf16_real.py)
uses it; the references here never go through it.

    /usr/bin/python3 tools/make_bf16_real_refs.py [OUTDIR]
    /usr/bin/python3 tools/make_bf16_real_refs.py --check [FILE]
        recompute and compare with FILE (default tests/data/bf16/real.json) to 1e-9
        relative: exit 0 when current, 1 when not; 77 when torch or sentencepiece is
        missing, unless CI=true (then 1).
"""
import hashlib
import json
import math
import os
import struct
import sys

import numpy as np

try:
    import torch
except ImportError:
    torch = None
try:
    import sentencepiece
except ImportError:
    sentencepiece = None

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.join(os.environ.get("CKS_SHARED_DATA") or os.path.join(HERE, "..", "shared", "data"),
                    "real-models")
MODELS = ["stories260K.bin", "llama2xs500.bin"]
CTX, STRIDE, BOS = 256, 128, 1
EPS, THETA = 1e-5, 10000.0


def read_llama2c(path):
    """(header dict, {name: float32 array}) of a llama2.c version-0 file."""
    with open(path, "rb") as f:
        data = f.read()
    dim, hidden, layers, heads, kv_heads, vocab, seq = struct.unpack("<7i", data[:28])
    tied = vocab > 0
    vocab = abs(vocab)
    hd = dim // heads
    kvd = kv_heads * hd
    a = np.frombuffer(data, dtype="<f4", offset=28)
    pos = [0]

    def take(*shape):
        n = int(np.prod(shape))
        r = a[pos[0]:pos[0] + n].reshape(shape)
        pos[0] += n
        return r

    w = {"emb": take(vocab, dim), "att_norm": take(layers, dim), "wq": take(layers, dim, dim),
         "wk": take(layers, kvd, dim), "wv": take(layers, kvd, dim), "wo": take(layers, dim, dim),
         "ffn_norm": take(layers, dim), "w1": take(layers, hidden, dim),
         "w2": take(layers, dim, hidden), "w3": take(layers, hidden, dim), "norm": take(dim)}
    take(seq, hd // 2)  # freq_cis_real: recomputed
    take(seq, hd // 2)  # freq_cis_imag
    w["cls"] = w["emb"] if tied else take(vocab, dim)
    hdr = dict(dim=dim, hidden=hidden, layers=layers, heads=heads, kv_heads=kv_heads,
               vocab=vocab, seq=seq, tied=tied)
    return hdr, w


def write_hf(path, outdir):
    """The llama2.c file at path as a Hugging Face LLaMA folder in outdir."""
    hdr, w = read_llama2c(path)
    dim = hdr["dim"]

    def rotate_half_rows(m, n_heads):
        rows = m.shape[0]
        return m.reshape(n_heads, rows // n_heads // 2, 2, dim).transpose(0, 2, 1, 3) \
            .reshape(rows, dim)

    sd = {"model.embed_tokens.weight": w["emb"], "model.norm.weight": w["norm"]}
    if not hdr["tied"]:
        sd["lm_head.weight"] = w["cls"]
    for i in range(hdr["layers"]):
        p = "model.layers.%d." % i
        sd[p + "input_layernorm.weight"] = w["att_norm"][i]
        sd[p + "post_attention_layernorm.weight"] = w["ffn_norm"][i]
        sd[p + "self_attn.q_proj.weight"] = rotate_half_rows(w["wq"][i], hdr["heads"])
        sd[p + "self_attn.k_proj.weight"] = rotate_half_rows(w["wk"][i], hdr["kv_heads"])
        sd[p + "self_attn.v_proj.weight"] = w["wv"][i]
        sd[p + "self_attn.o_proj.weight"] = w["wo"][i]
        sd[p + "mlp.gate_proj.weight"] = w["w1"][i]
        sd[p + "mlp.up_proj.weight"] = w["w3"][i]
        sd[p + "mlp.down_proj.weight"] = w["w2"][i]
    header, blobs, off = {}, [], 0
    for k in sorted(sd):
        b = np.ascontiguousarray(sd[k], dtype="<f4").tobytes()
        header[k] = {"dtype": "F32", "shape": list(sd[k].shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header, separators=(",", ":"), sort_keys=True).encode()
    h += b" " * (-len(h) % 8)
    os.makedirs(outdir, exist_ok=True)
    with open(os.path.join(outdir, "model.safetensors"), "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))
    cfg = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": dim,
           "intermediate_size": hdr["hidden"], "num_hidden_layers": hdr["layers"],
           "num_attention_heads": hdr["heads"], "num_key_value_heads": hdr["kv_heads"],
           "vocab_size": hdr["vocab"], "max_position_embeddings": hdr["seq"],
           "rms_norm_eps": EPS, "rope_theta": THETA, "tie_word_embeddings": hdr["tied"],
           "bos_token_id": BOS, "eos_token_id": 2, "hidden_act": "silu",
           "torch_dtype": "float32"}
    with open(os.path.join(outdir, "config.json"), "w") as f:
        json.dump(cfg, f, indent=1, sort_keys=True)
        f.write("\n")


def bf16(t):
    """float64 values rounded to bf16 through float32 (torch: round to nearest even)."""
    return t.to(torch.float32).to(torch.bfloat16).to(torch.float64)


def logits(hdr, w, ids, rounded):
    """(n, vocab) float64 logits of one sequence at positions 0..n-1, llama2.c's model.py:
    interleaved RoPE pairs, grouped-query attention, SwiGLU, RMSNorm."""
    dim, nh, nkv = hdr["dim"], hdr["heads"], hdr["kv_heads"]
    hd, n = dim // nh, len(ids)

    def linear(x, m):
        m = torch.from_numpy(np.asarray(m, dtype=np.float64))
        return (bf16(x) @ bf16(m).T) if rounded else x @ m.T

    def rms(x, g):
        return torch.from_numpy(g.astype(np.float64)) * \
            (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + EPS))

    freqs = 1.0 / THETA ** (torch.arange(0, hd, 2, dtype=torch.float64) / hd)
    ang = torch.arange(n, dtype=torch.float64)[:, None] * freqs[None, :]
    cos, sin = ang.cos(), ang.sin()

    def rope(t):  # (n, heads, hd), pairs (2i, 2i+1)
        a, b = t[..., 0::2], t[..., 1::2]
        out = torch.empty_like(t)
        out[..., 0::2] = a * cos[:, None, :] - b * sin[:, None, :]
        out[..., 1::2] = a * sin[:, None, :] + b * cos[:, None, :]
        return out

    mask = torch.triu(torch.full((n, n), -math.inf, dtype=torch.float64), 1)
    x = torch.from_numpy(w["emb"][ids].astype(np.float64))
    for i in range(hdr["layers"]):
        h = rms(x, w["att_norm"][i])
        q = rope(linear(h, w["wq"][i]).view(n, nh, hd)).transpose(0, 1)
        k = rope(linear(h, w["wk"][i]).view(n, nkv, hd)).transpose(0, 1)
        v = linear(h, w["wv"][i]).view(n, nkv, hd).transpose(0, 1)
        k = k.repeat_interleave(nh // nkv, 0)
        v = v.repeat_interleave(nh // nkv, 0)
        a = torch.softmax(q @ k.transpose(1, 2) / math.sqrt(hd) + mask, -1) @ v
        x = x + linear(a.transpose(0, 1).reshape(n, dim), w["wo"][i])
        h = rms(x, w["ffn_norm"][i])
        g, u = linear(h, w["w1"][i]), linear(h, w["w3"][i])
        x = x + linear(torch.nn.functional.silu(g) * u, w["w2"][i])
    return linear(rms(x, w["norm"]), w["cls"])


def nll(hdr, w, docs, rounded):
    """[summed NLL, scored tokens] over docs by DESIGN §5's windows (BOS first)."""
    total, count = 0.0, 0
    for t in docs:
        s = [BOS] + list(t)
        done, b = 1, 0
        while True:
            e = min(b + CTX, len(s))
            lp = torch.log_softmax(logits(hdr, w, s[b:e], rounded), -1)
            for p in range(max(done, b + 1), e):
                total -= float(lp[p - b - 1, s[p]])
                count += 1
            done = e
            if e == len(s):
                break
            b += STRIDE
    return [total, count]


def stories():
    sp = sentencepiece.SentencePieceProcessor(model_file=os.path.join(DATA, "tok512.model"))
    with open(os.path.join(DATA, "tinystories_valid_4.txt"), encoding="utf-8") as f:
        parts = [p.strip() for p in f.read().split("<|endoftext|>")]
    return [sp.encode(p) for p in parts if p]


def generate():
    torch.set_num_threads(1)
    ids = stories()
    doc = {"generator": "tools/make_bf16_real_refs.py", "ids": ids, "ctx": CTX,
           "stride": STRIDE, "bos": BOS, "models": {}}
    for name in MODELS:
        path = os.path.join(DATA, name)
        hdr, w = read_llama2c(path)
        with open(path, "rb") as f:
            sha = hashlib.sha256(f.read()).hexdigest()
        with torch.no_grad():
            m = {"sha256": sha, "plain": nll(hdr, w, ids, False), "rounded": nll(hdr, w, ids, True)}
        doc["models"][name] = m
        p, r = m["plain"][0] / m["plain"][1], m["rounded"][0] / m["rounded"][1]
        print("make_bf16_real_refs: %s: %d tokens, nll plain %.6f, rounded %.6f (%.2e relative)"
              % (name, m["plain"][1], p, r, abs(r - p) / p))
    return doc


def differs(a, b):
    for name in MODELS:
        x, y = a["models"][name], b["models"][name]
        if x["sha256"] != y["sha256"]:
            return "%s: sha256" % name
        for key in ("plain", "rounded"):
            if x[key][1] != y[key][1] or abs(x[key][0] - y[key][0]) > 1e-9 * abs(y[key][0]):
                return "%s %s: %r != %r" % (name, key, x[key], y[key])
    for key in ("ids", "ctx", "stride", "bos"):
        if a[key] != b[key]:
            return key
    return None


def main():
    args = sys.argv[1:]
    check = args and args[0] == "--check"
    if check:
        args = args[1:]
    out = args[0] if args else os.path.join(HERE, "tests", "data", "bf16", "real.json")
    if torch is None or sentencepiece is None:
        print("make_bf16_real_refs: needs torch and sentencepiece (Debian's python3-torch, "
              "python3-sentencepiece)")
        sys.exit(1 if not check or os.environ.get("CI") == "true" else 77)
    doc = generate()
    if check:
        with open(out) as f:
            e = differs(json.load(f), doc)
        print("make_bf16_real_refs: %s %s" % (out, "differs: " + e if e else "is current"))
        sys.exit(1 if e else 0)
    with open(out, "w") as f:
        json.dump(doc, f, separators=(",", ":"))
        f.write("\n")


if __name__ == "__main__":
    main()
