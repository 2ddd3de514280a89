#!/usr/bin/env bash
# A Python that cannot import torch (no site-packages at all: -S; no user site, no environment: -I),
# as pip's isolated build environment is: the test install.pip_build_without_torch_* configures the
# pip build with it as Python_EXECUTABLE.
exec python3 -I -S "$@"
