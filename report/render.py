"""The report's narrative: ``report.md`` and a self-contained ``report.html`` (figures embedded as base64 PNG) from a
study's results.

The report is built once as a list of blocks (:mod:`report.document`: heading, paragraph, list, table,
preformatted text, image) and rendered twice, so the two files always say the same thing; the figures are drawn
by :mod:`report.figures`. Every statement about speed and physics is derived from the numbers in
``results.json``; nothing here is hand-written about a particular variant.
"""

from __future__ import annotations

import math

from report.document import markdown_blocks, to_html, to_markdown  # noqa: F401 - the document model, re-exported
from report.figures import PAPER_INC_SPEEDUP

PAPER = ("Rehm et al., *Reduced Precision Strategies for Deep Learning: a HEP GAN use case*, ICPRAM 2021 "
         "(arXiv:2103.10142)")
PAPER_FOLLOW_UP_SPEEDUP = 3.0
PAPER_VS_GEANT4 = 67_000
INC_VARIANT, TFLITE_INT8 = "inc-int8", "tflite-int8"
CATEGORIES = (  # verdict key, what it means
    ("faster_keeps", "faster and keeps the physics"),
    ("faster_breaks", "faster but breaks the physics"),
    ("same_keeps", "keeps the physics, no clear speed difference"),
    ("same_breaks", "breaks the physics, no clear speed difference"),
    ("slower_keeps", "slower (keeps the physics)"),
    ("slower_breaks", "slower (and breaks the physics)"),
    ("physics_only_keeps", "keeps the physics (speed not measured)"),
    ("physics_only_breaks", "breaks the physics (speed not measured)"),
    ("faster_cannot_tell", "faster; physics: cannot tell at the largest paired sample tried"),
    ("same_cannot_tell", "no clear speed difference; physics: cannot tell at the largest paired sample tried"),
    ("slower_cannot_tell", "slower; physics: cannot tell at the largest paired sample tried"),
    ("physics_only_cannot_tell", "physics: cannot tell at the largest paired sample tried (speed not measured)"),
    ("not_run", "not run here"),
)


# ------------------------------------------------------------------ formatting helpers


def fmt(x, digits: int = 3) -> str:
    if x is None:
        return "-"
    if isinstance(x, str):
        return x
    if not math.isfinite(x):
        return "inf" if x > 0 else ("nan" if math.isnan(x) else "-inf")
    return f"{x:.{digits}g}"


def fmt_bytes(n) -> str:
    return "-" if n is None else f"{n / 1e6:.2f} MB"


def fmt_speedup(s: dict | None) -> str:
    return "-" if not s else f"{s['median']:.2f}x [{s['low']:.2f}, {s['high']:.2f}]"


def _ratio(x) -> float:
    return math.inf if isinstance(x, str) else float(x)


def fmt_ratio(x) -> str:
    """A shift in tolerance units: '2.6x tolerance', or 'a non-finite shift' (NaN/inf, e.g. empty showers)."""
    x = _ratio(x)
    return f"{fmt(x, 2)}x tolerance" if math.isfinite(x) else "a non-finite shift"


def physics_cell(check: dict | None) -> str:
    """'pass', 'FAIL', 'FAIL (known)' or 'pass (registered as known failure)'; '-' when not checked."""
    if check is None:
        return "-"
    known = check.get("known_failure")
    if check["ok"]:
        return "pass (registered as a known failure: fixed?)" if known else "pass"
    return "FAIL (known failure)" if known else "FAIL"


def paired_cell(paired: dict) -> str:
    """:func:`physics_cell` of the paired check, 'cannot tell' (or 'cannot tell (known failure)') where unresolved,
    with the sample size that decided it: 'pass at 400 showers', 'cannot tell at 1000 showers'."""
    if paired.get("status") == "cannot tell":
        cell = "cannot tell (known failure)" if paired.get("known_failure") else "cannot tell"
    else:
        cell = physics_cell(paired)
    return f"{cell} at {paired['showers']} showers" if paired.get("showers") else cell


def where(key: str) -> str:
    """'total_energy_mean@10-50' -> 'total_energy_mean at 10-50 GeV'."""
    observable, _, energies = key.partition("@")
    return f"{observable} at {energies} GeV" if energies else observable


def worst_cell(paired: dict | None) -> str:
    if paired is None:
        return "-"
    return f"{where(paired['worst'])} ({fmt_ratio(paired['worst_ratio'])})"


def geant4_speedup_cell(rows: list[dict] | None) -> str:
    if not rows:
        return "-"
    values = [r["speedup"] for r in rows if r.get("speedup") is not None]  # None: no Geant4 event in the bin
    return f"{_count(min(values))}-{_count(max(values))}x" if values else "-"


def _count(x: float) -> str:
    return f"{x:.2g}" if x < 10 else f"{x:,.0f}"


# ------------------------------------------------------------------ derived statements


def verdict_lines(results: dict, model: str) -> list[str]:
    """'**faster and keeps the physics**: bf16 (3.10x), ...' for every non-empty category of ``model``."""
    variants = results["models"][model]["variants"]
    lines = []
    for key, meaning in CATEGORIES:
        names = results["verdict"][model].get(key, [])
        if names:
            lines.append(f"**{meaning}**: " + ", ".join(_verdict_item(n, variants[n]) for n in names))
    return lines or ["no variant was run"]


def _verdict_item(name: str, entry: dict) -> str:
    if "paired" not in entry:
        return f"{name} ({entry.get('unavailable') or entry.get('error')})"
    parts = []
    if entry.get("speedup_at_largest_batch"):
        parts.append(f"{entry['speedup_at_largest_batch']['median']:.2f}x")
    paired = entry["paired"]
    if len(paired.get("stages") or ()) > 1 or paired.get("status") == "cannot tell":
        parts.append(f"paired {paired_cell(paired)}")  # grown beyond the first stage, or still unresolved
    if not entry["keeps_physics"]:
        paired = entry["paired"]
        parts.append(f"worst: {where(paired['worst'])}, {fmt_ratio(paired['worst_ratio'])}"
                     if not paired["ok"] else "farther from Geant4")
        if paired.get("known_failure") or (entry.get("geant4") or {}).get("known_failure"):
            parts.append("known failure")
    return f"{name} ({'; '.join(parts)})" if parts else name


def _int8_ops(entry: dict) -> int:
    return sum(row["precision"] == "int8" for row in entry.get("op_report", {}).get("rows", []))


def paper_comparison(results: dict) -> list[str]:
    """Paragraphs comparing our measured numbers with the paper's INC INT8 (1.73x) and TensorFlow Lite."""
    lines = [f"The paper ({PAPER}) quantized 3DGAN to INT8 with Intel's low-precision optimization tool (iLoT, now "
             f"Intel Neural Compressor, INC) and measured **{PAPER_INC_SPEEDUP}x** over FP32 on Intel CPUs "
             f"({PAPER_FOLLOW_UP_SPEEDUP:.1f}x in the follow-up work); it found the INC INT8 model lost less physics "
             "accuracy than TensorFlow Lite's quantized model, and quoted ~67,000x over Geant4."]
    for model, m in results["models"].items():
        variants = m["variants"]
        lines.append(f"Model **{model}** (speed-ups at batch {results['settings']['batch_sizes'][-1]}):")
        lines += [f"- {line}" for line in _model_comparison(variants)]
    lines.append("Stack facts: with stock TensorFlow 2.21 INC quantizes only the Dense layer (stock TF has no "
                 "quantized Conv3D kernel; see the op coverage column), so little speed-up is expected from it. The "
                 "legacy Intel stack (TF 2.15.1 + ITEX 2.15, `tox -e itex`) runs all four Conv3D in INT8 on AMX; "
                 "this report does not measure it. TensorFlow Lite has no INT8 CONV_3D: its convolutions stay float "
                 "in every TFLite variant.")
    return lines


def _model_comparison(variants: dict) -> list[str]:
    out = []
    inc = variants.get(INC_VARIANT, {})
    if "paired" in inc:
        s = inc.get("speedup_at_largest_batch")
        speed = "speed not measured" if not s else (
            f"{fmt_speedup(s)}, " + ("above" if s["low"] > PAPER_INC_SPEEDUP else
                                     "below" if s["high"] < PAPER_INC_SPEEDUP else "consistent with")
            + f" the paper's {PAPER_INC_SPEEDUP}x")
        out.append(f"INC INT8 ({INC_VARIANT}, {_int8_ops(inc)} int8 op(s): {inc['op_summary']}): {speed}; physics "
                   f"{'kept' if inc['keeps_physics'] else 'broken'} (worst paired shift "
                   f"{fmt_ratio(inc['paired']['worst_ratio'])}).")
    else:
        out.append(f"INC INT8 was not run here ({inc.get('unavailable') or inc.get('error') or 'not requested'}).")
    tfl = variants.get(TFLITE_INT8, {})
    if "paired" in tfl:
        s = tfl.get("speedup_at_largest_batch")
        out.append(f"TensorFlow Lite INT8: {fmt_speedup(s) if s else 'speed not measured'}; physics "
                   f"{'kept' if tfl['keeps_physics'] else 'broken'} (worst paired shift "
                   f"{fmt_ratio(tfl['paired']['worst_ratio'])}).")
        if "paired" in inc:
            a, b = inc["paired"]["accuracy_metric_vs_fp32"], tfl["paired"]["accuracy_metric_vs_fp32"]
            agree = "as in the paper, INC INT8 keeps" if _ratio(a) < _ratio(b) else \
                "unlike the paper, INC INT8 does not keep"
            out.append(f"Paper accuracy metric against FP32 (lower is closer): INC INT8 {fmt(_ratio(a))}, TFLite "
                       f"INT8 {fmt(_ratio(b))}: {agree} the physics better than TensorFlow Lite.")
    best = _best(variants, lambda e: _int8_ops(e) > 0)
    if best:
        name, e = best
        out.append(f"Fastest INT8 variant here: {name} at {fmt_speedup(e['speedup_at_largest_batch'])}, physics "
                   f"{'kept' if e['keeps_physics'] else 'broken'}.")
    best = _best(variants, lambda e: e["keeps_physics"])
    if best:
        name, e = best
        s = e["speedup_at_largest_batch"]["median"]
        low, high = e["speedup_at_largest_batch"]["low"], e["speedup_at_largest_batch"]["high"]
        relation = "beats" if low > PAPER_INC_SPEEDUP else "falls short of" if high < PAPER_INC_SPEEDUP else \
            f"is consistent (interval [{low:.2f}, {high:.2f}]) with"
        out.append(f"Fastest variant that keeps the physics: {name} at {s:.2f}x, which {relation} the paper's "
                   f"{PAPER_INC_SPEEDUP}x; per core it is {geant4_speedup_cell(e.get('speedup_vs_geant4'))} faster "
                   f"than our Geant4 (paper: ~{PAPER_VS_GEANT4:,}x, other hardware and accounting).")
    return out


def _best(variants: dict, keep) -> tuple[str, dict] | None:
    candidates = [(n, e) for n, e in variants.items() if "paired" in e and e.get("speedup_at_largest_batch")
                  and keep(e)]
    return max(candidates, key=lambda ne: ne[1]["speedup_at_largest_batch"]["median"], default=None)


# ------------------------------------------------------------------ tables


def variant_table(results: dict, model: str) -> tuple[list[str], list[list[str]]]:
    m = results["models"][model]
    batches = [str(b) for b in results["settings"]["batch_sizes"]] if results["settings"]["speed"] else []
    header = ["variant", "op coverage", "size on disk"] + [f"showers/s b{b}" for b in batches] + \
        ["speed-up vs FP32 [95%]", "vs folded", "vs Geant4 per core", "paired physics", "worst paired shift",
         "vs Geant4 physics"]
    fp32 = m["fp32"]
    rows = [["fp32 (reference)", fp32["op_summary"], fmt_bytes(fp32.get("disk_bytes"))]
            + [f"{fp32['showers_per_s'][b]:.1f}" for b in batches]
            + ["1", over_folded(m, None), geant4_speedup_cell(fp32.get("speedup_vs_geant4")), "-", "-", "-"]]
    for name, e in m["variants"].items():
        if "paired" not in e:
            rows.append([name, e.get("op_summary", "-"), "-"] + ["-"] * len(batches)
                        + ["-", "-", "-", f"not run: {e.get('unavailable') or e.get('error')}", "-", "-"])
            continue
        speeds = [f"{e['speed'][b]['showers_per_s']:.1f}" for b in batches] if "speed" in e else ["-"] * len(batches)
        rows.append([name, e["op_summary"], fmt_bytes(e.get("disk_bytes"))] + speeds
                    + [fmt_speedup(e.get("speedup_at_largest_batch")), over_folded(m, e),
                       geant4_speedup_cell(e.get("speedup_vs_geant4")),
                       paired_cell(e["paired"]), worst_cell(e["paired"]), physics_cell(e.get("geant4"))])
    return header, rows


def over_folded(m: dict, entry: dict | None) -> str:
    """Speed-up over ``folded`` (the exact rewrite), derived: the two medians over FP32 divided; '-' where either
    is missing (``entry`` None: FP32 itself)."""
    folded = m["variants"].get("folded", {}).get("speedup_at_largest_batch")
    own = {"median": 1.0} if entry is None else entry.get("speedup_at_largest_batch")
    return f"{own['median'] / folded['median']:.2f}x" if folded and own else "-"


def _ran(m: dict) -> dict:
    return {n: e for n, e in m["variants"].items() if "paired" in e}


def paired_table(results: dict, model: str) -> tuple[list[str], list[list[str]]]:
    """Rows: paired observables; columns: variants; cells: worst |shift| / tolerance over energy bins."""
    ran = _ran(results["models"][model])
    header = ["observable (worst bin, |shift| / tolerance)"] + list(ran)
    observables = list(dict.fromkeys(k.split("@")[0] for e in ran.values() for k in e["paired"]["shifts"]))
    rows = []
    for obs in observables:
        row = [obs]
        for e in ran.values():
            ratios = [_ratio(v["ratio"]) for k, v in e["paired"]["shifts"].items() if k.split("@")[0] == obs]
            worst = max(ratios, default=math.nan)
            row.append(f"{fmt(worst, 2)}{' FAIL' if worst > 1 else ''}")
        rows.append(row)
    return header, rows


def geant4_table(results: dict, model: str) -> tuple[list[str], list[list[str]]] | None:
    """Rows: distances to Geant4; columns: FP32's value, then each variant's increase over it / tolerance."""
    m = results["models"][model]
    ran = {n: e for n, e in _ran(m).items() if e.get("geant4")}
    if not ran:
        return None
    header = ["distance to Geant4", "FP32"] + [f"{n} (increase / tol.)" for n in ran]
    rows = []
    for key, value in m["fp32"]["geant4_distances"].items():
        row = [key, fmt(_ratio(value))]
        for e in ran.values():
            increase, tolerance = _ratio(e["geant4"]["increase"][key]), _ratio(e["geant4"]["tolerance"][key])
            cell = fmt(increase / tolerance, 2) if tolerance > 0 else f"{fmt(increase)} (tol. 0)"
            row.append(cell + ("" if increase <= tolerance else " FAIL"))
        rows.append(row)
    return header, rows


# ------------------------------------------------------------------ the document


def build_blocks(results: dict, figures: dict[str, list[tuple[str, str]]], sensitivity: list | None = None,
                 comparison: str | None = None) -> list[tuple]:
    """The report as blocks; ``figures``: section -> [(png file name, caption)]."""
    b = [("h", 1, f"3DGAN reduced-precision study ({results['created'][:10]})"),
         ("p", f"`{results['command']}` on {results['machine']['cpu_model']}, "
               f"{results['machine']['threads_used']} threads; {results['elapsed_s']:.0f} s. "
               f"{results['quick'][0].upper()}{results['quick'][1:]}.")]
    b.append(("h", 2, "Verdict"))
    for model in results["models"]:
        m = results["models"][model]
        grown = f", up to {m['paired_stages'][-1]} where unresolved" if m.get("paired_stages") else ""
        b += [("p", f"Model **{model}** ({m['showers']} paired showers{grown}, {m['inputs']}):"),
              ("ul", verdict_lines(results, model))]
        if results["models"][model]["stale_tolerances"]:
            b.append(("p", f"Warning: {results['models'][model]['stale_tolerances']}"))
    left_out = results["settings"].get("left_out") or []
    if left_out:
        b.append(("p", f"Not in this run: {', '.join(left_out)} (their builds tune for minutes; name them in "
                       "`--variants`, or `--variants all`)."))
    b.append(("p", "Faster: the 95% interval of the speed-up over FP32 lies above 1 (at the largest batch size); "
                   "slower: below 1. Keeps the physics: every paired shift against its own FP32 model within the "
                   "physics requirement table (verdict/requirements.toml) and, for the default model, not "
                   "farther from Geant4 than FP32 beyond Geant4's own null (verdict/geant4_null.toml). Known "
                   "failures are registered in verdict/known_failures.toml."))
    if "tradeoff" in figures:
        b += _images(figures["tradeoff"])
    b += _machine_blocks(results)
    for model in results["models"]:
        b += _model_blocks(results, model, figures.get(model, []))
    b.append(("h", 2, "The paper's comparison"))
    for line in paper_comparison(results):
        if line.startswith("- ") and b[-1][0] == "ul":
            b[-1][1].append(line[2:])
        else:
            b.append(("ul", [line[2:]]) if line.startswith("- ") else ("p", line))
    b.append(("h", 2, "Layer-wise sensitivity"))
    b += sensitivity or [("p", "No cached layer-sensitivity sweep for these models (`quant.sensitivity` caches one "
                               "per model, precision and runtime: `python -m quant sensitivity`).")]
    if comparison:
        b += [("h", 2, "Compared with an earlier report"), ("pre", comparison)]
    return b


def _images(items) -> list[tuple]:
    return [("img", name, caption) for name, caption in items]


def _machine_blocks(results: dict) -> list[tuple]:
    m, s = results["machine"], results["software"]
    rows = [["CPU", m["cpu_model"]], ["ISA flags", " ".join(m["isa_flags"]) or "none of interest"],
            ["logical CPUs / threads used", f"{m['logical_cpus']} / {m['threads_used']}"], ["platform", m["platform"]]]
    rows += [[name, version or "not installed"] for name, version in s.items()]
    return [("h", 2, "Machine and software"), ("table", ["", ""], rows)]


def _model_blocks(results: dict, model: str, figures) -> list[tuple]:
    m = results["models"][model]
    b = [("h", 2, f"Model {model}")]
    ref = m["reference"]
    bins = ", ".join(f"{e:g}" for e in m["edges_gev"])
    stages = m.get("paired_stages")
    grows = (f" A paired verdict that cannot tell grows its sample, as `pytest validation` does, to "
             f"{' then '.join(map(str, stages))} showers (same inputs extended); the variant table says at which "
             "size it was decided." if stages else "")
    b.append(("p", f"{m['showers']} showers per variant, {m['inputs']}; energy bins {bins} GeV.{grows} "
                   + (f"Geant4 reference: {ref['source']}." if ref else "Paired checks only (no Geant4 comparison "
                                                                         "for this model).")))
    b += [("h", 3, "Variants"), ("table", *variant_table(results, model)),
          ("p", "Op coverage: layers or ops per precision, from each variant's op report. Size: the saved variant "
                "on disk. vs Geant4 per core: median Geant4 CPU s/event over the variant's CPU s/shower "
                "(wall s/shower at the largest batch x threads), range over energy bins.")]
    b += [("h", 3, "Physics against FP32 (paired)"), ("table", *paired_table(results, model)),
          ("p", "Each cell: the largest |shift| over energy bins, variant minus FP32 for the same latent vectors and "
                "energies, in units of its tolerance; above 1 fails.")]
    g4 = geant4_table(results, model)
    if g4:
        b += [("h", 3, "Physics against Geant4"), ("table", *g4),
              ("p", "FP32: its distance to the Geant4 reference. Variants: how much farther (negative: closer) "
                    "they are than FP32, in units of the tolerance; above 1 fails.")]
    failures = [(n, e) for n, e in _ran(m).items() if not e["keeps_physics"]]
    if failures:
        b.append(("h", 3, "What breaks, or cannot be told at this sample size"))
        for name, e in failures:
            lines = e["paired"]["failures"] + (e["geant4"]["failures"] if e.get("geant4") else [])
            known = e["paired"].get("known_failure") or (e.get("geant4") or {}).get("known_failure")
            b.append(("p", f"**{name}**" + (f" (known failure: {known})" if known else "") + ":"))
            b.append(("pre", "\n".join(lines[:8] + ([f"... and {len(lines) - 8} more"] if len(lines) > 8 else []))))
    if figures:
        b += [("h", 3, "Figures")] + _images(figures)
    return b


# ------------------------------------------------------------------ layer-wise sensitivity (quant.sensitivity)

def sensitivity_blocks(found: list[tuple] | None) -> list[tuple] | None:
    """Blocks of the cached layer-sensitivity sweeps that :func:`report.figures.write_sensitivity_figures` found and
    drew: (label, precision, runtime, sweep or the error reading it, figure file). None when there are none (the
    report then says how to make one)."""
    if not found:
        return None
    from quant import sensitivity_report

    blocks = []
    for label, precision, runtime, sweep, name in found:
        if isinstance(sweep, Exception):
            blocks.append(("p", f"{label}, {precision} on {runtime}: cached sweep unreadable ({sweep})"))
            continue
        blocks.append(("h", 3, f"{label}: {precision} on {runtime}"))
        blocks += markdown_blocks(sensitivity_report.format_table(sweep))
        blocks.append(("img", name, f"Layer sensitivity of {label} to {precision} on {runtime}: |shift| / "
                                    "tolerance per layer assignment, and speed-up"))
    return blocks or None
