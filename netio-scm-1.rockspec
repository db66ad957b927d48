-- luarocks --lua-version=5.4 make   (from the top of a clone)
-- Builds with CMake: netio.core, the Lua files and the netio host program.
-- Needs Lua 5.4 headers, cmake and pkg-config; liburing-dev gives the
-- io_uring backend (without it the build is epoll-only), libssl-dev TLS.
rockspec_format = "3.0"
package = "netio"
version = "scm-1"
source = {
  -- luarocks make builds the clone it runs in; this names no published
  -- repository (there is none yet).
  url = "git+file://.",
}
description = {
  summary = "Coroutine network engine for Lua 5.4 on I/O completion ports",
  detailed = [[
netio serves every TCP connection with a Lua coroutine that reads like
blocking code; underneath, each operation is a request on a completion port
(io_uring or epoll on Linux, IOCP on Windows). TCP, UDP, Unix sockets, TLS,
a connection pool, a resolver, OS threads, and OpenResty's cosocket API.
]],
}
dependencies = {
  "lua >= 5.4, < 5.5",
}
build = {
  type = "cmake",
  variables = {
    CMAKE_BUILD_TYPE = "Release",
    -- Where luarocks wants the modules of this rock.
    NETIO_LUA_CMOD_DIR = "$(LIBDIR)",
    NETIO_LUA_LMOD_DIR = "$(LUADIR)",
    CMAKE_INSTALL_BINDIR = "$(BINDIR)",
    NETIO_INSTALL_C_API = "OFF",
    NETIO_TESTS = "OFF",
    NETIO_BENCH = "OFF",
    NETIO_FUZZ = "OFF",
  },
}
