#!/usr/bin/env python3
"""Checks that every CUDA kernel's registers fit its largest launch, from ptxas' own report.

    scripts/check_registers.py --nvcc /usr/local/cuda/bin/nvcc --arch 90 [ROOT]
    scripts/check_registers.py --self-test

Compiles cuda/topk_kernels.cu for one architecture as the library does (--fmad=false), with
ptxas -v, and reads each entry function's "Used N registers". A block of T threads needs N * T of
the 65536 registers of a multiprocessor (every architecture from sm_50 to sm_100): a kernel launched
with more fails with "too many resources requested for launch". The launches' largest blocks are
those of cuda/topk_kernels.cu: the tournament 1024 threads (__launch_bounds__(1024) makes ptxas keep
it within 64 registers), every other kernel 256. Spills (local memory) are reported, not refused.
Exit 0 when all fit; 1 naming each that does not; 2 when nvcc fails.
"""
import argparse
import pathlib
import re
import subprocess
import sys

REGISTERS_PER_SM = 65536
# Each kernel's largest block (threads), from its launcher in cuda/topk_kernels.cu.
MAX_THREADS = {"tournament_kernel": 1024}
DEFAULT_THREADS = 256

ENTRY = re.compile(r"Compiling entry function '([^']+)' for '(sm_\d+)'")
USED = re.compile(r"Used (\d+) registers")
SPILL = re.compile(r"(\d+) bytes spill stores")


def kernel_name(mangled):
    """The unqualified kernel name in a mangled one (..._17tournament_kernelIfEEv...)."""
    i = 0
    while i < len(mangled):  # length-prefixed names: 10pyramidion 4cuda 17tournament_kernel
        m = re.match(r"(\d+)", mangled[i:])
        if not m:
            i += 1
            continue
        start = i + len(m.group(1))
        name = mangled[start:start + int(m.group(1))]
        if name.endswith("_kernel"):
            return name
        i = start + int(m.group(1)) if name.isidentifier() else start
    return mangled


def parse(report):
    """[(kernel, arch, registers, spill bytes)] from ptxas -v output."""
    kernels, current, spill = [], None, 0
    for line in report.splitlines():
        m = ENTRY.search(line)
        if m:
            current, spill = (kernel_name(m.group(1)), m.group(2)), 0
            continue
        m = SPILL.search(line)
        if m and current:
            spill = int(m.group(1))
        m = USED.search(line)
        if m and current:
            kernels.append((current[0], current[1], int(m.group(1)), spill))
            current = None
    return kernels


def check(kernels):
    problems = []
    for name, arch, regs, _ in kernels:
        threads = MAX_THREADS.get(name, DEFAULT_THREADS)
        if regs * threads > REGISTERS_PER_SM:
            problems.append(f"{name} ({arch}): {regs} registers x {threads} threads = {regs * threads} > "
                            f"{REGISTERS_PER_SM}: its largest launch would fail")
    return problems


def self_test():
    report = """ptxas info    : Compiling entry function '_ZN10pyramidion4cuda17tournament_kernelIfEEvPKT_' for 'sm_90'
ptxas info    : Function properties for _ZN10pyramidion4cuda17tournament_kernelIfEEvPKT_
    0 bytes stack frame, 8 bytes spill stores, 8 bytes spill loads
ptxas info    : Used 72 registers, used 1 barriers, 256 bytes smem
ptxas info    : Compiling entry function '_ZN10pyramidion4cuda14combine_kernelIffEEvPKT_' for 'sm_90'
ptxas info    : Used 40 registers, used 1 barriers, 1024 bytes smem
"""
    kernels = parse(report)
    assert kernels == [("tournament_kernel", "sm_90", 72, 8), ("combine_kernel", "sm_90", 40, 0)], kernels
    problems = check(kernels)
    assert len(problems) == 1 and problems[0].startswith("tournament_kernel (sm_90): 72 registers x 1024"), problems
    assert check([("combine_kernel", "sm_90", 255, 0)]) == []
    assert check([("tournament_kernel", "sm_90", 64, 0)]) == []
    print("check_registers.py: self-test passed (a kernel over its launch's registers is caught)")
    return 0


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("root", nargs="?", default=str(pathlib.Path(__file__).resolve().parent.parent))
    ap.add_argument("--nvcc", default="nvcc")
    ap.add_argument("--arch", default="90", help="one architecture, e.g. 90")
    ap.add_argument("--self-test", action="store_true")
    args = ap.parse_args(argv[1:])
    if args.self_test:
        return self_test()
    root = pathlib.Path(args.root)
    cmd = [args.nvcc, "-std=c++17", "--expt-relaxed-constexpr", "--fmad=false", f"-arch=sm_{args.arch}", "-cubin",
           "-Xptxas", "-v", "-I", str(root / "src"), "-I", str(root), "-o", "/dev/null",
           str(root / "cuda" / "topk_kernels.cu")]
    run = subprocess.run(cmd, capture_output=True, text=True)
    if run.returncode != 0:
        print(f"check_registers.py: nvcc failed ({run.returncode}):\n{run.stderr[-4000:]}")
        return 2
    kernels = parse(run.stdout + run.stderr)
    if not kernels:
        print("check_registers.py: no kernel in ptxas' report")
        return 2
    for name, arch, regs, spill in sorted(set(kernels)):
        threads = MAX_THREADS.get(name, DEFAULT_THREADS)
        print(f"{name:28s} {arch}  {regs:3d} registers x {threads:4d} threads = {regs * threads:6d}"
              + (f"  ({spill} bytes spilled)" if spill else ""))
    problems = check(kernels)
    for p in problems:
        print(p)
    if not problems:
        print(f"check_registers.py: the {len(kernels)} kernel instances fit their largest launches on sm_{args.arch}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
