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

INCLUDE = re.compile(r'^\s*#\s*include\s*([<"])([^>"]+)[>"]', re.MULTILINE)
SOURCES = (".h", ".hpp", ".cuh", ".inl", ".cpp", ".cc", ".cu")
TOP_LEVEL = {"pch.h"}  # the one file allowed directly under src/: the private precompiled header
# Top-level folders of framework-free kernel sources, each part of a layer: they are included as
# "cuda/...", use only that layer and those below, and never a framework header (no LibTorch).
KERNEL_FOLDERS = {"cuda": "ops"}
FRAMEWORK = ("torch/", "ATen/", "c10/", "caffe2/")


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

    files = []
    for p in sorted((root / "src").rglob("*")):
        if p.suffix not in SOURCES:
            continue
        parts = p.relative_to(root / "src").parts
        if len(parts) == 1:
            if parts[0] not in TOP_LEVEL:
                problems.append(f"src/{parts[0]}: a source in no layer (put it in the folder of its layer)")
            continue
        files.append((p, parts[0], False))
    for folder, layer in KERNEL_FOLDERS.items():
        for p in sorted((root / folder).rglob("*")):
            if p.suffix in SOURCES:
                files.append((p, layer, False))
                for _, included in INCLUDE.findall(p.read_text()):
                    if included.startswith(FRAMEWORK):
                        problems.append(f"{p.relative_to(root)}: a framework-free kernel source includes <{included}>")
    files += [(root / "include" / "pyramidion" / h, header_layer[h], True) for h in public if h in header_layer]
    for path, layer, is_public in files:
        if layer not in rank:
            continue
        where = path.relative_to(root)
        for bracket, included in INCLUDE.findall(path.read_text()):
            parts = included.split("/")
            if bracket == '"':
                # Private headers are named by their layer ("ops/tournament.h"), and never from a
                # public header (an application has no src/).
                if is_public:
                    problems.append(f"{where}: a public header includes the private \"{included}\"")
                    continue
                if parts[0] in KERNEL_FOLDERS and len(parts) >= 2:
                    parts = [KERNEL_FOLDERS[parts[0]]] + parts[1:]
                if parts[0] not in rank or len(parts) < 2:
                    problems.append(f"{where}: \"{included}\" names no layer (write \"<layer>/...\")")
                    continue
                used = parts[0]
            elif parts[0] == "pyramidion":
                used = header_layer.get(parts[1]) if len(parts) == 2 else None
                if used is None:
                    problems.append(f"{where}: <{included}> is no public header of a layer")
                    continue
            else:
                continue  # a system or third-party header
            if rank[used] > rank[layer]:
                problems.append(f"{where}: {layer} includes {included}, of the higher layer {used}")
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
        assert len(found) == 2, found
        assert "include/pyramidion/device.h: util includes pyramidion/topk.h, of the higher layer ops" in found, found
        assert "src/util/bad.cpp: util includes ops/tournament.h, of the higher layer ops" in found, found
        (root / "include" / "pyramidion" / "device.h").write_text('#include "util/text.h"\n')
        (root / "src" / "util" / "bad.cpp").write_text('#include "text.h"\n#include "../ops/x.h"\n')
        (root / "src" / "ops" / "kernel.cuh").write_text('#include <pyramidion/nothere.h>\n')
        (root / "src" / "stray.cpp").write_text("\n")
        (root / "cuda").mkdir()
        (root / "cuda" / "k.cu").write_text('#include <ATen/ATen.h>\n#include "ops/math.h"\n')
        (root / "src" / "util" / "uses_kernels.cpp").write_text('#include "cuda/k.h"\n')
        (root / "include" / "pyramidion" / "extra.h").write_text("\n")
        found = "\n".join(check(root))
        for expected in ("device.h: a public header includes the private", "bad.cpp: \"text.h\" names no layer",
                         "bad.cpp: \"../ops/x.h\" names no layer", "kernel.cuh: <pyramidion/nothere.h> is no public",
                         "src/stray.cpp: a source in no layer", "extra.h: in no layer",
                         "cuda/k.cu: a framework-free kernel source includes <ATen/ATen.h>",
                         "src/util/uses_kernels.cpp: util includes cuda/k.h, of the higher layer ops"):
            assert expected in found, (expected, found)
    print("check_layers.py: self-test passed (a clean tree passes; upward, unprefixed and private-from-public "
          "includes, stray sources, unlisted headers and LibTorch in cuda/ are caught)")
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
