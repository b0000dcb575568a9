"""The one helper module of the CLI tests (tests/cli/*.py): soft checks that report every
failure of a run (check, finish), number comparisons (close, assert_close), safetensors
read and written with numpy independently of ckptscope's own reader, git and Git LFS
helpers, norms in numpy and a wrapper around the built tools. scan_support.py and plot_support.py add what only the
scan and plot tests need on top of these."""
import hashlib
import json
import math
import os
import struct
import subprocess
import sys
import tempfile

import numpy as np

# ---- prerequisites from outside the tree ----

SKIP = 77  # ctest's SKIP_RETURN_CODE of the CLI tests
SOURCE_DIR = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..",
                                           ".."))


class Skip(Exception):
    """A prerequisite from outside the tree is missing (raised by need())."""


def need(ok, why):
    """A prerequisite from outside the tree (a file of ../shared/data, Chromium): nothing
    when ok; otherwise an AssertionError in CI (CI=true, where everything is present:
    DESIGN, shared/data/README.md) and Skip elsewhere."""
    if ok:
        return
    if os.environ.get("CI") == "true":
        raise AssertionError(why + " (CI has every prerequisite: this fails)")
    raise Skip(why)


def shared_data(*parts):
    """A path under ../shared/data (CKS_SHARED_DATA when set)."""
    root = os.environ.get("CKS_SHARED_DATA", os.path.join(SOURCE_DIR, "..", "shared", "data"))
    return os.path.join(root, *parts)


def run_tests(tests, names):
    """Runs the test functions named in names (all when empty), reporting each; exits 1
    when one failed, 77 when none failed and one was skipped (Skip), 0 otherwise."""
    import time
    import traceback
    unknown = set(names) - {t.__name__ for t in tests}
    if unknown:
        print("FAIL: no such tests:", ", ".join(sorted(unknown)))
        sys.exit(1)
    failed = skipped = 0
    for t in tests:
        if names and t.__name__ not in names:
            continue
        t0 = time.time()
        try:
            t()
            print("ok %s (%.1f s)" % (t.__name__, time.time() - t0))
        except Skip as e:
            skipped += 1
            print("skip %s: %s" % (t.__name__, e))
        except Exception as e:  # report every failing test, then fail
            failed += 1
            print("FAIL", t.__name__, ":", e)
            traceback.print_exc()
    sys.exit(1 if failed else SKIP if skipped else 0)


# ---- soft checks: each failure is printed and counted; finish() fails the run ----

failures = []
skips = []
checks = 0


def check(cond, what):
    global checks
    checks += 1
    if not cond:
        failures.append(what)
        print("FAIL:", what)
    return bool(cond)


def skip(why):
    """Records a Skip of part of a soft-check run (finish() then exits 77)."""
    print("skip:", why)
    skips.append(str(why))


def finish():
    print("%d checks, %d failed" % (checks, len(failures)))
    if failures:
        sys.exit(1)
    if skips:
        sys.exit(SKIP)


# ---- numbers ----

def _undefined(x):
    return x is None or (isinstance(x, float) and math.isnan(x))


def close(got, want, rtol=0.0, atol=0.0):
    """|got - want| <= atol + rtol |want|; an undefined value (JSON null, NaN) matches only
    another. Arrays: elementwise, same shape, NaN matching NaN."""
    if isinstance(got, np.ndarray) or isinstance(want, np.ndarray):
        got, want = np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64)
        return got.shape == want.shape and bool(
            np.allclose(got, want, rtol=rtol, atol=atol, equal_nan=True))
    if _undefined(got) or _undefined(want):
        return _undefined(got) and _undefined(want)
    return abs(got - want) <= atol + rtol * abs(want)


def assert_close(got, want, rtol, what, atol=0.0):
    """close() or an AssertionError naming what and the worst element."""
    g, w = np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64)
    if g.shape != w.shape or not np.allclose(g, w, rtol=rtol, atol=atol, equal_nan=True):
        if g.shape != w.shape:
            raise AssertionError("%s: shape %s, want %s" % (what, g.shape, w.shape))
        bad = np.argmax(np.abs(g - w) / np.maximum(np.abs(w), 1e-300))
        raise AssertionError("%s: got %r, want %r (rtol %g; worst at %d: %r vs %r)"
                             % (what, got, want, rtol, bad, g.flat[bad], w.flat[bad]))

ST_DTYPES = {"F32": "<f4", "F16": "<f2", "F64": "<f8", "I32": "<i4", "I64": "<i8", "U8": "u1"}


def read_safetensors(src):
    """{name: float64 array} from a safetensors file (path) or its bytes, parsed here from
    the byte layout (BF16 widened by bit shift), not by ckptscope."""
    if not isinstance(src, (bytes, bytearray)):
        with open(src, "rb") as f:
            src = f.read()
    (n,) = struct.unpack("<Q", src[:8])
    header = json.loads(src[8:8 + n])
    base = 8 + n
    out = {}
    for name, e in header.items():
        if name == "__metadata__":
            continue
        b, end = e["data_offsets"]
        raw = src[base + b:base + end]
        if e["dtype"] == "BF16":
            u = np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16
            arr = u.view("<f4")
        else:
            arr = np.frombuffer(raw, dtype=ST_DTYPES[e["dtype"]])
        out[name] = arr.astype(np.float64).reshape(e["shape"])
    return out


def write_safetensors(path, tensors):
    """Writes float32 tensors (name -> array) as safetensors."""
    header, blobs, off = {}, [], 0
    for name, a in tensors.items():
        a = np.ascontiguousarray(a, dtype=np.float32)
        header[name] = {"dtype": "F32", "shape": list(a.shape),
                        "data_offsets": [off, off + a.nbytes]}
        blobs.append(a.tobytes())
        off += a.nbytes
    h = json.dumps(header).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(len(h).to_bytes(8, "little") + h + b"".join(blobs))


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


def git_recommit(repo, branch):
    """Gives a branch a new commit with the same tree (its content is unchanged)."""
    g = ["git", "-C", repo]
    tree = subprocess.run(g + ["rev-parse", branch + "^{tree}"], capture_output=True,
                          text=True, check=True).stdout.strip()
    env = dict(os.environ, GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@t", GIT_COMMITTER_NAME="t",
               GIT_COMMITTER_EMAIL="t@t")
    new = subprocess.run(g + ["commit-tree", tree, "-m", "re-upload"], capture_output=True,
                         text=True, check=True, env=env).stdout.strip()
    subprocess.run(g + ["update-ref", "refs/heads/" + branch, new], check=True)
    return new


def lfs_object(repo, branch, path="model.safetensors"):
    """Where the LFS object of branch:path lives."""
    ptr = git(repo, "show", "%s:%s" % (branch, path)).decode()
    oid = ptr.split("oid sha256:", 1)[1].split()[0]
    return os.path.join(repo, ".git", "lfs", "objects", oid[:2], oid[2:4], oid)
