#!/usr/bin/python3
"""CLI tests of hf://ORG/NAME sources against the loopback stand-in of the hub
(hub_server.py) serving a git repository made by cks-fixture: `list`, `inspect`, `diff`
and `ppl` through the hub equal the same commands on the repository on disk (the
independent reference: libgit2 reading the objects git wrote), the cache left behind has
huggingface_hub's layout (checked with hashlib and os.readlink) and reads back as an
hf-cache source, the token never reaches the storage host, and every fault is a clear
error with exit status 2, nothing written outside the cache, within a time limit.

usage: test_hub.py CKPTSCOPE CKS_FIXTURE CKS_HUB_WALK [TEST...]
"""
import hashlib
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from hub_server import Hub  # noqa: E402

EXE = FIXTURE = WALK = None
TOKEN = "hf_test_token_0123"
TIMEOUT = 120  # seconds for any one command: a hang fails the test


def tree_state(root, skip):
    """Paths, kinds and sizes of everything under root except the folder skip."""
    out = []
    for d, dirs, files in os.walk(root):
        dirs[:] = sorted(x for x in dirs if os.path.join(d, x) != skip)
        for n in sorted(files):
            p = os.path.join(d, n)
            st = os.lstat(p)
            out.append((p, st.st_mode, st.st_size, st.st_mtime_ns))
    return out


class HubTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="cks-hub-")
        cls.repo = os.path.join(cls.tmp, "repo")
        subprocess.run([FIXTURE, cls.repo, "--checkpoints", "3", "--lfs", "--shards", "2",
                        "--std", "0.3", "--eps", "1e-3"], check=True)
        cls.hub = Hub(cls.repo, "org/tiny", TOKEN, page_size=2)
        cls.n = 0
        import scan_support
        scan_support.init([None, EXE, FIXTURE])

    @classmethod
    def tearDownClass(cls):
        cls.hub.close()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def setUp(self):
        type(self).n += 1
        self.home = os.path.join(self.tmp, "home%d" % self.n)
        os.makedirs(self.home)
        self.cache = os.path.join(self.home, "hf", "hub")
        self.hub.faults = {}
        self.hub.retry_after = 1
        self.hub.delay = 0
        with self.hub.lock:
            self.hub.log.clear()
            self.hub.violations.clear()
            self.hub.max_in_flight = 0

    def tearDown(self):
        self.assertEqual(self.hub.violations, [], "the token reached the storage host")

    def env(self, **kw):
        e = {k: v for k, v in os.environ.items()
             if not k.lower().endswith("_proxy") and not k.startswith("HF_")}
        e.update(HOME=self.home, HF_HOME=os.path.join(self.home, "hf"), HF_ENDPOINT=self.hub.url,
                 HF_TOKEN=TOKEN, HF_HUB_DOWNLOAD_TIMEOUT="3", no_proxy="*", NO_PROXY="*")
        for k, v in kw.items():
            if v is None:
                e.pop(k, None)
            else:
                e[k] = v
        return e

    def run_cks(self, *args, expect=0, env=None):
        p = subprocess.run([EXE, *args], capture_output=True, text=True, timeout=TIMEOUT,
                           env=env or self.env())
        if expect is not None and p.returncode != expect:
            raise AssertionError("ckptscope %s: exit %d, expected %d\nstdout: %s\nstderr: %s" % (
                " ".join(args), p.returncode, expect, p.stdout[-2000:], p.stderr[-2000:]))
        return p

    def json(self, *args, env=None):
        return json.loads(self.run_cks(*args, "--json", env=env).stdout)

    def fails(self, args, *needles, env=None):
        """Exit 2, one line on stderr naming what went wrong, nothing outside the cache."""
        before = tree_state(self.tmp, self.cache)
        p = self.run_cks(*args, expect=2, env=env)
        self.assertEqual(p.stdout, "")
        lines = [l for l in p.stderr.splitlines() if l.strip()]
        self.assertEqual(len(lines), 1, p.stderr)
        for n in needles:
            self.assertIn(n, p.stderr)
        self.assertNotIn("s3cr3t", p.stderr, "a signed URL's query was printed")
        self.assertEqual(tree_state(self.tmp, self.cache), before,
                         "something was written outside the cache")
        return p.stderr

    def snapshot_dir(self, branch):
        commit = self.hub.repo.branches[branch]
        return os.path.join(self.cache, "models--org--tiny", "snapshots", commit)

    def check_cache(self, branch, weights_only=False):
        """huggingface_hub's layout: relative links to blobs named by their hash, the ref.
        weights_only: only the LFS files must be there (scan reads one config.json)."""
        root = os.path.join(self.cache, "models--org--tiny")
        commit = self.hub.repo.branches[branch]
        with open(os.path.join(root, "refs", branch)) as f:
            self.assertEqual(f.read(), commit)
        for e in self.hub.repo.trees[commit]:
            if e["type"] != "file":
                continue
            link = os.path.join(root, "snapshots", commit, e["path"])
            if weights_only and "lfs" not in e and not os.path.lexists(link):
                continue
            target = os.readlink(link)
            self.assertEqual(target, "../" * (2 + e["path"].count("/")) + "blobs/" +
                             (e["lfs"]["oid"] if "lfs" in e else e["oid"]))
            with open(link, "rb") as f:
                data = f.read()
            if "lfs" in e:
                self.assertEqual(hashlib.sha256(data).hexdigest(), e["lfs"]["oid"])
            else:
                git_id = hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()
                self.assertEqual(git_id, e["oid"])
        self.assertEqual([n for n in os.listdir(os.path.join(root, "blobs"))
                          if n.endswith(".incomplete")], [])

    def blobs(self):
        d = os.path.join(self.cache, "models--org--tiny", "blobs")
        return sorted(os.listdir(d)) if os.path.isdir(d) else []

    # ---- equal to the repository on disk ----

    def test_list_equals_git_and_downloads_nothing(self):
        hub = self.json("list", "hf://org/tiny")
        disk = self.json("list", self.repo)
        self.assertEqual(hub["kind"], "hf-hub")
        self.assertEqual(disk["kind"], "git")
        self.assertEqual(hub["checkpoints"], disk["checkpoints"])
        self.assertEqual(self.hub.requests(contains="/resolve/"), [])
        self.assertEqual(self.hub.requests("storage"), [])
        self.assertFalse(os.path.exists(self.cache), "list wrote to the cache")
        # pages of two entries: every listing took several requests joined through Link
        self.assertGreater(len(self.hub.requests(contains="cursor=")), 0)
        # the text table says the kind
        self.assertIn("hf-hub", self.run_cks("list", "hf://org/tiny").stdout)

    def test_inspect_diff_equal_git_and_cache_layout(self):
        self.hub.delay = 0.3  # the two weight shards overlap when fetched at once
        a = self.json("inspect", "hf://org/tiny@ckpt_001")
        b = self.json("inspect", self.repo + "@ckpt_001")
        self.assertEqual(a, b)
        self.check_cache("ckpt_001")
        self.assertGreater(len(self.hub.requests("storage")), 0, "LFS files came from storage")
        self.assertGreaterEqual(self.hub.max_in_flight, 2, "several files in flight")
        self.hub.delay = 0
        d1 = self.json("diff", "hf://org/tiny@ckpt_000", "hf://org/tiny@ckpt_002")
        d2 = self.json("diff", self.repo + "@ckpt_000", self.repo + "@ckpt_002")
        self.assertEqual(d1, d2)
        # the cache is an hf-cache source with the same checkpoints, complete
        root = os.path.join(self.cache, "models--org--tiny")
        cached = self.json("list", root, "--branches", "*")
        disk = self.json("list", self.repo)
        self.assertEqual(cached["kind"], "hf-cache")
        self.assertEqual([c["name"] for c in cached["checkpoints"]],
                         ["ckpt_000", "ckpt_001", "ckpt_002"])
        for c, g in zip(cached["checkpoints"], disk["checkpoints"]):
            for k in ("name", "step", "commit", "status", "format", "files", "bytes"):
                self.assertEqual(c[k], g[k], k)
        self.assertEqual(self.json("inspect", root + "@ckpt_001"), b)
        # used as is: a second inspect fetches no file, offline too
        with self.hub.lock:
            self.hub.log.clear()
        self.assertEqual(self.json("inspect", "hf://org/tiny@ckpt_001"), b)
        self.assertEqual(self.hub.requests(contains="/resolve/"), [])
        off = self.env(HF_HUB_OFFLINE="1", HF_ENDPOINT="http://127.0.0.1:9")
        self.assertEqual(self.json("inspect", "hf://org/tiny@ckpt_001", env=off), b)
        lst = self.json("list", "hf://org/tiny", env=off)
        self.assertEqual(lst["kind"], "hf-hub")
        self.assertEqual(len(lst["checkpoints"]), 3)

    def test_ppl_equals_git(self):
        toks = os.path.join(self.tmp, "toks.u16")
        with open(toks, "wb") as f:
            f.write(struct.pack("<200H", *[(i * 37) % 256 for i in range(200)]))
        a = self.json("ppl", "hf://org/tiny@ckpt_002", "--tokens", toks, "--ctx", "32")
        b = self.json("ppl", self.repo + "@ckpt_002", "--tokens", toks, "--ctx", "32")
        self.assertEqual(a["sets"], b["sets"])
        self.assertEqual(a["checkpoint"], b["checkpoint"])
        self.check_cache("ckpt_002")

    def test_scan_equals_git_dataset_by_dataset(self):
        """scan reads hf:// through the same source API (each checkpoint's files fetched
        before its task, the next one's meanwhile): the run file equals the scan of the
        repository."""
        import h5py
        from scan_support import same_file
        a = os.path.join(self.home, "hub.h5")
        b = os.path.join(self.home, "disk.h5")
        self.run_cks("scan", "hf://org/tiny", "-o", a, "--metrics", "norms,spectral,drift",
                     "--quiet")
        self.run_cks("scan", self.repo, "-o", b, "--metrics", "norms,spectral,drift", "--quiet")
        with h5py.File(a, "r") as f:
            self.assertEqual(f.attrs["source"], "hf://org/tiny")
        with h5py.File(b, "r+") as f:
            f.attrs["source"] = "hf://org/tiny"  # the one attribute that names the source
        same_file(a, b)
        for branch in ("ckpt_000", "ckpt_001", "ckpt_002"):
            self.check_cache(branch, weights_only=True)

    def test_cache_from_another_tool_is_used_as_is(self):
        # a snapshot as transformers leaves it: a regular file in place of a link
        commit = self.hub.repo.branches["ckpt_000"]
        snap = self.snapshot_dir("ckpt_000")
        os.makedirs(snap)
        cfg = next(e for e in self.hub.repo.trees[commit] if e["path"] == "config.json")
        with open(os.path.join(snap, "config.json"), "wb") as f:
            f.write(self.hub.repo.small[cfg["oid"]])
        self.json("inspect", "hf://org/tiny@ckpt_000")
        self.assertEqual(self.hub.requests(contains="config.json"), [])
        self.assertFalse(os.path.islink(os.path.join(snap, "config.json")))

    def test_token_from_hf_home_file(self):
        os.makedirs(os.path.join(self.home, "hf"))
        with open(os.path.join(self.home, "hf", "token"), "w") as f:
            f.write(TOKEN + "\n")
        self.json("list", "hf://org/tiny", env=self.env(HF_TOKEN=None))

    # ---- the network misbehaves, and recovers ----

    def test_retry_after_503(self):
        self.hub.faults = {"503": {"/refs": 2, "/resolve/": 1}}
        p = self.run_cks("inspect", "hf://org/tiny@ckpt_001", "--json")
        self.assertEqual(len(self.hub.requests(contains="/refs")), 3)
        self.assertEqual(json.loads(p.stdout), self.json("inspect", self.repo + "@ckpt_001"))

    def test_retries_run_out(self):
        self.hub.retry_after = 0
        self.hub.faults = {"503": {"/refs": -1}}
        self.fails(["list", "hf://org/tiny"], "hf://org/tiny", "HTTP 503", "5 tries")
        self.assertEqual(len(self.hub.requests(contains="/refs")), 5)

    def test_cut_connection_resumes_with_range(self):
        commit = self.hub.repo.branches["ckpt_001"]
        lfs = [e["lfs"]["oid"] for e in self.hub.repo.trees[commit] if "lfs" in e]
        self.hub.faults = {"cut": {lfs[0]: 1}}
        self.json("inspect", "hf://org/tiny@ckpt_001")
        ranges = [r for r in self.hub.requests("storage", lfs[0]) if r[3]]
        self.assertEqual(len(ranges), 1, self.hub.requests("storage"))
        size = os.path.getsize(self.hub.repo.lfs[lfs[0]])
        self.assertEqual(ranges[0][3], "bytes=%d-" % (size // 2))
        self.check_cache("ckpt_001")

    def test_stalled_transfer_times_out_and_resumes(self):
        commit = self.hub.repo.branches["ckpt_001"]
        sha = next(e["lfs"]["oid"] for e in self.hub.repo.trees[commit] if "lfs" in e)
        self.hub.faults = {"stall": {sha: 1}}
        self.json("inspect", "hf://org/tiny@ckpt_001", env=self.env(HF_HUB_DOWNLOAD_TIMEOUT="1"))
        self.assertEqual(len(self.hub.requests("storage", sha)), 2)
        self.check_cache("ckpt_001")

    def test_corrupt_once_is_fetched_again(self):
        commit = self.hub.repo.branches["ckpt_001"]
        sha = next(e["lfs"]["oid"] for e in self.hub.repo.trees[commit] if "lfs" in e)
        self.hub.faults = {"corrupt": {sha: 1}}
        self.json("inspect", "hf://org/tiny@ckpt_001")
        self.assertEqual(len(self.hub.requests("storage", sha)), 2)
        self.check_cache("ckpt_001")

    def test_corrupt_twice_fails_naming_both_hashes(self):
        commit = self.hub.repo.branches["ckpt_001"]
        e = next(e for e in self.hub.repo.trees[commit] if "lfs" in e)
        sha = e["lfs"]["oid"]
        self.hub.faults = {"corrupt": {sha: -1}}
        err = self.fails(["inspect", "hf://org/tiny@ckpt_001"], "ckpt_001", e["path"], sha,
                         "fetched twice")
        with open(self.hub.repo.lfs[sha], "rb") as f:
            good = bytearray(f.read())
        good[len(good) // 2] ^= 0xFF
        self.assertIn(hashlib.sha256(good).hexdigest(), err)
        self.assertNotIn(sha, self.blobs())
        self.assertEqual([b for b in self.blobs() if b.endswith(".incomplete")], [])

    # ---- refusals ----

    def test_bad_and_missing_token(self):
        self.fails(["list", "hf://org/tiny"], "HTTP 401", "HF_TOKEN", env=self.env(HF_TOKEN="x"))
        self.fails(["list", "hf://org/tiny"], "HTTP 401", "HF_TOKEN", env=self.env(HF_TOKEN=None))
        self.fails(["list", "hf://org/tiny"], "HF_TOKEN", "control character",
                   env=self.env(HF_TOKEN="a b"))
        # offline with nothing cached: named, and no request made
        with self.hub.lock:
            self.hub.log.clear()
        self.fails(["list", "hf://org/tiny"], "hf://org/tiny", "HF_HUB_OFFLINE",
                   env=self.env(HF_HUB_OFFLINE="1"))
        self.assertEqual(self.hub.requests(), [])

    def test_missing_repository_and_revision(self):
        self.fails(["list", "hf://org/absent"], "hf://org/absent", "no repository")
        self.fails(["inspect", "hf://org/tiny@nope"], "nope")
        commit = self.hub.repo.branches["ckpt_002"]
        self.hub.faults = {"tree_404": commit}
        self.fails(["inspect", "hf://org/tiny@ckpt_002"], "hf://org/tiny@ckpt_002",
                   "revision not found")
        self.fails(["list", "hf://../etc"], "hf://../etc", "ORG/NAME")

    def test_malformed_listing(self):
        self.hub.faults = {"bad_json": True}
        self.fails(["list", "hf://org/tiny", "--json"], "hf://org/tiny@ckpt_000",
                   "not valid JSON")

    def test_listing_path_climbing_out(self):
        self.hub.faults = {"dotdot": True}
        self.fails(["inspect", "hf://org/tiny@ckpt_000"], "../escape.txt",
                   "not a safe relative path")
        self.assertFalse(os.path.exists(os.path.join(self.cache, "escape.txt")))

    def test_sizes_disagree_with_bytes_served(self):
        self.hub.faults = {"size_lie": "model-00001-of-00002.safetensors"}
        self.fails(["inspect", "hf://org/tiny@ckpt_000"], "model-00001-of-00002.safetensors",
                   "304753 bytes", "the listing")
        shutil.rmtree(self.cache)  # config.json was fetched meanwhile, and would be used
        self.hub.faults = {"size_lie": "config.json"}
        self.fails(["inspect", "hf://org/tiny@ckpt_000"], "config.json", "the listing")

    def test_absurd_content_length(self):
        commit = self.hub.repo.branches["ckpt_000"]
        sha = next(e["lfs"]["oid"] for e in self.hub.repo.trees[commit] if "lfs" in e)
        self.hub.faults = {"absurd_length": sha}
        self.fails(["inspect", "hf://org/tiny@ckpt_000"], "Content-Length 100000000000000000")

    def test_redirect_loop_and_other_scheme(self):
        self.hub.faults = {"redirect_loop": True}
        self.fails(["inspect", "hf://org/tiny@ckpt_000"], "more than 10 redirects")
        self.hub.faults = {"bad_scheme": True}
        self.fails(["inspect", "hf://org/tiny@ckpt_000"], "not an http(s) URL")

    def test_cached_symlink_pointing_outside(self):
        secret = os.path.join(self.tmp, "secret%d.txt" % self.n)
        with open(secret, "w") as f:
            f.write("not a model")
        snap = self.snapshot_dir("ckpt_000")
        os.makedirs(snap)
        os.symlink(secret, os.path.join(snap, "config.json"))
        self.fails(["inspect", "hf://org/tiny@ckpt_000"], "config.json", "outside the cache")
        # a folder on the way that is a symlink out of the cache is not written through
        out = os.path.join(self.tmp, "outside%d" % self.n)
        os.makedirs(out)
        snap1 = self.snapshot_dir("ckpt_001")
        os.makedirs(os.path.dirname(snap1), exist_ok=True)
        os.symlink(out, snap1)
        self.fails(["inspect", "hf://org/tiny@ckpt_001"], "not a folder")
        self.assertEqual(os.listdir(out), [])

    # ---- prefetch, wait and evict, as a scan will call them ----

    def repo8(self):
        """Eight checkpoints of two LFS shards each (the config.json blob shared by all)."""
        repo8 = os.path.join(self.tmp, "repo8")
        if not os.path.exists(repo8):
            subprocess.run([FIXTURE, repo8, "--checkpoints", "8", "--lfs", "--shards", "2",
                            "--hidden", "128", "--intermediate", "256"], check=True)
        return repo8

    def test_walk_with_prefetch_and_evict(self):
        """Eight checkpoints walked with prefetch of the next and evict: the blobs on disk
        never exceed four checkpoints' worth; a blob this walk did not download survives."""
        repo8 = self.repo8()
        hub8 = Hub(repo8, "org/eight", None, page_size=100)
        try:
            env = self.env(HF_ENDPOINT=hub8.url, HF_TOKEN=None)
            # one checkpoint fetched before by another tool: never deleted by the walk
            self.run_cks("inspect", "hf://org/eight@ckpt_005", env=env)
            root = os.path.join(self.cache, "models--org--eight")
            before = set(os.listdir(os.path.join(root, "blobs")))
            p = subprocess.run([WALK, "hf://org/eight", "--evict", "--ref", "0", "--progress"],
                               env=env, capture_output=True, text=True, timeout=TIMEOUT)
            self.assertEqual(p.returncode, 0, p.stderr)
            prog = [json.loads(l) for l in p.stderr.splitlines() if l.startswith("{")]
            self.assertGreater(len(prog), 0)
            for r in prog:
                self.assertLessEqual(r["done"], r["total"])
                self.assertLessEqual(r["files_done"], r["files_total"])
            # every checkpoint fetched came through the callback (ckpt_005 was in the cache),
            # and each batch completed
            self.assertEqual({r["progress"] for r in prog},
                             {"ckpt_%03d" % i for i in range(8) if i != 5})
            ends = [r for r in prog if r["files_done"] == r["files_total"]]
            self.assertTrue(ends and all(r["done"] == r["total"] for r in ends), ends)
            steps = [json.loads(l) for l in p.stdout.splitlines()]
            self.assertEqual([s["ckpt"] for s in steps], ["ckpt_%03d" % i for i in range(8)])
            weights = {}
            for name, commit in hub8.repo.branches.items():
                weights[name] = sum(e["size"] for e in hub8.repo.trees[commit] if "lfs" in e)
            one = max(weights.values())
            peak = max(s["blob_bytes_max"] for s in steps)
            # reference + previous + current + prefetched, plus ckpt_005 (not ours) and the
            # small files (json) that all checkpoints share
            self.assertLessEqual(peak, 5 * one + 65536, steps)
            self.assertGreater(peak, 3 * one, "the walk kept less than it needs")
            self.assertTrue(before <= set(os.listdir(os.path.join(root, "blobs"))),
                            "a blob the walk did not download was deleted")
            self.assertTrue(all(s["ok"] for s in steps), steps)
            self.assertGreater(sum(s["freed"] for s in steps), 0)
            self.assertGreaterEqual(hub8.max_in_flight, 2)
            # local sources: the same calls are no-ops
            p = subprocess.run([WALK, repo8, "--evict", "--ref", "0"], capture_output=True,
                               text=True, timeout=TIMEOUT)
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertEqual(sum(json.loads(l)["freed"] for l in p.stdout.splitlines()), 0)
        finally:
            hub8.close()


    def test_scan_evict_over_revisions_equals_git(self):
        """scan --evict over eight branches: the run file equals the scan of the repository
        on disk, dataset by dataset; the blobs on disk, sampled every few milliseconds
        during the scan, never exceed four checkpoints' weights (reference, previous,
        current, prefetched) besides what was there before; at the end three are left (the
        reference, the last two); a blob the scan did not download survives; a terminal
        shows the downloads on the progress line."""
        import pty
        import threading
        import time
        from scan_support import same_file
        repo8 = self.repo8()
        hub8 = Hub(repo8, "org/eight", None, page_size=100)
        hub8.rate = 40e6  # a link slower than the analysis, so that prefetch has to overlap
        try:
            env = self.env(HF_ENDPOINT=hub8.url, HF_TOKEN=None)
            self.run_cks("inspect", "hf://org/eight@ckpt_005", env=env)  # another tool's
            root = os.path.join(self.cache, "models--org--eight")
            blobs = os.path.join(root, "blobs")
            before = {n: os.path.getsize(os.path.join(blobs, n)) for n in os.listdir(blobs)}
            weights = {}
            for name, commit in hub8.repo.branches.items():
                weights[name] = sum(e["size"] for e in hub8.repo.trees[commit] if "lfs" in e)
            one = max(weights.values())
            small = sum(e["size"] for c in hub8.repo.trees.values() for e in c if "lfs" not in e)

            def ours():
                n = 0
                for b in os.listdir(blobs) if os.path.isdir(blobs) else []:
                    if b not in before:
                        try:
                            n += os.path.getsize(os.path.join(blobs, b))
                        except FileNotFoundError:
                            pass  # evicted while we looked
                return n

            a = os.path.join(self.home, "hub.h5")
            master, slave = pty.openpty()  # stderr a terminal: the progress line is drawn
            proc = subprocess.Popen([EXE, "scan", "hf://org/eight", "-o", a, "--evict",
                                     "--metrics", "norms,spectral,drift"], env=env,
                                    stdout=subprocess.DEVNULL, stderr=slave)
            os.close(slave)
            out, peak = [], [0]

            def read_tty():
                while True:
                    try:
                        d = os.read(master, 65536)
                    except OSError:
                        return
                    if not d:
                        return
                    out.append(d)

            reader = threading.Thread(target=read_tty, daemon=True)
            reader.start()
            t0 = time.monotonic()
            while proc.poll() is None and time.monotonic() - t0 < TIMEOUT:
                peak[0] = max(peak[0], ours())
                time.sleep(0.005)
            proc.wait(timeout=TIMEOUT)
            reader.join(timeout=10)
            os.close(master)
            err = b"".join(out).decode(errors="replace")
            self.assertEqual(proc.returncode, 0, err[-3000:])
            self.assertIn("fetching ckpt_00", err)  # the downloads on the progress line
            self.assertIn(" | fetching ckpt_00", err)  # ... beside the analysis: overlap
            # the bound: four checkpoints' weights (the small files are shared and tiny)
            self.assertLessEqual(peak[0], 4 * one + small, (peak[0], one))
            self.assertGreater(peak[0], 2 * one, "sampling missed the scan")
            end = ours()
            self.assertLessEqual(end, 3 * one + small, (end, one))
            left = set(os.listdir(blobs))
            self.assertTrue(set(before) <= left, "a blob the scan did not download was deleted")
            for name in ("ckpt_000", "ckpt_006", "ckpt_007"):  # reference, last two: kept
                for e in hub8.repo.trees[hub8.repo.branches[name]]:
                    if "lfs" in e:
                        self.assertIn(e["lfs"]["oid"], left, name)
            for name in ("ckpt_001", "ckpt_002", "ckpt_003", "ckpt_004"):  # evicted
                for e in hub8.repo.trees[hub8.repo.branches[name]]:
                    if "lfs" in e:
                        self.assertNotIn(e["lfs"]["oid"], left, name)
                self.assertFalse(os.path.lexists(os.path.join(
                    root, "snapshots", hub8.repo.branches[name], "model-00001-of-00002.safetensors")))
            # every LFS file was downloaded once: prefetch and evict never fetched twice
            for name, commit in hub8.repo.branches.items():
                for e in hub8.repo.trees[commit]:
                    if "lfs" in e and name != "ckpt_005":
                        got = [r for r in hub8.requests("storage", e["lfs"]["oid"]) if not r[3]]
                        self.assertEqual(len(got), 1, (name, e["path"]))
            b = os.path.join(self.home, "disk.h5")
            self.run_cks("scan", repo8, "-o", b, "--metrics", "norms,spectral,drift", "--quiet")
            import h5py
            with h5py.File(b, "r+") as f:
                f.attrs["source"] = "hf://org/eight"  # the one attribute that names the source
            same_file(a, b)
        finally:
            hub8.close()

    def test_scan_shards_evict_merge_equals_git(self):
        """Two shards of hf://org/eight with --evict, each with its own cache: a shard's
        task needs the other shard's checkpoint as its previous one, which its evict must
        keep until that task ran; the merged parts equal the scan of the repository."""
        import h5py
        from scan_support import same_file
        repo8 = self.repo8()
        hub8 = Hub(repo8, "org/eight", None, page_size=100)
        try:
            parts = []
            for i in range(2):
                cache = os.path.join(self.home, "cache%d" % i)
                env = self.env(HF_ENDPOINT=hub8.url, HF_TOKEN=None, HF_HUB_CACHE=cache)
                part = os.path.join(self.home, "part%d.h5" % i)
                self.run_cks("scan", "hf://org/eight", "-o", part, "--shard", "%d/2" % i,
                             "--evict", "--metrics", "norms,drift", "--quiet", env=env)
                parts.append(part)
                # what is left: the reference, the last own task and its previous one
                left = set(os.listdir(os.path.join(cache, "models--org--eight", "blobs")))
                last = 7 if i == 1 else 6
                for name in ("ckpt_000", "ckpt_%03d" % (last - 1), "ckpt_%03d" % last):
                    for e in hub8.repo.trees[hub8.repo.branches[name]]:
                        if "lfs" in e:
                            self.assertIn(e["lfs"]["oid"], left, (i, name))
                lfs = sum(1 for n in left if len(n) == 64 and any(
                    e.get("lfs", {}).get("oid") == n for t in hub8.repo.trees.values() for e in t))
                self.assertLessEqual(lfs, 3 * 2, (i, left))  # three checkpoints of 2 shards
            a = os.path.join(self.home, "hub.h5")
            self.run_cks("merge", *parts, "-o", a)
            b = os.path.join(self.home, "disk.h5")
            self.run_cks("scan", repo8, "-o", b, "--metrics", "norms,drift", "--quiet")
            with h5py.File(b, "r+") as f:
                f.attrs["source"] = "hf://org/eight"
            same_file(a, b)
        finally:
            hub8.close()

    def test_scan_fault_mid_download_then_resume(self):
        """A file of ckpt_001 arrives corrupt on every try: the scan names the checkpoint,
        the file and both hashes, analyses the others, exits 2 (DESIGN §8), and its run
        file holds ckpt_001 as failed; once the network behaves, --resume completes it and
        the run file equals the scan of the repository on disk."""
        import h5py
        from scan_support import same_file, statuses
        commit = self.hub.repo.branches["ckpt_001"]
        e = next(e for e in self.hub.repo.trees[commit] if "lfs" in e)
        sha = e["lfs"]["oid"]
        self.hub.faults = {"corrupt": {sha: -1}}
        a = os.path.join(self.home, "hub.h5")
        args = ["scan", "hf://org/tiny", "-o", a, "--metrics", "norms,spectral,drift", "--evict"]
        p = self.run_cks(*args, expect=2)
        self.assertIn("ckpt_001", p.stderr)
        self.assertIn(e["path"], p.stderr)
        self.assertIn(sha, p.stderr)
        self.assertIn("fetched twice", p.stderr)
        self.assertNotIn("s3cr3t", p.stderr, "a signed URL's query was printed")
        self.assertEqual(statuses(a), ["complete", "failed", "complete"])
        self.assertNotIn(sha, self.blobs())
        self.assertEqual([b for b in self.blobs() if b.endswith(".incomplete")], [])
        self.hub.faults = {}
        p = self.run_cks(*args, "--resume")
        self.assertEqual(statuses(a), ["complete"] * 3)
        b = os.path.join(self.home, "disk.h5")
        self.run_cks("scan", self.repo, "-o", b, "--metrics", "norms,spectral,drift", "--quiet")
        with h5py.File(b, "r+") as f:
            f.attrs["source"] = "hf://org/tiny"
        same_file(a, b)

    def test_scan_interrupted_mid_download_resumes(self):
        """SIGINT while ckpt_001 downloads (a slow link): the scan stops within a second,
        exit 2, keeping ckpt_000's row; --resume completes the run file, equal to the disk
        scan. While the scan that evicts runs, another scan of the same cache is refused."""
        import signal
        import time
        import h5py
        from scan_support import same_file, statuses
        self.hub.rate = 2e5
        proc = None
        try:
            a = os.path.join(self.home, "hub.h5")
            args = ["scan", "hf://org/tiny", "-o", a, "--metrics", "norms,drift", "--evict"]
            proc = subprocess.Popen([EXE, *args], env=self.env(), stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, text=True)
            commit = self.hub.repo.branches["ckpt_001"]
            sha = next(e["lfs"]["oid"] for e in self.hub.repo.trees[commit] if "lfs" in e)
            t0 = time.monotonic()
            while not self.hub.requests("storage", sha) and time.monotonic() - t0 < TIMEOUT:
                time.sleep(0.01)
            # meanwhile another scan of the same cache would lose blobs to this one's evict
            other = os.path.join(self.home, "other.h5")
            p = self.run_cks("scan", "hf://org/tiny", "-o", other, "--quiet", expect=2)
            self.assertIn(os.path.join(self.cache, "models--org--tiny"), p.stderr)
            self.assertIn("HF_HUB_CACHE", p.stderr)
            self.assertFalse(os.path.exists(other))
            time.sleep(0.2)
            proc.send_signal(signal.SIGINT)
            t1 = time.monotonic()
            out, err = proc.communicate(timeout=TIMEOUT)
            self.assertLess(time.monotonic() - t1, 3, "the interrupt was not seen in time")
            self.assertEqual(proc.returncode, 2, err)
            self.assertIn("interrupted", err)
            self.assertEqual(statuses(a), ["complete"])  # ckpt_000's row was kept
            self.hub.rate = 0
            self.run_cks(*args, "--resume", "--quiet")
            self.assertEqual(statuses(a), ["complete"] * 3)
            b = os.path.join(self.home, "disk.h5")
            self.run_cks("scan", self.repo, "-o", b, "--metrics", "norms,drift", "--quiet")
            with h5py.File(b, "r+") as f:
                f.attrs["source"] = "hf://org/tiny"
            same_file(a, b)
        finally:
            self.hub.rate = 0
            if proc and proc.poll() is None:
                proc.kill()
                proc.wait()


def main():
    global EXE, FIXTURE, WALK
    EXE, FIXTURE, WALK = sys.argv[1:4]
    argv = [sys.argv[0]] + ["HubTest." + t for t in sys.argv[4:]]
    unittest.main(argv=argv, verbosity=2)


if __name__ == "__main__":
    main()
