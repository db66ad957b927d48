/*
** sockaddr.c: socket-address helpers shared by both OS layers.
*/
#ifndef _WIN32
#include <arpa/inet.h>
#endif
#include "sys.h"

/* IPv4 clients of a dual-stack listener arrive as ::ffff:a.b.c.d; they are
** shown as plain IPv4, the form users compare against. */
int nio__addr_format(const nio_addr *a, char *ip, size_t iplen, int *port) {
  const struct sockaddr_in *s4;
  const struct sockaddr_in6 *s6;
  const void *src;
  int family = a->ss.ss_family;
  if (family == AF_INET) {
    s4 = (const struct sockaddr_in *)&a->ss;
    src = &s4->sin_addr;
    *port = ntohs(s4->sin_port);
  } else if (family == AF_INET6) {
    s6 = (const struct sockaddr_in6 *)&a->ss;
    src = &s6->sin6_addr;
    *port = ntohs(s6->sin6_port);
    if (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr)) {
      family = AF_INET;
      src = &s6->sin6_addr.s6_addr[12];
    }
  } else {
    return NIO_EAFNOSUPPORT;
  }
  if (inet_ntop(family, src, ip, (socklen_t)iplen) == NULL)
    return nio__sock_last_error();
  return 0;
}
