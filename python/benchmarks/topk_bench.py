"""Forward + backward of the successive-halving top-k from Python, side by side in one process with
the same call from C++ and with a pure-PyTorch vectorised formulation of the same algorithm.

    A  python:  pyramidion.soft_topk (torch.ops.pyramidion.successive_halving_topk) + autograd
    B  c++:     pyramidion::successive_halving_topk + torch::autograd::grad, entirely in C++
                (tests/python/cpp_api.cpp, one op call from Python)
    C  pytorch: pyramidion/reference.py (batched sort and gathers, x blended every round) + autograd

Repetitions are interleaved after a warm-up, the order rotating (A B C, B C A, C A B, ...); the
table has the median times and the medians of the per-repetition ratios to A.

    PYTHONPATH=python ~/.cache/pyramidion/venv/bin/python python/benchmarks/topk_bench.py [--b 16 --n 8192 --k 512 --d 512]
        [--reps 5] [--threads N] [--device cpu|cuda[:N]] [--json out.json]
"""
import argparse
import gc
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parent.parent.parent
sys.path.insert(0, str(REPO / "python"))

import pyramidion  # noqa: E402
from pyramidion import reference  # noqa: E402


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--b", type=int, default=16)
    p.add_argument("--n", type=int, default=8192)
    p.add_argument("--k", type=int, default=512)
    p.add_argument("--d", type=int, default=512)
    p.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--threads", type=int, default=0, help="torch.set_num_threads (0: torch's default)")
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (on CUDA each timing ends with a "
                                                   "device synchronize)")
    p.add_argument("--methods", default="python,c++,pytorch")
    p.add_argument("--json", help="also write the results here")
    a = p.parse_args()
    if not (1 <= a.k <= a.n) or min(a.b, a.d, a.reps) < 1:
        p.error(f"need b, d, reps >= 1 and 1 <= k <= n, got b={a.b} n={a.n} k={a.k} d={a.d} reps={a.reps}")
    methods = a.methods.split(",")
    unknown = [m for m in methods if m not in ("python", "c++", "pytorch")]
    if unknown or methods[0] != "python":
        p.error(f"--methods: a list starting with python of python, c++, pytorch; got {a.methods}")
    if a.threads:
        torch.set_num_threads(a.threads)
    dtype = getattr(torch, a.dtype)
    try:
        device = torch.device(a.device)
    except RuntimeError as e:
        p.error(f"--device {a.device!r}: {e}")
    if device.type not in ("cpu", "cuda"):
        p.error(f"--device must be cpu, cuda or cuda:N, got {a.device!r}")
    if device.type == "cuda" and not torch.cuda.is_available():
        p.error(f"--device {a.device}: this torch sees no CUDA device")
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)

    cpp = None
    if "c++" in methods:
        lib = Path(os.environ.get("PYRAMIDION_CPP_API",
                                  Path(os.environ.get("PYRAMIDION_BUILD_DIR", REPO / "build")) / "tests" /
                                  "libpyramidion_cpp_api.so"))
        if not lib.is_file():
            p.error(f"{lib}: not built (the test build makes it; or set PYRAMIDION_CPP_API)")
        torch.ops.load_library(str(lib))
        cpp = torch.ops.pyramidion_cpp

    torch.manual_seed(0)
    x = torch.randn(a.b, a.n, a.d, dtype=dtype, device=device)
    s = torch.rand(a.b, a.n, dtype=dtype, device=device)
    gv = torch.randn(a.b, a.k, a.d, dtype=dtype, device=device)
    gs = torch.randn(a.b, a.k, dtype=dtype, device=device)
    xl, sl = x.clone().requires_grad_(True), s.clone().requires_grad_(True)

    # Each side returns the gradients of x and scores (autograd.grad, as the C++ side's
    # torch::autograd::grad), so that the two differ only by where the calls come from.
    def run_python():
        r = pyramidion.soft_topk(xl, sl, a.k)
        return torch.autograd.grad([r.values, r.scores], [xl, sl], [gv, gs])

    def run_cpp():
        return cpp.topk(x, s, a.k, None, 20.0, False, False, gv, gs)[4:]

    def run_pytorch():
        v, sc, _, _ = reference.successive_halving_topk(xl, sl, a.k)
        return torch.autograd.grad([v, sc], [xl, sl], [gv, gs])

    fns = {"python": run_python, "c++": run_cpp, "pytorch": run_pytorch}
    # The three agree (the same gradients up to rounding): a benchmark of wrong answers is void.
    ref = [g.double() for g in fns["python"]()]
    for m in methods[1:]:
        for g, want in zip(fns[m](), ref):
            err = (g.double() - want).abs().max().item()
            if err > 1e-4 * max(1.0, want.abs().max().item()):
                sys.exit(f"topk_bench: {m}'s gradients differ from python's by {err}")
    times = {m: [] for m in methods}
    # As timeit: no garbage collection while timing (it would charge one method for another's
    # garbage; the calls make no reference cycles).
    gc.collect()
    gc.disable()
    for rep in range(a.warmup + a.reps):
        this = {}
        # The order rotates (A B C, B C A, C A B, ...): none always runs after the same one (the
        # reference leaves the caches and the allocator in another state than the operator).
        for m in methods[rep % len(methods):] + methods[:rep % len(methods)]:
            sync()
            t0 = time.perf_counter()
            fns[m]()
            sync()
            this[m] = time.perf_counter() - t0
            if rep >= a.warmup:
                times[m].append(this[m])
        label = "warm-up" if rep < a.warmup else f"rep {rep - a.warmup + 1}/{a.reps}"
        print(f"{label}: " + ", ".join(f"{m} {this[m]:.4f} s" for m in methods), file=sys.stderr, flush=True)

    gc.enable()
    rows = []
    for m in methods:
        ratios = [t / tp for t, tp in zip(times[m], times["python"])]
        rows.append({"method": m, "median_s": statistics.median(times[m]), "times_s": times[m],
                     "ratio_to_python": statistics.median(ratios)})
    machine = {"cpu": platform.processor() or platform.machine(), "threads": torch.get_num_threads(),
               "torch": torch.__version__, "python": platform.python_version(), "cores": os.cpu_count(),
               "device": str(device)}
    where = f"CPU, {machine['threads']} threads"
    if device.type == "cuda":
        machine["gpu"] = torch.cuda.get_device_name(device)
        machine["torch_cuda"] = torch.version.cuda
        where = f"{machine['gpu']} (CUDA {torch.version.cuda})"
    print(f"\nsuccessive-halving top-k, forward + backward, b={a.b} n={a.n} k={a.k} d={a.d} {a.dtype}, {where}, "
          f"torch {torch.__version__}; {a.reps} interleaved repetitions\n")
    print("| method | median time | time / python (median of per-rep ratios) |")
    print("|---|---|---|")
    for r in rows:
        print(f"| {r['method']} | {r['median_s'] * 1000:.3f} ms | {r['ratio_to_python']:.3f}x |")
    if a.json:
        Path(a.json).write_text(json.dumps({"settings": vars(a), "machine": machine, "results": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
