#!/usr/bin/env python3
"""Writes an arXiv-format JSON-lines file of N documents made of the bundled papers' real
sentences (data/aclsum), for measuring preprocessing and training start-up at arXiv size
(docs/data.md, "Measured at arXiv size").

Each document is a different sample: it takes the sentence count and section layout of a random
bundled paper (250 papers, ~4,400 words each, close to arXiv's mean) and fills them with sentences
drawn at random from all the papers' bodies; its abstract is 4-8 sentences drawn from all the
abstracts, wrapped in "<S> ... </S>" as the release (Cohan et al. 2018) does. The records carry the
release's fields: article_id, article_text, abstract_text, labels (null), section_names and
sections (the body again, split by section: as in the release, about twice the text per record).

  scripts/make_arxiv_like.py --docs 20000 --out /tmp/arxiv-20k.jsonl [--seed 1]

Deterministic for a given --seed and --docs. Prints the bytes written.
"""
import argparse
import json
import pathlib
import random
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent


def load_papers():
    papers = []
    for split in ("train", "valid", "test"):
        with open(ROOT / "data" / "aclsum" / f"{split}.jsonl", encoding="utf-8") as f:
            for line in f:
                if line.strip():
                    papers.append(json.loads(line))
    return papers


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--docs", type=int, required=True, help="documents to write (>= 1)")
    parser.add_argument("--out", required=True, help="output JSON-lines file")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    if args.docs < 1:
        parser.error(f"--docs must be >= 1, got {args.docs}")
    papers = load_papers()
    body = [s for p in papers for s in p["article_text"] if s.strip()]
    abstract = [s.strip() for p in papers for s in p["abstract_text"] if s.strip()]
    abstract = [s.replace("<S>", "").replace("</S>", "").strip() for s in abstract]
    layouts = [[len(sec) for sec in p["sections"]] or [len(p["article_text"])] for p in papers]
    names = [p["section_names"] or ["body"] for p in papers]
    rng = random.Random(args.seed)
    written = 0
    out = pathlib.Path(args.out)
    tmp = out.with_name(out.name + ".partial")
    with open(tmp, "w", encoding="utf-8") as f:
        for i in range(args.docs):
            t = rng.randrange(len(papers))
            sections = [[body[rng.randrange(len(body))] for _ in range(max(1, n))] for n in layouts[t]]
            record = {
                "article_id": f"gen.{i:07d}",
                "article_text": [s for sec in sections for s in sec],
                "abstract_text": [f"<S> {abstract[rng.randrange(len(abstract))]} </S>"
                                  for _ in range(rng.randint(4, 8))],
                "labels": None,
                "section_names": list(names[t][: len(sections)]) + ["section"] * (len(sections) - len(names[t])),
                "sections": sections,
            }
            line = json.dumps(record, ensure_ascii=False) + "\n"
            f.write(line)
            written += len(line.encode("utf-8"))
    tmp.replace(out)  # complete or absent
    print(f"{out}: {args.docs} documents, {written} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
