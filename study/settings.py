"""How a study draws its showers (``study/settings.toml``, shipped with the package): models, seeds, sample sizes,
energy bins; the Geant4 reference events; the session that builds each variant once.

Read by the validation suite, the report, ``calogan check`` and production's self-check. Every variant of a model
sees exactly the inputs (latent vectors z and primary energies in GeV) its FP32 model sees (:mod:`study.inputs`),
so shifts are paired event by event.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

SETTINGS_FILE = Path(__file__).with_name("settings.toml")


@dataclass(frozen=True)
class Settings:
    """What ``settings.toml`` says, resolved for the default or the ``--full`` run."""

    models: tuple[str, ...]
    geant4_models: tuple[str, ...]
    seed: int
    calibration_showers: int
    calibration_seed: int
    paired_showers: tuple[int, ...]  # the sequential stages: more showers only while a row is "cannot tell"
    geant4_showers: int | None  # None: all events of the reference
    held_out_tail: int
    energy_edges_gev: dict[str, tuple[float, ...]]
    full: bool = False

    def edges(self, model: str) -> np.ndarray:
        """Primary-energy bin edges (GeV) of ``model``'s checks."""
        return np.array(self.energy_edges_gev[model], dtype=np.float64)


def load_settings(full: bool = False, path=SETTINGS_FILE) -> Settings:
    data = tomllib.loads(Path(path).read_text())
    paired, geant4 = data["paired"], data["geant4"]
    return Settings(
        models=tuple(data["models"]), geant4_models=tuple(data["geant4_models"]), seed=data["seed"],
        calibration_showers=data["calibration_showers"], calibration_seed=data["calibration_seed"],
        paired_showers=tuple(paired["showers_full" if full else "showers"]),
        geant4_showers=None if full else geant4["showers"], held_out_tail=geant4["held_out_tail"],
        energy_edges_gev={k: tuple(v) for k, v in data["energy_edges_gev"].items()}, full=full)


def read_reference(settings: Settings, shared_file=None):
    """Held-out Geant4 showers (gan.data.Showers): the embedded sample, or the shared file's tail with --full."""
    from gan.data import count_showers, read_showers
    from gan.pretrained import DEFAULT_REFERENCE

    if settings.full and shared_file is not None:
        start = count_showers(shared_file) - settings.held_out_tail
        return read_showers(shared_file, start=start)
    return read_showers(DEFAULT_REFERENCE, max_events=settings.geant4_showers)


def new_session(settings: Settings):
    """The suite's :class:`study.session.Session` (each model and (model, variant) built once, showers kept per
    inputs), calibrated as ``settings`` say."""
    from study.session import Session

    return Session(settings.calibration_showers, settings.calibration_seed)
