"""gan.machine: CPU flags and classes, threads, package versions, and the one scope rule of known failures and
speed-up floors."""

import numpy as np
import pytest

from gan import machine
from gan.machine import Here, Scope


def test_isa_flags_are_one_list_in_its_order():
    assert machine.isa_flags({"fpu", "amx_int8", "avx2", "sse"}) == ["avx2", "amx_int8"]
    assert set(machine.isa_flags()) <= machine.cpu_flags()


def test_requested_threads():
    assert machine.requested_threads(3, {"CALOGAN_THREADS": "1"}) == 3
    assert machine.requested_threads(None, {"CALOGAN_THREADS": "1"}) == 1
    assert machine.requested_threads(None, {}) == machine.usable_cpus() >= 1
    with pytest.raises(ValueError, match="CALOGAN_THREADS must be a whole number"):
        machine.requested_threads(None, {"CALOGAN_THREADS": "two"})
    with pytest.raises(ValueError, match="--threads must be >= 1"):
        machine.requested_threads(0, {})


def test_package_versions_by_import_name_callers_extend_the_base():
    assert machine.package_version("numpy") == np.__version__
    assert machine.package_version("no_such_package_xyz") is None
    versions = machine.package_versions((*machine.BASE_PACKAGES, "no_such_package_xyz", "numpy"))
    assert list(versions) == [*machine.BASE_PACKAGES, "no_such_package_xyz"]
    assert versions["no_such_package_xyz"] is None and versions["numpy"] == np.__version__


HERE = Here(frozenset({"avx2", "avx512f", "avx512_bf16"}), {"tensorflow": "2.21.0"}, threads=2)


@pytest.mark.parametrize(("scope", "why"), [
    (Scope(), None),
    (Scope(threads=2, cpu_class="avx512-bf16"), None),
    (Scope(threads=1), "measured with 1 threads, here 2"),
    (Scope(cpu_class="amx"), "for amx CPUs, this one is avx512-bf16"),
    (Scope(cpu_flags=("avx512_bf16",)), None),
    (Scope(cpu_flags=("amx_bf16", "avx512_bf16")), "needs CPU flag amx_bf16"),
    (Scope(packages={"tensorflow": "==2.21.*"}), None),
    (Scope(packages={"tensorflow": "<2.16"}), "measured with tensorflow<2.16, here 2.21.0"),
    (Scope(packages={"openvino": ">=1"}), "measured with openvino>=1, here not installed"),
])
def test_scope_mismatch_says_why(scope, why):
    assert scope.mismatch(HERE.threads, HERE.cpu_flags, HERE.version) == why
    assert scope.holds(HERE) is (why is None)


def test_a_scope_with_threads_does_not_hold_where_no_thread_count_is_stated():
    assert not Scope(threads=2).holds(Here(HERE.cpu_flags, {}))
    assert Scope(cpu_class="avx512-bf16").holds(Here(HERE.cpu_flags, {}))


def test_scope_describes_itself():
    assert Scope(2, ("amx_bf16",), {"tensorflow": "==2.21.*"}, "amx").describe() == \
        "amx CPUs, 2 threads, tensorflow==2.21.*, CPU amx_bf16"
    assert Scope().describe() == ""


def test_the_known_failures_and_the_floors_use_the_same_rule():
    from benchmarks import floors
    from verdict import known_failures

    assert floors.Scope is Scope and known_failures.Scope is Scope
