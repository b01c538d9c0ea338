"""Static checks of the book: the notebooks of the table of contents, the pages, the references.

These run in the main environment with the unit tests (`make unit`). The notebooks themselves
run under nbval in the Colab-like environment (`make colab-test`), and the built pages are
checked in a browser (`make browser-test`, tools/browser_check.py).
"""

from __future__ import annotations

import doctest
import importlib
import inspect
import json
import re
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
BOOK = ROOT / "book"
sys.path.insert(0, str(ROOT / "tools"))

import docstring_math  # noqa: E402

TOC = yaml.safe_load((ROOT / "_toc.yml").read_text())
CONFIG = yaml.safe_load((ROOT / "_config.yml").read_text())


def toc_files() -> list[str]:
    files = [TOC["root"]]
    for part in TOC.get("parts", []):
        files += [chapter["file"] for chapter in part.get("chapters", [])]
    return files


NOTEBOOKS = [ROOT / f"{f}.ipynb" for f in toc_files() if (ROOT / f"{f}.ipynb").exists()]
PAGES = [ROOT / f"{f}.md" for f in toc_files() if (ROOT / f"{f}.md").exists()]
CITE = re.compile(r"\{cite(?::[a-z]+)?\}`([^`]+)`")


def cells(path: Path) -> list[dict]:
    return json.loads(path.read_text())["cells"]


def source(cell: dict) -> str:
    return "".join(cell["source"])


def markdown(path: Path) -> str:
    return "\n\n".join(source(c) for c in cells(path) if c["cell_type"] == "markdown")


def bib_keys() -> set[str]:
    return set(re.findall(r"^@\w+\{([^,\s]+),", (BOOK / "references.bib").read_text(), re.M))


notebook = pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)


def test_every_file_of_the_toc_exists():
    missing = [f for f in toc_files()
               if not any((ROOT / f"{f}{ext}").exists() for ext in (".md", ".ipynb"))]
    assert not missing, missing
    assert NOTEBOOKS, "the table of contents lists no notebook"


# --- every chapter notebook ------------------------------------------------------------------

@notebook
def test_committed_without_outputs(path):
    dirty = [i for i, c in enumerate(cells(path)) if c["cell_type"] == "code"
             and (c.get("outputs") or c.get("execution_count") is not None)]
    assert not dirty, f"cells with outputs or execution counts: {dirty}"


@notebook
def test_first_code_cell_is_the_colab_install_cell(path):
    """Installs amortlib from the repository and branch of _config.yml, only when missing."""
    code = [c for c in cells(path) if c["cell_type"] == "code"]
    assert code, "no code cell"
    first, text = code[0], source(code[0])
    assert "remove-cell" in first.get("metadata", {}).get("tags", []), "not tagged remove-cell"
    url = CONFIG["repository"]["url"].rstrip("/")
    branch = CONFIG["repository"]["branch"]
    pattern = r"^try:\n\s+import amortlib *(# noqa: F401)?\nexcept ImportError:\n"
    assert re.search(pattern, text, re.M), text
    installs = [line.strip() for line in text.splitlines() if "pip install" in line]
    assert len(installs) == 1, installs
    install = installs[0]
    assert install.startswith("%pip install"), install
    assert "--no-deps" in install.split(), "must not pull or upgrade TensorFlow and friends"
    assert not {"-U", "--upgrade", "--force-reinstall"} & set(install.split()), install
    assert install.endswith('"{AMORTLIB}"'), install
    # The requirement it installs, from the AMORTLIB = (...) lines above it: the release tag
    # (tests/test_versions.py checks that the tag is v + amortlib.__version__).
    assignment = re.search(r"^AMORTLIB = \(((?:\s*\"[^\"]*\")+)\s*\)", text, re.M)
    assert assignment, text
    requirement = "".join(re.findall(r'"([^"]*)"', assignment.group(1)))
    assert requirement == f"amortlib @ git+{url}@{branch}", (requirement, url, branch)


@notebook
def test_no_cell_installs_or_upgrades_packages(path):
    later = [source(c) for c in cells(path) if c["cell_type"] == "code"][1:]
    for text in later:
        assert not re.search(r"pip install|conda install|apt(-get)? install", text), text


@notebook
def test_learning_goals_at_the_top(path):
    """A "What you will learn" admonition before the first code cell, with at least two goals."""
    top = []
    for cell in cells(path):
        if cell["cell_type"] == "code":
            break
        top.append(source(cell))
    text = "\n".join(top)
    match = re.search(r"(:{3,}|`{3,})\{admonition\} What you will learn\n(.*?)\n\1", text, re.S)
    assert match, "no ':::{admonition} What you will learn' before the first code cell"
    goals = re.findall(r"^\s*[-*] \S", match.group(2), re.M)
    assert len(goals) >= 2, f"{len(goals)} learning goals"


@notebook
def test_at_least_three_exercises_with_solutions(path):
    text = markdown(path)
    heading = re.search(r"^## Exercises\s*$", text, re.M)
    assert heading, "no '## Exercises' section"
    exercises = text[heading.end():]
    solutions = re.findall(r"^\s*(?::{3,}|`{3,})\{dropdown\} Solution", exercises, re.M)
    assert len(solutions) >= 3, f"{len(solutions)} exercises with a dropdown solution"


@notebook
def test_cites_its_sources(path):
    keys = [k.strip() for group in CITE.findall(markdown(path)) for k in group.split(",")]
    assert keys, "no {cite:p} or {cite:t} citation"
    assert not set(keys) - bib_keys(), f"unknown keys: {set(keys) - bib_keys()}"


@notebook
def test_figures_have_name_caption_and_alt_text(path):
    for cell in cells(path):
        meta = cell.get("metadata", {}).get("mystnb", {})
        if "figure" in meta:
            assert meta["figure"].get("name", "").startswith("fig-"), meta
            assert meta["figure"].get("caption", "").strip(), meta
            assert meta.get("image", {}).get("alt", "").strip(), f"no alt text: {meta}"


@notebook
def test_code_lines_fit_the_page(path):
    """Code lines of at most 88 characters, so the rendered page does not scroll sideways."""
    long = [line for c in cells(path) if c["cell_type"] == "code"
            and "remove-cell" not in c.get("metadata", {}).get("tags", [])
            for line in source(c).splitlines() if len(line) > 88]
    assert not long, long


def test_figure_names_are_unique():
    names = [c["metadata"]["mystnb"]["figure"].get("name") for path in NOTEBOOKS
             for c in cells(path) if "figure" in c.get("metadata", {}).get("mystnb", {})]
    assert len(names) == len(set(names)), sorted(n for n in names if names.count(n) > 1)


# --- pages, references, errata ----------------------------------------------------------------

def test_every_citation_key_is_in_references_bib():
    used = set()
    for path in PAGES + NOTEBOOKS:
        text = path.read_text() if path.suffix == ".md" else markdown(path)
        used |= {k.strip() for group in CITE.findall(text) for k in group.split(",")}
    assert not used - bib_keys(), used - bib_keys()


def test_references_have_author_title_year():
    entries = re.split(r"^@", (BOOK / "references.bib").read_text(), flags=re.M)[1:]
    for entry in entries:
        for field in ("author", "title", "year"):
            assert re.search(rf"^\s*{field}\s*=", entry, re.M), (field, entry.splitlines()[0])


def test_references_bib_parses():
    """The parser the build uses reads every entry (a lost closing brace stops the whole build)."""
    from pybtex.database import parse_file

    assert set(parse_file(str(BOOK / "references.bib")).entries) == bib_keys()


def test_bibliography_page_lists_the_references():
    assert re.search(r"```\{bibliography\}", (BOOK / "bibliography.md").read_text())


def test_errata_page_links_every_chapter_with_an_erratum_and_only_those():
    errata = (BOOK / "errata.md").read_text()
    linked = set(re.findall(r"\]\(([\w-]+)\.ipynb\)", errata))
    with_erratum = {p.stem for p in NOTEBOOKS
                    if re.search(r"\{admonition\} Erratum", markdown(p))}
    assert linked <= {p.stem for p in NOTEBOOKS}, linked - {p.stem for p in NOTEBOOKS}
    assert with_erratum <= linked, f"not on the errata page: {with_erratum - linked}"
    assert linked <= with_erratum, f"no Erratum admonition in: {linked - with_erratum}"


GLOSSARY_TERMS = ["qp loss", "pq loss", "ELBO", "reverse KL", "forward KL", "mode-seeking",
                  "mass-covering", "amortization gap", "ideal inference function", "F-VI",
                  "A-VI", "inference compilation", "reparameterisation",
                  "score-function estimator", "simple hierarchical model"]


def test_glossary_defines_the_book_s_terms():
    text = (BOOK / "glossary.md").read_text()
    block = re.search(r"```\{glossary\}\n(.*?)\n```", text, re.S)
    assert block, "no glossary directive"
    terms = set(re.findall(r"^(\S[^\n]*)$", block.group(1), re.M))
    assert not set(GLOSSARY_TERMS) - terms, set(GLOSSARY_TERMS) - terms


def test_every_glossary_entry_is_linked_from_a_chapter():
    import glossary_links

    linked = glossary_links.linked_terms()
    entries = glossary_links.entries()
    missing = [group for group in entries if not {t.lower() for t in group} & linked]
    assert not missing, f"glossary entries no chapter links to: {missing}"


def test_notation_page_covers_both_parts():
    text = (BOOK / "notation.md").read_text()
    for symbol in [r"\theta", "z_n", "x_n", r"\nu_n", r"f_\phi", "F-VI", "A-VI",
                   r"q_\phi(x \mid y)"]:
        assert symbol in text, symbol


def test_no_control_characters_in_sources():
    """Catches escape sequences that ate a backslash, such as \\f in "\\frac" in a docstring."""
    paths = sorted((ROOT / "amortlib").glob("*.py")) + PAGES + NOTEBOOKS
    for path in paths:
        bad = [(i + 1, repr(ch)) for i, line in enumerate(path.read_text().splitlines())
               for ch in line if ord(ch) < 32 and ch != "\t"]
        assert not bad, f"{path.relative_to(ROOT)}: control characters at {bad[:5]}"


# --- configuration: launch buttons, MathJax ---------------------------------------------------

def test_launch_buttons_are_configured():
    assert CONFIG["repository"]["url"].startswith("https://github.com/")
    assert CONFIG["repository"]["branch"]
    assert CONFIG["launch_buttons"]["colab_url"] == "https://colab.research.google.com"


def test_mathjax_is_served_from_the_book():
    sphinx = CONFIG["sphinx"]["config"]
    assert not sphinx["mathjax_path"].startswith(("http:", "https:", "//"))
    assert ".cache/mathjax" in sphinx["html_static_path"]


# --- the API page and the library's docstrings ------------------------------------------------

MODULES = sorted(p.stem for p in (ROOT / "amortlib").glob("*.py") if not p.stem.startswith("_"))


def test_api_has_one_page_per_module():
    """book/api/<module>.md documents the module's members; the toc lists it under the API."""
    sections = [s["file"] for part in TOC["parts"] for c in part["chapters"]
                if c["file"] == "book/api" for s in c.get("sections", [])]
    assert sorted(sections) == [f"book/api/{m}" for m in MODULES]
    for m in MODULES:
        page = (BOOK / "api" / f"{m}.md").read_text()
        assert f".. automodule:: amortlib.{m}\n   :members:\n" in page, m


@pytest.mark.parametrize("name", MODULES)
def test_property_docstrings_do_not_start_like_a_type(name):
    """Napoleon reads a property docstring whose first line is "words: text" as a return type,
    and the strict build fails on the reference it cannot resolve ("Steady-state wall time")."""
    import ast

    tree = ast.parse((ROOT / "amortlib" / f"{name}.py").read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef) and any(
                getattr(d, "id", None) == "property" for d in node.decorator_list):
            first = (ast.get_docstring(node) or "").splitlines()[:1]
            assert not (first and re.match(r"^[^:$`]*:\s", first[0])), (node.name, first)
    # The same holds for a class attribute's "#:" doc comment (autodoc reads it as a docstring).
    lines = (ROOT / "amortlib" / f"{name}.py").read_text().splitlines()
    for number, line in enumerate(lines):
        if (line.startswith("    ") and line.lstrip().startswith("#: ")
                and not lines[number - 1].lstrip().startswith("#:")):
            first = line.lstrip()[3:]
            assert not re.match(r"^[^:$`]*:\s", first), (name, number + 1, first)


@pytest.mark.parametrize("name", MODULES)
def test_every_public_function_and_class_is_in_all(name):
    """autodoc's :members: documents a module's __all__: every public definition belongs in it,
    and everything in it exists (the browser test checks that the API page shows each name)."""
    import ast

    tree = ast.parse((ROOT / "amortlib" / f"{name}.py").read_text())
    defined = {node.name for node in tree.body
               if isinstance(node, (ast.FunctionDef, ast.ClassDef))
               and not node.name.startswith("_")}
    module = importlib.import_module(f"amortlib.{name}")
    exported = set(getattr(module, "__all__", []))
    assert defined <= exported, f"add to amortlib.{name}.__all__: {sorted(defined - exported)}"
    assert all(hasattr(module, n) for n in exported)


@pytest.mark.parametrize("name", MODULES)
def test_public_names_have_docstrings(name):
    module = importlib.import_module(f"amortlib.{name}")
    assert inspect.getdoc(module), f"amortlib.{name} has no module docstring"
    undocumented = [n for n in getattr(module, "__all__", [])
                    if (inspect.isfunction(getattr(module, n))
                        or inspect.isclass(getattr(module, n)))
                    and not inspect.getdoc(getattr(module, n))]
    assert not undocumented, undocumented


def test_library_imports_are_declared_in_pyproject():
    """amortlib installs with `pip install .`: every package it imports must be a dependency."""
    import ast
    import importlib.metadata as metadata

    import tomllib

    declared = {re.split(r"[<>=!~;\[ ]", d)[0].lower().replace("_", "-")
                for d in tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
                ["dependencies"]}
    distributions = metadata.packages_distributions()
    imported = set()
    for path in (ROOT / "amortlib").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                imported |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                imported.add(node.module.split(".")[0])
    third_party = {m for m in imported - set(sys.stdlib_module_names) - {"amortlib", "__future__"}}
    needed = {m: {d.lower().replace("_", "-") for d in distributions.get(m, [m])}
              for m in third_party}
    undeclared = sorted(m for m, dists in needed.items() if not dists & declared)
    assert not undeclared, f"imported by amortlib but not in pyproject.toml: {undeclared}"


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name):
    module = importlib.import_module(f"amortlib.{name}")
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples failed"


def test_docstring_math_becomes_the_math_role():
    convert = docstring_math.dollars_to_math_role
    assert convert(r"density $p(x \mid y)$.") == r"density :math:`p(x \mid y)`."
    assert convert("loss $=-$ELBO") == "loss :math:`=-`\\ ELBO"
    assert convert("two $a$ and\n$b$") == "two :math:`a` and\n:math:`b`"
    assert convert("no math in $$x$$ or \\$5") == "no math in $$x$$ or \\$5"


# --- licence and citation -----------------------------------------------------------------------

def test_licence_citation_and_footer_agree():
    """Text and figures CC BY 4.0, code MIT: in LICENSE, CITATION.cff, pyproject and the footer."""
    import tomllib

    licence = (ROOT / "LICENSE").read_text()
    assert "CC BY 4.0" in licence and "MIT" in licence
    citation = yaml.safe_load((ROOT / "CITATION.cff").read_text())
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert citation["cff-version"] and citation["title"] and citation["authors"]
    assert citation["license"] == ["CC-BY-4.0", project["license"]] == ["CC-BY-4.0", "MIT"]
    # The version is set in amortlib/__init__.py (pyproject.toml reads it; tools/release.py).
    version = re.search(r'^__version__ = "([^"]+)"$',
                        (ROOT / "amortlib" / "__init__.py").read_text(), re.M).group(1)
    assert project["dynamic"] == ["version"] and citation["version"] == version
    assert citation["repository-code"] == CONFIG["repository"]["url"]
    footer = CONFIG["html"]["extra_footer"]
    assert "CC BY 4.0" in footer and "MIT" in footer


def test_the_pdf_is_linked_and_named():
    """`make pdf` writes the PDF into the book, linked from How to use, named in the README."""
    import make_pdf

    assert f'href="{make_pdf.PDF_NAME}"' in (BOOK / "how_to_use.md").read_text().replace(
        "../", "")
    assert "make pdf" in (ROOT / "README.md").read_text()
    assert make_pdf.PDF_NAME in (ROOT / "README.md").read_text()
