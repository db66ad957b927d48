/*
** scan.c: finding the end of a line in buffered input ("*l" reads). Pure:
** no connection, no Lua, so that a fuzzer can drive it alone
** (tests/fuzz/fuzz_line.c).
*/
#include <string.h>
#include "internal.h"

int nio__line_scan(const char *p, size_t len, size_t *scan, size_t max,
                   size_t *linelen, size_t *used) {
  const char *nl = NULL;
  size_t k, m;
  /* Only the bytes not searched yet: a long line arriving in small pieces
  ** is not searched again from its start on every piece. */
  if (len > *scan) nl = memchr(p + *scan, '\n', len - *scan);
  if (nl == NULL) {
    *scan = len;
    /* No LF within max bytes: the line is too long already, and every
    ** byte buffered belongs to it. */
    *used = len;
    return len > max ? NIO_EMSGSIZE : NIO_EAGAIN;
  }
  m = k = (size_t)(nl - p);
  if (m > 0 && p[m - 1] == '\r') m--;
  *scan = 0;
  *used = k + 1;
  /* The limit holds also when the whole line arrived at once: the line
  ** (up to its LF) is all a failure may take, not the lines after it. */
  if (m > max) return NIO_EMSGSIZE;
  *linelen = m;
  return 0;
}
