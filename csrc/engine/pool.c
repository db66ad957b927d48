/*
** pool.c: the engine's block pools -- free lists of per-message buffers
** (input buffers, copy chunks) by size class, so a message skips malloc.
*/
#include <stdlib.h>
#include "internal.h"

/* Buffers of 512 B << k (k < NIO_POOL_CLASSES) are kept in the engine's
** pools, up to this many bytes in all. Under AddressSanitizer nothing is
** kept, so a use after free is still caught. */
#define CONN_POOL_MIN_SHIFT 9
#ifndef CONN_POOL_BYTES
#if defined(__SANITIZE_ADDRESS__)
#define CONN_POOL_BYTES 0
#else
#define CONN_POOL_BYTES ((size_t)4 << 20)
#endif
#endif

/* log2 of sz, a power of two: a bit scan where the compiler has one (two
** pool operations a message), else a loop. */
static int buf_log2(size_t sz) {
#if defined(__GNUC__)
  return __builtin_ctzll((unsigned long long)sz);
#else
  int k = 0;
  while (sz > 1) sz >>= 1, k++;
  return k;
#endif
}

/* The class of a request of n bytes: the smallest k whose blocks hold n,
** or -1 above the classes. */
static int buf_need_class(size_t n) {
  size_t sz = (size_t)1 << CONN_POOL_MIN_SHIFT;
  if (n <= sz) return 0;
  if (n > sz << (NIO_POOL_CLASSES - 1)) return -1;
#if defined(__GNUC__)
  /* n - 1 has its top bit at the class's size log2 - 1. */
  return (int)(sizeof(unsigned long long) * 8) -
         __builtin_clzll((unsigned long long)(n - 1)) - CONN_POOL_MIN_SHIFT;
#else
  {
    int k = 0;
    while (sz < n) sz <<= 1, k++;
    return k;
  }
#endif
}

/* The size nio__buf_get() allocates for a request of n bytes: the next size
** class, or n itself above the classes. */
size_t nio__buf_size(size_t n) {
  int k = buf_need_class(n);
  return k < 0 ? n : (size_t)1 << (CONN_POOL_MIN_SHIFT + k);
}

/* The pool of a block of size sz, or -1 when sz is not a class size. */
static int buf_class(size_t sz) {
  if (sz < (size_t)1 << CONN_POOL_MIN_SHIFT ||
      sz > (size_t)1 << (CONN_POOL_MIN_SHIFT + NIO_POOL_CLASSES - 1) ||
      (sz & (sz - 1)) != 0)
    return -1;
  return buf_log2(sz) - CONN_POOL_MIN_SHIFT;
}

/* A block of nio__buf_size(n) bytes. */
void *nio__buf_get(nio_engine *e, size_t n) {
  int k = buf_need_class(n);
  size_t sz;
  void *b;
  if (k < 0) return malloc(n);
  sz = (size_t)1 << (CONN_POOL_MIN_SHIFT + k);
  if ((b = e->pools[k].head) == NULL) return malloc(sz);
  e->pools[k].head = *(void **)b;
  e->pooled -= sz;
  return b;
}

/* Give back a block of sz bytes (from nio__buf_get, or any malloc'ed block). */
void nio__buf_put(nio_engine *e, void *b, size_t sz) {
  int k = buf_class(sz);
  if (b == NULL) return;
  if (k < 0 || e->pooled + sz > CONN_POOL_BYTES) {
    free(b);
    return;
  }
  *(void **)b = e->pools[k].head;
  e->pools[k].head = b;
  e->pooled += sz;
}

void nio__conns_free_pools(nio_engine *e) {
  void *b;
  for (int k = 0; k < NIO_POOL_CLASSES; k++)
    while ((b = e->pools[k].head) != NULL) {
      e->pools[k].head = *(void **)b;
      free(b);
    }
  e->pooled = 0;
}
