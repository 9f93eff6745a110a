"""The one study runner: build each (model, variant) once, generate paired showers, time, check; typed results.

Layers: above ``gan`` (data, physics), ``quant`` (variants, speed) and ``verdict`` (requirement tables, Geant4
null thresholds, known failures); below ``report`` (renders the results), ``validation`` (pytest verdicts) and
``benchmarks`` (pytest-benchmark, the gate), which all use it:

- :mod:`study.inputs`: seeded generator inputs shared by FP32 and every variant (paired showers);
- :mod:`study.session`: :class:`~study.session.Session`, the per-session cache (each model's generator, each
  (model, variant) built once or built for one use and released, showers per inputs);
- :mod:`study.results`: the typed results (:class:`~study.results.SpeedResult`,
  :class:`~study.results.PhysicsResult`, :class:`~study.results.VariantResult`): one shape for "a variant's speed
  and physics", written as the report's ``results.json`` entries;
- :mod:`study.runner`: measuring a variant's speed against FP32, checking its physics, and the whole study
  (selection of models and variants, one model, all models) that ``python -m report`` renders.
"""
