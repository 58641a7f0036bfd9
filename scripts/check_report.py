"""Check a nasx report in headless Chromium: every <img> of index.html loads, and save a screenshot.

    python scripts/check_report.py reports/examples/resnext-cifar10-cpu [--screenshot shot.png]

Loads a temporary copy of index.html with a small script that, once the page has loaded, writes each
image's src and naturalWidth into the DOM; `chromium --dump-dom` returns it. Exit 0 when every image
has naturalWidth > 0, else 1 (naming the broken ones). Needs `apt-get install -y chromium`.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

PROBE = """<script>
window.addEventListener('load', function () {
  var out = Array.prototype.map.call(document.images, function (im) {
    return {src: im.getAttribute('src'), w: im.naturalWidth, h: im.naturalHeight};
  });
  var pre = document.createElement('pre');
  pre.id = 'nasx-check';
  var mark = 'NASX' + '_CHECK';  // split, so the script's own text never matches
  pre.textContent = mark + JSON.stringify(out) + mark;
  document.body.appendChild(pre);
});
</script>"""


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    sys.exit("check_report: no chromium found (apt-get install -y chromium)")


def run_chromium(args: list[str], timeout: float = 120) -> str:
    with tempfile.TemporaryDirectory() as profile:
        cmd = [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
               "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={profile}",
               "--virtual-time-budget=10000", *args]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    return done.stdout


def check_images(index: Path) -> list[dict]:
    """Each <img> of the page with its natural size, as the browser loaded it."""
    probe = index.with_name(".check-index.html")
    probe.write_text(index.read_text(encoding="utf-8").replace("</body>", PROBE + "</body>"), encoding="utf-8")
    try:
        dom = run_chromium(["--dump-dom", probe.resolve().as_uri()])
    finally:
        probe.unlink()
    found = re.search(r"NASX_CHECK(.*?)NASX_CHECK", dom, re.S)
    if not found:
        sys.exit("check_report: the probe did not run (no NASX_CHECK in the dumped DOM)")
    return json.loads(found.group(1).replace("&quot;", '"').replace("&amp;", "&"))


def screenshot(index: Path, out: Path, size: str = "1400,3000") -> None:
    run_chromium([f"--screenshot={out.resolve()}", f"--window-size={size}", index.resolve().as_uri()])


def blank(png: Path) -> bool:
    """True if the screenshot is one flat colour."""
    from PIL import Image

    with Image.open(png) as im:
        lo, hi = im.convert("L").getextrema()
    return lo == hi


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("report", type=Path, help="the report folder (holding index.html)")
    parser.add_argument("--screenshot", type=Path, default=None, help="where to save the screenshot "
                        "(default: /tmp/nasx-report-check.png; never inside the report)")
    args = parser.parse_args()
    index = args.report / "index.html"
    if not index.is_file():
        print(f"check_report: {index} not found", file=sys.stderr)
        return 2
    images = check_images(index)
    broken = [im["src"] for im in images if not im["w"]]
    shot = args.screenshot or Path(tempfile.gettempdir()) / "nasx-report-check.png"
    screenshot(index, shot)
    print(f"{len(images)} images, {len(images) - len(broken)} loaded")
    for im in images:
        print(f"  {'ok ' if im['w'] else 'BROKEN'} {im['w']}x{im['h']}  {im['src']}")
    ok_shot = shot.is_file() and not blank(shot)
    print(f"screenshot: {shot} ({'ok' if ok_shot else 'MISSING OR BLANK'})")
    return 0 if images and not broken and ok_shot else 1


if __name__ == "__main__":
    sys.exit(main())
