#!/usr/bin/env python3
"""Prints the main job's side-by-side report (markdown) from results/main/<variant>/.

Reads, per variant: metrics.jsonl (pyramidion-train), train_ms.txt and summarize_ms.txt (wall
times measured by scripts/run.sh), summaries.jsonl (pyramidion-summarize), rouge.json
(pyramidion-evaluate) and latest/config.json. Standard library only.
"""
import json
import os
import sys

VARIANTS = ["deep-pyramidion", "blockwise"]


def load_jsonl(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def variant_stats(root, name):
    d = os.path.join(root, name)
    metrics = load_jsonl(os.path.join(d, "metrics.jsonl"))
    train = [m for m in metrics if "loss" in m]
    valid = [m for m in metrics if "valid_loss" in m]
    summaries = load_jsonl(os.path.join(d, "summaries.jsonl"))
    rouge = json.load(open(os.path.join(d, "rouge.json"), encoding="utf-8"))
    config = json.load(open(os.path.join(d, "latest", "config.json"), encoding="utf-8"))
    train_s = int(open(os.path.join(d, "train_ms.txt")).read()) / 1000
    summarize_s = int(open(os.path.join(d, "summarize_ms.txt")).read()) / 1000
    pooled = [k for k in config.get("pooled_lengths", []) if k > 0]
    memory = min([config["max_source_length"]] + pooled)
    return {
        "steps": train[-1]["step"] if train else 0,
        "train_loss": train[-1]["loss"] if train else float("nan"),
        "valid_loss": valid[-1]["valid_loss"] if valid else float("nan"),
        "train_s": train_s,
        "train_tok_s": sum(m["tokens_per_s"] for m in train) / max(1, len(train)),
        "docs": len(summaries),
        "summarize_s": summarize_s,
        "docs_per_s": len(summaries) / summarize_s if summarize_s > 0 else float("nan"),
        "source_tok_s": sum(s["source_tokens"] for s in summaries) / summarize_s if summarize_s > 0 else float("nan"),
        "summary_tokens": sum(s["summary_tokens"] for s in summaries) / max(1, len(summaries)),
        "rouge": {m: rouge[m]["f1"] for m in ("rouge1", "rouge2", "rougeL", "rougeLsum")},
        "stemmer": rouge.get("use_stemmer"),
        "memory": memory,
        "source": config["max_source_length"],
    }


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else "results/main"
    s = {v: variant_stats(root, v) for v in VARIANTS}
    dp, bw = s["deep-pyramidion"], s["blockwise"]
    out = []
    out.append("# Main job: DeepPyramidion vs blockwise on ACLSum (small models, CPU)\n")
    out.append(f"Both: {dp['steps']} updates on the 100 training papers (sources cut to {dp['source']} tokens), "
               f"then beam-4 summaries of {dp['docs']} test papers, ROUGE F1 (x100, stemming "
               f"{'on' if dp['stemmer'] else 'off'}, mean and 95% bootstrap interval).\n")
    out.append("| | deep-pyramidion | blockwise | blockwise / deep-pyramidion |")
    out.append("|:---|---:|---:|---:|")

    def row(label, a, b, fmt="{:.1f}", ratio=True):
        r = f"{b / a:.2f}x" if ratio and a else ""
        out.append(f"| {label} | {fmt.format(a)} | {fmt.format(b)} | {r} |")

    row("training wall time (s)", dp["train_s"], bw["train_s"])
    row("training tokens/s", dp["train_tok_s"], bw["train_tok_s"], "{:.0f}", ratio=False)
    row("final training loss", dp["train_loss"], bw["train_loss"], "{:.3f}", ratio=False)
    row("validation loss (NLL/token)", dp["valid_loss"], bw["valid_loss"], "{:.3f}", ratio=False)
    row("summarization wall time (s)", dp["summarize_s"], bw["summarize_s"])
    row("documents/s", dp["docs_per_s"], bw["docs_per_s"], "{:.2f}", ratio=False)
    row("source tokens/s", dp["source_tok_s"], bw["source_tok_s"], "{:.0f}", ratio=False)
    row("mean summary tokens", dp["summary_tokens"], bw["summary_tokens"], "{:.0f}", ratio=False)
    row("cross-attention memory (rows)", dp["memory"], bw["memory"], "{:.0f}")
    for m, label in (("rouge1", "ROUGE-1"), ("rouge2", "ROUGE-2"), ("rougeL", "ROUGE-L"), ("rougeLsum", "ROUGE-Lsum")):
        a, b = dp["rouge"][m], bw["rouge"][m]
        out.append(f"| {label} F1 | {100 * a['mid']:.2f} [{100 * a['low']:.2f}, {100 * a['high']:.2f}] | "
                   f"{100 * b['mid']:.2f} [{100 * b['low']:.2f}, {100 * b['high']:.2f}] | |")
    out.append("")
    out.append(f"Highlight page (what DeepPyramidion's pooling layers kept): {os.path.join(root, 'highlight.html')}")
    print("\n".join(out))


if __name__ == "__main__":
    main()
