#!/usr/bin/python3
"""Golden references for `--precision bf16` (DESIGN §5), computed without the C code:
PyTorch in float64, the LLaMA forward pass written out from Hugging Face's
modeling_llama.py (RMSNorm, rotate-half RoPE, grouped-query causal attention, SwiGLU,
untied lm_head), with every weight product written as one function `linear(x, W)`.

Writes into OUTDIR (default tests/data/bf16):
  f32/, f16/, bf16/   one tiny random LLaMA (config.json + model.safetensors), the same
                      weights stored as F32, as F16 (torch's .half()) and as BF16 (the F32
                      values rounded to bfloat16 by torch's .bfloat16(), round to nearest even)
  refs.json           for each stored dtype, the (n, vocab) logits of one sequence (ids):
    "rounded": both operands of every weight product (q, k, v, o, gate, up, down, lm_head)
               rounded to bf16 before a float64 product -- what --precision bf16 computes,
               with float64 in place of its float32 sums
    "plain":   no rounding: the float64 forward pass of the stored weights
    "dev_plain", "dev_weights_only", "dev_acts_only": [max, mean] of |logit - rounded| for
               plain, for only the weights rounded, for only the activations rounded: what
               a kernel that skipped one of the two roundings would be off by (the tight
               tolerances of the C test must be below)
    "dev_flips": [max, mean] over 8 draws of |logit - rounded| when every activation is
               first moved by a relative 2^-22 (float32 noise): an activation that lands on
               the neighbouring bf16 value moves the logits after it (the tight tolerances
               must allow that much)
  plus "rounding": f32 bit patterns (ties both ways, subnormals, the largest finite values,
  inf, NaN, random) with the bf16 bits torch gives them (torch makes every NaN 0x7fc0).

The bf16 rounding of a float64 activation is that of its float32 value (the C code
rounds float32 activations): x.to(float32).to(bfloat16). numpy bit arithmetic (u + 0x7fff +
lsb) >> 16 is checked against torch on every rounded operand.

    /usr/bin/python3 tools/make_bf16_refs.py [OUTDIR]
    /usr/bin/python3 tools/make_bf16_refs.py --check [DIR]
        regenerate in a temporary folder and compare with DIR (default tests/data/bf16):
        the weight files byte for byte, refs.json's numbers to 1e-9 relative. Exit 0 when
        current, 1 when not; 77 when torch is missing, unless CI=true (then 1).

Deterministic: torch.Generator seeded 17.
"""
import json
import math
import os
import shutil
import struct
import sys
import tempfile

import numpy as np

try:
    import torch
except ImportError:  # the --check entry point reports it
    torch = None

SHAPE = {"hidden_size": 32, "intermediate_size": 88, "num_hidden_layers": 2,
         "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 72,
         "max_position_embeddings": 64, "rms_norm_eps": 1e-5, "rope_theta": 10000.0}
NIDS = 33  # 33 rows: not a multiple of the kernel's 14-row panels
STD = 0.3
DTYPES = ["f32", "f16", "bf16"]


# ---------------------------------------------------------------- model and files

def make_weights():
    g = torch.Generator().manual_seed(17)
    c = SHAPE
    d, h, v = c["hidden_size"], c["intermediate_size"], c["vocab_size"]
    hd = d // c["num_attention_heads"]
    kvd = c["num_key_value_heads"] * hd

    def rnd(*shape, std=STD):
        return torch.randn(*shape, generator=g, dtype=torch.float32) * std

    sd = {"model.embed_tokens.weight": rnd(v, d, std=1.0)}
    for i in range(c["num_hidden_layers"]):
        p = "model.layers.%d." % i
        sd[p + "input_layernorm.weight"] = 1.0 + rnd(d, std=0.1)
        sd[p + "self_attn.q_proj.weight"] = rnd(d, d)
        sd[p + "self_attn.k_proj.weight"] = rnd(kvd, d)
        sd[p + "self_attn.v_proj.weight"] = rnd(kvd, d)
        sd[p + "self_attn.o_proj.weight"] = rnd(d, d)
        sd[p + "post_attention_layernorm.weight"] = 1.0 + rnd(d, std=0.1)
        sd[p + "mlp.gate_proj.weight"] = rnd(h, d)
        sd[p + "mlp.up_proj.weight"] = rnd(h, d)
        sd[p + "mlp.down_proj.weight"] = rnd(d, h)
    sd["model.norm.weight"] = 1.0 + rnd(d, std=0.1)
    sd["lm_head.weight"] = rnd(v, d)
    ids = torch.randint(0, v, (NIDS,), generator=g).tolist()
    return sd, ids


def stored(sd, dt):
    """The state dict as stored in dtype dt (torch tensors of that dtype)."""
    conv = {"f32": lambda t: t, "f16": lambda t: t.half(), "bf16": lambda t: t.bfloat16()}[dt]
    return {k: conv(t) for k, t in sd.items()}


def write_safetensors(path, sd):
    names = sorted(sd)
    header, blobs, off = {}, [], 0
    for n in names:
        t = sd[n]
        raw = t.contiguous().view(torch.int16).numpy().tobytes() if t.dtype == torch.bfloat16 \
            else t.contiguous().numpy().astype(t.numpy().dtype.newbyteorder("<")).tobytes()
        header[n] = {"dtype": {torch.float32: "F32", torch.float16: "F16",
                               torch.bfloat16: "BF16"}[t.dtype],
                     "shape": list(t.shape), "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    h = json.dumps(header, separators=(",", ":"), sort_keys=True).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def write_model(outdir, dt, sd):
    d = os.path.join(outdir, dt)
    os.makedirs(d, exist_ok=True)
    cfg = dict(SHAPE, architectures=["LlamaForCausalLM"], model_type="llama", bos_token_id=1,
               eos_token_id=2, hidden_act="silu", tie_word_embeddings=False,
               torch_dtype={"f32": "float32", "f16": "float16", "bf16": "bfloat16"}[dt])
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(cfg, f, indent=1, sort_keys=True)
        f.write("\n")
    write_safetensors(os.path.join(d, "model.safetensors"), sd)


# ---------------------------------------------------------------- bf16 rounding

def bf16_bits_numpy(x32):
    """The rule of metrics/bf16.h in numpy: (u + 0x7fff + ((u >> 16) & 1)) >> 16."""
    u = np.asarray(x32, dtype=np.float32).view(np.uint32).astype(np.uint64)
    r = ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint32)
    nan = (u & 0x7FFFFFFF) > 0x7F800000
    r[nan] = ((u[nan] >> 16) | 0x40).astype(np.uint32)
    return r.astype(np.uint16)


def bf16_bits_torch(x32):
    return torch.from_numpy(np.asarray(x32, dtype=np.float32)).bfloat16().view(torch.int16) \
        .numpy().view(np.uint16)


def bf16(t):
    """A float64 tensor's values rounded to bf16 through float32, back in float64; the numpy
    rule is checked against torch's conversion on every call."""
    x32 = t.to(torch.float32)
    r = x32.to(torch.bfloat16)
    a, b = bf16_bits_numpy(x32.numpy()), r.view(torch.int16).numpy().view(np.uint16)
    if not np.array_equal(a, b):
        sys.exit("make_bf16_refs: numpy's bf16 rule disagrees with torch")
    return r.to(torch.float64)


def rounding_cases():
    g = np.random.default_rng(5)
    edge = [0x3F808000, 0x3F818000, 0x3F807FFF, 0x3F808001, 0xBF808000, 0xBF818000,
            0x00000001, 0x00008000, 0x00018000, 0x00007FFF, 0x007FFFFF, 0x80008000,
            0x7F7FFFFF, 0x7F7F8000, 0x7F7F7FFF, 0xFF7FFFFF, 0x7F800000, 0xFF800000,
            0x7FC00000, 0x7F800001, 0xFFC00001, 0x00000000, 0x80000000, 0x3F800000]
    rnd = g.integers(0, 2 ** 32, size=400, dtype=np.uint64).astype(np.uint32)
    bits = np.array(edge + [int(x) for x in rnd], dtype=np.uint32)
    out = bf16_bits_torch(bits.view(np.float32))
    return [[int(a), int(b)] for a, b in zip(bits, out)]


# ---------------------------------------------------------------- forward (float64)

def forward(sd, ids, round_w, round_x, noise=None):
    """Logits (n, vocab) in float64; sd holds float64 tensors of the stored values. With a
    generator `noise`, each activation entering a product is first moved by a relative
    2^-22 (float32's own rounding error): how far a float32 computation can land from the
    float64 one when that moves an activation to the neighbouring bf16 value."""
    c = SHAPE
    d, nh, nkv = c["hidden_size"], c["num_attention_heads"], c["num_key_value_heads"]
    hd, n, eps = d // nh, len(ids), c["rms_norm_eps"]

    def linear(x, w):
        if noise is not None:
            x = x * (1 + torch.randn(x.shape, generator=noise, dtype=torch.float64) * 2 ** -22)
        return (bf16(x) if round_x else x) @ (bf16(w) if round_w else w).T

    def rms(x, w):
        return w * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps))

    inv = 1.0 / (c["rope_theta"] ** (torch.arange(0, hd, 2, dtype=torch.float64) / hd))
    ang = torch.arange(n, dtype=torch.float64)[:, None] * inv[None, :]
    cos, sin = torch.cat((ang, ang), -1).cos(), torch.cat((ang, ang), -1).sin()

    def rope(t):  # (heads, n, hd)
        rot = torch.cat((-t[..., hd // 2:], t[..., : hd // 2]), -1)
        return t * cos + rot * sin

    mask = torch.triu(torch.full((n, n), -math.inf, dtype=torch.float64), 1)
    x = sd["model.embed_tokens.weight"][ids]
    for i in range(c["num_hidden_layers"]):
        p = "model.layers.%d." % i
        h = rms(x, sd[p + "input_layernorm.weight"])
        q = linear(h, sd[p + "self_attn.q_proj.weight"]).view(n, nh, hd).transpose(0, 1)
        k = linear(h, sd[p + "self_attn.k_proj.weight"]).view(n, nkv, hd).transpose(0, 1)
        v = linear(h, sd[p + "self_attn.v_proj.weight"]).view(n, nkv, hd).transpose(0, 1)
        q, k = rope(q), rope(k)
        k = k.repeat_interleave(nh // nkv, 0)
        v = v.repeat_interleave(nh // nkv, 0)
        a = torch.softmax(q @ k.transpose(1, 2) / math.sqrt(hd) + mask, -1) @ v
        x = x + linear(a.transpose(0, 1).reshape(n, d), sd[p + "self_attn.o_proj.weight"])
        h = rms(x, sd[p + "post_attention_layernorm.weight"])
        g = linear(h, sd[p + "mlp.gate_proj.weight"])
        u = linear(h, sd[p + "mlp.up_proj.weight"])
        x = x + linear(torch.nn.functional.silu(g) * u, sd[p + "mlp.down_proj.weight"])
    return linear(rms(x, sd["model.norm.weight"]), sd["lm_head.weight"])


def fmt2(p):
    return "[%.3g, %.3g]" % tuple(p)


def fmt(t):
    return [[float("%.9g" % v) for v in row] for row in t.tolist()]


def generate(outdir):
    torch.set_num_threads(1)
    sd32, ids = make_weights()
    doc = {"generator": "tools/make_bf16_refs.py", "torch": torch.__version__.split("+")[0],
           "ids": ids, "models": {}, "rounding": rounding_cases()}
    for dt in DTYPES:
        sd = stored(sd32, dt)
        write_model(outdir, dt, sd)
        sd64 = {k: t.to(torch.float32).to(torch.float64) for k, t in sd.items()}
        with torch.no_grad():
            r = forward(sd64, ids, True, True)
            plain = forward(sd64, ids, False, False)
            wo = forward(sd64, ids, True, False)
            xo = forward(sd64, ids, False, True)
            flips = [forward(sd64, ids, True, True, torch.Generator().manual_seed(s))
                     for s in range(8)]
        m = {"rounded": fmt(r), "plain": fmt(plain)}
        for key, x in (("plain", plain), ("weights_only", wo), ("acts_only", xo)):
            m["dev_" + key] = [float((x - r).abs().max()), float((x - r).abs().mean())]
        m["dev_flips"] = [max(float((x - r).abs().max()) for x in flips),
                          max(float((x - r).abs().mean()) for x in flips)]
        doc["models"][dt] = m
        print("make_bf16_refs: %s: max |logit| %.3g; [max, mean] |x - rounded| of plain %s, "
              "weights only %s, activations only %s, float32-level noise %s"
              % (dt, float(plain.abs().max()), fmt2(m["dev_plain"]), fmt2(m["dev_weights_only"]),
                 fmt2(m["dev_acts_only"]), fmt2(m["dev_flips"])))
    with open(os.path.join(outdir, "refs.json"), "w") as f:
        json.dump(doc, f, separators=(",", ":"))
        f.write("\n")


# ---------------------------------------------------------------- --check

def same_json(a, b, path="refs.json"):
    if isinstance(a, dict) and isinstance(b, dict):
        if set(a) != set(b):
            return "%s: keys differ" % path
        for k in a:
            if k == "torch":
                continue
            e = same_json(a[k], b[k], path + "." + k)
            if e:
                return e
        return None
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return "%s: lengths differ" % path
        for i, (x, y) in enumerate(zip(a, b)):
            e = same_json(x, y, "%s[%d]" % (path, i))
            if e:
                return e
        return None
    if isinstance(a, float) or isinstance(b, float):
        if abs(a - b) > 1e-9 * max(abs(a), abs(b), 1e-3):
            return "%s: %r != %r" % (path, a, b)
        return None
    return None if a == b else "%s: %r != %r" % (path, a, b)


def check(d):
    if torch is None:
        print("make_bf16_refs: torch is not installed: cannot regenerate the references")
        return 1 if os.environ.get("CI") == "true" else 77
    tmp = tempfile.mkdtemp(prefix="bf16-refs-")
    try:
        generate(tmp)
        for dt in DTYPES:
            for fn in ("config.json", "model.safetensors"):
                a, b = os.path.join(d, dt, fn), os.path.join(tmp, dt, fn)
                if not os.path.exists(a) or open(a, "rb").read() != open(b, "rb").read():
                    print("make_bf16_refs: %s is not what the script writes" % a)
                    return 1
        with open(os.path.join(d, "refs.json")) as f, open(os.path.join(tmp, "refs.json")) as g:
            e = same_json(json.load(f), json.load(g))
        if e:
            print("make_bf16_refs: %s differs from a fresh run: %s" % (d, e))
            return 1
        print("make_bf16_refs: %s is current" % d)
        return 0
    finally:
        shutil.rmtree(tmp)


def main():
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    args = sys.argv[1:]
    if args and args[0] == "--check":
        sys.exit(check(args[1] if len(args) > 1 else os.path.join(here, "tests", "data", "bf16")))
    if torch is None:
        sys.exit("make_bf16_refs: needs torch (Debian's python3-torch)")
    out = args[0] if args else os.path.join(here, "tests", "data", "bf16")
    os.makedirs(out, exist_ok=True)
    generate(out)


if __name__ == "__main__":
    main()
