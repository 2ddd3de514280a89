#!/usr/bin/env bash
# A Python whose torch is a stub of a CUDA build (tests/scripts/torch_stub): the test
# install.pip_build_with_cuda_torch_without_nvcc_* configures the pip build with it.
PYTHONPATH="$(dirname "$0")/torch_stub" PYTHONNOUSERSITE=1 exec python3 -S "$@"
