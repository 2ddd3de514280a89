#!/usr/bin/env python3
"""Checks pyramidion's layering: every #include in src/ and include/pyramidion/ names a layer at or
below the including file's own. The layers, bottom to top, their folders and their public headers
are read from the table between <!-- layers:begin --> and <!-- layers:end --> in
docs/architecture.md, so that the documented rule is the checked rule.

  scripts/check_layers.py [ROOT]      exit 0 when the tree keeps the rule; 1 with every violation
  scripts/check_layers.py --self-test checks that a tree breaking the rule is caught
"""
import pathlib
import re
import sys
import tempfile

INCLUDE = re.compile(r'^\s*#\s*include\s*[<"]([^>"]+)[>"]', re.MULTILINE)


def read_layers(root):
    """[(layer, folder, [public headers])] from docs/architecture.md, bottom to top."""
    text = (root / "docs" / "architecture.md").read_text()
    table = text.split("<!-- layers:begin -->")[1].split("<!-- layers:end -->")[0]
    layers = []
    for row in table.strip().splitlines()[2:]:  # header and separator rows first
        cells = [c.strip() for c in row.strip().strip("|").split("|")]
        headers = re.findall(r"`([\w.]+\.h)`", cells[2])
        layers.append((cells[0], cells[1].strip("`"), headers))
    return layers


def check(root):
    root = pathlib.Path(root)
    layers = read_layers(root)
    rank = {name: i for i, (name, _, _) in enumerate(layers)}
    header_layer = {}
    problems = []
    for name, folder, headers in layers:
        if folder != "src/" + name:
            problems.append(f"docs/architecture.md: layer {name} lives in {folder}, not src/{name}")
        for h in headers:
            if h in header_layer:
                problems.append(f"docs/architecture.md: {h} is listed under {header_layer[h]} and {name}")
            header_layer[h] = name
    public = sorted(p.name for p in (root / "include" / "pyramidion").glob("*.h"))
    for h in public:
        if h not in header_layer:
            problems.append(f"include/pyramidion/{h}: in no layer of docs/architecture.md")
    for h in header_layer:
        if h not in public:
            problems.append(f"docs/architecture.md: {h} is not a header of include/pyramidion")
    for d in sorted(p for p in (root / "src").iterdir() if p.is_dir()):
        if d.name not in rank:
            problems.append(f"src/{d.name}: a folder that is no layer of docs/architecture.md")

    files = [(p, p.relative_to(root / "src").parts[0]) for p in (root / "src").rglob("*")
             if p.suffix in (".h", ".cpp", ".cu") and len(p.relative_to(root / "src").parts) > 1]
    files += [(root / "include" / "pyramidion" / h, header_layer[h]) for h in public if h in header_layer]
    for path, layer in sorted(files):
        if layer not in rank:
            continue
        for included in INCLUDE.findall(path.read_text()):
            parts = included.split("/")
            if parts[0] == "pyramidion" and len(parts) == 2:
                used = header_layer.get(parts[1])
            elif len(parts) > 1 and parts[0] in rank:
                used = parts[0]
            else:
                continue  # a system or third-party header
            if used is not None and rank[used] > rank[layer]:
                problems.append(f"{path.relative_to(root)}: {layer} includes {included}, of the higher layer {used}")
    return problems


def self_test():
    with tempfile.TemporaryDirectory() as tmp:
        root = pathlib.Path(tmp)
        (root / "docs").mkdir()
        (root / "docs" / "architecture.md").write_text(
            "<!-- layers:begin -->\n| layer | folder | public headers | what |\n|---|---|---|---|\n"
            "| util | `src/util` | `device.h` | x |\n| ops | `src/ops` | `topk.h` | y |\n<!-- layers:end -->\n")
        (root / "include" / "pyramidion").mkdir(parents=True)
        (root / "include" / "pyramidion" / "device.h").write_text("#include <string>\n")
        (root / "include" / "pyramidion" / "topk.h").write_text('#include <pyramidion/device.h>\n')
        for layer in ("util", "ops"):
            (root / "src" / layer).mkdir(parents=True)
        (root / "src" / "ops" / "topk.cpp").write_text('#include "util/text.h"\n#include <pyramidion/topk.h>\n')
        (root / "src" / "util" / "text.cpp").write_text('#include "util/text.h"\n')
        assert check(root) == [], check(root)
        (root / "src" / "util" / "bad.cpp").write_text('#include "ops/tournament.h"\n')
        (root / "include" / "pyramidion" / "device.h").write_text("#include <pyramidion/topk.h>\n")
        found = check(root)
        assert len(found) == 2 and "src/util/bad.cpp: util includes ops/tournament.h" in found[1], found
        (root / "include" / "pyramidion" / "extra.h").write_text("\n")
        assert any("extra.h: in no layer" in p for p in check(root)), check(root)
    print("check_layers.py: self-test passed (a clean tree passes; upward includes and unlisted headers are caught)")
    return 0


def main(argv):
    if argv[1:] == ["--self-test"]:
        return self_test()
    root = pathlib.Path(argv[1] if len(argv) > 1 else pathlib.Path(__file__).resolve().parent.parent)
    problems = check(root)
    for p in problems:
        print(p)
    if not problems:
        print(f"check_layers.py: {root}: every include of src/ and include/pyramidion/ keeps the layers")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
