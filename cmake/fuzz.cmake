# fuzz.cmake: the libFuzzer targets in tests/fuzz (clang with libFuzzer;
# cmake/optional.cmake includes this when NETIO_FUZZ finds them), each
# linked with its own copy of the engine built for coverage and ASan+UBSan,
# so the rest of the build stays as configured. tools/test.sh builds them
# in build-fuzz and runs each for a bounded time on its seed corpus
# (tests/fuzz/corpus/<name>):
#   cmake -S . -B build-fuzz -DCMAKE_C_COMPILER=clang -DNETIO_FUZZ=ON -DNETIO_TESTS=OFF
#   cmake --build build-fuzz --target fuzz_addr fuzz_line
#   build-fuzz/fuzz_addr -max_total_time=60 tests/fuzz/corpus/addr
set(_fuzz_san -fsanitize=fuzzer-no-link,address,undefined
    -fno-omit-frame-pointer -fno-sanitize-recover=all)
add_library(netio_fuzz_engine STATIC ${NETIO_PORT_SRC} ${NETIO_ENGINE_SRC})
target_link_libraries(netio_fuzz_engine PUBLIC netio_engine_deps)
target_compile_options(netio_fuzz_engine PRIVATE ${_fuzz_san})
file(GLOB NETIO_FUZZ_SRC CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/tests/fuzz/fuzz_*.c)
foreach(src ${NETIO_FUZZ_SRC})
  get_filename_component(name ${src} NAME_WE)
  add_executable(${name} ${src})
  target_link_libraries(${name} PRIVATE netio_fuzz_engine)
  target_include_directories(${name} PRIVATE ${CMAKE_SOURCE_DIR}/csrc/engine)
  target_compile_options(${name} PRIVATE ${_fuzz_san})
  target_link_options(${name} PRIVATE -fsanitize=fuzzer,address,undefined)
endforeach()
