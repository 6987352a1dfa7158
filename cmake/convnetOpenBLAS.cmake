# Finds Debian's OpenMP build of OpenBLAS (libopenblas-openmp-dev), for
# CONVNET_BLAS=openblas. Used twice: by convnet's CMakeLists.txt, and by the
# installed package's config, so that a consumer of an OpenBLAS build of
# convnet finds <cblas.h> and the library on its own machine.
# Sets CONVNET_OPENBLAS_INCLUDE_DIR and CONVNET_OPENBLAS_LIBRARY, or fails
# with the command that installs it.
function(convnet_find_openblas)
  find_path(CONVNET_OPENBLAS_INCLUDE_DIR cblas.h
            PATHS /usr/include/${CMAKE_LIBRARY_ARCHITECTURE}/openblas-openmp NO_DEFAULT_PATH)
  find_library(CONVNET_OPENBLAS_LIBRARY openblas
               PATHS /usr/lib/${CMAKE_LIBRARY_ARCHITECTURE}/openblas-openmp NO_DEFAULT_PATH)
  if(NOT CONVNET_OPENBLAS_INCLUDE_DIR OR NOT CONVNET_OPENBLAS_LIBRARY)
    message(FATAL_ERROR "convnet: CONVNET_BLAS=openblas needs OpenBLAS built for OpenMP: "
                        "sudo apt-get install libopenblas-openmp-dev")
  endif()
endfunction()
