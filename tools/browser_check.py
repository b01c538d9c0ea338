"""Open every page of the built book in headless Chromium and check it as a reader would see it.

Usage: python tools/browser_check.py _build/html [--screenshots _build/screenshots]

For every HTML page of the build (the book's pages, the index and the search page), it loads
the page from the files (``file://``, as an offline reader opens it), waits for MathJax to
typeset and for the images to load, and checks that

- the math is rendered: every math element holds MathJax output, MathJax reported no TeX
  error, and no raw TeX (``$...$``, ``$$``, ``\\(``, ``\\[``, ``\\begin{``, a ``\\command``)
  is left in the text outside code;
- every image loaded (``naturalWidth > 0``); every chapter (a notebook of the table of
  contents) shows at least one figure from its outputs, each with alt text and not so wide
  that the page shrinks it below 1/1.4 of its size (its labels would become too small to read);
- no error appears: no traceback or ``...Error:`` line in a cell's output, no error or stderr
  output block, no Sphinx system message, no JavaScript exception or console error, and no
  resource that failed to load or that needs the network;
- every internal link resolves to an existing file and, with a ``#fragment``, to an element
  with that id;
- every chapter page has the Colab launch button for its own notebook, at the repository URL
  and branch set in ``_config.yml``.

It saves a full-page screenshot of every page (PNG) into the screenshots folder, prints one line
per page, and exits with status 1 if any check failed. Chromium talks to this script over the
DevTools protocol on a pipe (``--remote-debugging-pipe``), so no package beyond the standard
library is needed.
"""

from __future__ import annotations

import argparse
import base64
import html.parser
import json
import os
import re
import select
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
# Headless, and nothing that reaches for the network (the machine, like a reader on a train,
# may be offline).
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    "--remote-debugging-pipe",
]
WIDTH, HEIGHT = 1280, 900  # a laptop browser window, in CSS pixels
PAGE_TIMEOUT = 60.0  # seconds for a page to load and typeset
# A figure drawn wider than the page is scaled down, and its labels with it. Matplotlib's inline
# figures are 100 dpi, so 1.4 times the ~690 px text column is a figure of about 9.5 inches.
MAX_SHRINK = 1.4

# Raw TeX that MathJax should have replaced, looked for in the text outside code and math.
RAW_TEX = [
    ("$$", re.compile(r"\$\$")),
    ("$...$", re.compile(r"(?<![\w$])\$[^\s$](?:[^$\n]*[^\s$])?\$(?![\w$])")),
    ("\\( or \\)", re.compile(r"\\[()]")),
    ("\\[ or \\]", re.compile(r"\\[\[\]]")),
    ("\\begin{", re.compile(r"\\begin\{")),
    ("a \\command", re.compile(r"\\[A-Za-z]{2,}")),
]
# The theme logs this on a browser's first visit, when no light/dark preference is stored yet;
# it then uses the default. It is not an error of the book.
THEME_MODE_NOTICE = re.compile(r"Got invalid theme mode: \S*\. Resetting to auto\.")
# A page that only redirects to another (the book's index.html).
REDIRECT = re.compile(r'<meta http-equiv="Refresh" content="0; url=([^"]+)"', re.IGNORECASE)
# Error output of a cell: a Python traceback, or a line such as "ValueError: ...".
ERROR_TEXT = re.compile(r"Traceback \(most recent call last\)|^\s*\w*(?:Error|Exception): ",
                        re.MULTILINE)

# Everything the page reports about itself, computed in the page after it has settled.
INSPECT_JS = r"""
(() => {
  const main = document.querySelector('main') || document.body;
  const text_of = (root, drop) => {
    const clone = root.cloneNode(true);
    clone.querySelectorAll(drop).forEach(e => e.remove());
    return clone.textContent;
  };
  const prose = text_of(main, 'pre, code, script, style, textarea, kbd, samp, .highlight, ' +
                              'mjx-container, .MathJax, .sig, .cell_input, .linenos');
  const outputs = Array.from(main.querySelectorAll('.cell_output')).map(
      e => text_of(e, 'mjx-container, script, style'));
  const math = Array.from(document.querySelectorAll('.math'));
  const images = Array.from(main.querySelectorAll('img')).map(img => ({
      src: img.getAttribute('src'), alt: img.getAttribute('alt') || '',
      ok: img.complete && img.naturalWidth > 0, width: img.naturalWidth,
      shown: Math.round(img.getBoundingClientRect().width),
      output: !!img.closest('.cell_output')}));
  const ids = Array.from(document.querySelectorAll('[id]')).map(e => e.id)
      .concat(Array.from(document.querySelectorAll('a[name]')).map(e => e.name));
  const links = Array.from(document.querySelectorAll('a[href]')).map(a => a.href);
  const resources = Array.from(document.querySelectorAll('[src], link[href]')).map(
      e => e.src || e.href);
  return {
    title: document.title,
    math: math.length,
    math_unrendered: math.filter(e => !e.querySelector('mjx-container')).length,
    mjx: document.querySelectorAll('mjx-container').length,
    mjx_errors: Array.from(document.querySelectorAll('mjx-merror')).map(
        e => e.getAttribute('data-mjx-error') || e.textContent),
    prose: prose,
    outputs: outputs,
    error_blocks: Array.from(main.querySelectorAll(
        '.output.traceback, .output.error, .output.stderr, .stderr, .system-message, ' +
        '.problematic')).map(e => e.className + ': ' + e.textContent.slice(0, 200)),
    images: images,
    ids: ids,
    links: links,
    resources: resources,
    height: Math.ceil(Math.max(document.documentElement.scrollHeight,
                               document.body.scrollHeight)),
  };
})()
"""

# Resolves once MathJax has typeset the page (if it has math), the images have loaded or failed,
# and the fonts are ready.
SETTLE_JS = r"""
(async () => {
  const sleep = ms => new Promise(r => setTimeout(r, ms));
  if (document.querySelector('.math') && document.querySelector('script[src*="mathjax"]')) {
    for (let i = 0; i < 400 && !(window.MathJax && MathJax.startup && MathJax.startup.promise);
         i++) await sleep(50);
    if (window.MathJax && MathJax.startup && MathJax.startup.promise) {
      await MathJax.startup.promise;
    }
  }
  await Promise.all(Array.from(document.images).map(img => img.complete ? null :
      new Promise(r => { img.addEventListener('load', r); img.addEventListener('error', r); })));
  await document.fonts.ready;
  // No transitions or animations: the screenshot shows the final layout, not a sidebar
  // half-way through sliding in. Then back to the top left, and two frames for layout and paint.
  if (!document.getElementById('browser-check-still')) {
    const still = document.createElement('style');
    still.id = 'browser-check-still';
    still.textContent = '*, *::before, *::after { transition: none !important; ' +
                        'animation: none !important; scroll-behavior: auto !important; }';
    document.head.appendChild(still);
  }
  await sleep(200);
  window.scrollTo(0, 0);
  await new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)));
  return true;
})()
"""


class Chromium:
    """Headless Chromium driven over the DevTools protocol on a pipe (fds 3 and 4)."""

    def __init__(self, executable: str = CHROMIUM):
        self.profile = tempfile.mkdtemp(prefix="chromium-profile-")
        to_browser_r, self._to_browser = os.pipe()
        self._from_browser, from_browser_w = os.pipe()

        def wire_pipes():  # in the child: the protocol reads fd 3 and writes fd 4
            read_end, write_end = os.dup(to_browser_r), os.dup(from_browser_w)
            os.dup2(read_end, 3)
            os.dup2(write_end, 4)
            os.set_inheritable(3, True)
            os.set_inheritable(4, True)

        self.process = subprocess.Popen(
            [executable, *FLAGS, f"--user-data-dir={self.profile}", "about:blank"],
            preexec_fn=wire_pipes, close_fds=False,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        os.close(to_browser_r)
        os.close(from_browser_w)
        self._buffer = b""
        self._next_id = 0
        self.events: list[dict] = []
        targets = self.call("Target.getTargets")["targetInfos"]
        page = next(t for t in targets if t["type"] == "page")
        self.session = self.call("Target.attachToTarget", targetId=page["targetId"],
                                 flatten=True)["sessionId"]
        for domain in ("Page", "Runtime", "Network", "Log"):
            self.call(f"{domain}.enable", session=True)

    def _receive(self, deadline: float) -> dict:
        while b"\0" not in self._buffer:
            ready, _, _ = select.select([self._from_browser], [], [], max(0.0, deadline - time.time()))
            if not ready:
                raise TimeoutError("Chromium did not answer in time")
            chunk = os.read(self._from_browser, 1 << 20)
            if not chunk:
                raise EOFError("Chromium closed the DevTools pipe")
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def call(self, method: str, *, session: bool = False, timeout: float = PAGE_TIMEOUT,
             **params) -> dict:
        """Send one command and wait for its answer, keeping the events that arrive meanwhile."""
        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params}
        if session:
            message["sessionId"] = self.session
        os.write(self._to_browser, json.dumps(message).encode() + b"\0")
        deadline = time.time() + timeout
        while True:
            answer = self._receive(deadline)
            if answer.get("id") == self._next_id:
                if "error" in answer:
                    raise RuntimeError(f"{method}: {answer['error']}")
                return answer["result"]
            self.events.append(answer)

    def wait_for_event(self, method: str, timeout: float = PAGE_TIMEOUT) -> dict:
        deadline = time.time() + timeout
        for i, event in enumerate(self.events):
            if event.get("method") == method:
                return self.events.pop(i)
        while True:
            event = self._receive(deadline)
            if event.get("method") == method:
                return event
            self.events.append(event)

    def evaluate(self, expression: str, timeout: float = PAGE_TIMEOUT):
        result = self.call("Runtime.evaluate", session=True, timeout=timeout,
                           expression=expression, awaitPromise=True, returnByValue=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"script failed: {result['exceptionDetails']}")
        return result["result"].get("value")

    def close(self):
        try:
            self.call("Browser.close", timeout=10)
        except (TimeoutError, EOFError, RuntimeError, OSError):
            pass
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        for fd in (self._to_browser, self._from_browser):
            try:
                os.close(fd)
            except OSError:
                pass
        shutil.rmtree(self.profile, ignore_errors=True)


class _Ids(html.parser.HTMLParser):
    """The ids (and <a name>s) of a static HTML file, for links into pages not opened."""

    def __init__(self):
        super().__init__()
        self.ids: set[str] = set()

    def handle_starttag(self, tag, attrs):
        for key, value in attrs:
            if key == "id" or (tag == "a" and key == "name"):
                self.ids.add(value or "")


def static_ids(path: Path) -> set[str]:
    parser = _Ids()
    parser.feed(path.read_text(encoding="utf-8", errors="replace"))
    return parser.ids


def read_config() -> dict:
    """repository.url and repository.branch from _config.yml."""
    text = (ROOT / "_config.yml").read_text()
    block = re.search(r"^repository:\n((?:[ \t]+.*\n)+)", text, re.MULTILINE)
    if not block:
        raise SystemExit("_config.yml has no repository: section")
    fields = dict(re.findall(r"^[ \t]+(\w+):[ \t]*(\S*)", block.group(1), re.MULTILINE))
    return {"url": fields["url"].strip("\"'").rstrip("/"), "branch": fields["branch"].strip("\"'")}


def toc_notebooks() -> list[str]:
    """Document names (such as ``book/gaussian_unknown_mean``) of the toc's notebooks."""
    files = re.findall(r"^\s*-?\s*file:\s*(\S+)", (ROOT / "_toc.yml").read_text(), re.MULTILINE)
    return [f for f in files if (ROOT / f"{f}.ipynb").exists()]


def file_url(path: Path) -> str:
    return path.resolve().as_uri()


def check_page(browser: Chromium, html_root: Path, page: Path, shots: Path | None,
               chapters: dict[str, str]) -> tuple[list[str], dict]:
    """Load one page, return (problems, facts) and save its screenshot."""
    problems: list[str] = []
    browser.events.clear()
    browser.call("Emulation.setDeviceMetricsOverride", session=True, width=WIDTH, height=HEIGHT,
                 deviceScaleFactor=1, mobile=False)
    browser.call("Page.navigate", session=True, url=file_url(page))
    browser.wait_for_event("Page.loadEventFired")
    browser.evaluate(SETTLE_JS)
    facts = browser.evaluate(INSPECT_JS)
    # Lay the whole page out at once (so nothing waits for scrolling), let it settle again,
    # then inspect it and take the screenshot.
    browser.call("Emulation.setDeviceMetricsOverride", session=True, width=WIDTH,
                 height=min(max(facts["height"], HEIGHT), 60000), deviceScaleFactor=1,
                 mobile=False)
    browser.evaluate(SETTLE_JS)
    facts = browser.evaluate(INSPECT_JS)
    if shots is not None:
        shot = browser.call("Page.captureScreenshot", session=True, format="png",
                            captureBeyondViewport=True)
        name = page.relative_to(html_root).with_suffix(".png").as_posix().replace("/", "__")
        (shots / name).write_bytes(base64.b64decode(shot["data"]))

    # Math: rendered by MathJax, without TeX errors, and no raw TeX left in the text.
    if facts["math_unrendered"]:
        problems.append(f"{facts['math_unrendered']} of {facts['math']} math elements were "
                        "not typeset by MathJax")
    if facts["math"] and not facts["mjx"]:
        problems.append("the page has math but no MathJax output (is MathJax served?)")
    for error in facts["mjx_errors"]:
        problems.append(f"MathJax error: {error}")
    for what, pattern in RAW_TEX:
        for match in list(pattern.finditer(facts["prose"]))[:3]:
            context = facts["prose"][max(0, match.start() - 40):match.end() + 40]
            problems.append(f"raw TeX ({what}) in the text: ...{' '.join(context.split())}...")

    # Images: all loaded; a chapter shows figures, each with alt text.
    for image in facts["images"]:
        if not image["ok"]:
            problems.append(f"image did not load: {image['src']}")
    doc = page.relative_to(html_root).with_suffix("").as_posix()
    figures = [i for i in facts["images"] if i["output"] and i["ok"]]
    if doc in chapters:
        if not figures:
            problems.append("chapter shows no figure (no image in its cell outputs)")
        for image in figures:
            if image["shown"] and image["width"] > MAX_SHRINK * image["shown"]:
                problems.append(
                    f"figure {image['src']} is {image['width']} px wide but shown at "
                    f"{image['shown']} px: its text shrinks to {image['shown'] / image['width']:.0%}"
                    " (keep figures within about 9 inches)")
            alt = image["alt"].strip()
            if not alt or alt == image["src"] or re.fullmatch(r"\S+\.(png|svg|jpe?g)", alt):
                problems.append(f"figure without alt text: {image['src']}")

    # Errors: in cell outputs, on the page, in the browser.
    for output in facts["outputs"]:
        match = ERROR_TEXT.search(output)
        if match:
            problems.append("error in a cell output: "
                            + " ".join(output[match.start():match.start() + 160].split()))
    problems += [f"error block on the page: {b}" for b in facts["error_blocks"]]
    for event in browser.events:
        method, params = event.get("method"), event.get("params", {})
        if method == "Runtime.exceptionThrown":
            details = params["exceptionDetails"]
            text = details.get("exception", {}).get("description") or details.get("text")
            problems.append(f"JavaScript exception: {text}")
        elif method == "Runtime.consoleAPICalled" and params.get("type") == "error":
            args = " ".join(str(a.get("value", a.get("description", ""))) for a in params["args"])
            if not THEME_MODE_NOTICE.fullmatch(args):
                problems.append(f"console error: {args}")
        elif method == "Log.entryAdded" and params["entry"]["level"] == "error":
            problems.append(f"browser error: {params['entry'].get('text')} "
                            f"{params['entry'].get('url', '')}")
        elif method == "Network.requestWillBeSent":
            url = params["request"]["url"]
            if not url.startswith(("file:", "data:", "blob:", "about:")):
                problems.append(f"the page requests a network resource: {url}")
        elif method == "Network.loadingFailed" and not params.get("canceled"):
            problems.append(f"resource failed to load: {params.get('errorText')} "
                            f"({params.get('type')})")

    # The Colab launch button of a chapter points at its own notebook in the repository.
    if doc in chapters:
        expected = chapters[doc]
        if expected not in facts["links"]:
            problems.append(f"no Colab launch button to {expected}")
    return problems, facts


def check_links(html_root: Path, pages: dict[Path, dict]) -> dict[Path, list[str]]:
    """Every link to a local file resolves; with a fragment, to an existing id."""
    problems: dict[Path, list[str]] = {}
    ids = {page: set(facts["ids"]) for page, facts in pages.items()}
    for page, facts in pages.items():
        for href in sorted(set(facts["links"]) | set(facts["resources"])):
            parsed = urllib.parse.urlparse(href)
            if parsed.scheme != "file":
                continue
            target = Path(urllib.parse.unquote(parsed.path))
            if not target.exists():
                problems.setdefault(page, []).append(f"broken link: {href}")
                continue
            if parsed.fragment and target.suffix == ".html":
                if target not in ids:
                    ids[target] = static_ids(target)
                if urllib.parse.unquote(parsed.fragment) not in ids[target]:
                    problems.setdefault(page, []).append(f"link to a missing anchor: {href}")
    return problems


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("html", type=Path, help="the built book, e.g. _build/html")
    parser.add_argument("--screenshots", type=Path, default=None,
                        help="folder for a full-page PNG of every page (emptied first)")
    parser.add_argument("--chromium", default=CHROMIUM)
    args = parser.parse_args(argv)
    html_root = args.html.resolve()
    if not (html_root / "index.html").exists():
        print(f"no built book at {args.html} (run `make book` first)", file=sys.stderr)
        return 1
    if not Path(args.chromium).exists():
        print(f"{args.chromium} is missing: `make /usr/bin/chromium` installs it",
              file=sys.stderr)
        return 1
    if args.screenshots is not None:
        shutil.rmtree(args.screenshots, ignore_errors=True)
        args.screenshots.mkdir(parents=True)

    repo = read_config()
    owner_name = urllib.parse.urlparse(repo["url"]).path.strip("/")
    chapters = {doc: f"https://colab.research.google.com/github/{owner_name}/blob/"
                     f"{repo['branch']}/{doc}.ipynb" for doc in toc_notebooks()}
    pages = sorted(p for p in html_root.rglob("*.html")
                   if not p.relative_to(html_root).parts[0].startswith(("_", ".")))
    missing = [doc for doc in chapters if not (html_root / f"{doc}.html").exists()]

    browser = Chromium(args.chromium)
    results: dict[Path, list[str]] = {}
    facts: dict[Path, dict] = {}
    try:
        for page in pages:
            redirect = REDIRECT.search(page.read_text(encoding="utf-8", errors="replace"))
            if redirect:  # such as index.html: check its target exists, there is nothing to see
                target = (page.parent / redirect.group(1)).resolve()
                results[page] = [] if target.exists() else [f"redirects to a missing {target}"]
                print(f"{'ok  ' if target.exists() else 'FAIL'} {page.relative_to(html_root)}: "
                      f"redirects to {redirect.group(1)}")
                continue
            start = time.time()
            try:
                results[page], facts[page] = check_page(browser, html_root, page,
                                                        args.screenshots, chapters)
            except (TimeoutError, RuntimeError) as error:
                results[page] = [f"could not check the page: {error}"]
            info = facts.get(page, {})
            print(f"{'ok  ' if not results[page] else 'FAIL'} "
                  f"{page.relative_to(html_root)}: {info.get('mjx', 0)} formulas, "
                  f"{sum(i['ok'] for i in info.get('images', []))} images, "
                  f"{time.time() - start:.1f} s", flush=True)
    finally:
        browser.close()
    for page, link_problems in check_links(html_root, facts).items():
        results[page] += link_problems

    failures = {page: p for page, p in results.items() if p}
    for doc in missing:
        failures[html_root / f"{doc}.html"] = ["chapter page missing from the build"]
    for page, problems in failures.items():
        print(f"\n{page.relative_to(html_root)}:")
        for problem in problems:
            print(f"  - {problem}")
    print(f"\n{len(pages)} pages checked, {len(failures)} with problems"
          + (f"; screenshots in {args.screenshots}" if args.screenshots else ""))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
