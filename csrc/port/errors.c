/*
** errors.c: the NIO_E* list turned into messages and names.
*/
#include <errno.h>
#include "netio.h"

const char *nio_strerror(int err) {
  switch (err) {
#define NIO__ERR_MSG(name, num, msg)                                         \
  case NIO_##name:                                                           \
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
#define NIO__ERR_NAME(name, num, msg)                                        \
  case NIO_##name:                                                           \
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
