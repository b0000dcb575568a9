"""Shared helpers for CLI tests: run the built ckptscope, make fixtures, and read
safetensors files with numpy independently of ckptscope's own reader."""
import hashlib
import json
import os
import struct
import subprocess
import tempfile

import numpy as np

ST_DTYPES = {"F32": "<f4", "F16": "<f2", "F64": "<f8", "I32": "<i4", "I64": "<i8", "U8": "u1"}


def read_safetensors(data):
    """Returns {name: float64 array} from safetensors bytes (BF16 widened by bit shift)."""
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    base = 8 + n
    out = {}
    for name, e in header.items():
        if name == "__metadata__":
            continue
        b, end = e["data_offsets"]
        raw = data[base + b:base + end]
        if e["dtype"] == "BF16":
            u = np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16
            arr = u.view("<f4")
        else:
            arr = np.frombuffer(raw, dtype=ST_DTYPES[e["dtype"]])
        out[name] = arr.astype(np.float64).reshape(e["shape"])
    return out


def numpy_norms(a):
    f = a[np.isfinite(a)]
    return {
        "fro": float(np.sqrt(np.sum(f * f))),
        "rms": float(np.sqrt(np.mean(f * f))),
        "mean": float(np.mean(f)),
        "std": float(np.std(f)),  # population (ddof=0)
        "absmax": float(np.max(np.abs(f))),
        "nan": int(np.isnan(a).sum()),
        "inf": int(np.isinf(a).sum()),
    }


class Tool:
    def __init__(self, exe, fixture):
        self.exe = exe
        self.fixture = fixture
        self.tmp = tempfile.mkdtemp(prefix="cks-cli-")

    def run(self, *args, expect=0):
        p = subprocess.run([self.exe, *args], capture_output=True, text=True)
        if expect is not None and p.returncode != expect:
            raise AssertionError(
                f"ckptscope {' '.join(args)}: exit {p.returncode}, expected {expect}\n"
                f"stdout: {p.stdout[-2000:]}\nstderr: {p.stderr[-2000:]}")
        return p

    def json(self, *args):
        p = self.run(*args, "--json")
        return json.loads(p.stdout)

    def make(self, name, *opts):
        d = os.path.join(self.tmp, name)
        subprocess.run([self.fixture, d, *opts], check=True)
        return d


def git(repo, *args):
    return subprocess.run(["git", "-C", repo, *args], capture_output=True, check=True).stdout


def git_file(repo, branch, path):
    """File content as git itself sees it, with an LFS pointer resolved by path."""
    data = git(repo, "show", f"{branch}:{path}")
    if data.startswith(b"version https://git-lfs.github.com/spec/v1"):
        fields = dict(line.split(" ", 1) for line in data.decode().splitlines())
        oid = fields["oid"].split(":", 1)[1]
        gitdir = git(repo, "rev-parse", "--git-common-dir").decode().strip()
        if not os.path.isabs(gitdir):
            gitdir = os.path.join(repo, gitdir)
        with open(os.path.join(gitdir, "lfs", "objects", oid[:2], oid[2:4], oid), "rb") as f:
            return f.read()
    return data


def tree_digest(path):
    h = hashlib.sha256()
    for root, dirs, files in os.walk(path):
        dirs.sort()
        for n in sorted(files) + sorted(dirs):
            p = os.path.join(root, n)
            st = os.lstat(p)
            h.update(f"{p} {st.st_mode} {st.st_size} {st.st_mtime_ns}\n".encode())
            if os.path.isfile(p) and not os.path.islink(p):
                with open(p, "rb") as f:
                    h.update(hashlib.sha256(f.read()).digest())
    return h.hexdigest()


def close(got, want, rtol, atol=0.0):
    if got is None or want is None:
        return got is None and want is None
    return abs(got - want) <= atol + rtol * abs(want)
