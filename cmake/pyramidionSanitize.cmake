# The instrumented build (scripts/sanitize.sh, scripts/fuzz.sh): AddressSanitizer and
# UndefinedBehaviorSanitizer on everything this project compiles (library, tools, tests), and with
# PYRAMIDION_FUZZ the libFuzzer targets of tests/fuzz. Included by the top-level CMakeLists.txt
# before any target is defined (add_compile_options applies to the targets defined after it).
#
# LibTorch, sentencepiece, libstdc++ and GoogleTest are not instrumented: a bad write inside them is
# caught only when it hits memory that ASan tracks (heap blocks, our stacks and globals), and UBSan
# sees only the LibTorch code inlined from its headers into our sources.
#
# OpenMP: clang's -fopenmp links LLVM's libomp, which the executables load before the wheel's
# libgomp; libomp implements libgomp's ABI, and LibTorch's GOMP_parallel and omp_* calls bind to it
# (LD_DEBUG=bindings shows it), so one OpenMP runtime runs every parallel region, ours and
# LibTorch's, as libgomp does in the gcc build.
option(PYRAMIDION_SANITIZE "Compile with AddressSanitizer + UndefinedBehaviorSanitizer (clang; \
scripts/sanitize.sh)" OFF)
option(PYRAMIDION_FUZZ "Build the libFuzzer targets of tests/fuzz (needs PYRAMIDION_SANITIZE; \
scripts/fuzz.sh)" OFF)

if(PYRAMIDION_FUZZ AND NOT PYRAMIDION_SANITIZE)
  message(FATAL_ERROR "PYRAMIDION_FUZZ=ON needs PYRAMIDION_SANITIZE=ON (the fuzz targets report bugs through "
                      "ASan and UBSan); scripts/fuzz.sh configures both")
endif()
if(PYRAMIDION_SANITIZE)
  if(NOT CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
    message(FATAL_ERROR "PYRAMIDION_SANITIZE=ON needs clang (libFuzzer and the sanitizer runtimes used here are "
                        "clang's), not ${CMAKE_CXX_COMPILER_ID}: configure a fresh build directory with "
                        "-DCMAKE_CXX_COMPILER=clang++ (scripts/sanitize.sh does)")
  endif()
  if(PYRAMIDION_WITH_CUDA STREQUAL "ON")
    message(FATAL_ERROR "PYRAMIDION_SANITIZE=ON is a CPU build: set PYRAMIDION_WITH_CUDA=OFF (nvcc does not "
                        "compile with clang's sanitizers, and the CUDA driver does not run under ASan's "
                        "default shadow-gap protection)")
  endif()
  # The checks of -fsanitize=undefined, all fatal (-fno-sanitize-recover: a report fails the test or
  # is a fuzzer crash, never a line lost in a log), except:
  #   vptr  checks the dynamic type of polymorphic objects against RTTI. LibTorch's classes get
  #         their type_info from libtorch_cpu.so / libc10.so, built by another compiler without
  #         -fsanitize; a type_info that is not unique across the two gives "downcast of address
  #         ... which does not point to an object of type" for valid casts of torch::nn modules
  #         and c10 intrusive pointers. (ASan still catches a use of a freed or foreign object.)
  # Kept on, on purpose: float-cast-overflow (a NaN or huge double from a JSON config converted to
  # int64_t is real UB), signed-integer-overflow and shift (sizes computed from file contents),
  # bounds, alignment, null, enum/bool (an invalid enum from a parsed value), return, unreachable.
  # Not added: unsigned-integer-overflow and implicit-conversion (well-defined behaviour, noisy
  # in hashing and in LibTorch's headers) and float-divide-by-zero (an inf is valid in torch code).
  set(PYRAMIDION_SANITIZE_FLAGS -fsanitize=address,undefined -fno-sanitize=vptr -fno-sanitize-recover=undefined
      -fno-omit-frame-pointer -fno-optimize-sibling-calls)
  add_compile_options("$<$<COMPILE_LANGUAGE:CXX>:${PYRAMIDION_SANITIZE_FLAGS}>")
  add_link_options(-fsanitize=address,undefined)
  message(STATUS "pyramidion: sanitizers on (${PYRAMIDION_SANITIZE_FLAGS}); fuzz targets ${PYRAMIDION_FUZZ}")
endif()
