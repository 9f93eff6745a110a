"""``python -m gan.train_speed``: seconds per training iteration, float32 vs mixed_bfloat16, interleaved.

One iteration = one discriminator step on a real and a fake batch and two generator steps (batch 32), on random
showers of the data's scale (speed does not depend on the values). Rough when the machine is shared: the
ratio of interleaved medians is what to compare.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from gan.cli_types import positive_int


def iteration_seconds(precisions=("float32", "mixed_bfloat16"), batch_size=32, rounds=5, steps=3, threads=2):
    """{precision: [seconds per iteration, one median per round]}; rounds alternate between the precisions."""
    from gan.train import TrainConfig, Trainer, _set_threads, target_sum

    _set_threads(threads)
    rng = np.random.default_rng(0)
    n = batch_size
    real = (rng.exponential(0.05, (n, 25, 25, 25, 1)) * (rng.random((n, 25, 25, 25, 1)) < 0.05)).astype(np.float32)
    energy = rng.uniform(10, 250, n).astype(np.float32)
    inputs = (real, energy / 100, real.sum(axis=(1, 2, 3, 4)), target_sum(np.array([0.0, 0.0, 0.025]), energy, 100),
              np.ones(n, np.float32), np.zeros(n, np.float32), rng.standard_normal((3, n, 200), dtype=np.float32))
    trainers = {p: Trainer(TrainConfig(data_paths=("-",), run_dir="/tmp/calogan-train-speed", precision=p,
                                       batch_size=batch_size)) for p in precisions}
    for trainer in trainers.values():
        trainer.step(*inputs)  # trace and warm up
    times = {p: [] for p in precisions}
    for _ in range(rounds):
        for p, trainer in trainers.items():
            samples = []
            for _ in range(steps):
                t0 = time.perf_counter()
                [float(v) for v in trainer.step(*inputs)]
                samples.append(time.perf_counter() - t0)
            times[p].append(float(np.median(samples)))
    return times


def main(argv=None) -> None:
    p = argparse.ArgumentParser(prog="python -m gan.train_speed", description=__doc__)
    p.add_argument("--rounds", type=positive_int, default=5)
    p.add_argument("--batch-size", type=positive_int, default=32)
    args = p.parse_args(argv)
    times = iteration_seconds(batch_size=args.batch_size, rounds=args.rounds)
    for precision, t in times.items():
        med = float(np.median(t))
        print(f"{precision:15s} {med:.2f} s per iteration ({med / args.batch_size:.3f} s per shower), "
              f"rounds: {', '.join(f'{v:.2f}' for v in t)}")
    ratios = np.array(times["float32"]) / np.array(times["mixed_bfloat16"])
    print(f"mixed_bfloat16 speed-up over float32: {np.median(ratios):.2f}x (median of per-round ratios "
          f"{', '.join(f'{r:.2f}' for r in ratios)})")


if __name__ == "__main__":
    main()
