#!/usr/bin/python3
"""A stand-in for the Hugging Face hub's HTTP API on loopback, serving a git repository
(made by cks-fixture, with Git LFS) as the hub repository ORG/NAME, for the hf:// tests and
benchmarks. Nothing here opens a socket that is not on 127.0.0.1.

Endpoints, as the hub answers them (DESIGN.md §2, source 4):
  GET /api/models/ORG/NAME/refs                       {"branches": [...], "tags": [], ...}
  GET /api/models/ORG/NAME/tree/REV?recursive=true    one page of `page_size` entries; the
                                                      next page through Link: rel="next"
  GET /ORG/NAME/resolve/REV/PATH                      small files: 200 with the content and
                                                      ETag = git blob id; LFS files: 302 to
                                                      the storage listener (another host
                                                      name: "localhost" instead of
                                                      127.0.0.1) with X-Linked-Etag (the
                                                      sha256) and X-Linked-Size
  GET /lfs/SHA256?sig=...  (storage listener)         the content, with Range support
With a token set, every API request must carry `Authorization: Bearer TOKEN` (401
otherwise). The storage listener refuses any request with an Authorization header (400)
and records it in `violations`: the token must never reach it.

Faults (the `faults` dict; tests set entries, counts are decremented as they fire):
  "503": {substring: n}        the next n requests whose path holds substring get 503
                               with Retry-After: `retry_after` (default 1)
  "cut": {sha256: n}           the next n storage responses send half the body and close
  "stall": {sha256: n}         the next n storage responses send headers, then nothing
  "corrupt": {sha256: n}       the next n storage responses flip a byte (n < 0: always)
  "bad_json": True             tree listings are not JSON
  "size_lie": path             the listing gives this file one byte more than is served
  "absurd_length": sha256      the storage response claims Content-Length 10^17
  "redirect_loop": True        LFS resolves redirect to themselves
  "bad_scheme": True           LFS resolves redirect to file:///etc/passwd
  "dotdot": True               the listing holds a file "../escape.txt"
  "tree_404": commit           the tree of this commit is "RevisionNotFound"
`delay` (seconds) holds every content response before its body, so that transfers that
run at once overlap measurably (`max_in_flight`); `rate` (bytes/s, shared by all
responses at once) makes the loopback behave like a link of that bandwidth (benchmarks).

Run alone (benchmarks, manual use):
  hub_server.py --repo DIR --name ORG/NAME [--token T] [--port-file F]
prints "API_URL STORAGE_URL" and serves until killed.
"""
import argparse
import hashlib
import json
import os
import subprocess
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def git(repo, *args):
    return subprocess.run(["git", "-C", repo, *args], capture_output=True, check=True).stdout


class Repo:
    """The branches and files of a git repository, LFS pointers resolved to their objects."""

    def __init__(self, path):
        self.path = path
        gitdir = git(path, "rev-parse", "--git-common-dir").decode().strip()
        self.gitdir = gitdir if os.path.isabs(gitdir) else os.path.join(path, gitdir)
        self.branches = {}  # name -> commit
        for line in git(path, "for-each-ref", "--format=%(refname:short) %(objectname)",
                        "refs/heads").decode().splitlines():
            name, commit = line.split()
            self.branches[name] = commit
        self.trees = {}  # commit -> [entry]
        self.lfs = {}  # sha256 -> object path
        self.small = {}  # git blob id -> bytes
        for commit in set(self.branches.values()):
            self.trees[commit] = self._tree(commit)

    def _tree(self, commit):
        out = []
        for rec in git(self.path, "ls-tree", "-r", "-l", "-z", commit).split(b"\0"):
            if not rec:
                continue
            meta, path = rec.split(b"\t", 1)
            _mode, _type, oid, size = meta.split()
            path = path.decode()
            oid = oid.decode()
            data = git(self.path, "cat-file", "blob", oid)
            e = {"type": "file", "oid": oid, "size": int(size), "path": path}
            if data.startswith(b"version https://git-lfs.github.com/spec/v1"):
                fields = dict(line.split(" ", 1) for line in data.decode().splitlines())
                sha = fields["oid"].split(":", 1)[1]
                e["size"] = int(fields["size"])
                e["lfs"] = {"oid": sha, "size": e["size"], "pointerSize": len(data)}
                self.lfs[sha] = os.path.join(self.gitdir, "lfs", "objects", sha[:2], sha[2:4], sha)
            else:
                self.small[oid] = data
            out.append(e)
        dirs = sorted({p.rsplit("/", 1)[0] for p in (e["path"] for e in out) if "/" in p})
        for d in dirs:
            out.append({"type": "directory", "oid": "0" * 40, "size": 0, "path": d})
        return sorted(out, key=lambda e: e["path"])

    def commit_of(self, rev):
        if rev in self.branches:
            return self.branches[rev]
        return rev if rev in self.trees else None


class Hub:
    """Two listeners on 127.0.0.1: the API and the storage host (named "localhost")."""

    def __init__(self, repo_dir, name, token=None, page_size=2):
        self.repo = Repo(repo_dir)
        self.name = name
        self.token = token
        self.page_size = page_size
        self.faults = {}
        self.retry_after = 1
        self.delay = 0  # seconds every content response waits before its body
        self.rate = 0  # bytes per second shared by all storage responses (0: unlimited)
        self._next_free = 0.0
        self.violations = []  # requests that reached storage with a token
        self.log = []  # (listener, method, path, range header)
        self.lock = threading.Lock()
        self.in_flight = 0
        self.max_in_flight = 0
        hub = self

        class Api(Handler):
            listener = "api"
            server_hub = hub

        class Storage(Handler):
            listener = "storage"
            server_hub = hub

        self.api = ThreadingHTTPServer(("127.0.0.1", 0), Api)
        self.storage = ThreadingHTTPServer(("127.0.0.1", 0), Storage)
        for s in (self.api, self.storage):
            s.daemon_threads = True
        self.url = "http://127.0.0.1:%d" % self.api.server_address[1]
        self.storage_url = "http://localhost:%d" % self.storage.server_address[1]
        self.threads = [threading.Thread(target=s.serve_forever, daemon=True)
                        for s in (self.api, self.storage)]
        for t in self.threads:
            t.start()

    def close(self):
        for s in (self.api, self.storage):
            s.shutdown()
            s.server_close()

    def fault(self, kind, key):
        """True when fault kind fires for key (and counts it down)."""
        with self.lock:
            table = self.faults.get(kind)
            if not isinstance(table, dict):
                return False
            for k, n in table.items():
                if k in key and n != 0:
                    if n > 0:
                        table[k] = n - 1
                    return True
        return False

    def pace(self, n):
        """Waits until n more bytes fit the shared `rate`."""
        if not self.rate:
            return
        with self.lock:
            t = max(self._next_free, time.monotonic())
            self._next_free = t + n / self.rate
        d = t - time.monotonic()
        if d > 0:
            time.sleep(d)

    def requests(self, listener=None, contains=""):
        with self.lock:
            return [r for r in self.log if (listener is None or r[0] == listener)
                    and contains in r[2]]


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    listener = None
    server_hub = None

    def log_message(self, fmt, *args):
        pass

    def send(self, status, body=b"", headers=()):
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def refuse(self, status, code=None, text="refused"):
        h = [("Content-Type", "application/json")]
        if code:
            h.append(("X-Error-Code", code))
        self.send(status, json.dumps({"error": text}).encode(), h)

    def do_GET(self):
        hub = self.server_hub
        url = urllib.parse.urlsplit(self.path)
        with hub.lock:
            hub.log.append((self.listener, "GET", self.path, self.headers.get("Range")))
        if self.listener == "storage":
            return self.storage_get(url)
        if hub.token and self.headers.get("Authorization") != "Bearer " + hub.token:
            return self.refuse(401, None, "Invalid credentials")
        if hub.fault("503", url.path):
            return self.send(503, b"busy", [("Retry-After", str(hub.retry_after))])
        prefix_api = "/api/models/%s/" % hub.name
        prefix_resolve = "/%s/resolve/" % hub.name
        if url.path == prefix_api + "refs":
            return self.refs()
        if url.path.startswith(prefix_api + "tree/"):
            return self.tree(urllib.parse.unquote(url.path[len(prefix_api + "tree/"):]), url.query)
        if url.path.startswith(prefix_resolve):
            rest = urllib.parse.unquote(url.path[len(prefix_resolve):])
            rev, _, path = rest.partition("/")
            return self.resolve(rev, path)
        if url.path.startswith("/api/models/") or "/resolve/" in url.path:
            return self.refuse(404, "RepoNotFound", "Repository not found")
        return self.refuse(404)

    def refs(self):
        hub = self.server_hub
        br = [{"name": n, "ref": "refs/heads/" + n, "targetCommit": c}
              for n, c in sorted(hub.repo.branches.items())]
        self.send(200, json.dumps({"branches": br, "converts": [], "tags": []}).encode(),
                  [("Content-Type", "application/json")])

    def tree(self, rev, query):
        hub = self.server_hub
        commit = hub.repo.commit_of(rev)
        if commit is None or hub.faults.get("tree_404") == commit:
            return self.refuse(404, "RevisionNotFound", "Invalid rev id: " + rev)
        q = urllib.parse.parse_qs(query)
        if q.get("recursive") != ["true"]:
            return self.refuse(400, None, "this stand-in serves recursive listings only")
        entries = [dict(e) for e in hub.repo.trees[commit]]
        if hub.faults.get("size_lie"):
            for e in entries:
                if e["path"] == hub.faults["size_lie"]:
                    e["size"] += 1
                    if "lfs" in e:
                        e["lfs"] = dict(e["lfs"], size=e["size"])
        if hub.faults.get("dotdot"):
            entries.append({"type": "file", "oid": "1" * 40, "size": 5, "path": "../escape.txt"})
        start = int(q.get("cursor", ["0"])[0])
        page = entries[start:start + hub.page_size]
        headers = [("Content-Type", "application/json")]
        if start + hub.page_size < len(entries):
            nxt = "%s/api/models/%s/tree/%s?recursive=true&cursor=%d" % (
                hub.url, hub.name, urllib.parse.quote(rev, safe=""), start + hub.page_size)
            headers.append(("Link", '<%s>; rel="next"' % nxt))
        body = json.dumps(page).encode()
        if hub.faults.get("bad_json"):
            body = body[:-7] + b',{"path": '
        self.send(200, body, headers)

    def resolve(self, rev, path):
        hub = self.server_hub
        commit = hub.repo.commit_of(rev)
        if commit is None:
            return self.refuse(404, "RevisionNotFound", "Invalid rev id: " + rev)
        e = next((e for e in hub.repo.trees[commit] if e["path"] == path and e["type"] == "file"),
                 None)
        if e is None:
            return self.refuse(404, "EntryNotFound", "Entry not found")
        common = [("X-Repo-Commit", commit)]
        if "lfs" in e:
            sha = e["lfs"]["oid"]
            loc = "%s/lfs/%s?sig=s3cr3t-%d" % (hub.storage_url, sha, time.time_ns())
            if hub.faults.get("redirect_loop"):
                loc = self.path
            if hub.faults.get("bad_scheme"):
                loc = "file:///etc/passwd"
            return self.send(302, b"", common + [
                ("Location", loc), ("ETag", '"%s"' % sha), ("X-Linked-Etag", '"%s"' % sha),
                ("X-Linked-Size", str(e["size"]))])
        data = hub.repo.small[e["oid"]]
        self.content(data, None, common + [("ETag", '"%s"' % e["oid"])], key=e["oid"])

    def storage_get(self, url):
        hub = self.server_hub
        if self.headers.get("Authorization") is not None:
            with hub.lock:
                hub.violations.append(self.path)
            return self.refuse(400, None, "a token reached the storage host")
        if not url.path.startswith("/lfs/") or "sig=" not in url.query:
            return self.refuse(403, None, "unsigned")
        sha = url.path[len("/lfs/"):]
        path = hub.repo.lfs.get(sha)
        if path is None or not os.path.exists(path):
            return self.refuse(404)
        self.content(None, path, [], key=sha)

    def content(self, data, path, headers, key):
        """The bytes (or the file at path) with Range support and the content faults."""
        hub = self.server_hub
        size = len(data) if data is not None else os.path.getsize(path)
        start, status = 0, 200
        rng = self.headers.get("Range")
        if rng and rng.startswith("bytes=") and rng.endswith("-"):
            start = int(rng[6:-1])
            if start >= size:
                return self.send(416, b"", [("Content-Range", "bytes */%d" % size)])
            status = 206
            headers = headers + [("Content-Range", "bytes %d-%d/%d" % (start, size - 1, size))]
        length = size - start
        claimed = 10 ** 17 if hub.faults.get("absurd_length") == key else length
        self.send_response(status)
        for k, v in headers + [("Accept-Ranges", "bytes"), ("Content-Length", str(claimed))]:
            self.send_header(k, v)
        self.end_headers()
        if hub.fault("stall", key):
            time.sleep(30)
            self.close_connection = True
            return
        cut = hub.fault("cut", key)
        corrupt = hub.fault("corrupt", key)
        send = length // 2 if cut else length
        with hub.lock:
            hub.in_flight += 1
            hub.max_in_flight = max(hub.max_in_flight, hub.in_flight)
        try:
            time.sleep(hub.delay)
            if data is not None or corrupt or cut:
                if data is None:
                    with open(path, "rb") as f:
                        f.seek(start)
                        data, start = f.read(length), 0
                chunk = bytearray(data[start:start + send])
                if corrupt and chunk:
                    chunk[len(chunk) // 2] ^= 0xFF
                self.wfile.write(bytes(chunk))
            else:
                with open(path, "rb") as f:
                    self.wfile.flush()
                    off, left = start, length
                    while left > 0:
                        step = min(left, 1 << 20 if hub.rate else 1 << 24)
                        hub.pace(step)
                        n = os.sendfile(self.connection.fileno(), f.fileno(), off, step)
                        if n <= 0:
                            break
                        off += n
                        left -= n
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        finally:
            with hub.lock:
                hub.in_flight -= 1
        if cut:
            self.close_connection = True
            self.connection.shutdown(2)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repo", required=True)
    ap.add_argument("--name", required=True)
    ap.add_argument("--token")
    ap.add_argument("--page-size", type=int, default=100)
    ap.add_argument("--rate", type=float, default=0, help="bytes/s of all storage responses")
    ap.add_argument("--port-file")
    a = ap.parse_args()
    hub = Hub(a.repo, a.name, a.token, a.page_size)
    hub.rate = a.rate
    line = "%s %s\n" % (hub.url, hub.storage_url)
    if a.port_file:
        with open(a.port_file + ".tmp", "w") as f:
            f.write(line)
        os.rename(a.port_file + ".tmp", a.port_file)
    print(line, end="", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
