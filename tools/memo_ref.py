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
  /usr/bin/python3 tools/memo_ref.py golden --fixture CKS_FIXTURE   writes tools/memo_ref.json
  /usr/bin/python3 tools/memo_ref.py check --fixture CKS_FIXTURE    recomputes it and
        compares with the committed file: exit 0 when current, 1 when not, 77 when torch
        is missing outside CI (CI=true: 1)

The golden file (float64 generation, the checkpoints' weights widened exactly) holds, for
two checkpoints of the demo run (examples/demo.bundle) and a random LLaMA model with GQA
(the fixture generator's, as tools/family_ref.py makes it): sequences built to be
reproduced exactly (the prompt and the model's own greedy continuation), partly (one
token of it changed) and not at all (every token changed), short lines to be skipped, a
sample of the demo's recorded training sequences and random sequences; with the
results, the per-token matches, and the smallest top-1 logit margin of every generation
(so that a float32 implementation must agree token for token).

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

try:
    import torch
    import torch.nn.functional as F
except ImportError:  # `check` reports it: a failure in CI, a skip elsewhere
    if len(sys.argv) > 1 and sys.argv[1] == "check":
        print("memo_ref: torch is not installed (Debian: python3-torch)")
        sys.exit(1 if os.environ.get("CI") == "true" else 77)
    raise

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
    x = F.embedding(ids, p["model.embed_tokens.weight"])
    cos, sin = tl.rope_cos_sin(c, pos0 + T, x.dtype)  # angles in float32, as HF
    cos, sin = cos[pos0:], sin[pos0:]
    P = pos0 + T
    mask = torch.full((T, P), float("-inf"), dtype=x.dtype).triu(pos0 + 1)
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


def generate(c, p, prompts, l, batch=512, margins=None):
    """Greedy continuations [n, l] of prompts [n, k] (in the weights' dtype, ties to the
    lowest id); margins (a list) receives, per sequence, the smallest gap over its steps
    between the largest and the second largest logit."""
    out = []
    with torch.no_grad():
        for b in range(0, len(prompts), batch):
            x = torch.tensor(prompts[b:b + batch], dtype=torch.int64)
            cache = [None] * c.num_hidden_layers
            logits = forward_cached(c, p, x, cache, 0)[:, -1, :]
            got, gap = [], []
            for j in range(l):
                nxt = logits.argmax(-1, keepdim=True)  # the first maximum: lowest id
                top = logits.topk(2, dim=-1).values
                gap.append(top[:, 0] - top[:, 1])
                got.append(nxt)
                if j + 1 < l:
                    logits = forward_cached(c, p, nxt, cache, x.shape[1] + j)[:, -1, :]
            out.append(torch.cat(got, dim=1).numpy())
            if margins is not None:
                margins += torch.stack(gap, dim=1).min(dim=1).values.tolist()
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


GOLDEN = os.path.join(HERE, "memo_ref.json")
DEMO_CKPTS = ["ckpt_0192", "ckpt_1920"]
SMALL = ["--hidden", "64", "--intermediate", "160", "--layers", "2", "--heads", "4",
         "--kv-heads", "2", "--vocab", "256", "--max-pos", "128", "--rope-theta", "50000",
         "--eps", "1e-3", "--std", "0.3", "--layout", "folder", "--checkpoints", "1"]


def built_lines(c, p, prompts, tails, k, l, vocab, margins):
    """JSONL token_ids lines: 4 reproduced exactly (prompt + the model's own continuation
    + a tail that is not read), 4 partly (one token changed: in the middle, the last one at
    the first position), 4 not at all (every token changed), and 2 lines of k + l - 1 ids
    (skipped) after the sixth."""
    own = generate(c, p, [q[:k] for q in prompts[:12]], l, margins=margins)
    lines = []
    for i in range(12):
        g = [int(x) for x in own[i]]
        if 4 <= i < 8:
            j = l // 2 if i < 7 else 0
            g[j] = (g[j] + 1) % vocab
        elif i >= 8:
            g = [(x + 1) % vocab for x in g]
        lines.append(list(prompts[i][:k]) + g + list(tails[i]))
        if i == 5:
            lines += [list(prompts[12][:k + l - 1]), list(prompts[13][:k + l - 1])]
    return lines


def result_of(c, p, seqs, k, l, skipped, margins):
    """score() of the sequences, with each one's smallest top-1 margin ("margin")."""
    arr = np.array(seqs, dtype=np.int64).reshape(len(seqs), k + l)
    mine = []
    r = score(generate(c, p, arr[:, :k].tolist(), l, margins=mine), arr[:, k:])
    r["skipped"] = skipped
    r["margin"] = [float("%.6g" % m) for m in mine]
    margins += mine
    return r


def lines_case(c, p, name, lines, k, l, margins):
    seqs = [q[:k + l] for q in lines if len(q) >= k + l]
    return {"name": name, "lines": lines,
            "result": result_of(c, p, seqs, k, l, len(lines) - len(seqs), margins)}


def file_case(c, p, name, path, k, l, samples, seed, margins):
    seqs, lines, eligible, skipped = load_sequences(os.path.join(HERE, "..", path), k, l,
                                                    samples, seed)
    r = result_of(c, p, seqs, k, l, skipped, margins)
    r["lines"] = lines
    return {"name": name, "file": path, "samples": samples, "seed": seed, "result": r}


def to64(p):
    return {n: t.double() for n, t in p.items()}


def demo_cases(tmp):
    repo = os.path.join(tmp, "demo")
    subprocess.run(["git", "clone", "-q", os.path.join(HERE, "..", "examples", "demo.bundle"),
                    repo], check=True)
    held = [json.loads(x)["token_ids"] for x in
            read_bytes(os.path.join(HERE, "..", "examples", "train_data", "heldout.jsonl.gz"))
            .decode().split("\n") if x.strip()]
    out = []
    for ck in DEMO_CKPTS:
        c, p = load_checkpoint("%s@origin/%s" % (repo, ck))
        p = to64(p)
        margins = []
        lines = built_lines(c, p, held[:14], [h[64:69] for h in held[:12]], 32, 32,
                            c.vocab_size, margins)
        sets = [lines_case(c, p, "built", lines, 32, 32, margins),
                file_case(c, p, "train", "examples/train_data/ckpt_1920.jsonl.gz", 32, 32, 24,
                          7, margins)]
        out.append({"name": "demo-" + ck, "source": "demo", "ckpt": ck, "prompt": 32,
                    "continuation": 32, "sets": sets, "min_margin": min(margins)})
    return out


def random_case(fixture, tmp):
    src = os.path.join(tmp, "gqa")
    subprocess.run([fixture, src] + SMALL, check=True)
    c, p = load_checkpoint(os.path.join(src, "ckpt_000"))
    p = to64(p)
    rs = np.random.RandomState(15)
    prompts = rs.randint(0, c.vocab_size, size=(14, 40)).tolist()
    tails = rs.randint(0, c.vocab_size, size=(12, 3)).tolist()
    margins = []
    lines = built_lines(c, p, prompts, tails, 16, 16, c.vocab_size, margins)
    rand = rs.randint(0, c.vocab_size, size=(16, 40)).tolist()
    sets = [lines_case(c, p, "built", lines, 16, 16, margins),
            lines_case(c, p, "random", rand, 16, 16, margins)]
    return {"name": "gqa-random", "source": "fixture", "fixture": SMALL, "ckpt": "ckpt_000",
            "prompt": 16, "continuation": 16, "sets": sets, "min_margin": min(margins)}


def expect_built(case):
    """The built sets must come out as built (else the reference itself is wrong)."""
    l = case["continuation"]
    for s in case["sets"]:
        if s["name"] != "built":
            continue
        m = np.array(s["result"]["match"])
        assert s["result"]["skipped"] == 2 and m.shape == (12, l), case["name"]
        assert m[:4].all() and not m[8:].any(), case["name"]
        assert m[4:8].sum(1).tolist() == [l - 1] * 4, case["name"]


def golden(fixture):
    import shutil
    import tempfile
    tmp = tempfile.mkdtemp(prefix="memo-ref-")
    try:
        with torch.no_grad():
            cases = demo_cases(tmp) + [random_case(fixture, tmp)]
    finally:
        shutil.rmtree(tmp)
    for c in cases:
        expect_built(c)
    return {"about": "float64 PyTorch greedy generation (ties to the lowest id) on the demo "
                     "run and a random GQA model, made by tools/memo_ref.py golden; do not edit",
            "cases": cases}


def close(a, b, tol=1e-9):
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(close(a[k], b[k], tol) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(close(x, y, tol) for x, y in zip(a, b))
    if isinstance(a, float) or isinstance(b, float):
        return abs(a - b) <= tol * max(1.0, abs(b))
    return a == b


def check(fixture):
    with open(GOLDEN) as f:
        want = json.load(f)
    got = json.loads(json.dumps(golden(fixture)))
    bad = [c["name"] for c, w in zip(got["cases"], want["cases"]) if not close(c, w, 1e-6)]
    if len(got["cases"]) != len(want["cases"]):
        bad.append("(the number of cases)")
    for name in bad:
        print("memo_ref: case %s differs from %s: run `tools/memo_ref.py golden`" % (name, GOLDEN))
    print("memo_ref: %d cases, %d differ" % (len(got["cases"]), len(bad)))
    return 1 if bad else 0


def golden_main(argv):
    ap = argparse.ArgumentParser()
    ap.add_argument("cmd", choices=["golden", "check"])
    ap.add_argument("--fixture", required=True)
    ap.add_argument("--out", default=GOLDEN)
    a = ap.parse_args(argv)
    torch.set_num_threads(1)
    if a.cmd == "check":
        sys.exit(check(a.fixture))
    text = json.dumps(golden(a.fixture), separators=(",", ":"))
    with open(a.out, "w") as f:
        f.write(text + "\n")


def main():
    if len(sys.argv) > 1 and sys.argv[1] in ("golden", "check"):
        return golden_main(sys.argv[1:])
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
