r"""One figure style for the whole book: the same colour and line for $p$, $q_{pq}$ and $q_{qp}$.

Colours are from the Okabe-Ito palette, which stays distinguishable for colour-blind readers, and
each curve also has its own line style so that curves lying on top of each other stay visible.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np

from amortlib.history import running_mean

__all__ = [
    "GAP_STYLES",
    "RC",
    "STYLES",
    "draw_graph",
    "plot_density_panels",
    "plot_elbo_traces",
    "plot_functions_of_y",
    "plot_losses",
    "plot_posteriors",
    "plot_traces",
    "use_book_style",
]

#: The book's matplotlib settings. Text is larger than matplotlib's default (10 pt), so that it
#: stays readable when a page shrinks a figure to a phone's width,
#: and SVG output with text drawn as paths (sharp at any zoom, the same fonts on every machine),
#: with a fixed salt for its ids so that re-running a notebook gives the same file.
RC = {
    "font.size": 12.0,
    "axes.titlesize": 12.0,
    "axes.labelsize": 12.0,
    "xtick.labelsize": 11.0,
    "ytick.labelsize": 11.0,
    "legend.fontsize": 11.0,
    "svg.fonttype": "path",
    "svg.hashsalt": "amortlib",
}


def use_book_style() -> None:
    """Apply `RC`, and in IPython or Jupyter show figures as SVG (vector) instead of PNG.

    Importing `amortlib.plots` calls it, so every chapter gets the style. Outside IPython only
    the matplotlib settings change.
    """
    plt.rcParams.update(RC)
    ipython = sys.modules.get("IPython")
    if ipython is None or ipython.get_ipython() is None:
        return
    if "inline" not in plt.get_backend():  # a terminal's or a script's backend: no inline figures
        return
    # matplotlib_inline comes with ipykernel (Jupyter, Colab), which displays inline figures.
    inline = importlib.import_module("matplotlib_inline.backend_inline")
    inline.InlineBackend.instance().figure_formats = {"svg"}
    inline.set_matplotlib_formats("svg")


#: Line styles by role, for the exact posterior and the networks trained with each loss.
STYLES = {
    "p": dict(color="black", linestyle="-", linewidth=2.5, label=r"exact $p(x \mid y)$"),
    "pq": dict(color="#0072B2", linestyle="--", linewidth=2.0, label=r"$q_{pq}$ (pq loss)"),
    "qp": dict(color="#D55E00", linestyle=":", linewidth=2.5, label=r"$q_{qp}$ (qp loss)"),
}


def _style(role: str) -> dict:
    if role not in STYLES:
        raise ValueError(f"role must be one of {', '.join(map(repr, STYLES))}; got {role!r}")
    return dict(STYLES[role])


def plot_traces(histories: Mapping, targets: Mapping[str, float], *,
                labels: Mapping[str, str] | None = None):
    """Plot traced parameters against training step, one panel per parameter, with their targets.

    Args:
        histories: ``{"pq": History, "qp": History}`` (any subset), each traced with the names in
            ``targets``.
        targets: ``{name: optimum}``; each panel draws the optimum as a grey horizontal line.
        labels: optional axis labels per name (default: the name itself).

    Returns:
        The matplotlib figure.
    """
    labels = dict(labels or {})
    width = min(9.0, 3.0 * len(targets))
    fig, axes = plt.subplots(1, len(targets), figsize=(width, 3.0), squeeze=False)
    for ax, (name, target) in zip(axes[0], targets.items()):
        for role, history in histories.items():
            values = history.trace[name]
            ax.plot(np.arange(1, len(values) + 1), values, **_style(role))
        ax.axhline(target, color="0.5", linewidth=1.0, zorder=0, label="optimum")
        ax.set_xlabel("training step")
        ax.set_ylabel(labels.get(name, name))
        ax.set_xscale("log")
    axes[0, -1].legend(loc="best", fontsize="small")
    fig.tight_layout()
    return fig


def plot_losses(histories: Mapping, floors: Mapping[str, float] | None = None):
    """Plot each loss against training step, one panel per loss, with its analytic minimum.

    Args:
        histories: ``{"pq": History, "qp": History}`` (any subset).
        floors: optional ``{role: minimum}``, drawn as a grey horizontal line in that panel.

    Returns:
        The matplotlib figure.
    """
    floors = dict(floors or {})
    fig, axes = plt.subplots(1, len(histories), figsize=(3.8 * len(histories), 3.0), squeeze=False)
    for ax, (role, history) in zip(axes[0], histories.items()):
        steps = np.arange(1, history.num_steps + 1)
        ax.plot(steps, history.loss, alpha=0.8, **_style(role))
        if role in floors:
            ax.axhline(floors[role], color="0.5", linewidth=1.0, label="analytic minimum")
        ax.set_xscale("log")
        ax.set_xlabel("training step")
        ax.set_ylabel(f"{role} loss (nats)")
        ax.legend(loc="upper right", fontsize="small")
    fig.tight_layout()
    return fig


def plot_posteriors(
    model,
    q_nets: Mapping[str, object],
    ys: Sequence[float],
    *,
    x=None,
    xlabel: str = "$x$",
):
    """Plot the exact posterior and each network's $q(x \\mid y)$, one panel per observation.

    Args:
        model: a model with ``posterior(y)``.
        q_nets: ``{"pq": q_net, "qp": q_net}`` (any subset).
        ys: the test observations, one panel each.
        x: grid of latent values (default: 6 posterior standard deviations around the posterior
            means).
        xlabel: label of the horizontal axis.

    Returns:
        The matplotlib figure.
    """
    ys = np.asarray(ys, dtype=np.float32)
    posterior = model.posterior(ys)
    fig, axes = plt.subplots(1, len(ys), figsize=(3.0 * len(ys), 2.8), sharey=True, squeeze=False)
    for i, (ax, y) in enumerate(zip(axes[0], ys)):
        grid = x
        if grid is None:
            mean, sd = float(posterior.mean()[i]), float(posterior.stddev()[i])
            grid = np.linspace(mean - 6 * sd, mean + 6 * sd, 400)
        grid = np.asarray(grid, dtype=np.float32)
        p_y = model.posterior([y])
        ax.plot(grid, np.exp(p_y.log_prob(grid[:, None])[:, 0]), **_style("p"))
        for role, q_net in q_nets.items():
            ax.plot(grid, np.exp(q_net([y]).log_prob(grid[:, None])[:, 0]), **_style(role))
        ax.set_title(f"$y = {y:g}$")
        ax.set_xlabel(xlabel)
    axes[0, 0].set_ylabel("density")
    axes[0, -1].legend(loc="upper right", fontsize="small")
    fig.tight_layout()
    return fig


# ---------------------------------------------------------------- amortization-gap chapters

#: Line styles for the inference methods of the amortization-gap chapters.
GAP_STYLES = {
    "F-VI": dict(color="black", linestyle="-", linewidth=2.0),
    "constant": dict(color="#E69F00", linestyle="-.", linewidth=2.0),
    "degree 1": dict(color="#0072B2", linestyle="--", linewidth=2.0),
    "degree 2": dict(color="#009E73", linestyle=":", linewidth=2.5),
}


def plot_elbo_traces(ax, histories: Mapping, *, optimum: float | None = None, styles=None,
                     window: int = 50, against: str = "seconds"):
    """Plot the ELBO (running mean of $-$loss) of several runs against wall time or step.

    Args:
        ax: the matplotlib axes.
        histories: ``{label: History}`` from `amortlib.gap.fit_vi`.
        optimum: optional optimal ELBO, drawn as a grey line.
        styles: optional ``{label: line style}`` (default `GAP_STYLES`, then matplotlib's cycle).
        window: running-mean window in steps.
        against: ``"seconds"`` or ``"step"``.
    """
    styles = dict(GAP_STYLES, **(styles or {}))
    for label, history in histories.items():
        xs = history.elapsed if against == "seconds" else np.arange(1, history.num_steps + 1)
        ax.plot(xs, -running_mean(history.loss, window), label=label, **styles.get(label, {}))
    if optimum is not None:
        ax.axhline(optimum, color="0.5", linewidth=1.0, zorder=0, label="F-VI optimum")
    ax.set_xlabel("wall time (s)" if against == "seconds" else "training step")
    ax.set_ylabel("ELBO (nats)")
    return ax


def draw_graph(ax, nodes: Mapping, edges: Sequence, *, title: str = "", radius: float = 0.32):
    """Draw a small directed graphical model: circles for variables, arrows for edges.

    Args:
        ax: the matplotlib axes.
        nodes: ``{name: (x, y, label, observed)}``; observed nodes are shaded.
        edges: ``[(parent, child), ...]``.
        title: the panel title.
        radius: circle radius in data units.
    """
    from matplotlib.patches import Circle, FancyArrowPatch

    for x, y, label, observed in nodes.values():
        ax.add_patch(Circle((x, y), radius, facecolor="0.8" if observed else "white",
                            edgecolor="black", linewidth=1.2, zorder=2))
        ax.text(x, y, label, ha="center", va="center", fontsize=11, zorder=3)
    for parent, child in edges:
        (x0, y0), (x1, y1) = nodes[parent][:2], nodes[child][:2]
        length = np.hypot(x1 - x0, y1 - y0)
        dx, dy = (x1 - x0) / length * radius, (y1 - y0) / length * radius
        ax.add_patch(FancyArrowPatch((x0 + dx, y0 + dy), (x1 - dx, y1 - dy), arrowstyle="-|>",
                                     mutation_scale=11, linewidth=1.0, color="black", zorder=1))
    xs = [v[0] for v in nodes.values()]
    ys = [v[1] for v in nodes.values()]
    ax.set_xlim(min(xs) - 0.6, max(xs) + 0.6)
    ax.set_ylim(min(ys) - 0.6, max(ys) + 0.6)
    ax.set_aspect("equal")
    ax.axis("off")
    ax.set_title(title, fontsize=11)
    return ax


def _style_or(role: str, styles: Mapping | None) -> dict:
    """The style of ``role``: from ``styles`` if given there, else from `STYLES`."""
    if styles and role in styles:
        return dict(styles[role])
    return _style(role)


def plot_density_panels(grid, ys: Sequence[float], curves: Mapping[str, np.ndarray], *,
                        styles: Mapping[str, dict] | None = None, xlabel: str = "$x$",
                        ylabel: str = "density"):
    """One panel per observation, each with several densities on a common grid.

    Args:
        grid: the horizontal grid, shape ``[n]``.
        ys: the observations, one panel each.
        curves: ``{role: values}`` with ``values`` of shape ``[len(ys), n]``; roles are keys of
            `STYLES` (``"p"``, ``"pq"``, ``"qp"``) or of ``styles``.
        styles: extra line styles by role (with a ``label``).
        xlabel, ylabel: axis labels.

    Returns:
        The matplotlib figure.
    """
    grid = np.asarray(grid)
    fig, axes = plt.subplots(1, len(ys), figsize=(min(9.0, 1.9 * len(ys)), 2.6), sharey=True,
                             squeeze=False)
    for i, (ax, y) in enumerate(zip(axes[0], ys)):
        for role, values in curves.items():
            ax.plot(grid, np.asarray(values)[i], **_style_or(role, styles))
        ax.set_title(f"$y = {float(y):g}$")
        ax.set_xlabel(xlabel)
    axes[0, 0].set_ylabel(ylabel)
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=len(labels), fontsize="small",
               bbox_to_anchor=(0.5, -0.02), frameon=False)
    fig.tight_layout(rect=(0, 0.1, 1, 1))
    return fig


def plot_functions_of_y(y, panels: Mapping[str, Mapping[str, np.ndarray]], *,
                        styles: Mapping[str, dict] | None = None, xlabel: str = "$y$",
                        logy: Sequence[str] = ()):
    """Curves against the observation $y$, one panel per quantity (a network output, a KL).

    Args:
        y: the observations, shape ``[n]``.
        panels: ``{ylabel: {role: values}}``, ``values`` of shape ``[n]``; roles as in
            `plot_density_panels`.
        styles: extra line styles by role (with a ``label``).
        xlabel: label of the horizontal axis.
        logy: the panels (by ylabel) to draw on a logarithmic vertical axis.

    Returns:
        The matplotlib figure.
    """
    fig, axes = plt.subplots(1, len(panels), figsize=(min(9.0, 3.6 * len(panels)), 2.9),
                             squeeze=False)
    for ax, (ylabel, curves) in zip(axes[0], panels.items()):
        for role, values in curves.items():
            ax.plot(np.asarray(y), np.asarray(values), **_style_or(role, styles))
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        if ylabel in logy:
            ax.set_yscale("log")
        ax.legend(loc="best", fontsize="small")
    fig.tight_layout()
    return fig


use_book_style()
