"""Faults end to end, each provoked for real where the machine allows it:
- a checkpoint's weight file truncated while a scan reads it (the SIGBUS guard: that
  checkpoint fails naming the file, the others complete, exit status 2);
- files that cannot be read: FIFOs (open(2) would block forever) as weights, LFS objects,
  hub cache refs, eval results and tokenizers, a folder as an LFS object, a dangling
  symlink;
- ENOSPC while the run file is written (scan and merge into a small tmpfs; needs root,
  skipped otherwise);
- EIO while the run file is written: simulated by an LD_PRELOAD shim (eio_shim.c) that fails
  write/pwrite/copy_file_range or fsync on the run file's transaction copy;
- SIGINT and SIGTERM during a scan: a clean stop that --resume continues to the file an
  uninterrupted scan writes;
- two scans (and an evals import) writing one run file at once: the second is refused.
usage: test_faults.py CKPTSCOPE CKS_FIXTURE EIO_SHIM [TEST...]"""
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

import h5py
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import scan_support as S  # noqa: E402

SHIM = sys.argv[3]
S.init(sys.argv)
sys.argv = sys.argv[:3] + sys.argv[4:]  # S.main reads test names after the two tools
TMP = tempfile.mkdtemp(prefix="cks-faults-")
ND = "norms,drift"
DELAY = {"CKS_TEST_TENSOR_DELAY_MS": "60"}  # ~1.3 s per fixture checkpoint (21 tensors)


def tmp(name):
    return os.path.join(TMP, name)


def folder_fixture(name, n=4, *opts):
    p = tmp(name)
    if not os.path.exists(p):
        S.fixture(p, "--layout", "folder", "--checkpoints", n, *opts)
    return p


def reference(src, name):
    """The run file of an uninterrupted, fault-free scan."""
    out = tmp(name)
    if not os.path.exists(out):
        S.run(["scan", src, "-o", out, "--quiet", "--metrics", ND], check=0)
    return out


class Scan:
    """A scan running in the background; its stderr lines are collected as they come."""

    def __init__(self, args, env=None):
        e = dict(os.environ)
        e.update(env or {})
        self.p = subprocess.Popen([S.CKPTSCOPE, "scan"] + args, stderr=subprocess.PIPE, text=True,
                                  env=e)
        self.lines = []
        self.t = threading.Thread(target=self._read, daemon=True)
        self.t.start()

    def _read(self):
        for line in self.p.stderr:
            self.lines.append(line)

    def wait_mapped(self, path, timeout=60):
        """Waits until the scan has mapped the file at path (it is reading it)."""
        real, t0 = os.path.realpath(path), time.time()
        while time.time() - t0 < timeout:
            try:
                with open("/proc/%d/maps" % self.p.pid) as f:
                    if real in f.read():
                        return
            except OSError:
                pass
            if self.p.poll() is not None:
                raise AssertionError("the scan ended before mapping %s:\n%s" % (path, self.err()))
            time.sleep(0.002)
        raise AssertionError("the scan never mapped %s" % path)

    def finish(self, timeout=120):
        self.p.wait(timeout=timeout)
        self.t.join()
        return self.p.returncode, self.err()

    def err(self):
        return "".join(self.lines)


def rows_equal(a, b, rows, datasets=("norms/fro", "norms/rms", "drift/ref/rel_fro", "drift/ref/cos")):
    with h5py.File(a, "r") as fa, h5py.File(b, "r") as fb:
        for d in datasets:
            for r in rows:
                if not np.array_equal(fa[d][r], fb[d][r], equal_nan=True):
                    raise AssertionError("%s row %d differs: %r vs %r" % (d, r, fa[d][r], fb[d][r]))


# ---- reading faults ----

def test_weight_file_truncated_while_scanned():
    src = folder_fixture("trunc")
    ref = reference(folder_fixture("trunc-ref"), "trunc-ref.h5")  # same seed: same values
    out = tmp("trunc.h5")
    victim = os.path.join(src, "ckpt_001", "model.safetensors")
    sc = Scan([src, "-o", out, "--metrics", ND], DELAY)
    sc.wait_mapped(victim)  # ckpt_001 is being analysed: its tensors are read one by one
    os.truncate(victim, os.path.getsize(victim) // 10)
    code, err = sc.finish()
    assert code == 2, (code, err)
    assert re.search(r"error: ckpt_001 failed: \S*ckpt_001/model.safetensors: the file changed or "
                     r"could not be read while it was being analysed", err), err
    assert "4 analysed (3 complete, 0 incomplete, 1 failed)" in err, err
    assert S.statuses(out) == ["complete", "failed", "complete", "complete"]
    rows_equal(out, ref, [0, 2, 3])
    with h5py.File(out, "r") as f, h5py.File(ref, "r") as g:
        assert np.all(np.isnan(f["norms/fro"][1]))  # nothing kept from the zeros it read
        # ckpt_002's previous complete checkpoint is ckpt_000, which is also the reference
        assert np.array_equal(f["drift/prev/rel_fro"][2], g["drift/ref/rel_fro"][2])


def test_unreadable_files():
    """Files that are not regular files are refused without being opened (open(2) on a FIFO
    waits for a writer forever), each with a message naming it; a scan goes on."""
    # a folder source: a FIFO is not a weight file, a dangling symlink is a missing one
    src = folder_fixture("unreadable")
    fifo = os.path.join(src, "ckpt_001", "model.safetensors")
    os.unlink(fifo)
    os.mkfifo(fifo)
    dangling = os.path.join(src, "ckpt_002", "model.safetensors")
    os.unlink(dangling)
    os.symlink(os.path.join(TMP, "nowhere", "model.safetensors"), dangling)
    out = tmp("unreadable.h5")
    code, _, err = S.run(["scan", src, "-o", out, "--metrics", ND], timeout=60)
    assert code == 2, (code, err)
    assert re.search(r"error: ckpt_001 failed: \S*unreadable@ckpt_001: no weights", err), err
    assert re.search(r"ckpt_002 \(step 2\): incomplete: 1 file missing; fetch with: restore "
                     r"\S*ckpt_002/model.safetensors \(the symlink points at a missing file\)", err), err
    assert S.statuses(out) == ["complete", "failed", "incomplete", "complete"]
    # a git repository whose LFS objects are a FIFO and a folder
    repo = tmp("unreadable-lfs")
    S.fixture(repo, "--checkpoints", 3, "--lfs")
    o1, o2 = S.lfs_object(repo, "ckpt_001"), S.lfs_object(repo, "ckpt_002")
    os.unlink(o1)
    os.mkfifo(o1)
    os.unlink(o2)
    os.mkdir(o2)
    out = tmp("unreadable-lfs.h5")
    code, _, err = S.run(["scan", repo, "-o", out, "--quiet", "--metrics", ND], timeout=60)
    assert code == 2, (code, err)
    for ck, obj, size in (("ckpt_001", o1, 0), ("ckpt_002", o2, 4096)):
        assert "error: %s failed: %s:model.safetensors: LFS object %s has %d bytes" \
            % (ck, ck, obj, size) in err, err
    assert S.statuses(out) == ["complete", "failed", "failed"]
    # a hub cache whose refs/ holds a FIFO
    hub = tmp("unreadable-hf")
    S.fixture(hub, "--layout", "hf", "--checkpoints", 2)
    refs = sorted(os.path.join(d, f) for d, _, fs in os.walk(hub) for f in fs if "/refs" in d)
    os.unlink(refs[0])
    os.mkfifo(refs[0])
    code, _, err = S.run(["list", hub], timeout=60)
    assert code == 2 and "%s: not a regular file (a FIFO)" % refs[0] in err, (code, err)
    # files named on the command line: an eval result and a tokenizer that are FIFOs
    S.run(["scan", folder_fixture("unreadable-ok", 2), "-o", tmp("unreadable-ok.h5"), "--quiet",
           "--metrics", ND], check=0)
    f = tmp("eval.json")
    os.mkfifo(f)
    code, _, err = S.run(["evals", "import", tmp("unreadable-ok.h5"), f, "--ckpt", "ckpt_000"],
                         timeout=60)
    assert code == 2 and "%s: not a regular file (a FIFO)" % f in err, (code, err)
    code, _, err = S.run(["tokenize", "--tokenizer", f, "--text", "-"], input="hi", timeout=60)
    assert code == 2 and "%s: not a regular file (a FIFO)" % f in err, (code, err)


def test_oversized_config_keeps_the_run_readable():
    """A 17 MiB config.json (valid JSON, padded) was copied into the run file's root
    attribute 'config', which every reader then refused (CKS_STORE_MAX_STRING is 16 MiB):
    one hostile file made the whole run unreadable. It is now read only up to the
    config.json limit (1 MiB) and left out."""
    src = folder_fixture("bigconfig", 2)
    for k in range(2):
        p = os.path.join(src, "ckpt_%03d" % k, "config.json")
        with open(p, "rb") as f:
            text = f.read()
        with open(p, "wb") as f:
            f.write(text + b" " * (17 << 20))
    out = tmp("bigconfig.h5")
    S.run(["scan", src, "-o", out, "--quiet", "--metrics", ND], check=0)
    with h5py.File(out, "r") as f:
        assert "config" not in f.attrs or len(f.attrs["config"]) < (1 << 20)
    _, js, _ = S.run(["report", out, "--format", "json"], check=0)
    assert __import__("json").loads(js)["checkpoint"]["name"] == "ckpt_001"


# ---- writing faults: ENOSPC ----

def mount_tmpfs(d, size):
    os.makedirs(d, exist_ok=True)
    if os.geteuid() != 0:
        return False
    return subprocess.run(["mount", "-t", "tmpfs", "-o", "size=%d" % size, "tmpfs", d]).returncode == 0


def test_disk_full_scan_and_merge():
    src = folder_fixture("full", 6)
    ref = reference(src, "full-ref.h5")
    size = os.path.getsize(ref)
    d = tmp("small-fs")
    # a commit needs the old file and its copy (the first checkpoints cost the most: the
    # file starts at ~80% of its final size): this fills up after one or two checkpoints
    if not mount_tmpfs(d, size * 17 // 10):
        print("  skipped: mounting a tmpfs needs root")
        return
    try:
        out = os.path.join(d, "RUN.h5")
        code, _, err = S.run(["scan", src, "-o", out, "--metrics", ND])
        assert code == 2 and "No space left on device" in err, (code, err)
        done = S.reported(err)
        assert 0 < len(done) < 6, err
        print("  ENOSPC after %d of 6 checkpoints (tmpfs of %d bytes)" % (len(done), size * 17 // 10))
        with h5py.File(out, "r") as f:  # opens, and holds what was reported finished
            assert S.names(f) == done, (S.names(f), done)
        assert not os.path.exists(out + ".tmp") and not os.path.exists(out + ".lock")
        # room again: --resume finishes the run as if nothing had happened
        subprocess.run(["mount", "-o", "remount,size=%d" % (8 * size), d], check=True)
        S.run(["scan", src, "-o", out, "--resume", "--quiet"], check=0)
        S.same_file(out, ref)
        # merge: the parts are elsewhere, the joined file does not fit; nothing is left behind
        parts = [tmp("full-part%d.h5" % i) for i in range(2)]
        for i, p in enumerate(parts):
            S.run(["scan", src, "-o", p, "--quiet", "--metrics", ND, "--shard", "%d/2" % i], check=0)
        os.unlink(out)
        subprocess.run(["mount", "-o", "remount,size=%d" % (size // 2), d], check=True)
        code, _, err = S.run(["merge"] + parts + ["-o", out])
        assert code == 2 and "No space left on device" in err, (code, err)
        assert os.listdir(d) == [], os.listdir(d)
        subprocess.run(["mount", "-o", "remount,size=%d" % (8 * size), d], check=True)
        S.run(["merge"] + parts + ["-o", out], check=0)
        S.same_file(out, ref)
    finally:
        subprocess.run(["umount", d], check=True)


# ---- writing faults: EIO (simulated) ----

LSAN_SUPP = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support",
                         "lsan-hdf5.supp")


def eio(match, ops, after):
    return {"LD_PRELOAD": SHIM, "CKS_EIO_MATCH": match, "CKS_EIO_OPS": ops, "CKS_EIO_AFTER": str(after),
            # (ASan builds) the shim is not built with ASan, whose runtime then is not first;
            # HDF5 leaks its metadata buffer when a write fails inside H5Fopen (named there)
            "ASAN_OPTIONS": os.environ.get("ASAN_OPTIONS", "") +
            ":verify_asan_link_order=0:fast_unwind_on_malloc=0",
            "LSAN_OPTIONS": "suppressions=" + LSAN_SUPP}


def test_eio_writing_run_file():
    src = folder_fixture("eio", 4)
    ref = reference(src, "eio-ref.h5")
    out = tmp("eio.h5")
    # a new run file whose first sync fails: nothing appears
    code, _, err = S.run(["scan", src, "-o", out, "--metrics", ND], env=eio(out, "fsync", 0))
    assert code == 2 and "Input/output error" in err, (code, err)
    assert not os.path.exists(out) and not os.path.exists(out + ".tmp"), os.listdir(TMP)
    # two checkpoints in, then every way the next transaction can fail: the file keeps them
    S.run(["scan", src, "-o", out, "--quiet", "--metrics", ND, "--branches", "ckpt_00[01]"], check=0)
    before = open(out, "rb").read()
    for ops, after in [("write", 0), ("write", 1), ("write", 2), ("write", 4), ("fsync", 0)]:
        code, _, err = S.run(["scan", src, "-o", out, "--resume"], env=eio(out + ".tmp", ops, after))
        assert code == 2 and "Input/output error" in err, (ops, after, code, err)
        assert open(out, "rb").read() == before, (ops, after)
        assert not os.path.exists(out + ".tmp") and not os.path.exists(out + ".lock"), (ops, after)
    S.run(["scan", src, "-o", out, "--resume", "--quiet"], check=0)
    S.same_file(out, ref)
    # merge: the joined file is written in one transaction; on EIO nothing appears
    parts = [tmp("eio-part%d.h5" % i) for i in range(2)]
    for i, p in enumerate(parts):
        S.run(["scan", src, "-o", p, "--quiet", "--metrics", ND, "--shard", "%d/2" % i], check=0)
    merged = tmp("eio-merged.h5")
    for ops, after in [("write", 2), ("fsync", 0)]:
        code, _, err = S.run(["merge"] + parts + ["-o", merged],
                             env=eio(merged + ".tmp", ops, after))
        assert code == 2 and "Input/output error" in err, (ops, code, err)
        assert not os.path.exists(merged) and not os.path.exists(merged + ".tmp")
    S.run(["merge"] + parts + ["-o", merged], check=0)
    S.same_file(merged, ref)


def test_eio_reading_files():
    """EIO from read(2) (simulated by the shim) on the files ckptscope reads whole: a
    tokenizer, an eval result, a baseline. Weights are mapped, not read: a failed read of
    a mapped page raises SIGBUS, the mechanism test_weight_file_truncated_while_scanned
    provokes for real."""
    src = folder_fixture("eio-read", 2)
    out = tmp("eio-read.h5")
    S.run(["scan", src, "-o", out, "--quiet", "--metrics", ND], check=0)
    tok = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data", "tok", "small.model")
    code, _, err = S.run(["tokenize", "--tokenizer", tok, "--text", "-"], input="hi",
                         env=eio("small.model", "read", 0))
    assert code == 2 and "small.model: read failed: Input/output error" in err, (code, err)
    ev = tmp("eio-eval.json")
    with open(ev, "w") as f:
        f.write('{"results": {"arc": {"acc": 0.5}}}')
    before = open(out, "rb").read()
    code, _, err = S.run(["evals", "import", out, ev, "--ckpt", "ckpt_000"],
                         env=eio("eio-eval.json", "read", 0))
    assert code == 2 and "eio-eval.json: read failed: Input/output error" in err, (code, err)
    assert open(out, "rb").read() == before
    for ck in ("ckpt_000", "ckpt_001"):
        S.run(["evals", "import", out, ev, "--ckpt", ck], check=0)
    S.run(["regress", out, "--write-baseline", tmp("eio-base.json")], check=0)
    code, _, err = S.run(["regress", out, "--baseline", tmp("eio-base.json")],
                         env=eio("eio-base.json", "read", 0))
    assert code == 2 and "eio-base.json: read failed: Input/output error" in err, (code, err)


# ---- signals ----

def test_sigint_sigterm_then_resume():
    src = folder_fixture("sig", 4)
    ref = reference(src, "sig-ref.h5")
    for sig in (signal.SIGINT, signal.SIGTERM):
        out = tmp("sig-%d.h5" % sig)
        sc = Scan([src, "-o", out, "--metrics", ND], DELAY)
        sc.wait_mapped(os.path.join(src, "ckpt_002", "model.safetensors"))  # two finished
        sc.p.send_signal(sig)
        code, err = sc.finish()
        assert code == 2, (sig, code, err)
        assert "interrupted; %s keeps its 2 finished checkpoints: run again with --resume to " \
               "finish" % out in err, err
        assert S.reported(err) == ["ckpt_000", "ckpt_001"], err
        with h5py.File(out, "r") as f:
            assert S.names(f) == ["ckpt_000", "ckpt_001"]
        assert not os.path.exists(out + ".tmp") and not os.path.exists(out + ".lock")
        _, _, err = S.run(["scan", src, "-o", out, "--resume"], check=0)
        assert S.reported(err) == ["ckpt_002", "ckpt_003"], err
        S.same_file(out, ref)


# ---- two writers ----

def test_two_writers_one_run_file():
    src = folder_fixture("lock", 4)
    ref = reference(src, "lock-ref.h5")
    out = tmp("lock.h5")
    sc = Scan([src, "-o", out, "--metrics", ND], DELAY)
    sc.wait_mapped(os.path.join(src, "ckpt_001", "model.safetensors"))  # the file exists
    want = "another ckptscope process, pid %d is writing this run file" % sc.p.pid
    code, _, err = S.run(["scan", src, "-o", out, "--resume"])
    assert code == 2 and want in err, (code, err)
    code, _, err = S.run(["scan", src, "-o", out])  # the lock is taken before anything else
    assert code == 2 and want in err, (code, err)
    evals = tmp("lock-eval.json")
    with open(evals, "w") as f:
        f.write('{"results": {"arc": {"acc": 0.5}}}')
    code, _, err = S.run(["evals", "import", out, evals, "--ckpt", "ckpt_000"])
    assert code == 2 and want in err, (code, err)
    code, err = sc.finish()
    assert code == 0, (code, err)
    S.same_file(out, ref)
    assert not os.path.exists(out + ".lock")


# ---- a checkpoint of many tensors (label slow) ----

def test_many_tensors_in_linear_time():
    """200k one-element tensors per checkpoint (a few MiB; CKS_MAX_TENSORS allows 1M): every
    lookup of a tensor in another checkpoint, or of a column in the run file, was a linear
    search, which made a scan of two such checkpoints take about 6 minutes; it takes about
    3 s. The timeouts fail a quadratic regression."""
    import json
    import struct
    src, n = tmp("many"), 200000
    for k in range(2):
        d = os.path.join(src, "ckpt_%03d" % k)
        os.makedirs(d)
        hdr = {"t%d" % i: {"dtype": "F32", "shape": [1], "data_offsets": [4 * i, 4 * i + 4]}
               for i in range(n)}
        h = json.dumps(hdr).encode()
        h += b" " * ((8 - len(h) % 8) % 8)
        with open(os.path.join(d, "model.safetensors"), "wb") as f:
            f.write(struct.pack("<Q", len(h)) + h + np.arange(k, n + k, dtype="<f4").tobytes())
    out = tmp("many.h5")
    t0 = time.time()
    S.run(["scan", src, "-o", out, "--quiet", "--metrics", ND, "--threads", "1"], check=0, timeout=300)
    took = time.time() - t0
    with h5py.File(out, "r") as f:
        assert f["norms/fro"].shape == (2, n)
        col = {name.decode(): i for i, name in enumerate(f["tensors"]["name"])}
        assert f["norms/fro"][1, col["t7"]] == 8 and f["drift/prev/absmax_delta"][1, col["t5"]] == 1
    t0 = time.time()
    _, js, _ = S.run(["diff", src + "@ckpt_000", src + "@ckpt_001", "--json"], check=0, timeout=300)
    assert len(__import__("json").loads(js)["tensors"]) == n
    print("  scan of 2 x %d tensors: %.1f s, diff: %.1f s" % (n, took, time.time() - t0))


if __name__ == "__main__":
    try:
        S.main([test_weight_file_truncated_while_scanned, test_unreadable_files,
                test_oversized_config_keeps_the_run_readable,
                test_disk_full_scan_and_merge, test_eio_writing_run_file, test_eio_reading_files,
                test_sigint_sigterm_then_resume, test_two_writers_one_run_file,
                test_many_tensors_in_linear_time])
    finally:
        shutil.rmtree(TMP, ignore_errors=True)
