"""The physics verdict: does a reduced-precision variant keep its model's physics?

Requirement tables for paired checks (``requirements``), Geant4-vs-Geant4 null thresholds for Geant4-side checks
(``geant4_null``, from per-event summaries of the shared Geant4 events: ``geant4_events``), the decisions
themselves (``checks``) and the registry of known failures (``known_failures``); the TOML tables ship with the
package. Imports only the physics below it (``gan``'s numpy modules) and numpy/scipy: quant's tuners, the
validation suite, the benchmarks and the report all read it downhill.
"""

import os

# numpy's OpenBLAS threads spin against TensorFlow's on a 2-core machine: the FPD's many small QRs then run ~30x
# slower. Takes effect where this package is imported before numpy (e.g. `python -m verdict.geant4_null`).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
