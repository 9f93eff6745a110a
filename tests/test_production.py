"""Mass production on Dask (production/, `calogan produce`): seeds, folders, bad input, identity, faults, resume.

The Dask tests start LocalClusters of worker processes (fp32 variant, default model, small shards): ~2-3 min on
2 cores. Without dask[distributed] they are skipped; the rest needs none.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from gan import data
from production import manifest as manifests
from production.plan import Plan, ProductionError, shard_inputs

ROOT = Path(__file__).resolve().parents[1]


def _plan(**kw) -> Plan:
    args = dict(model="default", variant="fp32", n=50, seed=7, shard_size=16, energy_range_gev=(10.0, 250.0))
    args.update(kw)
    return Plan(**args)


# ------------------------------------------------------------------ seeds and the folder format (no Dask)


def test_shard_inputs_depend_only_on_seed_and_index():
    z0, e0 = shard_inputs(7, 3, 16, (10.0, 250.0))
    z1, e1 = shard_inputs(7, 3, 16, (10.0, 250.0))
    assert np.array_equal(z0, z1) and np.array_equal(e0, e1)
    z2, _ = shard_inputs(7, 4, 16, (10.0, 250.0))
    z3, _ = shard_inputs(8, 3, 16, (10.0, 250.0))
    assert not np.array_equal(z0, z2) and not np.array_equal(z0, z3)
    assert z0.dtype == np.float32 and e0.dtype == np.float32 and e0.min() >= 10 and e0.max() <= 250
    z4, e4 = shard_inputs(7, 3, 4, energies=[20, 30, 40, 50])
    assert np.array_equal(e4, np.float32([20, 30, 40, 50])) and np.array_equal(z4, z0[:4])


def test_plan_shards():
    plan = _plan(n=50, shard_size=16)
    assert plan.n_shards == 4 and [plan.shard_count(i) for i in range(4)] == [16, 16, 16, 2]
    assert plan.shard_file(3) == "shard-000003.h5"


def _fake_production(folder: Path, counts=(3, 4, 2), complete=True) -> data.Showers:
    rng = np.random.default_rng(0)
    parts, shards = [], []
    folder.mkdir()
    for i, k in enumerate(counts):
        s = data.Showers(rng.random((k, 25, 25, 25), dtype=np.float32), rng.uniform(10, 250, k))
        data.write_showers(folder / f"shard-{i:06d}.h5", s)
        parts.append(s)
        shards.append({"index": i, "file": f"shard-{i:06d}.h5", "n": k, "sha256": "x"})
    (folder / "manifest.json").write_text(json.dumps({"kind": data.PRODUCTION_KIND, "complete": complete,
                                                      "shards": shards[::-1]}))
    return data.Showers.concatenate(parts)


def test_gan_data_reads_a_production_folder_as_one_data_set(tmp_path):
    every = _fake_production(tmp_path / "p")
    folder = tmp_path / "p"
    assert data.count_showers(folder) == 9
    got = data.read_showers(folder)
    assert np.array_equal(got.ecal, every.ecal) and np.array_equal(got.energy, every.energy)
    batches = list(data.iter_showers(folder, chunk_size=4))
    assert [len(b) for b in batches] == [4, 4, 1]  # batches span shard boundaries
    assert np.array_equal(np.concatenate([b.ecal for b in batches]), every.ecal)
    part = data.read_showers(folder, start=2, max_events=5)
    assert np.array_equal(part.ecal, every.ecal[2:7])
    lo, hi = 100, 200
    keep = (every.energy >= lo) & (every.energy <= hi)
    assert np.array_equal(data.read_energies(folder, energy_range=(lo, hi)), every.energy[keep])
    assert data.count_showers(folder, energy_range=(lo, hi)) == int(keep.sum())


def test_gan_data_refuses_incomplete_or_foreign_folders(tmp_path):
    _fake_production(tmp_path / "p", complete=False)
    with pytest.raises(data.ShowerFileError, match="not complete"):
        data.read_showers(tmp_path / "p")
    (tmp_path / "q").mkdir()
    with pytest.raises(data.ShowerFileError, match="not a production"):
        data.count_showers(tmp_path / "q")


def test_resume_refuses_other_parameters(tmp_path):
    out = tmp_path / "prod"
    out.mkdir()
    manifests.write(out, {"kind": data.PRODUCTION_KIND, "params": _plan(seed=1).params(), "shards": []})
    assert manifests.check_resumable(out, _plan(seed=1)) is not None
    with pytest.raises(ProductionError, match="other parameters.*seed"):
        manifests.check_resumable(out, _plan(seed=2))


# ------------------------------------------------------------------ bad input: clear errors, nothing written


def _prepare(out, **kw):
    from production.run import prepare

    args = dict(model=None, variant="fp32", n=10, energy_range=None, energies_file=None, seed=1, shard_size=5,
                out=out)
    args.update(kw)
    return prepare(**args)


def _known_failure_here():
    from production.run import known_failure
    from quant import registry

    for name in registry.names():
        if registry.unavailable_reason(name) is None and known_failure("default", name) is not None:
            return name
    return None


@pytest.mark.parametrize("case", ["unknown-variant", "known-failure", "energy-range", "energies-file",
                                  "foreign-out", "file-out"])
def test_bad_input_is_refused_and_nothing_written(tmp_path, case):
    out = tmp_path / "out"
    kw, match = {}, None
    if case == "unknown-variant":
        kw, match = {"variant": "no-such-variant"}, "unknown variant 'no-such-variant'"
    elif case == "known-failure":
        name = _known_failure_here()
        if name is None:
            pytest.skip("no registered known failure of the default model applies on this machine")
        kw, match = {"variant": name}, "known failure.*--force"
    elif case == "energy-range":
        kw, match = {"energy_range": (5.0, 300.0)}, "outside 10-250 GeV"
    elif case == "energies-file":
        energies = tmp_path / "e.txt"
        energies.write_text("50\n400\n")
        kw, match = {"energies_file": energies, "n": None}, "1 energies outside 10-250"
    elif case == "foreign-out":
        out.mkdir()
        (out / "mine.txt").write_text("keep me")
        match = "not a production"
    else:
        out.write_text("a file")
        match = "not a folder"
    before = sorted(p.name for p in tmp_path.rglob("*"))
    with pytest.raises(ProductionError, match=match):
        _prepare(out, **kw)
    assert sorted(p.name for p in tmp_path.rglob("*")) == before


def test_known_failure_is_produced_with_force(tmp_path):
    name = _known_failure_here()
    if name is None:
        pytest.skip("no registered known failure of the default model applies on this machine")
    plan, existing, provenance = _prepare(tmp_path / "out", variant=name, force=True)
    assert provenance["forced_known_failure"]["reason"] and existing is None


def test_missing_dask_is_one_clear_line(monkeypatch):
    from production.run import dask_client_classes

    monkeypatch.setitem(sys.modules, "dask.distributed", None)
    with pytest.raises(ProductionError, match=r"pip install -e '\.\[dask\]'"):
        dask_client_classes()


def test_produce_is_a_gan_command():
    from gan.cli import parser

    args = parser().parse_args(["produce", "--out", "x", "--n", "5", "--workers", "2"])
    assert args.workers == 2 and args.variant == "folded" and callable(args.func)


# ------------------------------------------------------------------ on Dask: identity, a killed worker, resume


def _shards_in_process(plan: Plan) -> np.ndarray:
    from production.worker import shard_showers

    return np.concatenate([shard_showers({"model": plan.model, "variant": plan.variant, "threads": 1,
                                          "seed": plan.seed, "index": i, "n": plan.shard_count(i),
                                          "energy_range_gev": plan.energy_range_gev})[0]
                           for i in range(plan.n_shards)])


def _exactly_once(out: Path, plan: Plan) -> dict:
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["complete"]
    assert [s["index"] for s in manifest["shards"]] == list(range(plan.n_shards))
    files = sorted(p.name for p in out.iterdir())
    assert files == sorted([plan.shard_file(i) for i in range(plan.n_shards)]
                           + ["manifest.json", ".calogan-output.json"])  # no temporaries, no duplicates
    assert data.count_showers(out) == plan.n
    return manifest


@pytest.mark.slow
def test_two_workers_one_killed_equal_in_process_generation(tmp_path):
    pytest.importorskip("distributed")
    from dask.distributed import LocalCluster

    from production.run import prepare, produce

    out = tmp_path / "prod"
    plan, existing, provenance = prepare(model="default", variant="fp32", n=112, energy_range=None,
                                         energies_file=None, seed=11, shard_size=8, out=out)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        killed = []
        # the worker's pid from its nanny: a second Client in this process makes the run's futures flaky
        # ("asyncio Event bound to a different event loop")
        pid = next(iter(cluster.workers.values())).process.process.pid

        def kill_one_worker_mid_run():
            deadline = time.monotonic() + 240
            while time.monotonic() < deadline:
                m = manifests.read(out) if (out / "manifest.json").is_file() else None
                if m and 1 <= len(m["shards"]) < plan.n_shards - 4:
                    os.kill(pid, signal.SIGKILL)
                    killed.append(pid)
                    return
                time.sleep(0.2)

        killer = threading.Thread(target=kill_one_worker_mid_run)
        killer.start()
        manifest = produce(plan, out, existing, provenance, scheduler=cluster.scheduler_address, threads=1,
                           log=lambda m: None)
        killer.join()
    assert killed, "the run ended before a worker could be killed"
    _exactly_once(out, plan)
    produced = data.read_showers(out)
    assert np.array_equal(produced.ecal, _shards_in_process(plan))  # fp32: bitwise
    paired = {c["check"]: c for c in manifest["validation"]["checks"]}["paired"]
    assert paired["status"] == "ok" and paired["showers"] == 100
    # 112 showers cannot be energy-matched to the 100 Geant4 reference events: not judged, and so not a pass
    assert manifest["validation"]["status"] == "not judged" and "not a pass" in manifest["validation"]["verdict"]
    assert manifest["variant"]["op_report"]["variant"] == "fp32" and manifest["model"]["weights_sha256"]
    timing = manifest["runs"][-1]["timing"]  # worker-local cache: one build per worker process (the killed one's
    assert timing["model_loads"] == timing["worker_processes_used"] <= 3  # replacement builds once more)


@pytest.mark.slow
def test_killed_client_resumes(tmp_path):
    pytest.importorskip("distributed")
    out = tmp_path / "prod"
    cmd = [sys.executable, "-m", "gan", "produce", "--variant", "fp32", "--n", "96", "--shard-size", "8",
           "--seed", "5", "--workers", "1", "--threads", "1", "--no-validate", "--out", str(out)]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    first = subprocess.Popen(cmd, cwd=ROOT, env=env, start_new_session=True, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and first.poll() is None:
            m = manifests.read(out) if (out / "manifest.json").is_file() else None
            if m and len(m["shards"]) >= 2:
                break
            time.sleep(0.2)
        assert first.poll() is None, "the first run ended before it could be killed"
    finally:
        os.killpg(first.pid, signal.SIGKILL)  # the client and its LocalCluster (its own session)
        first.wait()
    kept = len(manifests.read(out)["shards"])
    assert not manifests.read(out)["complete"] and kept >= 2
    second = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=400)
    assert second.returncode == 0, second.stderr[-2000:]
    assert "resuming" in second.stderr and f"{kept} kept" in second.stdout
    plan = Plan(model="default", variant="fp32", n=96, seed=5, shard_size=8, energy_range_gev=(10.0, 250.0))
    _exactly_once(out, plan)
    assert np.array_equal(data.read_showers(out).ecal, _shards_in_process(plan))
