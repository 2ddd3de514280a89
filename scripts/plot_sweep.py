#!/usr/bin/env python3
"""SVG plot of the source-length sweep of `pyramidion-bench summarize --sweep ... --json FILE`.

Two panels, both axes logarithmic: documents/s against the source length, and the peak memory's
growth over the resident memory before the run. One line per variant, its fitted growth per
doubling of the source length in the legend. No dependency beyond Python's standard library.

    python3 scripts/plot_sweep.py sweep.json docs/benchmarks/summarize_sweep.svg
"""
import json
import math
import sys

COLORS = ["#1b6ca8", "#d1495b", "#2e933c", "#edae49", "#6a4c93"]


def panel(x0, y0, w, h, title, ylabel, series, lengths):
    """series: [(name, color, [(x, y)])]; returns SVG elements."""
    ys = [y for _, _, pts in series for _, y in pts if y > 0]
    lo, hi = math.floor(math.log10(min(ys))), math.ceil(math.log10(max(ys)))
    if hi == lo:
        hi += 1
    lx0, lx1 = math.log2(min(lengths)), math.log2(max(lengths))
    def px(x):
        return x0 + (math.log2(x) - lx0) / (lx1 - lx0) * w
    def py(y):
        return y0 + h - (math.log10(y) - lo) / (hi - lo) * h
    out = [f'<rect x="{x0}" y="{y0}" width="{w}" height="{h}" fill="none" stroke="#888"/>',
           f'<text x="{x0 + w / 2}" y="{y0 - 12}" text-anchor="middle" font-size="14">{title}</text>',
           f'<text x="{x0 - 52}" y="{y0 + h / 2}" text-anchor="middle" font-size="12" '
           f'transform="rotate(-90 {x0 - 52} {y0 + h / 2})">{ylabel}</text>',
           f'<text x="{x0 + w / 2}" y="{y0 + h + 36}" text-anchor="middle" font-size="12">source tokens S</text>']
    for x in lengths:
        out.append(f'<line x1="{px(x):.1f}" y1="{y0}" x2="{px(x):.1f}" y2="{y0 + h}" stroke="#eee"/>')
        out.append(f'<text x="{px(x):.1f}" y="{y0 + h + 16}" text-anchor="middle" font-size="11">{x}</text>')
    for e in range(lo, hi + 1):
        y = py(10 ** e)
        out.append(f'<line x1="{x0}" y1="{y:.1f}" x2="{x0 + w}" y2="{y:.1f}" stroke="#eee"/>')
        label = f"{10 ** e:g}"
        out.append(f'<text x="{x0 - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="11">{label}</text>')
    for name, color, pts in series:
        pts = [(x, y) for x, y in pts if y > 0]
        if not pts:
            continue
        path = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in pts)
        out.append(f'<polyline points="{path}" fill="none" stroke="{color}" stroke-width="2"/>')
        for x, y in pts:
            out.append(f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="3.5" fill="{color}"/>')
    return out


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    data = json.load(open(sys.argv[1]))
    sweep = data["sweep"]
    lengths = sweep["lengths"]
    names = []
    for p in sweep["points"]:
        if p["variant"] not in names:
            names.append(p["variant"])
    speed, memory = [], []
    for i, name in enumerate(names):
        pts = [p for p in sweep["points"] if p["variant"] == name]
        fit = sweep["fits"].get(name, {})
        color = COLORS[i % len(COLORS)]
        label = f'{name}: time x{fit.get("time_per_doubling", 0):.2f}, memory x{fit.get("memory_per_doubling", 0):.2f} per doubling'
        speed.append((label, color, [(p["source_length"], p["docs_per_s"] if p["median_seconds"] > 0 else -1) for p in pts]))
        memory.append((label, color, [(p["source_length"], p["peak_extra_bytes"] / 2**20) for p in pts]))
    width, height = 980, 470
    svg = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif">',
           '<rect width="100%" height="100%" fill="white"/>']
    svg += panel(80, 40, 380, 300, "documents/s (batch 1, beam 4, 256 tokens)", "documents/s", speed, lengths)
    svg += panel(580, 40, 380, 300, "peak memory over the resident before the run", "MiB", memory, lengths)
    for i, (label, color, _) in enumerate(speed):
        y = 405 + 18 * i
        svg.append(f'<line x1="80" y1="{y - 4}" x2="104" y2="{y - 4}" stroke="{color}" stroke-width="3"/>')
        svg.append(f'<text x="112" y="{y}" font-size="12">{label}</text>')
    machine = data.get("machine", {})
    svg.append(f'<text x="{width - 10}" y="{height - 8}" text-anchor="end" font-size="10" fill="#666">'
               f'{machine.get("cpu_model", "")}, {machine.get("threads", "")} threads; pyramidion-bench summarize --sweep</text>')
    svg.append("</svg>")
    with open(sys.argv[2], "w") as f:
        f.write("\n".join(svg) + "\n")


if __name__ == "__main__":
    main()
