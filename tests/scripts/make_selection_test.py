#!/usr/bin/env python3
"""Tests of scripts/make_selection.py (the selection task's generator, docs/selection.md): every window
holds the markers exactly once, around a sentence of the same paper; windows are consecutive
sentences of their paper; the output is deterministic by seed; markers in the input are removed; bad
options are refused. Run: python3 tests/scripts/make_selection_test.py [path/to/make_selection.py]"""
import json
import os
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPT = os.path.join(HERE, "..", "..", "scripts", "make_selection.py")
OPEN, CLOSE = "\u27e6", "\u27e7"


def paper(split, p, sentences=60):
    body = [f"In {split} paper {p} sentence {s} says w{s} x{s} y{s} z{s} and more words." for s in range(sentences)]
    if p == 0:
        body[3] = f"A stray {OPEN} marker and a {CLOSE} in the text of {split} paper 0 sentence 3 ok."
    return {"article_id": f"{split}-paper-{p}", "article_text": body, "abstract_text": ["<S> unused </S>"]}


class MakeSelection(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.data = os.path.join(cls.tmp.name, "data")
        os.makedirs(cls.data)
        cls.papers = {}
        for split in ("train", "valid", "test"):
            with open(os.path.join(cls.data, split + ".jsonl"), "w", encoding="utf-8") as f:
                for p in range(4):
                    record = paper(split, p)
                    cls.papers[record["article_id"]] = record["article_text"]
                    f.write(json.dumps(record, ensure_ascii=False) + "\n")

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def run_script(self, out, *args, check=True):
        cmd = [sys.executable, SCRIPT, "--data", self.data, "--out", out, "--tokens", "200", "--short-tokens", "40",
               "--train", "30", "--short-windows", "20", "--valid", "10", "--test", "10", *args]
        return subprocess.run(cmd, check=check, capture_output=True, text=True)

    def read(self, out, split):
        with open(os.path.join(out, split + ".jsonl"), encoding="utf-8") as f:
            return [json.loads(line) for line in f]

    def test_markers_once_around_a_sentence_of_the_same_paper(self):
        out = os.path.join(self.tmp.name, "a")
        self.run_script(out)
        for split, expected in (("train", 50), ("valid", 10), ("test", 10)):
            windows = self.read(out, split)
            self.assertEqual(len(windows), expected, split)
            self.assertEqual(len({w["article_id"] for w in windows}), expected, "ids are unique")
            for w in windows:
                text = "\n".join(w["article_text"])
                self.assertEqual(text.count(OPEN), 1, w["article_id"])
                self.assertEqual(text.count(CLOSE), 1, w["article_id"])
                self.assertEqual(w["paper_id"].split("-")[0], split, "windows of a split come from its papers")
                body = [" ".join(s.replace(OPEN, " ").replace(CLOSE, " ").split()) for s in self.papers[w["paper_id"]]]
                first = w["first_sentence"]
                marked = w["article_text"][w["passage_index"]]
                self.assertEqual(marked, f"{OPEN} {w['passage']} {CLOSE}")
                self.assertEqual(w["passage"], body[first + w["passage_index"]], "the passage is the paper's sentence")
                unmarked = list(w["article_text"])
                unmarked[w["passage_index"]] = w["passage"]
                self.assertEqual(unmarked, body[first:first + len(unmarked)], "consecutive sentences of the paper")
                self.assertEqual(w["abstract_text"], [f"<S> {w['passage']} </S>"])
                self.assertTrue(8 <= len(w["passage"].split()) <= 30)

    def test_window_sizes_and_passage_position(self):
        out = os.path.join(self.tmp.name, "sizes")
        self.run_script(out)
        train = self.read(out, "train")
        lengths = sorted(len("\n".join(w["article_text"])) for w in train)
        # 20 short windows (budget 40 x 3.8 = 152 characters) and 30 long ones (760).
        self.assertTrue(all(n <= 152 for n in lengths[:20]), lengths[:20])
        self.assertTrue(all(600 < n <= 760 for n in lengths[20:]), lengths[20:])
        for w in self.read(out, "test"):
            end = len("\n".join(w["article_text"][:w["passage_index"] + 1]))
            self.assertLessEqual(end, 200 * 3.0, "the passage ends within tokens x min-chars-per-token")

    def test_deterministic_by_seed(self):
        a, b, c = (os.path.join(self.tmp.name, n) for n in ("s1", "s1again", "s2"))
        self.run_script(a, "--seed", "1")
        self.run_script(b, "--seed", "1")
        self.run_script(c, "--seed", "2")
        for split in ("train", "valid", "test", "manifest"):
            name = split + (".json" if split == "manifest" else ".jsonl")
            with open(os.path.join(a, name), "rb") as fa, open(os.path.join(b, name), "rb") as fb:
                self.assertEqual(fa.read(), fb.read(), name)
        self.assertNotEqual(self.read(a, "test"), self.read(c, "test"))
        # One split's count does not change another's windows.
        d = os.path.join(self.tmp.name, "fewer_train")
        self.run_script(d, "--seed", "1", "--train", "5")
        self.assertEqual(self.read(a, "test"), self.read(d, "test"))
        with open(os.path.join(a, "manifest.json"), encoding="utf-8") as f:
            manifest = json.load(f)
        self.assertEqual(manifest["markers"], [OPEN, CLOSE])
        self.assertEqual(manifest["splits"]["train"]["windows"], 50)

    def test_bad_options_and_inputs_are_refused(self):
        out = os.path.join(self.tmp.name, "bad")
        r = self.run_script(out, "--min-words", "40", "--max-words", "10", check=False)
        self.assertEqual(r.returncode, 2)
        self.assertIn("--min-words <= --max-words", r.stderr)
        r = self.run_script(out, "--min-words", "25", "--max-words", "30", check=False)  # no sentence that long
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("sentence of 25-30 words", r.stderr)
        r = subprocess.run([sys.executable, SCRIPT, "--data", os.path.join(self.tmp.name, "none"), "--out", out],
                           capture_output=True, text=True)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("train.jsonl is missing", r.stderr)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1].endswith(".py"):
        SCRIPT = sys.argv.pop(1)
    unittest.main()
