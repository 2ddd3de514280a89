# pyramidion_wheel_rpath(<target> <PRIVATE|PUBLIC|INTERFACE> <Torch_DIR>)
#
# A LibTorch from the PyPI wheel does not record where its CUDA libraries live (Python preloads
# them from the sibling nvidia/* packages of site-packages). This records those directories of the
# LibTorch at <Torch_DIR> in the RPATH of <target>, as DT_RPATH (which, unlike DT_RUNPATH, also
# serves LibTorch's own dependencies) and ahead of the CUDA toolkit's copies, which can be older
# (NCCL 2.28 of the CUDA 13 toolkit lacks symbols that LibTorch 2.15 needs). Nothing for a LibTorch
# that is not a wheel or has no CUDA packages beside it.
#
# pyramidion's build calls it for its own library, tools and tests; the installed package's
# pyramidionConfig.cmake calls it for pyramidion::pyramidion with the application's own LibTorch,
# so that no path of the build machine reaches an application.
function(pyramidion_wheel_rpath target scope torch_dir)
  get_filename_component(_site "${torch_dir}/../../../.." ABSOLUTE)
  file(GLOB _dirs LIST_DIRECTORIES true "${_site}/nvidia/*/lib")
  if(_dirs)
    list(JOIN _dirs ":" _rpath)
    target_link_options(${target} ${scope} "LINKER:--disable-new-dtags" "LINKER:-rpath,${_rpath}"
                        "LINKER:-rpath-link,${_rpath}")
  endif()
endfunction()
