#!/usr/bin/python3
"""Writes the PyTorch .bin test fixtures under tests/data/torch/ (run with Debian's
/usr/bin/python3, which has torch 1.13; files are deterministic for a given torch).

    /usr/bin/python3 tools/make_torch_fixtures.py [OUTDIR]   (default tests/data/torch)

Real torch.save files, a few KB each:
  llama_{f32,f16,bf16}.bin   state_dict() of a tiny LLaMA-shaped module with Hugging
                             Face names (an OrderedDict carrying _metadata, as HF saves)
  llama_{f32,f16,bf16}.safetensors  the same tensors, safetensors written by hand
  llama_f32_proto4.bin       the f32 state dict saved with pickle_protocol=4
  tied_f32.bin               lm_head.weight and model.embed_tokens.weight share a storage
  views_f32.bin              a plain dict of offset views into one shared storage, a 0-d
                             and an empty view, an int64 tensor
  noncontig_f32.bin          a transposed tensor (must be refused)
  sharded/                   the f32 model as two shards + pytorch_model.bin.index.json
  config.json                config of the tiny model (tie_word_embeddings false)
  zip64_local.bin            the views pickle re-zipped by Python's zipfile with ZIP64
                             local extra fields (force_zip64), no data descriptors
  v3_u16.bin                 a hand-assembled _rebuild_tensor_v3 pickle (torch >= 2.1
                             writes these for uint16/float8; this torch cannot)
expected.json holds, for every tensor of every readable file, what torch says: dtype,
shape, storage sharing and offset, and float64 statistics of the stored values (sum,
sum of squares, absmax, first/last values, and the norms ckptscope reports: fro, rms,
mean, population std).

hostile/*.bin are files a reader must refuse, each with the error it must give in
hostile/expected.json: pickles calling os.system / posix.system / builtins.eval,
unknown globals, REDUCE of non-callables, a memo reference out of range, missing storages, tensors past their storage, truncated and inconsistent zips, zip-bomb
size and count fields, compressed and encrypted entries, a big-endian byteorder.
"""
import collections
import io
import json
import math
import os
import pickle
import shutil
import struct
import sys
import zipfile

import numpy as np
import torch

SEED = 360
DIMS = dict(hidden=8, intermediate=16, layers=2, heads=2, kv_heads=1, vocab=16, max_pos=32)
ST_NAMES = {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16",
            torch.float64: "F64", torch.int64: "I64"}


# ---------------------------------------------------------------- a tiny LLaMA (HF names)
class RMSNorm(torch.nn.Module):
    def __init__(self, n):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.ones(n))


class Attention(torch.nn.Module):
    def __init__(self, h, kv):
        super().__init__()
        self.q_proj = torch.nn.Linear(h, h, bias=False)
        self.k_proj = torch.nn.Linear(h, kv, bias=False)
        self.v_proj = torch.nn.Linear(h, kv, bias=False)
        self.o_proj = torch.nn.Linear(h, h, bias=False)


class MLP(torch.nn.Module):
    def __init__(self, h, f):
        super().__init__()
        self.gate_proj = torch.nn.Linear(h, f, bias=False)
        self.up_proj = torch.nn.Linear(h, f, bias=False)
        self.down_proj = torch.nn.Linear(f, h, bias=False)


class Layer(torch.nn.Module):
    def __init__(self, d):
        super().__init__()
        kv = d["kv_heads"] * d["hidden"] // d["heads"]
        self.self_attn = Attention(d["hidden"], kv)
        self.mlp = MLP(d["hidden"], d["intermediate"])
        self.input_layernorm = RMSNorm(d["hidden"])
        self.post_attention_layernorm = RMSNorm(d["hidden"])


class Body(torch.nn.Module):
    def __init__(self, d):
        super().__init__()
        self.embed_tokens = torch.nn.Embedding(d["vocab"], d["hidden"])
        self.layers = torch.nn.ModuleList([Layer(d) for _ in range(d["layers"])])
        self.norm = RMSNorm(d["hidden"])


class TinyLlama(torch.nn.Module):
    def __init__(self, d, tied=False):
        super().__init__()
        self.model = Body(d)
        self.lm_head = torch.nn.Linear(d["hidden"], d["vocab"], bias=False)
        if tied:
            self.lm_head.weight = self.model.embed_tokens.weight
        g = torch.Generator().manual_seed(SEED)
        with torch.no_grad():
            for name, p in self.named_parameters():
                if "norm" in name:
                    p.copy_(1 + 0.05 * torch.randn(p.shape, generator=g))
                else:
                    p.copy_(0.02 * torch.randn(p.shape, generator=g))


def config_json(d, tied=False):
    return {"architectures": ["LlamaForCausalLM"], "model_type": "llama",
            "hidden_size": d["hidden"], "intermediate_size": d["intermediate"],
            "num_hidden_layers": d["layers"], "num_attention_heads": d["heads"],
            "num_key_value_heads": d["kv_heads"], "vocab_size": d["vocab"],
            "max_position_embeddings": d["max_pos"], "rms_norm_eps": 1e-5,
            "rope_theta": 10000.0, "tie_word_embeddings": tied, "torch_dtype": "float32",
            "bos_token_id": 1, "eos_token_id": 2}


# ---------------------------------------------------------------- reference statistics
def describe(sd):
    """What torch says about every tensor of a state dict (values widened to float64)."""
    out, first_of_storage = {}, {}
    for name, t in sd.items():
        ptr = t.storage().data_ptr()
        first_of_storage.setdefault(ptr, name)
        e = {"dtype": ST_NAMES[t.dtype], "shape": list(t.shape),
             "storage_offset": t.storage_offset(), "shares_with": first_of_storage[ptr],
             "shares_offset": sd[first_of_storage[ptr]].storage_offset()}
        v = t.detach().to(torch.float64).reshape(-1).numpy()
        if t.dtype.is_floating_point and v.size:
            n = v.size
            fro = math.sqrt(float(np.sum(v * v)))
            e.update(sum=float(np.sum(v)), sumsq=float(np.sum(v * v)),
                     absmax=float(np.max(np.abs(v))), first=[float(x) for x in v[:3]],
                     last=float(v[-1]), fro=fro, rms=fro / math.sqrt(n),
                     mean=float(np.mean(v)), std=float(np.std(v)))
        elif v.size:
            e.update(sum=float(np.sum(v)), first=[float(x) for x in v[:3]], last=float(v[-1]))
        out[name] = e
    return {"order": list(sd.keys()), "tensors": out}


# ---------------------------------------------------------------- safetensors, by hand
def raw_bytes(t):
    t = t.detach().contiguous()
    if t.element_size() == 2:
        return t.view(torch.int16).numpy().tobytes()
    return t.numpy().tobytes()


def write_safetensors(path, sd):
    header, blobs, off = {"__metadata__": {"format": "pt"}}, [], 0
    for name, t in sd.items():
        b = raw_bytes(t)
        header[name] = {"dtype": ST_NAMES[t.dtype], "shape": list(t.shape),
                        "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


# ---------------------------------------------------------------- pickle assembly
# The opcode sequence torch.save writes for a state dict (see pickletools.dis of a real
# file), without the memo. make() checks it against torch.load, so hostile variants
# differ from a loadable file only where they mean to.
def p_str(s):
    b = s.encode()
    return b"X" + struct.pack("<I", len(b)) + b


def p_int(i):
    if 0 <= i < 256:
        return b"K" + bytes([i])
    if 0 <= i < 65536:
        return b"M" + struct.pack("<H", i)
    if -2**31 <= i < 2**31:
        return b"J" + struct.pack("<i", i)
    return b"\x8a\x08" + struct.pack("<q", i)


def p_global(mod, name):
    return b"c" + f"{mod}\n{name}\n".encode()


def p_tuple(items):
    return b"(" + b"".join(items) + b"t"


ODICT = p_global("collections", "OrderedDict") + b")R"


def p_tensor(key, storage_cls, numel, offset, size, stride, rebuild="_rebuild_tensor_v2",
             extra=b""):
    pid = p_tuple([p_str("storage"), p_global("torch", storage_cls), p_str(key), p_str("cpu"),
                   p_int(numel)]) + b"Q"
    args = [pid, p_int(offset), p_tuple([p_int(x) for x in size]),
            p_tuple([p_int(x) for x in stride])]
    if rebuild != "_rebuild_tensor":
        args += [b"\x89", ODICT]
    return p_global("torch._utils", rebuild) + p_tuple(args + [extra]) + b"R"


def p_state(entries):
    """entries: [(name, tensor opcodes)] -> an OrderedDict state dict pickle."""
    body = b"".join(p_str(n) + t for n, t in entries)
    return b"\x80\x02" + ODICT + b"(" + body + b"u."


def zinfo(name, method=zipfile.ZIP_STORED):
    """A zip entry with a fixed date, so that the files are the same on every run."""
    i = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
    i.compress_type = method
    return i


def torch_zip(path, pkl, storages, prefix="archive", version=b"3\n", extra=()):
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z:
        z.writestr(zinfo(f"{prefix}/data.pkl"), pkl)
        for key, data in storages.items():
            z.writestr(zinfo(f"{prefix}/data/{key}"), data)
        for name, data in extra:
            z.writestr(zinfo(f"{prefix}/{name}"), data)
        if version is not None:
            z.writestr(zinfo(f"{prefix}/version"), version)


def read_zip(path):
    with zipfile.ZipFile(path) as z:
        return [(i.filename, z.read(i)) for i in z.infolist()]


# ---------------------------------------------------------------- raw zip surgery
def central_records(data):
    """Offsets of the central directory records of a zip in memory, by entry name."""
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        pos, recs = z.start_dir, {}
    while data[pos:pos + 4] == b"PK\x01\x02":
        nl, xl, cl = struct.unpack_from("<HHH", data, pos + 28)
        recs[data[pos + 46:pos + 46 + nl].decode()] = pos
        pos += 46 + nl + xl + cl
    return recs


def end_records(data):
    eocd = data.rindex(b"PK\x05\x06")
    z64 = data.rfind(b"PK\x06\x06", 0, eocd)
    return eocd, z64


def patched(data, at, fmt, value):
    b = bytearray(data)
    struct.pack_into(fmt, b, at, value)
    return bytes(b)


def raw_overlap_zip(path):
    """Entry data/0's bytes contain all of entry data/1 (local header and data): the
    overlap zip bombs use to multiply their size."""
    def local(name, data):
        n = name.encode()
        return struct.pack("<IHHHHHIIIHH", 0x04034b50, 20, 0, 0, 0, 0,
                           zipfile.crc32(data), len(data), len(data), len(n), 0) + n + data

    def central(name, data, off):
        n = name.encode()
        return struct.pack("<IHHHHHHIIIHHHHHII", 0x02014b50, 20, 20, 0, 0, 0, 0,
                           zipfile.crc32(data), len(data), len(data), len(n), 0, 0, 0, 0, 0,
                           off) + n

    pkl = p_state([("w", p_tensor("1", "FloatStorage", 1, 0, [1], [1]))])
    inner = local("archive/data/1", struct.pack("<f", 1.0))
    parts = [local("archive/data.pkl", pkl), local("archive/version", b"3\n")]
    outer_at = sum(len(p) for p in parts)
    outer = local("archive/data/0", inner)
    inner_at = outer_at + len(outer) - len(inner)
    body = b"".join(parts) + outer
    cd = (central("archive/data.pkl", pkl, 0) + central("archive/version", b"3\n", len(parts[0])) +
          central("archive/data/0", inner, outer_at) +
          central("archive/data/1", struct.pack("<f", 1.0), inner_at))
    end = struct.pack("<IHHHHIIH", 0x06054b50, 0, 0, 4, 4, len(cd), len(body), 0)
    with open(path, "wb") as f:
        f.write(body + cd + end)


# ---------------------------------------------------------------- the files
class Evil:
    def __init__(self, fn, arg):
        self.fn, self.arg = fn, arg

    def __reduce__(self):
        return (self.fn, (self.arg,))


def make_good(out, expected):
    for dt, tag in ((torch.float32, "f32"), (torch.float16, "f16"), (torch.bfloat16, "bf16")):
        sd = TinyLlama(DIMS).to(dt).state_dict()  # a fresh model: Module.to works in place
        assert isinstance(sd, collections.OrderedDict) and hasattr(sd, "_metadata")
        torch.save(sd, f"{out}/llama_{tag}.bin")
        write_safetensors(f"{out}/llama_{tag}.safetensors", sd)
        expected[f"llama_{tag}.bin"] = describe(sd)
    sd = TinyLlama(DIMS).state_dict()  # the same values as llama_f32.bin
    torch.save(sd, f"{out}/llama_f32_proto4.bin", pickle_protocol=4)
    expected["llama_f32_proto4.bin"] = describe(sd)

    tied = TinyLlama(DIMS, tied=True).state_dict()
    assert tied["lm_head.weight"].data_ptr() == tied["model.embed_tokens.weight"].data_ptr()
    torch.save(tied, f"{out}/tied_f32.bin")
    expected["tied_f32.bin"] = describe(tied)

    fused = torch.arange(48, dtype=torch.float32).reshape(12, 4) / 8 - 2
    views = {"fused.weight": fused, "q.weight": fused[0:4], "k.weight": fused[4:8],
             "v.weight": fused[8:12], "row": fused[5], "scalar": fused[2, 3],
             "unsqueezed": fused[1:2], "empty": fused[3:3],
             "ids": torch.arange(5, dtype=torch.int64) * 1000 - 7}
    torch.save(views, f"{out}/views_f32.bin")
    expected["views_f32.bin"] = describe(views)

    torch.save({"w": torch.arange(12, dtype=torch.float32).reshape(3, 4).t()},
               f"{out}/noncontig_f32.bin")

    os.makedirs(f"{out}/sharded", exist_ok=True)
    names = list(sd.keys())
    shards = [names[: len(names) // 2], names[len(names) // 2:]]
    wmap = {}
    for i, part in enumerate(shards):
        fname = f"pytorch_model-{i + 1:05d}-of-{len(shards):05d}.bin"
        shard = {k: sd[k] for k in part}  # a plain dict, as transformers writes shards
        torch.save(shard, f"{out}/sharded/{fname}")
        expected[f"sharded/{fname}"] = describe(shard)
        wmap.update({k: fname for k in part})
    total = sum(t.numel() * t.element_size() for t in sd.values())
    with open(f"{out}/sharded/pytorch_model.bin.index.json", "w") as f:
        json.dump({"metadata": {"total_size": total}, "weight_map": wmap}, f, indent=2,
                  sort_keys=True)
    with open(f"{out}/sharded/config.json", "w") as f:
        json.dump(config_json(DIMS), f, indent=2, sort_keys=True)
    with open(f"{out}/config.json", "w") as f:
        json.dump(config_json(DIMS), f, indent=2, sort_keys=True)

    # The views file re-zipped with ZIP64 local extras (Python's zipfile, not miniz).
    with zipfile.ZipFile(f"{out}/zip64_local.bin", "w", zipfile.ZIP_STORED) as z:
        for name, data in read_zip(f"{out}/views_f32.bin"):
            with z.open(zinfo(name), "w", force_zip64=True) as w:
                w.write(data)
    expected["zip64_local.bin"] = expected["views_f32.bin"]

    # _rebuild_tensor_v3 over an untyped storage with a dtype global, as torch >= 2.1
    # writes uint16 and float8 tensors; numel counts bytes.
    vals = np.array([1, 2, 65535, 4, 5, 6], dtype="<u2")
    pkl = p_state([("u16", p_tensor("0", "UntypedStorage", 12, 1, [2, 2], [2, 1],
                                    rebuild="_rebuild_tensor_v3",
                                    extra=p_global("torch", "uint16")))])
    pkl = pkl.replace(p_global("torch", "UntypedStorage"), p_global("torch.storage",
                                                                      "UntypedStorage"))
    torch_zip(f"{out}/v3_u16.bin", pkl, {"0": vals.tobytes()}, extra=[("byteorder", b"little")])
    expected["v3_u16.bin"] = {"order": ["u16"], "tensors": {"u16": {
        "dtype": "U16", "shape": [2, 2], "storage_offset": 1, "shares_with": "u16",
        "shares_offset": 1, "sum": float(vals[1:5].astype(np.float64).sum()),
        "first": [2.0, 65535.0, 4.0], "last": 5.0}}}


def check_assembler(out):
    """The pickle assembler writes what torch.load reads as intended."""
    vals = np.arange(12, dtype="<f4")
    pkl = p_state([("a", p_tensor("0", "FloatStorage", 12, 2, [2, 3], [3, 1])),
                   ("b", p_tensor("0", "FloatStorage", 12, 0, [12], [1],
                                  rebuild="_rebuild_tensor"))])
    path = f"{out}/.assembler_check.bin"
    torch_zip(path, pkl, {"0": vals.tobytes()})
    got = torch.load(path)
    os.remove(path)
    assert got["a"].tolist() == [[2, 3, 4], [5, 6, 7]] and got["b"].tolist() == list(range(12))


def make_hostile(out, good):
    h = f"{out}/hostile"
    os.makedirs(h, exist_ok=True)
    exp = {}
    f32 = np.arange(12, dtype="<f4").tobytes()
    one = p_tensor("0", "FloatStorage", 12, 0, [3, 4], [4, 1])

    def zipped(name, pkl, code, msg, storages=None, **kw):
        torch_zip(f"{h}/{name}", pkl, {"0": f32} if storages is None else storages, **kw)
        exp[name] = {"code": code, "message": msg}

    def raw(name, data, code, msg):
        with open(f"{h}/{name}", "wb") as f:
            f.write(data)
        exp[name] = {"code": code, "message": msg}

    # pickles that would run code
    zipped("os_system.bin", b"\x80\x02" + p_global("os", "system") +
           p_str("touch /tmp/ckptscope-pwned") + b"\x85R.", "unsupported",
           "global 'os.system' is not allowed")
    zipped("posix_system.bin", pickle.dumps(Evil(os.system, "touch /tmp/ckptscope-pwned"),
                                            protocol=2), "unsupported",
           "global 'posix.system' is not allowed")
    zipped("builtins_eval.bin", pickle.dumps(Evil(eval, "print('pwned')"), protocol=4),
           "unsupported", "global 'builtins.eval' is not allowed")  # via STACK_GLOBAL
    zipped("builtin_eval_p2.bin", pickle.dumps(Evil(eval, "print('pwned')"), protocol=2),
           "unsupported", "global '__builtin__.eval' is not allowed")
    zipped("numpy_global.bin", pickle.dumps({"w": np.zeros(3)}, protocol=2), "unsupported",
           "global 'numpy.core.multiarray._reconstruct' is not allowed")
    zipped("unknown_torch_global.bin", p_state([("w", one.replace(
        b"_rebuild_tensor_v2", b"_rebuild_qtensor"))]), "unsupported",
        "global 'torch._utils._rebuild_qtensor' is not allowed")
    zipped("reduce_storage.bin", b"\x80\x02" + p_global("torch", "FloatStorage") + b")R.",
           "unsupported", "REDUCE on torch.FloatStorage is not allowed")
    zipped("reduce_string.bin", b"\x80\x02" + p_str("os.system") + b")R.", "unsupported",
           "REDUCE on a str, which is not an allowed callable")
    zipped("build_list.bin", b"\x80\x02]}b.", "unsupported", "BUILD on a list")
    # malformed pickles
    zipped("memo_range.bin", b"\x80\x02}q\x00h\x05.", "format error",
           "memo reference 5 out of range (1 slots defined)")
    zipped("memo_huge.bin", b"\x80\x02}r\xff\xff\xff\x7f.", "limit exceeded", "memo index")
    # (100k MARKs and 100k EMPTY_LISTs are built in memory by tests/test_pickle.c)
    zipped("unknown_opcode.bin", b"\x80\x02}0.", "unsupported", "opcode 0x30 ('0')")
    zipped("no_stop.bin", p_state([("w", one)])[:-1], "format error", "ends without STOP")
    zipped("not_tensor.bin", b"\x80\x02}X\x01\x00\x00\x00wK\x05s.", "unsupported",
           "state dict entry 'w' is a int, not a tensor")
    zipped("not_dict.bin", b"\x80\x02].", "format error", "holds a list, not a state dict")
    zipped("hooks.bin", p_state([("w", one.replace(b"\x89" + ODICT, b"\x89}X\x01\x00\x00\x00hK"
                                                   b"\x01s"))]),
           "unsupported", "non-empty backward hooks")
    # geometry
    zipped("missing_storage.bin", p_state([("w", one.replace(p_str("0"), p_str("7")))]),
           "format error", "uses storage '7', which is not in the archive")
    zipped("extent.bin", p_state([("w", p_tensor("0", "FloatStorage", 12, 4, [3, 4], [4, 1]))]),
           "format error", "runs past its storage '0' of 48 bytes")
    zipped("storage_size.bin", p_state([("w", p_tensor("0", "FloatStorage", 13, 0, [12], [1]))]),
           "format error", "declares 13 F32 elements but its entry holds 48 bytes")
    zipped("storage_conflict.bin", p_state([("a", one), ("b", p_tensor(
        "0", "IntStorage", 12, 0, [12], [1]))]), "format error", "storage '0' is declared as")
    zipped("duplicate_name.bin", p_state([("w", one), ("w", one)]), "format error",
           "tensor 'w' appears twice")
    zipped("too_many_dims.bin", p_state([("w", p_tensor("0", "FloatStorage", 12, 0,
                                                        [1] * 9, [1] * 9))]),
           "limit exceeded", "at most 8 non-negative ints")
    # archives
    zipped("big_endian.bin", p_state([("w", one)]), "unsupported", "byteorder is 'big'",
           extra=[("byteorder", b"big")])
    zipped("bad_version.bin", p_state([("w", one)]), "unsupported",
           "archive format version '99", version=b"99\n")
    zipped("no_version.bin", p_state([("w", one)]), "format error", "no 'archive/version'",
           version=None)
    with zipfile.ZipFile(f"{h}/no_prefix.bin", "w") as z:
        z.writestr(zinfo("data.pkl"), p_state([("w", one)]))
        z.writestr(zinfo("version"), b"3\n")
    exp["no_prefix.bin"] = {"code": "format error", "message": "is not '<archive>/<name>'"}
    with zipfile.ZipFile(f"{h}/compressed.bin", "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in read_zip(good):
            z.writestr(zinfo(name, zipfile.ZIP_DEFLATED), data)
    exp["compressed.bin"] = {"code": "unsupported", "message": "is compressed (method 8)"}
    raw_overlap_zip(f"{h}/overlap.bin")
    exp["overlap.bin"] = {"code": "format error",
                          "message": "entries 'archive/data/0' and 'archive/data/1' overlap"}

    # surgery on a real torch.save file
    real = open(good, "rb").read()
    cd = central_records(real)
    pkl_name = next(n for n in cd if n.endswith("/data.pkl"))
    prefix = pkl_name[: -len("/data.pkl")]
    d0, d1 = cd[f"{prefix}/data/0"], cd[f"{prefix}/data/1"]
    eocd, z64 = end_records(real)
    assert z64 > 0, "torch writes a ZIP64 end record"
    raw("truncated.bin", real[: len(real) // 2], "format error", "no zip end record")
    raw("truncated_tail.bin", real[:-30], "format error", "no zip end record")
    nl = struct.unpack_from("<H", real, d0 + 28)[0]
    raw("cd_name.bin", patched(real, d0 + 46 + nl - 1, "<B", ord("9")), "format error",
        "the local header disagrees with the central directory (name")
    raw("cd_crc.bin", patched(real, d0 + 16, "<I", 0x12345678), "format error",
        "data descriptor is missing or disagrees")
    raw("cd_offset.bin", patched(real, d1 + 42, "<I", struct.unpack_from("<I", real, d1 + 42)[0]
                                 + 1), "format error", "no local header at offset")
    lo = struct.unpack_from("<I", real, cd[pkl_name] + 42)[0]
    raw("local_method.bin", patched(real, lo + 8, "<H", 8), "format error",
        "the local header disagrees with the central directory (name, method or flags)")
    enc = patched(patched(real, lo + 6, "<H", 0x0809), cd[pkl_name] + 8, "<H", 0x0809)
    raw("encrypted.bin", enc, "unsupported", "is encrypted")
    both = patched(patched(real, d0 + 20, "<I", 0x7ffffff0), d0 + 24, "<I", 0x7ffffff0)
    raw("bomb_size.bin", both, "format error", "2147483632 bytes at offset")
    both = patched(patched(real, d0 + 20, "<I", 0xffffffff), d0 + 24, "<I", 0xffffffff)
    raw("bomb_saturated.bin", both, "format error", "no ZIP64 value for it")
    many = patched(patched(patched(real, z64 + 24, "<Q", 1 << 40), z64 + 32, "<Q", 1 << 40),
                   eocd + 8, "<I", 0xffffffff)
    raw("bomb_count.bin", many, "limit exceeded", "1099511627776 zip entries (limit")
    many = patched(patched(patched(real, z64 + 24, "<Q", 60000), z64 + 32, "<Q", 60000),
                   eocd + 8, "<I", 0xffffffff)
    raw("bomb_count_fit.bin", many, "format error", "60000 zip entries cannot fit")
    raw("bomb_cdsize.bin", patched(patched(real, z64 + 40, "<Q", 1 << 62), eocd + 12, "<I",
                                   0xffffffff), "format error", "runs past its end record")
    raw("end64_disagrees.bin", patched(real, z64 + 32, "<Q", 5), "format error",
        "the ZIP64 end record disagrees")
    raw("not_zip.bin", b"this is not a zip archive\n" * 4, "format error", "no zip end record")
    # the pre-1.6 format: a pickle stream, named in the refusal
    legacy = io.BytesIO()
    torch.save({"w": torch.arange(12, dtype=torch.float32)}, legacy,
               _use_new_zipfile_serialization=False)
    raw("legacy.bin", legacy.getvalue(), "unsupported", "a legacy torch.save file")
    with open(f"{h}/expected.json", "w") as f:
        json.dump(exp, f, indent=2, sort_keys=True)


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "..", "tests", "data", "torch")
    if os.path.isdir(out):
        shutil.rmtree(out)
    os.makedirs(out)
    expected = {}
    make_good(out, expected)
    check_assembler(out)
    make_hostile(out, f"{out}/views_f32.bin")
    meta = {"generator": "tools/make_torch_fixtures.py", "torch": torch.__version__,
            "seed": SEED, "dims": DIMS, "files": expected}
    with open(f"{out}/expected.json", "w") as f:
        json.dump(meta, f, sort_keys=True)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
