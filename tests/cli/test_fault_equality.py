"""A checkpoint whose read fails mid-way is nobody's previous checkpoint or reference, in
every driver. The fault is injected by the LD_PRELOAD shim (tests/support/eio_shim.c): the
pages of one tensor of one checkpoint's weight file raise SIGBUS when read, in whatever
process maps that file and in whichever role it reads it (the checkpoint itself, the
previous checkpoint of its successor, the reference). The serial scan, two shards joined
by merge and, when an mpiexec is given, `mpirun -n 3` must write the same run file,
dataset by dataset (h5py, ignoring analysed_at). The serial file itself is checked against
numpy: the failed checkpoint's row is NaN, its successor's drift is measured against the
checkpoint before it, and the reference is the first checkpoint that reads through.
Before the planner, a shard or an MPI rank took a checkpoint whose weights merely opened
as the previous one, and the files differed.
usage: test_fault_equality.py CKPTSCOPE CKS_FIXTURE EIO_SHIM MPIEXEC|- [TEST...]"""
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile

import h5py
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import scan_support as S  # noqa: E402

SHIM, MPIEXEC = sys.argv[3], sys.argv[4]
sys.argv = sys.argv[:3] + sys.argv[5:]  # S.main reads test names after the two tools
S.init(sys.argv)
TMP = tempfile.mkdtemp(prefix="cks-faulteq-")
MPI_ENV = {"OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1"} \
    if os.geteuid() == 0 else {}
TENSOR = "model.layers.1.mlp.up_proj.weight"  # 160x64 f32: ten whole pages
LSAN_SUPP = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support",
                         "lsan-hdf5.supp")


def tmp(name):
    return os.path.join(TMP, name)


def source():
    """Six checkpoints, and a held-out token file for the ppl family (its values and
    per-token losses travel between MPI ranks as the engine's items)."""
    src = tmp("fx6")
    if not os.path.exists(src):
        S.fixture(src, "--layout", "folder", "--checkpoints", 6)
        rng = np.random.default_rng(3)
        rng.integers(0, 256, size=300).astype("<u2").tofile(tmp("held.u16"))
    return src


def byte_range(path, name):
    """Where a tensor's bytes are in a safetensors file, read here from its header."""
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
    s, e = header[name]["data_offsets"]
    return 8 + n + s, e - s


def fault_env(src, ckpt):
    path = os.path.join(src, ckpt, "model.safetensors")
    off, length = byte_range(path, TENSOR)
    return {"LD_PRELOAD": SHIM, "CKS_SIGBUS_MATCH": os.path.join(ckpt, "model.safetensors"),
            "CKS_SIGBUS_RANGE": "%d:%d" % (off, length),
            # (ASan builds) the shim is not built with ASan, whose runtime then is not first
            "ASAN_OPTIONS": os.environ.get("ASAN_OPTIONS", "") + ":verify_asan_link_order=0",
            "LSAN_OPTIONS": "suppressions=" + LSAN_SUPP}


def args(src):
    return [src, "--threads", "1", "--eval", tmp("held.u16"), "--no-bos"]


def three_ways(src, ckpt, name):
    """The serial file, two shards merged, and mpirun -n 3; each equal to the serial one.
    Returns the serial file and the stderr of each shard."""
    env = fault_env(src, ckpt)
    serial = tmp(name + "-serial.h5")
    _, _, err = S.run(["scan", "-o", serial] + args(src), env=env, check=2)
    assert "error: %s failed: " % ckpt in err and "while it was being analysed" in err, err
    parts, errs = [], []
    for i in range(2):
        p = tmp("%s-%d-of-2.h5" % (name, i))
        code, _, e = S.run(["scan", "-o", p, "--shard", "%d/2" % i] + args(src), env=env)
        assert code in (0, 2), (code, e)
        parts.append(p)
        errs.append(e)
    merged = tmp(name + "-merged.h5")
    S.run(["merge"] + parts + ["-o", merged], check=0)
    S.same_file(merged, serial)
    if MPIEXEC != "-":
        out = tmp(name + "-mpi.h5")
        e = dict(os.environ, **MPI_ENV)
        e.update(env)
        cmd = [MPIEXEC, "--oversubscribe"] + sum((["-x", k] for k in env), []) + \
            ["-n", "3", S.CKPTSCOPE, "scan", "-o", out] + args(src)
        p = subprocess.run(cmd, capture_output=True, text=True, env=e, timeout=300)
        assert p.returncode == 2 and "error: %s failed on rank" % ckpt in p.stderr, \
            (p.returncode, p.stderr)
        S.same_file(out, serial)
        print("  %s: serial = 2 shards + merge = mpirun -n 3" % name)
    else:
        print("  %s: serial = 2 shards + merge (no mpiexec given)" % name)
    return serial, errs


def values(src, k):
    return S.read_safetensors(os.path.join(src, "ckpt_%03d" % k, "model.safetensors"))


def test_fault_in_a_previous_checkpoint():
    src = source()
    serial, errs = three_ways(src, "ckpt_002", "prev")
    assert S.statuses(serial) == ["complete", "complete", "failed"] + ["complete"] * 3
    # shard 1 analysed ckpt_003 against ckpt_002, whose weights open, found it failed
    # while reading it and planned ckpt_003 again against ckpt_001
    assert "warning: ckpt_003: its previous checkpoint ckpt_002 failed while it was read" \
        in errs[1], errs[1]
    v1, v3 = values(src, 1), values(src, 3)
    with h5py.File(serial, "r") as f:
        names = [n.decode() for n in f["tensors"]["name"]]
        assert np.all(np.isnan(f["norms/fro"][2])) and np.all(np.isnan(f["eval/held/nll"][2]))
        S.close(f["drift/prev/rel_fro"][3], [S.drift(v3[n], v1[n])[0] for n in names], 1e-10,
                "ckpt_003 against ckpt_001")
        assert f["drift/ref"].attrs["ref"] == "ckpt_000"
        assert np.all(np.isfinite(f["eval/held/nll"][[0, 1, 3, 4, 5]]))


def test_fault_in_the_reference():
    src = source()
    serial, errs = three_ways(src, "ckpt_000", "ref")
    assert S.statuses(serial) == ["failed"] + ["complete"] * 5
    # shard 1 analysed ckpt_001 against ckpt_000 (its previous checkpoint and the reference)
    assert "warning: ckpt_001: its previous checkpoint and reference ckpt_000 failed while it " \
        "was read" in errs[1], errs[1]
    v1, v2 = values(src, 1), values(src, 2)
    with h5py.File(serial, "r") as f:
        names = [n.decode() for n in f["tensors"]["name"]]
        assert f["drift/ref"].attrs["ref"] == "ckpt_001"
        assert np.all(np.isnan(f["drift/prev/rel_fro"][1]))  # nothing complete before it
        assert np.all(f["drift/ref/rel_fro"][1] == 0)
        S.close(f["drift/ref/rel_fro"][2], [S.drift(v2[n], v1[n])[0] for n in names], 1e-10,
                "ckpt_002 against the reference ckpt_001")
    with h5py.File(tmp("ref-0-of-2.h5"), "r") as f:  # the part that recorded ckpt_000
        assert f.attrs["part_ref"] == "ckpt_001"


if __name__ == "__main__":
    try:
        S.main([test_fault_in_a_previous_checkpoint, test_fault_in_the_reference])
    finally:
        if not os.environ.get("CKS_KEEP_TMP"):
            shutil.rmtree(TMP, ignore_errors=True)
