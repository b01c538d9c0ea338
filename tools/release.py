"""Point the book at the release it is built with: `python tools/release.py [--check]`.

The version is set in one place, ``__version__`` in ``amortlib/__init__.py`` (pyproject.toml reads
it too). This script copies it, as the git tag ``vX.Y.Z``, into

- ``_config.yml``: ``repository.branch``, so that the book's Colab launch buttons open the
  notebooks of that release;
- every notebook's first code cell, the Colab install cell, which installs
  ``amortlib @ git+<repository.url>@vX.Y.Z`` (with ``--no-deps``) when amortlib is missing.

Only those lines change: the rest of each file stays byte-identical (the script refuses a notebook
that the nbformat layout, indent 1, would not reproduce exactly). ``--check`` changes nothing and
exits 1 if a file disagrees; tests/test_versions.py runs the same check. See "Releases" in
README.md for how a release is cut.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "_config.yml"


def version() -> str:
    """``__version__`` of amortlib, read from the source (no import, so no TensorFlow)."""
    text = (ROOT / "amortlib" / "__init__.py").read_text()
    match = re.search(r'^__version__ = "(\d+\.\d+\.\d+)"$', text, re.M)
    if not match:
        raise SystemExit("amortlib/__init__.py: no `__version__ = \"X.Y.Z\"` line")
    return match.group(1)


def repository_url() -> str:
    match = re.search(r"^repository:\n(?:  .*\n)*?  url: *(\S+)", CONFIG.read_text(), re.M)
    if not match:
        raise SystemExit("_config.yml: no repository.url")
    return match.group(1).rstrip("/")


def toc_notebooks() -> list[Path]:
    files = re.findall(r"^\s*-?\s*(?:root|file):\s*(\S+)", (ROOT / "_toc.yml").read_text(), re.M)
    return [ROOT / f"{f}.ipynb" for f in files if (ROOT / f"{f}.ipynb").exists()]


def install_cell(url: str, tag: str) -> str:
    """The source of the Colab install cell (lines of at most 79 characters)."""
    owner, name = url.rsplit("/", 1)
    return (
        "# Colab: install amortlib if missing, without touching Colab's TensorFlow.\n"
        "# The release of amortlib this book was built with (set by tools/release.py).\n"
        f'AMORTLIB = ("amortlib @ git+{owner}/"\n'
        f'            "{name}@{tag}")\n'
        "try:\n"
        "    import amortlib  # noqa: F401\n"
        "except ImportError:\n"
        '    %pip install --quiet --no-deps "{AMORTLIB}"'
    )


def dump(notebook: dict) -> str:
    """The notebook as nbformat writes it (indent 1, sorted keys, UTF-8, final newline)."""
    return json.dumps(notebook, indent=1, sort_keys=True, ensure_ascii=False) + "\n"


def config_text(tag: str) -> str:
    text = CONFIG.read_text()
    return re.sub(r"^(repository:\n(?:  .*\n)*?  branch: *)\S+", rf"\g<1>{tag}", text,
                  count=1, flags=re.M)


def notebook_text(path: Path, cell_source: str) -> str:
    text = path.read_text()
    notebook = json.loads(text)
    if dump(notebook) != text:
        raise SystemExit(f"{path}: not in nbformat's layout (indent 1); not rewritten")
    first = next(c for c in notebook["cells"] if c["cell_type"] == "code")
    first["source"] = cell_source.splitlines(keepends=True)
    return dump(notebook)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if stale")
    args = parser.parse_args(argv)
    tag = f"v{version()}"
    cell = install_cell(repository_url(), tag)
    wanted = {CONFIG: config_text(tag)}
    wanted.update({path: notebook_text(path, cell) for path in toc_notebooks()})
    stale = [path for path, text in wanted.items() if path.read_text() != text]
    for path in stale:
        if args.check:
            print(f"{path.relative_to(ROOT)} does not name release {tag}")
        else:
            path.write_text(wanted[path])
            print(f"{path.relative_to(ROOT)}: now {tag}")
    return 1 if args.check and stale else 0


if __name__ == "__main__":
    sys.exit(main())
