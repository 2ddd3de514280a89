#!/usr/bin/env bash
# Gathers, on a machine with Debian's packages and network, everything scripts/gpu_check.sh needs
# to build and test pyramidion on a GPU node that has nvcc, CMake and a PyTorch 2.x installation but
# no network and no package manager (a cluster node, a cloud image):
#
#   BUNDLE/usr/...        the Debian -dev packages (and their runtime libraries) unpacked, not
#                         installed: CLI11, nlohmann_json, sentencepiece, GoogleTest, Gloo's headers
#   BUNDLE/data/aclsum/   the bundled real data the tests read (scripts/get_data.sh)
#   BUNDLE/python/        pytest (pure Python, from PyPI), for the Python package's tests
#   BUNDLE/MANIFEST       the packages and versions it holds
#
#   scripts/gpu_bundle.sh [BUNDLE]        (default .gpu-bundle, which .gitignore ignores)
#
# Copy BUNDLE next to the source tree on the GPU node (or name it in the device tool's `carry`),
# then run scripts/gpu_check.sh there. About 30 MiB (the data 20, pytest 8). Needs apt-get and dpkg-deb; no root (the
# packages are downloaded and unpacked into BUNDLE, nothing is installed).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUNDLE="${1:-$ROOT/.gpu-bundle}"
# The build's needs (scripts/setup.sh's list, less the compilers and tools the GPU node has, and
# less LibTorch, which is the node's own PyTorch).
PACKAGES=(libcli11-dev nlohmann-json3-dev libsentencepiece-dev libsentencepiece0 libgtest-dev libgmock-dev
          libgloo-dev)

log() { printf '[gpu_bundle] %s\n' "$*" >&2; }
for tool in apt-get dpkg-deb; do
  command -v "$tool" >/dev/null || { log "needs $tool (a Debian or Ubuntu machine)"; exit 1; }
done

bash "$ROOT/scripts/get_data.sh"  # data/aclsum, from the PyPI package (scripts/setup.sh's venv)

tmp="$(mktemp -d "${TMPDIR:-/tmp}/gpu_bundle.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && apt-get download -q "${PACKAGES[@]}") >&2 ||
  { log "apt-get download failed (run 'apt-get update' as root first?)"; exit 1; }

# Assembled beside the target and renamed into place: an interrupted run leaves no half bundle.
staging="$BUNDLE.partial.$$"
rm -rf "$staging"
mkdir -p "$staging/data"
: >"$staging/MANIFEST"
for deb in "$tmp"/*.deb; do
  dpkg-deb -x "$deb" "$staging"
  dpkg-deb -f "$deb" Package Version | paste -sd' ' >>"$staging/MANIFEST"
done
rm -rf "$staging/usr/share/doc" "$staging/usr/share/man" "$staging/usr/src"
cp -r "$ROOT/data/aclsum" "$staging/data/aclsum"
# pytest for python/tests, importable from BUNDLE/python by any Python 3 (pure-Python wheels).
VENV="${PYRAMIDION_VENV:-$HOME/.cache/pyramidion/venv}"
"$VENV/bin/pip" install --quiet --disable-pip-version-check --no-compile --target "$staging/python" "pytest>=7,<10" >&2 ||
  { log "pip could not fetch pytest from PyPI"; exit 1; }
for dist in "$staging"/python/*.dist-info; do
  basename "$dist" .dist-info | sed 's/-\([^-]*\)$/ \1 (PyPI)/' >>"$staging/MANIFEST"
done
rm -rf "$BUNDLE"
mv "$staging" "$BUNDLE"
log "$BUNDLE: $(wc -l <"$BUNDLE/MANIFEST") packages, $(du -sh "$BUNDLE" | cut -f1); next, on the GPU node:"
log "  scripts/gpu_check.sh --bundle $BUNDLE"
