#!/usr/bin/env python3
"""Converts the ACLSum papers shipped in the PyPI package `aclsum` (0.1.2) to the arXiv/PubMed
JSON-lines format of Cohan et al. 2018 that pyramidion's DocumentReader reads (docs/data.md).

The package's own loader is not imported (it needs `sienna` and reads only the introduction,
abstract and conclusion): this script reads its data files directly.
  aclsum/dataset/{train,val,test}.jsonl    the split: paper ids ("id") in each split
  aclsum/dataset/paper_jsons/<id>.json     the Grobid (S2ORC) parse of each paper: "abstract" and
                                           pdf_parse.body_text[] = {"text", "section", ...}
Each output record:
  article_id      the ACL Anthology id, e.g. "P06-1112"
  title           the paper's title
  article_text    the body (every paragraph of pdf_parse.body_text, in order), split into
                  sentences by the rule-based splitter below
  abstract_text   the author abstract, split the same way, each sentence as "<S> sentence </S>"
  section_names   the body's section headings, in order
  sections        the sentences of each section (article_text, grouped by section_names)
Sentences that are figure debris (is_debris: runs of one-character tokens, e.g. the base64 of
LaTeXiT images) are dropped.
Standard library only. Output files are written atomically (a temporary file, then a rename).

  convert_aclsum.py [--package-dir DIR] [--out data/aclsum]
"""
import argparse
import importlib.util
import json
import os
import re
import statistics
import sys
import tempfile
from pathlib import Path

SPLITS = {"train": "train", "val": "valid", "test": "test"}  # package split -> our file name

# Tokens ending with "." that do not end a sentence (compared in lower case, without the ".").
ABBREVIATIONS = {
    "e.g", "i.e", "cf", "vs", "al", "fig", "figs", "eq", "eqs", "sec", "secs", "tab", "no", "nos",
    "approx", "resp", "ref", "refs", "dr", "prof", "mr", "mrs", "ms", "st", "jr", "sr", "vol",
    "pp", "p", "ch", "alg", "app", "def", "thm", "lem", "prop", "ed", "eds", "u.s", "viz",
}
# A sentence ends at . ! or ? (perhaps followed by closing quotes or brackets), then whitespace,
# then something that can start a sentence: an upper-case letter, a digit, an opening quote or
# bracket.
BOUNDARY = re.compile(r"""([.!?][)"'\]\u201d\u2019]*)\s+(?=[A-Z0-9("'\[\u201c\u2018])""")


def split_sentences(text):
    """Rule-based sentence splitter: enough for scientific prose; never returns empty strings."""
    text = " ".join(text.split())  # one line, single spaces
    sentences, start = [], 0
    for match in BOUNDARY.finditer(text):
        end = match.end(1)
        last_word = text[start:match.start(1) + 1].rsplit(" ", 1)[-1].rstrip(".").lower()
        if last_word in ABBREVIATIONS:
            continue
        if len(last_word) == 1 and last_word.isalpha():  # an initial: "J. Smith", "A. Then"
            continue
        if re.fullmatch(r"\d+", last_word) and text[match.start(1)] == ".":
            # "in Section 3. The ..." ends a sentence, but "1. Introduction" (a list item
            # at the start) does not: split unless the number is the whole sentence so far.
            if start == text.rfind(" ", 0, match.start(1)) + 1:
                continue
        sentence = text[start:end].strip()
        if sentence:
            sentences.append(sentence)
        start = match.end()
    tail = text[start:].strip()
    if tail:
        sentences.append(tail)
    return sentences


def is_debris(sentence, run=30):
    """Grobid's text of figures: base64 from LaTeXiT images ("< l a t e x i t s h a 1 _ b a s e
    6 4 = ...") and plot labels ("q q q q ..."): `run` or more one-character tokens in a row
    (formulas in the text have far shorter runs)."""
    longest = current = 0
    for token in sentence.split():
        current = current + 1 if len(token) == 1 else 0
        longest = max(longest, current)
    return longest >= run


def clean(text):
    # Grobid output can carry lone surrogates from broken PDF text: not encodable as UTF-8.
    return text.encode("utf-8", "replace").decode("utf-8")


def package_dir():
    """The installed `aclsum` package's directory, found without importing it."""
    spec = importlib.util.find_spec("aclsum")
    if spec is None or not spec.submodule_search_locations:
        sys.exit("convert_aclsum: the `aclsum` package is not installed (scripts/get_data.sh installs it)")
    return Path(list(spec.submodule_search_locations)[0])


def convert_paper(paper_id, dataset):
    with open(dataset / "paper_jsons" / f"{paper_id}.json", encoding="utf-8") as f:
        paper = json.load(f)
    section_names, sections = [], []
    for paragraph in paper["pdf_parse"]["body_text"]:
        sentences = [s for s in split_sentences(clean(paragraph["text"])) if not is_debris(s)]
        if not sentences:
            continue
        name = clean(paragraph.get("section") or "").strip()
        if not section_names or name != section_names[-1]:
            section_names.append(name)
            sections.append([])
        sections[-1].extend(sentences)
    abstract = paper.get("abstract") or " ".join(p["text"] for p in paper["pdf_parse"].get("abstract", []))
    return {
        "article_id": paper_id,
        "title": clean(paper.get("title") or ""),
        "article_text": [s for section in sections for s in section],
        "abstract_text": [f"<S> {s} </S>" for s in split_sentences(clean(abstract))],
        "section_names": section_names,
        "sections": sections,
    }


def write_atomically(path, records):
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as f:
            for record in records:
                f.write(json.dumps(record, ensure_ascii=False) + "\n")
            f.flush()
            os.fsync(f.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--package-dir", type=Path, help="the aclsum package directory (default: the installed one)")
    parser.add_argument("--out", type=Path, default=Path("data/aclsum"), help="output directory (default data/aclsum)")
    args = parser.parse_args()
    dataset = (args.package_dir or package_dir()) / "dataset"
    args.out.mkdir(parents=True, exist_ok=True)

    summary = []
    for split, name in SPLITS.items():
        with open(dataset / f"{split}.jsonl", encoding="utf-8") as f:
            ids = [json.loads(line)["id"] for line in f if line.strip()]
        records = [convert_paper(paper_id, dataset) for paper_id in ids]
        for r in records:
            if not r["article_text"] or not r["abstract_text"]:
                sys.exit(f"convert_aclsum: paper {r['article_id']} has an empty body or abstract")
        write_atomically(args.out / f"{name}.jsonl", records)
        body = statistics.median(sum(len(s.split()) for s in r["article_text"]) for r in records)
        abstract = statistics.median(sum(len(s.split()) for s in r["abstract_text"]) - 2 * len(r["abstract_text"])
                                     for r in records)
        summary.append(f"{name} {len(records)} docs (median {body:.0f}/{abstract:.0f} words)")
    print(f"aclsum -> {args.out}: " + ", ".join(summary) + " [body/abstract]")


if __name__ == "__main__":
    main()
