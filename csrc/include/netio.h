/*
** netio.h: the public C API of netio, a completion-port network engine
** for Lua 5.4. Everything public is named nio_ / NIO_.
**
** Every function returns 0 (or a count) on success and a negative NIO_E*
** code on failure. On Linux the codes equal -errno; other systems translate
** their own codes to these values in one place (csrc/port).
*/
#ifndef NETIO_H
#define NETIO_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define NIO_VERSION "0.1.0"

/*
** The error list. XX(name, errno value on Linux, message). Codes that have
** no errno counterpart use values above 4000, out of errno's range.
*/
#define NIO_ERRNO_MAP(XX)                                                      \
  XX(EPERM, 1, "operation not permitted")                                      \
  XX(ENOENT, 2, "no such file or directory")                                   \
  XX(EINTR, 4, "interrupted system call")                                      \
  XX(EIO, 5, "i/o error")                                                      \
  XX(EBADF, 9, "bad file descriptor")                                          \
  XX(EAGAIN, 11, "resource temporarily unavailable")                           \
  XX(ENOMEM, 12, "not enough memory")                                          \
  XX(EACCES, 13, "permission denied")                                          \
  XX(EFAULT, 14, "bad address")                                                \
  XX(EBUSY, 16, "busy")                                                        \
  XX(EEXIST, 17, "file exists")                                                \
  XX(ENODEV, 19, "no such device")                                             \
  XX(EINVAL, 22, "invalid argument")                                           \
  XX(ENFILE, 23, "file table overflow")                                        \
  XX(EMFILE, 24, "too many open files")                                        \
  XX(ENOSPC, 28, "no space left on device")                                    \
  XX(EPIPE, 32, "broken pipe")                                                 \
  XX(ERANGE, 34, "result out of range")                                        \
  XX(ENAMETOOLONG, 36, "name too long")                                        \
  XX(ENOSYS, 38, "function not implemented")                                   \
  XX(ENOTSOCK, 88, "socket operation on non-socket")                           \
  XX(EMSGSIZE, 90, "message too long")                                         \
  XX(EPROTONOSUPPORT, 93, "protocol not supported")                            \
  XX(EOPNOTSUPP, 95, "operation not supported")                                \
  XX(EAFNOSUPPORT, 97, "address family not supported")                         \
  XX(EADDRINUSE, 98, "address already in use")                                 \
  XX(EADDRNOTAVAIL, 99, "address not available")                               \
  XX(ENETDOWN, 100, "network is down")                                         \
  XX(ENETUNREACH, 101, "network is unreachable")                               \
  XX(ECONNABORTED, 103, "connection aborted")                                  \
  XX(ECONNRESET, 104, "connection reset by peer")                              \
  XX(ENOBUFS, 105, "no buffer space available")                                \
  XX(EISCONN, 106, "socket is already connected")                              \
  XX(ENOTCONN, 107, "socket is not connected")                                 \
  XX(ETIMEDOUT, 110, "timeout")                                                \
  XX(ECONNREFUSED, 111, "connection refused")                                  \
  XX(EHOSTDOWN, 112, "host is down")                                           \
  XX(EHOSTUNREACH, 113, "host is unreachable")                                 \
  XX(EALREADY, 114, "operation already in progress")                           \
  XX(EINPROGRESS, 115, "operation in progress")                                \
  XX(ECANCELED, 125, "operation canceled")                                     \
  XX(EOF, 4095, "end of file")                                                 \
  XX(ECLOSED, 4094, "closed")                                                  \
  XX(EAI_NONAME, 4093, "host or service not known")                            \
  XX(EAI_AGAIN, 4092, "temporary failure in name resolution")                  \
  XX(EAI_FAIL, 4091, "name resolution failed")                                 \
  XX(EBADADDR, 4090, "malformed address")                                      \
  XX(ETLS, 4089, "handshake failed")                                           \
  XX(ECERT, 4088, "certificate verify failed")

enum {
#define NIO__ERR_ENUM(name, num, msg) NIO_##name = -(num),
  NIO_ERRNO_MAP(NIO__ERR_ENUM)
#undef NIO__ERR_ENUM
      NIO__ERR_END = 0
};

/* Message for a NIO_E* code ("connection refused"); never NULL. */
const char *nio_strerror(int err);
/* Symbolic name of a NIO_E* code ("ECONNREFUSED"); never NULL. */
const char *nio_err_name(int err);
/* Translate a positive OS error number (errno / WSAGetLastError) to NIO_E*. */
int nio_translate_sys_error(int sys_errno);

/*
** Embedding. An engine owns one completion port, one worker thread and one
** Lua state; all Lua code of the engine runs on the worker thread. The
** calling thread gets control back at once after nio_engine_start().
**
**   nio_engine *e;
**   nio_engine_new(&e, NULL);
**   nio_engine_start(e, "server.lua", argc, argv);
**   ... nio_send(id, data, len) from any thread ...
**   nio_engine_stop(e);            (or let the script end by itself)
**   nio_engine_join(e, &status);
**   nio_engine_free(e);
*/
typedef struct nio_engine nio_engine;
struct lua_State;

typedef struct nio_options {
  /* "uring", "epoll", "iocp", or NULL: NETIO_BACKEND, else the best. */
  const char *backend;
  /* Per connection: the most bytes nio_send() may have waiting for one
  ** connection -- in the inbox and in its output queue together -- before
  ** it answers NIO_EBUSY. 0: 4 MiB. */
  size_t send_limit;
  /* The most bytes of messages waiting in the engine's inbox (nio_send,
  ** nio_post) before senders get NIO_EBUSY. 0: 16 MiB. */
  size_t inbox_limit;
  /* The most bytes of posted messages not yet received by a task before
  ** nio_post() answers NIO_EBUSY. 0: 64 MiB. */
  size_t post_limit;
} nio_options;

/* Create an engine and its Lua state (standard libraries open, `netio`
** loadable with require). opts may be NULL. Returns 0, NIO_EINVAL (an
** unknown backend name), NIO_ENOMEM or NIO_ENOSPC (too many engines). */
int nio_engine_new(nio_engine **out, const nio_options *opts);
/* The engine's Lua state, to prepare before nio_engine_start() (set
** globals, register C functions, push the first task's function). It
** belongs to the worker thread from nio_engine_start() until
** nio_engine_join() returns: do not touch it in between. */
struct lua_State *nio_engine_state(nio_engine *e);
/* Start the worker thread and return. The first task runs script (a file
** path, or "-" for standard input) with argv[1..argc-1] as its arguments
** and the global `arg` set as lua.c does (unless already set); with script
** NULL it runs the function on top of the state's stack instead, with the
** same arguments. Returns 0; NIO_EINVAL (already started, nothing to run,
** or the script does not compile: nio_engine_error() says why);
** NIO_ENOENT (the script cannot be read); or a thread creation error. */
int nio_engine_start(nio_engine *e, const char *script, int argc, char **argv);
/* Any thread, async-signal-safe: ask for a graceful stop (listeners
** close, tasks get a grace period, queued output is flushed). */
void nio_engine_stop(nio_engine *e);
/* Wait for the engine to end. *status (may be NULL) is 0 when the first
** task returned, 1 when it raised (nio_engine_error() has its message and
** traceback). Returns 0, or NIO_E* when the engine could not run (its
** backend could not be opened). */
int nio_engine_join(nio_engine *e, int *status);
/* The last error of the engine (a script that failed to load, the first
** task's error with its traceback), or NULL. Valid until the next call on
** e. */
const char *nio_engine_error(nio_engine *e);
/* Free the engine (after nio_engine_join, or if never started). Sends
** and posts that race with it get NIO_ECLOSED; e must not be used after. */
void nio_engine_free(nio_engine *e);

/* Whether the backend named ("uring", "epoll", "iocp") can run here. */
int nio_backend_available(const char *name);
/* The backends this build has ("uring", "epoll" on Linux; "iocp" on
** Windows), in the order the best is chosen: name i (from 0), or NULL
** past the last. A name not in this list is an unknown backend. */
const char *nio_backend_name(int i);

/* Counters of an engine; call after nio_engine_join(). */
typedef struct nio_stats {
  uint64_t dropped_bytes;   /* queued output dropped by closes */
  uint64_t outside_dropped; /* nio_send() bytes whose connection closed
                            ** before they were queued */
} nio_stats;
void nio_engine_stats(nio_engine *e, nio_stats *st);

/*
** Any thread. Queue a copy of len bytes for sending on connection id (a
** netio conn:id()). Bytes from one thread to one connection are sent in
** the order of the calls. Returns 0; NIO_ECLOSED when id names no open
** connection (closed by either side, from an engine that ended, or never
** valid); NIO_EBUSY when the bytes already waiting for the connection
** reach its send limit, or the engine's inbox is full (nothing was queued:
** retry later); NIO_ENOMEM. Bytes accepted are sent while the peer reads;
** if the connection closes first they are counted in outside_dropped.
** len 0 only checks that id is open.
*/
int nio_send(uint64_t id, const void *data, size_t len);
/* Any thread. Post a copy of len bytes to the engine: a task gets it as a
** string from netio.receive(). Returns 0, NIO_ECLOSED (the engine ended),
** NIO_EBUSY (the engine's post limit is reached), NIO_ENOMEM. */
int nio_post(nio_engine *e, const void *data, size_t len);

#ifdef __cplusplus
}
#endif

#endif /* NETIO_H */
