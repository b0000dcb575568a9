"""`ckptscope scan` and `diff` end to end: the run file read with h5py as a user would
(schema, names, attributes, dtypes), its values against `inspect --json` and against
drift computed here with numpy from the safetensors bytes, the closed form of the fixture's
straight line, incomplete/failed checkpoints, --resume, crash points (SIGKILL through the
CKS_TEST_KILL_AT hook) and every rejection path.
usage: test_scan.py CKPTSCOPE CKS_FIXTURE"""
import fcntl
import json
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile

import h5py
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import scan_support as S  # noqa: E402

S.init(sys.argv)
TMP = tempfile.mkdtemp(prefix="cks-scan-")
# the families these tests are about; spectral has its own test (and, until it is built
# in, is not the default)
ND = "norms,drift"


def tmp(name):
    return os.path.join(TMP, name)


def folder_fixture(name, *opts):
    p = tmp(name)
    if not os.path.exists(p):
        S.fixture(p, "--layout", "folder", *opts)
    return p


def ckpt_values(src, ckpt):
    return S.read_safetensors(os.path.join(src, ckpt, "model.safetensors"))


def test_schema_and_values():
    src = folder_fixture("fx4", "--checkpoints", 4)
    out = tmp("schema.h5")
    _, _, err = S.run(["scan", src, "-o", out, "--metrics", "norms,drift", "--threads", "2"], check=0)
    assert S.reported(err) == ["ckpt_000", "ckpt_001", "ckpt_002", "ckpt_003"], err
    with h5py.File(out, "r") as f:
        # root attributes: h5py gives str for variable-length strings
        assert f.attrs["format"] == "ckptscope-run"
        assert f.attrs["format_version"] == 1 and f.attrs["format_version"].dtype.kind == "i"
        assert f.attrs["source"] == os.path.realpath(src)
        assert f.attrs["created_by"].startswith("ckptscope ")
        with open(os.path.join(src, "ckpt_000", "config.json")) as c:
            assert json.loads(f.attrs["config"]) == json.load(c)
        ck = f["checkpoints"]
        assert ck.dtype.names == ("name", "step", "commit", "status", "analysed_at")
        assert ck.dtype["step"] == np.int64
        assert ck.maxshape == (None,) and ck.chunks is not None
        assert S.names(f) == ["ckpt_000", "ckpt_001", "ckpt_002", "ckpt_003"]
        assert list(ck["step"]) == [0, 1, 2, 3]
        assert [s.decode() for s in ck["status"]] == ["complete"] * 4
        assert all(c == b"" for c in ck["commit"])  # plain folders have no commit
        assert all(re.fullmatch(rb"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", a) for a in ck["analysed_at"])
        tn = f["tensors"]
        assert tn.dtype.names == ("name", "layer", "kind", "rows", "cols")
        assert tn.dtype["layer"] == np.int32
        tnames = [n.decode() for n in tn["name"]]
        v0 = ckpt_values(src, "ckpt_000")
        assert sorted(tnames) == sorted(v0), tnames
        for i, n in enumerate(tnames):
            shape = v0[n].shape
            assert tn["rows"][i] == shape[0] and tn["cols"][i] == (shape[1] if len(shape) == 2 else 0)
        assert tn["layer"][tnames.index("model.layers.1.mlp.up_proj.weight")] == 1
        assert tn["kind"][tnames.index("model.layers.1.mlp.up_proj.weight")] == b"up"
        assert tn["layer"][tnames.index("lm_head.weight")] == -1
        T = len(tnames)
        groups = {"norms": ["fro", "rms", "mean", "std", "absmax", "nan", "inf"],
                  "drift/prev": ["rel_fro", "cos", "absmax_delta", "rel_fro_per_kstep"],
                  "drift/ref": ["rel_fro", "cos", "absmax_delta", "rel_fro_per_kstep"]}
        for g, ms in groups.items():
            assert sorted(f[g].keys()) == sorted(ms), (g, list(f[g].keys()))
            for m in ms:
                d = f[g][m]
                assert d.dtype == np.float64 and d.shape == (4, T), (g, m, d.dtype, d.shape)
                assert d.chunks == (1, T) and d.maxshape == (None, None)
                assert d.attrs["description"] and d.attrs["axes"] == "checkpoint,tensor"
        assert f["norms/nan"].attrs["unit"] == "elements" and f["drift/ref/cos"].attrs["unit"] == "1"
        assert f["drift/ref"].attrs["ref"] == "ckpt_000" and f["drift/ref/rel_fro"].attrs["ref"] == "ckpt_000"
        # norms: equal to what `inspect --json` prints for the same checkpoint, and to numpy
        for row, ck_name in enumerate(S.names(f)):
            _, js, _ = S.run(["inspect", "%s@%s" % (src, ck_name), "--json", "--threads", "2"], check=0)
            byname = {t["name"]: t["norms"] for t in json.loads(js)["tensors"]}
            vals = ckpt_values(src, ck_name)
            for m in groups["norms"]:
                S.close(f["norms"][m][row], [byname[n][m] for n in tnames], 0, "norms/%s vs inspect" % m)
            S.close(f["norms/fro"][row], [np.linalg.norm(vals[n]) for n in tnames], 1e-7,
                    "fro vs numpy (norms.c shifts in f32)")
            S.close(f["norms/std"][row], [np.std(vals[n]) for n in tnames], 1e-6, "std vs numpy")
        # drift: numpy on the stored values; prev = previous row, ref = ckpt_000
        vals = [ckpt_values(src, "ckpt_%03d" % k) for k in range(4)]
        for row in range(4):
            for g, r in (("drift/prev", row - 1), ("drift/ref", 0)):
                if r < 0:
                    assert np.all(np.isnan(f[g]["rel_fro"][row])), g
                    continue
                want = np.array([S.drift(vals[row][n], vals[r][n]) for n in tnames])
                S.close(f[g]["rel_fro"][row], want[:, 0], 1e-10, "%s/rel_fro row %d" % (g, row))
                S.close(f[g]["cos"][row], want[:, 1], 1e-12, "%s/cos row %d" % (g, row))
                S.close(f[g]["absmax_delta"][row], want[:, 2], 1e-15, "%s/absmax row %d" % (g, row))
                if row != r:
                    S.close(f[g]["rel_fro_per_kstep"][row], want[:, 0] * 1000 / (row - r), 1e-10, g)
        # the reference against itself: exactly no drift
        assert np.all(f["drift/ref/rel_fro"][0] == 0) and np.all(f["drift/ref/cos"][0] == 1)
        assert np.all(np.isnan(f["drift/ref/rel_fro_per_kstep"][0]))


def test_straight_line_closed_form():
    # W_k = W_0 + t_k D (tests/support/fixture.h; t_k = k * 100 / 1000, step k), stored
    # exactly in F64. Against ckpt_000: rel_fro(k) = t_k ||D|| / ||W_0||, so
    # rel_fro_per_kstep is one constant per tensor and rel_fro(3) = 3 rel_fro(1). Against
    # the previous checkpoint: rel_fro_per_kstep(k) * ||W_{k-1}|| = 1000 * 0.1 ||D||, the
    # same as rel_fro_per_kstep(k) * ||W_0|| against ckpt_000.
    src = folder_fixture("fx64", "--checkpoints", 4, "--dtype", "f64")
    out = tmp("line.h5")
    S.run(["scan", src, "-o", out, "--metrics", "drift", "--quiet"], check=0)
    with h5py.File(out, "r") as f:
        per = f["drift/ref/rel_fro_per_kstep"][1:]
        S.close(per, np.broadcast_to(per[0], per.shape), 1e-9, "rel_fro_per_kstep constant")
        S.close(f["drift/ref/rel_fro"][3], 3 * f["drift/ref/rel_fro"][1], 1e-9, "rel_fro(3) = 3 rel_fro(1)")
        # ||W_k|| from numpy: norms widens to f32 (1e-7), this needs the f64 values
        tnames = [n.decode() for n in f["tensors"]["name"]]
        vals = [ckpt_values(src, "ckpt_%03d" % k) for k in range(4)]
        fro = np.array([[np.linalg.norm(v[n]) for n in tnames] for v in vals])
        d_prev = f["drift/prev/rel_fro_per_kstep"][1:] * fro[:-1]
        d_ref = f["drift/ref/rel_fro_per_kstep"][1:] * fro[0]
        S.close(d_prev, d_ref, 1e-9, "100 ||D|| from both references")


def test_every_branches_ref():
    src = folder_fixture("fx6", "--checkpoints", 6)
    out = tmp("every.h5")
    S.run(["scan", src, "-o", out, "--every", "2", "--ref", "ckpt_004", "--quiet"], check=0)
    vals = {k: ckpt_values(src, "ckpt_%03d" % k) for k in (0, 2, 4)}
    with h5py.File(out, "r") as f:
        assert S.names(f) == ["ckpt_000", "ckpt_002", "ckpt_004"]
        tnames = [n.decode() for n in f["tensors"]["name"]]
        assert f["drift/ref"].attrs["ref"] == "ckpt_004"
        # prev of ckpt_004 is the previous checkpoint scanned, ckpt_002
        want = [S.drift(vals[4][n], vals[2][n])[0] for n in tnames]
        S.close(f["drift/prev/rel_fro"][2], want, 1e-10, "prev with --every")
        want = [S.drift(vals[0][n], vals[4][n])[0] for n in tnames]
        S.close(f["drift/ref/rel_fro"][0], want, 1e-10, "--ref later checkpoint")
        # DESIGN's formula as written: negative when the reference is later
        assert np.all(f["drift/ref/rel_fro_per_kstep"][0] < 0)
        assert np.all(f["drift/ref/rel_fro"][2] == 0)
    out = tmp("branches.h5")
    S.run(["scan", src, "-o", out, "--branches", "ckpt_00[135]", "--quiet"], check=0)
    with h5py.File(out, "r") as f:
        assert S.names(f) == ["ckpt_001", "ckpt_003", "ckpt_005"]
        assert f["drift/ref"].attrs["ref"] == "ckpt_001"


def test_incomplete_and_failed():
    src = tmp("lfs4")
    S.fixture(src, "--checkpoints", 5, "--lfs")
    os.unlink(S.lfs_object(src, "ckpt_001", "model.safetensors"))
    out = tmp("incomplete.h5")
    _, _, err = S.run(["scan", src, "-o", out], check=0)
    assert re.search(r"ckpt_001 \(step 1\): incomplete: 1 file missing; fetch with: git .*lfs fetch "
                     r"origin ckpt_001 --include=model.safetensors", err), err
    with h5py.File(out, "r") as f:
        st = [s.decode() for s in f["checkpoints"]["status"]]
        assert st == ["complete", "incomplete", "complete", "complete", "complete"], st
        assert np.all(np.isnan(f["norms/fro"][1])) and np.all(np.isnan(f["drift/ref/rel_fro"][1]))
        # ckpt_002's previous complete checkpoint is ckpt_000: its drift/prev is drift/ref
        assert np.array_equal(f["drift/prev/rel_fro"][2], f["drift/ref/rel_fro"][2])
        assert np.all(f["drift/prev/rel_fro_per_kstep"][2] * 2 == f["drift/prev/rel_fro"][2] * 1000)
    # a checkpoint whose file is damaged fails; the others are analysed, exit status 2
    src = tmp("bad4")
    S.fixture(src, "--layout", "folder", "--checkpoints", 4)
    st = os.path.join(src, "ckpt_002", "model.safetensors")
    with open(st, "r+b") as fh:
        fh.truncate(os.path.getsize(st) // 2)
    out = tmp("failed.h5")
    _, _, err = S.run(["scan", src, "-o", out, "--quiet"], check=2)
    assert re.search(r"error: ckpt_002 failed: .*ckpt_002.*model.safetensors", err), err
    with h5py.File(out, "r") as f:
        assert [s.decode() for s in f["checkpoints"]["status"]] == ["complete", "complete", "failed", "complete"]
        v1, v3 = ckpt_values(src, "ckpt_001"), ckpt_values(src, "ckpt_003")
        tnames = [n.decode() for n in f["tensors"]["name"]]
        S.close(f["drift/prev/rel_fro"][3], [S.drift(v3[n], v1[n])[0] for n in tnames], 1e-10,
                "prev skips the failed checkpoint")


def test_resume_skips_and_redoes():
    src = tmp("git4")
    S.fixture(src, "--checkpoints", 4)
    out = tmp("resume.h5")
    S.run(["scan", src, "-o", out, "--quiet", "--metrics", ND], check=0)
    ref = tmp("resume-ref.h5")
    shutil.copy(out, ref)
    _, _, err = S.run(["scan", src, "-o", out], check=2)
    assert "exists: pass --resume" in err, err
    S.same_file(out, ref)
    _, _, err = S.run(["scan", src, "-o", out, "--resume"], check=0)
    assert err.count(": skipped") == 4 and "0 analysed" in err and "4 skipped" in err, err
    with h5py.File(out, "r") as a, h5py.File(ref, "r") as b:
        assert list(a["checkpoints"]["analysed_at"]) == list(b["checkpoints"]["analysed_at"])
    # ckpt_001 gets a new commit: it is analysed again in its row, and so is ckpt_002,
    # whose drift/prev was measured against it; ckpt_003 is skipped
    commit = S.git_recommit(src, "ckpt_001")
    _, _, err = S.run(["scan", src, "-o", out, "--resume"], check=0)
    assert S.reported(err) == ["ckpt_001", "ckpt_002"], err
    assert "ckpt_003 (step 3): already complete" in err, err
    with h5py.File(out, "r") as f:
        assert S.names(f) == ["ckpt_000", "ckpt_001", "ckpt_002", "ckpt_003"]
        assert f["checkpoints"]["commit"][1].decode() == commit
    with h5py.File(out, "r") as a, h5py.File(ref, "r") as b:
        for g in ("norms/fro", "drift/prev/rel_fro", "drift/ref/cos"):  # same content, same values
            assert np.array_equal(a[g][()], b[g][()], equal_nan=True), g
    # a resumed scan keeps the file's metric families and reference
    _, _, err = S.run(["scan", src, "-o", out, "--resume", "--metrics", "norms"], check=2)
    assert "holds the metric families 'norms,drift'" in err, err
    _, _, err = S.run(["scan", src, "-o", out, "--resume", "--ref", "ckpt_002"], check=2)
    assert "measures drift against 'ckpt_000'" in err, err


KILL_POINTS = [
    # (point, n, checkpoints the file must hold, checkpoints reported finished)
    ("opened", 1, 0, 0),      # the new file exists, nothing analysed yet
    ("tensor", 5, 0, 0),      # in the middle of the first checkpoint
    ("analysed", 2, 1, 1),    # second checkpoint computed, nothing written
    ("begin", 3, 2, 2),       # before the copy
    ("copied", 2, 1, 1),      # copy made, nothing written to it
    ("written", 3, 2, 2),     # rows written to the copy, not committed
    ("closed", 4, 3, 3),      # copy complete and synced, not renamed
    ("renamed", 2, 2, 1),     # renamed: the second checkpoint is in, not reported yet
    ("committed", 5, 5, 4),   # the last one committed, not reported
]


def test_kill_points_and_resume():
    src = tmp("git5")
    S.fixture(src, "--checkpoints", 5)
    ref = tmp("kill-ref.h5")
    S.run(["scan", src, "-o", ref, "--quiet", "--metrics", ND], check=0)
    for point, n, hold, rep in KILL_POINTS:
        out = tmp("kill-%s.h5" % point)
        code, _, err = S.run(["scan", src, "-o", out, "--metrics", ND],
                             env={"CKS_TEST_KILL_AT": "%s:%d" % (point, n)})
        assert code == -signal.SIGKILL, (point, code, err)
        done = S.reported(err)
        assert len(done) == rep, (point, done)
        with h5py.File(out, "r") as f:  # opens, and holds exactly what was finished
            assert S.names(f) == ["ckpt_%03d" % k for k in range(hold)], (point, S.names(f))
            assert all(s == b"complete" for s in f["checkpoints"]["status"])
        _, _, err = S.run(["scan", src, "-o", out, "--resume", "--quiet"], check=0)
        S.same_file(out, ref)
        assert not os.path.exists(out + ".tmp") and not os.path.exists(out + ".lock"), point


def test_random_kills_larger_run():
    # kills at arbitrary moments (not only the hook's points), on a run big enough that a
    # scan takes a while
    src = tmp("big")
    S.fixture(src, "--layout", "folder", "--checkpoints", 8, "--hidden", 256, "--intermediate", 688,
              "--vocab", 2048, "--heads", 8, "--kv-heads", 8)
    ref = tmp("big-ref.h5")
    S.run(["scan", src, "-o", ref, "--quiet", "--threads", "1", "--metrics", ND], check=0)
    rng = np.random.default_rng(7)
    seen = []
    for i in range(8):
        out = tmp("big-%d.h5" % i)
        p = subprocess.Popen([S.CKPTSCOPE, "scan", src, "-o", out, "--threads", "1", "--metrics", ND],
                             stderr=subprocess.PIPE, text=True)
        try:
            p.wait(timeout=float(rng.uniform(0.003, 0.25)))  # a whole scan takes ~0.25 s
        except subprocess.TimeoutExpired:
            p.send_signal(signal.SIGKILL)
        err = p.communicate()[1]
        done = S.reported(err)
        if os.path.exists(out):
            with h5py.File(out, "r") as f:
                held = S.names(f)
            assert held[:len(done)] == done and len(held) - len(done) <= 1, (done, held)
        else:
            held = []
            assert not done
        seen.append("%d/%d" % (len(done), len(held)))
        S.run(["scan", src, "-o", out, "--resume", "--quiet", "--threads", "1", "--metrics", ND],
              check=0)
        S.same_file(out, ref)
    print("  killed with reported/held checkpoints:", " ".join(seen))


def test_rejections():
    src = folder_fixture("fx4", "--checkpoints", 4)
    # run files of another tool or another format version: refused, left alone
    other = tmp("other.h5")
    with h5py.File(other, "w") as f:
        f.attrs["format"] = "weightwatcher"
        f["x"] = np.arange(3)
    before = open(other, "rb").read()
    _, _, err = S.run(["scan", src, "-o", other, "--resume"], check=2)
    assert "not a ckptscope run file (format is 'weightwatcher'" in err, err
    assert open(other, "rb").read() == before
    v2 = tmp("v2.h5")
    S.run(["scan", src, "-o", v2, "--quiet"], check=0)
    with h5py.File(v2, "a") as f:
        f.attrs["format_version"] = 2
    _, _, err = S.run(["scan", src, "-o", v2, "--resume"], check=2)
    assert "format_version 2; this ckptscope reads version 1" in err, err
    notes = tmp("notes.txt")
    open(notes, "w").write("hello")
    _, _, err = S.run(["scan", src, "-o", notes, "--resume"], check=2)
    assert "not a ckptscope run file (not HDF5)" in err, err
    # options
    for args, words in ((["--metrics", "norms,foo"], "unknown metric family 'foo' in --metrics (known: norms"),
                        (["--metrics", ""], "--metrics is empty"),
                        (["--every", "0"], "--every must be an integer in [1, 100000], not '0'"),
                        (["--every", "x"], "--every must be an integer"),
                        (["--ref", "ckpt_999"], "--ref: %s: no checkpoint named 'ckpt_999'" % src),
                        (["--threads", "-1"], "--threads must be an integer")):
        out = tmp("opt.h5")
        _, _, err = S.run(["scan", src, "-o", out] + args, check=2)
        assert words in err, (args, err)
        assert not os.path.exists(out), args  # refused before anything is written
    _, _, err = S.run(["scan", src], check=2)
    assert "-o RUN.h5" in err
    _, _, err = S.run(["scan", tmp("nowhere"), "-o", tmp("x.h5")], check=2)
    assert "nowhere" in err
    code, out, _ = S.run(["scan", "--help"], check=0)
    assert "Exit status" in out and "--resume" in out


def test_spectral_family():
    src = folder_fixture("fx4", "--checkpoints", 4)
    S.run(["scan", src, "-o", tmp("spec.h5"), "--metrics", "spectral", "--quiet"], check=0)
    with h5py.File(tmp("spec.h5"), "r") as f:
        tnames = [n.decode() for n in f["tensors"]["name"]]
        assert "sigma_max" in f["spectral"] and f["spectral/sigma_max"].shape == (4, len(tnames))
        vals = ckpt_values(src, "ckpt_002")
        for i, n in enumerate(tnames):
            if vals[n].ndim == 2:
                sv = np.linalg.svd(vals[n], compute_uv=False)
                S.close(f["spectral/sigma_max"][2, i], sv[0], 1e-4, n)
                top = f["spectra"][n][2]
                k = min(len(sv), len(top))
                S.close(top[:k], (sv ** 2)[:k], 1e-4, "spectra " + n)
            else:
                assert np.isnan(f["spectral/sigma_max"][2, i])


def test_spectral_undefined_is_nan():
    """Where a statistic is undefined the run file holds NaN, as `inspect --json` holds
    null, decided once (metrics/spectral.h's cks_spectral_value) for both. A 6x5 matrix has
    a spectrum but min(m, n) < 10 leaves no power-law fit (DESIGN §3: alpha, xmin, ks, tail
    NaN); an all-NaN 20x20 matrix has no spectrum (every value NaN). num_spikes of the 6x5
    one is counted here with numpy from the Marchenko-Pastur edge of DESIGN §3."""
    src = tmp("undefined")
    os.makedirs(os.path.join(src, "ckpt_000"))
    model = folder_fixture("fx4", "--checkpoints", 4)  # a valid config.json: inspect reads it
    shutil.copy(os.path.join(model, "ckpt_000", "config.json"), os.path.join(src, "ckpt_000"))
    rng = np.random.default_rng(5)
    small = rng.standard_normal((6, 5))
    S.write_safetensors(os.path.join(src, "ckpt_000", "model.safetensors"),
                        {"small.weight": small, "nan.weight": np.full((20, 20), np.nan)})
    out = tmp("undefined.h5")
    S.run(["scan", src, "-o", out, "--metrics", "spectral", "--quiet"], check=0)
    _, js, _ = S.run(["inspect", src + "@ckpt_000", "--spectral", "--json"], check=0)
    shown = {t["name"]: t["spectral"] for t in json.loads(js)["tensors"]}
    w = small.astype(np.float32).astype(np.float64)
    lam = np.linalg.svd(w, compute_uv=False) ** 2
    edge = np.sum(w * w) / w.size * (np.sqrt(6) + np.sqrt(5)) ** 2
    with h5py.File(out, "r") as f:
        names = [n.decode() for n in f["tensors"]["name"]]
        i, j = names.index("small.weight"), names.index("nan.weight")
        for m in f["spectral"]:
            got_small, got_nan = f["spectral"][m][0, i], f["spectral"][m][0, j]
            # the run file and inspect agree, NaN being null
            for got, t in ((got_small, "small.weight"), (got_nan, "nan.weight")):
                want = shown[t][m]
                assert (np.isnan(got) and want is None) or got == want, (m, t, got, want)
            assert np.isnan(got_nan), (m, got_nan)
        for m in ("alpha", "xmin", "ks", "tail", "alpha_weighted"):
            assert np.isnan(f["spectral"][m][0, i]), m
        assert f["spectral/num_spikes"][0, i] == np.sum(lam > edge)
        S.close(f["spectral/mp_softrank"][0, i], edge / lam[0], 1e-5, "mp_softrank")
        S.close(f["spectral/sigma_max"][0, i], np.sqrt(lam[0]), 1e-5, "sigma_max")
    assert shown["small.weight"]["tail"] is None and shown["nan.weight"]["num_spikes"] is None
    assert isinstance(shown["small.weight"]["num_spikes"], int)


def test_lock_refuses_second_writer():
    src = folder_fixture("fx4", "--checkpoints", 4)
    out = tmp("locked.h5")
    S.run(["scan", src, "-o", out, "--quiet"], check=0)
    before = open(out, "rb").read()
    with open(out + ".lock", "w") as lk:  # as a running scan holds it
        fcntl.flock(lk, fcntl.LOCK_EX)
        lk.write("4242\n")
        lk.flush()
        _, _, err = S.run(["scan", src, "-o", out, "--resume"], check=2)
        assert "another ckptscope process, pid 4242 is writing this run file" in err, err
        _, _, err = S.run(["scan", src, "-o", tmp("other-locked.h5")], check=0)  # others are free
    assert open(out, "rb").read() == before
    os.unlink(out + ".lock")


def test_read_only_and_full_disk():
    src = folder_fixture("fx4", "--checkpoints", 4)
    d = tmp("ro")
    os.mkdir(d)
    out = os.path.join(d, "RUN.h5")
    S.run(["scan", src, "-o", out, "--quiet", "--every", "2"], check=0)
    before = open(out, "rb").read()
    mounted = False
    if os.geteuid() == 0:
        mounted = subprocess.run(["mount", "--bind", d, d]).returncode == 0 and \
            subprocess.run(["mount", "-o", "remount,bind,ro", d]).returncode == 0
        why = "Read-only file system"
    else:
        os.chmod(d, 0o555)
        why = "Permission denied"
    try:
        if os.geteuid() != 0 or mounted:
            _, _, err = S.run(["scan", src, "-o", out, "--resume"], check=2)
            assert "cannot create the lock file %s.lock: %s" % (out, why) in err, err
            _, _, err = S.run(["scan", src, "-o", os.path.join(d, "NEW.h5")], check=2)
            assert why in err, err
            assert open(out, "rb").read() == before
    finally:
        if mounted:
            subprocess.run(["umount", d], check=True)
        os.chmod(d, 0o755)
    # a full disk while resuming: simulated with RLIMIT_FSIZE (SIGXFSZ ignored -> EFBIG),
    # which needs no privileges; test_store covers ENOSPC on a real tmpfs
    size = os.path.getsize(out)

    def limit():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (size, resource.RLIM_INFINITY))  # no growth
    p = subprocess.run([S.CKPTSCOPE, "scan", src, "-o", out, "--resume", "--quiet"],
                       capture_output=True, text=True, preexec_fn=limit)
    assert p.returncode == 2 and "File too large" in p.stderr, (p.returncode, p.stderr)
    assert open(out, "rb").read() == before
    with h5py.File(out, "r") as f:
        assert S.names(f) == ["ckpt_000", "ckpt_002"]


def test_diff():
    src = folder_fixture("fx4", "--checkpoints", 4)
    _, js, _ = S.run(["diff", src + "@ckpt_000", src + "@ckpt_002", "--json"], check=0)
    doc = json.loads(js)
    assert doc["a"]["name"] == "ckpt_000" and doc["b"]["step"] == 2 and doc["a"]["commit"] is None
    a, b = ckpt_values(src, "ckpt_000"), ckpt_values(src, "ckpt_002")
    assert sorted(t["name"] for t in doc["tensors"]) == sorted(a)
    assert doc["only_in_a"] == [] and doc["only_in_b"] == []
    for t in doc["tensors"]:
        assert set(t) == {"name", "rel_fro", "cos", "absmax_delta"}
        want = S.drift(b[t["name"]], a[t["name"]])
        S.close([t["rel_fro"], t["cos"], t["absmax_delta"]], want, 1e-10, t["name"])
    # one side lacks a tensor, has an extra one and a reshaped one
    alt = tmp("alt")
    os.makedirs(os.path.join(alt, "ckpt_009"))
    shutil.copy(os.path.join(src, "ckpt_002", "config.json"), os.path.join(alt, "ckpt_009"))
    t2 = dict(b)
    del t2["model.norm.weight"]
    t2["extra.weight"] = np.ones(3)
    t2["lm_head.weight"] = t2["lm_head.weight"].T.copy()
    S.write_safetensors(os.path.join(alt, "ckpt_009", "model.safetensors"), t2)
    _, js, _ = S.run(["diff", src + "@ckpt_000", alt + "@ckpt_009", "--json",
                      "--tensors", "*"], check=0)
    doc = json.loads(js)
    assert doc["only_in_a"] == ["model.norm.weight"] and doc["only_in_b"] == ["extra.weight"], doc
    lm = [t for t in doc["tensors"] if t["name"] == "lm_head.weight"][0]
    assert lm["rel_fro"] is None and "shape 64x256 differs from the reference's 256x64" in lm["error"], lm
    _, text, _ = S.run(["diff", src + "@ckpt_000", alt + "@ckpt_009"], check=0)
    assert "only in ckpt_000: model.norm.weight" in text and "only in ckpt_009: extra.weight" in text
    rows = [l for l in text.splitlines() if l.startswith("model.layers.0.")]
    assert len({l.index(l.split()[1]) for l in rows}) == 1, rows  # aligned columns
    _, _, err = S.run(["diff", src + "@ckpt_000", src + "@ckpt_002", "--tensors", "nope*"], check=2)
    assert "no tensor matches 'nope*'" in err
    _, _, err = S.run(["diff", src + "@ckpt_000"], check=2)
    assert "expected SOURCE@A and SOURCE@B" in err


if __name__ == "__main__":
    try:
        S.main([test_schema_and_values, test_straight_line_closed_form, test_every_branches_ref,
                test_incomplete_and_failed, test_resume_skips_and_redoes,
                test_kill_points_and_resume, test_random_kills_larger_run, test_rejections,
                test_spectral_family, test_spectral_undefined_is_nan,
                test_lock_refuses_second_writer,
                test_read_only_and_full_disk, test_diff])
    finally:
        if not os.environ.get("CKS_KEEP_TMP"):
            shutil.rmtree(TMP, ignore_errors=True)
