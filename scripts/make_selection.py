#!/usr/bin/env python3
"""Makes the selection task of docs/selection.md from papers in the arXiv/PubMed JSON-lines format.

Each output record is a *window* of one paper's body: consecutive sentences, about --tokens tokens
long, in which one sentence (the *marked passage*) is wrapped in two marker symbols that occur
nowhere else:

    ... previous sentence.
    \u27e6 The marked sentence of the same paper. \u27e7
    next sentence ...

The record's summary is the marked sentence itself, so only a model that keeps the passage's tokens
through every pooling layer can write it. Records are in the arXiv/PubMed format that pyramidion's
tools read ("article_text": the window's sentences, one per line; "abstract_text": ["<S> passage
</S>"]), with the fields below added for evaluation and checks.

    scripts/make_selection.py --data data/aclsum --out data/selection-2048 --tokens 2048 --seed 1

reads data/aclsum/{train,valid,test}.jsonl and writes data/selection-2048/{train,valid,test}.jsonl
(windows of the bundled train, valid and test papers respectively) and manifest.json (the options,
the markers and the counts). The output depends only on the input files and the options: the same
seed gives the same bytes; each split has its own random stream (seeded by seed and split name), so
changing one split's count leaves the others unchanged.

Sizes are in characters, not tokens: the tokenizer is trained on this output (pyramidion-train
reserves the markers as pieces of their own), so it does not exist yet. A window holds about
--tokens x --chars-per-token characters (3.8: the median of the 4000-piece tokenizer's windows of
the bundled ACL papers, docs/selection.md), so that most windows fill the model's max_source_length
(and are cut there), and the passage is a sentence of --min-words to --max-words words that ends
within the first --tokens x --min-chars-per-token characters (3.0: below the fewest characters per
token of any window seen), so that it survives that cut (the evaluation counts the windows where it
did not).

The training split also holds --short-windows windows of --short-tokens tokens (64), shuffled in
with the long ones: short enough that no pooling layer of the selection configs drops anything
(their first layer keeps 1024), they keep the decoder copying a marked passage from the full input
(about 88 windows per batch), while the long windows, 4 per batch, are where the pooling layers must
learn to keep it; 88000 short windows against 4000 long ones make about half the batches of each
kind. Validation and test windows are all --tokens long. (scripts/selection.sh first trains on a
set of short windows only, made by this script with --tokens 64 --short-windows 0: see
docs/selection.md for why.)

Record fields added to the arXiv format:
    article_id       "<split>-<index>" (unique)
    paper_id         the source paper's article_id
    first_sentence   index in the paper's article_text of the window's first sentence
    passage_index    index of the marked sentence in the window's article_text
    passage          the marked sentence (as in the paper, normalized spaces)
    markers          [open, close]
"""
import argparse
import hashlib
import json
import os
import random
import sys
import tempfile

OPEN = "\u27e6"   # MATHEMATICAL LEFT WHITE SQUARE BRACKET
CLOSE = "\u27e7"  # MATHEMATICAL RIGHT WHITE SQUARE BRACKET
SPLITS = ("train", "valid", "test")


def normalize(sentence):
    """The sentence with the markers removed (they must occur nowhere else) and runs of whitespace
    turned into one space."""
    return " ".join(sentence.replace(OPEN, " ").replace(CLOSE, " ").split())


def read_papers(path):
    """(article_id, [sentence, ...]) of every record with a non-empty body, in file order."""
    papers = []
    with open(path, encoding="utf-8") as f:
        for line_number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as e:
                raise SystemExit(f"make_selection.py: {path}:{line_number}: not JSON ({e})")
            sentences = [normalize(s) for s in record.get("article_text") or [] if isinstance(s, str)]
            sentences = [s for s in sentences if s]
            if sentences:
                papers.append((str(record.get("article_id", f"{os.path.basename(path)}:{line_number}")), sentences))
    return papers


def split_rng(seed, split):
    digest = hashlib.sha256(f"{seed}:{split}".encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "little"))


def make_window(rng, paper_id, sentences, tokens, options):
    """One window of `sentences` of about `tokens` tokens, or None when it has no sentence that can be
    marked."""
    budget = int(tokens * options.chars_per_token)
    mark_end = tokens * options.min_chars_per_token  # the passage ends within the first `tokens` tokens
    lengths = [len(s) + 1 for s in sentences]  # + the newline that joins them
    total = sum(lengths)
    # The first sentence: any one from which the window fills its budget (any, for a short paper).
    last_start = 0
    if total > budget:
        tail = 0
        for i in range(len(sentences) - 1, -1, -1):
            tail += lengths[i]
            if tail >= budget:
                last_start = i
                break
    start = rng.randint(0, last_start)
    end, used = start, 0
    while end < len(sentences) and used + lengths[end] <= budget:
        used += lengths[end]
        end += 1
    end = max(end, start + 1)
    window = sentences[start:end]
    # Candidates: sentences of a usable length that end (markers included) within mark_end characters.
    candidates, offset = [], 0
    for i, s in enumerate(window):
        words = len(s.split())
        end = offset + len(s) + len(OPEN) + len(CLOSE) + 2
        if end <= mark_end and options.min_words <= words <= options.max_words:
            candidates.append(i)
        offset += len(s) + 1
    if not candidates:
        return None
    index = rng.choice(candidates)
    passage = window[index]
    text = list(window)
    text[index] = f"{OPEN} {passage} {CLOSE}"
    return {
        "article_id": "",
        "article_text": text,
        "abstract_text": [f"<S> {passage} </S>"],
        "paper_id": paper_id,
        "first_sentence": start,
        "passage_index": index,
        "passage": passage,
        "markers": [OPEN, CLOSE],
    }


def make_split(papers, count, rng, options, split, tokens):
    if not papers:
        raise SystemExit(f"make_selection.py: the {split} split has no paper with a body")
    windows, attempts = [], 0
    while len(windows) < count:
        attempts += 1
        if attempts > 100 * count + 1000:
            raise SystemExit(f"make_selection.py: {split}: found only {len(windows)} of {count} windows with a "
                             f"sentence of {options.min_words}-{options.max_words} words to mark")
        paper_id, sentences = papers[rng.randrange(len(papers))]
        window = make_window(rng, paper_id, sentences, tokens, options)
        if window is not None:
            windows.append(window)
    return windows


def write_atomically(path, text):
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp's 0600 is for secrets; data files get the usual mode
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, help="directory with train.jsonl, valid.jsonl, test.jsonl (arXiv format)")
    p.add_argument("--out", required=True, help="output directory (created)")
    p.add_argument("--tokens", type=int, default=2048, help="window length in tokens (max_source_length)")
    p.add_argument("--chars-per-token", type=float, default=3.8,
                   help="characters per token of the tokenizer (the median of its windows): sets the window size")
    p.add_argument("--min-chars-per-token", type=float, default=3.0,
                   help="the fewest characters per token of any window: the passage ends within --tokens x this")
    p.add_argument("--min-words", type=int, default=8, help="shortest sentence marked, in words")
    p.add_argument("--max-words", type=int, default=20, help="longest sentence marked, in words")
    p.add_argument("--train", type=int, default=4000, help="training windows of --tokens tokens")
    p.add_argument("--short-windows", type=int, default=88000,
                   help="training windows of --short-tokens tokens added to the training split (see above)")
    p.add_argument("--short-tokens", type=int, default=64, help="length of the short training windows")
    p.add_argument("--valid", type=int, default=100, help="validation windows")
    p.add_argument("--test", type=int, default=200, help="test windows")
    p.add_argument("--seed", type=int, default=1)
    options = p.parse_args(argv)
    checks = [(options.tokens >= 16, "--tokens must be >= 16"),
              (options.chars_per_token > 0, "--chars-per-token must be > 0"),
              (0 < options.min_chars_per_token <= options.chars_per_token,
               "need 0 < --min-chars-per-token <= --chars-per-token"),
              (options.short_tokens >= 16, "--short-tokens must be >= 16"),
              (1 <= options.min_words <= options.max_words, "need 1 <= --min-words <= --max-words"),
              (min(options.train, options.valid, options.test, options.short_windows) >= 0,
               "window counts must be >= 0")]
    for ok, message in checks:
        if not ok:
            p.error(message)
    return options


def main(argv=None):
    options = parse_args(argv)
    inputs = {split: os.path.join(options.data, split + ".jsonl") for split in SPLITS}
    for split, path in inputs.items():
        if not os.path.isfile(path):
            raise SystemExit(f"make_selection.py: {path} is missing (scripts/get_data.sh puts the bundled papers there)")
    os.makedirs(options.out, exist_ok=True)
    counts = {}
    for split in SPLITS:
        papers = read_papers(inputs[split])
        rng = split_rng(options.seed, split)
        windows = make_split(papers, getattr(options, split), rng, options, split, options.tokens)
        if split == "train" and options.short_windows:
            # Long and short windows interleaved at random, so that a file prefix is a sample of both.
            windows += make_split(papers, options.short_windows, rng, options, split, options.short_tokens)
            rng.shuffle(windows)
        for i, w in enumerate(windows):
            w["article_id"] = f"{split}-{i:06d}"  # unique (two windows may share a paper and a start)
        write_atomically(os.path.join(options.out, split + ".jsonl"),
                         "".join(json.dumps(w, ensure_ascii=False) + "\n" for w in windows))
        counts[split] = {"windows": len(windows), "papers": len(papers),
                         "papers_used": len({w["paper_id"] for w in windows})}
    manifest = {"generator": "scripts/make_selection.py", "markers": [OPEN, CLOSE],
                "options": {k: v for k, v in sorted(vars(options).items()) if k not in ("data", "out")},
                "splits": counts}
    write_atomically(os.path.join(options.out, "manifest.json"), json.dumps(manifest, ensure_ascii=False, indent=2) + "\n")
    print(f"make_selection.py: {options.out}: " +
          ", ".join(f"{s} {c['windows']} windows of {c['papers_used']} papers" for s, c in counts.items()),
          file=sys.stderr)


if __name__ == "__main__":
    main()
