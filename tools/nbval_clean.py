"""A pytest plugin for nbval: a notebook cell fails when it shows a warning.

`make colab-test` loads it (``pytest -p nbval_clean`` with ``tools/`` on the path). After a cell
has run, and passed nbval's own checks, its outputs are read:

- anything written to stderr fails the cell, except progress bars (tqdm's text bar, which
  `amortlib.fit` draws on stderr);
- a warning anywhere in the cell's other outputs (stdout, displayed text) fails the cell: a
  Python warning category such as ``DeprecationWarning`` or ``UserWarning``, or a log line such as
  ``WARNING:tensorflow:``.

The cell's report names the offending lines.
"""

from __future__ import annotations

import re

import pytest

#: A warning in text: a warning class name (``UserWarning``, ``Warning:``) or a log level.
WARNING = re.compile(r"\b[A-Za-z]*Warning\b|\bWARNING\b")
#: One state of a tqdm bar: ``loss:  40%|####  | 400/1000 [00:01<00:02, 299.97it/s]`` and the
#: forms without a total (``400it [00:01, 299.97it/s]``).
PROGRESS = re.compile(
    r"^.*(\d+%\|.*\|\s*[\d.]+[kMG]?/[\d.]+[kMG]?|[\d.]+[kMG]?it) "
    r"\[[\d:<?]*(, +[\d.?]+[kMG]?(it/s|s/it))?[^\]]*\]\s*$"
)


def without_progress_bars(text: str) -> str:
    """``text`` with every tqdm bar state (and the blank lines bars leave) removed."""
    kept = [part for part in re.split(r"[\r\n]", text)
            if part.strip() and not PROGRESS.match(part)]
    return "\n".join(kept)


def problems(outputs: list) -> list[str]:
    """What is wrong with one cell's outputs (as nbval records them): one line per problem."""
    found = []
    for out in outputs or []:
        kind = out.get("output_type")
        if kind == "stream":
            text = out.get("text", "")
            if out.get("name") == "stderr":
                rest = without_progress_bars(text)
                if rest:
                    found.append(f"stderr: {rest[:500]}")
                continue
        elif kind in ("display_data", "execute_result"):
            text = out.get("data", {}).get("text/plain", "")
        else:
            continue
        if isinstance(text, list):
            text = "".join(text)
        found += [f"{kind}: {line.strip()[:300]}" for line in text.splitlines()
                  if WARNING.search(line)]
    return found


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    outputs = getattr(item, "test_outputs", None)
    if call.when != "call" or not report.passed or outputs is None:
        return
    found = problems(outputs)
    if found:
        report.outcome = "failed"
        report.longrepr = (
            f"cell {getattr(item, 'cell_num', '?')} of {item.fspath} shows a warning "
            "(or writes to stderr); the book's notebooks must run clean:\n  "
            + "\n  ".join(found)
            + "\n\nCell source:\n" + str(getattr(getattr(item, "cell", None), "source", "")))
