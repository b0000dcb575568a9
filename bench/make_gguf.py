#!/usr/bin/python3
"""Writes a Hugging Face LLaMA checkpoint folder (config.json, model.safetensors, a
SentencePiece tokenizer.model) as a GGUF file with F16 matrices, for llama.cpp's
`llama-perplexity` beside `ckptscope ppl` (bench/bench_vs_llamacpp.py).

llama.cpp is not part of ckptscope: build it outside the repository and point --gguf-py at
the `gguf-py` folder of its source tree (the `gguf` package there needs only numpy; its
convert_hf_to_gguf.py needs packages Debian 12 does not ship). What this writes is what
convert_hf_to_gguf.py writes for LlamaForCausalLM at --outtype f16: the tensors under
llama.cpp's names, q_proj and k_proj rows permuted from Hugging Face's rotate-half RoPE
layout to llama.cpp's interleaved one (convert_hf_to_gguf.py's LlamaModel.permute), norms
in F32, every matrix (embedding and output included) in F16; the vocabulary, scores and
token types from tokenizer.model (SentencePiece, as its _create_vocab_sentencepiece).

    /usr/bin/python3 bench/make_gguf.py --gguf-py LLAMA_CPP/gguf-py CKPT_DIR OUT.gguf
"""
import argparse
import json
import os
import struct
import sys

import numpy as np


def read_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    (hlen,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + hlen])
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        a, b = info["data_offsets"]
        raw = data[8 + hlen + a: 8 + hlen + b]
        if info["dtype"] == "BF16":
            arr = (np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16).view(np.float32)
        else:
            arr = np.frombuffer(raw, dtype={"F32": "<f4", "F16": "<f2"}[info["dtype"]])
        out[name] = arr.astype(np.float32).reshape(info["shape"])
    return out


def permute(w, n_head, n_head_kv):
    """convert_hf_to_gguf.py LlamaModel.permute: rotate-half rows to interleaved pairs."""
    if n_head_kv is not None and n_head != n_head_kv:
        n_head = n_head_kv
    return (w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:])
            .swapaxes(1, 2).reshape(w.shape))


def vocab(path, n_vocab):
    import sentencepiece as spm
    sp = spm.SentencePieceProcessor(model_file=path)
    tokens, scores, types = [], [], []
    for i in range(sp.vocab_size()):
        tokens.append(sp.id_to_piece(i).encode("utf-8"))
        scores.append(sp.get_score(i))
        t = 1  # NORMAL
        if sp.is_unknown(i):
            t = 2
        elif sp.is_control(i):
            t = 3
        elif sp.is_unused(i):
            t = 5
        elif sp.is_byte(i):
            t = 6
        types.append(t)
    while len(tokens) < n_vocab:  # padded vocabularies, as convert_hf_to_gguf.py pads
        tokens.append(b"[PAD%d]" % len(tokens))
        scores.append(-1000.0)
        types.append(4)
    return tokens, scores, types


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--gguf-py", required=True, help="llama.cpp's gguf-py folder")
    ap.add_argument("ckpt")
    ap.add_argument("out")
    a = ap.parse_args()
    sys.path.insert(0, a.gguf_py)
    import gguf

    with open(os.path.join(a.ckpt, "config.json")) as f:
        c = json.load(f)
    sd = read_safetensors(os.path.join(a.ckpt, "model.safetensors"))
    nh, nkv = c["num_attention_heads"], c.get("num_key_value_heads") or c["num_attention_heads"]
    w = gguf.GGUFWriter(a.out, "llama")
    w.add_name(os.path.basename(os.path.normpath(a.ckpt)))
    w.add_block_count(c["num_hidden_layers"])
    w.add_context_length(c["max_position_embeddings"])
    w.add_embedding_length(c["hidden_size"])
    w.add_feed_forward_length(c["intermediate_size"])
    w.add_head_count(nh)
    w.add_head_count_kv(nkv)
    w.add_layer_norm_rms_eps(c.get("rms_norm_eps", 1e-6))
    w.add_rope_freq_base(c.get("rope_theta", 10000.0))
    w.add_rope_dimension_count(c["hidden_size"] // nh)
    w.add_vocab_size(c["vocab_size"])
    w.add_file_type(gguf.LlamaFileType.MOSTLY_F16)
    tokens, scores, types = vocab(os.path.join(a.ckpt, "tokenizer.model"), c["vocab_size"])
    w.add_tokenizer_model("llama")
    w.add_token_list(tokens)
    w.add_token_scores(scores)
    w.add_token_types(types)
    w.add_bos_token_id(c.get("bos_token_id", 1))
    w.add_eos_token_id(c.get("eos_token_id", 2))
    w.add_unk_token_id(0)
    w.add_add_bos_token(True)
    w.add_add_eos_token(False)

    def put(name, arr, f16=True):
        w.add_tensor(name, arr.astype(np.float16 if f16 else np.float32))

    put("token_embd.weight", sd["model.embed_tokens.weight"])
    for i in range(c["num_hidden_layers"]):
        p = "model.layers.%d." % i
        put("blk.%d.attn_norm.weight" % i, sd[p + "input_layernorm.weight"], False)
        put("blk.%d.attn_q.weight" % i, permute(sd[p + "self_attn.q_proj.weight"], nh, nh))
        put("blk.%d.attn_k.weight" % i, permute(sd[p + "self_attn.k_proj.weight"], nh, nkv))
        put("blk.%d.attn_v.weight" % i, sd[p + "self_attn.v_proj.weight"])
        put("blk.%d.attn_output.weight" % i, sd[p + "self_attn.o_proj.weight"])
        put("blk.%d.ffn_norm.weight" % i, sd[p + "post_attention_layernorm.weight"], False)
        put("blk.%d.ffn_gate.weight" % i, sd[p + "mlp.gate_proj.weight"])
        put("blk.%d.ffn_up.weight" % i, sd[p + "mlp.up_proj.weight"])
        put("blk.%d.ffn_down.weight" % i, sd[p + "mlp.down_proj.weight"])
    put("output_norm.weight", sd["model.norm.weight"], False)
    put("output.weight", sd.get("lm_head.weight", sd["model.embed_tokens.weight"]))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    print("make_gguf: wrote %s" % a.out)


if __name__ == "__main__":
    main()
