"""Physics-tolerance validation of reduced-precision variants (pytest suite plus its data and helpers)."""
