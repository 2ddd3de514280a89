#!/usr/bin/env python3
"""Checks the JSON of a tiny `pyramidion-bench summarize` run (ctest
bench.summarize_runs_every_variant_mode_and_sweep): every variant in both modes with positive
times, the budget batch of make_batches' rule, the paired ratios, and the sweep's fits."""
import json
import sys

d = json.load(open(sys.argv[1]))
errors = []
names = ["tiny-vanilla fp32", "tiny-vanilla bf16", "tiny-vanilla int8",
         "tiny-deep-pyramidion fp32", "tiny-deep-pyramidion bf16", "tiny-deep-pyramidion int8"]
expected_batch = max(1, d["max_tokens"] // (d["source_length"] + d["beam"] * d["target_length"]))
for mode, batch in (("one", 1), ("budget", expected_batch)):
    m = d["modes"][mode]
    if m["batch"] != batch:
        errors.append(f"{mode}: batch {m['batch']}, expected {batch}")
    got = [v["variant"] for v in m["variants"]]
    if got != names:
        errors.append(f"{mode}: variants {got}")
    for v in m["variants"]:
        if len(v["seconds"]) != d["reps"] or min(v["seconds"]) <= 0:
            errors.append(f"{mode} {v['variant']}: seconds {v['seconds']}")
        if abs(v["tokens_per_s"] - v["docs_per_s"] * d["target_length"]) > 1e-6 * v["tokens_per_s"]:
            errors.append(f"{mode} {v['variant']}: tokens/s is not docs/s x T")
        own = v["vs_own_fp32"]["median"]
        if v["weights"] == "fp32" and own != 0:
            errors.append(f"{mode} {v['variant']}: a ratio against itself")
        if v["weights"] != "fp32" and not (v["vs_own_fp32"]["min"] <= own <= v["vs_own_fp32"]["max"] and own > 0):
            errors.append(f"{mode} {v['variant']}: vs own fp32 {v['vs_own_fp32']}")
    base = m["variants"][0]["vs_baseline"]
    if base["median"] != 1.0:
        errors.append(f"{mode}: the baseline against itself is {base}")
if d["modes"]["budget"]["documents"] != expected_batch:
    errors.append("budget: documents is not one budget batch")
sweep = d["sweep"]
if sweep["lengths"] != [16, 32] or len(sweep["points"]) != 2 * 2:
    errors.append(f"sweep: {sweep['lengths']}, {len(sweep['points'])} points")
for name in ("tiny-vanilla fp32", "tiny-deep-pyramidion fp32"):
    if sweep["fits"].get(name, {}).get("time_per_doubling", 0) <= 0:
        errors.append(f"sweep: no time fit for {name}")
if errors:
    print("\n".join(errors))
    sys.exit(1)
print("ok")
