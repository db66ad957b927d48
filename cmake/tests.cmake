# Every C test and every busted spec runs once per backend available.
if(WIN32)
  # cmocka comes from cmake/windows.cmake; the tests run under the
  # CMAKE_CROSSCOMPILING_EMULATOR (wine64) when cross-building.
  set(NETIO_TEST_BACKENDS iocp CACHE STRING "Backends the tests run on")
  # Linux-only tests: test_port_uring (io_uring itself), test_port_select
  # (the uring -> epoll choice), test_sys (sys_unix.c: fcntl flags,
  # SO_REUSEPORT, POSIX threads details).
  set(NETIO_TEST_EXCLUDE test_port_uring test_port_select test_sys)
  set(NETIO_WINE_ENV "WINEDEBUG=-all" "WINEPREFIX=${CMAKE_BINARY_DIR}/wineprefix")
  set(NETIO_TEST_HELPERS_OS ${CMAKE_SOURCE_DIR}/tests/helpers_win.c)
elseif(NETIO_HAVE_URING)
  set(NETIO_TEST_BACKENDS uring epoll CACHE STRING "Backends the tests run on")
  set(NETIO_TEST_EXCLUDE "")
  set(NETIO_WINE_ENV "")
  set(NETIO_TEST_HELPERS_OS ${CMAKE_SOURCE_DIR}/tests/helpers_posix.c)
else()
  # An epoll-only build (no liburing): io_uring's own tests and the
  # uring -> epoll choice have nothing to test.
  set(NETIO_TEST_BACKENDS epoll CACHE STRING "Backends the tests run on")
  set(NETIO_TEST_EXCLUDE test_port_uring test_port_select)
  set(NETIO_WINE_ENV "")
  set(NETIO_TEST_HELPERS_OS ${CMAKE_SOURCE_DIR}/tests/helpers_posix.c)
endif()

# A stock lua5.4 cannot load a sanitized module without the runtime
# preloaded, and a preloaded TSan crashes the shells the specs start. So
# sanitizer builds run busted on luarun, a minimal lua5.4 linked with the
# runtime; plain builds use the stock lua5.4.
add_executable(luarun ${CMAKE_SOURCE_DIR}/tests/luarun.c)
target_link_libraries(luarun PRIVATE PkgConfig::LUA)
if(NETIO_SANITIZE)
  set(NETIO_SPEC_LUA $<TARGET_FILE:luarun>)
else()
  set(NETIO_SPEC_LUA ${LUA54})
endif()
set(NETIO_SAN_ENV
  "ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:detect_stack_use_after_return=0"
  "UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1"
  "TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1")
# TSan runs the receiveuntil fuzz about 30 times slower: a tenth of its
# cases there (the plain and ASan builds run all 100,000).
# It makes TLS handshakes about 25 times dearer in CPU (1,000 concurrent TLS
# connections: 2 s plain, 53 s under TSan on one core): specs that are
# mostly CPU stretch their bounds (or their counts) by NETIO_TIME_SCALE
# (spec/helper.lua's H.time_scale), and each spec file gets twice the time.
set(NETIO_SPEC_TIMEOUT 300)
if(NETIO_SANITIZE MATCHES "thread")
  list(APPEND NETIO_SAN_ENV "NETIO_RU_FUZZ_CASES=10000" "NETIO_TIME_SCALE=2")
  set(NETIO_SPEC_TIMEOUT 600)
endif()

# C tests: tests/test_<feature>.c, with tests/helpers.c shared.
file(GLOB NETIO_C_TESTS CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/tests/test_*.c)
foreach(src ${NETIO_C_TESTS})
  get_filename_component(name ${src} NAME_WE)
  if(name IN_LIST NETIO_TEST_EXCLUDE)
    continue()
  endif()
  # OpenSSL's own tests: only in a build with TLS.
  if(name MATCHES "^test_tls" AND NOT NETIO_TLS)
    continue()
  endif()
  add_executable(${name} ${src} ${CMAKE_SOURCE_DIR}/tests/helpers.c
                 ${NETIO_TEST_HELPERS_OS})
  target_include_directories(${name} PRIVATE ${CMAKE_SOURCE_DIR}/tests)
  if(name STREQUAL "test_embed")
    # The public embedding API: the whole library, Lua included.
    target_link_libraries(${name} PRIVATE libnetio PkgConfig::CMOCKA)
  else()
    target_link_libraries(${name} PRIVATE netio_engine PkgConfig::CMOCKA)
  endif()
  foreach(be ${NETIO_TEST_BACKENDS})
    add_test(NAME c.${name}.${be} COMMAND ${name})
    set_tests_properties(c.${name}.${be} PROPERTIES
      ENVIRONMENT "NETIO_BACKEND=${be};${NETIO_SAN_ENV};${NETIO_WINE_ENV}"
      SKIP_RETURN_CODE 77 TIMEOUT 300 LABELS "c;${be}")
  endforeach()
endforeach()

# Lua specs: spec/<feature>_spec.lua, run by busted on lua5.4 against the
# module just built. busted's script runs straight on the interpreter (the
# same as `busted --lua=lua5.4` without the hop through Debian's Lua 5.1,
# which would also turn the skip status 77 into 1).
if(WIN32)
  # The specs under Wine, on the Windows lua.exe (cmake/specs-win.cmake):
  # AUTO (when busted is found), ON (required) or OFF.
  set(NETIO_WIN_SPECS AUTO CACHE STRING "Windows: the Lua specs under Wine: AUTO, ON or OFF")
  netio_want(_want NETIO_WIN_SPECS)
  netio_required(_req NETIO_WIN_SPECS)
  if(_want AND BUSTED)
    message(STATUS "netio: Windows spec runner: ON (busted ${BUSTED}, Lua under the emulator)")
    include(${CMAKE_SOURCE_DIR}/cmake/specs-win.cmake)
  elseif(_req)
    message(FATAL_ERROR "NETIO_WIN_SPECS=ON needs busted (Debian: lua-busted)")
  elseif(_want)
    message(STATUS "netio: Windows spec runner: OFF (busted not found)")
  else()
    message(STATUS "netio: Windows spec runner: OFF (NETIO_WIN_SPECS=OFF)")
  endif()
elseif(BUSTED AND LUA54)
  file(GLOB NETIO_SPECS CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/spec/*_spec.lua)
  set(_path "${CMAKE_SOURCE_DIR}/lua/?.lua\;${CMAKE_SOURCE_DIR}/lua/?/init.lua\;${CMAKE_SOURCE_DIR}/spec/?.lua\;\;")
  set(_cpath "${CMAKE_BINARY_DIR}/lib/?.so\;\;")
  # The TLS specs' certificates: a throw-away CA made at test time into the
  # build directory (tools/test-ca.sh), named by NETIO_TEST_CA.
  set(_ca "${CMAKE_BINARY_DIR}/test-ca")
  # The backends this build has, as the host's usage lists them
  # (spec/host_spec.lua: an epoll-only build says so).
  if(NETIO_HAVE_URING)
    set(_build_backends "uring, epoll")
  else()
    set(_build_backends "epoll")
  endif()
  add_test(NAME lua.test_ca COMMAND bash ${CMAKE_SOURCE_DIR}/tools/test-ca.sh ${_ca})
  set_tests_properties(lua.test_ca PROPERTIES FIXTURES_SETUP test_ca)
  foreach(spec ${NETIO_SPECS})
    get_filename_component(name ${spec} NAME_WE)
    foreach(be ${NETIO_TEST_BACKENDS})
      add_test(NAME lua.${name}.${be}
        COMMAND ${NETIO_SPEC_LUA} ${BUSTED} -o utfTerminal ${spec}
        WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
      set_tests_properties(lua.${name}.${be} PROPERTIES
        ENVIRONMENT "NETIO_BACKEND=${be};LUA_PATH_5_4=${_path};LUA_CPATH_5_4=${_cpath};NETIO_HOST=$<TARGET_FILE:netio>;NETIO_TEST_CA=${_ca};NETIO_BUILD_BACKENDS=${_build_backends};${NETIO_SAN_ENV}"
        SKIP_RETURN_CODE 77 TIMEOUT ${NETIO_SPEC_TIMEOUT} LABELS "lua;${be}")
      if(name MATCHES "tls")
        set_tests_properties(lua.${name}.${be} PROPERTIES
          FIXTURES_REQUIRED test_ca)
      endif()
    endforeach()
  endforeach()
  # Every public call has an entry in docs/api.md (tools/docs-check.lua,
  # which loads the module just built); and the check names a call whose
  # entry is taken out of a copy of api.md, so that it cannot pass blindly.
  add_test(NAME lint.docs_check
    COMMAND ${NETIO_SPEC_LUA} tools/docs-check.lua ${CMAKE_BINARY_DIR}
    WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
  add_test(NAME lint.docs_check_names_a_call_without_an_entry
    COMMAND sh -c "grep -v '^### conn:shutdown()' docs/api.md >\"$0/api-gap.md\" && \
! ${NETIO_SPEC_LUA} tools/docs-check.lua \"$0\" \"$0/api-gap.md\" 2>\"$0/api-gap.err\" && \
grep -q 'method netio.conn:shutdown' \"$0/api-gap.err\" || \
{ echo 'expected docs-check to fail naming netio.conn:shutdown'; cat \"$0/api-gap.err\"; exit 1; }"
      ${CMAKE_BINARY_DIR}
    WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
  set_tests_properties(lint.docs_check lint.docs_check_names_a_call_without_an_entry
    PROPERTIES ENVIRONMENT "${NETIO_SAN_ENV}" TIMEOUT 60 LABELS "lint")
else()
  message(WARNING "busted or lua5.4 not found: Lua specs are not run")
endif()

# The embedding example (examples/embed.c), run on every backend: two C
# threads push lines to the clients of a Lua server with nio_send, and the
# clients check every line.
foreach(be ${NETIO_TEST_BACKENDS})
  add_test(NAME example.embed.${be} COMMAND embed 4 5000)
  set_tests_properties(example.embed.${be} PROPERTIES
    ENVIRONMENT "NETIO_BACKEND=${be};${NETIO_SAN_ENV};${NETIO_WINE_ENV}"
    TIMEOUT 300 LABELS "example;${be}")
endforeach()

# The installed package: cmake --install into a scratch prefix, then
# examples/embed.c built against it with pkg-config and with
# find_package(netio), and the Lua module loaded by a stock lua5.4.
# (Not in sanitizer builds: the installed library would need their runtime.)
if(NOT WIN32 AND NOT NETIO_SANITIZE)
  add_test(NAME install.package
    COMMAND bash ${CMAKE_SOURCE_DIR}/tools/install-check.sh ${CMAKE_BINARY_DIR})
  set_tests_properties(install.package PROPERTIES TIMEOUT 300
    LABELS "install")
endif()
