"""Tables, figure and report files of a layer-wise sensitivity sweep (:class:`quant.sensitivity.Sweep`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from gan.outputs import write_json_atomic, write_text_atomic
from quant.sensitivity import REVERSE, SOLO, Sweep


def _pct(values) -> str:
    return " ".join(f"{100 * v:+.1f}%" for v in values)


def format_table(sweep: Sweep) -> str:
    """A markdown table: one row per assignment (worst ratio, worst observable, accuracy, energy shifts, speed)."""
    edges = sweep.edges
    bins = ", ".join(f"{edges[i]:g}-{edges[i + 1]:g}" for i in range(len(edges) - 1))
    lines = [f"Sensitivity of '{sweep.model or '?'}' to {sweep.precision} on {sweep.runtime} "
             f"(worst ratio = max |shift| / tolerance; <= 1 is inside the tolerance table)",
             "",
             f"| sweep | {sweep.precision} in | worst ratio | verdict | worst observable | accuracy metric | "
             f"total-energy shift per bin ({bins} GeV) | speed-up |",
             "|---|---|---|---|---|---|---|---|"]
    for r in sweep.rows:
        verdict = "inside" if r.accepted else "**FRAGILE**" if r.sweep == SOLO else "outside"
        lines.append(f"| {r.sweep} | {r.label} | {r.worst_ratio:.3g} | {verdict} | {r.worst} | "
                     f"{r.accuracy_metric:.3g} | {_pct(r.energy_shift)} | {r.speedup:.2f}x "
                     f"[{r.speedup_low:.2f}, {r.speedup_high:.2f}] |")
    fragile = sweep.fragile()
    lines += ["", "Fragile alone: " + (", ".join(fragile) if fragile else "none")]
    return "\n".join(lines + [f"Note: {n}" for n in sweep.notes])


def plot(sweep: Sweep, path) -> Path:
    """Heat map (assignments x observables, |shift| / tolerance, log colour, 1 = tolerance) and speed-up bars."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import LogNorm

    rows = [r for r in sweep.rows if r.sweep in (SOLO, REVERSE)] or sweep.rows
    observables = sorted({name for r in rows for name in r.ratios}, key=_observable_order)
    ratios = np.array([[r.ratios.get(name, np.nan) for name in observables] for r in rows], float)
    shown = np.clip(np.nan_to_num(ratios, nan=1e-3, posinf=1e4), 1e-3, 1e4)
    fig, (ax, bars) = plt.subplots(1, 2, figsize=(14, 0.45 * len(rows) + 2.5),
                                   gridspec_kw={"width_ratios": [4, 1]}, sharey=True)
    image = ax.imshow(shown, cmap="RdYlGn_r", norm=LogNorm(1e-2, 1e2), aspect="auto")
    for (i, j), value in np.ndenumerate(ratios):
        ax.text(j, i, f"{value:.2g}", ha="center", va="center", fontsize=7)
    ax.set_xticks(range(len(observables)), observables, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(len(rows)), [f"{r.sweep}: {r.label}" for r in rows], fontsize=8)
    ax.set_title(f"{sweep.model or '?'}: {sweep.precision} on {sweep.runtime}, |shift| / tolerance (worst bin)")
    fig.colorbar(image, ax=ax, label="|shift| / tolerance (1 = tolerance)", shrink=0.8)
    speed = np.array([r.speedup for r in rows])
    err = np.array([[r.speedup - r.speedup_low for r in rows], [r.speedup_high - r.speedup for r in rows]])
    bars.barh(range(len(rows)), speed, xerr=np.clip(err, 0, None),
              color=["tab:green" if r.accepted else "tab:red" for r in rows])
    bars.axvline(1.0, color="k", lw=0.8)
    bars.set_xlabel(f"speed-up vs {sweep.runtime} FP32")
    bars.set_title("speed-up (rough)")
    fig.tight_layout()
    from gan.outputs import atomic_path

    path = Path(path)
    try:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=110, format=path.suffix.lstrip(".") or "png")
    finally:
        plt.close(fig)
    return path


def _observable_order(name: str) -> int:
    from gan.paired import PAIRED_OBSERVABLES

    order = list(PAIRED_OBSERVABLES)
    return order.index(name) if name in order else len(order)


def format_report(sweep: Sweep, sections=()) -> str:
    """The table, the activation statistics and any extra markdown ``sections``."""
    from quant.activations import format_stats

    parts = [format_table(sweep)]
    if sweep.activations:
        parts.append("Activation ranges of each layer's input (FP32, calibration inputs; int8 = symmetric per-tensor "
                     "min/max)\n\n" + format_stats(sweep.activations))
    return "\n\n".join([*parts, *sections]) + "\n"


def write_report(sweep: Sweep, directory, stem: str, sections=()) -> list[Path]:
    """``stem``.md (table), ``stem``.json (the sweep) and ``stem``.png (the figure) in ``directory``."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    md = write_text_atomic(directory / f"{stem}.md", format_report(sweep, sections))
    return [md, write_json_atomic(directory / f"{stem}.json", sweep.to_dict()), plot(sweep, directory / f"{stem}.png")]
