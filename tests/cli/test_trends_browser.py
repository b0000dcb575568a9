"""The trends page in a real browser (headless Chromium, Debian's `chromium`): it renders
without console messages (a control page that logs one proves they are captured), every
embedded image decodes (naturalWidth > 0, read back through --dump-dom from a copy of
the page with a probe script), and a screenshot is not blank (distinct colours and ink
counted here from the decoded PNG). Exits 77 (ctest: skipped) when Chromium is absent
(outside CI; in CI that fails).
usage: test_trends_browser.py CKPTSCOPE CKS_FIXTURE CKS_RUNFX SOURCE_DIR"""
import os
import re
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import plot_support as P  # noqa: E402
from cks_testlib import SKIP, Skip, need  # noqa: E402

PROBE = ("<script>window.addEventListener('load', function () {"
         "var im = document.images, bad = 0;"
         "for (var i = 0; i < im.length; i++)"
         "  if (!im[i].complete || im[i].naturalWidth === 0) bad++;"
         "document.body.setAttribute('data-cks', 'images=' + im.length + ' broken=' + bad);"
         "console.error('cks probe: console output is captured');});</script>")


def chromium():
    for name in ("chromium", "chromium-browser"):
        path = shutil.which(name)
        if path:
            return path
    return None


def browse(exe, page, work, *extra):
    """Runs headless Chromium on page; returns (stdout, console lines of stderr)."""
    profile = tempfile.mkdtemp(prefix="profile-", dir=work)
    cmd = [exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
           "--no-first-run", "--disable-background-networking", "--disable-component-update",
           "--disable-sync", "--user-data-dir=" + profile, "--enable-logging=stderr", "--v=0",
           "--virtual-time-budget=10000", *extra, "file://" + page]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
    console = [l for l in p.stderr.splitlines() if ":CONSOLE" in l or "Uncaught" in l]
    return p.stdout, console, p


def main():
    exe = chromium()
    try:
        need(exe, "chromium is not installed (tools/setup-deps.sh --browser)")
    except Skip as e:
        print("skip:", e)
        sys.exit(SKIP)
    import test_plot as T  # the run file of the plot tests (argv has the same layout)
    work = tempfile.mkdtemp(prefix="cks-browser-")
    try:
        R = T.main_run()
        page = os.path.join(work, "trends.html")
        P.run(["report", R.path, "--trends", "-o", page, "--quiet"], check=0)
        with open(page, encoding="utf-8") as f:
            html = f.read()
        # 1. the page as written: no console output at all (a blocked fetch, a broken image
        #    or a script error would all log)
        dom, console, p = browse(exe, page, work, "--dump-dom")
        assert "</html>" in dom or "</body>" in dom, p.stderr[-2000:]
        assert console == [], console
        # 2. a copy with a probe script (the policy extended to inline scripts only)
        probe = html.replace("style-src 'unsafe-inline'",
                             "style-src 'unsafe-inline'; script-src 'unsafe-inline'")
        probe = probe.replace("</body>", PROBE + "</body>")
        probe_page = os.path.join(work, "probe.html")
        with open(probe_page, "w", encoding="utf-8") as f:
            f.write(probe)
        dom, console, p = browse(exe, probe_page, work, "--dump-dom")
        m = re.search(r'data-cks="images=(\d+) broken=(\d+)"', dom)
        assert m, "probe did not run: " + p.stderr[-2000:]
        want = html.count("<img ")
        assert int(m.group(1)) == want and want > 40, (m.group(0), want)
        assert m.group(2) == "0", m.group(0)
        assert any("cks probe" in l for l in console), console  # the control
        # 3. a screenshot: the page drew something
        shot = os.path.join(work, "shot.png")
        browse(exe, page, work, "--screenshot=" + shot, "--window-size=1280,2000",
               "--hide-scrollbars")
        assert P.png_ok(shot) == (1280, 2000)
        px = P.png_pixels(shot)
        colours = {c for row in px[::4] for c in row[::4]}
        ink = sum(1 for row in px[::4] for c in row[::4] if c != (255, 255, 255))
        total = len(px[::4]) * len(px[0][::4])
        assert len(colours) > 50, len(colours)
        assert ink > total // 30, (ink, total)  # a blank page has none
        print("ok trends page: %d images loaded, %d colours, %.1f%% ink"
              % (want, len(colours), 100.0 * ink / total))
    finally:
        if not os.environ.get("CKS_KEEP_TMP"):
            shutil.rmtree(work, ignore_errors=True)
            shutil.rmtree(T.TMP, ignore_errors=True)


if __name__ == "__main__":
    main()
