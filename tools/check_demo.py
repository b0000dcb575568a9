#!/usr/bin/python3
"""Checks that examples/reference_losses.json agrees with examples/demo.bundle and the
held-out texts: the bundle's branches, commits and file hashes are the recorded ones; the
bundle's tokenizer gives the recorded token ids; PyTorch (tools/tinyllama.py) recomputes
the recorded losses of some checkpoints from the bundle's files; and an independent float64
numpy forward pass, written here from the Hugging Face LLaMA equations and DESIGN §5, agrees
with the recorded per-token losses; examples/train_data/ is shaped as recorded. With --ckptscope, also that `ckptscope list --json` and
`inspect --json` read the bundle's clone as recorded.

  /usr/bin/python3 tools/check_demo.py [--examples DIR] [--ckptscope build/analyze/ckptscope]

Exit status 0 when everything agrees, 1 on a mismatch. Prints one line per check.
"""

import argparse
import gzip
import hashlib
import io
import json
import math
import os
import struct
import subprocess
import sys
import tempfile

import numpy as np
import sentencepiece as spm
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tinyllama as tl  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Tolerances. Same code, same machine: PyTorch reproduces the losses bit for bit; another
# CPU or torch build may round differently in the last float32 bits. The float64 numpy
# pass differs from the float32 reference by float32 rounding only (~1e-6 per token).
TORCH_NLL_ATOL = 1e-5
NUMPY_TOKEN_ATOL = 2e-4
NUMPY_NLL_ATOL = 2e-5
CKPTSCOPE_NORM_RTOL = 1e-6


class Checker:
    def __init__(self):
        self.failed = 0

    def __call__(self, ok, what):
        print("%s  %s" % ("ok  " if ok else "FAIL", what), flush=True)
        if not ok:
            self.failed += 1
        return ok


def sha(b):
    return hashlib.sha256(b).hexdigest()


def git(repo, *args):
    return subprocess.run(["git", "-C", repo] + list(args), check=True,
                          stdout=subprocess.PIPE).stdout


# ---------------------------------------------------------------------------------------
# An independent reading of the files and of the model, in float64 numpy.


def np_safetensors(data):
    """{name: float64 array} from safetensors bytes (BF16 only, as the demo stores)."""
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n].decode("utf-8"))
    out, end_prev = {}, 0
    for name, e in sorted(((k, v) for k, v in header.items() if k != "__metadata__"),
                          key=lambda kv: kv[1]["data_offsets"][0]):
        b, e_ = e["data_offsets"]
        assert e["dtype"] == "BF16" and b == end_prev and e_ - b == 2 * math.prod(e["shape"])
        u16 = np.frombuffer(data, dtype="<u2", count=(e_ - b) // 2, offset=8 + n + b)
        out[name] = (u16.astype(np.uint32) << 16).view(np.float32).astype(np.float64).reshape(e["shape"])
        end_prev = e_
    assert 8 + n + end_prev == len(data)
    return out


def np_weights(fname, data):
    if fname == "model.safetensors":
        return np_safetensors(data)
    sd = torch.load(io.BytesIO(data), map_location="cpu")
    return {k: v.to(torch.float64).numpy() for k, v in sd.items()}


def np_logprobs(cfg, W, ids):
    """log p(next token) [T, vocab] for one window, positions 0..T-1. Per head, explicit:
    RMSNorm x/sqrt(mean(x^2)+eps)*w; RoPE pairs (i, i+hd/2) rotated by pos*theta^(-2i/hd);
    query head h uses kv head h // (H/KV); causal softmax(q.k/sqrt(hd)); SwiGLU."""
    H, KV = cfg["num_attention_heads"], cfg["num_key_value_heads"]
    d, L, eps = cfg["hidden_size"], cfg["num_hidden_layers"], cfg["rms_norm_eps"]
    hd = d // H
    half = hd // 2
    T = len(ids)
    inv = cfg["rope_theta"] ** (-np.arange(half, dtype=np.float64) * 2.0 / hd)
    ang = np.arange(T, dtype=np.float64)[:, None] * inv[None, :]
    cos, sin = np.cos(ang), np.sin(ang)

    def norm(x, w):
        return x / np.sqrt(np.mean(x * x, axis=1, keepdims=True) + eps) * w

    def rope(v):  # v [T, hd]
        a, b = v[:, :half], v[:, half:]
        return np.concatenate([a * cos - b * sin, b * cos + a * sin], axis=1)

    x = W["model.embed_tokens.weight"][ids]
    mask = np.triu(np.ones((T, T), dtype=bool), 1)
    for i in range(L):
        p = "model.layers.%d." % i
        h = norm(x, W[p + "input_layernorm.weight"])
        q = h @ W[p + "self_attn.q_proj.weight"].T
        k = h @ W[p + "self_attn.k_proj.weight"].T
        v = h @ W[p + "self_attn.v_proj.weight"].T
        heads = []
        for hh in range(H):
            g = hh // (H // KV)
            qh = rope(q[:, hh * hd:(hh + 1) * hd])
            kh = rope(k[:, g * hd:(g + 1) * hd])
            s = qh @ kh.T / math.sqrt(hd)
            s[mask] = -np.inf
            s = np.exp(s - s.max(axis=1, keepdims=True))
            s /= s.sum(axis=1, keepdims=True)
            heads.append(s @ v[:, g * hd:(g + 1) * hd])
        x = x + np.concatenate(heads, axis=1) @ W[p + "self_attn.o_proj.weight"].T
        h = norm(x, W[p + "post_attention_layernorm.weight"])
        gate = h @ W[p + "mlp.gate_proj.weight"].T
        up = h @ W[p + "mlp.up_proj.weight"].T
        x = x + ((gate / (1 + np.exp(-gate))) * up) @ W[p + "mlp.down_proj.weight"].T
    logits = norm(x, W["model.norm.weight"]) @ W["lm_head.weight"].T
    m = logits.max(axis=1, keepdims=True)
    return logits - m - np.log(np.exp(logits - m).sum(axis=1, keepdims=True))


def np_token_nll(cfg, W, s, ctx, stride):
    """DESIGN §5 read afresh: windows s[b:e], b = 0, stride, ...; positions
    max(done, b+1) <= p < e scored; done = e; stop after the window that reaches |s|."""
    out, done, b = [], 1, 0
    while True:
        e = min(b + ctx, len(s))
        first = max(done, b + 1)
        if first < e:
            lp = np_logprobs(cfg, W, s[b:e])
            out += [-lp[p - b - 1, s[p]] for p in range(first, e)]
        done = e
        if e == len(s):
            return out
        b += stride


# ---------------------------------------------------------------------------------------


def check_heldout(ck, ex, ref):
    for s in ref["sets"]:
        raw = open(os.path.join(ex, s["file"]), "rb").read()
        ck(sha(raw) == s["sha256"] and len(raw) == s["bytes"],
           "%s: %d bytes, sha256 as recorded" % (s["file"], len(raw)))


def check_train_data(ck, ex, ref):
    """examples/train_data/ as tools/train_tiny.py writes it: one file per checkpoint
    interval holding one window per training step of the interval, in order, each of
    ctx + 1 ids below the tokenizer's size at an offset inside the training stream; windows
    that overlap in the stream agree on every shared token (they are cut from one stream);
    the held-out control is [BOS] + the recorded ids of jargon_heldout in whole windows."""
    tr, width = ref["training"], ref["ctx"] + 1
    steps, stream = tr["checkpoint_steps"], {}
    conflicts = 0
    for a, b in zip(steps, steps[1:]):
        name = "train_data/ckpt_%04d.jsonl.gz" % b
        path = os.path.join(ex, name)
        if not os.path.exists(path):
            ck(False, "%s exists" % name)
            continue
        rows = [json.loads(x) for x in gzip.decompress(open(path, "rb").read()).decode().splitlines()]
        ok = [r["step"] for r in rows] == list(range(a + 1, b + 1))
        for r in rows:
            ids, off = r["token_ids"], r["offset"]
            ok &= len(ids) == width and 0 <= off <= tr["tokens"] - width
            ok &= all(0 <= t < ref["tokenizer_pieces"] for t in ids)
            for i, t in enumerate(ids):
                conflicts += stream.setdefault(off + i, t) != t
        ck(ok, "%s: %d windows of %d ids, steps %d..%d" % (name, len(rows), width, a + 1, b))
    dups = [json.loads(x) for x in gzip.decompress(
        open(os.path.join(ex, "train_data", "duplicated.jsonl.gz"), "rb").read()).decode().splitlines()]
    nd, offs = tr["duplicates"], tr["duplicate_offsets"]
    ok = len(dups) == nd and [r["offset"] for r in dups] == offs
    for i, r in enumerate(dups):
        ids = r["token_ids"]
        # step s trains on duplicate (s - 1) % nd: i + 1, i + 1 + nd, ... up to the last step
        ok &= r["duplicate"] == i and r["repeats"] == len(range(i + 1, tr["steps"] + 1, nd))
        ok &= len(ids) == width and ids[0] == ref["bos_id"]
        for k, t in enumerate(ids):
            conflicts += stream.setdefault(r["offset"] + k, t) != t
    ck(ok, "train_data/duplicated.jsonl.gz: %d documents' first %d ids at the recorded offsets, "
       "each trained on %s times" % (len(dups), width, sorted({r["repeats"] for r in dups})))
    ck(conflicts == 0, "train_data: overlapping windows agree (%d stream positions seen, %d "
       "conflicts)" % (len(stream), conflicts))
    held = next(s for s in ref["sets"] if s["name"] == "jargon_heldout")
    doc = [ref["bos_id"]] + held["token_ids"]
    want = [doc[o:o + width] for o in range(0, len(doc) - width + 1, width)]
    got = [json.loads(x)["token_ids"] for x in gzip.decompress(
        open(os.path.join(ex, "train_data", "heldout.jsonl.gz"), "rb").read()).decode().splitlines()]
    ck(got == want, "train_data/heldout.jsonl.gz: %d windows of [BOS] + jargon_heldout" % len(got))


def check_repo(ck, repo, ref):
    heads = {}
    for line in git(repo, "for-each-ref", "--format=%(refname:short) %(objectname)",
                    "refs/heads/").decode().split("\n"):
        if line:
            n, c = line.split()
            heads[n] = c
    names = [c["name"] for c in ref["checkpoints"]]
    ck(sorted(h for h in heads if h.startswith("ckpt_")) == sorted(names) and "main" in heads,
       "bundle branches: main + %d checkpoints as recorded" % len(names))
    for c in ref["checkpoints"]:
        tree = git(repo, "ls-tree", "--name-only", c["name"]).decode().split()
        got = {f: sha(git(repo, "cat-file", "blob", "%s:%s" % (c["name"], f)))
               for f in tree if f != "README.md"}
        ck(heads.get(c["name"]) == c["commit"] and got == c["files"] and int(
            c["name"].split("_")[1]) == c["step"],
           "%s: commit %s, files %s as recorded" % (c["name"], c["commit"][:10], ", ".join(sorted(got))))


def blob(repo, name, path):
    return git(repo, "cat-file", "blob", "%s:%s" % (name, path))


def check_tokens(ck, ex, repo, ref):
    last = ref["checkpoints"][-1]["name"]
    sp = spm.SentencePieceProcessor(model_proto=blob(repo, last, "tokenizer.model"))
    ck(sp.get_piece_size() == ref["tokenizer_pieces"], "tokenizer: %d pieces" % sp.get_piece_size())
    tcfg = json.loads(blob(repo, last, "tokenizer_config.json"))
    ck(tcfg["add_bos_token"] is True and ref["bos"] is True, "tokenizer_config: add_bos_token true")
    for s in ref["sets"]:
        ids = sp.encode(open(os.path.join(ex, s["file"]), "rb").read().decode("utf-8"))
        h = sha(np.asarray(ids, dtype="<u4").tobytes())
        ck(ids == s["token_ids"] and h == s["token_ids_sha256"] and len(ids) == s["token_count"],
           "%s: %d token ids as recorded" % (s["name"], len(ids)))
    return sp


def weights_of(repo, c):
    fname = "pytorch_model.bin" if c["format"] == "pytorch" else "model.safetensors"
    return fname, blob(repo, c["name"], fname)


def check_torch(ck, ex, repo, ref, picks):
    for c in picks:
        fname, data = weights_of(repo, c)
        cfg_json = json.loads(blob(repo, c["name"], "config.json"))
        cfg = tl.Config.from_json(cfg_json)
        W = tl.read_safetensors_f32(data) if fname == "model.safetensors" else tl.read_torch_bin_f32(
            io.BytesIO(data))
        for s in ref["sets"]:
            want = next(x for x in c["sets"] if x["name"] == s["name"])
            toks = tl.score_document(cfg, W, [ref["bos_id"]] + s["token_ids"], ref["ctx"], ref["stride"])
            got = tl.summarize(toks, s["bytes"])
            ok = got["tokens"] == want["tokens"] and all(
                abs(got[k] - want[k]) <= TORCH_NLL_ATOL * (1 + abs(want[k])) for k in ("nll", "bpb"))
            ck(ok, "%s (%s) %s: PyTorch nll %.6f bpb %.6f, recorded %.6f %.6f"
               % (c["name"], fname, s["name"], got["nll"], got["bpb"], want["nll"], want["bpb"]))


def check_numpy(ck, repo, ref):
    by_name = {c["name"]: c for c in ref["checkpoints"]}
    for pt in ref["per_token"]:
        c = by_name[pt["checkpoint"]]
        fname, data = weights_of(repo, c)
        cfg = json.loads(blob(repo, c["name"], "config.json"))
        W = np_weights(fname, data)
        for s in ref["sets"]:
            want = next(x for x in pt["sets"] if x["name"] == s["name"])
            got = np_token_nll(cfg, W, [ref["bos_id"]] + s["token_ids"], pt["ctx"], pt["stride"])
            n = len(got)
            diff = max(abs(a - b) for a, b in zip(got, want["token_nll"])) if n == len(want["token_nll"]) else math.inf
            nll = math.fsum(got) / n
            ok = (n == want["tokens"] and diff <= NUMPY_TOKEN_ATOL and abs(nll - want["nll"]) <= NUMPY_NLL_ATOL)
            ck(ok, "%s ctx %d stride %d %s: numpy float64 %d tokens, nll %.6f (recorded %.6f), "
               "max per-token diff %.2e" % (c["name"], pt["ctx"], pt["stride"], s["name"], n, nll,
                                           want["nll"], diff))
            if pt["stride"] < pt["ctx"]:
                ck(n == s["token_count"], "  stride < ctx scores every token after BOS (%d)" % n)


def check_trend(ck, ref):
    first, last = ref["checkpoints"][0], ref["checkpoints"][-1]
    a = next(s for s in first["sets"] if s["name"] == ref["sets"][0]["name"])
    b = next(s for s in last["sets"] if s["name"] == ref["sets"][0]["name"])
    ck(a["nll"] - b["nll"] > 1.0, "in-domain loss falls: %s %.4f -> %s %.4f"
       % (first["name"], a["nll"], last["name"], b["nll"]))


def check_ckptscope(ck, exe, clone, repo, ref):
    out = subprocess.run([exe, "list", clone, "--json"], stdout=subprocess.PIPE, check=True).stdout
    lst = json.loads(out)
    got = [(c["name"], c["step"], c["commit"], c["format"], c["status"]) for c in lst["checkpoints"]]
    want = [(c["name"], c["step"], c["commit"], c["format"], "complete") for c in ref["checkpoints"]]
    ck(lst["kind"] == "git" and got == want,
       "ckptscope list --json: %d checkpoints, names/steps/commits/formats as recorded" % len(got))
    c = ref["checkpoints"][-1]
    out = subprocess.run([exe, "inspect", "%s@%s" % (clone, c["name"]), "--json"],
                         stdout=subprocess.PIPE, check=True).stdout
    ins = json.loads(out)
    W = np_safetensors(blob(repo, c["name"], "model.safetensors"))
    worst = 0.0
    for t in ins["tensors"]:
        w = W[t["name"]]
        for k, v in (("fro", math.sqrt(np.sum(w * w))), ("mean", np.mean(w)),
                     ("absmax", np.max(np.abs(w)))):
            worst = max(worst, abs(t["norms"][k] - v) / max(abs(v), 1e-30))
    ck(len(ins["tensors"]) == len(W) and ins["config"]["num_key_value_heads"] ==
       ref["model"]["num_key_value_heads"] and worst <= CKPTSCOPE_NORM_RTOL,
       "ckptscope inspect --json %s: %d tensors, norms match numpy (worst rel diff %.1e)"
       % (c["name"], len(ins["tensors"]), worst))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--examples", default=os.path.join(ROOT, "examples"))
    ap.add_argument("--ckptscope", help="the ckptscope executable, to check list/inspect too")
    args = ap.parse_args()
    torch.set_num_threads(1)
    ex = args.examples
    ref = json.load(open(os.path.join(ex, "reference_losses.json")))
    ck = Checker()
    with tempfile.TemporaryDirectory(prefix="check_demo.") as tmp:
        repo = os.path.join(tmp, "mirror.git")
        subprocess.run(["git", "clone", "-q", "--mirror", os.path.join(ex, "demo.bundle"), repo],
                       check=True)
        check_heldout(ck, ex, ref)
        check_train_data(ck, ex, ref)
        check_repo(ck, repo, ref)
        check_tokens(ck, ex, repo, ref)
        cks = ref["checkpoints"]
        picks = [cks[0], next(c for c in cks if c["format"] == "pytorch"), cks[-1]]
        check_torch(ck, ex, repo, ref, picks)
        check_numpy(ck, repo, ref)
        check_trend(ck, ref)
        if args.ckptscope:
            clone = os.path.join(tmp, "clone")
            subprocess.run(["git", "clone", "-q", os.path.join(ex, "demo.bundle"), clone], check=True)
            check_ckptscope(ck, args.ckptscope, clone, repo, ref)
    print("check_demo: %s" % ("all checks passed" if not ck.failed else "%d checks FAILED" % ck.failed))
    return 1 if ck.failed else 0


if __name__ == "__main__":
    sys.exit(main())
