# windows.cmake: the Windows side of the build (MinGW cross build or native
# MinGW): Lua 5.4 and cmocka built from Debian sources by tools/win-deps.sh,
# imported under the names the Linux build gets from pkg-config.
set(NETIO_WIN_DEPS ${CMAKE_BINARY_DIR}/deps CACHE PATH
    "Prefix with Lua 5.4 and cmocka built for Windows (tools/win-deps.sh)")
if(NOT EXISTS ${NETIO_WIN_DEPS}/.done-v1)
  message(STATUS "netio: building Lua and cmocka for Windows into ${NETIO_WIN_DEPS}")
  execute_process(
    COMMAND bash ${CMAKE_SOURCE_DIR}/tools/win-deps.sh ${NETIO_WIN_DEPS}
    RESULT_VARIABLE _deps_rc)
  if(NOT _deps_rc EQUAL 0)
    message(FATAL_ERROR "tools/win-deps.sh failed (${_deps_rc})")
  endif()
endif()

# Vista+ APIs: GetQueuedCompletionStatusEx, CancelIoEx, SRW locks,
# condition variables, inet_ntop; 0x0601 = Windows 7.
set(NETIO_WIN_DEFS WIN32_LEAN_AND_MEAN NOMINMAX _WIN32_WINNT=0x0601)

# OpenSSL (tools/win-openssl.sh): static libraries in a prefix outside the
# MinGW root, given as OPENSSL_ROOT_DIR. The toolchain file lets find_*
# search only under its roots, so that prefix becomes one; static, so that
# no OpenSSL DLL has to travel with the programs.
set(OPENSSL_USE_STATIC_LIBS TRUE)
if(OPENSSL_ROOT_DIR)
  list(APPEND CMAKE_FIND_ROOT_PATH ${OPENSSL_ROOT_DIR})
endif()

add_library(PkgConfig::LUA SHARED IMPORTED)
set_target_properties(PkgConfig::LUA PROPERTIES
  IMPORTED_LOCATION ${NETIO_WIN_DEPS}/bin/lua54.dll
  IMPORTED_IMPLIB ${NETIO_WIN_DEPS}/lib/liblua54.dll.a
  INTERFACE_INCLUDE_DIRECTORIES ${NETIO_WIN_DEPS}/include)
set(LUA_INCLUDE_DIRS ${NETIO_WIN_DEPS}/include)

add_library(PkgConfig::CMOCKA STATIC IMPORTED)
set_target_properties(PkgConfig::CMOCKA PROPERTIES
  IMPORTED_LOCATION ${NETIO_WIN_DEPS}/lib/libcmocka.a
  INTERFACE_INCLUDE_DIRECTORIES ${NETIO_WIN_DEPS}/include)
set(CMOCKA_FOUND TRUE)

# No libgcc DLL next to the programs.
add_link_options(-static-libgcc)

set(NETIO_CORE_DEF ${CMAKE_BINARY_DIR}/netio_core.def)
file(WRITE ${NETIO_CORE_DEF} "EXPORTS\n  luaopen_netio_core\n")

# netio.exe finds lua54.dll next to itself; so do the tests and lua.exe.
file(COPY ${NETIO_WIN_DEPS}/bin/lua54.dll ${NETIO_WIN_DEPS}/bin/lua.exe
     DESTINATION ${CMAKE_BINARY_DIR})
