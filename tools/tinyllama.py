"""A LLaMA-architecture model written to match Hugging Face `LlamaForCausalLM`, the
checkpoint file formats it is stored in, and the held-out perplexity protocol of
DESIGN §5. Shared by tools/train_tiny.py (which trains and evaluates the demo run) and
tools/check_demo.py (which re-evaluates checkpoints read back from the bundle).

Only Debian's python3-torch and numpy are needed (no transformers, no safetensors).
Reference for every formula: transformers/models/llama/modeling_llama.py (v4.3x).
"""

import hashlib
import json
import math
import struct

import numpy as np
import torch
import torch.nn.functional as F

# ---------------------------------------------------------------------------------------
# Model


class Config:
    """The LlamaConfig fields the model uses (names as in config.json)."""

    FIELDS = ("vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers",
              "num_attention_heads", "num_key_value_heads", "max_position_embeddings",
              "rms_norm_eps", "rope_theta", "initializer_range")

    def __init__(self, **kw):
        for k in self.FIELDS:
            setattr(self, k, kw[k])
        assert self.hidden_size % self.num_attention_heads == 0
        assert self.num_attention_heads % self.num_key_value_heads == 0
        self.head_dim = self.hidden_size // self.num_attention_heads
        assert self.head_dim % 2 == 0

    @classmethod
    def from_json(cls, d):
        return cls(**{k: d[k] for k in cls.FIELDS if k != "initializer_range"},
                   initializer_range=d.get("initializer_range", 0.02))


def tensor_shapes(c):
    """HF names and shapes ([out_features, in_features] for projections), in HF order."""
    kv = c.num_key_value_heads * c.head_dim
    out = [("model.embed_tokens.weight", (c.vocab_size, c.hidden_size))]
    for i in range(c.num_hidden_layers):
        p = "model.layers.%d." % i
        out += [(p + "self_attn.q_proj.weight", (c.hidden_size, c.hidden_size)),
                (p + "self_attn.k_proj.weight", (kv, c.hidden_size)),
                (p + "self_attn.v_proj.weight", (kv, c.hidden_size)),
                (p + "self_attn.o_proj.weight", (c.hidden_size, c.hidden_size)),
                (p + "mlp.gate_proj.weight", (c.intermediate_size, c.hidden_size)),
                (p + "mlp.up_proj.weight", (c.intermediate_size, c.hidden_size)),
                (p + "mlp.down_proj.weight", (c.hidden_size, c.intermediate_size)),
                (p + "input_layernorm.weight", (c.hidden_size,)),
                (p + "post_attention_layernorm.weight", (c.hidden_size,))]
    out += [("model.norm.weight", (c.hidden_size,)), ("lm_head.weight", (c.vocab_size, c.hidden_size))]
    return out


def init_params(c, gen):
    """HF LlamaPreTrainedModel._init_weights: Linear and Embedding ~ N(0, initializer_range),
    RMSNorm weights 1. Drawn in the fixed order of tensor_shapes from generator gen."""
    params = {}
    for name, shape in tensor_shapes(c):
        if len(shape) == 1:
            params[name] = torch.ones(shape, dtype=torch.float32)
        else:
            params[name] = torch.empty(shape, dtype=torch.float32).normal_(
                0.0, c.initializer_range, generator=gen)
    return params


def rms_norm(x, w, eps):
    # LlamaRMSNorm: x * rsqrt(mean(x^2) + eps), then times the weight.
    var = x.pow(2).mean(-1, keepdim=True)
    return w * (x * torch.rsqrt(var + eps))


def rope_cos_sin(c, n, dtype=torch.float32):
    # LlamaRotaryEmbedding: inv_freq_j = theta^(-2j/d), j = 0..d/2-1; angle = pos * inv_freq;
    # the table is duplicated ([freqs, freqs]) for the rotate-half layout.
    d = c.head_dim
    inv_freq = 1.0 / (c.rope_theta ** (torch.arange(0, d, 2, dtype=torch.int64).float() / d))
    t = torch.arange(n, dtype=torch.float32)
    freqs = torch.outer(t, inv_freq)
    emb = torch.cat((freqs, freqs), dim=-1)
    return emb.cos().to(dtype), emb.sin().to(dtype)


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat((-x[..., h:], x[..., :h]), dim=-1)


def forward(c, p, ids):
    """Logits [B, T, vocab] for token ids [B, T] at positions 0..T-1 (a fresh sequence)."""
    B, T = ids.shape
    H, KV, hd = c.num_attention_heads, c.num_key_value_heads, c.head_dim
    x = F.embedding(ids, p["model.embed_tokens.weight"])
    cos, sin = rope_cos_sin(c, T)
    causal = torch.full((T, T), float("-inf")).triu(1)
    for i in range(c.num_hidden_layers):
        q_ = "model.layers.%d." % i
        h = rms_norm(x, p[q_ + "input_layernorm.weight"], c.rms_norm_eps)
        q = F.linear(h, p[q_ + "self_attn.q_proj.weight"]).view(B, T, H, hd).transpose(1, 2)
        k = F.linear(h, p[q_ + "self_attn.k_proj.weight"]).view(B, T, KV, hd).transpose(1, 2)
        v = F.linear(h, p[q_ + "self_attn.v_proj.weight"]).view(B, T, KV, hd).transpose(1, 2)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        # repeat_kv: query head j reads kv head j // (H / KV).
        k = k.repeat_interleave(H // KV, dim=1)
        v = v.repeat_interleave(H // KV, dim=1)
        att = (q @ k.transpose(2, 3)) / math.sqrt(hd) + causal
        att = torch.softmax(att, dim=-1)
        o = (att @ v).transpose(1, 2).reshape(B, T, H * hd)
        x = x + F.linear(o, p[q_ + "self_attn.o_proj.weight"])
        h = rms_norm(x, p[q_ + "post_attention_layernorm.weight"], c.rms_norm_eps)
        g = F.silu(F.linear(h, p[q_ + "mlp.gate_proj.weight"]))
        u = F.linear(h, p[q_ + "mlp.up_proj.weight"])
        x = x + F.linear(g * u, p[q_ + "mlp.down_proj.weight"])
    x = rms_norm(x, p["model.norm.weight"], c.rms_norm_eps)
    return F.linear(x, p["lm_head.weight"])


def count_params(c):
    return sum(math.prod(s) for _, s in tensor_shapes(c))


# ---------------------------------------------------------------------------------------
# Files: bf16 safetensors written by hand (the `safetensors` package is not in Debian 12),
# and bf16 values read back exactly as a C reader sees them.

ST_DTYPES = {torch.bfloat16: "BF16", torch.float32: "F32"}


def to_bf16_bits(t):
    """Round-to-nearest-even f32 -> bf16, as torch's .to(torch.bfloat16), as uint16 numpy."""
    return t.detach().to(torch.bfloat16).view(torch.int16).numpy().view(np.uint16)


def bf16_bits_to_f32(bits, shape):
    """Exact widening: the bf16 bits are the top 16 bits of the f32."""
    u32 = np.asarray(bits, dtype=np.uint16).astype(np.uint32) << 16
    return torch.from_numpy(u32.view(np.float32).reshape(shape).copy())


def safetensors_bytes(tensors):
    """tensors: list of (name, torch tensor). Layout as the reference writer: 8-byte LE
    header length, JSON header padded with spaces to a multiple of 8, then the data of each
    tensor in the listed order, C-contiguous little-endian."""
    header = {"__metadata__": {"format": "pt"}}
    blobs, off = [], 0
    for name, t in tensors:
        if t.dtype == torch.bfloat16:
            raw = to_bf16_bits(t).astype("<u2").tobytes()
        else:
            raw = t.detach().contiguous().numpy().astype("<f4").tobytes()
        header[name] = {"dtype": ST_DTYPES[t.dtype], "shape": list(t.shape),
                        "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    return struct.pack("<Q", len(h)) + h + b"".join(blobs)


def read_safetensors_f32(data):
    """Parses safetensors bytes; returns {name: f32 tensor} widened from the stored dtype."""
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    base = 8 + n
    out = {}
    for name, e in header.items():
        if name == "__metadata__":
            continue
        b, end = e["data_offsets"]
        raw = data[base + b:base + end]
        shape = tuple(e["shape"])
        if e["dtype"] == "BF16":
            out[name] = bf16_bits_to_f32(np.frombuffer(raw, dtype="<u2"), shape)
        elif e["dtype"] == "F16":
            out[name] = torch.from_numpy(np.frombuffer(raw, dtype="<f2").astype(np.float32).reshape(shape))
        elif e["dtype"] == "F32":
            out[name] = torch.from_numpy(np.frombuffer(raw, dtype="<f4").reshape(shape).copy())
        else:
            raise ValueError("unexpected dtype %s for %s" % (e["dtype"], name))
    return out


def read_torch_bin_f32(path):
    """A torch.save'd state dict (bf16 tensors), from a path or file object, widened to f32
    (exact)."""
    sd = torch.load(path, map_location="cpu")
    return {k: v.float() for k, v in sd.items()}


def sha256_hex(b):
    return hashlib.sha256(b).hexdigest()


# ---------------------------------------------------------------------------------------
# Held-out perplexity, DESIGN §5, exactly.


def windows(n, ctx, stride):
    """The windows (b, e, first scored position) of a document of n tokens (BOS included)."""
    assert 1 <= stride <= ctx
    out, done, b = [], 1, 0
    while True:
        e = min(b + ctx, n)
        lo = max(done, b + 1)
        out.append((b, e, lo))
        done = e
        if e >= n:
            return out
        b += stride


@torch.no_grad()
def score_document(c, p, s, ctx, stride, batch=32):
    """Per-token NLLs (natural log, float64 list in scoring order) of document s (a list of
    token ids, BOS already prepended when on). Each window runs as a fresh sequence."""
    ws = [w for w in windows(len(s), ctx, stride) if w[2] < w[1]]
    nll = {}
    # Windows of equal length are batched; the result does not depend on the batching
    # beyond float rounding.
    by_len = {}
    for w in ws:
        by_len.setdefault(w[1] - w[0], []).append(w)
    for T, group in by_len.items():
        for i in range(0, len(group), batch):
            g = group[i:i + batch]
            ids = torch.tensor([s[b:e] for b, e, _ in g], dtype=torch.int64)
            logp = torch.log_softmax(forward(c, p, ids), dim=-1)
            for j, (b, e, lo) in enumerate(g):
                pos = torch.arange(lo, e)
                tgt = torch.tensor(s[lo:e], dtype=torch.int64)
                vals = -logp[j, pos - b - 1, tgt]
                for q, v in zip(range(lo, e), vals.tolist()):
                    assert q not in nll
                    nll[q] = v
    return [nll[q] for q in sorted(nll)]


def summarize(token_nll, nbytes):
    """nll, ppl, bpb of a set from its per-token NLLs and its UTF-8 byte count."""
    total = math.fsum(token_nll)
    n = len(token_nll)
    nll = total / n
    return {"tokens": n, "bytes": nbytes, "nll": nll, "ppl": math.exp(nll),
            "bpb": total / (math.log(2) * nbytes)}
