# optional.cmake: the parts a user does not need -- tests, fuzz targets,
# benchmarks -- each AUTO/ON/OFF (see NETIO_TESTS... in CMakeLists.txt),
# each with one status line saying what was found and what is built.

# ---- tests: cmocka (C tests), busted + lua5.4 (Lua specs) ---------------
netio_want(_want NETIO_TESTS)
netio_required(_req NETIO_TESTS)
set(NETIO_BUILD_TESTS FALSE)
if(_want)
  find_program(BUSTED busted)
  find_program(LUA54 lua5.4)
  if(WIN32)
    # cmocka is built for Windows by cmake/windows.cmake.
    set(_cmocka_found TRUE)
  else()
    netio_pkg(CMOCKA cmocka _req)
    set(_cmocka_found ${CMOCKA_FOUND})
    if(_req AND NOT (BUSTED AND LUA54))
      message(FATAL_ERROR "NETIO_TESTS=ON needs busted and lua5.4 for the Lua specs")
    endif()
  endif()
  set(NETIO_BUILD_TESTS ${_cmocka_found})
endif()
if(NETIO_BUILD_TESTS)
  if(BUSTED AND LUA54)
    set(_specs "Lua specs (${BUSTED})")
  elseif(WIN32)
    set(_specs "Lua specs: see NETIO_WIN_SPECS")
  else()
    set(_specs "no Lua specs (busted or lua5.4 not found)")
  endif()
  message(STATUS "netio: tests: ON (cmocka; ${_specs})")
  enable_testing()
  include(${CMAKE_SOURCE_DIR}/cmake/tests.cmake)
elseif(_want)
  message(STATUS "netio: tests: OFF (cmocka not found; -DNETIO_TESTS=ON requires it)")
else()
  message(STATUS "netio: tests: OFF (NETIO_TESTS=OFF)")
endif()

# ---- fuzz targets: clang with libFuzzer, Linux ------------------------
netio_want(_want NETIO_FUZZ)
netio_required(_req NETIO_FUZZ)
set(NETIO_BUILD_FUZZ FALSE)
if(_want AND NOT WIN32 AND CMAKE_C_COMPILER_ID MATCHES "Clang")
  include(CheckCSourceCompiles)
  set(CMAKE_REQUIRED_FLAGS "-fsanitize=fuzzer,address,undefined")
  set(CMAKE_REQUIRED_LINK_OPTIONS "-fsanitize=fuzzer,address,undefined")
  check_c_source_compiles([[
#include <stddef.h>
#include <stdint.h>
int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);
int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) { (void)d; (void)n; return 0; }
]] NETIO_HAVE_LIBFUZZER)
  unset(CMAKE_REQUIRED_FLAGS)
  unset(CMAKE_REQUIRED_LINK_OPTIONS)
  set(NETIO_BUILD_FUZZ ${NETIO_HAVE_LIBFUZZER})
endif()
if(NETIO_BUILD_FUZZ)
  message(STATUS "netio: fuzz targets: ON (clang with libFuzzer; tests/fuzz, engine built again with ASan+UBSan)")
  include(${CMAKE_SOURCE_DIR}/cmake/fuzz.cmake)
elseif(_req)
  message(FATAL_ERROR "NETIO_FUZZ=ON needs a Linux build with clang and libFuzzer "
    "(-DCMAKE_C_COMPILER=clang; Debian: libclang-rt-14-dev)")
elseif(_want)
  message(STATUS "netio: fuzz targets: OFF (needs clang with libFuzzer; compiler is ${CMAKE_C_COMPILER_ID})")
else()
  message(STATUS "netio: fuzz targets: OFF (NETIO_FUZZ=OFF)")
endif()

# ---- benchmarks: Linux only (epoll, the load generators' POSIX sockets) --
netio_want(_want NETIO_BENCH)
netio_required(_req NETIO_BENCH)
if(WIN32)
  if(_req)
    message(FATAL_ERROR "NETIO_BENCH=ON: the benchmarks are Linux programs")
  endif()
  message(STATUS "netio: benchmarks: OFF (Linux only)")
  return()
elseif(NOT _want)
  message(STATUS "netio: benchmarks: OFF (NETIO_BENCH=OFF)")
  return()
endif()
if(NETIO_HAVE_URING)
  message(STATUS "netio: benchmarks: ON (bench/; echo_uring with liburing)")
else()
  message(STATUS "netio: benchmarks: ON (bench/; no echo_uring without liburing)")
endif()
add_executable(loadgen ${CMAKE_SOURCE_DIR}/bench/loadgen.c)
target_compile_options(loadgen PRIVATE -O2)
add_executable(echo_epoll ${CMAKE_SOURCE_DIR}/bench/echo_epoll.c)
target_compile_options(echo_epoll PRIVATE -O2)
# Raw liburing echo (the limit) and the C echo on the engine API (no Lua);
# bench/run.sh skips a server that is not built.
if(NETIO_HAVE_URING)
  add_executable(echo_uring ${CMAKE_SOURCE_DIR}/bench/echo_uring.c)
  target_compile_options(echo_uring PRIVATE -O2)
  target_link_libraries(echo_uring PRIVATE PkgConfig::URING)
endif()
add_executable(echo_engine ${CMAKE_SOURCE_DIR}/bench/echo_engine.c)
target_compile_options(echo_engine PRIVATE -O2)
target_link_libraries(echo_engine PRIVATE netio_engine)
# The same engine with the least a Lua coroutine per connection costs: the
# floor under netio's Lua echo (bench/echo_luafloor.c).
add_executable(echo_luafloor ${CMAKE_SOURCE_DIR}/bench/echo_luafloor.c)
target_compile_options(echo_luafloor PRIVATE -O2)
target_link_libraries(echo_luafloor PRIVATE netio_engine PkgConfig::LUA)
# Messages from outside threads into connections (bench/outside.sh): the
# reader, the raw C baseline, nio_send() from C threads, and the raw queue
# for Lua threads.
add_executable(outside_reader ${CMAKE_SOURCE_DIR}/bench/outside_reader.c)
target_compile_options(outside_reader PRIVATE -O2)
add_executable(outside_baseline ${CMAKE_SOURCE_DIR}/bench/outside_baseline.c)
target_compile_options(outside_baseline PRIVATE -O2)
target_link_libraries(outside_baseline PRIVATE Threads::Threads)
add_executable(outside_nio ${CMAKE_SOURCE_DIR}/bench/outside_nio.c)
target_compile_options(outside_nio PRIVATE -O2)
target_link_libraries(outside_nio PRIVATE libnetio Threads::Threads)
# The baseline's queue as the Lua module rawq (build-dir/rawq.so), for the
# Lua-thread senders of bench/outside_lua.lua (server lua-raw). Like
# netio.core it compiles against Lua's headers only and takes the API from
# the process that loads it (the netio host).
add_library(outside_rawq MODULE ${CMAKE_SOURCE_DIR}/bench/outside_rawq.c)
target_compile_options(outside_rawq PRIVATE -O2)
target_include_directories(outside_rawq PRIVATE ${LUA_INCLUDE_DIRS})
target_link_libraries(outside_rawq PRIVATE Threads::Threads ${CMAKE_DL_LIBS})
set_target_properties(outside_rawq PROPERTIES PREFIX "" OUTPUT_NAME rawq
  LIBRARY_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR})
# UDP echo (bench/udp_echo.sh): the load generator and the raw C baseline.
add_executable(udp_loadgen ${CMAKE_SOURCE_DIR}/bench/udp_loadgen.c)
target_compile_options(udp_loadgen PRIVATE -O2)
add_executable(udp_echo_c ${CMAKE_SOURCE_DIR}/bench/udp_echo_c.c)
target_compile_options(udp_echo_c PRIVATE -O2)
