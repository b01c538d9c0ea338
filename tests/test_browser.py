"""The browser test can fail: tools/browser_check.py on small synthetic pages, one defect each.

These tests drive Debian's Chromium through Playwright, so they need `/usr/bin/chromium` and the
`playwright` package; they carry the `browser` marker and live in their own file, so that the
unit tests run without them (`pytest tests -m "not browser"`, or without this file) and
`make browser-test` runs them (`pytest -m browser tests/test_browser.py`).
"""

from __future__ import annotations

import contextlib
import io
import re
import sys
from pathlib import Path

import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))

import browser_check  # noqa: E402

pytestmark = pytest.mark.browser


def svg(path: Path, width_pt: float, font_pt: float) -> None:
    """A matplotlib-like SVG: one line of text drawn as a glyph group ``scale(s -s)``."""
    scale = font_pt / 100
    path.write_text(
        f'<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" '
        f'width="{width_pt}pt" height="100pt" viewBox="0 0 {width_pt} 100">'
        f'<rect width="{width_pt}" height="100" fill="#fff"/>'
        f'<g id="text_1"><g transform="translate(10 50) scale({scale} -{scale})">'
        f'<path d="M 0 0 L 600 0 L 600 700 z"/></g></g></svg>')


HEAD = ("<html><head><title>{title}</title><style>"
        "pre {{ overflow: auto; white-space: pre; font: 13px monospace; }}"
        "html[data-theme=dark] .cell_output img {{ filter: brightness(.8);"
        " background: #ced6dd; padding: 8px; }}"
        "</style></head><body><main>")


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    """The browser check's report on a small site with one defect of each kind."""
    site = tmp_path_factory.mktemp("site")
    chapter, other_chapter = browser_check.toc_notebooks()[:2]
    (site / "book").mkdir()
    (site / "index.html").write_text(
        '<meta http-equiv="Refresh" content="0; url=book/page.html" />')
    long_line = "x = " + "1 + " * 40 + "1"  # 165 characters: wider than the column
    print_line = "y = " + "2 + " * 22 + "2"  # 93 characters: fits a desktop, not an A4 page
    (site / "book" / "page.html").write_text(HEAD.format(title="t") + f"""
      <p>Raw math: $\\alpha + 1$ and \\begin{{aligned}} x \\end{{aligned}}.</p>
      <span class="math">\\(x\\)</span>
      <img src="missing.png" alt="a figure">
      <div class="cell_output"><pre>Traceback (most recent call last):
ValueError: bad</pre></div>
      <div class="cell_output"><pre>loss: nan</pre></div>
      <div class="cell_output"><pre>WARNING:tensorflow: 5 out of the last 5 calls triggered
tf.function retracing</pre></div>
      <div class="cell_output"><pre>UserWarning: something</pre></div>
      <div class="cell_input"><pre>{long_line}</pre></div>
      <div class="cell_input"><pre>{print_line}</pre></div>
      <div style="width: 800px">a box as wide as a desktop's column</div>
      <a href="nowhere.html">broken</a> <a href="page.html#nosuchid">anchor</a>
      <pre>$code$ is fine</pre>
      <div class="cell_output"><pre>nanoseconds, nan_to_num, Nancy</pre></div>
      </main></body></html>""")
    (site / f"{chapter}.html").write_text(
        HEAD.format(title="c") + "<h1>Chapter c<a>#</a></h1><p>No figure.</p></main></body></html>")
    # A second chapter with figures: tiny text; text readable at desktop but not on a phone;
    # a blurry bitmap; one without alt text; and one good figure.
    svg(site / "book" / "tiny.svg", 648, 5)
    svg(site / "book" / "phone.svg", 648, 10)
    svg(site / "book" / "good.svg", 400, 12)
    Image.new("RGB", (300, 100), "white").save(site / "book" / "blurry.png", dpi=(100, 100))
    (site / f"{other_chapter}.html").write_text(
        HEAD.format(title="d") + "<h1>Chapter d<a>#</a></h1><div class='cell_output'>"
        "<img src='tiny.svg' alt='a figure with tiny text' style='max-width: 100%'>"
        "<img src='phone.svg' alt='a wide figure' style='max-width: 100%'>"
        "<img src='blurry.png' alt='a bitmap' style='width: 300px'>"
        "<img src='good.svg' alt='' style='max-width: 100%'>"
        "</div></main></body></html>")
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        status = browser_check.main([str(site), "--pdf", str(site / "missing.pdf")])
    return status, out.getvalue()


def test_fails_on_a_broken_site(report):
    status, _ = report
    assert status == 1


@pytest.mark.parametrize("expected", [
    # what the check did before Playwright
    "raw TeX ($...$)", "raw TeX (\\begin{)", "not typeset by MathJax", "image did not load",
    "error in a cell output", "broken link", "missing anchor", "chapter shows no figure",
    "no Colab launch button", "figure without alt text: good.svg",
    # the new checks
    "scrolls sideways at 1280 px: code cell \"x = 1 + 1",
    "cut off in print: code cell \"y = 2 + 2",
    "px wide on a 400 px phone: div \"a box as wide",
    "figure tiny.svg: its smallest text is 6.7 px high at desktop width",
    "figure phone.svg: its smallest text is",
    "figure blurry.png is blurry",
    "nan in a cell output: loss: nan",
    "warning in a cell output: WARNING:tensorflow",
    "warning in a cell output: UserWarning: something",
    "in dark mode is filtered (brightness(0.8))",
    "in dark mode sits on a grey or dark panel",
    "no API page for amortlib.models",
    "no PDF at",
])
def test_reports_each_defect(report, expected):
    assert expected in report[1], (expected, report[1])


def test_reports_no_false_alarm(report):
    text = report[1]
    assert "$code$" not in text
    assert "nanoseconds" not in text and "Nancy" not in text
    assert "good.svg: its smallest text" not in text
    # phone.svg is readable at desktop width and too small only on a phone
    assert re.findall(r"figure phone\.svg: its smallest text is [\d.]+ px high (on|at)",
                      text) == ["on"]


def test_pdf_check_reports_a_thin_pdf(tmp_path):
    """A one-page PDF with no outline, no math and no figure fails every PDF check."""
    (tmp_path / "book").mkdir()
    for doc in browser_check.toc_files():
        (tmp_path / f"{doc}.html").parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / f"{doc}.html").write_text(
            f'<h1>Title of {doc}<a class="headerlink" href="#t">#</a></h1>')
    print_pdf(tmp_path / "thin.pdf", "<p>one page</p>")
    problems = "\n".join(browser_check.check_pdf(tmp_path / "thin.pdf", tmp_path, figures=3))
    for expected in ["the PDF has 1 pages", "the PDF's outline lacks the page 'Title of book/",
                     "no MathJax font", "fewer than the 3 figures"]:
        assert expected in problems, (expected, problems)


def print_pdf(path: Path, body: str, width: str = "210mm") -> None:
    """Print an HTML body to a PDF with Chromium's outline of the headings, as make_pdf does."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=browser_check.CHROMIUM,
                                             args=browser_check.FLAGS)
        page = browser.new_page()
        page.set_content(f"<html><body>{body}</body></html>")
        page.pdf(path=str(path), width=width, height="297mm", outline=True, tagged=True)
        browser.close()


def test_pdf_check_finds_the_titles_in_the_outline(tmp_path):
    """No false alarm: each page's title is found in a real outline, although the page has the
    theme's print-only <h1> and "Contents" before its own heading, the title has math and a
    heading link, and in the PDF it wraps (Chromium joins its lines without a space and repeats
    the first); an entry that only contains a title does not count."""
    theme = ('<div class="onlyprint"><h1>Book</h1><div><h2>Contents</h2>'
             '<nav><ul><li><a href="#x">A section</a></li></ul></nav></div></div>')
    body = []
    for i, doc in enumerate(browser_check.toc_files()):
        title = (f"A long title of page {i}, <code>amortlib.m{i}</code>, "
                 "that has to wrap onto a second line of the narrow page "
                 '<span class="math notranslate nohighlight">\\(q\\)</span>')
        (tmp_path / f"{doc}.html").parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / f"{doc}.html").write_text(
            f'<html><body>{theme}<section id="s">\n<h1>{title}\n'
            '<a class="headerlink" href="#s" title="Link to this heading">#</a></h1>'
            "</section></body></html>")
        shown = title.replace('<span class="math notranslate nohighlight">\\(q\\)</span>', "")
        body.append(f"<h1>{shown}</h1><p>text</p>")
    print_pdf(tmp_path / "book.pdf", "".join(body), width="80mm")
    titles = browser_check.pdf_facts(tmp_path / "book.pdf")["titles"]
    problems = browser_check.check_pdf(tmp_path / "book.pdf", tmp_path, figures=0)
    assert not [p for p in problems if "outline" in p or "title" in p], (problems, titles)
    # An outline entry that merely contains a page's title is not that page's entry.
    assert not browser_check.in_outline("Summary", ["Summary of the chapter"])
    assert not browser_check.in_outline("Notation", ["The notation"])
    assert browser_check.in_outline("Summary", ["SummarySummary"])
    assert browser_check.in_outline("Part I: one latent (Le)", ["Part I: one latent(Le)(Le)"])
    assert browser_check.in_outline("The pq loss: inference compilation, forward KL",
                                    ["The pq loss: inference compilation,The pq loss: "
                                     "inference compilation,forward KL"])
    assert not browser_check.in_outline("Summary", ["SummaryExercises"])
