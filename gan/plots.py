"""Quick-look figure of generated showers against Geant4 (matplotlib, no TensorFlow)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from gan import physics


def _sampling_fraction_panel(ax, showers, label, style, edges=physics.DEFAULT_ENERGY_EDGES_GEV):
    mean, std, _ = physics.binned_mean_std(physics.sampling_fraction(showers.ecal, showers.energy),
                                           showers.energy, edges)
    centres = 0.5 * (edges[1:] + edges[:-1])
    ax.errorbar(centres, 100 * mean, yerr=100 * std, xerr=0.5 * np.diff(edges), fmt=style, label=label, capsize=2)
    ax.set(xlabel="primary energy [GeV]", ylabel="E_cal / E_p [%] (bars: spread)")


def _profile_panel(ax, profiles, xlabel, log=False):
    for label, profile, style in profiles:
        mean = profile.mean(axis=0)
        ax.step(np.arange(len(mean)), mean / max(mean.sum(), 1e-30), where="mid", label=label, ls=style)
    ax.set(xlabel=xlabel, ylabel="fraction of shower energy", yscale="log" if log else "linear")


def plot_comparison(reference, candidate, path, label="GAN", edges=physics.DEFAULT_ENERGY_EDGES_GEV) -> Path:
    """A 2x2 figure: longitudinal and transverse profiles, sampling fraction vs energy, cell spectrum."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 2, figsize=(11, 8), layout="constrained")
    pairs = [("Geant4", reference, "-"), (label, candidate, "--")]
    _profile_panel(axes[0, 0], [(n, physics.longitudinal_profile(s.ecal), st) for n, s, st in pairs], "layer (z)")
    _profile_panel(axes[0, 1], [(n, physics.transverse_profile_x(s.ecal), st) for n, s, st in pairs],
                   "cell (x)", log=True)
    for (name, showers, _), style in zip(pairs, ("ko", "rs"), strict=False):
        _sampling_fraction_panel(axes[1, 0], showers, name, style, edges)
    for name, showers, style in pairs:
        counts, edges = physics.cell_energy_spectrum(showers.ecal)
        axes[1, 1].stairs(counts / max(len(showers.ecal), 1), edges, label=name, ls=style)
    axes[1, 1].set(xscale="log", yscale="log", xlabel="cell energy [GeV]", ylabel="cells per shower")
    for ax in axes.flat:
        ax.legend(fontsize="small")
    fig.suptitle(f"{label} vs Geant4: {len(candidate.ecal)} / {len(reference.ecal)} electron showers")
    path = Path(path)
    fig.savefig(path, dpi=110, format="png")
    plt.close(fig)
    return path
