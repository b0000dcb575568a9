#!/usr/bin/python3
"""Float64 PyTorch reference of ckptscope's forward pass for every model family, and the
golden file the C and CLI tests compare with (tools/family_ref.json).

The models are written out here with torch operations in float64, from Hugging Face
transformers' modeling files of 2025: src/transformers/models/gpt_neox/modular_gpt_neox.py
of the v4.53 line (commit 00dcc6dd), models/olmo2/modeling_olmo2.py and
configuration_olmo2.py of the v5 development line (commits 000c33fd, 008e5743), and
modeling_llama.py, modeling_mistral.py, modeling_qwen2.py, modeling_olmo.py of the same
period, whose layers are LLaMA's with the changes listed below (the computation used here
is the same across those versions); the defaults are each configuration_<family>.py's.
transformers is not a Debian package, so nothing is imported from it:
  llama    LlamaRMSNorm, LlamaRotaryEmbedding (_compute_default_rope_parameters),
           rotate_half / apply_rotary_pos_emb, repeat_kv, eager_attention_forward,
           LlamaAttention, LlamaMLP, LlamaDecoderLayer, LlamaModel, LlamaForCausalLM
  mistral  as LLaMA without biases; its sliding window is only checked not to apply
  qwen2    as LLaMA with q/k/v biases; sliding window as for Mistral (use_sliding_window,
           max_window_layers)
  gpt_neox GPTNeoXAttention (fused query_key_value viewed (.., heads, 3*head_size) and
           chunked into q, k, v), partial-rotary apply_rotary_pos_emb, GPTNeoXMLP (gelu),
           GPTNeoXLayer (use_parallel_residual), nn.LayerNorm with bias, embed_out
  olmo     OlmoLayerNorm (F.layer_norm without weight or bias, eps 1e-5), clip_qkv clamps
  olmo2    Olmo2RMSNorm, q_norm / k_norm over the whole projection, post_attention_layernorm
           and post_feedforward_layernorm applied to the sublayer outputs, no input norm
The perplexity loop is the strided method of the transformers documentation ("Perplexity
of fixed-length models") per document, with BOS prepended when asked (DESIGN §5).

Debian's python3 (torch, numpy) only.

  family_ref.py logits CKPT_DIR --ids 1,2,3
  family_ref.py ppl CKPT_DIR --set NAME=FILE[:jsonl|u16|u32] ... --run CTX:STRIDE[:nobos]...
                [--bos-id ID]
  family_ref.py golden --fixture CKS_FIXTURE [--out FILE]   writes tools/family_ref.json
  family_ref.py check --fixture CKS_FIXTURE                 recomputes every case and
      compares with the committed golden file: exit 0 when it is current, 1 when not, 77
      when torch is missing outside CI (CI=true: 1)
"""
import argparse
import json
import math
import os
import random
import shutil
import struct
import subprocess
import sys
import tempfile
import zlib

import numpy as np

try:
    import torch
    import torch.nn.functional as F
except ImportError:  # `check` reports it; the other commands cannot run without it
    torch = None

HERE = os.path.dirname(os.path.abspath(__file__))
GOLDEN = os.path.join(HERE, "family_ref.json")

# ---------------------------------------------------------------- checkpoint reading


def _read_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    (hlen,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + hlen])
    base = 8 + hlen
    out = {}
    dtypes = {"F32": "<f4", "F16": "<f2", "F64": "<f8"}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        a, b = info["data_offsets"]
        raw = data[base + a: base + b]
        if info["dtype"] == "BF16":
            arr = (np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16).view(np.float32)
        else:
            arr = np.frombuffer(raw, dtype=dtypes[info["dtype"]])
        out[name] = torch.from_numpy(arr.astype(np.float64).reshape(info["shape"]))
    return out


def load_state(ckpt):
    """Every tensor of a checkpoint folder as float64 (safetensors, sharded or not, or
    torch.save .bin files read by torch.load)."""
    for index, single, reader in (("model.safetensors.index.json", "model.safetensors",
                                   _read_safetensors),
                                  ("pytorch_model.bin.index.json", "pytorch_model.bin",
                                   lambda p: torch.load(p, map_location="cpu"))):
        files = []
        if os.path.exists(os.path.join(ckpt, index)):
            with open(os.path.join(ckpt, index)) as f:
                files = sorted(set(json.load(f)["weight_map"].values()))
        elif os.path.exists(os.path.join(ckpt, single)):
            files = [single]
        if files:
            state = {}
            for fn in files:
                for k, v in reader(os.path.join(ckpt, fn)).items():
                    state[k] = v.double() if v.is_floating_point() else v
            return state
    sys.exit("family_ref: no weights in %s" % ckpt)


# ---------------------------------------------------------------- configuration

# configuration_<family>.py defaults of the fields the modeling code reads
DEFAULTS = {
    "llama": dict(rms_norm_eps=1e-6, rope_theta=10000.0, max_position_embeddings=2048,
                  hidden_act="silu", bos_token_id=1, attention_bias=False, mlp_bias=False,
                  tie_word_embeddings=False),
    "mistral": dict(rms_norm_eps=1e-6, rope_theta=10000.0, max_position_embeddings=4096 * 32,
                    hidden_act="silu", bos_token_id=1, num_key_value_heads=8,
                    sliding_window=4096, tie_word_embeddings=False),
    "qwen2": dict(rms_norm_eps=1e-6, rope_theta=10000.0, max_position_embeddings=32768,
                  hidden_act="silu", bos_token_id=None, num_key_value_heads=32,
                  use_sliding_window=False, sliding_window=4096, max_window_layers=28,
                  tie_word_embeddings=False),
    "gpt_neox": dict(layer_norm_eps=1e-5, rotary_pct=0.25, rotary_emb_base=10000,
                     max_position_embeddings=2048, hidden_act="gelu", bos_token_id=0,
                     use_parallel_residual=True, attention_bias=True,
                     tie_word_embeddings=False),
    "olmo": dict(rope_theta=10000.0, max_position_embeddings=2048, hidden_act="silu",
                 bos_token_id=None, attention_bias=False, clip_qkv=None,
                 tie_word_embeddings=False),
    "olmo2": dict(rms_norm_eps=1e-5, rope_theta=10000.0, max_position_embeddings=2048,
                  hidden_act="silu", bos_token_id=None, attention_bias=False,
                  tie_word_embeddings=False),
}


class Config:
    def __init__(self, d):
        self.model_type = d["model_type"]
        c = dict(DEFAULTS[self.model_type])
        c.update({k: v for k, v in d.items() if v is not None or k in ("bos_token_id",
                                                                        "clip_qkv",
                                                                        "sliding_window")})
        self.__dict__.update(c)
        if getattr(self, "num_key_value_heads", None) is None:
            self.num_key_value_heads = self.num_attention_heads
        if self.model_type == "gpt_neox":
            # GPTNeoXAttention: head_size = hidden_size // num_attention_heads
            self.head_dim = self.hidden_size // self.num_attention_heads
            self.num_key_value_heads = self.num_attention_heads
            self.rope_theta = self.rotary_emb_base
            self.partial_rotary_factor = self.rotary_pct
        else:
            self.head_dim = d.get("head_dim") or self.hidden_size // self.num_attention_heads
            self.partial_rotary_factor = 1.0
        assert self.hidden_act in ("silu", "gelu"), self.hidden_act
        assert d.get("rope_scaling") is None


def sliding_window_applies(cfg, n):
    """Whether HF would mask a sequence of n tokens with a sliding window (the reference
    does not implement one, nor does ckptscope)."""
    w = getattr(cfg, "sliding_window", None)
    if cfg.model_type == "mistral":
        return w is not None and n > w
    if cfg.model_type == "qwen2":
        return (cfg.use_sliding_window and w is not None and n > w and
                cfg.max_window_layers < cfg.num_hidden_layers)
    return False


# ---------------------------------------------------------------- the layers (HF, eager)


def rms_norm(x, weight, eps):
    # LlamaRMSNorm / Olmo2RMSNorm
    variance = x.pow(2).mean(-1, keepdim=True)
    return weight * (x * torch.rsqrt(variance + eps))


def layer_norm(cfg, x, sd, name):
    # nn.LayerNorm(hidden, eps=layer_norm_eps) with weight and bias (GPT-NeoX)
    return F.layer_norm(x, (x.shape[-1],), sd[name + ".weight"], sd[name + ".bias"],
                        eps=cfg.layer_norm_eps)


def olmo_layer_norm(x):
    # OlmoLayerNorm: no parameters, eps fixed at 1e-5
    return F.layer_norm(x, (x.shape[-1],), None, None, eps=1e-5)


def rotary_cos_sin(cfg, n):
    # _compute_default_rope_parameters: dim = int(head_dim * partial_rotary_factor);
    # LlamaRotaryEmbedding.forward: freqs = inv_freq ⊗ positions, emb = cat(freqs, freqs)
    dim = int(cfg.head_dim * cfg.partial_rotary_factor)
    inv_freq = 1.0 / (cfg.rope_theta ** (torch.arange(0, dim, 2, dtype=torch.int64).double() / dim))
    freqs = torch.arange(n, dtype=torch.float64)[:, None] * inv_freq[None, :]
    emb = torch.cat((freqs, freqs), dim=-1)
    return emb.cos(), emb.sin()


def rotate_half(x):
    x1 = x[..., : x.shape[-1] // 2]
    x2 = x[..., x.shape[-1] // 2:]
    return torch.cat((-x2, x1), dim=-1)


def apply_rotary_pos_emb(q, k, cos, sin):
    # GPT-NeoX's form (LLaMA's is the case rotary_dim == head_dim): rotate the first
    # rotary_dim = cos.shape[-1] dims of each head, pass the rest through
    rotary_dim = cos.shape[-1]
    q_rot, q_pass = q[..., :rotary_dim], q[..., rotary_dim:]
    k_rot, k_pass = k[..., :rotary_dim], k[..., rotary_dim:]
    q_embed = (q_rot * cos) + (rotate_half(q_rot) * sin)
    k_embed = (k_rot * cos) + (rotate_half(k_rot) * sin)
    return torch.cat([q_embed, q_pass], dim=-1), torch.cat([k_embed, k_pass], dim=-1)


def repeat_kv(x, n_rep):
    nkv, slen, hd = x.shape
    return x[:, None].expand(nkv, n_rep, slen, hd).reshape(nkv * n_rep, slen, hd)


def attend(cfg, q, k, v):
    # eager_attention_forward for one sequence: q (heads, n, hd), k and v (kv heads, n, hd)
    n = q.shape[1]
    k = repeat_kv(k, cfg.num_attention_heads // cfg.num_key_value_heads)
    v = repeat_kv(v, cfg.num_attention_heads // cfg.num_key_value_heads)
    w = torch.matmul(q, k.transpose(1, 2)) * cfg.head_dim ** -0.5
    w = w + torch.triu(torch.full((n, n), float("-inf"), dtype=torch.float64), diagonal=1)
    w = F.softmax(w, dim=-1)
    return torch.matmul(w, v).transpose(0, 1).reshape(n, -1)


def linear(sd, name, x):
    b = sd.get(name + ".bias")
    return F.linear(x, sd[name + ".weight"], b)


def llama_attention(cfg, sd, p, x, cos, sin):
    # LlamaAttention / Qwen2Attention (biases) / OlmoAttention (clip_qkv) /
    # Olmo2Attention (q_norm, k_norm over the whole projection)
    n = x.shape[0]
    q, k, v = (linear(sd, p + "self_attn.%s_proj" % s, x) for s in "qkv")
    if cfg.model_type == "olmo" and cfg.clip_qkv is not None:
        q, k, v = (t.clamp(min=-cfg.clip_qkv, max=cfg.clip_qkv) for t in (q, k, v))
    if cfg.model_type == "olmo2":
        q = rms_norm(q, sd[p + "self_attn.q_norm.weight"], cfg.rms_norm_eps)
        k = rms_norm(k, sd[p + "self_attn.k_norm.weight"], cfg.rms_norm_eps)
    q = q.view(n, -1, cfg.head_dim).transpose(0, 1)
    k = k.view(n, -1, cfg.head_dim).transpose(0, 1)
    v = v.view(n, -1, cfg.head_dim).transpose(0, 1)
    q, k = apply_rotary_pos_emb(q, k, cos, sin)
    return linear(sd, p + "self_attn.o_proj", attend(cfg, q, k, v))


def llama_mlp(cfg, sd, p, x):
    # LlamaMLP: down(act(gate(x)) * up(x))
    return linear(sd, p + "mlp.down_proj",
                  F.silu(linear(sd, p + "mlp.gate_proj", x)) * linear(sd, p + "mlp.up_proj", x))


def llama_layer(cfg, sd, i, x, cos, sin):
    p = "model.layers.%d." % i
    if cfg.model_type == "olmo2":  # Olmo2DecoderLayer: norms after the sublayers
        h = rms_norm(llama_attention(cfg, sd, p, x, cos, sin),
                     sd[p + "post_attention_layernorm.weight"], cfg.rms_norm_eps)
        x = x + h
        h = rms_norm(llama_mlp(cfg, sd, p, x), sd[p + "post_feedforward_layernorm.weight"],
                     cfg.rms_norm_eps)
        return x + h
    if cfg.model_type == "olmo":
        norm1 = norm2 = olmo_layer_norm
    else:
        def norm1(t):
            return rms_norm(t, sd[p + "input_layernorm.weight"], cfg.rms_norm_eps)

        def norm2(t):
            return rms_norm(t, sd[p + "post_attention_layernorm.weight"], cfg.rms_norm_eps)
    x = x + llama_attention(cfg, sd, p, norm1(x), cos, sin)
    return x + llama_mlp(cfg, sd, p, norm2(x))


def neox_layer(cfg, sd, i, x, cos, sin):
    # GPTNeoXLayer with GPTNeoXAttention and GPTNeoXMLP
    p = "gpt_neox.layers.%d." % i
    n = x.shape[0]
    h = layer_norm(cfg, x, sd, p + "input_layernorm")
    qkv = linear(sd, p + "attention.query_key_value", h).view(n, -1, 3 * cfg.head_dim)
    q, k, v = (t.transpose(0, 1) for t in qkv.chunk(3, dim=-1))
    q, k = apply_rotary_pos_emb(q, k, cos, sin)
    attn = linear(sd, p + "attention.dense", attend(cfg, q, k, v))

    def mlp(t):
        t = linear(sd, p + "mlp.dense_h_to_4h", t)
        return linear(sd, p + "mlp.dense_4h_to_h", F.gelu(t))  # ACT2FN["gelu"]: exact erf

    if cfg.use_parallel_residual:  # x = x + attn(ln1(x)) + mlp(ln2(x))
        return mlp(layer_norm(cfg, x, sd, p + "post_attention_layernorm")) + attn + x
    a = attn + x  # x = x + attn(ln1(x)); x = x + mlp(ln2(x))
    return mlp(layer_norm(cfg, a, sd, p + "post_attention_layernorm")) + a


def forward_logits(cfg, sd, ids):
    """<Family>ForCausalLM(input_ids).logits in float64 for one sequence at positions 0..n-1."""
    n = len(ids)
    assert not sliding_window_applies(cfg, n), "a sliding window would apply"
    t = torch.tensor(ids, dtype=torch.long)
    cos, sin = rotary_cos_sin(cfg, n)
    cos, sin = cos[None], sin[None]  # broadcast over heads
    if cfg.model_type == "gpt_neox":
        x = F.embedding(t, sd["gpt_neox.embed_in.weight"])
        for i in range(cfg.num_hidden_layers):
            x = neox_layer(cfg, sd, i, x, cos, sin)
        x = layer_norm(cfg, x, sd, "gpt_neox.final_layer_norm")
        head = sd["gpt_neox.embed_in.weight"] if cfg.tie_word_embeddings else sd["embed_out.weight"]
        return F.linear(x, head)
    x = F.embedding(t, sd["model.embed_tokens.weight"])
    for i in range(cfg.num_hidden_layers):
        x = llama_layer(cfg, sd, i, x, cos, sin)
    if cfg.model_type == "olmo":
        x = olmo_layer_norm(x)
    else:
        x = rms_norm(x, sd["model.norm.weight"], cfg.rms_norm_eps)
    head = sd["model.embed_tokens.weight"] if cfg.tie_word_embeddings else sd["lm_head.weight"]
    return F.linear(x, head)


def load_model(ckpt):
    with open(os.path.join(ckpt, "config.json")) as f:
        return Config(json.load(f)), load_state(ckpt)


# ---------------------------------------------------------------- perplexity


def strided_logits(cfg, sd, seq, ctx, stride):
    """The strided method (transformers docs) on one document: for each window, the
    float64 logits rows of its scored positions and their targets, in scoring order."""
    prev_end = 0
    for begin in range(0, len(seq), stride):
        end = min(begin + ctx, len(seq))
        trg_len = end - prev_end
        labels = torch.tensor(seq[begin:end], dtype=torch.long)
        labels[:-trg_len] = -100
        logits = forward_logits(cfg, sd, seq[begin:end])
        shift_labels = labels[1:]  # tokens < n predict n
        keep = shift_labels != -100
        if keep.any():
            yield logits[:-1][keep], shift_labels[keep]
        prev_end = end
        if end == len(seq):
            break


def strided_nll(cfg, sd, seq, ctx, stride):
    """Per-token NLLs of one document by the strided method (transformers docs)."""
    losses = []
    for logits, targets in strided_logits(cfg, sd, seq, ctx, stride):
        nll = F.cross_entropy(logits, targets, reduction="none")
        losses.extend(float(x) for x in nll)
    return losses


def ppl_sets(cfg, sd, sets, ctx, stride, bos, bos_id):
    out = []
    for name, docs in sets:
        token_nll = []
        for doc in docs:
            token_nll.extend(strided_nll(cfg, sd, ([bos_id] + doc) if bos else doc, ctx, stride))
        total = math.fsum(token_nll)
        out.append({"name": name, "tokens": len(token_nll), "nll_sum": total,
                    "nll": total / len(token_nll) if token_nll else None,
                    "token_nll": token_nll})
    return out


def read_tokens(spec):
    """NAME=FILE[:FORMAT] -> (name, [documents])."""
    name, _, rest = spec.partition("=")
    path, fmt = rest, None
    for f in ("jsonl", "u16", "u32"):
        if rest.endswith(":" + f):
            path, fmt = rest[: -len(f) - 1], f
    fmt = fmt or ("jsonl" if path.endswith(".jsonl") else "u16" if path.endswith(".u16") else "u32")
    if fmt == "jsonl":
        with open(path, encoding="utf-8") as f:
            return name, [json.loads(l)["token_ids"] for l in f if l.strip()]
    return name, [[int(x) for x in np.fromfile(path, dtype="<u2" if fmt == "u16" else "<u4")]]


# ---------------------------------------------------------------- the golden cases

# the test model of tests/test_ppl.c: GQA, rope_theta 50000, eps 1e-3, std 0.3
SMALL = ["--hidden", "64", "--intermediate", "160", "--layers", "2", "--heads", "4",
         "--kv-heads", "2", "--vocab", "256", "--max-pos", "128", "--rope-theta", "50000",
         "--eps", "1e-3", "--std", "0.3", "--layout", "folder", "--checkpoints", "1"]
FAMILY_RUNS = [(16, 8, True), (20, 20, False), (64, 32, True)]
PROTOCOL_RUNS = [(16, 8, True), (16, 16, True), (16, 16, False), (16, 5, False), (7, 3, True),
                 (128, 64, True)]


def family_sets(seed, vocab):
    r = random.Random(seed)
    docs = [[r.randrange(vocab) for _ in range(n)] for n in (1, 7, 30, 90)]
    raw = [r.randrange(vocab) for _ in range(40)]
    return [{"name": "docs", "format": "jsonl", "docs": docs},
            {"name": "raw", "format": "u16", "docs": [raw]}]


def protocol_sets(vocab):
    """tests/test_ppl.c's sets: documents of 1, 5, 15, 16, 17, 67 and 0 tokens (a blank
    line after the third), 50 tokens as u16, 23 as u32."""
    r = random.Random(11)
    docs = [[r.randrange(vocab) for _ in range(n)] for n in (1, 5, 15, 16, 17, 67, 0)]
    return [{"name": "mixed", "format": "jsonl", "blank_after": 2, "docs": docs},
            {"name": "long", "format": "u16", "docs": [[r.randrange(vocab) for _ in range(50)]]},
            {"name": "short", "format": "u32", "docs": [[r.randrange(vocab) for _ in range(23)]]}]


def cli_sets():
    """tests/cli/test_ppl.py's sets."""
    r = random.Random(5)
    val = [[r.randrange(256) for _ in range(n)] for n in (1, 5, 40, 128, 200, 0)]
    long_ = [r.randrange(256) for _ in range(300)]
    other = [r.randrange(256) for _ in range(90)]
    return ([{"name": "val", "format": "jsonl", "docs": val},
             {"name": "long", "format": "u16", "docs": [long_]}],
            [{"name": "other", "format": "u32", "docs": [other]}])


def family_case(name, args, runs=FAMILY_RUNS, logits=False, bos_id=None):
    fx = SMALL + args
    vocab = int(fx[fx.index("--vocab") + 1])
    return {"name": name, "fixture": fx, "ckpt": "ckpt_000", "sets": family_sets(zlib.crc32(name.encode()), vocab),
            "runs": [{"ctx": c, "stride": s, "bos": b, "bos_id": bos_id} for c, s, b in runs],
            "logits": logits, "token_nll": True}


def cases():
    val, other = cli_sets()
    big = [a if a != "256" else "9000" for a in SMALL]
    big[big.index("--layers") + 1] = "1"
    return [
        family_case("llama-f32", ["--family", "llama"], logits=True),
        family_case("llama-bf16-bin-3shards", ["--dtype", "bf16", "--bin", "--shards", "3"], logits=True),
        family_case("llama-f16", ["--dtype", "f16"], runs=FAMILY_RUNS[:1], logits=True),
        family_case("llama-bf16", ["--dtype", "bf16"]),
        family_case("llama-tied-mha", ["--tied", "--kv-heads", "4", "--layers", "3"], logits=True),
        family_case("mistral-f32-2shards", ["--family", "mistral", "--sliding-window", "64",
                                            "--shards", "2"], logits=True),
        family_case("mistral-bf16-bin-2shards", ["--family", "mistral", "--dtype", "bf16",
                                                 "--bin", "--shards", "2"]),
        family_case("mistral-bf16", ["--family", "mistral", "--dtype", "bf16"]),
        family_case("qwen2-f32-bin-2shards", ["--family", "qwen2", "--bin", "--shards", "2",
                                              "--use-sliding-window", "--max-window-layers", "2",
                                              "--sliding-window", "32"], logits=True),
        family_case("qwen2-f32", ["--family", "qwen2"]),
        family_case("qwen2-bf16-tied-2shards", ["--family", "qwen2", "--dtype", "bf16", "--tied",
                                                "--shards", "2"]),
        family_case("gpt_neox-f32-parallel", ["--family", "gpt_neox", "--kv-heads", "4",
                                              "--intermediate", "256"], logits=True),
        family_case("gpt_neox-bf16-bin-2shards-sequential-buffers",
                    ["--family", "gpt_neox", "--kv-heads", "4", "--dtype", "bf16", "--bin",
                     "--shards", "2", "--sequential", "--buffers", "--rotary-pct", "0.5"]),
        family_case("gpt_neox-bf16", ["--family", "gpt_neox", "--kv-heads", "4", "--dtype",
                                      "bf16"]),
        family_case("gpt_neox-f32-nobias-rotary3",  # int(16 * 0.2) = 3 rotary dims: 2 freqs
                    ["--family", "gpt_neox", "--kv-heads", "4", "--no-attention-bias",
                     "--rotary-pct", "0.2"], logits=True),
        family_case("olmo-f32-clip", ["--family", "olmo", "--clip-qkv", "2.0"], bos_id=3,
                    logits=True),
        family_case("olmo-bf16-bin-2shards", ["--family", "olmo", "--dtype", "bf16", "--bin",
                                              "--shards", "2"], bos_id=3),
        family_case("olmo-bf16", ["--family", "olmo", "--dtype", "bf16"], bos_id=3),
        family_case("olmo2-f32-bin-2shards", ["--family", "olmo2", "--bin", "--shards", "2"],
                    logits=True),
        family_case("olmo2-bf16", ["--family", "olmo2", "--dtype", "bf16"]),
        family_case("olmo2-f32", ["--family", "olmo2"]),
        {"name": "protocol-f32", "fixture": SMALL, "ckpt": "ckpt_000",
         "sets": protocol_sets(256), "token_nll": True,
         "runs": [{"ctx": c, "stride": s, "bos": b, "bos_id": None} for c, s, b in PROTOCOL_RUNS]},
        {"name": "protocol-bf16", "fixture": SMALL + ["--dtype", "bf16"], "ckpt": "ckpt_000",
         "sets": protocol_sets(256), "token_nll": True,
         "runs": [{"ctx": 16, "stride": 8, "bos": True, "bos_id": None}]},
        {"name": "protocol-past-max-pos", "fixture": SMALL, "ckpt": "ckpt_000",
         "sets": protocol_sets(256), "token_nll": True,
         "runs": [{"ctx": 200, "stride": 100, "bos": False, "bos_id": None}]},
        {"name": "protocol-large-vocab", "fixture": big, "ckpt": "ckpt_000",
         "sets": protocol_sets(9000), "token_nll": True,
         "runs": [{"ctx": 32, "stride": 16, "bos": True, "bos_id": None}]},
        {"name": "cli-ckpt_001", "fixture": ["--layout", "folder", "--checkpoints", "2", "--std",
                                             "0.3", "--eps", "1e-3", "--rope-theta", "50000",
                                             "--kv-heads", "2"],
         "ckpt": "ckpt_001", "sets": val,
         "runs": [{"ctx": 128, "stride": 64, "bos": True, "bos_id": None}]},
        {"name": "cli-ckpt_000", "fixture": ["--layout", "folder", "--checkpoints", "2", "--std",
                                             "0.3", "--eps", "1e-3", "--rope-theta", "50000",
                                             "--kv-heads", "2"],
         "ckpt": "ckpt_000", "sets": other,
         "runs": [{"ctx": 160, "stride": 160, "bos": False, "bos_id": None}]},
    ]


def write_sets(sets, d):
    """The token files of a case's sets, as the tests write them; returns NAME=FILE:FMT."""
    specs = []
    for s in sets:
        path = os.path.join(d, "%s.%s" % (s["name"], s["format"]))
        if s["format"] == "jsonl":
            with open(path, "w") as f:
                for i, doc in enumerate(s["docs"]):
                    f.write(json.dumps({"token_ids": doc}) + "\n")
                    if i == s.get("blank_after"):
                        f.write("\n")
        else:
            fmt = "<%d%s" % (len(s["docs"][0]), "H" if s["format"] == "u16" else "I")
            with open(path, "wb") as f:
                f.write(struct.pack(fmt, *s["docs"][0]))
        specs.append("%s=%s:%s" % (s["name"], path, s["format"]))
    return specs


def compute_case(case, fixture, tmp):
    src = os.path.join(tmp, case["name"])
    subprocess.run([fixture, src] + case["fixture"], check=True)
    cfg, sd = load_model(os.path.join(src, case["ckpt"]))
    sets = [read_tokens(s) for s in write_sets(case["sets"], tmp)]
    out = dict(case)
    out["runs"] = []
    for r in case["runs"]:
        bos_id = r["bos_id"] if r["bos_id"] is not None else cfg.bos_token_id
        res = ppl_sets(cfg, sd, sets, r["ctx"], r["stride"], r["bos"], bos_id)
        for s in res:
            s["nll_sum"] = float("%.12g" % s["nll_sum"])
            s["nll"] = float("%.12g" % s["nll"]) if s["nll"] is not None else None
            if case.get("token_nll"):
                s["token_nll"] = [float("%.8g" % x) for x in s["token_nll"]]
            else:
                del s["token_nll"]
        out["runs"].append(dict(r, bos_id=bos_id, sets=res))
    if case.get("logits"):
        ids = case["sets"][0]["docs"][3][:4]
        lg = forward_logits(cfg, sd, ids)
        out["logits"] = {"ids": ids, "logits": [[float("%.7g" % x) for x in row] for row in lg.tolist()]}
    return out


def golden(fixture):
    tmp = tempfile.mkdtemp(prefix="family-ref-")
    try:
        with torch.no_grad():
            return {"about": "float64 PyTorch reference of each model family on the fixture "
                             "models, made by tools/family_ref.py golden; do not edit",
                    "cases": [compute_case(c, fixture, tmp) for c in cases()]}
    finally:
        shutil.rmtree(tmp)


def close(a, b, rtol=1e-9, atol=1e-12):
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(close(a[k], b[k], rtol, atol) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(close(x, y, rtol, atol) for x, y in zip(a, b))
    if isinstance(a, float) or isinstance(b, float):
        return abs(a - b) <= atol + rtol * abs(b)
    return a == b


def check(fixture):
    if torch is None:
        print("family_ref: torch is not installed (Debian: python3-torch)")
        return 1 if os.environ.get("CI") == "true" else 77
    with open(GOLDEN) as f:
        want = json.load(f)
    got = golden(fixture)
    bad = [c["name"] for c, w in zip(got["cases"], want["cases"]) if not close(c, w, 1e-7, 1e-9)]
    if len(got["cases"]) != len(want["cases"]):
        bad.append("(the number of cases)")
    for name in bad:
        print("family_ref: case %s differs from %s: run `tools/family_ref.py golden`" %
              (name, GOLDEN))
    print("family_ref: %d cases, %d differ" % (len(got["cases"]), len(bad)))
    return 1 if bad else 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    lg = sub.add_parser("logits")
    lg.add_argument("ckpt")
    lg.add_argument("--ids", required=True)
    pp = sub.add_parser("ppl")
    pp.add_argument("ckpt")
    pp.add_argument("--set", action="append", required=True)
    pp.add_argument("--run", action="append", required=True)
    pp.add_argument("--bos-id", type=int)
    for name in ("golden", "check"):
        g = sub.add_parser(name)
        g.add_argument("--fixture", required=True)
        g.add_argument("--out", default=GOLDEN)
    a = ap.parse_args()
    if a.cmd == "check":
        sys.exit(check(a.fixture))
    torch.set_num_threads(1)
    if a.cmd == "golden":
        text = json.dumps(golden(a.fixture), separators=(",", ":"))
        with open(a.out, "w") as f:
            f.write(text + "\n")
        return
    cfg, sd = load_model(a.ckpt)
    with torch.no_grad():
        if a.cmd == "logits":
            ids = [int(x) for x in a.ids.split(",")]
            res = {"logits": forward_logits(cfg, sd, ids).tolist()}
        else:
            bos_id = cfg.bos_token_id if a.bos_id is None else a.bos_id
            sets = [read_tokens(s) for s in a.set]
            res = {"runs": []}
            for r in a.run:
                p = r.split(":")
                ctx, stride, bos = int(p[0]), int(p[1]), p[2:] != ["nobos"]
                res["runs"].append({"ctx": ctx, "stride": stride, "bos": bos,
                                    "sets": ppl_sets(cfg, sd, sets, ctx, stride, bos, bos_id)})
    print(json.dumps(res))


if __name__ == "__main__":
    main()
