/*
** fuzz_line.c: libFuzzer target for the "*l" line scan, nio__line_scan.
** The input is a byte stream arriving in pieces (their sizes taken from the
** input's first bytes) and a line limit; the scan, called as conn.c calls
** it (input growing, lines consumed, the long line dropped on "too long"), is
** compared with a plain split of the whole stream on LF.
*/
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The reference: the first line of s[0..len) as the API describes it. */
static int ref_line(const char *s, size_t len, size_t max, size_t *linelen,
                    size_t *used) {
  size_t k;
  for (k = 0; k < len && s[k] != '\n'; k++) {
  }
  if (k == len) {
    *used = len;
    return len > max ? NIO_EMSGSIZE : NIO_EAGAIN;
  }
  *used = k + 1;
  if (k > 0 && s[k - 1] == '\r') k--;
  if (k > max) return NIO_EMSGSIZE;
  *linelen = k;
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const uint8_t *stream;
  size_t max, n, arrived = 0, start = 0, scan = 0, pieces = 0;
  char *buf;
  if (size < 3) return 0;
  max = data[0] % 64;        /* a small limit, so "too long" is common */
  pieces = 1 + data[1] % 16; /* how big the arriving pieces are */
  stream = data + 2;
  n = size - 2;
  /* The input buffer holds exactly the bytes arrived and not consumed:
  ** ASan catches a read past them. */
  while (start < n) {
    size_t len, linelen = 0, used = 0, rlen = 0, rused = 0;
    int r, rr;
    if (arrived < n) {
      arrived += pieces + (arrived * 7) % 5;
      if (arrived > n) arrived = n;
    }
    len = arrived - start;
    if ((buf = malloc(len ? len : 1)) == NULL) return 0;
    memcpy(buf, stream + start, len);
    r = nio__line_scan(buf, len, &scan, max, &linelen, &used);
    rr = ref_line(buf, len, max, &rlen, &rused);
    free(buf);
    if (r != rr) abort();
    if (r == 0) {
      if (linelen != rlen || used != rused || scan != 0) abort();
      start += used;
    } else if (r == NIO_EMSGSIZE) {
      /* conn.c hands the over-long line to the caller (what is buffered
      ** of it), never the lines after it. */
      if (used != rused || used == 0) abort();
      start += used;
      scan = 0;
    } else {
      if (r != NIO_EAGAIN || scan != len) abort();
      if (arrived == n) break; /* the stream ended inside a line */
    }
  }
  return 0;
}
