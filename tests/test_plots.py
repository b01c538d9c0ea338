"""The book's figure style: amortlib.plots sets larger text and, in a notebook, SVG figures."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import matplotlib

matplotlib.use("Agg")

from amortlib import plots  # noqa: E402


def test_importing_plots_applies_the_book_style():
    for key, value in plots.RC.items():
        assert matplotlib.rcParams[key] == value, key
    # the smallest text of a figure (ticks, legends) is larger than matplotlib's 10 pt default
    assert min(v for k, v in plots.RC.items() if k.endswith("size")) > 10


def test_in_a_notebook_figures_are_svg_not_png():
    """In an IPython shell with the inline backend (as in Jupyter and Colab), importing
    amortlib.plots makes matplotlib figures display as SVG, and no longer as PNG."""
    code = textwrap.dedent("""
        import matplotlib
        matplotlib.use("module://matplotlib_inline.backend_inline")
        from IPython.core.interactiveshell import InteractiveShell
        from matplotlib.figure import Figure
        shell = InteractiveShell.instance()
        import amortlib.plots
        formatters = shell.display_formatter.formatters
        print(Figure in formatters["image/svg+xml"].type_printers,
              Figure in formatters["image/png"].type_printers)
    """)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True)
    assert result.stdout.split() == ["True", "False"], result

