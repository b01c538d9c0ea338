"""The notebook test's warning check (tools/nbval_clean.py) fails on warnings, not on bars."""

from __future__ import annotations

import io
import sys
from pathlib import Path

from tqdm.std import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tools"))

import nbval_clean  # noqa: E402


def stream(name: str, text: str) -> dict:
    return {"output_type": "stream", "name": name, "text": text}


def tqdm_output(total: int | None, leave: bool) -> str:
    """What a tqdm text bar writes, as amortlib.fit draws it."""
    out = io.StringIO()
    with tqdm(total=total, desc="pq loss", file=out, leave=leave, mininterval=0) as bar:
        for _ in range(5):
            bar.update(40)
    return out.getvalue()


def test_progress_bars_on_stderr_pass():
    for total in (200, None):
        for leave in (True, False):
            text = tqdm_output(total, leave)
            assert "|" in text or "it [" in text, text
            assert nbval_clean.problems([stream("stderr", text)]) == [], text


def test_anything_else_on_stderr_fails():
    text = tqdm_output(200, False) + "something went wrong\n"
    found = nbval_clean.problems([stream("stderr", text)])
    assert len(found) == 1 and "something went wrong" in found[0], found


def test_warnings_in_outputs_fail():
    outputs = [
        stream("stdout", "WARNING:tensorflow:5 out of the last 5 calls triggered retracing\n"),
        stream("stdout", "fine\n/x.py:3: DeprecationWarning: old\n  y = f()\n"),
        {"output_type": "execute_result", "data": {"text/plain": "UserWarning: careful"}},
        {"output_type": "display_data", "data": {"text/plain": ["a\n", "TqdmWarning: x"]}},
    ]
    found = nbval_clean.problems(outputs)
    assert len(found) == 4, found


def test_clean_outputs_pass():
    outputs = [stream("stdout", "KL = 0.12; no warnings here, the word is lower case\n"),
               {"output_type": "display_data", "data": {"text/plain": "<Figure>"}},
               {"output_type": "error", "ename": "ValueError"}]
    assert nbval_clean.problems(outputs) == []
