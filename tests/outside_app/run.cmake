# Installs the built library into a scratch prefix, builds tests/outside_app against it with
# find_package(pyramidion), and runs its two applications (the whole library; the operator alone). Called by ctest (see tests/CMakeLists.txt).
foreach(v SOURCE_DIR BUILD_DIR WORK_DIR TORCH_DIR EXAMPLE_SOURCE CMAKE_GENERATOR)
  if(NOT DEFINED ${v})
    message(FATAL_ERROR "run.cmake needs -D${v}=...")
  endif()
endforeach()
function(run)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "failed (${rc}): ${ARGN}")
  endif()
endfunction()
file(REMOVE_RECURSE ${WORK_DIR})
run(${CMAKE_COMMAND} --install ${BUILD_DIR} --prefix ${WORK_DIR}/prefix)
# The installed targets carry no path of this machine: an application's RPATH comes from its own
# LibTorch (pyramidionWheelRpath.cmake, called by pyramidionConfig.cmake).
file(GLOB _exports ${WORK_DIR}/prefix/*/cmake/pyramidion/pyramidionTargets*.cmake)
foreach(_export ${_exports})
  file(READ ${_export} _text)
  if(_text MATCHES "rpath|site-packages")
    message(FATAL_ERROR "${_export} exports a path of the build machine (rpath or site-packages)")
  endif()
endforeach()
run(${CMAKE_COMMAND} -S ${SOURCE_DIR}/tests/outside_app -B ${WORK_DIR}/build -G ${CMAKE_GENERATOR}
    -DCMAKE_PREFIX_PATH=${WORK_DIR}/prefix -DTorch_DIR=${TORCH_DIR} -DEXAMPLE_SOURCE=${EXAMPLE_SOURCE}
    -DCMAKE_BUILD_TYPE=Release)
run(${CMAKE_COMMAND} --build ${WORK_DIR}/build)
run(${WORK_DIR}/build/app)
run(${WORK_DIR}/build/ops_app)
# The operator's application needs the operator's library and LibTorch's, not the whole library's.
execute_process(COMMAND readelf -d ${WORK_DIR}/build/ops_app OUTPUT_VARIABLE _dynamic RESULT_VARIABLE rc)
if(NOT rc EQUAL 0 OR NOT _dynamic MATCHES "NEEDED[^\n]*libpyramidion_ops\\.so")
  message(FATAL_ERROR "ops_app does not link libpyramidion_ops:\n${_dynamic}")
endif()
if(_dynamic MATCHES "NEEDED[^\n]*\\[libpyramidion\\.so|sentencepiece|gloo")
  message(FATAL_ERROR "ops_app links more than the operator:\n${_dynamic}")
endif()
# The installed Python package finds the installed library beside it and runs the operator.
# (An instrumented library, scripts/sanitize.sh, needs the ASan runtime preloaded into Python:
# PYTHON_PRELOAD, with leak checking off for the interpreter.)
if(DEFINED PYTHON AND DEFINED PYTHON_PRELOAD)
  run(${CMAKE_COMMAND} -E env LD_PRELOAD=${PYTHON_PRELOAD} ASAN_OPTIONS=$ENV{ASAN_OPTIONS}:detect_leaks=0
      ${PYTHON} ${SOURCE_DIR}/tests/outside_app/check_python.py ${WORK_DIR}/prefix)
elseif(DEFINED PYTHON)
  run(${PYTHON} ${SOURCE_DIR}/tests/outside_app/check_python.py ${WORK_DIR}/prefix)
endif()
