#!/usr/bin/env python3
"""Tests of scripts/plot_selection.py (the selection curves' picture): each model's points land where
their updates and recalls say, in every pooling layer's panel, in the order of the updates; the
legend names the models; reports it cannot read are refused with the offending name.
Run: python3 tests/scripts/plot_selection_test.py [path/to/plot_selection.py]"""
import json
import os
import re
import subprocess
import sys
import tempfile
import unittest
import xml.etree.ElementTree as ET

HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPT = os.path.join(HERE, "..", "..", "scripts", "plot_selection.py")
SVG = "{http://www.w3.org/2000/svg}"


def write_curve(path, model, points):
    """points: {updates: [recall per layer]}, written in a shuffled order (the script sorts)."""
    models = [{"name": f"{model}-{u}", "span_recall": r} for u, r in sorted(points.items(), reverse=True)]
    with open(path, "w", encoding="utf-8") as f:
        json.dump({"models": models}, f)


class PlotSelection(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.addCleanup(self.tmp.cleanup)

    def run_script(self, *args):
        return subprocess.run([sys.executable, SCRIPT, *args], capture_output=True, text=True)

    def test_points_are_placed_by_updates_and_recall(self):
        a = {500: [0.5, 0.25], 1000: [0.75, 0.5], 2000: [1.0, 0.0]}
        b = {500: [0.5, 0.125], 2000: [0.25, 0.75]}
        pa, pb = os.path.join(self.tmp.name, "curve-slow.json"), os.path.join(self.tmp.name, "curve-frozen.json")
        write_curve(pa, "slow", a)
        write_curve(pb, "frozen", b)
        out = os.path.join(self.tmp.name, "sub", "curves.svg")
        r = self.run_script("--out", out, pa, f"still={pb}")
        self.assertEqual(r.returncode, 0, r.stderr)
        root = ET.parse(out).getroot()
        panels = [e for e in root.iter(f"{SVG}rect") if e.get("stroke") == "#888"]
        self.assertEqual(len(panels), 2)
        lines = list(root.iter(f"{SVG}polyline"))
        self.assertEqual(len(lines), 4)  # 2 models x 2 layers, panel by panel
        x_max = 2000  # the largest update, a multiple of 500
        for layer in range(2):
            x0, y0 = float(panels[layer].get("x")), float(panels[layer].get("y"))
            w, h = float(panels[layer].get("width")), float(panels[layer].get("height"))
            for line, points in zip(lines[2 * layer:2 * layer + 2], (a, b)):
                got = [tuple(map(float, p.split(","))) for p in line.get("points").split()]
                want = [(x0 + w * u / x_max, y0 + h * (1 - r[layer])) for u, r in sorted(points.items())]
                self.assertEqual(len(got), len(want))
                for g, e in zip(got, want):
                    self.assertAlmostEqual(g[0], e[0], delta=0.06)
                    self.assertAlmostEqual(g[1], e[1], delta=0.06)
            # random selection: 1/2 after the first pooling layer, 1/4 after the second
            dashed = [e for e in root.iter(f"{SVG}line") if e.get("stroke-dasharray") and
                      abs(float(e.get("x1")) - x0) < 1e-6]
            self.assertEqual(len(dashed), 1)
            self.assertAlmostEqual(float(dashed[0].get("y1")), y0 + h * (1 - 0.5 ** (layer + 1)), delta=0.06)
        legend = [t.text for t in root.iter(f"{SVG}text")]
        self.assertIn("slow", legend)
        self.assertIn("still", legend)
        titles = [t.text for t in root.iter(f"{SVG}title")]
        self.assertIn("slow, 1000 updates: 75.0%", titles)

    def test_bad_reports_are_refused_with_the_offending_name(self):
        bad = os.path.join(self.tmp.name, "curve-x.json")
        with open(bad, "w", encoding="utf-8") as f:
            json.dump({"models": [{"name": "trained", "span_recall": [0.5]}]}, f)
        r = self.run_script("--out", os.path.join(self.tmp.name, "o.svg"), bad)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("'trained' is not named <model>-<updates>", r.stderr)
        mixed = os.path.join(self.tmp.name, "curve-y.json")
        write_curve(mixed, "y", {500: [0.5, 0.2], 1000: [0.5]})
        r = self.run_script("--out", os.path.join(self.tmp.name, "o.svg"), mixed)
        self.assertIn("different numbers of pooling layers", r.stderr)
        r = self.run_script("--out", os.path.join(self.tmp.name, "o.svg"), os.path.join(self.tmp.name, "none.json"))
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("no such curve report", r.stderr)
        self.assertFalse(os.path.exists(os.path.join(self.tmp.name, "o.svg")))


if __name__ == "__main__":
    if len(sys.argv) > 1 and not sys.argv[1].startswith("-"):
        SCRIPT = sys.argv.pop(1)
    unittest.main()
