"""Where a chapter's time goes, measured as the book runs it: nbclient, a fresh kernel, in order.

Each notebook is executed top to bottom in a fresh kernel (by default the Colab-like environment
`.venv-colab`, else the current Python). Two cells are added around the chapter's own cells (the
notebook file is not changed): the first installs a sampling profiler and two light hooks, the
last returns what they measured. The chapter's cells run unchanged.

- The sampler looks at the kernel's main thread every 5 ms and files the sample under the first of
  these that its stack shows: imports (``importlib``), tf.function tracing (inside TensorFlow's
  creation of a concrete function, autograph included), plotting (matplotlib), graph set-up (the
  first call of a compiled function: TensorFlow optimises the graph and builds its kernels),
  compiled steps (later calls of a compiled function under amortlib's training loop), evaluation
  (any other TensorFlow, TensorFlow Probability or amortlib work, compiled or eager), other (the
  rest: Python, NumPy). Tracing is the exact time of the hook below; the other categories share
  the rest of the measured execution time of the cells in proportion to their samples.
- A hook on TensorFlow's concrete-function creation counts and times every trace exactly, by
  function name, so that a function traced many times (in a loop) shows up.
- Any cell whose output mentions retracing (TensorFlow's retracing warning) is counted.

Run alone: ``python bench/chapter_profile.py book/X.ipynb ... [--json out.json]``.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import statistics
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
COLAB_PYTHON = ROOT / ".venv-colab" / "bin" / "python"
MARKER = "@@BENCH-PROFILE@@"
CATEGORIES = ["imports", "tracing", "graph set-up", "compiled steps", "evaluation", "plotting",
              "other"]

# Installed in the kernel before the chapter's first cell. It imports nothing heavy itself:
# TensorFlow is hooked lazily, when the chapter first imports it.
SETUP = r'''
def _bench_setup():
    import collections, sys, threading, time
    state = {"samples": collections.Counter(), "traces": [], "active": None,
             "trace_depth": 0, "hooked": False, "stop": False}
    main = threading.get_ident()
    interval = 0.005

    def hook_tf():
        from tensorflow.python.eager.polymorphic_function import (
            atomic_function, tracing_compilation)
        create = tracing_compilation._create_concrete_function

        def traced(function_type, type_context, func_graph, tracing_options):
            state["trace_depth"] += 1
            start = time.perf_counter()
            try:
                return create(function_type, type_context, func_graph, tracing_options)
            finally:
                state["trace_depth"] -= 1
                if state["trace_depth"] == 0:
                    state["traces"].append(
                        (str(tracing_options.name), time.perf_counter() - start))
        tracing_compilation._create_concrete_function = traced
        call_flat = atomic_function.AtomicFunction.call_flat
        seen = set()

        def called(self, *args):
            if state["active"] is not None or state["trace_depth"]:
                return call_flat(self, *args)
            first = self.name not in seen
            seen.add(self.name)
            state["active"] = "graph set-up" if first else "run"
            try:
                return call_flat(self, *args)
            finally:
                state["active"] = None
        atomic_function.AtomicFunction.call_flat = called
        state["hooked"] = True

    def classify(frame):
        files = []
        while frame is not None:
            files.append(frame.f_code.co_filename)
            frame = frame.f_back
        joined = "\n".join(files)
        if "importlib._bootstrap" in joined:
            return "imports"
        if state["trace_depth"]:
            return "tracing"
        if "/matplotlib/" in joined:
            return "plotting"
        active = state["active"]
        if active == "graph set-up":
            return active
        if active == "run":
            if "amortlib/training.py" in joined:
                return "compiled steps"
            return "evaluation"
        if ("/tensorflow/" in joined or "/tensorflow_probability/" in joined
                or "/amortlib/" in joined):
            return "evaluation"
        return "other"

    def sample():
        while not state["stop"]:
            time.sleep(interval)
            frame = sys._current_frames().get(main)
            if frame is not None:
                state["samples"][classify(frame)] += 1

    # Hook TensorFlow as soon as it is imported (after the import finishes).
    import builtins
    real_import = builtins.__import__

    def importing(name, *args, **kwargs):
        module = real_import(name, *args, **kwargs)
        if not state["hooked"] and "tensorflow.python.eager.polymorphic_function" \
                ".tracing_compilation" in sys.modules and "tensorflow" in sys.modules \
                and hasattr(sys.modules["tensorflow"], "function"):
            state["hooked"] = True
            hook_tf()
            builtins.__import__ = real_import
        return module
    builtins.__import__ = importing
    threading.Thread(target=sample, daemon=True).start()
    return state

_bench_state = _bench_setup()
del _bench_setup
'''

COLLECT = r'''
_bench_state["stop"] = True
print("''' + MARKER + r'''" + __import__("json").dumps({
    "samples": dict(_bench_state["samples"]), "traces": _bench_state["traces"]}))
'''


def _kernel_dir(python):
    """A throw-away kernel spec that runs ipykernel in the given Python."""
    tmp = pathlib.Path(tempfile.mkdtemp(prefix="bench-kernel-"))
    spec = tmp / "kernels" / "bench"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [str(python), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "bench", "language": "python"}))
    return tmp


def profile_notebook(path, python=None):
    """Execute one notebook in a fresh kernel; its time and where the time went."""
    import nbformat  # noqa: PLC0415
    from nbclient import NotebookClient  # noqa: PLC0415

    python = pathlib.Path(python or (COLAB_PYTHON if COLAB_PYTHON.exists() else sys.executable))
    kernels = _kernel_dir(python)
    os.environ["JUPYTER_PATH"] = str(kernels)
    env = {"PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "2"}
    nb = nbformat.read(path, as_version=4)
    nb.cells.insert(0, nbformat.v4.new_code_cell(SETUP))
    nb.cells.append(nbformat.v4.new_code_cell(COLLECT))
    client = NotebookClient(nb, timeout=1800, kernel_name="bench", record_timing=True,
                            resources={"metadata": {"path": str(path.parent)}})
    old_env = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    start = time.perf_counter()
    try:
        with client.setup_kernel(env=dict(os.environ)):
            started = time.perf_counter()
            for index, cell in enumerate(nb.cells):
                client.execute_cell(cell, index)
        wall = time.perf_counter() - start
    finally:
        for k, v in old_env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    cell_seconds, cell_ids, retracing, measured = [], [], 0, None
    for cell in nb.cells[1:-1]:
        timing = cell.metadata.get("execution", {})
        if "iopub.execute_input" in timing and "shell.execute_reply" in timing:
            from datetime import datetime  # noqa: PLC0415
            t0 = datetime.fromisoformat(timing["iopub.execute_input"].replace("Z", "+00:00"))
            t1 = datetime.fromisoformat(timing["shell.execute_reply"].replace("Z", "+00:00"))
            cell_seconds.append((t1 - t0).total_seconds())
            cell_ids.append(cell.get("id"))
    for cell in nb.cells[1:]:
        for out in cell.get("outputs", []):
            text = out.get("text", "") if out.get("output_type") == "stream" else ""
            if MARKER in text:
                measured = json.loads(text.split(MARKER, 1)[1].strip())
            elif "retracing" in text:
                retracing += 1
    chapter_cells = cell_seconds
    cells_total = sum(chapter_cells)
    samples = measured["samples"] if measured else {}
    n = sum(samples.values()) or 1
    traces = measured["traces"] if measured else []
    # Tracing is timed exactly by the hook; the other categories share the rest of the cells'
    # time in proportion to their samples.
    tracing = min(sum(s for _, s in traces), cells_total)
    n = (n - samples.get("tracing", 0)) or 1
    breakdown = {c: (cells_total - tracing) * samples.get(c, 0) / n for c in CATEGORIES}
    breakdown["tracing"] = tracing
    by_name = {}
    for name, seconds in traces:
        entry = by_name.setdefault(name, {"count": 0, "seconds": 0.0})
        entry["count"] += 1
        entry["seconds"] += seconds
    first_fit_trace = next((s for name, s in traces if name == "run_steps"), None)
    top_cells = sorted(enumerate(chapter_cells), key=lambda kv: -kv[1])[:5]
    return {
        "python": str(python), "wall_s": wall, "kernel_start_s": started - start,
        "cells_s": cells_total, "breakdown_s": breakdown,
        "tracing_exact_s": sum(s for _, s in traces), "traces": len(traces),
        "first_fit_tracing_s": first_fit_trace,
        "traced_functions": dict(sorted(by_name.items(), key=lambda kv: -kv[1]["seconds"])),
        "retracing_warnings": retracing,
        "slowest_cells": [{"id": cell_ids[i], "seconds": s} for i, s in top_cells],
    }


def summarise(runs):
    """Medians and ranges of several profiles of the same notebook."""
    def stat(values):
        values = [float(v) for v in values if v is not None]
        if not values:
            return None
        return {"median": statistics.median(values), "min": min(values), "max": max(values),
                "runs": values}
    return {
        "wall_s": stat(r["wall_s"] for r in runs),
        "kernel_start_s": stat(r["kernel_start_s"] for r in runs),
        "cells_s": stat(r["cells_s"] for r in runs),
        "breakdown_s": {c: stat(r["breakdown_s"][c] for r in runs) for c in CATEGORIES},
        "tracing_exact_s": stat(r["tracing_exact_s"] for r in runs),
        "traces": stat(r["traces"] for r in runs),
        "first_fit_tracing_s": stat(r["first_fit_tracing_s"] for r in runs),
        "retracing_warnings": max(r["retracing_warnings"] for r in runs),
        "traced_functions": runs[-1]["traced_functions"],
        "slowest_cells": runs[-1]["slowest_cells"],
        "python": runs[-1]["python"],
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="+", type=pathlib.Path)
    parser.add_argument("--python", default=None)
    parser.add_argument("--json", type=pathlib.Path, default=None)
    args = parser.parse_args()
    results = {}
    for path in args.notebooks:
        load = os.getloadavg()[0]
        r = profile_notebook(path.resolve(), args.python)
        r["load_before"] = load
        results[path.stem] = r
        parts = ", ".join(f"{c} {r['breakdown_s'][c]:.1f}" for c in CATEGORIES)
        top = list(r["traced_functions"].items())[:4]
        print(f"{path.stem}: {r['wall_s']:.1f} s (kernel {r['kernel_start_s']:.1f}, cells "
              f"{r['cells_s']:.1f}; load {load:.2f}): {parts}; traces {r['traces']} "
              f"({r['tracing_exact_s']:.1f} s; first fit {r['first_fit_tracing_s']}); "
              f"retracing warnings {r['retracing_warnings']}; top traced "
              + "; ".join(f"{k} x{v['count']} {v['seconds']:.2f}s" for k, v in top)
              + "; slowest cells " + ", ".join(f"{c['id']} {c['seconds']:.1f}"
                                              for c in r["slowest_cells"]), flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
