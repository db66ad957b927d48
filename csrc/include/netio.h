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
  XX(EBADADDR, 4090, "malformed address")

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
** Embedding. An engine owns one completion port and one worker thread; all
** Lua code of the engine runs on that thread.
*/
typedef struct nio_engine nio_engine;

typedef struct nio_options {
  const char *backend; /* "uring", "epoll", "iocp" or NULL for the best */
} nio_options;

#ifdef __cplusplus
}
#endif

#endif /* NETIO_H */
