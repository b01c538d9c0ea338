"""Benchmarks of the book and the library, measured side by side in one run.

Run with `make bench` (or `.venv/bin/python bench/run.py`). Writes bench-results/results.md and
bench-results/results.json and prints the table. Every figure is the median of several runs with
its spread (min-max). Sections can be chosen with --only; --repeats sets the number of runs.

Sections:
  compiled   steps/s of amortlib's compiled `fit` vs a plain eager TensorFlow loop with Keras's
             Adam (same loss, network, Adam update and batch size), Gaussian unknown mean, qp
             and pq losses.
  accuracy   wall time until |a-a*|, |b-b*|, |c-c*| < 0.01: amortlib's default recipe vs the
             source's recipe (Adam 1e-3, one draw per step, up to 20,000 steps).
  gap        A-VI vs F-VI on the linear hierarchical model: steps and wall time to 1% of the
             optimum ELBO at N = 10,000, and against N (needs amortlib.gap).
  versus     amortlib against a NumPy loop with hand-derived gradients (the floor) and a JAX +
             optax loop compiled whole (bench/loops.py), interleaved: seconds per step,
             compilation, and time to accuracy, on the Gaussian-unknown-mean (qp, pq, batch
             1000) and linear hierarchical (F-VI, A-VI, N = 10,000) workloads. The JAX column
             runs in the optional environment .venv-bench (make bench-setup) and is skipped,
             with a note, without it.
  chapters   every chapter as the build runs it (nbclient, fresh kernel, the Colab-like
             environment .venv-colab when it exists), its time broken down into imports,
             tracing, graph set-up, compiled steps, evaluation, plotting (bench/chapter_profile.py),
             with the number of traces and of retracing warnings; chapters interleaved.
  book       the whole strict book build from an empty cache, and its peak memory.

--quick: one repeat of chapters and three short interleaved repeats of versus, no build.
The machine's load (`uptime`) is recorded before and after each section.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import tf_keras  # noqa: E402

import amortlib as am  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parent.parent
OUT = ROOT / "bench-results"
TOL = 0.01  # accuracy goal on a, b, c
CATEGORY_NAMES = ["imports", "tracing", "graph set-up", "compiled steps", "evaluation",
                  "plotting", "other"]


def summary(values):
    """Median and spread of repeated measurements."""
    values = [float(v) for v in values]
    return {"median": statistics.median(values), "min": min(values), "max": max(values),
            "runs": values}


def fmt(stat, unit="", digits=2):
    return (f"{stat['median']:.{digits}f}{unit} "
            f"({stat['min']:.{digits}f}-{stat['max']:.{digits}f})")


# --------------------------------------------------------------------------------------------
# 1. Compiled training vs an eager loop
# --------------------------------------------------------------------------------------------

def eager_steps_per_second(model, loss, batch_size, num_steps, seed):
    """The textbook eager loop: sample, loss, gradient, Adam step, one Python iteration each."""
    q_net = am.LinearGaussian()
    optimizer = tf_keras.optimizers.Adam(0.05)
    variables = q_net.trainable_variables
    optimizer.build(variables)
    start = time.perf_counter()
    for step in range(num_steps):
        step_seed = tf.random.experimental.stateless_fold_in(am._checks.seed(seed), step)
        data_seed, q_seed = tf.unstack(tf.random.experimental.stateless_split(step_seed, 2))
        with tf.GradientTape() as tape:
            x, y = model.sample(batch_size, seed=data_seed)
            if loss == "qp":
                value = am.qp_loss(model, q_net, None, y, seed=q_seed)
            else:
                value = am.pq_loss(model, q_net, x, y)
        optimizer.apply_gradients(zip(tape.gradient(value, variables), variables))
    return num_steps / (time.perf_counter() - start)


def compiled_steps_per_second(model, loss, batch_size, num_steps, seed):
    """amortlib's fit; compilation is timed separately by a first short run."""
    history = am.fit(model, am.LinearGaussian(), loss, num_steps=num_steps,
                     batch_size=batch_size, seed=seed, progress=False)
    # Steady state: exclude the first chunk, which includes tracing and compilation.
    first_chunk = int(np.ceil(num_steps / 25))
    steady = history.elapsed[-1] - history.elapsed[first_chunk - 1]
    return (num_steps - first_chunk) / steady, history.elapsed[first_chunk - 1]


def bench_compiled(repeats):
    model = am.GaussianUnknownMean()
    rows = []
    for loss in ["qp", "pq"]:
        eager, compiled, compile_s = [], [], []
        for r in range(repeats):
            eager.append(eager_steps_per_second(model, loss, 1000, 300, seed=r))
            sps, first = compiled_steps_per_second(model, loss, 1000, 5000, seed=r)
            compiled.append(sps)
            compile_s.append(first)
        speedup = [c / e for c, e in zip(compiled, eager)]
        rows.append({"loss": loss, "batch_size": 1000, "eager_steps_per_s": summary(eager),
                     "compiled_steps_per_s": summary(compiled),
                     "first_chunk_s": summary(compile_s), "speedup": summary(speedup)})
    return rows


# --------------------------------------------------------------------------------------------
# 2. Time to accuracy: default recipe vs the source's recipe
# --------------------------------------------------------------------------------------------

def time_to_accuracy(model, loss, seed, **recipe):
    optimum = np.array(model.optimal_params())
    q_net = am.LinearGaussian()
    history = am.fit(model, q_net, loss, seed=seed, progress=False,
                     trace_fn=lambda n: {"a": n.a, "b": n.b, "c": n.c}, **recipe)
    params = np.stack([history.trace[k] for k in "abc"], axis=1)
    error = np.abs(params - optimum).max(axis=1)
    within = error < TOL
    # "Reached": the first step from which the error stays below TOL to the end of the run.
    outside = np.flatnonzero(~within)
    stays_from = 0 if outside.size == 0 else outside[-1] + 1
    reached = stays_from < len(error)
    first = int(np.argmax(within)) if within.any() else None
    return {
        "steps_to_stay": int(stays_from) + 1 if reached else None,
        "steps_to_first": first + 1 if first is not None else None,
        "seconds_to_stay": float(history.elapsed[stays_from]) if reached else None,
        "seconds_to_first": float(history.elapsed[first]) if first is not None else None,
        "final_error": float(error[-1]),
        "total_seconds": history.seconds,
    }


SOURCE_RECIPE = dict(num_steps=20_000, batch_size=1, learning_rate=1e-3, anneal=False)
DEFAULT_RECIPE = dict()  # fit's defaults


def bench_accuracy(repeats):
    """The source's recipe is timed in amortlib's compiled loop and, as the source ran it, in an
    eager loop: its step counts times the measured eager seconds per step at batch size 1."""
    model = am.GaussianUnknownMean()
    rows = []
    for loss in ["qp", "pq"]:
        for name, recipe in [("amortlib default", DEFAULT_RECIPE),
                             ("source, compiled loop", SOURCE_RECIPE)]:
            runs = [time_to_accuracy(model, loss, seed=r, **recipe) for r in range(repeats)]
            rows.append({"loss": loss, "recipe": name, "runs": runs})
        eager_sps = [eager_steps_per_second(model, loss, 1, 300, seed=r) for r in range(repeats)]
        sps = statistics.median(eager_sps)
        eager_runs = []
        for run in rows[-1]["runs"]:
            eager_runs.append({
                "seconds_to_stay": None if run["steps_to_stay"] is None
                else run["steps_to_stay"] / sps,
                "seconds_to_first": None if run["steps_to_first"] is None
                else run["steps_to_first"] / sps,
                "final_error": run["final_error"],
                "total_seconds": SOURCE_RECIPE["num_steps"] / sps,
            })
        rows.append({"loss": loss, "recipe": "source, eager loop (as the source ran it)",
                     "runs": eager_runs, "eager_steps_per_s": summary(eager_sps)})
    return rows


# --------------------------------------------------------------------------------------------
# 3. A-VI vs F-VI (needs amortlib.gap)
# --------------------------------------------------------------------------------------------

def bench_gap(repeats):
    try:
        sys.path.insert(0, str(ROOT))
        from bench import gap_bench  # noqa: PLC0415
    except ImportError as error:
        return {"skipped": f"amortlib.gap benchmark not available: {error}"}
    return gap_bench.run(repeats)


# --------------------------------------------------------------------------------------------
# 3b. amortlib vs the NumPy floor and JAX + optax
# --------------------------------------------------------------------------------------------

BENCH_PYTHON = ROOT / ".venv-bench" / "bin" / "python"


def _other_loop(kind, workload, size, num_steps, lr, seed):
    if kind == "numpy":
        sys.path.insert(0, str(ROOT))
        from bench import loops  # noqa: PLC0415
        return loops.numpy_run(workload, size, num_steps, lr=lr, seed=seed)
    out = subprocess.run([str(BENCH_PYTHON), str(ROOT / "bench" / "loops.py"), "jax", workload,
                          str(size), str(num_steps), str(lr), str(seed)],
                         capture_output=True, text=True, check=True,
                         env=dict(os.environ, JAX_PLATFORMS="cpu"))
    return json.loads(out.stdout.strip().splitlines()[-1])


def _amortlib_gum(loss, num_steps, seed):
    """Per step and compilation of fit (no trace), and time to accuracy (traced a, b, c)."""
    model = am.GaussianUnknownMean()
    history = am.fit(model, am.LinearGaussian(), loss, num_steps=num_steps, batch_size=1000,
                     seed=seed, progress=False)
    chunk = int(np.ceil(num_steps / 25))
    per_step = (history.elapsed[-1] - history.elapsed[chunk - 1]) / (num_steps - chunk)
    compile_s = history.elapsed[chunk - 1] - chunk * per_step
    acc = time_to_accuracy(model, loss, seed=seed, num_steps=num_steps)
    return {"s_per_step": per_step, "compile_s": compile_s, "steps": acc["steps_to_stay"],
            "seconds": acc["seconds_to_stay"]}


def _amortlib_lin(method, num_steps, seed):
    from amortlib import families, gap  # noqa: PLC0415
    from amortlib.hierarchical import LinearModel  # noqa: PLC0415

    sys.path.insert(0, str(ROOT))
    from bench import gap_bench  # noqa: PLC0415

    model = LinearModel()
    _, x = model.sample(10_000, seed=0)
    posterior = families.VariationalPosterior(model, gap_bench.METHODS[method](10_000))
    history = gap.fit_vi(model, posterior, x, num_steps=num_steps, learning_rate=0.05,
                         anneal=True, seed=seed, progress=False)
    chunk = int(np.ceil(num_steps / 25))
    per_step = (history.elapsed[-1] - history.elapsed[chunk - 1]) / (num_steps - chunk)
    compile_s = history.elapsed[chunk - 1] - chunk * per_step
    hit = gap_bench.one_run(model, x, method, 0.05, num_steps, seed)
    return {"s_per_step": per_step, "compile_s": compile_s, "steps": hit["steps"],
            "seconds": hit["seconds"]}


VERSUS = [  # workload, amortlib runner, its argument, size, steps (fit's / the chapter's recipe)
    ("gum-qp", _amortlib_gum, "qp", 1000, 2000),
    ("gum-pq", _amortlib_gum, "pq", 1000, 2000),
    ("lin-fvi", _amortlib_lin, "F-VI", 10_000, 600),
    ("lin-avi", _amortlib_lin, "A-VI (degree 1)", 10_000, 600),
]


def bench_versus(repeats):
    """Interleaved: in each repeat, amortlib, NumPy and JAX on each workload in turn."""
    kinds = ["amortlib", "numpy"] + (["jax"] if BENCH_PYTHON.exists() else [])
    runs = {w: {k: [] for k in kinds} for w, *_ in VERSUS}
    for r in range(repeats):
        for workload, runner, arg, size, steps in VERSUS:
            for kind in kinds:
                if kind == "amortlib":
                    out = runner(arg, steps, r)
                else:
                    out = _other_loop(kind, workload, size, steps, 0.05, r)
                runs[workload][kind].append(out)
            print(f"  repeat {r + 1}/{repeats} {workload}: " + ", ".join(
                f"{k} {1e6 * runs[workload][k][-1]['s_per_step']:.0f} us/step"
                for k in kinds), flush=True)
    rows = []
    for workload, _, _, size, _ in VERSUS:
        amort = runs[workload]["amortlib"]
        steps = statistics.median(a["steps"] for a in amort if a["steps"] is not None) \
            if any(a["steps"] is not None for a in amort) else None
        row = {"workload": workload, "size": size, "steps_to_accuracy": steps}
        for kind in kinds:
            per = [o["s_per_step"] for o in runs[workload][kind]]
            comp = [o["compile_s"] for o in runs[workload][kind]]
            if kind == "amortlib":
                tta = [o["seconds"] for o in amort if o["seconds"] is not None]
            else:  # the same algorithm: amortlib's median step count at this loop's speed
                tta = [] if steps is None else [c + steps * p for c, p in zip(comp, per)]
            row[kind] = {"us_per_step": summary([1e6 * p for p in per]),
                         "compile_s": summary(comp),
                         "time_to_accuracy_s": summary(tta) if tta else None}
            if kind != "amortlib":
                row[kind]["step_ratio"] = summary(
                    [a["s_per_step"] / o["s_per_step"]
                     for a, o in zip(amort, runs[workload][kind])])
                if tta and row["amortlib"]["time_to_accuracy_s"]:
                    row[kind]["time_ratio"] = summary(
                        [a["seconds"] / t for a, t in zip(amort, tta)
                         if a["seconds"] is not None])
        rows.append(row)
    note = None if "jax" in kinds else (
        "JAX column skipped: the optional environment .venv-bench is absent "
        "(make bench-setup creates it from requirements-bench.txt).")
    return {"rows": rows, "kinds": kinds, "note": note}


def bench_chapters(repeats):
    """Every chapter profiled as the build runs it; the chapters interleaved across repeats."""
    sys.path.insert(0, str(ROOT))
    from bench import chapter_profile  # noqa: PLC0415

    paths = toc_notebooks()
    runs = {p.stem: [] for p in paths}
    for r in range(repeats):
        for path in paths:
            load = os.getloadavg()[0]
            out = chapter_profile.profile_notebook(path)
            out["load_before"] = load
            runs[path.stem].append(out)
            print(f"  {r + 1}/{repeats} {path.stem}: {out['wall_s']:.1f} s "
                  f"(load {load:.1f})", flush=True)
    out = {}
    for name, rs in runs.items():
        out[name] = chapter_profile.summarise(rs)
        out[name]["load_before"] = [r["load_before"] for r in rs]
    return out


# --------------------------------------------------------------------------------------------
# 4-5. The book: every notebook, the whole build, peak memory
# --------------------------------------------------------------------------------------------

def toc_notebooks():
    import yaml  # noqa: PLC0415

    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [c["file"] for part in toc["parts"] for c in part["chapters"]]
    return [ROOT / f"{f}.ipynb" for f in files if (ROOT / f"{f}.ipynb").exists()]


class PeakMemory:
    """Polls the resident memory of a process tree; the peak of the sum over the tree."""

    def __init__(self, pid, interval=0.2):
        import psutil  # noqa: PLC0415

        self.root, self.interval, self.peak = psutil.Process(pid), interval, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def _poll(self):
        import psutil  # noqa: PLC0415

        while not self._stop.is_set():
            try:
                procs = [self.root, *self.root.children(recursive=True)]
                total = 0
                for p in procs:
                    try:
                        total += p.memory_info().rss
                    except psutil.Error:
                        pass
                self.peak = max(self.peak, total)
            except psutil.Error:
                pass
            time.sleep(self.interval)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def build_book_fresh():
    """A strict build in a scratch copy with an empty execution cache; seconds and peak bytes."""
    with tempfile.TemporaryDirectory() as tmp:
        copy = pathlib.Path(tmp) / "book"
        shutil.copytree(ROOT, copy, ignore=shutil.ignore_patterns(
            "_build", ".venv*", ".git", "bench-results", "__pycache__", ".pytest_cache"))
        jb = pathlib.Path(sys.executable).parent / "jupyter-book"
        start = time.perf_counter()
        proc = subprocess.Popen([str(jb), "build", "-W", "-n", "--keep-going", str(copy)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        with PeakMemory(proc.pid) as memory:
            code = proc.wait()
        seconds = time.perf_counter() - start
        if code != 0:
            raise RuntimeError(f"the book build failed with exit code {code}")
        return seconds, memory.peak


def bench_book(build_repeats):
    builds = [build_book_fresh() for _ in range(build_repeats)]
    return {
        "build_seconds": summary([b[0] for b in builds]),
        "build_peak_gib": summary([b[1] / 2**30 for b in builds]),
    }


# --------------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------------

def markdown(results):
    lines = ["# Benchmarks", "",
             f"Machine: {results['machine']}. Figures are medians over runs, "
             "with the range (min-max) in brackets. Load (uptime):", ""]
    lines += [f"- {entry}" for entry in results.get("load", [])] + [""]
    if "compiled" in results:
        lines += ["## 1. Compiled training vs an eager loop (goal: at least 10x)", "",
                  "| loss | batch | eager steps/s | amortlib fit steps/s | speed-up | "
                  "first chunk incl. compilation |", "|---|---|---|---|---|---|"]
        for r in results["compiled"]:
            lines.append(f"| {r['loss']} | {r['batch_size']} "
                         f"| {fmt(r['eager_steps_per_s'], '', 0)} "
                         f"| {fmt(r['compiled_steps_per_s'], '', 0)} | {fmt(r['speedup'], 'x', 1)} "
                         f"| {fmt(r['first_chunk_s'], ' s')} |")
        lines.append("")
    if "accuracy" in results:
        lines += ["## 2. Time to |a-a\\*|, |b-b\\*|, |c-c\\*| < 0.01 (goal: at least 20x less)", "",
                  "Time until the error stays below 0.01 for the rest of the run, and until it "
                  "is first below 0.01; final error.", "",
                  "| loss | recipe | s until it stays | s until first | final max error | "
                  "run length (s) |", "|---|---|---|---|---|---|"]
        for r in results["accuracy"]:
            def stat(key, r=r):
                vals = [run[key] for run in r["runs"]]
                if any(v is None for v in vals):
                    reached = sum(v is not None for v in vals)
                    return f"not reached in {len(vals) - reached} of {len(vals)} runs"
                return fmt(summary(vals), "", 3)
            lines.append(f"| {r['loss']} | {r['recipe']} | {stat('seconds_to_stay')} | "
                         f"{stat('seconds_to_first')} | {stat('final_error')} | "
                         f"{stat('total_seconds')} |")
        lines += ["", results.get("accuracy_verdict", ""), ""]
    if "gap" in results:
        lines += ["## 3. A-VI vs F-VI, linear hierarchical model "
                  "(goal: A-VI at least 5x faster)", ""]
        gap = results["gap"]
        if "skipped" in gap:
            lines.append(gap["skipped"])
        else:
            lines += gap["markdown"]
        lines.append("")
    if "versus" in results:
        vs = results["versus"]
        lines += ["## 3b. amortlib vs the NumPy floor and JAX + optax "
                  "(goal: steps within 1.5x of JAX)", "",
                  "Per step in steady state (us), compilation (s), and time to accuracy (s: "
                  "amortlib measured, compilation included; NumPy and JAX: their compilation "
                  "plus amortlib's median step count at their speed, the algorithm being the "
                  "same). Ratios are amortlib / other, per interleaved repeat. Accuracy: "
                  r"|a-a\*|, |b-b\*|, |c-c\*| < 0.01 to the end (Gaussian unknown mean, "
                  "fit's defaults, 2000 steps); 1% of the optimum ELBO (linear hierarchical, "
                  "N = 10,000, Adam 0.05 with cosine decay, 600 steps).", ""]
        if vs["note"]:
            lines += [vs["note"], ""]
        head = "| workload | steps to accuracy |"
        rule = "|---|---|"
        for k in vs["kinds"]:
            head += f" {k} us/step | {k} compile s | {k} time to acc. s |"
            rule += "---|---|---|"
            if k != "amortlib":
                head += f" step ratio vs {k} | time ratio vs {k} |"
                rule += "---|---|"
        lines += [head, rule]
        for row in vs["rows"]:
            line = f"| {row['workload']} ({row['size']}) | {row['steps_to_accuracy']} |"
            for k in vs["kinds"]:
                cell = row[k]
                tta = cell["time_to_accuracy_s"]
                line += (f" {fmt(cell['us_per_step'], '', 0)} | {fmt(cell['compile_s'])} | "
                         f"{fmt(tta) if tta else 'not reached'} |")
                if k != "amortlib":
                    tr = cell.get("time_ratio")
                    line += (f" {fmt(cell['step_ratio'], 'x')} | "
                             f"{fmt(tr, 'x') if tr else '-'} |")
            lines.append(line)
        lines.append("")
    if "chapters" in results:
        ch = results["chapters"]
        lines += ["## 4. Every chapter as the build runs it (goal: under 20 s each)", "",
                  "Seconds, medians (range) over interleaved runs; kernel start-up apart. "
                  "Tracing is timed exactly; the other parts are shares of the sampled time.",
                  "", "| chapter | total | kernel | " + " | ".join(CATEGORY_NAMES)
                  + " | traces | first fit's tracing | retracing warnings | load |",
                  "|---|" + "---|" * (len(CATEGORY_NAMES) + 6)]
        for name, r in ch.items():
            parts = " | ".join(fmt(r["breakdown_s"][c], "", 1) for c in CATEGORY_NAMES)
            fft = r["first_fit_tracing_s"]
            lines.append(f"| {name} | {fmt(r['wall_s'], '', 1)} | "
                         f"{fmt(r['kernel_start_s'], '', 1)} | {parts} | "
                         f"{fmt(r['traces'], '', 0)} | {fmt(fft) if fft else '-'} | "
                         f"{r['retracing_warnings']} | "
                         f"{', '.join(f'{x:.1f}' for x in r['load_before'])} |")
        lines.append("")
    if "book" in results:
        book = results["book"]
        lines += ["## 5. The whole build (goal: make test under 8 min)", "",
                  "Whole strict book build from an empty cache: "
                  f"{fmt(book['build_seconds'], ' s', 0)}; "
                  f"peak resident memory of the build's process tree: "
                  f"{fmt(book['build_peak_gib'], ' GiB')}.", ""]
    return "\n".join(lines)


def accuracy_verdict(rows):
    """Speed-ups of the default recipe over the source's, per loss and loop."""
    out = []
    for loss in ["qp", "pq"]:
        mine = [r for r in rows if r["loss"] == loss and r["recipe"] == "amortlib default"][0]
        ours_stay = statistics.median(run["seconds_to_stay"] for run in mine["runs"])
        ours_first = statistics.median(run["seconds_to_first"] for run in mine["runs"])
        for src in [r for r in rows if r["loss"] == loss and r["recipe"].startswith("source")]:
            stays = [run["seconds_to_stay"] for run in src["runs"]]
            firsts = [run["seconds_to_first"] for run in src["runs"]]
            whole = statistics.median(run["total_seconds"] for run in src["runs"])
            first_part = ("never below 0.01" if any(f is None for f in firsts) else
                          f"first below 0.01 {statistics.median(firsts) / ours_first:.0f}x later")
            if any(t is None for t in stays):
                stay_part = (f"it does not stay within 0.01 in {sum(t is None for t in stays)} "
                             f"of {len(stays)} runs of 20,000 steps ({whole:.0f} s), against "
                             f"{ours_stay:.2f} s for the default recipe: more than "
                             f"{whole / ours_stay:.0f}x")
            else:
                stay_part = (f"it stays within 0.01 "
                             f"{statistics.median(stays) / ours_stay:.0f}x later")
            out.append(f"- {loss}, {src['recipe']}: {first_part}; {stay_part}.")
    return "\n".join(out)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", default=None,
                        help="sections: compiled accuracy gap versus chapters book")
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--book-repeats", type=int, default=None)
    parser.add_argument("--build-repeats", type=int, default=1)
    parser.add_argument("--quick", action="store_true",
                        help="versus (3 short repeats) and chapters (1 run each), no build")
    args = parser.parse_args()
    if args.only is None:
        args.only = (["versus", "chapters"] if args.quick else
                     ["compiled", "accuracy", "gap", "versus", "chapters", "book"])
    args.repeats = args.repeats or (3 if args.quick else 5)
    args.book_repeats = args.book_repeats or (1 if args.quick else 3)
    results = {"machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
                          f"TensorFlow {tf.__version__}", "load": []}

    def load(label):
        uptime = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
        results["load"].append(f"{label}: {uptime}")
    if "compiled" in args.only:
        print("compiled vs eager ...", flush=True)
        results["compiled"] = bench_compiled(args.repeats)
    if "accuracy" in args.only:
        print("time to accuracy ...", flush=True)
        results["accuracy"] = bench_accuracy(args.repeats)
        results["accuracy_verdict"] = accuracy_verdict(results["accuracy"])
    if "gap" in args.only:
        print("A-VI vs F-VI ...", flush=True)
        results["gap"] = bench_gap(args.repeats)
    if "versus" in args.only:
        load("before versus")
        print("amortlib vs NumPy and JAX ...", flush=True)
        results["versus"] = bench_versus(args.repeats)
    if "chapters" in args.only:
        load("before chapters")
        print("chapters ...", flush=True)
        results["chapters"] = bench_chapters(args.book_repeats)
    if "book" in args.only:
        load("before the build")
        print("the book ...", flush=True)
        results["book"] = bench_book(args.build_repeats)
    load("end")
    OUT.mkdir(exist_ok=True)
    (OUT / "results.json").write_text(json.dumps(results, indent=2))
    table = markdown(results)
    (OUT / "results.md").write_text(table)
    print(table)


if __name__ == "__main__":
    main()
