// cuda/topk_kernels.cu itself, compiled for the CPU: CUDA's threads on OS threads, through the
// emulation of cuda/emulation/ (PYR_CUDA_EMULATION, set for this file by tests/CMakeLists.txt).
// The launchers it defines live in pyramidion::cuda::emulated (cuda/topk_kernels.h), apart from the
// real kernels'; tests/ops/topk_kernels_emulated_test.cpp and tests/ops/team_programs_main.cpp run them.
#include "cuda/topk_kernels.cu"
