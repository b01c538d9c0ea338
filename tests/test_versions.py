"""Versions agree: the release (one version, everywhere) and the three requirement files.

- The release: ``amortlib.__version__`` is the one place that sets it; pyproject.toml reads it,
  CHANGELOG.md has a section for it, and _config.yml (launch buttons) and every notebook's
  install cell name its tag ``vX.Y.Z`` (tools/release.py writes them).
- The environments: requirements-colab.in holds Colab's versions; requirements-colab.txt locks
  the Colab-like environment and must contain them; requirements.in and requirements.txt (the
  development environment) pin the same version of every package they share with the lock.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))

import release  # noqa: E402

#: Google Colab's runtime, googlecolab/backend-info, 2026-08-19 (docs: DESIGN.md, "Versions").
COLAB = {
    "python": "3.13",
    "tensorflow": "2.20.0",
    "tensorflow-probability": "0.25.0",
    "tf-keras": "2.20.1",
    "numpy": "2.1.3",
    "scipy": "1.16.3",
    "scikit-learn": "1.6.1",
    "matplotlib": "3.10.0",
    "tqdm": "4.67.3",
}


def pins(name: str) -> dict[str, str]:
    """``{normalized name: version}`` of a requirements file; every line must be an exact pin."""
    found = {}
    for line in (ROOT / name).read_text().splitlines():
        line = line.split("#")[0].strip()
        if not line:
            continue
        match = re.fullmatch(r"([A-Za-z0-9_.\-]+)==([A-Za-z0-9_.+\-]+)", line)
        assert match, f"{name}: not an exact pin: {line!r}"
        found[re.sub(r"[-_.]+", "-", match.group(1).lower())] = match.group(2)
    return found


def test_one_version_set_in_amortlib():
    import amortlib

    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "version" in pyproject["project"]["dynamic"]
    assert pyproject["tool"]["setuptools"]["dynamic"]["version"] == {
        "attr": "amortlib.__version__"}
    assert amortlib.__version__ == release.version()


def test_changelog_has_the_release():
    changelog = (ROOT / "CHANGELOG.md").read_text()
    assert re.search(rf"^## \[?{re.escape(release.version())}\]?", changelog, re.M), (
        f"CHANGELOG.md has no section for {release.version()}")


def test_config_and_install_cells_name_the_release(capsys):
    assert release.main(["--check"]) == 0, (
        capsys.readouterr().out + "run: python tools/release.py")


def test_colab_pins_are_colab_s_versions():
    colab_in = pins("requirements-colab.in")
    for package, version in COLAB.items():
        if package != "python":
            assert colab_in.get(package) == version, (package, colab_in.get(package), version)


def test_the_lock_is_complete_and_holds_the_colab_pins():
    lock, colab_in = pins("requirements-colab.txt"), pins("requirements-colab.in")
    assert {p: v for p, v in colab_in.items() if lock.get(p) != v} == {}
    # What amortlib needs at run time is locked too (installed there with --no-deps).
    dependencies = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    names = {re.sub(r"[-_.]+", "-", re.split(r"[<>=!~;\[ ]", d)[0].lower())
             for d in dependencies}
    assert names <= lock.keys(), names - lock.keys()


def test_requirements_agree_with_the_lock():
    lock, dev, direct = pins("requirements-colab.txt"), pins("requirements.txt"), pins(
        "requirements.in")
    assert direct.items() <= dev.items(), {p: (v, dev.get(p)) for p, v in direct.items()
                                           if dev.get(p) != v}
    differ = {p: (dev[p], lock[p]) for p in dev.keys() & lock.keys() if dev[p] != lock[p]}
    assert differ == {}, f"requirements.txt and requirements-colab.txt differ: {differ}"
    for package, version in COLAB.items():
        if package in direct:
            assert direct[package] == version, (package, direct[package], version)


def test_colab_python_is_colab_s():
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(rf"^COLAB_PYTHON_VERSION := {re.escape(COLAB['python'])}$", makefile, re.M)
