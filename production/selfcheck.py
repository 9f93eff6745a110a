"""The production validates itself: a sample of its own output through the verdict package's checks.

- paired: the first showers of the production (shard order) against the model's FP32 generator on the same z and
  energies (regenerated from the shard seeds), decided on the requirement table; sequential stages as the
  validation suite's (``study/settings.toml`` [paired] showers), capped at the production's size;
- Geant4-side (the settings' ``geant4_models``: ``default``): for each of the first [geant4] showers events of
  the embedded Geant4 reference sample, the production shower nearest in primary energy (each used once, from the
  first :data:`POOL` showers); their distances to Geant4 against FP32's on the same z and energies, judged on the
  Geant4-vs-Geant4 null thresholds at that reference size. A production whose energies do not reach the
  reference's (more than :data:`MAX_ENERGY_GAP_GEV` apart) is "not judged" on this side, never a pass.
"""

from __future__ import annotations

import numpy as np

from production.plan import Plan, plan_inputs
from study.settings import load_settings

POOL = 2000
MAX_ENERGY_GAP_GEV = 2.0
NOT_JUDGED = "not judged"


def _production_sample(out, plan: Plan, n: int):
    """The first ``n`` showers of the production with their z and energies (from the shard seeds)."""
    from gan.data import read_showers

    ecal, z, energy, have = [], [], [], 0
    for i in range(plan.n_shards):
        if have >= n:
            break
        k = min(plan.shard_count(i), n - have)
        shard = read_showers(f"{out}/{plan.shard_file(i)}", max_events=k)
        zi, ei = plan_inputs(plan, i)
        if not np.array_equal(shard.energy, ei[:k]):
            raise ValueError(f"shard {i}: energies differ from its seed's (not this production's shard)")
        ecal.append(shard.ecal), z.append(zi[:k]), energy.append(ei[:k])
        have += k
    return np.concatenate(ecal), np.concatenate(z), np.concatenate(energy)


def _fp32(model: str):
    from gan.pretrained import load_generator
    from quant import registry

    return registry.build("fp32", load_generator(model), None, model)


def self_validate(out, plan: Plan, model_name: str | None, log=print) -> dict:
    """Run the checks on the production in ``out``; returns the manifest's ``validation`` entry."""
    from verdict import requirements
    from verdict.checks import FAIL, OK, UNRESOLVED, paired_sequential

    settings = load_settings()  # the validation suite's sample sizes and models (study/settings.toml)
    paired_sizes, geant4_models = settings.paired_showers, settings.geant4_models
    checks = []
    fp32 = _fp32(plan.model)
    model = model_name or plan.model
    try:
        reqs = requirements.load(model)
    except requirements.RequirementError as exc:
        reqs = None
        checks.append({"check": "paired", "status": NOT_JUDGED, "showers": 0, "report": str(exc)})
    sample_n = min(plan.n, max(paired_sizes) if model not in geant4_models else max(POOL, *paired_sizes))
    log(f"self-validation: reading {sample_n} showers, FP32 on the same inputs")
    ecal, z, energy = _production_sample(out, plan, sample_n)
    fp32_cache: dict[int, np.ndarray] = {}

    def fp32_showers(index: np.ndarray) -> np.ndarray:
        missing = [int(i) for i in index if int(i) not in fp32_cache]
        if missing:
            for i, shower in zip(missing, fp32.generate(z[missing], energy[missing]), strict=True):
                fp32_cache[i] = shower
        return np.stack([fp32_cache[int(i)] for i in index])

    if reqs is not None:
        sizes = sorted({min(s, plan.n) for s in paired_sizes})

        used = []

        def pair(n):
            used.append(n)
            index = np.arange(n)
            return fp32_showers(index), ecal[:n], energy[:n]
        v = paired_sequential(pair, sizes, reqs, f"production {plan.variant} ({model}): paired vs FP32")
        checks.append({"check": "paired", "status": v.status, "showers": used[-1],
                       "report": v.report()})
    if model in geant4_models:
        edges = reqs.edges if reqs else settings.edges(model)
        checks.append(_geant4_check(ecal, energy, fp32_showers, edges, plan, model, settings.geant4_showers))
    order = [OK, NOT_JUDGED, UNRESOLVED, FAIL]
    worst = max((c["status"] for c in checks), key=order.index, default=NOT_JUDGED)
    verdict = {OK: "keeps the physics", FAIL: "breaks the physics", UNRESOLVED: "cannot tell (not a pass)",
               NOT_JUDGED: "not judged (not a pass)"}[worst]
    if worst == OK and any(c["status"] == NOT_JUDGED for c in checks):
        verdict = "keeps the physics in the checks that could judge it"
    return {"verdict": verdict, "status": worst, "checks": checks}


def _geant4_check(ecal, energy, fp32_showers, edges, plan: Plan, model: str, events: int | None) -> dict:
    from gan.data import read_showers
    from gan.pretrained import DEFAULT_REFERENCE
    from verdict import geant4_null
    from verdict.checks import check_geant4, geant4_distances

    ref = read_showers(DEFAULT_REFERENCE, max_events=events)
    free = np.ones(len(energy), bool)
    picked = []
    for e in ref.energy:  # nearest unused production shower in primary energy
        if not free.any():
            break
        gap = np.where(free, np.abs(energy - e), np.inf)
        j = int(np.argmin(gap))
        if gap[j] > MAX_ENERGY_GAP_GEV:
            break
        picked.append(j)
        free[j] = False
    if len(picked) < len(ref):
        return {"check": "geant4", "status": NOT_JUDGED, "showers": len(picked),
                "report": f"the production's first {len(energy)} showers do not match the {len(ref)} Geant4 reference "
                          f"events within {MAX_ENERGY_GAP_GEV:g} GeV in primary energy (energies "
                          f"{energy.min():.4g}-{energy.max():.4g} GeV; reference "
                          f"{ref.energy.min():.4g}-{ref.energy.max():.4g} GeV)"}
    index = np.array(picked)
    edges = np.asarray(edges)
    d_fp32 = geant4_distances(ref.ecal, ref.energy, fp32_showers(index), energy[index], edges)
    d_var = geant4_distances(ref.ecal, ref.energy, ecal[index], energy[index], edges)
    try:
        thresholds = geant4_null.thresholds(geant4_null.load(), len(ref))
    except geant4_null.NullTableError as exc:
        return {"check": "geant4", "status": NOT_JUDGED, "showers": len(index), "report": str(exc)}
    v = check_geant4(d_fp32, d_var, thresholds,
                     f"production {plan.variant} ({model}): distance to Geant4 vs FP32's ({len(ref)} events, "
                     f"energies matched within {np.abs(energy[index] - ref.energy).max():.2g} GeV)")
    return {"check": "geant4", "status": v.status, "showers": len(index), "report": v.report()}
