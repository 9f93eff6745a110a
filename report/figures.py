"""The report's figures (matplotlib in a HEP style: mplhep's ROOT style where installed), and the numbers behind them.

Each figure has a numpy-only ``*_data`` function (what is drawn, testable without a plot) and a ``draw_*``
function that draws exactly that data and returns the open figure; :func:`save` writes and closes it.
A ``Sample`` is one labelled shower set: Geant4, the FP32 model, or a variant, all with energies in GeV.
"""

from __future__ import annotations

import math
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from gan import physics
from study.results import FP32, GEANT4, Sample  # noqa: F401 - Sample re-exported (the figures draw them)

PAPER_INC_SPEEDUP = 1.73  # Rehm et al., ICPRAM 2021: INT8 (Intel LPOT/iLoT, now INC) over FP32
FOLDED_BASELINE = "folded"  # the exact rewrite: second baseline of the trade-off figure
RATIO_MAX_DEVIATION = 0.5  # ratio panels show at most 1 +- this; curves beyond it are named "off scale"
LOG_FLOOR = 1e-3  # worst tolerance ratios below this are drawn at it (log axis)
SPEEDUP_TICKS = (0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50)
DPI = 100
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22",
           "#7f7f7f", "#aec7e8", "#ffbb78")
LINESTYLES = ("--", "-.", ":", (0, (5, 1, 1, 1)))  # variants: dashed, so the solid FP32 line shows beneath
FP32_WIDTH, VARIANT_WIDTH = 2.6, 1.5
RATIO_MIN_SHARE = 1e-3  # ratio panels skip profile slices holding less than this share of FP32's peak
SPECTRUM_MIN_SHARE = 1e-2  # and cell-spectrum bins (counting noise: a few cells per bin)


def colour_map(labels) -> dict[str, tuple[str, str]]:
    """label -> (colour, linestyle): Geant4 and FP32 black, variants from the palette in sorted order."""
    styles = {GEANT4: ("black", "none"), FP32: ("black", "-")}
    variants = sorted(label for label in labels if label not in styles)
    styles |= {v: (PALETTE[i % len(PALETTE)], LINESTYLES[i % len(LINESTYLES)]) for i, v in enumerate(variants)}
    return styles


def bins_to_show(edges, count: int = 3) -> list[int]:
    """Indices of ``count`` energy bins spread over the range: first, middle(s), last."""
    n = len(edges) - 1
    return sorted({int(round(i * (n - 1) / max(count - 1, 1))) for i in range(min(count, n))})


# ------------------------------------------------------------------ the numbers behind the figures

PROFILES = {"longitudinal": (physics.longitudinal_profile, "layer z"),
            "transverse": (physics.transverse_profile_x, "cell x")}


def profile_data(sample: Sample, edges, kind: str) -> np.ndarray:
    """Bin-mean profile (B, n slices) in GeV of ``kind`` 'longitudinal' (per layer) or 'transverse' (per x)."""
    profile, _ = PROFILES[kind]
    return physics.binned_mean_std(profile(sample.ecal), sample.energy, edges)[0]


def _mean_and_error(values, energy, edges):
    mean, std, count = physics.binned_mean_std(values, energy, edges)
    with np.errstate(invalid="ignore", divide="ignore"):
        error = std / np.sqrt(count.reshape((-1,) + (1,) * (std.ndim - 1)))
    return mean, error, count


def sampling_fraction_data(sample: Sample, edges) -> dict[str, np.ndarray]:
    """Per energy bin: centre (GeV), mean E_cal/E_p, its standard error, events."""
    edges = np.asarray(edges, np.float64)
    mean, error, count = _mean_and_error(physics.sampling_fraction(sample.ecal, sample.energy), sample.energy, edges)
    return {"centre": 0.5 * (edges[1:] + edges[:-1]), "mean": mean, "error": error, "count": count}


def spectrum_data(sample: Sample) -> tuple[np.ndarray, np.ndarray]:
    """Cells per shower in each cell-energy bin (log bins of gan.physics), and the bin edges (GeV)."""
    counts, bin_edges = physics.cell_energy_spectrum(sample.ecal)
    return counts / max(len(sample.ecal), 1), bin_edges


def moments_data(sample: Sample, edges) -> dict[str, np.ndarray]:
    """Per energy bin: mean and standard error of the moments (B, 3 axes x/y/z, 2 orders) of gan.physics."""
    edges = np.asarray(edges, np.float64)
    mean, error, count = _mean_and_error(physics.moments(sample.ecal, 2), sample.energy, edges)
    return {"centre": 0.5 * (edges[1:] + edges[:-1]), "mean": mean, "error": error, "count": count}


def tradeoff_data(variants: dict) -> list[dict]:
    """One point per variant with a speed-up and a paired verdict: results.json variant entries -> points.

    Each point: variant, speedup, low, high (at the largest batch size measured), worst_ratio (worst paired
    shift / tolerance), ok (paired and Geant4 verdicts), drawn_ratio (worst_ratio floored at LOG_FLOOR).
    """
    points = []
    for name, entry in variants.items():
        speed, paired = entry.get("speedup_at_largest_batch"), entry.get("paired")
        if not speed or not paired:
            continue
        ratio = float(paired["worst_ratio"]) if not isinstance(paired["worst_ratio"], str) else math.inf
        points.append({"variant": name, "speedup": speed["median"], "low": speed["low"], "high": speed["high"],
                       "worst_ratio": ratio, "drawn_ratio": max(ratio, LOG_FLOOR) if math.isfinite(ratio) else 1e4,
                       "ok": bool(entry.get("keeps_physics"))})
    return points


# ------------------------------------------------------------------ drawing


@contextmanager
def hep_style():
    """mplhep's ROOT style where mplhep is installed, else matplotlib's defaults with a grid."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    try:
        import mplhep

        style = mplhep.style.ROOT
    except ImportError:
        style = {"axes.grid": True}
    with plt.style.context(style), plt.rc_context({"font.size": 13, "legend.fontsize": 11, "axes.titlesize": 13,
                                                   "axes.labelsize": 13, "mathtext.fontset": "dejavusans"}):
        yield plt


def save(fig, path) -> Path:
    import matplotlib.pyplot as plt

    path = Path(path)
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return path


def _legend_below(fig, handles, labels, ncol=6):
    fig.legend(handles, labels, loc="outside lower center", ncol=min(ncol, len(labels)), frameon=False)


def _ratio_limits(ax, ratios: dict[str, np.ndarray]) -> None:
    """y range 1 +- (largest deviation, at most RATIO_MAX_DEVIATION); names the curves beyond it."""
    finite = [np.abs(r[np.isfinite(r)] - 1) for r in ratios.values()]
    deviation = max([float(f.max()) for f in finite if f.size] + [0.02])
    span = min(RATIO_MAX_DEVIATION, 1.15 * deviation)
    ax.set_ylim(1 - span, 1 + span)
    off = [label for label, r in ratios.items() if np.any(np.abs(r[np.isfinite(r)] - 1) > span)]
    if off:
        ax.text(0.02, 0.93, "off scale: " + ", ".join(off), transform=ax.transAxes, va="top", fontsize=9,
                color="dimgray", bbox={"facecolor": "white", "edgecolor": "none", "alpha": 0.8, "pad": 1})


def ratio_to(values, reference, min_share: float = RATIO_MIN_SHARE) -> np.ndarray:
    """values / reference where the reference holds at least ``min_share`` of its peak, else NaN."""
    values, reference = np.asarray(values, np.float64), np.asarray(reference, np.float64)
    shown = reference >= min_share * np.nanmax(reference, initial=0.0)
    shown &= reference > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(shown, values / np.where(shown, reference, 1.0), np.nan)


def _width(label: str) -> float:
    return FP32_WIDTH if label == FP32 else VARIANT_WIDTH


def draw_profiles(samples: list[Sample], edges, kind: str, title: str, count: int = 3):
    """Bin-mean profiles for ``count`` energy bins (columns), each with a ratio-to-FP32 panel below."""
    _, xlabel = PROFILES[kind]
    edges = np.asarray(edges, np.float64)
    shown = bins_to_show(edges, count)
    styles = colour_map(s.label for s in samples)
    data = {s.label: profile_data(s, edges, kind) for s in samples}
    with hep_style() as plt:
        fig, axes = plt.subplots(2, len(shown), figsize=(5.2 * len(shown), 7.2), sharex="col", squeeze=False,
                                 gridspec_kw={"height_ratios": [3, 1.3], "hspace": 0.05}, layout="constrained")
        for col, b in enumerate(shown):
            top, bottom = axes[0, col], axes[1, col]
            ratios = {}
            for label, profiles in data.items():
                colour, ls = styles[label]
                x = np.arange(profiles.shape[1])
                if label == GEANT4:
                    top.plot(x, profiles[b], "o", color=colour, ms=4, label=label)
                else:
                    top.step(x, profiles[b], where="mid", color=colour, ls=ls, lw=_width(label), label=label)
                if label != FP32 and FP32 in data:
                    ratios[label] = ratio_to(profiles[b], data[FP32][b])
                    style = {"marker": "o", "ls": "none", "ms": 3} if label == GEANT4 else \
                        {"ls": ls, "drawstyle": "steps-mid", "lw": VARIANT_WIDTH}
                    bottom.plot(x, ratios[label], color=colour, **style)
            top.set_yscale("log")
            top.set_title(f"{edges[b]:g}-{edges[b + 1]:g} GeV")
            top.set_ylabel("mean energy per slice [GeV]" if col == 0 else "")
            bottom.axhline(1.0, color="black", lw=0.8)
            bottom.set_xlabel(xlabel)
            bottom.set_ylabel("ratio to FP32" if col == 0 else "")
            _ratio_limits(bottom, ratios)
        handles, labels = axes[0, 0].get_legend_handles_labels()
        _legend_below(fig, handles, labels)
        fig.suptitle(title)
    return fig


def draw_sampling_fraction(samples: list[Sample], edges, title: str):
    """Mean E_cal/E_p per primary-energy bin with standard errors; samples offset sideways to stay apart."""
    styles = colour_map(s.label for s in samples)
    edges = np.asarray(edges, np.float64)
    width = float(np.min(np.diff(edges)))
    with hep_style() as plt:
        fig, ax = plt.subplots(figsize=(10, 6.5), layout="constrained")
        for i, sample in enumerate(samples):
            d = sampling_fraction_data(sample, edges)
            offset = (i - (len(samples) - 1) / 2) * 0.6 * width / max(len(samples), 1)
            colour, _ = styles[sample.label]
            marker = "o" if sample.label == GEANT4 else ("s" if sample.label == FP32 else "^")
            ax.errorbar(d["centre"] + offset, 100 * d["mean"], yerr=100 * d["error"], fmt=marker, color=colour,
                        ms=5, capsize=2, label=sample.label)
        ax.set(xlabel="primary energy [GeV]", ylabel=r"$E_{cal}/E_p$ [%]  (bars: error of the mean)")
        ax.set_title(title)
        _legend_below(fig, *ax.get_legend_handles_labels())
    return fig


def draw_spectrum(samples: list[Sample], title: str):
    """Cell-energy spectrum (cells per shower, log-log) with a ratio-to-FP32 panel."""
    styles = colour_map(s.label for s in samples)
    data = {s.label: spectrum_data(s) for s in samples}
    with hep_style() as plt:
        fig, (top, bottom) = plt.subplots(2, 1, figsize=(10, 8), sharex=True, layout="constrained",
                                          gridspec_kw={"height_ratios": [3, 1.3], "hspace": 0.05})
        ratios = {}
        for label, (counts, bin_edges) in data.items():
            colour, ls = styles[label]
            if label == GEANT4:
                centres = np.sqrt(bin_edges[1:] * bin_edges[:-1])
                top.plot(centres, np.where(counts > 0, counts, np.nan), "o", color=colour, ms=4, label=label)
            else:
                top.stairs(counts, bin_edges, color=colour, ls=ls, lw=_width(label), label=label)
            if label != FP32 and FP32 in data:
                ratios[label] = ratio_to(counts, data[FP32][0], SPECTRUM_MIN_SHARE)
                bottom.stairs(ratios[label], bin_edges, color=colour, ls=":" if label == GEANT4 else ls,
                              lw=VARIANT_WIDTH)
        filled = np.flatnonzero(np.any([counts > 0 for counts, _ in data.values()], axis=0))
        if filled.size:
            bin_edges = next(iter(data.values()))[1]
            top.set_xlim(bin_edges[filled[0]], bin_edges[filled[-1] + 1])
        top.set(xscale="log", yscale="log", ylabel="cells per shower")
        top.set_title(title)
        bottom.axhline(1.0, color="black", lw=0.8)
        bottom.set(xlabel="cell energy [GeV]", ylabel="ratio to FP32")
        _ratio_limits(bottom, ratios)
        _legend_below(fig, *top.get_legend_handles_labels())
    return fig


MOMENT_PANELS = [(order, axis) for order in (0, 1) for axis in range(3)]
MOMENT_LABELS = {0: "centroid {a} [cells]", 1: "2nd moment {a} [cells$^2$]"}


def draw_moments(samples: list[Sample], edges, title: str):
    """Bin means of the first and second moments along x, y, z vs primary energy (2 x 3 panels)."""
    styles = colour_map(s.label for s in samples)
    data = {s.label: moments_data(s, edges) for s in samples}
    with hep_style() as plt:
        fig, axes = plt.subplots(2, 3, figsize=(15, 8.5), sharex=True, layout="constrained")
        for (order, axis), ax in zip(MOMENT_PANELS, axes.flat, strict=False):
            for label, d in data.items():
                colour, ls = styles[label]
                ax.errorbar(d["centre"], d["mean"][:, axis, order], yerr=d["error"][:, axis, order],
                            marker="o" if label == GEANT4 else None, color=colour,
                            ls="none" if label == GEANT4 else ls, ms=4, capsize=2, lw=_width(label), label=label)
            ax.set_ylabel(MOMENT_LABELS[order].format(a="xyz"[axis]))
            if order == 1:
                ax.set_xlabel("primary energy [GeV]")
        fig.suptitle(title)
        _legend_below(fig, *axes[0, 0].get_legend_handles_labels())
    return fig


def draw_tradeoff(models: dict[str, list[dict]], title: str):
    """Speed-up over FP32 (x, with interval) vs worst paired shift in tolerance units (y, log): one panel per model.

    Below the dashed line at 1 the variant keeps the physics; right of the solid line at 1 it is faster; the
    dash-dotted line is ``folded`` (the exact rewrite), the second baseline, where it ran.
    """
    with hep_style() as plt:
        fig, axes = plt.subplots(1, len(models), figsize=(8.5 * len(models), 7), squeeze=False, layout="constrained")
        for ax, (model, points) in zip(axes[0], models.items(), strict=True):
            _draw_tradeoff_panel(ax, points)
            ax.set_title(f"model {model}")
        fig.suptitle(title)
    return fig


def _draw_tradeoff_panel(ax, points: list[dict]) -> None:
    ax.set_yscale("log")
    ax.set_xscale("log")
    ax.axhline(1.0, color="black", ls="--", lw=1)
    ax.axvline(1.0, color="black", lw=1)
    ax.axvline(PAPER_INC_SPEEDUP, color="gray", ls=":", lw=1.2)
    if not points:
        ax.text(0.5, 0.5, "no speed or physics measured", transform=ax.transAxes, ha="center")
        return
    speeds = [p[k] for p in points for k in ("low", "high", "speedup")]
    xlo, xhi = min(speeds + [0.5]) / 1.4, max(speeds + [2.0]) * 1.4
    ys = [p["drawn_ratio"] for p in points]
    ylo, yhi = min(ys + [0.1]) / 3, max(ys + [10.0]) * 3
    ax.set(xlim=(xlo, xhi), ylim=(ylo, yhi))
    ax.axhspan(ylo, 1.0, xmin=_axis_fraction(1.0, xlo, xhi), color="#2ca02c", alpha=0.08)
    placed: list[tuple[float, float]] = []
    for p in sorted(points, key=lambda q: -q["drawn_ratio"]):
        colour = "#2ca02c" if p["ok"] else "#d62728"
        err = [[p["speedup"] - p["low"]], [p["high"] - p["speedup"]]]
        ax.errorbar([p["speedup"]], [p["drawn_ratio"]], xerr=err, fmt="o" if p["ok"] else "X", color=colour,
                    ms=8, capsize=3)
        label = p["variant"] + ("" if math.isfinite(p["worst_ratio"]) else " (shift not finite)")
        (dx, dy) = _label_offset(p, placed)
        right_edge = _axis_fraction(p["speedup"], xlo, xhi) > 0.75  # label to the left, inside the axes
        ax.annotate(label, (p["speedup"], p["drawn_ratio"]), xytext=(-dx if right_edge else dx, dy),
                    textcoords="offset points", fontsize=10, ha="right" if right_edge else "left")
    ax.text(PAPER_INC_SPEEDUP * 1.07, ylo * 1.5, "paper INC INT8: 1.73x", color="gray", fontsize=9, rotation=90,
            va="bottom")
    folded = next((p for p in points if p["variant"] == FOLDED_BASELINE), None)
    if folded is not None:  # the second baseline: the exact rewrite, what a precision gains beyond it
        ax.axvline(folded["speedup"], color="#1f77b4", ls="-.", lw=1.2)
        ax.text(folded["speedup"] * 1.07, yhi / 1.5, f"folded (exact): {folded['speedup']:.1f}x", color="#1f77b4",
                fontsize=9, rotation=90, va="top")
    ax.text(0.98, 0.02, "faster and within tolerance", transform=ax.transAxes, ha="right", color="#2ca02c",
            fontsize=10)
    ticks = [t for t in SPEEDUP_TICKS if xlo <= t <= xhi]
    ax.set_xticks(ticks, [f"{t:g}x" for t in ticks])
    from matplotlib.ticker import NullFormatter

    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set(xlabel="speed-up over FP32 (largest batch; bars: 95% interval)",
           ylabel="worst paired shift / tolerance")


def _label_offset(point: dict, placed: list[tuple[float, float]]) -> tuple[int, int]:
    """Above right of the point, or below right where an earlier label sits close by (log units)."""
    x, y = math.log10(point["speedup"]), math.log10(point["drawn_ratio"])
    crowded = any(abs(x - px) < 0.25 and abs(y - py) < 0.3 for px, py in placed)
    placed.append((x, y))
    return (6, -16) if crowded else (6, 6)


def _axis_fraction(x: float, lo: float, hi: float) -> float:
    """Position of ``x`` on a log axis from ``lo`` to ``hi``, as a fraction of its width."""
    return (math.log(x) - math.log(lo)) / (math.log(hi) - math.log(lo))


# ------------------------------------------------------------------ all figures of a study


def write_figures(results: dict, samples: dict[str, list[Sample]], directory, progress=print) -> dict:
    """Draw every figure into ``directory``; returns section -> [(file name, caption)] for the report."""
    directory = Path(directory)
    out: dict[str, list[tuple[str, str]]] = {}
    if results["settings"]["speed"]:
        points = {m: tradeoff_data(r["variants"]) for m, r in results["models"].items()}
        save(draw_tradeoff(points, "speed-up vs physics: one point per variant"), directory / "tradeoff.png")
        out["tradeoff"] = [("tradeoff.png", "Speed-up over FP32 against the worst paired shift in tolerance units: "
                                            "green (lower right) is faster and keeps the physics; dotted: the paper's "
                                            "1.73x")]
    for model, model_samples in samples.items():
        edges = results["models"][model]["edges_gev"]
        n = len(model_samples[-1].energy)
        tag = f"model {model}, {n} showers"
        figures = [
            ("longitudinal", draw_profiles(model_samples, edges, "longitudinal", f"longitudinal profile ({tag})"),
             "Longitudinal profile (mean energy per layer) in three energy bins, ratio to FP32 below"),
            ("transverse", draw_profiles(model_samples, edges, "transverse", f"transverse profile x ({tag})"),
             "Transverse profile along x (mean energy per slice, log) in three energy bins, ratio to FP32 below"),
            ("sampling_fraction", draw_sampling_fraction(model_samples, edges, f"sampling fraction ({tag})"),
             "Sampling fraction E_cal/E_p against primary energy (mean per bin, bars: error of the mean)"),
            ("cell_spectrum", draw_spectrum(model_samples, f"cell-energy spectrum ({tag})"),
             "Cell-energy spectrum (cells per shower), ratio to FP32 below"),
            ("moments", draw_moments(model_samples, edges, f"shower moments ({tag})"),
             "First and second moments along x, y, z against primary energy (bin means, bars: error of the mean)"),
        ]
        out[model] = []
        for name, fig, caption in figures:
            file = f"{model}_{name}.png"
            save(fig, directory / file)
            out[model].append((file, f"{caption}; model {model}"))
        progress(f"{model}: figures written")
    return out


# ------------------------------------------------------------------ layer-wise sensitivity (quant.sensitivity)

# (precision, runtime) pairs looked up in quant.sensitivity's cache
SENSITIVITY_SWEEPS = (("int8", "openvino"), ("bf16", "openvino"), ("bf16", "keras"))


def write_sensitivity_figures(models, directory) -> list[tuple] | None:
    """Cached layer-sensitivity sweeps of ``models`` (never measured here), each drawn into ``directory``: a list
    of (label, precision, runtime, sweep or the error reading it, figure file name); None without
    quant.sensitivity."""
    try:
        from quant import sensitivity, sensitivity_report
    except ImportError:
        return None
    from quant.folded import cached_sweep as folded_sweep

    found = []
    for model, find in [(m, f) for m in models for f in (sensitivity.cached_results, folded_sweep)]:
        for precision, runtime in SENSITIVITY_SWEEPS:
            try:
                sweep = find(model, precision, runtime)
            except Exception as exc:  # noqa: BLE001 - an unreadable cache must not take the report down
                found.append((model, precision, runtime, exc, None))
                continue
            if sweep is None:
                continue
            label = sweep.model  # "cern2017" or "cern2017 (folded)"
            name = f"sensitivity_{label.replace(' (folded)', '-folded')}_{precision}_{runtime}.png"
            sensitivity_report.plot(sweep, Path(directory) / name)
            found.append((label, precision, runtime, sweep, name))
    return found
