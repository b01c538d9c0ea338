"""The whole book as one PDF, printed from the built HTML by headless Chromium.

Usage: python tools/make_pdf.py _build/html [--out _build/html/amortized-inference.pdf]

It joins the articles of every page of the table of contents, in reading order, into one HTML
page (``_pdf/whole-book.html`` inside the build, with the theme's styles and the book's own
MathJax), opens it in the same Chromium as the browser test (Playwright, Debian's
``/usr/bin/chromium``), waits until MathJax has typeset the math and the figures have loaded,
opens the folded solutions, and prints it on A4 with the print styles of
``book_static/book.css``
(code and outputs wrap), a page number in the footer and an outline of the headings. The pages
are the HTML build's own output, so the PDF shows exactly what the executed notebooks show,
without building or executing anything again.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import urllib.parse
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import browser_check  # noqa: E402

PDF_NAME = "amortized-inference.pdf"
ARTICLE = re.compile(r'(<article class="bd-article">)(.*?)(</article>)', re.DOTALL)
URL_ATTRIBUTE = re.compile(r'\b(src|href)="([^"]*)"')
# The theme prints one page with a print-only title and contents list of its own
# (#jb-print-docs-body) and hides the page's own first <h1>. In the whole book that would hide
# every page's title (and drop it from the PDF's outline) under the first page's title and
# contents: each page shows its own title instead.
PRINT_STYLE = """<style>
@media print {
  #jb-print-docs-body { display: none !important; }
  .bd-main .bd-content .bd-article .book-pdf-page h1:first-of-type { display: block; }
}
</style>"""
FOOTER = ('<div style="font-size: 8px; width: 100%; text-align: center; color: #555;">'
          '<span class="pageNumber"></span> / <span class="totalPages"></span></div>')


def relocate(html: str, page: Path, target: Path) -> str:
    """Rewrite the relative URLs of ``html`` (from ``page``) to work from ``target``."""

    def move(match: re.Match) -> str:
        attribute, url = match.groups()
        parsed = urllib.parse.urlparse(url)
        if parsed.scheme or url.startswith(("#", "/", "data:")) or not parsed.path:
            return match.group(0)
        absolute = (page.parent / urllib.parse.unquote(parsed.path)).resolve()
        moved = Path(os.path.relpath(absolute, target.parent)).as_posix()
        fragment = f"#{parsed.fragment}" if parsed.fragment else ""
        return f'{attribute}="{urllib.parse.quote(moved)}{fragment}"'

    return URL_ATTRIBUTE.sub(move, html)


def whole_book(html_root: Path) -> Path:
    """Write the one page holding every page's article; return its path."""
    pages = [html_root / f"{doc}.html" for doc in browser_check.toc_files()]
    missing = [str(p) for p in pages if not p.exists()]
    if missing:
        raise SystemExit(f"pages missing from the build (run `make book`): {missing}")
    target = html_root / "_pdf" / "whole-book.html"
    target.parent.mkdir(exist_ok=True)
    articles = []
    for i, page in enumerate(pages):
        match = ARTICLE.search(page.read_text(encoding="utf-8"))
        if not match:
            raise SystemExit(f"{page} has no <article class=\"bd-article\">")
        style = ' style="break-before: page"' if i else ""
        articles.append(f'<section class="book-pdf-page"{style}>'
                        f"{relocate(match.group(2), page, target)}</section>")
    # The first page's frame (head, styles, scripts) around all the articles.
    first = relocate(pages[0].read_text(encoding="utf-8"), pages[0], target)
    if "mathjax" not in first.split("</head>")[0].lower():
        raise SystemExit(f"{pages[0]} does not load MathJax: the PDF would show raw TeX")
    body = "\n".join(articles)
    first = first.replace("</head>", f"{PRINT_STYLE}\n</head>", 1)
    target.write_text(ARTICLE.sub(lambda m: m.group(1) + body + m.group(3), first, count=1),
                      encoding="utf-8")
    return target


def print_pdf(source: Path, out: Path, chromium: str = browser_check.CHROMIUM) -> None:
    """Open ``source`` in headless Chromium, let it settle, and print it to ``out``."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium,
                                             args=browser_check.FLAGS)
        try:
            page = browser.new_page(viewport=browser_check.DESKTOP)
            page.set_default_timeout(10 * browser_check.PAGE_TIMEOUT * 1000)
            page.goto(source.resolve().as_uri(), wait_until="load")
            # The folded solutions (sphinx-design dropdowns) print open; hidden code stays hidden.
            page.evaluate("document.querySelectorAll('details.sd-dropdown')"
                          ".forEach(d => d.open = true)")
            page.evaluate(browser_check.SETTLE_JS)
            page.emulate_media(media="print")
            page.pdf(path=str(out), format="A4", print_background=True, outline=True,
                     tagged=True, display_header_footer=True, header_template="<span></span>",
                     footer_template=FOOTER,
                     margin={"top": "15mm", "bottom": "15mm", "left": "10mm", "right": "10mm"})
        finally:
            browser.close()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("html", type=Path, help="the built book, e.g. _build/html")
    parser.add_argument("--out", type=Path, default=None,
                        help=f"the PDF (default: {PDF_NAME} in the built book)")
    parser.add_argument("--chromium", default=browser_check.CHROMIUM)
    args = parser.parse_args(argv)
    out = args.out or args.html / PDF_NAME
    source = whole_book(args.html.resolve())
    print_pdf(source, out, args.chromium)
    print(f"The book as one PDF: {out} ({out.stat().st_size / 1e6:.1f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
