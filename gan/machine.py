"""Facts about the machine a number was measured on, and the one rule that says whether a scope holds here.

CPU instruction-set flags (Linux ``/proc/cpuinfo``), the CPU class that decides which int8/bf16 kernels oneDNN and
OpenVINO pick, the thread count a run asks for, installed package versions by import name, and :class:`Scope`:
where a measured number (a known physics failure, a speed-up floor or target) holds. Imports nothing above the
standard library and ``packaging``, so every layer can read it (the bottom of the stack: no TensorFlow).
"""

from __future__ import annotations

import functools
import importlib.metadata
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from packaging.specifiers import SpecifierSet
from packaging.version import Version

# instruction-set features that change which int8/bf16 kernels oneDNN and OpenVINO pick
ISA_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "avx512_fp16", "amx_tile", "amx_int8", "amx_bf16",
             "amx_fp16")
INT8_FLAGS = ("avx512_vnni", "amx_int8")
BF16_FLAGS = ("avx512_bf16", "amx_bf16")
AMX_BF16 = ("amx_bf16",)  # bf16 convolutions on AMX tiles (where the TF 2.21 conv1 bug shows)
# CPU classes by the instruction sets that decide which int8/bf16 kernels run; the first whose flags are all
# present is the machine's class
CPU_CLASSES = {
    "amx": ("amx_tile", "amx_int8", "amx_bf16"),  # Xeon Sapphire Rapids and later
    "avx512-bf16": ("avx512f", "avx512_bf16"),  # e.g. AMD Zen 4/5, Cooper Lake: native bf16 dot products, no AMX
    "avx512": ("avx512f",),  # Skylake-SP to Ice Lake
    "avx2": ("avx2",),
}
NO_CLASS = "other"
# import names whose versions every record of a run states; callers add their variants' runtime packages
BASE_PACKAGES = ("numpy", "scipy", "h5py", "tensorflow", "keras")
THREADS_ENV_VAR = "CALOGAN_THREADS"

VersionOf = Callable[[str], "str | None"]


def _cpuinfo_field(name: str) -> str | None:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith(name):
            return line.split(":", 1)[1].strip()
    return None


@functools.cache
def cpu_flags() -> frozenset[str]:
    """The flags of the first processor in /proc/cpuinfo (empty where it cannot be read)."""
    return frozenset((_cpuinfo_field("flags") or "").split())


def cpu_model() -> str:
    return _cpuinfo_field("model name") or "unknown"


def isa_flags(flags: Iterable[str] | None = None) -> list[str]:
    """The flags of :data:`ISA_FLAGS` present (here, or in ``flags``), in that order."""
    present = cpu_flags() if flags is None else set(flags)
    return [f for f in ISA_FLAGS if f in present]


def has_any(flags: Iterable[str]) -> bool:
    return bool(cpu_flags() & set(flags))


def cpu_class(flags: Iterable[str] | None = None) -> str:
    """The CPU class (:data:`CPU_CLASSES`) of this machine or of one with ``flags``, else 'other'."""
    present = cpu_flags() if flags is None else set(flags)
    return next((name for name, needed in CPU_CLASSES.items() if set(needed) <= present), NO_CLASS)


def usable_cpus() -> int:
    """CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def requested_threads(option: int | None = None, environ: Mapping[str, str] | None = None) -> int:
    """--threads, else $CALOGAN_THREADS, else the number of CPUs this process may run on."""
    environ = os.environ if environ is None else environ
    if option is not None:
        value, where = option, "--threads"
    elif environ.get(THREADS_ENV_VAR):
        value, where = environ[THREADS_ENV_VAR], f"${THREADS_ENV_VAR}"
    else:
        return usable_cpus()
    try:
        threads = int(value)
    except ValueError:
        raise ValueError(f"{where} must be a whole number of threads, got '{value}'") from None
    if threads < 1:
        raise ValueError(f"{where} must be >= 1, got {threads}")
    return threads


@functools.cache
def _providers() -> Mapping[str, list[str]]:
    return importlib.metadata.packages_distributions()  # one scan of the environment (slow) for all look-ups


@functools.cache
def package_version(import_name: str) -> str | None:
    """Installed version of the distribution providing ``import_name`` (e.g. tensorflow -> tensorflow-cpu)."""
    for dist in _providers().get(import_name, [import_name]):
        try:
            return importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            continue
    return None


def package_versions(names: Iterable[str] = BASE_PACKAGES) -> dict[str, str | None]:
    """Installed versions by import name, in the order given, once each (None: not installed)."""
    return {name: package_version(name) for name in dict.fromkeys(names)}


def version_matches(installed: str | None, specifier: str) -> bool:
    """Whether ``installed`` satisfies a PEP 440 ``specifier`` (pre-releases included); never when not installed."""
    return installed is not None and SpecifierSet(specifier).contains(Version(installed), prereleases=True)


@dataclass(frozen=True)
class Here:
    """Where something runs: CPU flags, thread count (None: not stated) and package versions (None: ask
    importlib.metadata)."""

    cpu_flags: frozenset[str]
    versions: Mapping[str, str | None] | None = None
    threads: int | None = None

    @classmethod
    def now(cls, threads: int | None = None) -> Here:
        return cls(cpu_flags(), None, threads)

    def version(self, package: str) -> str | None:
        return package_version(package) if self.versions is None else self.versions.get(package)


@dataclass(frozen=True)
class Scope:
    """Where a measured number holds: threads and CPU class (None: any), CPU flags (all required), installed
    package versions (import name -> PEP 440 specifier, all must match)."""

    threads: int | None = None
    cpu_flags: tuple[str, ...] = ()
    packages: dict[str, str] = field(default_factory=dict)
    cpu_class: str | None = None

    def specificity(self) -> int:
        return (self.cpu_class is not None) + (self.threads is not None)

    def mismatch(self, threads: int | None, flags: Iterable[str], version_of: VersionOf) -> str | None:
        """Why this scope does not hold here (None: it does). ``threads`` None: the caller states no thread count
        (a scope with threads then does not hold); ``version_of(import_name)`` -> version or None."""
        if self.threads is not None and threads != self.threads:
            return f"measured with {self.threads} threads, here {threads if threads is not None else 'unknown'}"
        flags = set(flags)
        here = cpu_class(flags)
        if self.cpu_class is not None and here != self.cpu_class:
            return f"for {self.cpu_class} CPUs, this one is {here}"
        missing = sorted(set(self.cpu_flags) - flags)
        if missing:
            return f"needs CPU flag {', '.join(missing)}"
        for package, spec in self.packages.items():
            installed = version_of(package)
            if not version_matches(installed, spec):
                return f"measured with {package}{spec}, here {installed or 'not installed'}"
        return None

    def holds(self, here: Here) -> bool:
        return self.mismatch(here.threads, here.cpu_flags, here.version) is None

    def describe(self) -> str:
        """e.g. 'avx512-bf16 CPUs, 2 threads, tensorflow==2.21.*, CPU amx_bf16' ('' for everywhere)."""
        parts = [f"{self.cpu_class} CPUs" if self.cpu_class else "", f"{self.threads} threads" if self.threads else ""]
        parts += [f"{p}{s}" for p, s in self.packages.items()] + [f"CPU {f}" for f in self.cpu_flags]
        return ", ".join(p for p in parts if p)
