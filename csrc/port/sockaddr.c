/*
** sockaddr.c: socket-address helpers shared by both OS layers.
*/
#include "sys.h"
#ifdef _WIN32
#include <iphlpapi.h> /* if_nametoindex, if_indextoname (Vista and later) */
#else
#include <arpa/inet.h>
#include <net/if.h>
#endif

int nio__if_index(const char *zone, uint32_t *index) {
  char name[IF_NAMESIZE];
  unsigned long v = 0;
  const char *q = zone;
  *index = 0;
  if (*zone >= '0' && *zone <= '9') {
    for (; *q >= '0' && *q <= '9'; q++) {
      v = v * 10 + (unsigned long)(*q - '0');
      if (v > UINT32_MAX) return NIO_ENODEV;
    }
  }
  if (q != zone && *q == '\0') {
    /* A number: the scope as it is, if an interface has that index. */
    if (v == 0 || if_indextoname((unsigned)v, name) == NULL) return NIO_ENODEV;
    *index = (uint32_t)v;
    return 0;
  }
  if ((v = if_nametoindex(zone)) == 0) return NIO_ENODEV;
  *index = (uint32_t)v;
  return 0;
}

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
