#!/usr/bin/python3
"""Writes the benchmark checkpoints of bench/bench_formats.c (Debian's /usr/bin/python3):

    make_bench_checkpoint.py OUTDIR MEGABYTES

For f32 and bf16: OUTDIR/<dtype>.bin written by torch.save (a state dict of LLaMA-shaped
layers, hidden 1024, intermediate 2816, HF names) and OUTDIR/<dtype>.safetensors with
the same tensors, written by hand (8-byte header length, JSON header, data). The f32
files hold about MEGABYTES; the bf16 files the same parameters in half the bytes.
"""
import json
import os
import struct
import sys

import torch

HIDDEN, INTER = 1024, 2816
NAMES = {torch.float32: "F32", torch.bfloat16: "BF16"}


def state_dict(layers, dtype):
    g = torch.Generator().manual_seed(1)
    sd = {}
    for i in range(layers):
        p = f"model.layers.{i}."
        for name, shape in (("self_attn.q_proj", (HIDDEN, HIDDEN)),
                            ("self_attn.k_proj", (HIDDEN, HIDDEN)),
                            ("self_attn.v_proj", (HIDDEN, HIDDEN)),
                            ("self_attn.o_proj", (HIDDEN, HIDDEN)),
                            ("mlp.gate_proj", (INTER, HIDDEN)),
                            ("mlp.up_proj", (INTER, HIDDEN)),
                            ("mlp.down_proj", (HIDDEN, INTER))):
            sd[f"{p}{name}.weight"] = (0.02 * torch.randn(shape, generator=g)).to(dtype)
    return sd


def write_safetensors(path, sd):
    header, off = {}, 0
    for name, t in sd.items():
        n = t.numel() * t.element_size()
        header[name] = {"dtype": NAMES[t.dtype], "shape": list(t.shape),
                        "data_offsets": [off, off + n]}
        off += n
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h)
        for t in sd.values():
            t = t.contiguous()
            f.write((t.view(torch.int16) if t.element_size() == 2 else t).numpy().tobytes())


def main():
    out, mb = sys.argv[1], float(sys.argv[2])
    per_layer = 4 * (4 * HIDDEN * HIDDEN + 3 * HIDDEN * INTER)
    layers = max(1, round(mb * 2**20 / per_layer))
    os.makedirs(out, exist_ok=True)
    for dtype, tag in ((torch.float32, "f32"), (torch.bfloat16, "bf16")):
        sd = state_dict(layers, dtype)
        torch.save(sd, f"{out}/{tag}.bin")
        write_safetensors(f"{out}/{tag}.safetensors", sd)


if __name__ == "__main__":
    main()
