#!/usr/bin/env python3
"""The selection task's curves as a picture (docs/selection.md): span recall per pooling layer
against updates, one line per model, one panel per pooling layer, from the curve reports that
scripts/selection.sh writes (curve-<model>.json: pyramidion-bench selection over a model's
checkpoints, named <model>-<updates>). Writes an SVG; needs nothing beyond Python.

  python3 scripts/plot_selection.py --out docs/images/selection-curves.svg \
      results/selection/2048/curve-slow-scorer.json results/selection/2048/curve-frozen.json

A model's line is named by the report's file (curve-<model>.json) unless given as NAME=PATH.
A dashed line at 1 / 2^layer marks random selection when each pooling layer halves its input (the
1/8 models; not `sixteenth`, whose last layer keeps a quarter)."""
import argparse
import json
import os
import re
import sys
from xml.sax.saxutils import escape

COLOURS = ["#1b6ac9", "#d1495b", "#2e933c", "#8d5ab0", "#e08a00", "#555555", "#00a6a6", "#a0522d"]
PANEL_W, PANEL_H, MARGIN_L, MARGIN_R, MARGIN_T, MARGIN_B, GAP = 260, 200, 48, 12, 28, 40, 24


def read_curve(name, path):
    """[(updates, [recall per layer])], sorted by updates, from a curve report."""
    report = json.load(open(path, encoding="utf-8"))
    points = []
    for m in report["models"]:
        match = re.fullmatch(r"(.+)-(\d+)", m["name"])
        if not match:
            raise ValueError(f"{path}: model '{m['name']}' is not named <model>-<updates>")
        points.append((int(match.group(2)), [float(r) for r in m["span_recall"]]))
    if not points:
        raise ValueError(f"{path}: no models")
    layers = {len(r) for _, r in points}
    if len(layers) != 1:
        raise ValueError(f"{path}: checkpoints with different numbers of pooling layers {sorted(layers)}")
    return name, sorted(points)


def svg(curves, title):
    layers = len(curves[0][1][0][1])
    if any(len(points[0][1]) != layers for _, points in curves):
        raise ValueError("the curves have different numbers of pooling layers")
    x_max = max(u for _, points in curves for u, _ in points)
    x_max = max(500, -(-x_max // 500) * 500)
    width = layers * (MARGIN_L + PANEL_W + MARGIN_R) + (layers - 1) * GAP
    legend_h = 18 * len(curves) + 8
    height = MARGIN_T + PANEL_H + MARGIN_B + legend_h + 24
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}" font-family="DejaVu Sans, sans-serif" font-size="11">',
           f'<rect width="{width}" height="{height}" fill="white"/>',
           f'<text x="{width / 2}" y="16" text-anchor="middle" font-size="13">{escape(title)}</text>']
    for layer in range(layers):
        x0 = layer * (MARGIN_L + PANEL_W + MARGIN_R + GAP) + MARGIN_L
        y0 = MARGIN_T + 8

        def px(u):
            return x0 + PANEL_W * u / x_max

        def py(r):
            return y0 + PANEL_H * (1 - r)
        out.append(f'<rect x="{x0}" y="{y0}" width="{PANEL_W}" height="{PANEL_H}" fill="none" stroke="#888"/>')
        for r in (0.25, 0.5, 0.75, 1.0):
            out.append(f'<line x1="{x0}" x2="{x0 + PANEL_W}" y1="{py(r):.1f}" y2="{py(r):.1f}" stroke="#e4e4e4"/>')
        for r in (0, 0.25, 0.5, 0.75, 1.0):
            out.append(f'<text x="{x0 - 4}" y="{py(r) + 4:.1f}" text-anchor="end">{int(r * 100)}%</text>')
        step = 1000 if x_max > 3000 else 500
        for u in range(0, x_max + 1, step):
            out.append(f'<text x="{px(u):.1f}" y="{y0 + PANEL_H + 14}" text-anchor="middle">{u}</text>')
        out.append(f'<text x="{x0 + PANEL_W / 2}" y="{y0 + PANEL_H + 30}" text-anchor="middle">updates</text>')
        out.append(f'<text x="{x0 + PANEL_W / 2}" y="{y0 - 4}" text-anchor="middle">pooling layer {layer + 1}: '
                   f'span recall</text>')
        chance = 0.5 ** (layer + 1)
        out.append(f'<line x1="{x0}" x2="{x0 + PANEL_W}" y1="{py(chance):.1f}" y2="{py(chance):.1f}" '
                   f'stroke="#999" stroke-dasharray="4 3"/>')
        for i, (name, points) in enumerate(curves):
            colour = COLOURS[i % len(COLOURS)]
            coords = " ".join(f"{px(u):.1f},{py(r[layer]):.1f}" for u, r in points)
            out.append(f'<polyline points="{coords}" fill="none" stroke="{colour}" stroke-width="2"/>')
            for u, r in points:
                out.append(f'<circle cx="{px(u):.1f}" cy="{py(r[layer]):.1f}" r="2.5" fill="{colour}">'
                           f'<title>{escape(name)}, {u} updates: {100 * r[layer]:.1f}%</title></circle>')
    y = MARGIN_T + 8 + PANEL_H + MARGIN_B + 12
    for i, (name, _) in enumerate(curves):
        colour = COLOURS[i % len(COLOURS)]
        out.append(f'<line x1="{MARGIN_L}" x2="{MARGIN_L + 24}" y1="{y + 18 * i}" y2="{y + 18 * i}" '
                   f'stroke="{colour}" stroke-width="2"/>')
        out.append(f'<text x="{MARGIN_L + 30}" y="{y + 18 * i + 4}">{escape(name)}</text>')
    out.append(f'<line x1="{MARGIN_L + 260}" x2="{MARGIN_L + 284}" y1="{y}" y2="{y}" stroke="#999" '
               f'stroke-dasharray="4 3"/>')
    out.append(f'<text x="{MARGIN_L + 290}" y="{y + 4}">random selection</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("curves", nargs="+", help="curve-<model>.json, or NAME=PATH")
    parser.add_argument("--out", required=True, help="the SVG to write")
    parser.add_argument("--title", default="Selection task: span recall against updates")
    args = parser.parse_args(argv)
    curves = []
    for spec in args.curves:
        name, path = spec.split("=", 1) if "=" in spec else (None, spec)
        if name is None:
            base = os.path.basename(path)
            match = re.fullmatch(r"curve-(.+)\.json", base)
            name = match.group(1) if match else base
        if not os.path.isfile(path):
            parser.error(f"no such curve report: {path}")
        curves.append(read_curve(name, path))
    text = svg(curves, args.title)
    tmp = args.out + ".tmp"
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, args.out)
    print(f"plot_selection.py: {len(curves)} curves, {len(curves[0][1][0][1])} pooling layers -> {args.out}")


if __name__ == "__main__":
    try:
        main(sys.argv[1:])
    except ValueError as e:
        sys.exit(f"plot_selection.py: {e}")
