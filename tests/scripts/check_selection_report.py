#!/usr/bin/env python3
"""Checks a pyramidion-bench selection report of tests/scripts/selection_pipeline.sh against the
test windows it read: every model evaluated every window, its means are those of its windows (span
recall over the windows whose passage it read), recall and F1 lie in [0, 1], the exact matches are
the windows whose prediction equals the reference, the time ratios are paired per chunk, the
highlight pages show the marked windows, and the scorers' drift table is consistent (a checkpoint
against itself: cosine 1; trained against frozen scorers: moved)."""
import json
import os
import statistics
import sys


def main(report_path, windows_path, pages_dir):
    report = json.load(open(report_path, encoding="utf-8"))
    windows = [json.loads(line) for line in open(windows_path, encoding="utf-8")]
    names = [m["name"] for m in report["models"]]
    assert names == ["trained", "hard", "frozen"], names
    assert report["windows"] == len(windows) == 6
    first_chunks = report["models"][0]["chunk_seconds"]
    assert len(first_chunks) == 2, first_chunks  # 6 windows in chunks of 4
    for m in report["models"]:
        assert m["pooled_lengths"] == [32, 16], m["pooled_lengths"]
        assert m["windows_evaluated"] == 6 and len(m["windows"]) == 6
        assert [w["id"] for w in m["windows"]] == [w["article_id"] for w in windows]
        read = [w for w in m["windows"] if w["passage_read"]]
        assert m["passages_read"] == len(read)
        assert len(read) >= 4, f"{m['name']}: only {len(read)} of 6 passages inside 64 tokens"
        for layer in range(2):
            mean = statistics.fmean(w["span_recall"][layer] for w in read)
            assert abs(mean - m["span_recall"][layer]) < 1e-12, (m["name"], layer, mean, m["span_recall"])
        for w in m["windows"]:
            assert all(0 <= r <= 1 for r in w["span_recall"]) and 0 <= w["token_f1"] <= 1
            if w["exact_match"]:
                assert w["prediction"] == w["reference"], w
        assert abs(statistics.fmean(w["token_f1"] for w in m["windows"]) - m["token_f1"]) < 1e-12
        assert abs(sum(w["exact_match"] for w in m["windows"]) / 6 - m["exact_match"]) < 1e-12
        ratios = [a / b for a, b in zip(first_chunks, m["chunk_seconds"])]
        assert abs(statistics.median(ratios) - m["speedup_median"]) < 1e-9, (ratios, m["speedup_median"])
        assert m["hard_at_inference"] == (m["name"] == "hard")
        page = open(os.path.join(pages_dir, m["name"] + ".html"), encoding="utf-8").read()
        assert page.count("<section") == 2, "two windows per page"
        assert "\u27e6" in page and "class=\"k2\"" in page, "the markers and the last layer's marks are shown"
    # The scorers' drift table: "hard" is "trained"'s checkpoint (cosine 1, the same norms); "frozen"
    # kept its scorers at their initialisation, from which 4 updates moved "trained"'s.
    scorers = {m["name"]: m["scorers"] for m in report["models"]}
    assert all(len(v) == 2 for v in scorers.values()), scorers
    for layer in range(2):
        trained, hard, frozen = (scorers[n][layer] for n in ("trained", "hard", "frozen"))
        assert trained["cosine_previous"] is None and trained["cosine_first"] is None, trained
        assert abs(hard["cosine_previous"] - 1) < 1e-12 and abs(hard["norm"] - trained["norm"]) < 1e-12, hard
        assert abs(frozen["cosine_previous"] - frozen["cosine_first"]) < 1e-12, frozen
        assert 0 < frozen["cosine_first"] < 1 - 1e-6, frozen
    print("check_selection_report.py: ok")


if __name__ == "__main__":
    main(*sys.argv[1:])
