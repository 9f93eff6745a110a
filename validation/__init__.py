"""Physics-tolerance validation of reduced-precision variants (pytest suite plus its data and helpers)."""

import os

# numpy's OpenBLAS threads spin against TensorFlow's on a 2-core machine: the FPD's many small QRs then run ~30x
# slower. Takes effect where this package is imported before numpy (`pytest validation`, `python -m validation...`).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
