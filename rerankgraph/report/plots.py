"""The report's plots, drawn by matplotlib (Agg backend) as inline SVG text, so the HTML
needs nothing at view time."""

from __future__ import annotations

import io
from typing import Any

from rerankgraph.errors import InputError
from rerankgraph.report.scores import TESTED, RunSummary, WinLoss

WIN, TIE_COLOUR, LOSS = "#2b8a3e", "#868e96", "#c92a2a"


def _pyplot() -> Any:
    try:
        import matplotlib
    except ImportError:
        raise InputError("the report needs matplotlib: pip install 'rerankgraph[report]'"
                         ) from None
    matplotlib.use("Agg")  # no display; also keeps a GUI backend from loading
    import matplotlib.pyplot as plt

    return plt


def _svg(fig: Any, salt: str) -> str:
    """The figure as an <svg> element, its text kept as text (searchable, smaller) and
    its element ids salted, so that several SVGs inline in one page never share an id."""
    plt = _pyplot()
    buffer = io.StringIO()
    with plt.rc_context({"svg.fonttype": "none", "svg.hashsalt": salt}):
        # No metadata block: it holds a build date and outside URIs, and says nothing.
        fig.savefig(buffer, format="svg", bbox_inches="tight",
                    metadata={"Date": None, "Creator": None, "Format": None, "Type": None})
    plt.close(fig)
    text = buffer.getvalue()
    return text[text.index("<svg"):]  # drop the XML prolog and doctype


def delta_bars(winloss: WinLoss, baseline: str) -> str:
    """A bar per query of the run's TESTED minus the baseline's, largest first."""
    plt = _pyplot()
    deltas = [d for _, d in winloss.deltas]
    fig, ax = plt.subplots(figsize=(max(4.0, 0.28 * len(deltas) + 1.5), 2.6))
    colours = [WIN if d > 0 else LOSS if d < 0 else TIE_COLOUR for d in deltas]
    ax.bar(range(len(deltas)), deltas, color=colours)
    ax.axhline(0, color="black", linewidth=0.8)
    ax.set_xticks(range(len(deltas)), [q for q, _ in winloss.deltas], rotation=90,
                  fontsize=7)
    ax.set_ylabel(f"Δ {TESTED}")
    ax.set_title(f"{winloss.run} − {baseline}: {winloss.wins} wins, {winloss.ties} ties, "
                 f"{winloss.losses} losses", fontsize=9)
    return _svg(fig, f"delta-{winloss.run}")


def cost_quality(rows: list[RunSummary]) -> str | None:
    """TESTED against tokens per query, a point per run with provenance; None when no
    run has one."""
    costed = [r for r in rows if r.cost is not None]
    if not costed:
        return None
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 3.5))
    for row in costed:
        assert row.cost is not None
        x, y = row.cost.tokens_per_query, row.means[TESTED]
        ax.scatter([x], [y], s=36)
        ax.annotate(row.label, (x, y), textcoords="offset points", xytext=(5, 4), fontsize=8)
    ax.set_xlabel("tokens per query (prompt + completion)")
    ax.set_ylabel(TESTED)
    ax.grid(alpha=0.3)
    return _svg(fig, "cost-quality")
