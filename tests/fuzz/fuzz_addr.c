/*
** fuzz_addr.c: libFuzzer target for the address parser -- nio__addr_split
** ("host:port", "[v6]:port", "*:port") and nio__addr_numeric -- with the
** formatter nio__addr_format as a round trip. The input is the address
** string (a NUL inside it ends it, as in C); its first byte also picks the
** host buffer's size, so that the length checks are driven too.
*/
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int host_char_ok(unsigned char ch) {
  return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
         (ch >= '0' && ch <= '9') || ch == '.' || ch == '-' || ch == '_' ||
         ch == ':' || ch == '%';
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char *s, host[300], ip[64], again[80];
  size_t hostlen, n;
  int port = -1, port2 = -1, r;
  nio_addr a, b;
  if (size == 0) return 0;
  hostlen = 1 + data[0] % sizeof host;
  /* A heap copy of exactly the string and its NUL: ASan sees a read past
  ** its end. */
  if ((s = malloc(size + 1)) == NULL) return 0;
  memcpy(s, data, size);
  s[size] = '\0';
  memset(host, 'Z', sizeof host);
  r = nio__addr_split(s, host, hostlen, &port);
  if (r != 0) {
    if (r != NIO_EBADADDR) abort();
    free(s);
    return 0;
  }
  n = strnlen(host, hostlen);
  if (n >= hostlen) abort(); /* not terminated within its buffer */
  if (port < 0 || port > 65535) abort();
  for (size_t i = 0; i < n; i++)
    if (!host_char_ok((unsigned char)host[i])) abort();
  /* The port is the digits after the last ':'. */
  if (atoi(strrchr(s, ':') + 1) != port) abort();
  r = nio__addr_numeric(host, port, &a);
  /* A name, a malformed literal, or a zone naming no interface here. */
  if (r == NIO_EAI_NONAME || r == NIO_EBADADDR || r == NIO_ENODEV) {
    free(s);
    return 0;
  }
  if (r != 0) abort();
  /* Round trip: the address formatted, then parsed again, is the same. */
  if (nio__addr_format(&a, ip, sizeof ip, &port2) != 0) abort();
  if (port2 != port) abort();
  snprintf(again, sizeof again, strchr(ip, ':') ? "[%s]:%d" : "%s:%d", ip,
           port);
  if (nio__addr_split(again, host, sizeof host, &port2) != 0) abort();
  if (nio__addr_numeric(host, port2, &b) != 0) abort();
  if (nio__addr_format(&b, again, sizeof again, &port2) != 0) abort();
  if (strcmp(ip, again) != 0 || port2 != port) abort();
  free(s);
  return 0;
}
