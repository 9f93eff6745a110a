"""The machine a benchmark ran on: CPU model, instruction-set flags, package versions, threads.

Speed-ups measured with different instruction sets (AMX or not, AVX512-VNNI or not) are different experiments:
:func:`isa_mismatch` says why two runs must not be compared. Threads are requested once per session
(``--threads``, ``$CALOGAN_THREADS``, default: the CPUs this process may use) and :func:`apply_threads` reports
what each runtime really got.
"""

from __future__ import annotations

import functools
import importlib.metadata
import json
import os

# instruction-set features that change which int8/bf16 kernels oneDNN and OpenVINO pick
ISA_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "avx512_fp16", "amx_tile", "amx_int8", "amx_bf16",
             "amx_fp16")
ISA_ENV = ("ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA")  # caps the ISA oneDNN uses: part of the ISA
THREAD_ENV = ("CALOGAN_THREADS", "OMP_NUM_THREADS", "KMP_AFFINITY", "KMP_BLOCKTIME", "TF_NUM_INTRAOP_THREADS",
              "TF_NUM_INTEROP_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
STACK_ENV = ("TF_ENABLE_ONEDNN_OPTS", "TF_ENABLE_ONEDNN_OPTS_FOR_INFERENCE")
PACKAGES = ("tensorflow", "keras", "openvino", "nncf", "neural_compressor", "intel_extension_for_tensorflow",
            "ai_edge_litert", "numpy")  # import names
THREADS_ENV_VAR = "CALOGAN_THREADS"
KEY = "calogan"  # our part of pytest-benchmark's machine_info
VOLATILE_CPU_KEYS = ("hz_actual", "hz_actual_friendly")  # py-cpuinfo's current clock: differs on every run


def isa_signature(flags=None, environ=None) -> dict:
    """The ISA flags present (subset of :data:`ISA_FLAGS`) and oneDNN's ISA cap, if set."""
    from quant.cpu import cpu_flags

    flags = cpu_flags() if flags is None else frozenset(flags)
    environ = os.environ if environ is None else environ
    return {"flags": sorted(set(ISA_FLAGS) & flags),
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


def requested_threads(option: int | None = None, environ=None) -> int:
    """--threads, else $CALOGAN_THREADS, else the number of CPUs this process may run on."""
    environ = os.environ if environ is None else environ
    if option is not None:
        value, where = option, "--threads"
    elif environ.get(THREADS_ENV_VAR):
        value, where = environ[THREADS_ENV_VAR], f"${THREADS_ENV_VAR}"
    else:
        return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    try:
        threads = int(value)
    except ValueError:
        raise ValueError(f"{where} must be a whole number of threads, got '{value}'") from None
    if threads < 1:
        raise ValueError(f"{where} must be >= 1, got {threads}")
    return threads


@functools.cache
def package_versions() -> dict[str, str | None]:
    """Installed versions of :data:`PACKAGES` by import name (e.g. tensorflow -> the tensorflow-cpu wheel)."""
    providers = importlib.metadata.packages_distributions()  # one scan of the environment (slow) for all
    versions = {}
    for name in PACKAGES:
        versions[name] = None
        for dist in providers.get(name, [name]):
            try:
                versions[name] = importlib.metadata.version(dist)
                break
            except importlib.metadata.PackageNotFoundError:
                continue
    return versions


def machine_info(threads: int, environ=None) -> dict:
    """Our part of pytest-benchmark's machine_info (deterministic for a machine, so runs compare cleanly)."""
    from quant.cpu import cpu_model

    environ = os.environ if environ is None else environ
    return {"cpu_model": cpu_model(), "isa": isa_signature(environ=environ), "packages": dict(package_versions()),
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
    """Ask TensorFlow and OpenVINO for ``threads`` threads; say per runtime what it got (honestly)."""
    got = {}
    import tensorflow as tf

    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
    except RuntimeError:  # TF's runtime already started in this process (another suite ran first)
        pass
    intra, inter = (tf.config.threading.get_intra_op_parallelism_threads(),
                    tf.config.threading.get_inter_op_parallelism_threads())
    got["tensorflow"] = (f"intra-op {intra}, inter-op {inter}" if intra == threads == inter else
                         f"intra-op {intra or 'default'}, inter-op {inter or 'default'}: NOT the requested "
                         f"{threads} (TensorFlow was initialized before the benchmarks)")
    got["openvino"] = _openvino_threads(threads)
    got["tflite"] = "runtime default (the TFLite variants do not set num_threads)"
    return got


def _openvino_threads(threads: int) -> str:
    try:
        from quant import openvino as ov_variants

        core = ov_variants._core()  # the Core every OpenVINO variant compiles with
        core.set_property("CPU", {"INFERENCE_NUM_THREADS": threads})
        return f"INFERENCE_NUM_THREADS {core.get_property('CPU', 'INFERENCE_NUM_THREADS')}"
    except ImportError:
        return "not installed"
    except Exception as exc:  # an OpenVINO without this property: say so rather than fail the run
        return f"not set ({type(exc).__name__}: {exc})"
