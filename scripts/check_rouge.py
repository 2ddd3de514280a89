#!/usr/bin/env python3
"""Checks pyramidion-evaluate against the rouge-score package (google-research/rouge).

Builds summary pairs from the bundled ACLSum data (data/aclsum/*.jsonl: abstracts against lead
sentences, other abstracts and perturbed copies) plus edge cases (empty, punctuation only,
non-ASCII, numbers, repeated words, multi-line), scores them with the C++ tool (--per-document)
and with rouge_score.rouge_scorer.RougeScorer, with and without Porter stemming, and fails if any
per-document precision, recall or F1, or any corpus mean, differs by more than the tolerance. Also
compares the tokens (and stems) of every distinct word of the corpus with rouge-score's tokenizer.

    python scripts/check_rouge.py --tool build/tools/pyramidion-evaluate
"""
import argparse
import glob
import json
import os
import random
import re
import subprocess
import sys
import tempfile

from rouge_score import rouge_scorer, tokenize
from nltk.stem import porter

MEASURES = ["rouge1", "rouge2", "rougeL", "rougeLsum"]


def read_arxiv(path):
    """(id, abstract, article sentences) of an arXiv-format file, the abstract converted as
    DocumentReader does (include/pyramidion/data.h): markers stripped, one sentence per line."""
    records = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            if not line.strip():
                continue
            r = json.loads(line)
            sentences = []
            for s in r["abstract_text"]:
                s = s.strip()
                if s.startswith("<S>"):
                    s = s[3:]
                if s.endswith("</S>"):
                    s = s[:-4]
                s = s.strip().replace("\n", " ").replace("\r", " ")
                if s:
                    sentences.append(s)
            article = [s.strip() for s in r["article_text"] if s.strip()]
            records.append((str(r["article_id"]), "\n".join(sentences), article))
    return records


def perturb(text, rng):
    words = text.split()
    kind = rng.randrange(4)
    if kind == 0:  # drop words
        words = [w for w in words if rng.random() > 0.3]
    elif kind == 1:  # shuffle locally
        for i in range(0, len(words) - 1, 3):
            if rng.random() < 0.5:
                words[i], words[i + 1] = words[i + 1], words[i]
    elif kind == 2:  # duplicate words and change case
        words = [w.upper() if rng.random() < 0.2 else w for w in words for _ in range(1 + (rng.random() < 0.2))]
    else:  # sentences in reverse order
        return "\n".join(reversed(text.split("\n")))
    return " ".join(words)


EDGE_CASES = [
    ("", "the cat sat on the mat"),
    ("the cat sat on the mat", ""),
    ("", ""),
    ("... !!! ---", "?? ,,"),
    ("the cat", "... !!!"),
    ("Caf\u00e9 na\u00efve r\u00e9sum\u00e9 \u00fcber stra\u00dfe", "cafe naive resume uber strasse"),
    ("\u0130stanbul \u212aelvin \u03b1\u03b2\u03b3 \u4e2d\u6587 emoji \U0001F600 ok", "istanbul kelvin ok \u4e2d\u6587"),
    ("In 2019, 3.5% of 1,000 runs took 12ms.", "in 2019 35 of 1000 runs took 12 ms"),
    ("the the the the the", "the cat the dog the"),
    ("a a a b b", "a b a b a b"),
    ("generalizations relational conditional hopping happiness", "general relate condition hop happy"),
    ("dying lying skies news innings proceed", "die lie sky news inning proceeded"),
    ("Tabs\tand\nnew\nlines\r\nand CRLF", "tabs and new lines and crlf"),
    ("first sentence here.\nsecond sentence there.\n\nthird one", "second sentence here\nfirst one there"),
    ("a\na", "a a"),
    ("a b f g h\na c h i e", "a b c d e"),
    ("word", "word"),
    ("x" * 50, "x" * 50 + " y"),
    ("snake_case camelCase kebab-case dot.case", "snake case camel case kebab case"),
    ("\n\n", "\n"),
]


def build_pairs(records, rng):
    pairs = []  # (id, prediction, reference)
    n = len(records)
    for i, (rid, abstract, article) in enumerate(records):
        pairs.append((rid + "/lead3", "\n".join(article[:3]), abstract))
        pairs.append((rid + "/other", records[(i + 1 + rng.randrange(n - 1)) % n][1], abstract))
        pairs.append((rid + "/perturbed", perturb(abstract, rng), abstract))
    for k, (prediction, reference) in enumerate(EDGE_CASES):
        pairs.append(("edge/%d" % k, prediction, reference))
    return pairs


def write_jsonl(path, rows):
    with open(path, "w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")


def run_tool(tool, args):
    result = subprocess.run([tool] + args, capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit("check_rouge: %s %s failed (exit %d):\n%s" % (tool, " ".join(args), result.returncode, result.stderr))
    return result.stdout


def compare(tool, tmp, pairs, references_path, use_stemmer, label):
    """Max |difference| over every per-document P/R/F and every corpus mean."""
    predictions_path = os.path.join(tmp, "predictions.jsonl")
    write_jsonl(predictions_path, [{"id": i, "summary": p, "score": -1.0} for i, p, _ in pairs])
    if references_path is None:
        references_path = os.path.join(tmp, "references.jsonl")
        write_jsonl(references_path, [{"id": i, "summary": r} for i, _, r in pairs])
    per_document = os.path.join(tmp, "per_document.jsonl")
    report_path = os.path.join(tmp, "report.json")
    run_tool(tool, ["--predictions", predictions_path, "--references", references_path, "--bootstrap", "100",
                    "--per-document", per_document, "--json", report_path,
                    "--stemmer" if use_stemmer else "--no-stemmer"])
    ours = {}
    with open(per_document, encoding="utf-8") as f:
        for line in f:
            row = json.loads(line)
            ours[row["id"]] = row
    with open(report_path, encoding="utf-8") as f:
        report = json.load(f)
    if len(ours) != len(pairs) or report["documents"] != len(pairs):
        sys.exit("check_rouge: %s: the tool scored %d documents, expected %d" % (label, len(ours), len(pairs)))
    scorer = rouge_scorer.RougeScorer(MEASURES, use_stemmer=use_stemmer)
    worst, where = 0.0, ""
    sums = {m: [0.0, 0.0, 0.0] for m in MEASURES}
    for pid, prediction, reference in pairs:
        theirs = scorer.score(reference, prediction)  # score(target, prediction)
        for m in MEASURES:
            t = theirs[m]
            for k, (name, value) in enumerate([("precision", t.precision), ("recall", t.recall), ("f1", t.fmeasure)]):
                sums[m][k] += value
                d = abs(ours[pid][m][name] - value)
                if d > worst:
                    worst, where = d, "%s %s.%s: ours %r, rouge-score %r" % (pid, m, name, ours[pid][m][name], value)
    for m in MEASURES:
        for k, name in enumerate(["precision", "recall", "f1"]):
            d = abs(report[m][name]["mid"] - sums[m][k] / len(pairs))
            if d > worst:
                worst, where = d, "corpus mean %s.%s" % (m, name)
    print("check_rouge: %-34s %4d pairs, max |difference| %.3g%s" % (label, len(pairs), worst,
                                                                      (" (" + where + ")") if worst else ""))
    return worst


def compare_tokens(tool, tmp, words):
    """Tokens of each word with stemming: ours (--tokenize) against rouge-score's tokenizer."""
    path = os.path.join(tmp, "words.txt")
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(words) + "\n")
    ours = run_tool(tool, ["--tokenize", path, "--stemmer"]).split("\n")
    stemmer = porter.PorterStemmer()
    mismatches = []
    for k, word in enumerate(words):
        theirs = " ".join(tokenize.tokenize(word, stemmer))
        if ours[k] != theirs:
            mismatches.append("%r: ours %r, rouge-score %r" % (word, ours[k], theirs))
    print("check_rouge: tokens and Porter stems of %d distinct corpus words: %d differ%s" % (
        len(words), len(mismatches), (" (" + "; ".join(mismatches[:5]) + ")") if mismatches else ""))
    return len(mismatches)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tool", required=True, help="path to pyramidion-evaluate")
    parser.add_argument("--data", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data", "aclsum"))
    parser.add_argument("--tolerance", type=float, default=1e-6)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    files = sorted(glob.glob(os.path.join(args.data, "*.jsonl")))
    if not files:
        sys.exit("check_rouge: no *.jsonl in %s (scripts/get_data.sh fetches ACLSum)" % args.data)
    records = [r for path in files for r in read_arxiv(path)]
    rng = random.Random(args.seed)
    pairs = build_pairs(records, rng)
    words = set()
    for _, abstract, article in records:
        for text in [abstract] + article:
            words.update(re.findall(r"[A-Za-z0-9]+", text))
    words = sorted(words)

    worst, bad_tokens = 0.0, 0
    with tempfile.TemporaryDirectory(prefix="check_rouge_") as tmp:
        for use_stemmer in (False, True):
            label = "stemming %s:" % ("on" if use_stemmer else "off")
            worst = max(worst, compare(args.tool, tmp, pairs, None, use_stemmer, label))
        # References read straight from an arXiv-format file (DocumentReader's conversion).
        test = os.path.join(args.data, "test.jsonl")
        if os.path.exists(test):
            test_records = read_arxiv(test)
            lead = [(rid, "\n".join(article[:3]), abstract) for rid, abstract, article in test_records]
            worst = max(worst, compare(args.tool, tmp, lead, test, True, "arXiv references, stemming on:"))
        bad_tokens = compare_tokens(args.tool, tmp, words)
    if worst > args.tolerance or bad_tokens:
        print("check_rouge: FAILED (tolerance %g)" % args.tolerance)
        return 1
    print("check_rouge: OK, max |difference| %.3g <= %g" % (worst, args.tolerance))
    return 0


if __name__ == "__main__":
    sys.exit(main())
