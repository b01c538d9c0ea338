"""Open every page of the built book in headless Chromium and check it as readers see it.

Usage: python tools/browser_check.py _build/html [--screenshots DIR] [--pdf BOOK.pdf]

Playwright drives Debian's Chromium (``/usr/bin/chromium``, no browser download). Every HTML
page of the build is loaded from the files (``file://``, as an offline reader opens it) and,
once MathJax has typeset it and its images have loaded, looked at four ways:

- **desktop** (1280 x 900 CSS px): the math is rendered (every math element holds MathJax
  output, MathJax reported no TeX error, no raw TeX such as ``$...$``, ``$$``, ``\\(``,
  ``\\begin{`` or a ``\\command`` left in the text outside code); every image loaded; every
  chapter (a notebook of the table of contents) shows at least one figure from its outputs,
  each with alt text, drawn sharp (vector, or a bitmap of at least 2 device pixels per CSS
  pixel) and with its smallest text at least ``MIN_TEXT_PX['desktop']`` CSS px high; no code
  or output block scrolls sideways; no error (no traceback or ``...Error:`` line in an output,
  no error or stderr block, no Sphinx system message, no JavaScript exception or console error,
  no resource that failed or that needs the network); no ``nan`` and no ``WARNING`` or
  ``Warning:`` in a cell's output; every chapter has the Colab launch button for its own
  notebook, at the repository and branch of ``_config.yml``;
- **phone** (400 x 800): no element makes the page wider than the screen, and figure text is at
  least ``MIN_TEXT_PX['phone']`` CSS px high (at 2 device pixels per CSS pixel);
- **dark mode** (the theme's dark colours): figures keep a light panel, unfiltered, so that
  their black text and white background stay as drawn;
- **print** (the width of an A4 page between 1 cm margins): no code or output block is cut
  off (scrolls sideways, which paper cannot).

Every internal link must resolve to an existing file and, with a ``#fragment``, to an element
with that id. The API reference must have one page per module of ``amortlib`` naming every entry
of that module's ``__all__``. With ``--pdf``, the book's PDF (``make pdf``) is checked too: its
page count, the title of every page of the book in its outline, MathJax's fonts for the math,
and at least as many figures as the HTML book has.

It saves full-page screenshots (desktop and phone) and the first screen in dark mode of every
page into the screenshots folder, prints one line per page and a summary of the measurements,
and exits with status 1 if any check failed.
"""

from __future__ import annotations

import argparse
import ast
import html.parser
import re
import shutil
import struct
import sys
import time
import urllib.parse
import zlib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
# Headless, and nothing that reaches for the network (the machine, like a reader on a train,
# may be offline). --no-sandbox: CI runs as root.
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
]
DESKTOP = {"width": 1280, "height": 900}  # a laptop browser window, in CSS pixels
PHONE = {"width": 400, "height": 800}  # a phone held upright
PRINT_WIDTH = 718  # A4 (210 mm) less two 1 cm margins, at 96 CSS px per inch
PAGE_TIMEOUT = 60.0  # seconds for a page to load and typeset
# The smallest figure text, in CSS pixels, that a reader can still read: at a desktop's reading
# distance, and on a phone (held closer, with 2-3 device pixels per CSS pixel; vector figures
# stay sharp, and a reader can zoom).
MIN_TEXT_PX = {"desktop": 9.0, "phone": 6.0}
# A bitmap figure needs this many pixels per CSS pixel to stay sharp on a high-density screen.
MIN_DENSITY = 2.0
# The smallest font (pt) assumed in a bitmap figure, whose text cannot be measured:
# matplotlib's "small" at its default 10 pt.
BITMAP_FONT_PT = 10.0 / 1.2

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
# What a reader should never see in an output: a NaN, or a warning (TensorFlow's "WARNING:",
# Python's "...Warning: ").
NAN_TEXT = re.compile(r"(?<![\w.])nan(?![\w(])", re.IGNORECASE)
WARNING_TEXT = re.compile(r"WARNING|Warning:")

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
      src: img.src, alt: img.getAttribute('alt') || '',
      ok: img.complete && img.naturalWidth > 0, width: img.naturalWidth,
      shown: img.getBoundingClientRect().width,
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

# The code and output blocks of the page, and which of them scroll sideways (or, in print, are
# cut off): a block whose content is wider than its box (in itself or in a box around it inside
# the main column), or that sticks out of the main column.
BLOCKS_JS = r"""
(() => {
  const main = document.querySelector('main') || document.body;
  const blocks = Array.from(main.querySelectorAll(
      'pre, .cell_output table, .cell_output .text_html'))
      .filter(e => !e.parentElement.closest('pre'));
  const label = e => (e.closest('.cell_output') ? 'output' :
                      e.closest('.cell_input') ? 'code cell' : 'code') +
      ' "' + e.textContent.trim().split('\n')[0].slice(0, 60) + '"';
  const column = main.getBoundingClientRect().right;
  const wide = [];
  for (const e of blocks) {
    let over = 0;
    for (let a = e; a && a !== main; a = a.parentElement) {
      if (a.clientWidth > 0 && a.scrollWidth > a.clientWidth + 1) {
        over = a.scrollWidth - a.clientWidth;
        break;
      }
    }
    over = Math.max(over, Math.round(e.getBoundingClientRect().right - column));
    if (over > 1) wide.push(label(e) + ' by ' + over + ' px');
  }
  return {count: blocks.length, wide: wide};
})()
"""

# Elements that stick out of the viewport on the right (and so widen the page) that are not
# inside a box that scrolls or clips them.
WIDE_PAGE_JS = r"""
(() => {
  const vw = window.innerWidth;
  const page = Math.max(document.documentElement.scrollWidth, document.body.scrollWidth);
  const clipped = e => {
    for (let a = e.parentElement; a && a !== document.body; a = a.parentElement) {
      const s = getComputedStyle(a);
      if (s.overflowX !== 'visible' && s.overflowX !== 'clip' || s.position === 'fixed')
        return true;
      if (s.overflowX === 'clip') return true;
    }
    return false;
  };
  const culprits = [];
  if (page > vw + 1) {
    for (const e of document.body.querySelectorAll('*')) {
      const r = e.getBoundingClientRect();
      if (r.right > vw + 1 && r.width > 0 && !clipped(e)) {
        const inner = Array.from(e.children).some(c => c.getBoundingClientRect().right > vw + 1);
        const cls = typeof e.className === 'string' && e.className.trim()
            ? '.' + e.className.trim().split(/\s+/).join('.') : '';
        if (!inner) culprits.push(e.tagName.toLowerCase() + cls +
            ' "' + e.textContent.trim().slice(0, 50) + '" reaches ' + Math.round(r.right) + ' px');
      }
      if (culprits.length >= 5) break;
    }
  }
  return {viewport: vw, width: page, culprits: culprits,
          height: Math.ceil(document.documentElement.scrollHeight)};
})()
"""

# How the figures of the cell outputs look: shown size, filter, and the colour behind them.
FIGURES_JS = r"""
(() => {
  const main = document.querySelector('main') || document.body;
  const background = e => {
    for (let a = e; a; a = a.parentElement) {
      const c = getComputedStyle(a).backgroundColor;
      const m = c.match(/rgba?\(([\d.]+),\s*([\d.]+),\s*([\d.]+)(?:,\s*([\d.]+))?\)/);
      if (m && (m[4] === undefined || +m[4] > 0.5)) return [+m[1], +m[2], +m[3]];
    }
    return [255, 255, 255];
  };
  return Array.from(main.querySelectorAll('.cell_output img')).map(img => ({
    src: img.src, shown: img.getBoundingClientRect().width,
    filter: getComputedStyle(img).filter, background: background(img)}));
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
  await sleep(150);
  window.scrollTo(0, 0);
  await new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)));
  return true;
})()
"""

# The theme's dark mode, as its light/dark button sets it.
DARK_JS = r"""
(() => {
  document.documentElement.dataset.mode = 'dark';
  document.documentElement.dataset.theme = 'dark';
})()
"""


# --- figures: how big their text is ------------------------------------------------------------

def svg_text(data: bytes) -> tuple[float, float] | None:
    """(width of the drawing in its own units, smallest font size in those units) of an SVG.

    Matplotlib draws each text as glyph paths in a group ``scale(s -s)`` with ``s`` its font size
    over 100 (sub- and superscripts scale again inside that group, and are not counted); SVG text
    elements give their font size directly. None if the file has no text.
    """
    text = data.decode("utf-8", errors="replace")
    box = re.search(r'viewBox="\s*[-\d.]+[\s,]+[-\d.]+[\s,]+([\d.]+)', text)
    width = re.search(r'<svg[^>]*\swidth="([\d.]+)', text)
    if not (box or width):
        return None
    units = float(box.group(1) if box else width.group(1))
    sizes = [100 * float(a) for a, b in re.findall(r"scale\(([\d.]+) -([\d.]+)\)", text)
             if a == b]
    sizes += [float(s) for s in re.findall(r"font(?:-size)?:[^;\"]*?([\d.]+)px", text)]
    return (units, min(sizes)) if sizes else None


def png_dpi(data: bytes) -> float | None:
    """The resolution stored in a PNG (pHYs chunk, as matplotlib writes it), in dots per inch."""
    at = data.find(b"pHYs")
    if at < 0:
        return None
    x, _, unit = struct.unpack(">IIB", data[at + 4:at + 13])
    return x * 0.0254 if unit == 1 else None


def local_file(url: str) -> Path | None:
    parsed = urllib.parse.urlparse(url)
    return Path(urllib.parse.unquote(parsed.path)) if parsed.scheme == "file" else None


def figure_text(src: str, natural: float, shown: float) -> dict:
    """The smallest text of a figure as shown (CSS px), whether it is vector, its density."""
    path = local_file(src)
    if path is None or not path.exists() or not shown:
        return {}
    data = path.read_bytes()
    if path.suffix.lower() == ".svg":
        measured = svg_text(data)
        if measured is None:
            return {"vector": True}
        units, smallest = measured
        return {"vector": True, "text_px": smallest * shown / units}
    dpi = png_dpi(data) if data[:8] == b"\x89PNG\r\n\x1a\n" else None
    density = natural / shown
    info = {"vector": False, "density": density}
    if dpi:
        info["text_px"] = BITMAP_FONT_PT * dpi / 72 / density
    return info


# --- the pages -------------------------------------------------------------------------------

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


def toc_files() -> list[str]:
    """Document names (such as ``book/intro``) of the table of contents, in reading order."""
    text = (ROOT / "_toc.yml").read_text()
    root = re.search(r"^root:\s*(\S+)", text, re.MULTILINE)
    files = re.findall(r"^\s*-?\s*file:\s*(\S+)", text, re.MULTILINE)
    return ([root.group(1)] if root else []) + files


def toc_notebooks() -> list[str]:
    """Document names (such as ``book/gaussian_unknown_mean``) of the toc's notebooks."""
    return [f for f in toc_files() if (ROOT / f"{f}.ipynb").exists()]


def module_names() -> dict[str, list[str]]:
    """``{module: its __all__}`` for every public module of amortlib (read, not imported)."""
    names = {}
    for path in sorted((ROOT / "amortlib").glob("*.py")):
        if path.stem.startswith("_"):
            continue
        for node in ast.parse(path.read_text()).body:
            if (isinstance(node, ast.Assign) and len(node.targets) == 1
                    and getattr(node.targets[0], "id", None) == "__all__"):
                names[path.stem] = list(ast.literal_eval(node.value))
        names.setdefault(path.stem, [])
    return names


def file_url(path: Path) -> str:
    return path.resolve().as_uri()


def shot_name(html_root: Path, page: Path, view: str) -> str:
    return page.relative_to(html_root).with_suffix("").as_posix().replace("/", "__") + \
        f".{view}.png"


class Browser:
    """One Chromium page, reused for every page of the book, with what it logged."""

    def __init__(self, executable: str = CHROMIUM):
        from playwright.sync_api import sync_playwright

        self._playwright = sync_playwright().start()
        self.browser = self._playwright.chromium.launch(executable_path=executable, args=FLAGS)
        self.context = self.browser.new_context(viewport=DESKTOP, device_scale_factor=1)
        self.page = self.context.new_page()
        self.page.set_default_timeout(PAGE_TIMEOUT * 1000)
        self.events: list[str] = []
        self.page.on("pageerror", lambda e: self.events.append(f"JavaScript exception: {e}"))
        self.page.on("console", self._console)
        self.page.on("request", self._request)
        self.page.on("requestfailed", lambda r: self.events.append(
            f"resource failed to load: {r.failure} ({r.resource_type}) {r.url}"))

    def _console(self, message):
        if message.type == "error" and not THEME_MODE_NOTICE.fullmatch(message.text):
            self.events.append(f"console error: {message.text}")

    def _request(self, request):
        if not request.url.startswith(("file:", "data:", "blob:", "about:")):
            self.events.append(f"the page requests a network resource: {request.url}")

    def close(self):
        try:
            self.browser.close()
        finally:
            self._playwright.stop()


def check_page(browser: Browser, html_root: Path, page: Path, shots: Path | None,
               chapters: dict[str, str]) -> tuple[list[str], dict]:
    """Load one page in the four views, return (problems, facts) and save its screenshots."""
    problems: list[str] = []
    tab = browser.page
    browser.events.clear()
    tab.emulate_media(media="screen", color_scheme="light")
    tab.set_viewport_size(DESKTOP)
    tab.goto(file_url(page), wait_until="load")
    tab.evaluate(SETTLE_JS)
    facts = tab.evaluate(INSPECT_JS)
    doc = page.relative_to(html_root).with_suffix("").as_posix()
    if shots is not None:
        tab.screenshot(path=shots / shot_name(html_root, page, "desktop"), full_page=True)

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

    # Images: all loaded; a chapter shows figures, each with alt text, sharp, text readable.
    for image in facts["images"]:
        if not image["ok"]:
            problems.append(f"image did not load: {image['src']}")
    figures = [i for i in facts["images"] if i["output"] and i["ok"]]
    facts["figures"] = []
    if doc in chapters and not figures:
        problems.append("chapter shows no figure (no image in its cell outputs)")
    for image in figures:
        name = Path(urllib.parse.urlparse(image["src"]).path).name
        alt = image["alt"].strip()
        if not alt or alt == image["src"] or re.fullmatch(r"\S+\.(png|svg|jpe?g)", alt):
            problems.append(f"figure without alt text: {name}")
        info = figure_text(image["src"], image["width"], image["shown"])
        info["name"] = name
        facts["figures"].append(info)
        if not info.get("vector") and info.get("density", MIN_DENSITY) < MIN_DENSITY:
            problems.append(f"figure {name} is blurry: a bitmap with {info['density']:.2f} "
                            f"pixels per CSS pixel (vector or at least {MIN_DENSITY:g} needed)")
        if info.get("text_px", 99) < MIN_TEXT_PX["desktop"]:
            problems.append(f"figure {name}: its smallest text is {info['text_px']:.1f} px high "
                            f"at desktop width (at least {MIN_TEXT_PX['desktop']:g} px needed)")

    # Outputs: no error, no NaN, no warning; errors on the page and in the browser.
    for output in facts["outputs"]:
        for pattern, what in ((ERROR_TEXT, "error"), (NAN_TEXT, "nan"),
                              (WARNING_TEXT, "warning")):
            match = pattern.search(output)
            if match:
                problems.append(f"{what} in a cell output: "
                                + " ".join(output[max(0, match.start() - 40):
                                                  match.start() + 120].split()))
    problems += [f"error block on the page: {b}" for b in facts["error_blocks"]]

    # Code and output blocks fit the column at desktop width.
    blocks = tab.evaluate(BLOCKS_JS)
    facts["blocks"], facts["wide_blocks"] = blocks["count"], len(blocks["wide"])
    problems += [f"scrolls sideways at {DESKTOP['width']} px: {b}" for b in blocks["wide"]]

    # The Colab launch button of a chapter points at its own notebook in the repository.
    if doc in chapters and chapters[doc] not in facts["links"]:
        problems.append(f"no Colab launch button to {chapters[doc]}")

    # Phone: nothing widens the page; figure text at phone width.
    tab.set_viewport_size(PHONE)
    tab.evaluate(SETTLE_JS)
    phone = tab.evaluate(WIDE_PAGE_JS)
    facts["phone_width"], facts["phone_height"] = phone["width"], phone["height"]
    if phone["width"] > phone["viewport"] + 1:
        problems.append(f"page is {phone['width']} px wide on a {phone['viewport']} px phone: "
                        + "; ".join(phone["culprits"]))
    facts["phone_text_px"] = []
    for shown in tab.evaluate(FIGURES_JS):
        image = next((i for i in figures if i["src"] == shown["src"]), None)
        if image is None:
            continue
        info = figure_text(shown["src"], image["width"], shown["shown"])
        if "text_px" in info:
            facts["phone_text_px"].append(info["text_px"])
            if info["text_px"] < MIN_TEXT_PX["phone"]:
                name = Path(urllib.parse.urlparse(shown["src"]).path).name
                problems.append(f"figure {name}: its smallest text is {info['text_px']:.1f} px "
                                f"high on a phone (at least {MIN_TEXT_PX['phone']:g} px needed)")
    if shots is not None:
        tab.screenshot(path=shots / shot_name(html_root, page, "phone"), full_page=True)

    # Dark mode: figures on a light panel, not filtered into grey.
    tab.set_viewport_size(DESKTOP)
    tab.emulate_media(media="screen", color_scheme="dark")
    tab.evaluate(DARK_JS)
    tab.evaluate(SETTLE_JS)
    for shown in tab.evaluate(FIGURES_JS):
        name = Path(urllib.parse.urlparse(shown["src"]).path).name
        light = sum(c * w for c, w in zip(shown["background"], (0.2126, 0.7152, 0.0722))) / 255
        if shown["filter"] not in ("none", ""):
            problems.append(f"figure {name} in dark mode is filtered ({shown['filter']})")
        if light < 0.9:
            problems.append(f"figure {name} in dark mode sits on a grey or dark panel "
                            f"(rgb{tuple(shown['background'])})")
    if shots is not None:
        tab.screenshot(path=shots / shot_name(html_root, page, "dark"))

    # Print: nothing cut off on an A4 page.
    tab.emulate_media(media="print", color_scheme="light")
    tab.set_viewport_size({"width": PRINT_WIDTH, "height": DESKTOP["height"]})
    tab.evaluate(SETTLE_JS)
    printed = tab.evaluate(BLOCKS_JS)
    facts["print_cut"] = len(printed["wide"])
    problems += [f"cut off in print: {b}" for b in printed["wide"]]

    problems += browser.events
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


def check_api(html_root: Path, pages: dict[Path, dict]) -> dict[Path, list[str]]:
    """One page per module (book/api/<module>.html) naming every entry of its __all__."""
    problems: dict[Path, list[str]] = {}
    for module, names in module_names().items():
        page = html_root / "book" / "api" / f"{module}.html"
        if not page.exists():
            problems[page] = [f"no API page for amortlib.{module}"]
            continue
        ids = set(pages[page]["ids"]) if page in pages else static_ids(page)
        missing = [n for n in names if f"amortlib.{module}.{n}" not in ids]
        if missing:
            problems[page] = [f"amortlib.{module}.{n} is in __all__ but not documented here"
                              for n in missing]
    return problems


# --- the PDF ---------------------------------------------------------------------------------

def pdf_string(data: bytes, at: int) -> tuple[str, int]:
    """The PDF string object starting at ``data[at]`` (a literal ``(...)`` or a hex ``<...>``),
    decoded, and the index just after it.

    A literal string may hold balanced parentheses and escapes (``\\(``, ``\\)``, ``\\\\``,
    ``\\n``, octal ``\\ddd``, a backslash before a line break); a string that starts with the
    byte order mark FE FF is UTF-16BE, any other PDFDocEncoding (read as Latin-1).
    """
    if data[at:at + 1] == b"<":
        end = data.index(b">", at)
        raw = bytes.fromhex(re.sub(rb"\s", b"", data[at + 1:end]).decode("ascii"))
        end += 1
    else:
        out = bytearray()
        depth, i = 0, at
        escapes = {ord("n"): b"\n", ord("r"): b"\r", ord("t"): b"\t", ord("b"): b"\b",
                   ord("f"): b"\f"}
        while True:
            c = data[i]
            if c == ord("\\"):
                n = data[i + 1]
                if n in escapes:
                    out += escapes[n]
                    i += 2
                elif chr(n) in "01234567":
                    digits = re.match(rb"[0-7]{1,3}", data[i + 1:i + 4]).group(0)
                    out.append(int(digits, 8) & 0xFF)
                    i += 1 + len(digits)
                elif n in b"\r\n":  # a line continuation
                    i += 3 if data[i + 1:i + 3] == b"\r\n" else 2
                else:  # \(, \), \\ and any other character: the character itself
                    out.append(n)
                    i += 2
                continue
            if c == ord("("):
                depth += 1
                if depth > 1:
                    out.append(c)
            elif c == ord(")"):
                depth -= 1
                if depth == 0:
                    break
                out.append(c)
            else:
                out.append(c)
            i += 1
        raw, end = bytes(out), i + 1
    if raw[:2] == b"\xfe\xff":
        return raw[2:].decode("utf-16-be", "replace"), end
    return raw.decode("latin-1"), end


def pdf_facts(path: Path) -> dict:
    """Pages, outline titles, fonts and drawn images of a PDF as Chromium writes it."""
    data = path.read_bytes()
    chunks = [data]
    for match in re.finditer(rb"/FlateDecode.*?stream\r?\n", data, re.DOTALL):
        start = match.end()
        end = data.find(b"endstream", start)
        try:
            chunks.append(zlib.decompress(data[start:end]))
        except zlib.error:
            pass
    whole = b"\n".join(chunks)
    # The outline's entries: the objects with a /Title and a /Parent (the document information
    # dictionary has a /Title too, and no /Parent).
    titles = []
    for match in re.finditer(rb"<<\s*/Title\s*([(<])", whole):
        title, end = pdf_string(whole, match.start(1))
        if re.search(rb"/Parent\b", whole[end:whole.find(b">>", end)]):
            titles.append(title)
    fonts = re.findall(rb"/(?:BaseFont|FontName)\s*/([^\s/>\[\]()<]+)", whole)
    return {
        "pages": len(re.findall(rb"/Type\s*/Page(?![s\w])", whole)),
        "titles": titles,
        "fonts": sorted({f.decode("latin-1").split("+", 1)[-1] for f in fonts}),
        "images": len(re.findall(rb"/Subtype\s*/(?:Image|Form)", whole)),
    }


class _Title(html.parser.HTMLParser):
    """The text of one ``<h1>`` without its heading link's "#" and without its math (whose TeX
    Chromium leaves out of the PDF's outline)."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.heading: str | None = None
        self._h1 = False
        self._skip: list[str] = []  # open elements whose text is not part of the title

    def handle_starttag(self, tag, attrs):
        if self.heading is not None:
            return
        if tag == "h1":
            self._h1, self.parts, self._skip = True, [], []
            return
        if not self._h1:
            return
        classes = (dict(attrs).get("class") or "").split()
        if self._skip or "headerlink" in classes or "math" in classes or tag in (
                "script", "style", "mjx-container"):
            self._skip.append(tag)

    def handle_endtag(self, tag):
        if self.heading is not None or not self._h1:
            return
        if self._skip:
            if tag == self._skip[-1]:
                self._skip.pop()
            return
        if tag == "h1":
            self._h1 = False
            self.heading = " ".join("".join(self.parts).split())

    def handle_data(self, data):
        if self._h1 and not self._skip:
            self.parts.append(data)


def page_title(page: Path) -> str:
    """The title of a built page: its first ``<h1>`` with a heading link (the page's own heading;
    the theme has an ``<h1>`` of its own before it), as ``_Title`` reads it; "" if none."""
    text = page.read_text(encoding="utf-8", errors="replace")
    for match in re.finditer(r"<h1\b[^>]*>(.*?)</h1>", text, re.DOTALL):
        if 'class="headerlink"' not in match.group(1):
            continue
        parser = _Title()
        parser.feed(match.group(0))
        return parser.heading or ""
    return ""


def squeeze(text: str) -> str:
    """``text`` without white space (Chromium joins the lines of a heading that wraps)."""
    return re.sub(r"\s+", "", text)


def in_outline(heading: str, titles: list[str]) -> bool:
    """Whether an entry of the PDF's outline is ``heading``, as Chromium writes it: the lines of
    a heading that wraps joined without a space, and sometimes one piece of it (a line, a link)
    written twice in a row, as in "SummarySummary" for "Summary"."""
    wanted = squeeze(heading)
    for title in map(squeeze, titles):
        extra = len(title) - len(wanted)
        if extra == 0 and title == wanted:
            return True
        if extra > 0 and any(title == wanted[:j] + wanted[j - extra:j] + wanted[j:]
                             for j in range(extra, len(wanted) + 1)):
            return True
    return False


def check_pdf(path: Path, html_root: Path, figures: int) -> list[str]:
    """The book's PDF: many pages, every page's title in its outline, math fonts, figures."""
    if not path.exists():
        return [f"no PDF at {path} (run `make pdf`)"]
    facts = pdf_facts(path)
    problems = []
    if facts["pages"] < 2 * len(toc_files()):
        problems.append(f"the PDF has {facts['pages']} pages, fewer than two per page of the "
                        f"book ({len(toc_files())} pages)")
    for doc in toc_files():
        page = html_root / f"{doc}.html"
        heading = page_title(page) if page.exists() else ""
        if not heading:
            problems.append(f"the page {doc} has no title (no <h1> with a heading link)")
        elif not in_outline(heading, facts["titles"]):
            problems.append(f"the PDF's outline lacks the page {heading!r}")
    if not any("MJX" in f.upper() or "MATHJAX" in f.upper() for f in facts["fonts"]):
        problems.append(f"the PDF has no MathJax font (math not rendered?): {facts['fonts']}")
    if facts["images"] < figures:
        problems.append(f"the PDF draws {facts['images']} images, fewer than the "
                        f"{figures} figures of the HTML book")
    print(f"PDF {path}: {facts['pages']} pages, {len(facts['titles'])} outline entries, "
          f"{facts['images']} images and forms, {len(facts['fonts'])} fonts")
    return problems


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("html", type=Path, help="the built book, e.g. _build/html")
    parser.add_argument("--screenshots", type=Path, default=None,
                        help="folder for screenshots of every page (emptied first)")
    parser.add_argument("--pdf", type=Path, default=None, help="the book's PDF to check too")
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

    browser = Browser(args.chromium)
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
            except Exception as error:  # a page that cannot be checked is a failure
                results[page] = [f"could not check the page: {type(error).__name__}: {error}"]
            info = facts.get(page, {})
            print(f"{'ok  ' if not results[page] else 'FAIL'} "
                  f"{page.relative_to(html_root)}: {info.get('mjx', 0)} formulas, "
                  f"{len(info.get('figures', []))} figures, {info.get('wide_blocks', 0)} of "
                  f"{info.get('blocks', 0)} blocks scroll, {info.get('height', 0)} px high, "
                  f"{info.get('phone_width', 0)} px wide on a phone, "
                  f"{time.time() - start:.1f} s", flush=True)
    finally:
        browser.close()
    for check in (check_links, check_api):
        for page, more in check(html_root, facts).items():
            results.setdefault(page, []).extend(more)

    failures = {page: p for page, p in results.items() if p}
    for doc in missing:
        failures[html_root / f"{doc}.html"] = ["chapter page missing from the build"]
    if args.pdf is not None:
        figures = sum(len(f.get("figures", [])) for f in facts.values())
        pdf_problems = check_pdf(args.pdf.resolve(), html_root, figures)
        if pdf_problems:
            failures[args.pdf.resolve()] = pdf_problems

    summarize(html_root, facts, chapters)
    for page, problems in failures.items():
        where = page.relative_to(html_root) if page.is_relative_to(html_root) else page
        print(f"\n{where}:")
        for problem in problems:
            print(f"  - {problem}")
    print(f"\n{len(pages)} pages checked, {len(failures)} with problems"
          + (f"; screenshots in {args.screenshots}" if args.screenshots else ""))
    return 1 if failures else 0


def summarize(html_root: Path, facts: dict[Path, dict], chapters: dict[str, str]) -> None:
    """The measurements, over the chapters and the API pages."""
    chapter_facts = [f for p, f in facts.items()
                     if p.relative_to(html_root).with_suffix("").as_posix() in chapters]
    figures = [g for f in chapter_facts for g in f.get("figures", [])]
    desktop = [g["text_px"] for g in figures if "text_px" in g]
    phone = [t for f in chapter_facts for t in f.get("phone_text_px", [])]
    print(f"\nchapters: {sum(f.get('wide_blocks', 0) for f in chapter_facts)} of "
          f"{sum(f.get('blocks', 0) for f in chapter_facts)} code and output blocks scroll "
          f"sideways at {DESKTOP['width']} px; "
          f"{sum(f.get('print_cut', 0) for f in chapter_facts)} cut off in print")
    if figures:
        print(f"figures: {len(figures)}, {sum(bool(g.get('vector')) for g in figures)} vector, "
              f"{sum(g.get('density', 0) >= MIN_DENSITY for g in figures)} bitmaps at >= "
              f"{MIN_DENSITY:g}x; smallest text {min(desktop, default=0):.1f} px at desktop "
              f"(median {sorted(desktop)[len(desktop) // 2] if desktop else 0:.1f}), "
              f"{min(phone, default=0):.1f} px on a phone")
    api = {p.relative_to(html_root).as_posix(): f for p, f in facts.items()
           if p.relative_to(html_root).as_posix().startswith("book/api")}
    if api:
        print(f"API pages: {len(api)}, tallest {max(f['height'] for f in api.values())} px at "
              f"desktop, widest on a phone {max(f.get('phone_width', 0) for f in api.values())} "
              f"px ({PHONE['width']} px screen)")


if __name__ == "__main__":
    sys.exit(main())
