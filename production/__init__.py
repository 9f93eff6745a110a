"""Mass shower production on Dask: a validated variant, sharded with deterministic seeds, self-validated.

``calogan produce`` / ``python -m gan produce`` (the command is found through the ``calogan.commands`` entry-point
group, so ``gan`` never imports this package). The pieces, each importable without Dask:

- :mod:`production.plan`: the run's parameters, its shards and their seeds and energies (numpy only);
- :mod:`production.worker`: one shard, generated and written on a worker (variant cached per worker process);
- :mod:`production.manifest`: ``manifest.json``, resume by checksum;
- :mod:`production.selfcheck`: a sample of the output through the verdict package's paired and Geant4-side checks;
- :mod:`production.run`: the Dask client (a LocalCluster, or ``--scheduler ADDRESS``) that ties them together.

Layering: imports ``gan``, ``quant`` and ``verdict``; nothing below imports it.
"""
