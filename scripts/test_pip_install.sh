#!/usr/bin/env bash
# `pip install` of the Python package with the operator's library (README "Using it from Python"),
# tested as a user meets it:
#   1. a fresh virtual environment that sees the project's torch (a .pth file naming the project
#      venv's site-packages: torch, pytest, scikit-build-core and pip itself are not installed again;
#      created --without-pip, so that no older setuptools of its own hides the one torch needs);
#   2. `pip install --no-build-isolation --no-index <this source tree>`: scikit-build-core builds only
#      the CMake target pyramidion::ops against that torch and installs the package with the library
#      inside it; the time it takes is printed;
#   3. the library in the wheel: linked to LibTorch only (no libpyramidion.so, sentencepiece or Gloo),
#      no path of this machine in its RUNPATH;
#   4. the Python test suite (python/tests) against the installed package, from outside the source
#      tree, with no PYTHONPATH or PYRAMIDION_* variable (PYRAMIDION_TEST_INSTALLED=1, conftest.py);
#   5. an sdist of the tree (the PEP 517 hook that `python -m build --sdist` calls) that holds what
#      the build reads and not the data, tests or scripts; then `pip wheel` of that sdist, which must
#      build the same way (PYRAMIDION_PIP_SDIST_WHEEL=0 skips this second build);
#   6. `pip uninstall -y pyramidion` leaves the environment as it was before the install.
# Called by scripts/test.sh after the main build. Work folder: $PYRAMIDION_BUILD_DIR/pip-test.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
VENV="${PYRAMIDION_VENV:-$HOME/.cache/pyramidion/venv}"
WORK="$ROOT/${PYRAMIDION_BUILD_DIR:-build}/pip-test"
log() { printf '[pip-test] %s\n' "$*" >&2; }
fail() { printf 'test_pip_install.sh: %s\n' "$*" >&2; exit 1; }
# run LOG CMD...: runs CMD with its output in LOG, shown only on failure.
run() { local out=$1; shift; "$@" >"$out" 2>&1 || { cat "$out" >&2; fail "failed: $*"; }; }

rm -rf "$WORK"
mkdir -p "$WORK"
PROJECT_PYTHON="$VENV/bin/python"
"$PROJECT_PYTHON" -c 'import torch, pytest, scikit_build_core' 2>/dev/null ||
  fail "$VENV lacks torch, pytest or scikit-build-core (run scripts/setup.sh)"

# 1. The fresh environment, with the same Python as the project's venv.
BASE_PYTHON=$("$PROJECT_PYTHON" -c 'import sys; print(sys._base_executable)')
run "$WORK/venv.log" "$BASE_PYTHON" -m venv --without-pip "$WORK/venv"
PY="$WORK/venv/bin/python"
SITE=$("$PY" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
"$PROJECT_PYTHON" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])' >"$SITE/pyramidion_test_project_torch.pth"
PIP=("$PY" -m pip --disable-pip-version-check --no-input --no-cache-dir)
snapshot() { (cd "$WORK/venv" && find . | sort); }
snapshot >"$WORK/before.txt"

# 2. The install, timed.
log "pip install --no-build-isolation $ROOT (builds pyramidion::ops only)"
start=$(date +%s)
run "$WORK/install.log" env CMAKE_BUILD_PARALLEL_LEVEL="${PYRAMIDION_JOBS:-2}" \
  "${PIP[@]}" install --no-build-isolation --no-index -v "$ROOT"
log "installed in $(( $(date +%s) - start )) s"
PACKAGE=$("$PY" -c 'import importlib.util as u; print(u.find_spec("pyramidion").submodule_search_locations[0])')
[[ $PACKAGE == "$SITE/pyramidion" ]] || fail "pyramidion imports from $PACKAGE, not the fresh environment's $SITE"

# 3. What the library links.
LIB="$PACKAGE/libpyramidion_ops.so"
[ -f "$LIB" ] && [ -f "$PACKAGE/pyramidion_build.json" ] || fail "no library or build record in $PACKAGE: $(ls "$PACKAGE")"
dynamic=$(readelf -d "$LIB")
grep -q 'NEEDED.*libtorch' <<<"$dynamic" || fail "$LIB does not link LibTorch: $dynamic"
! grep -Eq 'NEEDED.*(libpyramidion\.so|sentencepiece|gloo)' <<<"$dynamic" || fail "$LIB links more than LibTorch: $dynamic"
! grep -Eq '(RPATH|RUNPATH).*(/root|/home|/tmp|site-packages)' <<<"$dynamic" || fail "$LIB records a path of this machine: $dynamic"

# 4. The Python tests against the installed package, from outside the tree.
log "python/tests against the installed package"
mkdir -p "$WORK/cwd"
(cd "$WORK/cwd" && env -u PYTHONPATH -u PYRAMIDION_LIBRARY -u PYRAMIDION_BUILD_DIR -u PYRAMIDION_CPP_API \
  PYRAMIDION_TEST_INSTALLED=1 OMP_WAIT_POLICY=PASSIVE "$PY" -m pytest -q -p no:cacheprovider "$ROOT/python/tests") ||
  fail "the Python tests failed against the installed package"

# 5. The sdist, and a wheel built from it.
log "sdist"
run "$WORK/sdist.log" "$PY" -c 'import sys; from scikit_build_core.build import build_sdist; print(build_sdist(sys.argv[1]))' \
  "$WORK/dist"
SDIST=$(tail -1 "$WORK/sdist.log")  # the hook returns the file's name (the backend prints a banner first)
"$PY" - "$WORK/dist/$SDIST" <<'PYEOF' || fail "the sdist's contents are wrong"
import sys, tarfile
names = {n.split("/", 1)[1] for n in tarfile.open(sys.argv[1]).getnames() if "/" in n}
need = ["pyproject.toml", "CMakeLists.txt", "LICENSE", "cmake/pyramidionConfig.cmake.in", "python/pyramidion/_version.py",
        "python/pyramidion/_library.py", "src/ops/ops.cpp", "src/util/tensor_text.cpp", "src/pch.h",
        "cuda/topk_kernels.cu", "include/pyramidion/topk.h", "docs/python.md"]
missing = [n for n in need if n not in names]
unwanted = sorted(n for n in names if n.split("/")[0] in ("data", "tests", "scripts", "tools", "results", "build", "configs"))
print(f"sdist {sys.argv[1]}: {len(names)} files", file=sys.stderr)
if missing or unwanted:
    sys.exit(f"missing {missing}; unwanted {unwanted[:10]}")
PYEOF
if [[ ${PYRAMIDION_PIP_SDIST_WHEEL:-1} != 0 ]]; then
  log "pip wheel of the sdist"
  start=$(date +%s)
  run "$WORK/sdist-wheel.log" env CMAKE_BUILD_PARALLEL_LEVEL="${PYRAMIDION_JOBS:-2}" \
    "${PIP[@]}" wheel --no-build-isolation --no-index --no-deps -w "$WORK/wheels" "$WORK/dist/$SDIST"
  log "wheel from the sdist in $(( $(date +%s) - start )) s"
  "$PY" - "$WORK/wheels" <<'PYEOF' || fail "the sdist's wheel lacks the library"
import pathlib, sys, zipfile
wheels = list(pathlib.Path(sys.argv[1]).glob("pyramidion-*.whl"))
names = zipfile.ZipFile(wheels[0]).namelist()
for n in ("pyramidion/libpyramidion_ops.so", "pyramidion/pyramidion_build.json", "pyramidion/topk.py"):
    assert n in names, (n, names)
PYEOF
fi

# 6. Uninstall: the environment as before.
run "$WORK/uninstall.log" "${PIP[@]}" uninstall -y pyramidion
snapshot >"$WORK/after.txt"
diff "$WORK/before.txt" "$WORK/after.txt" >&2 || fail "pip uninstall left these behind (> lines)"
log "pip install, tests, sdist and uninstall: ok"
