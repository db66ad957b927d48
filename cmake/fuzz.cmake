# fuzz.cmake: the libFuzzer targets in tests/fuzz (-DNETIO_FUZZ=ON, clang
# only), each linked with the engine built for coverage and ASan+UBSan.
# tools/test.sh builds them in build-fuzz and runs each for a bounded time
# on its seed corpus (tests/fuzz/corpus/<name>):
#   cmake -S . -B build-fuzz -DCMAKE_C_COMPILER=clang -DNETIO_FUZZ=ON -DNETIO_TESTS=OFF
#   cmake --build build-fuzz --target fuzz_addr fuzz_line
#   build-fuzz/fuzz_addr -max_total_time=60 tests/fuzz/corpus/addr
if(NOT CMAKE_C_COMPILER_ID MATCHES "Clang")
  message(FATAL_ERROR "NETIO_FUZZ needs clang (-DCMAKE_C_COMPILER=clang)")
endif()
if(WIN32)
  message(FATAL_ERROR "NETIO_FUZZ is for Linux builds")
endif()
file(GLOB NETIO_FUZZ_SRC CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/tests/fuzz/fuzz_*.c)
foreach(src ${NETIO_FUZZ_SRC})
  get_filename_component(name ${src} NAME_WE)
  add_executable(${name} ${src})
  target_link_libraries(${name} PRIVATE netio_engine)
  target_include_directories(${name} PRIVATE ${CMAKE_SOURCE_DIR}/csrc/engine)
  target_link_options(${name} PRIVATE -fsanitize=fuzzer)
endforeach()
