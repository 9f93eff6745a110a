"""One shard on a worker: build (or load) the variant once per worker process, generate, write atomically.

The variant is kept in :data:`_VARIANTS`, a module-level cache of the worker process keyed by (model, variant,
threads): every later shard on that worker reuses it. The runtime threads are pinned before the first build
(TensorFlow intra/inter-op, OpenVINO ``INFERENCE_NUM_THREADS``: each family's own setter in ``quant.registry``), so
N workers on one machine share its cores instead of each taking them all.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import numpy as np

from gan.machine import usable_cpus
from production.plan import shard_inputs

CALIBRATION_SHOWERS, CALIBRATION_SEED = 64, 0  # as the validation suite builds its variants (settings.toml)
_VARIANTS: dict[tuple, tuple[object, dict]] = {}  # (model, variant, threads) -> (built variant, what threads got)
_RUNTIME = threading.Lock()  # one shard generates at a time per process, on all its runtime threads: a Dask worker
# with nthreads > 1 (e.g. dask-jobqueue cores=8, processes=1) then overlaps one shard's generation with others'
# writing instead of running nthreads x nthreads runtime threads


def default_threads() -> int:
    """This Dask worker's thread count (its ``nthreads``), else the usable CPUs of this process."""
    try:
        from distributed import get_worker

        return max(1, int(get_worker().state.nthreads))
    except (ImportError, ValueError, AttributeError):
        return usable_cpus()


def pin_threads(threads: int, variant: str) -> dict[str, str]:
    """Ask the runtimes ``variant`` uses (its family's, and TensorFlow's, which builds every variant from the Keras
    generator) for ``threads`` threads; runtime -> what it got."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from quant import registry
    from quant.base import read_variant_file

    name = read_variant_file(variant)["variant"] if Path(variant).is_dir() else variant
    family = registry.get(name).family
    got = {}
    for fam in {f.name: f for f in (registry.family("keras"), family)}.values():
        got[fam.name] = fam.set_threads(threads) if fam.set_threads else "no thread control"
    return got


def build_variant(model: str, variant: str):
    """A registered variant built from ``model``'s FP32 generator, or a saved variant folder loaded."""
    from quant import registry

    if Path(variant).is_dir():
        return registry.load(variant)
    from gan.pretrained import load_generator, trained_energy_range
    from quant.calibration import make_calibration

    generator = load_generator(model)
    calibration = make_calibration(CALIBRATION_SHOWERS, CALIBRATION_SEED, trained_energy_range(model))
    return registry.build(variant, generator, calibration, model)  # context: the model's name


def cached_variant(model: str, variant: str, threads: int | None) -> tuple[object, dict, float]:
    """(variant, threads info, seconds spent building it now: 0 when it was cached in this process)."""
    threads = threads or default_threads()
    key = (model, variant, threads)
    if key in _VARIANTS:
        built, info = _VARIANTS[key]
        return built, info, 0.0
    start = time.perf_counter()
    info = pin_threads(threads, variant)
    built = build_variant(model, variant)
    _VARIANTS[key] = (built, info)
    return built, info, time.perf_counter() - start


def shard_showers(task: dict) -> tuple[np.ndarray, np.ndarray, dict]:
    """(ecal (n, 25, 25, 25) GeV, energy (n,) GeV, timing) of one shard, in this process."""
    z, energy = shard_inputs(task["seed"], task["index"], task["n"], task.get("energy_range_gev"),
                             task.get("energies"))
    with _RUNTIME:
        variant, info, load_s = cached_variant(task["model"], task["variant"], task.get("threads"))
        start = time.perf_counter()
        ecal = np.asarray(variant.generate(z, energy), dtype=np.float32)
        generate_s = time.perf_counter() - start
    return ecal, energy, {"load_s": load_s, "generate_s": generate_s, "threads": info,
                          "op_report": variant.op_report().to_dict(), "variant_name": variant.name}


def produce_shard(task: dict) -> dict:
    """Generate shard ``task['index']`` and write it to ``task['path']`` atomically (temporary + rename); returns
    its sha256, count and timings. Running it twice writes the same content to the same name: never a duplicate."""
    from gan.data import ShowerWriter
    from gan.pretrained import sha256sum

    start = time.perf_counter()
    ecal, energy, timing = shard_showers(task)
    write_start = time.perf_counter()
    attrs = {"shard": task["index"], "seed": task["seed"], "model": task["model"], "variant": task["variant"]}
    with ShowerWriter(task["path"], generator=f"calogan produce: {timing['variant_name']}", attrs=attrs) as writer:
        writer.append(ecal, energy)
    digest = sha256sum(task["path"])
    now = time.perf_counter()
    return {"index": task["index"], "file": Path(task["path"]).name, "n": len(energy), "sha256": digest,
            "load_s": timing["load_s"], "generate_s": timing["generate_s"], "write_s": now - write_start,
            "task_s": now - start, "pid": os.getpid(), "threads": timing["threads"],
            "op_report": timing["op_report"]}
