#!/usr/bin/env python3
"""Fails on calls that must not appear in pyramidion's C++ (src/, include/, tools/, tests/), with
the reason and the replacement:

  std::filesystem::remove_all  PyTorch wheels (2.11 among them; pytorch/pytorch#133437) export
                               their own statically linked copy, which the dynamic linker binds our
                               calls to and which crashes; use detail::remove_tree (util/output_file.h)

  scripts/check_banned_calls.py [ROOT]   exit 0 when none is found; 1 with every file:line
"""
import pathlib
import re
import sys

BANNED = {
    re.compile(r"\bremove_all\s*\("): "std::filesystem::remove_all crashes when a PyTorch wheel's "
    "copy interposes (pytorch/pytorch#133437): use pyramidion::detail::remove_tree",
}
SOURCES = (".h", ".hpp", ".cuh", ".cpp", ".cc", ".cu")


def main():
    root = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else pathlib.Path(__file__).parent.parent)
    problems = []
    for folder in ("src", "include", "tools", "tests"):
        for path in sorted((root / folder).rglob("*")):
            if path.suffix not in SOURCES:
                continue
            for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
                for pattern, why in BANNED.items():
                    if pattern.search(line) and not line.lstrip().startswith("//"):
                        problems.append(f"{path.relative_to(root)}:{number}: {why}")
    print("\n".join(problems) if problems else "no banned call")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
