# specs-win.cmake: the busted spec files, unchanged, on the Windows build's
# own Lua (lua.exe + lua54.dll from tools/win-deps.sh), run under Wine when
# cross-building (CMAKE_CROSSCOMPILING_EMULATOR). Busted's Lua code is
# Debian's (/usr/share/lua/5.4, which Windows programs see through Wine's Z:
# drive); of its C modules, lfs is cross-built by tools/win-spec-deps.sh and
# system.core / term.core are Lua shims in tests/win/shims.
if(NOT BUSTED)
  message(WARNING "busted not found: the Lua specs are not run")
  return()
endif()
set(NETIO_BUSTED_LUA_DIR /usr/share/lua/5.4 CACHE PATH
    "Where busted, luassert, penlight... are (Debian's lua-busted)")

if(NOT EXISTS ${NETIO_WIN_DEPS}/.spec-done-v1)
  execute_process(
    COMMAND bash ${CMAKE_SOURCE_DIR}/tools/win-spec-deps.sh ${NETIO_WIN_DEPS}
    RESULT_VARIABLE _spec_deps_rc)
  if(NOT _spec_deps_rc EQUAL 0)
    message(FATAL_ERROR "tools/win-spec-deps.sh failed (${_spec_deps_rc})")
  endif()
endif()

# A host path as the Windows programs see it: under Wine the host's / is
# drive Z:. cmd.exe (the specs' H.sh) wants backslashes.
function(netio_win_path out path)
  if(CMAKE_CROSSCOMPILING AND CMAKE_HOST_UNIX)
    set(path "Z:${path}")
  endif()
  string(REPLACE "/" "\\" path "${path}")
  set(${out} "${path}" PARENT_SCOPE)
endfunction()

set(_path "")
foreach(dir ${CMAKE_SOURCE_DIR}/tests/win/shims ${CMAKE_SOURCE_DIR}/lua
            ${CMAKE_SOURCE_DIR}/spec ${NETIO_BUSTED_LUA_DIR})
  netio_win_path(d ${dir})
  string(APPEND _path "${d}\\?.lua\;${d}\\?\\init.lua\;")
endforeach()
netio_win_path(_lib ${CMAKE_BINARY_DIR}/lib)
netio_win_path(_clib ${NETIO_WIN_DEPS}/clib)
set(_cpath "${_lib}\\?.dll\;${_clib}\\?.dll")
netio_win_path(_host ${CMAKE_BINARY_DIR}/netio.exe)

# The TLS specs' throw-away CA (tools/test-ca.sh, run on the host), named
# for the Windows programs by NETIO_TEST_CA through Z:.
set(_ca_dir ${CMAKE_BINARY_DIR}/test-ca)
netio_win_path(_ca ${_ca_dir})
if(CMAKE_HOST_UNIX)
  add_test(NAME lua.test_ca
    COMMAND bash ${CMAKE_SOURCE_DIR}/tools/test-ca.sh ${_ca_dir})
  set_tests_properties(lua.test_ca PROPERTIES FIXTURES_SETUP test_ca)
endif()

file(GLOB NETIO_SPECS CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/spec/*_spec.lua)
foreach(spec ${NETIO_SPECS})
  get_filename_component(name ${spec} NAME_WE)
  foreach(be ${NETIO_TEST_BACKENDS})
    add_test(NAME lua.${name}.${be}
      COMMAND ${CMAKE_CROSSCOMPILING_EMULATOR} ${CMAKE_BINARY_DIR}/lua.exe
              ${BUSTED} -o utfTerminal ${spec}
      WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
    set_tests_properties(lua.${name}.${be} PROPERTIES
      ENVIRONMENT "NETIO_BACKEND=${be};LUA_PATH_5_4=${_path};LUA_CPATH_5_4=${_cpath};NETIO_HOST=${_host};NETIO_TEST_CA=${_ca};${NETIO_WINE_ENV}"
      SKIP_RETURN_CODE 77 TIMEOUT 300 LABELS "lua;${be}")
    if(name MATCHES "tls" AND CMAKE_HOST_UNIX)
      set_tests_properties(lua.${name}.${be} PROPERTIES
        FIXTURES_REQUIRED test_ca)
    endif()
  endforeach()
endforeach()
