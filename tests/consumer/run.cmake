# Builds and runs tests/consumer against convnet, in one of three modes:
#   -DMODE=install : cmake --install the configured build tree into a scratch
#                    prefix, then find_package(convnet) from there;
#   -DMODE=subdirectory : add_subdirectory(<source tree>);
#   -DMODE=install-openblas : configure convnet anew with CONVNET_BLAS=openblas,
#                    install that, and find_package it: the consumer must then
#                    find <cblas.h> and link OpenBLAS through the package alone.
# Inputs: SOURCE_DIR (convnet checkout), BINARY_DIR (its configured build), WORK_DIR.
file(REMOVE_RECURSE "${WORK_DIR}")
file(MAKE_DIRECTORY "${WORK_DIR}")

function(run)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
  message("${out}")
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "consumer test (${MODE}): command failed (${rc}): ${ARGN}")
  endif()
  set(out "${out}" PARENT_SCOPE)
endfunction()

if(MODE STREQUAL "install")
  run(${CMAKE_COMMAND} --install "${BINARY_DIR}" --prefix "${WORK_DIR}/prefix")
  set(configure_args -DCMAKE_PREFIX_PATH=${WORK_DIR}/prefix)
elseif(MODE STREQUAL "install-openblas")
  run(${CMAKE_COMMAND} -S "${SOURCE_DIR}" -B "${WORK_DIR}/convnet" -DCONVNET_BLAS=openblas -DCONVNET_BUILD_TESTS=OFF
      -DCONVNET_BUILD_APPS=OFF -DCONVNET_BUILD_EXAMPLES=OFF -DCONVNET_BUILD_BENCHMARKS=OFF)
  run(${CMAKE_COMMAND} --install "${WORK_DIR}/convnet" --prefix "${WORK_DIR}/prefix")
  set(configure_args -DCMAKE_PREFIX_PATH=${WORK_DIR}/prefix)
else()
  set(configure_args -DCONVNET_SOURCE_DIR=${SOURCE_DIR})
endif()
run(${CMAKE_COMMAND} -S "${SOURCE_DIR}/tests/consumer" -B "${WORK_DIR}/build" -DCMAKE_BUILD_TYPE=Release
    ${configure_args})
run(${CMAKE_COMMAND} --build "${WORK_DIR}/build")
run("${WORK_DIR}/build/consumer" "${WORK_DIR}/run")
if(MODE STREQUAL "install-openblas" AND NOT out MATCHES "products: OpenBLAS")
  message(FATAL_ERROR "consumer test (${MODE}): the consumer did not use OpenBLAS")
endif()
run("${WORK_DIR}/build/loader" "${WORK_DIR}/run")
if(NOT out MATCHES "logits bit for bit")
  message(FATAL_ERROR "consumer test (${MODE}): the loader did not reproduce the trained network's logits")
endif()
