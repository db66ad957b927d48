/*
** addr.c: address strings ("host:port", "[v6]:port", "*:port",
** "unix:/path") split and parsed into socket addresses; names go to
** resolve.c.
*/
#include <string.h>
#include "internal.h"

/* Host characters allowed outside brackets: names and IPv4 literals. Kept
** strict so that junk is reported here rather than as a failed lookup. */
static int addr_host_char(unsigned char ch) {
  return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
         (ch >= '0' && ch <= '9') || ch == '.' || ch == '-' || ch == '_';
}

/* Inside brackets: an IPv6 literal, possibly with a zone ("fe80::1%eth0"). */
static int addr_v6_char(unsigned char ch) {
  return addr_host_char(ch) || ch == ':' || ch == '%';
}

static int addr_port(const char *s, int *port) {
  long v = 0;
  int n = 0;
  if (*s == '\0') return NIO_EBADADDR;
  for (; *s; s++, n++) {
    if (*s < '0' || *s > '9' || n >= 5) return NIO_EBADADDR;
    v = v * 10 + (*s - '0');
  }
  if (v > 65535) return NIO_EBADADDR;
  *port = (int)v;
  return 0;
}

int nio__addr_split(const char *s, char *host, size_t hostlen, int *port) {
  const char *h, *end, *colon;
  size_t n;
  if (s == NULL || host == NULL || hostlen == 0 || port == NULL)
    return NIO_EBADADDR;
  if (s[0] == '[') {
    h = s + 1;
    if ((end = strchr(h, ']')) == NULL || end == h || end[1] != ':')
      return NIO_EBADADDR;
    for (const char *q = h; q < end; q++)
      if (!addr_v6_char((unsigned char)*q)) return NIO_EBADADDR;
    /* Brackets hold an IPv6 literal, never a name or an IPv4 address: the
    ** ':' it must contain is what tells nio__addr_numeric so. */
    if (memchr(h, ':', (size_t)(end - h)) == NULL) return NIO_EBADADDR;
    colon = end + 1;
  } else {
    if ((colon = strrchr(s, ':')) == NULL) return NIO_EBADADDR;
    h = s;
    end = colon;
    if (end - h == 1 && h[0] == '*') {
      end = h; /* "*" = any */
    } else {
      for (const char *q = h; q < end; q++)
        if (!addr_host_char((unsigned char)*q)) return NIO_EBADADDR;
    }
  }
  if (addr_port(colon + 1, port) < 0) return NIO_EBADADDR;
  n = (size_t)(end - h);
  if (n >= hostlen) return NIO_EBADADDR;
  memcpy(host, h, n);
  host[n] = '\0';
  return 0;
}

/* An IPv6 literal with an optional zone ("fe80::1%eth0", "fe80::1%2").
** Parsed here rather than by the resolver, so that a malformed literal is
** EBADADDR and an unknown zone is ENODEV -- never whatever the OS makes of
** it at bind or connect time. */
static int addr_v6(const char *host, int port, nio_addr *a) {
  struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&a->ss;
  const char *zone = strchr(host, '%');
  char lit[64];
  uint32_t scope = 0;
  size_t n = zone ? (size_t)(zone - host) : strlen(host);
  int r;
  if (n == 0 || n >= sizeof lit) return NIO_EBADADDR;
  memcpy(lit, host, n);
  lit[n] = '\0';
  if (inet_pton(AF_INET6, lit, &in6->sin6_addr) != 1) return NIO_EBADADDR;
  if (zone != NULL) {
    zone++;
    if (*zone == '\0' || strchr(zone, '%') != NULL) return NIO_EBADADDR;
    if ((r = nio__if_index(zone, &scope)) < 0) return r;
  }
  in6->sin6_family = AF_INET6;
  in6->sin6_port = htons((uint16_t)port);
  in6->sin6_scope_id = scope;
  a->len = sizeof *in6;
  return 0;
}

int nio__addr_numeric(const char *host, int port, nio_addr *a) {
  struct sockaddr_in *in4 = (struct sockaddr_in *)&a->ss;
  if (host == NULL || a == NULL || port < 0 || port > 65535)
    return NIO_EBADADDR;
  memset(a, 0, sizeof *a);
  if (host[0] == '\0') {
    in4->sin_family = AF_INET;
    in4->sin_addr.s_addr = htonl(INADDR_ANY);
    in4->sin_port = htons((uint16_t)port);
    a->len = sizeof *in4;
    return 0;
  }
  if (inet_pton(AF_INET, host, &in4->sin_addr) == 1) {
    in4->sin_family = AF_INET;
    in4->sin_port = htons((uint16_t)port);
    a->len = sizeof *in4;
    return 0;
  }
  /* Only an IPv6 literal (from brackets) has ':' or '%': no name does. */
  if (strpbrk(host, ":%") != NULL) return addr_v6(host, port, a);
  return NIO_EAI_NONAME;
}

int nio__addr_name_check(const char *host) {
  size_t n = 0;
  if (host == NULL || host[0] == '\0') return NIO_EBADADDR;
  for (; host[n]; n++)
    if (!addr_host_char((unsigned char)host[n])) return NIO_EBADADDR;
  return n > 255 ? NIO_EBADADDR : 0;
}

int nio__addr_parse(const char *s, char *host, size_t hostlen, int *port,
                    nio_addr *a) {
  int r;
  if (s == NULL || a == NULL) return NIO_EBADADDR;
  if (strncmp(s, "unix:", 5) == 0) {
    *port = -1;
    if (hostlen > 0) host[0] = '\0';
    return nio__addr_unix(s + 5, a);
  }
  if ((r = nio__addr_split(s, host, hostlen, port)) != 0) return r;
  r = nio__addr_numeric(host, *port, a);
  return r == NIO_EAI_NONAME ? 1 : r;
}

/* Two addresses are the same when their bytes are (ports included: a
** resolver sets one port for all). */
static int addr_same(const nio_addr *x, const nio_addr *y) {
  return x->len == y->len && memcmp(&x->ss, &y->ss, x->len) == 0;
}

int nio__addr_dedup(nio_addr *a, int n) {
  int k = 0;
  for (int i = 0; i < n; i++) {
    int dup = 0;
    for (int j = 0; j < k && !dup; j++) dup = addr_same(&a[j], &a[i]);
    if (!dup) {
      if (k != i) a[k] = a[i];
      k++;
    }
  }
  return k;
}
