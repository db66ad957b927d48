/*
** outside_common.h: what the C programs of the outside-threads benchmark
** (bench/outside.sh) share -- the 64-byte message, the clock, and the
** sender loop that outside_baseline.c and outside_nio.c both run, so the
** two differ only in the call that hands a message over.
**
** The message, little-endian (bench/outside_lua.lua builds the same bytes
** with string.pack "<i8I4I2I2i8c36I4"):
**   0  u64 send time, CLOCK_MONOTONIC ns, taken just before the send call
**      that accepted the message (a retry after "busy" stamps again)
**   8  u32 OM_MAGIC1
**  12  u16 sender thread (0-based)
**  14  u16 the server's connection index (0-based, the accept order)
**  16  u64 sequence of this thread's messages on this connection (from 0)
**  24  36 filler bytes ('x')
**  60  u32 OM_MAGIC2
** bench/outside_reader.c checks both magics and every sequence, so a lost,
** repeated, reordered or torn message is reported, not counted.
*/
#ifndef OUTSIDE_COMMON_H
#define OUTSIDE_COMMON_H

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define OM_SIZE 64
#define OM_MAGIC1 0x586f696eu /* "nioX" */
#define OM_MAGIC2 0x21646e65u /* "end!" */
#define OM_MAX_THREADS 16
#define OM_MAX_CONNS 4096

static inline uint64_t om_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static inline void om_put32(unsigned char *p, uint32_t v) {
  for (int i = 0; i < 4; i++) p[i] = (unsigned char)(v >> (8 * i));
}

static inline void om_put64(unsigned char *p, uint64_t v) {
  for (int i = 0; i < 8; i++) p[i] = (unsigned char)(v >> (8 * i));
}

static inline uint32_t om_get32(const unsigned char *p) {
  uint32_t v = 0;
  for (int i = 3; i >= 0; i--) v = v << 8 | p[i];
  return v;
}

static inline uint64_t om_get64(const unsigned char *p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; i--) v = v << 8 | p[i];
  return v;
}

/* Everything but the time. */
static inline void om_fill(unsigned char *m, unsigned tid, unsigned conn,
                           uint64_t seq) {
  om_put32(m + 8, OM_MAGIC1);
  m[12] = (unsigned char)tid;
  m[13] = (unsigned char)(tid >> 8);
  m[14] = (unsigned char)conn;
  m[15] = (unsigned char)(conn >> 8);
  om_put64(m + 16, seq);
  memset(m + 24, 'x', 36);
  om_put32(m + 60, OM_MAGIC2);
}

static inline void om_nap_ns(uint64_t ns) {
  struct timespec ts = {(time_t)(ns / 1000000000u), (long)(ns % 1000000000u)};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

/* How a server hands a message for connection `conn` over: 0 accepted,
** 1 busy (full: retry later), -1 closed (the reader is gone: stop). */
typedef int (*om_send_fn)(void *ctx, int conn, const unsigned char *msg);

typedef struct om_sender {
  om_send_fn send;
  void *ctx;
  int tid, nthreads, nconn;
  double rate;         /* messages per second for this thread, 0 = flat out */
  uint64_t backoff_ns; /* pause after "busy" */
  /* Results, read after the thread ended. */
  uint64_t sent, busy;
} om_sender;

/*
** The sender loop: round-robin over the connections (thread t starts at
** connection t*nconn/nthreads), one message per call. Paced (rate > 0): a
** message is due every 1/rate s; the thread sleeps until the next is due
** and sends whatever fell due meanwhile (so it catches up after a coarse
** sleep), but never more than 10 ms of backlog. Flat out: no pause but
** after "busy". Ends when a send says "closed".
*/
static inline void *om_sender_run(void *arg) {
  om_sender *s = arg;
  unsigned char m[OM_SIZE];
  uint64_t *seq = calloc((size_t)s->nconn, sizeof *seq);
  uint64_t interval = s->rate > 0 ? (uint64_t)(1e9 / s->rate) : 0;
  uint64_t next = om_now();
  int i = (int)((long)s->tid * s->nconn / s->nthreads), r;
  if (seq == NULL) return NULL;
  for (;;) {
    if (interval) {
      uint64_t now = om_now();
      if (now < next)
        om_nap_ns(next - now);
      else if (now - next > 10000000u)
        next = now; /* fell behind (the server is saturated): no burst */
      next += interval;
    }
    om_fill(m, (unsigned)s->tid, (unsigned)i, seq[i]);
    for (;;) {
      om_put64(m, om_now());
      if ((r = s->send(s->ctx, i, m)) != 1) break;
      s->busy++;
      om_nap_ns(s->backoff_ns);
    }
    if (r < 0) break;
    seq[i]++;
    s->sent++;
    if (++i == s->nconn) i = 0;
  }
  free(seq);
  return NULL;
}

/* "ip:port" -> ip, port; 0 or -1. */
static inline int om_split_addr(const char *a, char *host, size_t hostsz,
                                int *port) {
  const char *c = strrchr(a, ':');
  if (!c || (size_t)(c - a) >= hostsz) return -1;
  memcpy(host, a, (size_t)(c - a));
  host[c - a] = '\0';
  *port = atoi(c + 1);
  return 0;
}

/* The command line both senders take (outside_baseline, outside_nio):
**   -a ip:port -c conns -t threads -r rate -l send_limit -q queue_limit
**   -b backoff_us
** Limits left 0 mean the program's default. Returns 0, or 2 after printing
** the usage for `prog`. */
typedef struct om_opts {
  const char *addr;
  int nconn, nthreads;
  double rate;
  size_t send_limit, queue_limit;
  uint64_t backoff_ns;
} om_opts;

static inline int om_parse_opts(int argc, char **argv, const char *prog,
                                om_opts *o) {
  int opt;
  *o = (om_opts){"127.0.0.1:7000", 100, 1, 0, 0, 0, 50000};
  while ((opt = getopt(argc, argv, "a:c:t:r:l:q:b:")) != -1) {
    switch (opt) {
    case 'a':
      o->addr = optarg;
      break;
    case 'c':
      o->nconn = atoi(optarg);
      break;
    case 't':
      o->nthreads = atoi(optarg);
      break;
    case 'r':
      o->rate = atof(optarg);
      break;
    case 'l':
      o->send_limit = (size_t)atoll(optarg);
      break;
    case 'q':
      o->queue_limit = (size_t)atoll(optarg);
      break;
    case 'b':
      o->backoff_ns = (uint64_t)atoll(optarg) * 1000u;
      break;
    default:
      fprintf(stderr,
              "usage: %s -a ip:port [-c conns] [-t threads] [-r rate] "
              "[-l send_limit] [-q queue_limit] [-b backoff_us]\n",
              prog);
      return 2;
    }
  }
  if (o->nconn < 1 || o->nconn > OM_MAX_CONNS || o->nthreads < 1 ||
      o->nthreads > OM_MAX_THREADS) {
    fprintf(stderr, "%s: bad arguments\n", prog);
    return 2;
  }
  return 0;
}

#endif
