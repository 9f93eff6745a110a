"""A generator against the held-out Geant4 events (the target table), and the export of a trained default model.

``python -m gan evaluate WEIGHTS`` prints, per 20 GeV bin over 10-250 GeV, the GAN / Geant4 comparison of
:mod:`gan.agreement` on the last 1,120 events of the first Geant4 file (never trained on) and whether the
target is met. ``python -m gan export-default RUN_DIR`` copies a run's best EMA generator to
``gan/default/generator.h5`` and rewrites the model card's target table and figure from the same evaluation.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from gan import agreement, data
from gan.outputs import atomic_path, write_text_atomic
from gan.pretrained import DEFAULT_WEIGHTS
from gan.weights import WeightFileError

CARD = DEFAULT_WEIGHTS.parent / "MODEL_CARD.md"
FIGURE = DEFAULT_WEIGHTS.parent / "MODEL_CARD_physics.png"
BEGIN, END = "<!-- target-table:begin (python -m gan export-default) -->", "<!-- target-table:end -->"


def heldout_events(g4_file, holdout: int) -> data.Showers:
    """The last ``holdout`` events of ``g4_file`` (GeV)."""
    n = data.count_showers(g4_file)
    return data.read_showers(g4_file, start=max(n - holdout, 0))


def evaluate_weights(weights, g4_file, holdout: int, seed: int = 1, per_event: int = 1) -> dict:
    """rows, verdict, the Geant4 and GAN showers, and the printable text for a weight file (or model name);
    ``per_event`` GAN showers at each held-out event's energy (more: less GAN-side sampling noise)."""
    from gan.model import generate, sample_latent
    from gan.pretrained import load_generator

    generator = load_generator(str(weights))
    ref = heldout_events(g4_file, holdout)
    energy = np.tile(ref.energy, per_event)
    fake = data.Showers(generate(generator, sample_latent(len(energy), seed), energy), energy)
    rows = agreement.compare_bins(fake.ecal, fake.energy, ref.ecal, ref.energy)
    result = agreement.verdict(rows)
    first = int(data.count_showers(g4_file) - len(ref))
    head = (f"{weights} vs Geant4: {len(ref)} held-out events of {Path(g4_file).name} (events {first}-"
            f"{first + len(ref) - 1}, {ref.energy.min():.0f}-{ref.energy.max():.0f} GeV), "
            f"{'one GAN shower' if per_event == 1 else f'{per_event} GAN showers'} per event at its energy "
            f"(seed {seed}); ratios are GAN / Geant4")
    return {"rows": rows, "result": result, "reference": ref, "candidate": fake,
            "text": head + "\n\n" + agreement.format_table(rows, result)}


def card_with_table(card_text: str, table_text: str, source: str) -> str:
    """The model card with the block between the target-table markers replaced."""
    if BEGIN not in card_text or END not in card_text:
        raise ValueError(f"{CARD}: the target-table markers ({BEGIN} ... {END}) are missing")
    head, rest = card_text.split(BEGIN, 1)
    tail = rest.split(END, 1)[1]
    block = f"{BEGIN}\n{source}\n\n```\n{table_text}\n```\n{END}"
    return head + block + tail


def export_default(run_dir: Path, g4_file, holdout: int, seed: int = 1) -> None:
    """Best EMA generator of ``run_dir`` -> gan/default/generator.h5; model card table and figure regenerated."""
    from gan.model import build_generator
    from gan.plots import plot_comparison
    from gan.train import BEST_WEIGHTS
    from gan.weights import load_weights, save_weights

    source = run_dir / BEST_WEIGHTS
    if not source.is_file():
        raise WeightFileError(f"{source}: not found (a run writes it at its first evaluation)")
    evaluation = evaluate_weights(source, g4_file, holdout, seed)
    generator = build_generator()
    meta = load_weights(generator, source)
    when = time.strftime("%Y-%m-%d")
    card = card_with_table(CARD.read_text(), evaluation["text"],
                           f"Measured {when} by `python -m gan export-default {run_dir}` (EMA weights of "
                           f"iteration {meta.get('iteration')}, epoch {meta.get('epoch')}):")
    with atomic_path(FIGURE) as figure_tmp:
        plot_comparison(evaluation["reference"], evaluation["candidate"], figure_tmp, label="default")
        save_weights(generator, DEFAULT_WEIGHTS, meta | {"exported_from": str(source)})
    write_text_atomic(CARD, card)
    print(evaluation["text"])
    print(f"\n{source} -> {DEFAULT_WEIGHTS}; table -> {CARD}; figure -> {FIGURE}\n"
          "next: update the card's training text (data, epochs, wall time) and re-run `pytest validation` (its "
          "requirements and Geant4 thresholds do not depend on the model; known_failures.toml may)")
