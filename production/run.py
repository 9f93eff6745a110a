"""A production run: check the inputs (nothing is written on bad input), then the shards on Dask, then the
self-validation and the manifest.

``workers=N`` starts a LocalCluster on this machine (N worker processes, one Dask thread each, each runtime pinned
to ``cores // N`` threads); ``scheduler=ADDRESS`` uses an existing Dask cluster (dask-jobqueue on HTCondor or Slurm,
a gateway, ``dask scheduler`` + ``dask worker``): its workers need this package installed and the output folder
(and a weight file or saved variant given by path) on a shared filesystem. Shards are Dask tasks with
``retries``; a worker that dies loses only the shard it was making, which the scheduler runs again elsewhere.
"""

from __future__ import annotations

import platform
import sys
import time
from pathlib import Path

import numpy as np

from gan.machine import usable_cpus
from production import manifest as manifests
from production.plan import SEED_RULE, Plan, ProductionError, energies_digest, read_energies_file

RETRIES = 3  # per shard, besides the scheduler's own re-runs of the tasks of a worker that died
PROGRESS_EVERY_S = 10.0


def dask_client_classes():
    """(Client, LocalCluster), or ProductionError saying how to install Dask."""
    try:
        from dask.distributed import Client, LocalCluster
    except ImportError:
        raise ProductionError("production runs on Dask, which is not installed: pip install -e '.[dask]' "
                              "(or pip install 'dask[distributed]')") from None
    return Client, LocalCluster


def resolve_variant(variant: str, model: str | None) -> tuple[str, str, str | None]:
    """(variant name, model, saved folder or None); checks that it exists and can run here."""
    from quant import registry
    from quant.base import VariantError, VariantUnavailable, read_variant_file

    folder = None
    try:
        if Path(variant).is_dir():
            folder = str(Path(variant).resolve())
            saved = read_variant_file(variant)
            name = saved["variant"]
            saved_model = saved.get("model_name")
            if model is not None and isinstance(saved_model, str) and saved_model != model:
                raise ProductionError(f"--variant {variant}: built from model '{saved_model}', not --model {model}")
            model = model or (saved_model if isinstance(saved_model, str) else "default")
        else:
            name = variant
        registry.get(name).check()
    except VariantError as exc:
        raise ProductionError(f"--variant {variant}: {exc}") from None
    except VariantUnavailable as exc:
        raise ProductionError(f"--variant {variant}: {exc}") from None
    return name, model or "default", folder


def known_failure(model: str, variant: str):
    """The registered known failure of (model, variant) on this machine's stack, or None."""
    from gan.machine import Here
    from verdict import known_failures

    here = Here.now()
    failures = known_failures.load()
    for check in known_failures.CHECKS:
        found = known_failures.find(failures, model, variant, check, here)
        if found is not None:
            return found
    return None


def prepare(*, model: str | None, variant: str, n: int | None, energy_range, energies_file, seed: int,
            shard_size: int, out, force: bool = False) -> tuple[Plan, dict | None, dict]:
    """Check every input and ``out`` before anything is written: (plan, existing manifest or None, provenance)."""
    from gan.pretrained import resolve_weights, sha256sum, trained_energy_range
    from gan.weights import WeightFileError

    name, model, folder = resolve_variant(variant, model)
    try:
        weights = resolve_weights(model)
    except WeightFileError as exc:
        raise ProductionError(f"--model {model}: {exc}") from None
    if not Path(weights).is_file():
        raise ProductionError(f"--model {model}: no such weight file")
    failure = known_failure(model, name)
    if failure is not None and not force:
        raise ProductionError(f"variant '{name}' of model '{model}' is a registered known failure "
                              f"({failure.scope()}): {failure.reason.splitlines()[0]} -- refused; pass --force to "
                              "produce it anyway (the manifest records it)")
    lo, hi = trained_energy_range(model)
    energies = None
    if energies_file is not None:
        if energy_range is not None:
            raise ProductionError("give --energy-range or --energies, not both")
        energies = read_energies_file(energies_file)
        if n is not None and n > len(energies):
            raise ProductionError(f"--n {n}: --energies {energies_file} holds only {len(energies)} energies")
        energies = energies[:n] if n else energies
        n = len(energies)
        outside = (energies < lo) | (energies > hi)
        if outside.any():
            raise ProductionError(f"--energies {energies_file}: {int(outside.sum())} energies outside {lo:g}-{hi:g} "
                                  f"GeV, the range model '{model}' was trained on (e.g. {energies[outside][0]:g} GeV)")
    else:
        energy_range = tuple(float(e) for e in (energy_range or (lo, hi)))
        if not (lo <= energy_range[0] <= energy_range[1] <= hi):
            raise ProductionError(f"--energy-range {energy_range[0]:g}:{energy_range[1]:g}: outside {lo:g}-{hi:g} GeV, "
                                  f"the range model '{model}' was trained on (extrapolated showers are unphysical)")
        if n is None:
            raise ProductionError("--n is required with an energy range")
    plan = Plan(model=str(model), variant=folder or name, n=int(n), seed=int(seed), shard_size=int(shard_size),
                energy_range_gev=None if energies is not None else energy_range,
                energies_file=str(energies_file) if energies is not None else None,
                energies_sha256=energies_digest(energies) if energies is not None else None, energies=energies)
    existing = manifests.check_resumable(out, plan)
    provenance = {
        "model": {"name": model, "weights": str(weights), "weights_sha256": sha256sum(weights),
                  "trained_energy_range_gev": [lo, hi]},
        "variant": {"name": name, "folder": folder, "folder_files_sha256": _folder_digest(folder)},
        "forced_known_failure": None if failure is None else {"scope": failure.scope(), "reason": failure.reason},
    }
    return plan, existing, provenance


def _folder_digest(folder) -> dict | None:
    if folder is None:
        return None
    from gan.pretrained import sha256sum

    root = Path(folder)
    return {str(p.relative_to(root)): sha256sum(p) for p in sorted(root.rglob("*")) if p.is_file()}


PRODUCTION_PACKAGES = ("dask", "distributed", "calogan_precision")  # production's own runtime, and this project


def software_versions() -> dict:
    """Python's version and, by import name (None: not installed), gan.machine's base packages, every variant
    family's runtime (quant.registry.runtime_packages) and production's own."""
    from gan import machine
    from quant import registry

    names = machine.BASE_PACKAGES + registry.runtime_packages() + PRODUCTION_PACKAGES
    return {"python": platform.python_version()} | machine.package_versions(names)


def _tasks(plan: Plan, out: Path, todo: list[int], threads: int | None) -> list[dict]:
    variant_arg = plan.variant
    return [{"index": i, "seed": plan.seed, "n": plan.shard_count(i), "model": plan.model, "variant": variant_arg,
             "energy_range_gev": plan.energy_range_gev, "energies": plan.shard_energies(i), "threads": threads,
             "path": str(out / plan.shard_file(i))} for i in todo]


def _cluster(workers: int | None, scheduler: str | None, threads: int | None):
    """(client, close(), description, threads per worker runtime or None: each worker's own nthreads)."""
    Client, LocalCluster = dask_client_classes()
    if scheduler:
        try:
            client = Client(scheduler, timeout="30s")
        except OSError as exc:
            raise ProductionError(f"--scheduler {scheduler}: cannot connect ({exc})") from None
        n = len(client.scheduler_info().get("workers", {}))
        return client, client.close, f"scheduler {scheduler} ({n} workers at start)", threads
    workers = workers or 1
    threads = threads or max(1, usable_cpus() // workers)
    import logging

    cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None,
                           silence_logs=logging.ERROR,
                           env={"OMP_NUM_THREADS": str(threads), "OPENBLAS_NUM_THREADS": "1",
                                "TF_CPP_MIN_LOG_LEVEL": "2"})
    client = Client(cluster)

    def close():
        client.close()
        cluster.close()
    return client, close, f"LocalCluster: {workers} worker processes x {threads} runtime threads", threads


def produce(plan: Plan, out, existing: dict | None, provenance: dict, *, workers: int | None = None,
            scheduler: str | None = None, threads: int | None = None, validate: bool = True, log=print) -> dict:
    """Make the missing shards, validate, write the manifest; returns it."""
    out = Path(out)
    started = time.time()
    done = manifests.verified_shards(out, existing)
    existing = dict(existing) if existing else None
    manifest = dict(existing or {})
    kept = {k: (manifest.get("variant") or {}).get(k) for k in ("op_report",)}
    manifest.update({"kind": manifests.PRODUCTION_KIND, "format": manifests.FORMAT, "complete": False,
                     "params": plan.params(), "seed_rule": SEED_RULE, **provenance,
                     "counts": {"showers": plan.n, "shards": plan.n_shards},
                     "shards": [done[i] for i in sorted(done)]})
    manifest.setdefault("runs", [])
    manifest["variant"].update({k: v for k, v in kept.items() if v is not None})
    out.mkdir(parents=True, exist_ok=True)
    manifests.write(out, manifest)
    todo = [i for i in range(plan.n_shards) if i not in done]
    if done:
        log(f"resuming: {len(done)} of {plan.n_shards} shards verified by sha256 and kept, {len(todo)} to make")
    run = {"started_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)), "shards_kept": len(done),
           "shards_made": 0, "host": platform.node(), "argv": sys.argv[1:]}
    results = []
    if todo:
        cluster_start = time.perf_counter()
        client, close, where, threads = _cluster(workers, scheduler, threads)
        run["cluster"], run["cluster_start_s"] = where, time.perf_counter() - cluster_start
        log(f"{where}: {len(todo)} shards of up to {plan.shard_size} showers")
        try:
            results = _run_shards(client, plan, out, todo, threads, manifest, done, log)
        finally:
            run["workers_at_end"] = len(client.scheduler_info().get("workers", {}))
            close()
        run["shards_made"] = len(results)
        run["produce_wall_s"] = time.perf_counter() - cluster_start - run["cluster_start_s"]
        run["showers_per_s"] = sum(r["n"] for r in results) / run["produce_wall_s"]
        run["timing"] = _timing(results, run["produce_wall_s"], run["workers_at_end"])
        manifest["variant"]["op_report"] = results[0]["op_report"]
        manifest["threads"] = results[0]["threads"]
    missing = sorted(set(range(plan.n_shards)) - {e["index"] for e in manifest["shards"]})
    if missing:
        raise ProductionError(f"{out}: shards {missing[:5]} missing after the run (re-run to resume)")
    manifest["software"] = software_versions()
    run["wall_s"] = time.time() - started
    manifest["runs"].append(run)
    made = [r for r in manifest["runs"] if r.get("shards_made")]
    manifest["wall_s"] = sum(r["wall_s"] for r in manifest["runs"])
    manifest["showers_per_s"] = (sum(r["showers_per_s"] * r["produce_wall_s"] for r in made)
                                 / sum(r["produce_wall_s"] for r in made)) if made else None
    previous = (existing or {}).get("validation") or {}
    if validate and not results and (existing or {}).get("complete") and previous.get("checks"):
        previous["note"] = "from an earlier run: every shard was kept (same sha256), so the same showers"
    elif validate:
        from production.selfcheck import self_validate

        validation_start = time.perf_counter()
        manifest["validation"] = self_validate(out, plan, provenance["model"]["name"], log=log)
        manifest["validation"]["seconds"] = time.perf_counter() - validation_start
    else:
        manifest["validation"] = {"verdict": "not validated (--no-validate)", "status": "not judged", "checks": []}
    manifest["complete"] = True
    manifests.write(out, manifest)
    from gan.outputs import write_marker

    write_marker(out, "production")
    return manifest


def _run_shards(client, plan, out, todo, threads, manifest, done, log) -> list[dict]:
    from dask.distributed import as_completed

    tasks = _tasks(plan, out, todo, threads)
    from production.worker import produce_shard

    token = manifests.params_token(plan)
    futures = [client.submit(produce_shard, t, key=f"calogan-shard-{token}-{t['index']}", retries=RETRIES,
                             pure=False) for t in tasks]
    results, last_save, last_log = [], time.monotonic(), time.monotonic()
    try:
        for future in as_completed(futures):
            try:
                r = future.result()
            except Exception as exc:
                raise ProductionError(f"shard {future.key.rsplit('-', 1)[1]} failed after {RETRIES} retries: "
                                      f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}") from exc
            results.append(r)
            done[r["index"]] = {"index": r["index"], "file": r["file"], "n": r["n"], "sha256": r["sha256"],
                                "seed_spawn_key": [r["index"]]}
            now = time.monotonic()
            if now - last_save >= manifests.SAVE_EVERY_S or len(results) == len(futures):
                manifest["shards"] = [done[i] for i in sorted(done)]
                manifests.write(out, manifest)
                last_save = now
            if now - last_log >= PROGRESS_EVERY_S:
                log(f"  {len(results)}/{len(futures)} shards")
                last_log = now
    finally:  # also on a failed shard or Ctrl-C: what finished is recorded, a re-run resumes from it
        for f in futures:
            f.cancel()
        manifest["shards"] = [done[i] for i in sorted(done)]
        manifests.write(out, manifest)
    return results


def _timing(results: list[dict], wall_s: float, workers: int) -> dict:
    """Per-shard costs for sizing a cluster: model load (once per worker), generate, write, and what is left of
    the workers' wall time (scheduling, idle, transfer) per shard."""
    load = [r["load_s"] for r in results if r["load_s"] > 0]
    busy = sum(r["task_s"] for r in results)
    return {"worker_processes_used": len({r["pid"] for r in results}), "model_loads": len(load),
            "model_load_s_mean": float(np.mean(load)) if load else 0.0,
            "generate_s_per_shard_mean": float(np.mean([r["generate_s"] for r in results])),
            "write_s_per_shard_mean": float(np.mean([r["write_s"] for r in results])),
            "generate_showers_per_s_per_worker": sum(r["n"] for r in results) / sum(r["generate_s"] for r in results),
            "scheduling_idle_s_per_shard": max(0.0, (wall_s * max(workers, 1) - busy) / len(results))}
