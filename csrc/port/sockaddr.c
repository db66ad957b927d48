/*
** sockaddr.c: socket-address helpers shared by both OS layers.
*/
#include <stddef.h>
#include <string.h>
#include "sys.h"
#ifdef _WIN32
#include <iphlpapi.h> /* if_nametoindex, if_indextoname (Vista and later) */
#else
#include <arpa/inet.h>
#include <net/if.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
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

#ifndef _WIN32
/* "unix:" and the path (or "@" and the abstract name; nothing for an
** unnamed socket, such as the client end seen by a server). */
static int addr_format_unix(const nio_addr *a, char *ip, size_t iplen) {
  const struct sockaddr_un *un = (const struct sockaddr_un *)&a->ss;
  size_t off = offsetof(struct sockaddr_un, sun_path), n = 0;
  const char *p = un->sun_path;
  int abstract = 0;
  if (a->len > off) n = a->len - off;
  if (n > sizeof un->sun_path) n = sizeof un->sun_path;
  if (n > 0 && p[0] == '\0') {
    abstract = 1;
    p++, n--;
  } else {
    n = strnlen(p, n);
  }
  if (iplen < 5 + (size_t)abstract + n + 1) return NIO_ENAMETOOLONG;
  memcpy(ip, "unix:@", 5 + (size_t)abstract);
  memcpy(ip + 5 + abstract, p, n);
  ip[5 + abstract + n] = '\0';
  return 0;
}

int nio__addr_unix(const char *path, nio_addr *a) {
  struct sockaddr_un *un = (struct sockaddr_un *)&a->ss;
  size_t n = strlen(path), off = offsetof(struct sockaddr_un, sun_path);
  memset(a, 0, sizeof *a);
  if (n == 0 || (n == 1 && path[0] == '@')) return NIO_EINVAL;
  /* A path keeps room for its NUL (portable across kernels); an abstract
  ** name has none, and its length is part of the address. */
  if (n >= sizeof un->sun_path) return NIO_ENAMETOOLONG;
  un->sun_family = AF_UNIX;
  if (path[0] == '@') {
    memcpy(un->sun_path + 1, path + 1, n - 1);
    a->len = (uint32_t)(off + n);
  } else {
    memcpy(un->sun_path, path, n);
    a->len = (uint32_t)(off + n + 1);
  }
  return 0;
}

static const char *addr_unix_file(const nio_addr *a) {
  const struct sockaddr_un *un = (const struct sockaddr_un *)&a->ss;
  if (a->ss.ss_family != AF_UNIX ||
      a->len <= offsetof(struct sockaddr_un, sun_path) ||
      un->sun_path[0] == '\0')
    return NULL;
  return un->sun_path;
}

void nio__addr_unix_id(const nio_addr *a, nio_file_id *id) {
  const char *path = addr_unix_file(a);
  struct stat st;
  id->dev = id->ino = 0;
  if (path && stat(path, &st) == 0 && S_ISSOCK(st.st_mode)) {
    id->dev = (uint64_t)st.st_dev;
    id->ino = (uint64_t)st.st_ino;
  }
}

void nio__addr_unix_unlink(const nio_addr *a, const nio_file_id *id) {
  const char *path = addr_unix_file(a);
  struct stat st;
  if (path == NULL || (id->dev == 0 && id->ino == 0)) return;
  if (stat(path, &st) == 0 && S_ISSOCK(st.st_mode) &&
      (uint64_t)st.st_dev == id->dev && (uint64_t)st.st_ino == id->ino)
    unlink(path);
}
#else
/* Windows 10 has AF_UNIX (afunix.h), but AcceptEx and ConnectEx, which
** the iocp backend is built on, are not documented for it and Wine has
** no AF_UNIX: refused until it can be tested. */
int nio__addr_unix(const char *path, nio_addr *a) {
  (void)path;
  memset(a, 0, sizeof *a);
  return NIO_EAFNOSUPPORT;
}

void nio__addr_unix_id(const nio_addr *a, nio_file_id *id) {
  (void)a;
  id->dev = id->ino = 0;
}

void nio__addr_unix_unlink(const nio_addr *a, const nio_file_id *id) {
  (void)a;
  (void)id;
}

static int addr_format_unix(const nio_addr *a, char *ip, size_t iplen) {
  (void)a;
  (void)ip;
  (void)iplen;
  return NIO_EAFNOSUPPORT;
}
#endif

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
  } else if (family == AF_UNIX) {
    *port = -1;
    return addr_format_unix(a, ip, iplen);
  } else {
    return NIO_EAFNOSUPPORT;
  }
  if (inet_ntop(family, src, ip, (socklen_t)iplen) == NULL)
    return nio__sock_last_error();
  return 0;
}
