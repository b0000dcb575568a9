#!/usr/bin/python3
"""Converts a llama2.c checkpoint ("version 0" .bin) into a Hugging Face LLaMA checkpoint
folder: config.json, model.safetensors and tokenizer.model.

    llama2c_to_hf.py MODEL.bin --tokenizer TOKENIZER.model OUTDIR

The llama2.c format (see karpathy/llama2.c run.c and export.py): seven little-endian
int32 (dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size -- negative when the
classifier is not tied -- and seq_len), then float32 arrays, matrices as nn.Linear stores
them ([out, in], row-major): token embedding [vocab, dim]; attention RMSNorm [layers, dim];
wq [layers, dim, dim]; wk, wv [layers, kv_dim, dim]; wo [layers, dim, dim]; FFN RMSNorm
[layers, dim]; w1 (gate) [layers, hidden, dim]; w2 (down) [layers, dim, hidden]; w3 (up)
[layers, hidden, dim]; the final RMSNorm [dim]; the RoPE tables freq_cis_real and
freq_cis_imag [seq_len, head_size/2] (not needed); the classifier [vocab, dim] when not
tied. RMSNorm eps 1e-5, RoPE theta 10000.

llama2.c rotates interleaved pairs (2i, 2i+1) of each head where Hugging Face's LLaMA
rotates (i, i + head_size/2): the rows of wq and wk are permuted within each head so that
row 2i+h (h = 0, 1) becomes row h*head_size/2 + i, as llama2.c's own export.py does for
its Hugging Face export. numpy only (Debian's python3-numpy).
"""
import argparse
import json
import os
import shutil
import struct
import sys

import numpy as np


def read_llama2c(path):
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 28:
        sys.exit("llama2c_to_hf: %s: %d bytes, shorter than the 28-byte header" % (path, len(data)))
    dim, hidden, layers, heads, kv_heads, vocab, seq_len = struct.unpack("<7i", data[:28])
    tied = vocab > 0
    vocab = abs(vocab)
    if min(dim, hidden, layers, heads, kv_heads, vocab, seq_len) <= 0 or dim % heads or \
            heads % kv_heads or (dim // heads) % 2:
        sys.exit("llama2c_to_hf: %s: not a llama2.c version-0 header (%s)" %
                 (path, (dim, hidden, layers, heads, kv_heads, vocab, seq_len)))
    hd = dim // heads
    kv_dim = kv_heads * hd
    shapes = [("embed", (vocab, dim)), ("attn_norm", (layers, dim)), ("wq", (layers, dim, dim)),
              ("wk", (layers, kv_dim, dim)), ("wv", (layers, kv_dim, dim)),
              ("wo", (layers, dim, dim)), ("ffn_norm", (layers, dim)),
              ("w1", (layers, hidden, dim)), ("w2", (layers, dim, hidden)),
              ("w3", (layers, hidden, dim)), ("norm", (dim,)),
              ("freq_real", (seq_len, hd // 2)), ("freq_imag", (seq_len, hd // 2))]
    if not tied:
        shapes.append(("classifier", (vocab, dim)))
    need = 28 + 4 * sum(int(np.prod(s)) for _, s in shapes)
    if len(data) < need:
        sys.exit("llama2c_to_hf: %s: %d bytes, the header implies %d" % (path, len(data), need))
    arr = np.frombuffer(data, dtype="<f4", offset=28, count=(need - 28) // 4)
    w, o = {}, 0
    for name, shape in shapes:
        n = int(np.prod(shape))
        w[name] = arr[o:o + n].reshape(shape)
        o += n
    cfg = dict(dim=dim, hidden=hidden, layers=layers, heads=heads, kv_heads=kv_heads,
               vocab=vocab, seq_len=seq_len, tied=tied)
    return cfg, w


def permute(m, n_heads):
    """Interleaved RoPE rows -> Hugging Face's rotate-half rows, head by head
    (export.py's permute: view(n_heads, hd/2, 2, in).transpose(1, 2))."""
    rows, cols = m.shape
    hd = rows // n_heads
    return m.reshape(n_heads, hd // 2, 2, cols).transpose(0, 2, 1, 3).reshape(rows, cols)


def write_safetensors(path, tensors):
    """tensors: [(name, float32 array)] -> a safetensors file (8-byte header length, JSON
    header, data)."""
    header, off = {"__metadata__": {"format": "pt"}}, 0
    for name, a in tensors:
        header[name] = {"dtype": "F32", "shape": list(a.shape), "data_offsets": [off, off + a.nbytes]}
        off += a.nbytes
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for _, a in tensors:
            f.write(np.ascontiguousarray(a, dtype="<f4").tobytes())


def convert(src, tokenizer, out):
    c, w = read_llama2c(src)
    os.makedirs(out, exist_ok=True)
    t = [("model.embed_tokens.weight", w["embed"])]
    for i in range(c["layers"]):
        p = "model.layers.%d." % i
        t += [(p + "input_layernorm.weight", w["attn_norm"][i]),
              (p + "self_attn.q_proj.weight", permute(w["wq"][i], c["heads"])),
              (p + "self_attn.k_proj.weight", permute(w["wk"][i], c["kv_heads"])),
              (p + "self_attn.v_proj.weight", w["wv"][i]),
              (p + "self_attn.o_proj.weight", w["wo"][i]),
              (p + "post_attention_layernorm.weight", w["ffn_norm"][i]),
              (p + "mlp.gate_proj.weight", w["w1"][i]),
              (p + "mlp.down_proj.weight", w["w2"][i]),
              (p + "mlp.up_proj.weight", w["w3"][i])]
    t.append(("model.norm.weight", w["norm"]))
    if not c["tied"]:
        t.append(("lm_head.weight", w["classifier"]))
    write_safetensors(os.path.join(out, "model.safetensors"), t)
    config = {"architectures": ["LlamaForCausalLM"], "model_type": "llama",
              "hidden_size": c["dim"], "intermediate_size": c["hidden"],
              "num_hidden_layers": c["layers"], "num_attention_heads": c["heads"],
              "num_key_value_heads": c["kv_heads"], "vocab_size": c["vocab"],
              "max_position_embeddings": c["seq_len"], "rms_norm_eps": 1e-5,
              "rope_theta": 10000.0, "hidden_act": "silu", "tie_word_embeddings": c["tied"],
              "torch_dtype": "float32", "bos_token_id": 1, "eos_token_id": 2}
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump(config, f, indent=2, sort_keys=True)
        f.write("\n")
    shutil.copyfile(tokenizer, os.path.join(out, "tokenizer.model"))
    return config


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("model")
    ap.add_argument("--tokenizer", required=True, help="the SentencePiece tokenizer.model")
    ap.add_argument("outdir")
    a = ap.parse_args()
    convert(a.model, a.tokenizer, a.outdir)


if __name__ == "__main__":
    main()
