# Every C test and every busted spec runs once per backend available.
find_package(PkgConfig REQUIRED)
pkg_check_modules(CMOCKA REQUIRED IMPORTED_TARGET cmocka)
find_program(BUSTED busted)
find_program(LUA54 lua5.4)

set(NETIO_TEST_BACKENDS uring epoll CACHE STRING "Backends the tests run on")

# A stock lua5.4 loading a sanitized module needs the runtime preloaded.
set(NETIO_PRELOAD "")
if(NETIO_SANITIZE)
  foreach(rt asan ubsan tsan)
    if((rt STREQUAL "asan" AND NETIO_SANITIZE MATCHES "address") OR
       (rt STREQUAL "ubsan" AND NETIO_SANITIZE MATCHES "undefined") OR
       (rt STREQUAL "tsan" AND NETIO_SANITIZE MATCHES "thread"))
      execute_process(COMMAND ${CMAKE_C_COMPILER} -print-file-name=lib${rt}.so
                      OUTPUT_VARIABLE _lib OUTPUT_STRIP_TRAILING_WHITESPACE)
      list(APPEND NETIO_PRELOAD ${_lib})
    endif()
  endforeach()
  string(REPLACE ";" ":" NETIO_PRELOAD "${NETIO_PRELOAD}")
endif()
set(NETIO_SAN_ENV
  "ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:detect_stack_use_after_return=0"
  "UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1"
  "TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1")

# C tests: tests/test_<feature>.c, with tests/helpers.c shared.
file(GLOB NETIO_C_TESTS CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/tests/test_*.c)
foreach(src ${NETIO_C_TESTS})
  get_filename_component(name ${src} NAME_WE)
  add_executable(${name} ${src} ${CMAKE_SOURCE_DIR}/tests/helpers.c)
  target_include_directories(${name} PRIVATE ${CMAKE_SOURCE_DIR}/tests)
  target_link_libraries(${name} PRIVATE netio_engine PkgConfig::CMOCKA)
  foreach(be ${NETIO_TEST_BACKENDS})
    add_test(NAME c.${name}.${be} COMMAND ${name})
    set_tests_properties(c.${name}.${be} PROPERTIES
      ENVIRONMENT "NETIO_BACKEND=${be};${NETIO_SAN_ENV}"
      SKIP_RETURN_CODE 77 TIMEOUT 300 LABELS "c;${be}")
  endforeach()
endforeach()

# Lua specs: spec/<feature>_spec.lua, run by busted on lua5.4 against the
# module just built.
if(BUSTED AND LUA54)
  file(GLOB NETIO_SPECS CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/spec/*_spec.lua)
  set(_path "${CMAKE_SOURCE_DIR}/lua/?.lua\;${CMAKE_SOURCE_DIR}/lua/?/init.lua\;${CMAKE_SOURCE_DIR}/spec/?.lua\;\;")
  set(_cpath "${CMAKE_BINARY_DIR}/lib/?.so\;\;")
  foreach(spec ${NETIO_SPECS})
    get_filename_component(name ${spec} NAME_WE)
    foreach(be ${NETIO_TEST_BACKENDS})
      add_test(NAME lua.${name}.${be}
        COMMAND ${BUSTED} --lua=${LUA54} -o utfTerminal ${spec}
        WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
      set_tests_properties(lua.${name}.${be} PROPERTIES
        ENVIRONMENT "NETIO_BACKEND=${be};LUA_PATH_5_4=${_path};LUA_CPATH_5_4=${_cpath};NETIO_HOST=$<TARGET_FILE:netio>;LD_PRELOAD=${NETIO_PRELOAD};${NETIO_SAN_ENV}"
        SKIP_RETURN_CODE 77 TIMEOUT 300 LABELS "lua;${be}")
    endforeach()
  endforeach()
else()
  message(WARNING "busted or lua5.4 not found: Lua specs are not run")
endif()
