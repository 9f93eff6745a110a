"""The showers the suite compares: seeded inputs, Geant4 reference events, each (model, variant) built once.

Every variant of a model sees exactly the inputs (latent vectors z and primary energies in GeV) its FP32 model
sees, so shifts are paired event by event. Sizes, seeds and energy bins come from ``validation/settings.toml``.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

SETTINGS_FILE = Path(__file__).with_name("settings.toml")
REFERENCE_VARIANT = "fp32"


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


@dataclass(frozen=True)
class Inputs:
    """Generator inputs shared by FP32 and every variant: z (N, 200) and energy (N,) in GeV."""

    name: str
    z: np.ndarray
    energy: np.ndarray

    def __len__(self) -> int:
        return len(self.energy)


def uniform_inputs(name: str, n: int, energy_range, seed: int) -> Inputs:
    """``n`` latent vectors and energies uniform in ``energy_range`` (GeV), reproducible for ``seed``."""
    from gan.model import LATENT_SIZE

    z_rng, e_rng = (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(2))
    z = z_rng.standard_normal((n, LATENT_SIZE), dtype=np.float32)
    return Inputs(name, z, e_rng.uniform(*energy_range, n).astype(np.float32))


def inputs_at(name: str, energy, seed: int) -> Inputs:
    """Seeded latent vectors for given primary energies (GeV), e.g. those of Geant4 reference events."""
    from gan.model import sample_latent

    energy = np.asarray(energy, dtype=np.float32)
    return Inputs(name, sample_latent(len(energy), seed=seed), energy)


def read_reference(settings: Settings, shared_file=None):
    """Held-out Geant4 showers (gan.data.Showers): the embedded sample, or the shared file's tail with --full."""
    from gan.data import count_showers, read_showers
    from gan.pretrained import DEFAULT_REFERENCE

    if settings.full and shared_file is not None:
        start = count_showers(shared_file) - settings.held_out_tail
        return read_showers(shared_file, start=start)
    return read_showers(DEFAULT_REFERENCE, max_events=settings.geant4_showers)


class ShowerCache:
    """Builds each model and (model, variant) once and keeps the showers each generated for each Inputs."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self._generators, self._variants, self._showers = {}, {}, {}

    def generator(self, model: str):
        """The FP32 Keras generator of ``model`` ('default', 'cern2017' or a weight-file path)."""
        if model not in self._generators:
            from gan.pretrained import load_generator

            self._generators[model] = load_generator(model)
        return self._generators[model]

    def calibration(self, model: str):
        from gan.pretrained import trained_energy_range
        from quant.calibration import make_calibration

        s = self.settings
        return make_calibration(s.calibration_showers, s.calibration_seed, trained_energy_range(model))

    def variant(self, model: str, name: str):
        """The built variant ``name`` of ``model`` (``fp32``: the FP32 reference itself)."""
        key = (model, name)
        if key not in self._variants:
            from quant import registry

            self._variants[key] = registry.build(name, self.generator(model), self.calibration(model))
        return self._variants[key]

    def showers(self, model: str, name: str, inputs: Inputs, n: int | None = None) -> np.ndarray:
        """Showers (n, 25, 25, 25) GeV of variant ``name`` of ``model`` for the first n (default: all) ``inputs``;
        each shower is generated once, a larger n generates only the missing ones."""
        key, n = (model, name, inputs.name), len(inputs) if n is None else min(n, len(inputs))
        have = self._showers.get(key, np.empty((0, 25, 25, 25), np.float32))
        if len(have) < n:
            more = self.variant(model, name).generate(inputs.z[len(have):n], inputs.energy[len(have):n])
            have = self._showers[key] = np.concatenate([have, np.asarray(more)])
        return have[:n]
