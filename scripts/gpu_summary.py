#!/usr/bin/env python3
"""The summary table of scripts/gpu_check.sh, from the files it left in its output folder.

    scripts/gpu_summary.py results/gpu > results/gpu/summary.md

Reads environment.txt, stages.tsv (stage, status, seconds, note), figures.json (pyramidion-bench's
JSON reports "topk" and "model", python/benchmarks/topk_bench.py's "python_topk"; a file of that
name beside it is read when figures.json lacks it); what is missing is reported as not run. Prints
markdown: the machine, each stage's status, time and note (tests' counts, skips, the reason a stage
was skipped or cut), and the figures against the targets of issue 10: the operator's
forward + backward within 3x of a device copy of x; DeepPyramidion against blockwise at source 8192
in bf16: training step >= 2x, beam-4 generation >= 4.5x.
"""
import json
import os
import sys


def read(folder, name):
    path = os.path.join(folder, name)
    if not os.path.exists(path):
        return None
    with open(path, encoding="utf-8", errors="replace") as f:
        return f.read()


def load_json(folder, name):
    """figures.json's entry `name` (topk, model, python_topk), else the file name.json."""
    try:
        figures = json.loads(read(folder, "figures.json") or "{}")
    except json.JSONDecodeError:
        figures = {}
    if figures.get(name) is not None:
        return figures[name]
    text = read(folder, name + ".json")
    try:
        return json.loads(text) if text else None
    except json.JSONDecodeError:
        return None


def ms(v):
    return "-" if v is None else (f"{v:.3f}" if v < 1 else f"{v:.2f}" if v < 10 else f"{v:.1f}")


def verdict(value, target, higher_is_better):
    if value is None:
        return "not measured"
    met = value >= target if higher_is_better else value <= target
    return "met" if met else "**missed**"


def machine_lines(folder):
    text = read(folder, "environment.txt") or ""
    facts = dict(line.split(" ", 1) for line in text.splitlines() if " " in line)
    lines = [f"- GPU: {facts.get('gpu', 'unknown')}, {facts.get('arch', '?')}; driver {facts.get('driver', '?')}",
             f"- nvcc {facts.get('nvcc', '?')}; PyTorch {facts.get('torch', '?')} (CUDA {facts.get('torch_cuda', '?')}, "
             f"sees the GPU: {facts.get('torch_sees_gpu', '?')}); {facts.get('cores', '?')} cores; "
             f"deadline {facts.get('deadline', '?')}; source {facts.get('source', '?')}"]
    lines += [f"- missing: {line.split(' ', 1)[1]}" for line in text.splitlines() if line.startswith("missing ")]
    return lines


def stage_rows(folder):
    rows = []
    for line in (read(folder, "stages.tsv") or "").splitlines():
        parts = line.split("\t")
        if len(parts) == 4:
            name, status, secs, note = parts
            shown = status if status in ("ok", "skipped") else f"**{status.upper()}**"
            rows.append(f"| {name} | {shown} | {secs} s | {note.strip() or '-'} |")
    return rows


def topk_rows(folder):
    rep = load_json(folder, "topk")
    if not rep or not rep.get("results"):
        return ["| operator | not run | | |"], None, "(not run)"
    by = {r["method"]: r for r in rep["results"]}
    soft, copy = by.get("soft"), by.get("copy")
    rows = [f"| {m} | {ms(r['fwd_ms_median'])} | {ms(r['bwd_ms_median'])} | {ms(r['total_ms_median'])} |"
            for m, r in by.items()]
    ratio = soft["total_ms_median"] / copy["total_ms_median"] if soft and copy else None
    first = rep["results"][0]
    return rows, ratio, f"b={first['b']} n={first['n']} k={first['k']} d={first['d']}"


def model_figures(folder):
    rep = load_json(folder, "model")
    if not rep:
        return [], {}, "(not run)"
    rows, figures = [], {}
    by = {(p["variant"], p["precision"]): p for p in rep.get("precisions", [])}
    for r in rep["results"]:
        by.setdefault((r["variant"], "fp32"), {"train_step_ms": r["train_step_ms"], "beam4_ms": r["beam4_ms"]})
    for (variant, precision), p in sorted(by.items()):
        rows.append(f"| {variant} | {precision} | {ms(p.get('train_step_ms'))} | {ms(p.get('beam4_ms'))} |")
    for precision in ("fp32", "bf16"):
        base, deep = by.get(("blockwise", precision)), by.get(("deep-pyramidion", precision))
        if base and deep and deep.get("train_step_ms") and deep.get("beam4_ms"):
            figures[precision] = (base["train_step_ms"] / deep["train_step_ms"], base["beam4_ms"] / deep["beam4_ms"])
    sizes = f"source {rep.get('source_length')}, target {rep.get('target_length')}, batch {rep.get('batch')}"
    return rows, figures, sizes


def python_rows(folder):
    """python/benchmarks/topk_bench.py's JSON: the operator from Python, the C++ API, pure PyTorch."""
    rep = load_json(folder, "python_topk")
    if not rep or not rep.get("results"):
        return ["| not run | | |"], "(not run)"
    rows = [f"| {r['method']} | {ms(r['median_s'] * 1000)} | {r['ratio_to_python']:.3f}x |" for r in rep["results"]]
    st = rep.get("settings", {})
    return rows, f"b={st.get('b')} n={st.get('n')} k={st.get('k')} d={st.get('d')} {st.get('dtype', '')}"


def main():
    folder = sys.argv[1] if len(sys.argv) > 1 else "results/gpu"
    out = ["## GPU check (scripts/gpu_check.sh)", ""] + machine_lines(folder) + [""]
    out += ["| stage | status | time | note |", "|:---|:---|---:|:---|"]
    out += (stage_rows(folder) or ["| (none) | not run | | |"]) + [""]
    rows, ratio, sizes = topk_rows(folder)
    out += [f"### Operator, {sizes}, fp32 (medians)", "",
            "| method | fwd ms | bwd ms | fwd+bwd ms |", "|:---|---:|---:|---:|"] + rows
    out += ["", f"soft / copy of x = {'-' if ratio is None else f'{ratio:.2f}x'} "
                f"(target <= 3x: {verdict(ratio, 3.0, False)})", ""]
    rows, figures, sizes = model_figures(folder)
    out += [f"### Models at {sizes} (medians)", "",
            "| variant | precision | training step ms | beam-4 generation ms |", "|:---|:---|---:|---:|"]
    out += rows or ["| not run | | | |"]
    out += [""]
    for precision in ("fp32", "bf16"):
        train, beam = figures.get(precision, (None, None))
        target = " (targets in bf16: training >= 2x, beam-4 >= 4.5x)" if precision == "bf16" else ""
        out.append(f"- DeepPyramidion vs blockwise, {precision}: training "
                   f"{'-' if train is None else f'{train:.2f}x'}, beam-4 generation "
                   f"{'-' if beam is None else f'{beam:.2f}x'}{target}"
                   + (f": training {verdict(train, 2.0, True)}, beam-4 {verdict(beam, 4.5, True)}"
                      if precision == "bf16" else ""))
    rows, sizes = python_rows(folder)
    out += ["", f"### From Python (docs/python.md), {sizes}, forward + backward (medians)", "",
            "| method | ms | time / python |", "|:---|---:|---:|"] + rows
    print("\n".join(out))


if __name__ == "__main__":
    main()
