/*
** errors.c: the NIO_E* list turned into messages and names, and the one
** place where OS error codes become NIO_E* (errno on Linux; Winsock and
** Win32 codes on Windows).
*/
#include <errno.h>
#include "netio.h"
#ifdef _WIN32
#include <winsock2.h>
#endif

const char *nio_strerror(int err) {
  switch (err) {
#define NIO__ERR_MSG(name, num, msg)                                           \
  case NIO_##name:                                                             \
    return msg;
    NIO_ERRNO_MAP(NIO__ERR_MSG)
#undef NIO__ERR_MSG
  case 0:
    return "success";
  default:
    return "unknown error";
  }
}

const char *nio_err_name(int err) {
  switch (err) {
#define NIO__ERR_NAME(name, num, msg)                                          \
  case NIO_##name:                                                             \
    return #name;
    NIO_ERRNO_MAP(NIO__ERR_NAME)
#undef NIO__ERR_NAME
  case 0:
    return "OK";
  default:
    return "EUNKNOWN";
  }
}

#ifndef _WIN32
/* On Linux the NIO_E* values are -errno by construction; codes the list
** does not name pass through unchanged (and print as "unknown error"). */
int nio_translate_sys_error(int sys_errno) {
  if (sys_errno == EWOULDBLOCK) return NIO_EAGAIN;
  return -sys_errno;
}
#endif

#ifdef _WIN32
/* Windows: WSAGetLastError()/GetLastError() codes (the two share one
** number space; C runtime errno values do not and are never passed here).
** Unknown codes become NIO_EIO rather than a value that could collide
** with another NIO_E*. */
int nio_translate_sys_error(int e) {
  switch (e) {
  case 0:
    return 0;
  case WSAEINTR:
    return NIO_EINTR;
  case WSAEBADF:
  case WSAENOTSOCK:
  case ERROR_INVALID_HANDLE:
    return e == WSAENOTSOCK ? NIO_ENOTSOCK : NIO_EBADF;
  case WSAEACCES:
  case ERROR_ACCESS_DENIED:
    return NIO_EACCES;
  case WSAEFAULT:
  case ERROR_NOACCESS:
    return NIO_EFAULT;
  case WSAEINVAL:
  case ERROR_INVALID_PARAMETER:
  case ERROR_INVALID_FUNCTION:
    return NIO_EINVAL;
  case WSAEMFILE:
  case ERROR_TOO_MANY_OPEN_FILES:
    return NIO_EMFILE;
  case WSAEWOULDBLOCK:
  case WSATRY_AGAIN:
    return NIO_EAGAIN;
  case WSAEINPROGRESS:
  case ERROR_IO_PENDING:
    return NIO_EINPROGRESS;
  case WSAEALREADY:
    return NIO_EALREADY;
  case WSAEMSGSIZE:
    return NIO_EMSGSIZE;
  case WSAEPROTONOSUPPORT:
  case WSAESOCKTNOSUPPORT:
    return NIO_EPROTONOSUPPORT;
  case WSAEOPNOTSUPP:
  case ERROR_NOT_SUPPORTED:
    return NIO_EOPNOTSUPP;
  case WSAEAFNOSUPPORT:
  case WSAEPFNOSUPPORT:
    return NIO_EAFNOSUPPORT;
  case WSAEADDRINUSE:
  case ERROR_ADDRESS_ALREADY_ASSOCIATED:
    return NIO_EADDRINUSE;
  case WSAEADDRNOTAVAIL:
    return NIO_EADDRNOTAVAIL;
  case WSAENETDOWN:
  case ERROR_NETWORK_UNREACHABLE:
    return e == WSAENETDOWN ? NIO_ENETDOWN : NIO_ENETUNREACH;
  case WSAENETUNREACH:
    return NIO_ENETUNREACH;
  case WSAENETRESET:
  case WSAECONNRESET:
  case ERROR_NETNAME_DELETED: /* the peer reset a pending operation */
    return NIO_ECONNRESET;
  case WSAECONNABORTED:
  case ERROR_CONNECTION_ABORTED:
  case ERROR_REQUEST_ABORTED:
    return NIO_ECONNABORTED;
  case WSAENOBUFS:
  case ERROR_NOT_ENOUGH_MEMORY:
  case ERROR_OUTOFMEMORY:
    return e == WSAENOBUFS ? NIO_ENOBUFS : NIO_ENOMEM;
  case WSAEISCONN:
    return NIO_EISCONN;
  case WSAENOTCONN:
    return NIO_ENOTCONN;
  case WSAESHUTDOWN:
  case ERROR_BROKEN_PIPE:
  case ERROR_NO_DATA:
    return NIO_EPIPE;
  case WSAETIMEDOUT:
  case ERROR_SEM_TIMEOUT:
  case WAIT_TIMEOUT:
    return NIO_ETIMEDOUT;
  case WSAECONNREFUSED:
  case ERROR_CONNECTION_REFUSED:
    return NIO_ECONNREFUSED;
  case WSAEHOSTDOWN:
    return NIO_EHOSTDOWN;
  case WSAEHOSTUNREACH:
  case ERROR_HOST_UNREACHABLE:
    return NIO_EHOSTUNREACH;
  case WSAENAMETOOLONG:
    return NIO_ENAMETOOLONG;
  case WSA_OPERATION_ABORTED: /* == ERROR_OPERATION_ABORTED */
    return NIO_ECANCELED;
  case WSAHOST_NOT_FOUND:
  case WSANO_DATA:
    return NIO_EAI_NONAME;
  case WSANO_RECOVERY:
    return NIO_EAI_FAIL;
  case WSASYSNOTREADY:
  case WSAVERNOTSUPPORTED:
  case WSANOTINITIALISED:
    return NIO_ENOSYS;
  case ERROR_FILE_NOT_FOUND:
  case ERROR_PATH_NOT_FOUND:
    return NIO_ENOENT;
  default:
    return NIO_EIO;
  }
}
#endif
