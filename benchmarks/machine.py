"""The machine a benchmark ran on, as pytest-benchmark's machine_info records it (the facts: :mod:`gan.machine`).

Speed-ups measured with different instruction sets (AMX or not, AVX512-VNNI or not) are different experiments:
:func:`isa_mismatch` says why two runs must not be compared. Threads are requested once per session
(``--threads``, ``$CALOGAN_THREADS``, default: the CPUs this process may use: ``gan.machine.requested_threads``)
and :func:`apply_threads` reports what each runtime really got.
"""

from __future__ import annotations

import json
import os

from gan import machine as host

ISA_ENV = ("ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA")  # caps the ISA oneDNN uses: part of the ISA
THREAD_ENV = ("CALOGAN_THREADS", "OMP_NUM_THREADS", "KMP_AFFINITY", "KMP_BLOCKTIME", "TF_NUM_INTRAOP_THREADS",
              "TF_NUM_INTEROP_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
STACK_ENV = ("TF_ENABLE_ONEDNN_OPTS", "TF_ENABLE_ONEDNN_OPTS_FOR_INFERENCE")
KEY = "calogan"  # our part of pytest-benchmark's machine_info
VOLATILE_CPU_KEYS = ("hz_actual", "hz_actual_friendly")  # py-cpuinfo's current clock: differs on every run


def isa_signature(flags=None, environ=None) -> dict:
    """The ISA flags present (subset of ``gan.machine.ISA_FLAGS``) and oneDNN's ISA cap, if set."""
    environ = os.environ if environ is None else environ
    return {"flags": sorted(host.isa_flags(flags)),
            "onednn_max_cpu_isa": next((environ[k] for k in ISA_ENV if environ.get(k)), None)}


def isa_mismatch(current: dict, saved: dict, saved_name: str = "the saved run") -> str | None:
    """Why a run with machine_info ``saved`` must not be compared with ``current`` (None: same ISA)."""
    here, there = current.get(KEY, {}).get("isa"), saved.get(KEY, {}).get("isa")
    if there is None:
        return (f"{saved_name} has no ISA record (not made by this suite's benchmarks): cannot tell whether its "
                "CPU had the same instruction set")
    if here == there:
        return None
    only_here = sorted(set(here["flags"]) - set(there["flags"]))
    only_there = sorted(set(there["flags"]) - set(here["flags"]))
    parts = [f"only this CPU has {', '.join(only_here)}" if only_here else "",
             f"only the saved run's CPU had {', '.join(only_there)}" if only_there else ""]
    if here["onednn_max_cpu_isa"] != there["onednn_max_cpu_isa"]:
        parts.append(f"ONEDNN_MAX_CPU_ISA {there['onednn_max_cpu_isa']} then, {here['onednn_max_cpu_isa']} now")
    return f"{saved_name} ran with a different instruction set ({'; '.join(p for p in parts if p)})"


def package_versions() -> dict[str, str | None]:
    """Installed versions (by import name) of the base packages and of every variant family's runtime."""
    from quant import registry

    return host.package_versions(host.BASE_PACKAGES + registry.runtime_packages())


def machine_info(threads: int, environ=None) -> dict:
    """Our part of pytest-benchmark's machine_info (deterministic for a machine, so runs compare cleanly)."""
    environ = os.environ if environ is None else environ
    return {"cpu_model": host.cpu_model(), "isa": isa_signature(environ=environ), "packages": dict(package_versions()),
            "onednn": {k: environ.get(k) for k in STACK_ENV}, "threads_requested": threads,
            "thread_env": {k: environ[k] for k in THREAD_ENV if k in environ}}


def update_machine_info(info: dict, threads: int) -> None:
    """Add :func:`machine_info` under :data:`KEY` and drop py-cpuinfo's per-run clock reading."""
    for key in VOLATILE_CPU_KEYS:
        info.get("cpu", {}).pop(key, None)
    info[KEY] = machine_info(threads)


def differing_keys(current: dict, saved: dict, prefix: str = "") -> list[str]:
    """Dotted keys whose values differ between two machine_info dicts (compared as JSON: tuples are lists)."""
    current, saved = json.loads(json.dumps(current, default=str)), json.loads(json.dumps(saved, default=str))
    keys = []
    for key in sorted(set(current) | set(saved)):
        a, b = current.get(key), saved.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            keys += differing_keys(a, b, f"{prefix}{key}.")
        elif a != b:
            keys.append(f"{prefix}{key}")
    return keys


def apply_threads(threads: int) -> dict[str, str]:
    """Ask every variant family's runtime for ``threads`` threads (:func:`quant.registry.set_threads`); say per
    family what it got (honestly: e.g. TensorFlow initialized before the benchmarks keeps its own)."""
    from quant import registry

    return registry.set_threads(threads)
