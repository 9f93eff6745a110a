"""What a variant's build knows about the model besides its weights: :class:`BuildContext`.

Every :class:`~quant.registry.VariantSpec` build receives ``(generator, calibration, context)``. The context names
the model (``'default'``, ``'cern2017'``, or None for a user's weight file), the energy range in GeV it was
trained on (the tuners' physics objectives draw their inputs there), and the paired physics requirements for
that model (strictest energy bin of the verdict package's requirement table; the strictest of the whole table
for a weight file of no named model). The builds that tune on physics (``inc-int8-tuned``,
``openvino-int8-tuned``, ``auto-mixed``, ``folded-auto-mixed``) take their tolerances from here: nothing
identifies a model from its weights.

``quick=True`` is the contract test's cheap build: tuners score on few showers and the layer-wise sweep of
``auto-mixed`` covers one layer, without the sweep cache. A quick build has the interface of the real one, not
its physics: never validate or report one.

    ctx = BuildContext.for_model("cern2017")          # named model: its range and requirements
    ctx = BuildContext.for_model("path/to/mine.h5")   # a weight file: default's range, strictest requirements
    registry.build("auto-mixed", generator, calibration, ctx)   # or just the model name: registry converts
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Mapping

QUICK_SHOWERS = 32  # seeded showers of a quick build's physics objective (4 energy bins of 8)


@dataclass(frozen=True)
class BuildContext:
    """The model a variant is built from: name (None: a user's weight file), trained energy range (GeV) and the
    paired requirements its physics objective uses."""

    model: str | None
    energy_range_gev: tuple[float, float]
    tolerances: Mapping[str, float] = field(repr=False)
    tolerance_source: str = ""  # e.g. "requirements: the requirement table's 'cern2017' ones (strictest bin)"
    quick: bool = False  # cheap build for the contract test (few showers, one-layer sweep, no cache)

    @classmethod
    def for_model(cls, model: str | None = None, *, quick: bool = False) -> BuildContext:
        """The context of a named model (gan.pretrained.MODEL_NAMES) or of a weight file (``model`` a path, or
        None): the named model's range and requirements; else the default model's range and the strictest
        requirement of each observable over the table (a weight file is assumed trained like ``default``)."""
        from gan.pretrained import MODEL_NAMES, trained_energy_range
        from quant.objective import model_requirements, strictest_tolerances

        name = str(model) if model is not None else None
        if name in MODEL_NAMES:
            return cls(name, trained_energy_range(name), model_requirements(name),
                       f"requirements: the requirement table's '{name}' ones (strictest bin)", quick)
        return cls(None, trained_energy_range("default"), strictest_tolerances(),
                   "requirements: strictest of the requirement table (weights of no named model)", quick)

    def quickly(self) -> BuildContext:
        return replace(self, quick=True)

    @property
    def label(self) -> str:
        """The model's name, or 'weight file'."""
        return self.model or "weight file"


def as_context(context) -> BuildContext:
    """A BuildContext from a BuildContext, a model name / weight-file path, or None (a weight file)."""
    return context if isinstance(context, BuildContext) else BuildContext.for_model(context)
