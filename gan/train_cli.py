"""``python -m gan train | evaluate | export-default``: training, the target table on held-out Geant4, export."""

from __future__ import annotations

from pathlib import Path

from gan.pretrained import shared_data_file
from gan.train import PROFILE_TARGETS

G4_FILES = (shared_data_file("g4_electrons_10-250GeV.h5"), shared_data_file("g4_electrons_10-250GeV_part2.h5"))
HOLDOUT_EVENTS = 1120  # the first file's last events: the project's held-out Geant4 sample


def cmd_train(args) -> None:
    from gan.train import TrainConfig, train

    config = TrainConfig(data_paths=tuple(args.data), run_dir=args.run_dir, epochs=args.epochs,
                         batch_size=args.batch_size, learning_rate=args.learning_rate, precision=args.precision,
                         ema_decay=args.ema_decay, eval_every=args.eval_every, seed=args.seed,
                         max_minutes=args.max_minutes, max_train_events=args.max_train_events,
                         holdout_events=args.holdout_events, eval_events=args.eval_events,
                         eval_per_event=args.eval_per_event, threads=args.threads,
                         checkpoint_minutes=args.checkpoint_minutes, log_every=args.log_every,
                         profile_weight=args.profile_weight, profile_target=args.profile_target,
                         profile_groups=args.profile_groups, spread_weight=args.spread_weight,
                         init_from=args.init_from)
    print(f"best EMA generator -> {train(config)}")


def cmd_evaluate(args) -> None:
    from gan.evaluate import evaluate_weights

    print(evaluate_weights(args.weights, args.g4, args.holdout_events, args.seed, args.per_event)["text"])


def cmd_export_default(args) -> None:
    from gan.evaluate import export_default

    export_default(Path(args.run_dir), args.g4, args.holdout_events, args.seed)


def add_commands(sub, positive_int, seed_int) -> None:
    """The ``train``, ``evaluate`` and ``export-default`` sub-commands."""
    t = sub.add_parser("train", help="train (or resume) a generator on Geant4 showers")
    t.add_argument("--data", nargs="+", default=[str(p) for p in G4_FILES],
                   help="Geant4 files; the FIRST file's last --holdout-events are held out, the others used whole")
    t.add_argument("--run-dir", default="runs/default")
    t.add_argument("--epochs", type=positive_int, default=30)
    t.add_argument("--batch-size", type=positive_int, default=32)
    t.add_argument("--learning-rate", type=float, default=1e-3)
    t.add_argument("--precision", choices=("mixed_bfloat16", "float32"), default="mixed_bfloat16")
    t.add_argument("--ema-decay", type=float, default=0.999)
    t.add_argument("--eval-every", type=positive_int, default=300, help="iterations between physics evaluations")
    t.add_argument("--seed", type=seed_int, default=1)
    t.add_argument("--max-minutes", type=float, help="stop cleanly after this many minutes (resume later)")
    t.add_argument("--checkpoint-minutes", type=float, default=15.0)
    t.add_argument("--max-train-events", type=positive_int)
    t.add_argument("--holdout-events", type=positive_int, default=HOLDOUT_EVENTS)
    t.add_argument("--eval-events", type=positive_int, default=HOLDOUT_EVENTS)
    t.add_argument("--eval-per-event", type=positive_int, default=1,
                   help="GAN showers per held-out event in each evaluation (the best is then less a seed's luck)")
    t.add_argument("--threads", type=positive_int, default=2)
    t.add_argument("--log-every", type=positive_int, default=50)
    t.add_argument("--profile-weight", type=float, default=0.0,
                   help="generator loss: weight of the L1 distance of the batch-mean x/y/z profiles to Geant4's")
    t.add_argument("--profile-target", choices=PROFILE_TARGETS, default="batch",
                   help="what the profile loss compares with: the real batch, or the training set's mean profiles "
                        "in 10 GeV bins (no sampling noise)")
    t.add_argument("--profile-groups", type=positive_int, default=2,
                   help="the profile loss compares the means of this many energy groups of the batch")
    t.add_argument("--spread-weight", type=float, default=0.0,
                   help="generator loss: weight of the distance of the summed energy's relative spread (per energy "
                        "group) to Geant4's")
    t.add_argument("--init-from", metavar="RUN_DIR",
                   help="start a new run from another run's latest checkpoint (weights, optimizers, EMA, position)")
    t.set_defaults(func=cmd_train)
    for name, func, what in (("evaluate", cmd_evaluate, "a generator weight file"),
                             ("export-default", cmd_export_default, "a training run's best EMA generator")):
        e = sub.add_parser(name, help=f"{what} vs the held-out Geant4 events per 20 GeV bin, against the target"
                                      + (" -> gan/default/generator.h5 + model card" if func is cmd_export_default
                                         else ""))
        if func is cmd_evaluate:
            e.add_argument("weights", help="generator weight file (project or CERN layout), or 'default'")
            e.add_argument("--per-event", type=positive_int, default=1,
                           help="GAN showers per held-out event (more: less GAN-side sampling noise)")
        else:
            e.add_argument("run_dir", help="training run folder holding generator_best_ema.h5")
        e.add_argument("--g4", default=str(G4_FILES[0]), help="Geant4 file whose last --holdout-events are used")
        e.add_argument("--holdout-events", type=positive_int, default=HOLDOUT_EVENTS)
        e.add_argument("--seed", type=seed_int, default=1)
        e.set_defaults(func=func)
