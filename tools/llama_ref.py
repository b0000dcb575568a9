#!/usr/bin/python3
"""PyTorch reference for ckptscope's built-in forward pass and perplexity protocol.

An independent implementation used by the tests (tests/test_llama.c, tests/cli/test_ppl.py):
the model is written out here from Hugging Face's transformers/models/llama/modeling_llama.py
(eager attention path: LlamaRMSNorm, LlamaRotaryEmbedding, rotate_half/apply_rotary_pos_emb,
repeat_kv, LlamaAttention, LlamaMLP, LlamaDecoderLayer, LlamaModel, LlamaForCausalLM) because
transformers is not a Debian package; the perplexity loop is the strided method of the
transformers documentation ("Perplexity of fixed-length models") run per document, with BOS
prepended when asked. Weights are read from the checkpoint folder (safetensors, sharded or
not, or pytorch_model.bin) and computed in float32 like HF's LlamaForCausalLM.

Debian's python3 (torch 1.13, numpy) only.

  llama_ref.py logits CKPT_DIR --ids 1,2,3 [--logits-only] [--out FILE]
      {"logits": [[...]], "logprobs": [[...]]}  (n x vocab each); --logits-only: the
      logits alone, each in the shortest decimal form of its float32 value (the committed
      references of tests/data/llama/, made by tools/make_llama_refs.sh)
  llama_ref.py ppl CKPT_DIR --set NAME=FILE[:jsonl|u16|u32] ... --ctx N --stride N
              [--bos-id ID] [--no-bos] [--out FILE]
      {"sets": [{"name", "tokens", "nll_sum", "nll", "token_nll": [...]}]}
  llama_ref.py ppl CKPT_DIR --set ... --run CTX:STRIDE[:nobos] --run ... [--out FILE]
      {"runs": [{"ctx", "stride", "bos", "sets": [...]}]}   (one torch start-up for all)
"""
import argparse
import json
import math
import os
import struct
import sys

import numpy as np
import torch
import torch.nn.functional as F

torch.set_num_threads(1)

# ---------------------------------------------------------------- checkpoint reading

_ST_DTYPES = {"F32": np.float32, "F16": np.float16, "F64": np.float64, "BF16": None}


def _read_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    (hlen,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + hlen])
    base = 8 + hlen
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        a, b = info["data_offsets"]
        raw = data[base + a: base + b]
        shape = info["shape"]
        if info["dtype"] == "BF16":
            u16 = np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16
            arr = u16.view(np.float32)
        else:
            arr = np.frombuffer(raw, dtype=np.dtype(_ST_DTYPES[info["dtype"]]).newbyteorder("<"))
        out[name] = torch.from_numpy(arr.astype(np.float32).reshape(shape))
    return out


def load_state(ckpt):
    """All tensors of a checkpoint folder, as float32 torch tensors."""
    idx = os.path.join(ckpt, "model.safetensors.index.json")
    if os.path.exists(idx):
        with open(idx) as f:
            files = sorted(set(json.load(f)["weight_map"].values()))
        state = {}
        for fn in files:
            state.update(_read_safetensors(os.path.join(ckpt, fn)))
        return state
    st = os.path.join(ckpt, "model.safetensors")
    if os.path.exists(st):
        return _read_safetensors(st)
    bins = []
    idx = os.path.join(ckpt, "pytorch_model.bin.index.json")
    if os.path.exists(idx):
        with open(idx) as f:
            bins = sorted(set(json.load(f)["weight_map"].values()))
    elif os.path.exists(os.path.join(ckpt, "pytorch_model.bin")):
        bins = ["pytorch_model.bin"]
    if not bins:
        sys.exit("llama_ref: no weights in %s" % ckpt)
    state = {}
    for fn in bins:
        sd = torch.load(os.path.join(ckpt, fn), map_location="cpu")
        state.update({k: v.float() for k, v in sd.items()})
    return state


# ---------------------------------------------------------------- the model (HF, eager)


class Config:
    def __init__(self, d):
        self.hidden_size = d["hidden_size"]
        self.intermediate_size = d["intermediate_size"]
        self.num_hidden_layers = d["num_hidden_layers"]
        self.num_attention_heads = d["num_attention_heads"]
        self.num_key_value_heads = d.get("num_key_value_heads") or self.num_attention_heads
        self.head_dim = d.get("head_dim") or self.hidden_size // self.num_attention_heads
        self.vocab_size = d["vocab_size"]
        self.rms_norm_eps = d.get("rms_norm_eps", 1e-6)
        self.rope_theta = d.get("rope_theta", 10000.0)
        self.tie_word_embeddings = d.get("tie_word_embeddings", False)
        self.bos_token_id = d.get("bos_token_id", 1)
        self.max_position_embeddings = d.get("max_position_embeddings", 2048)


def rms_norm(hidden_states, weight, eps):
    # LlamaRMSNorm.forward
    input_dtype = hidden_states.dtype
    hidden_states = hidden_states.to(torch.float32)
    variance = hidden_states.pow(2).mean(-1, keepdim=True)
    hidden_states = hidden_states * torch.rsqrt(variance + eps)
    return weight * hidden_states.to(input_dtype)


def rotary_cos_sin(head_dim, base, position_ids):
    # LlamaRotaryEmbedding: inv_freq and forward()
    inv_freq = 1.0 / (base ** (torch.arange(0, head_dim, 2, dtype=torch.int64).float() / head_dim))
    inv_freq_expanded = inv_freq[None, :, None].float().expand(position_ids.shape[0], -1, 1)
    position_ids_expanded = position_ids[:, None, :].float()
    freqs = (inv_freq_expanded.float() @ position_ids_expanded.float()).transpose(1, 2)
    emb = torch.cat((freqs, freqs), dim=-1)
    return emb.cos(), emb.sin()


def rotate_half(x):
    x1 = x[..., : x.shape[-1] // 2]
    x2 = x[..., x.shape[-1] // 2:]
    return torch.cat((-x2, x1), dim=-1)


def apply_rotary_pos_emb(q, k, cos, sin, unsqueeze_dim=1):
    cos = cos.unsqueeze(unsqueeze_dim)
    sin = sin.unsqueeze(unsqueeze_dim)
    q_embed = (q * cos) + (rotate_half(q) * sin)
    k_embed = (k * cos) + (rotate_half(k) * sin)
    return q_embed, k_embed


def repeat_kv(hidden_states, n_rep):
    batch, num_key_value_heads, slen, head_dim = hidden_states.shape
    if n_rep == 1:
        return hidden_states
    hidden_states = hidden_states[:, :, None, :, :].expand(batch, num_key_value_heads, n_rep, slen,
                                                           head_dim)
    return hidden_states.reshape(batch, num_key_value_heads * n_rep, slen, head_dim)


def attention(cfg, sd, i, hidden_states, cos, sin, causal_mask):
    p = "model.layers.%d.self_attn." % i
    bsz, q_len, _ = hidden_states.shape
    nh, nkv, hd = cfg.num_attention_heads, cfg.num_key_value_heads, cfg.head_dim
    query_states = F.linear(hidden_states, sd[p + "q_proj.weight"])
    key_states = F.linear(hidden_states, sd[p + "k_proj.weight"])
    value_states = F.linear(hidden_states, sd[p + "v_proj.weight"])
    query_states = query_states.view(bsz, q_len, nh, hd).transpose(1, 2)
    key_states = key_states.view(bsz, q_len, nkv, hd).transpose(1, 2)
    value_states = value_states.view(bsz, q_len, nkv, hd).transpose(1, 2)
    query_states, key_states = apply_rotary_pos_emb(query_states, key_states, cos, sin)
    key_states = repeat_kv(key_states, nh // nkv)
    value_states = repeat_kv(value_states, nh // nkv)
    attn_weights = torch.matmul(query_states, key_states.transpose(2, 3)) / math.sqrt(hd)
    attn_weights = attn_weights + causal_mask
    attn_weights = F.softmax(attn_weights, dim=-1, dtype=torch.float32).to(query_states.dtype)
    attn_output = torch.matmul(attn_weights, value_states)
    attn_output = attn_output.transpose(1, 2).contiguous().reshape(bsz, q_len, nh * hd)
    return F.linear(attn_output, sd[p + "o_proj.weight"])


def mlp(sd, i, x):
    p = "model.layers.%d.mlp." % i
    return F.linear(F.silu(F.linear(x, sd[p + "gate_proj.weight"])) * F.linear(x, sd[p + "up_proj.weight"]),
                    sd[p + "down_proj.weight"])


def forward_logits(cfg, sd, input_ids):
    """LlamaForCausalLM(input_ids).logits.float() for one sequence, positions 0..n-1."""
    ids = torch.tensor([input_ids], dtype=torch.long)
    n = ids.shape[1]
    hidden_states = F.embedding(ids, sd["model.embed_tokens.weight"])
    position_ids = torch.arange(n, dtype=torch.long)[None, :]
    cos, sin = rotary_cos_sin(cfg.head_dim, cfg.rope_theta, position_ids)
    min_value = torch.finfo(torch.float32).min
    causal_mask = torch.triu(torch.full((n, n), min_value, dtype=torch.float32), diagonal=1)[None, None]
    for i in range(cfg.num_hidden_layers):
        p = "model.layers.%d." % i
        residual = hidden_states
        hidden_states = rms_norm(hidden_states, sd[p + "input_layernorm.weight"], cfg.rms_norm_eps)
        hidden_states = attention(cfg, sd, i, hidden_states, cos, sin, causal_mask)
        hidden_states = residual + hidden_states
        residual = hidden_states
        hidden_states = rms_norm(hidden_states, sd[p + "post_attention_layernorm.weight"],
                                 cfg.rms_norm_eps)
        hidden_states = mlp(sd, i, hidden_states)
        hidden_states = residual + hidden_states
    hidden_states = rms_norm(hidden_states, sd["model.norm.weight"], cfg.rms_norm_eps)
    lm_head = sd["model.embed_tokens.weight"] if cfg.tie_word_embeddings else sd["lm_head.weight"]
    return F.linear(hidden_states, lm_head).float()[0]


def load_model(ckpt):
    with open(os.path.join(ckpt, "config.json")) as f:
        cfg = Config(json.load(f))
    return cfg, load_state(ckpt)


# ---------------------------------------------------------------- perplexity


def read_tokens(spec):
    """NAME=FILE[:FORMAT] -> (name, [documents])."""
    name, _, rest = spec.partition("=")
    path, fmt = rest, None
    for f in ("jsonl", "u16", "u32"):
        if rest.endswith(":" + f):
            path, fmt = rest[: -len(f) - 1], f
    if fmt is None:
        fmt = "jsonl" if path.endswith((".jsonl", ".json")) else \
              "u16" if path.endswith((".u16", ".uint16")) else "u32"
    if fmt == "jsonl":
        docs = []
        with open(path, encoding="utf-8") as f:
            for line in f:
                if line.strip():
                    docs.append([int(x) for x in json.loads(line)["token_ids"]])
        return name, docs
    arr = np.fromfile(path, dtype="<u2" if fmt == "u16" else "<u4")
    return name, [[int(x) for x in arr]]


def strided_nll(cfg, sd, seq, ctx, stride):
    """Per-token NLLs of one document by the strided method (transformers docs)."""
    losses = []
    seq_len = len(seq)
    prev_end_loc = 0
    for begin_loc in range(0, seq_len, stride):
        end_loc = min(begin_loc + ctx, seq_len)
        trg_len = end_loc - prev_end_loc
        input_ids = torch.tensor(seq[begin_loc:end_loc], dtype=torch.long)
        target_ids = input_ids.clone()
        target_ids[:-trg_len] = -100
        logits = forward_logits(cfg, sd, seq[begin_loc:end_loc])
        # LlamaForCausalLM's loss: shift so that tokens < n predict n
        shift_logits = logits[:-1, :]
        shift_labels = target_ids[1:]
        keep = shift_labels != -100
        if keep.any():
            nll = F.cross_entropy(shift_logits[keep], shift_labels[keep], reduction="none")
            losses.extend(float(x) for x in nll)
        prev_end_loc = end_loc
        if end_loc == seq_len:
            break
    return losses


def ppl_sets(cfg, sd, sets, ctx, stride, bos, bos_id):
    out = []
    for name, docs in sets:
        token_nll = []
        for doc in docs:
            seq = [bos_id] + doc if bos else doc
            token_nll.extend(strided_nll(cfg, sd, seq, ctx, stride))
        total = math.fsum(token_nll)
        out.append({"name": name, "tokens": len(token_nll), "nll_sum": total,
                    "nll": total / len(token_nll) if token_nll else None,
                    "token_nll": token_nll})
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    lg = sub.add_parser("logits")
    lg.add_argument("ckpt")
    lg.add_argument("--ids", required=True)
    lg.add_argument("--logits-only", action="store_true")
    lg.add_argument("--out")
    pp = sub.add_parser("ppl")
    pp.add_argument("ckpt")
    pp.add_argument("--set", action="append", required=True)
    pp.add_argument("--ctx", type=int)
    pp.add_argument("--stride", type=int)
    pp.add_argument("--run", action="append", default=[])
    pp.add_argument("--bos-id", type=int)
    pp.add_argument("--no-bos", action="store_true")
    pp.add_argument("--out")
    a = ap.parse_args()

    cfg, sd = load_model(a.ckpt)
    with torch.no_grad():
        if a.cmd == "logits":
            ids = [int(x) for x in a.ids.split(",")]
            logits = forward_logits(cfg, sd, ids)
            if a.logits_only:
                # repr(np.float32): the shortest decimal that reads back as the same float32
                res = {"logits": [[float(repr(np.float32(v))) for v in row]
                                  for row in logits.numpy()]}
            else:
                res = {"logits": logits.tolist(),
                       "logprobs": F.log_softmax(logits, dim=-1).tolist()}
        else:
            bos_id = cfg.bos_token_id if a.bos_id is None else a.bos_id
            sets = [read_tokens(spec) for spec in a.set]
            if a.run:
                res = {"runs": []}
                for r in a.run:
                    parts = r.split(":")
                    ctx, stride, bos = int(parts[0]), int(parts[1]), parts[2:] != ["nobos"]
                    res["runs"].append({"ctx": ctx, "stride": stride, "bos": bos,
                                        "sets": ppl_sets(cfg, sd, sets, ctx, stride, bos, bos_id)})
            else:
                if a.ctx is None or a.stride is None:
                    sys.exit("llama_ref: ppl needs --ctx and --stride, or --run")
                res = {"sets": ppl_sets(cfg, sd, sets, a.ctx, a.stride, not a.no_bos, bos_id)}
    text = json.dumps(res)
    if a.out:
        with open(a.out, "w") as f:
            f.write(text)
    else:
        print(text)


if __name__ == "__main__":
    main()
