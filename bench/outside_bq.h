/*
** outside_bq.h: the raw C queue of the outside-threads benchmark
** (bench/outside.sh), what nio_send() and netio.send() are measured
** against. Two programs include it: outside_baseline.c pushes from C
** sender threads, outside_rawq.c (the Lua module rawq) from Lua threads,
** so the two raw figures differ only in who calls bq_push().
**
** One queue and one writer per process:
**
**  - senders append to one vector under a mutex; the first message of a
**    batch writes an eventfd (a flag under the same mutex says a wake-up
**    is pending; the write itself is done after unlocking);
**  - the writer (bq_run) reads the eventfd, swaps the vector for its spare
**    one under the mutex (no allocation per message: both vectors keep
**    their capacity), appends each message to its connection's output
**    buffer, then writes every connection that got bytes with one
**    write(2); a connection the kernel refuses (EAGAIN) waits for EPOLLOUT
**    (edge triggered).
**
** Bounds, the same as nio_send()'s: a connection refuses more ("busy")
** while `send_limit` bytes wait for it (in the vector and in its output
** buffer together), and the vector refuses more while it holds
** `queue_limit` bytes (a message counts its slot, 68 bytes). Defaults:
** 4 MiB and 16 MiB, nio's defaults. When the reader goes away the writes
** fail and the connection's senders hear "closed".
*/
#ifndef OUTSIDE_BQ_H
#define OUTSIDE_BQ_H

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include "outside_common.h"

typedef struct bq_item {
  uint32_t conn;
  unsigned char data[OM_SIZE];
} bq_item;

/* A connection: its output buffer, blocked and dirty are the writer's;
** pending and closed are read by the senders. */
typedef struct bconn {
  int fd;
  int blocked; /* the last write hit EAGAIN: wait for EPOLLOUT */
  int dirty;   /* on the writer's list of connections to write */
  char *buf;
  size_t off, len, cap;
  _Atomic size_t pending; /* bytes in the queue + in buf, for the bound */
  atomic_int closed;
} bconn;

/* The process's queue (items, n, cap, wake_pending: under mu) and its
** connections. bq_accept() allocates conns, the eventfd and the epoll set
** before any sender starts; they live as long as the process (the
** programs end when the benchmark run does). stop asks bq_run to return. */
static struct {
  pthread_mutex_t mu;
  bq_item *items;
  size_t n, cap;
  int wake_pending;
  bconn *conns;
  int nconn, efd, ep;
  size_t send_limit, queue_limit;
  atomic_int stop;
} bq = {.mu = PTHREAD_MUTEX_INITIALIZER,
        .send_limit = (size_t)4 << 20,
        .queue_limit = (size_t)16 << 20};

static inline void bq_die(const char *what) {
  perror(what);
  exit(1);
}

/* The senders' call: 0 queued, 1 busy, -1 closed. */
static inline int bq_push(void *ctx, int ci, const unsigned char *msg) {
  bconn *c = &bq.conns[ci];
  size_t before;
  int wake;
  (void)ctx;
  if (atomic_load_explicit(&c->closed, memory_order_relaxed)) return -1;
  /* Reserve first, so concurrent senders see each other's bytes. */
  before = atomic_fetch_add(&c->pending, OM_SIZE);
  if (before >= bq.send_limit) {
    atomic_fetch_sub(&c->pending, OM_SIZE);
    return 1;
  }
  pthread_mutex_lock(&bq.mu);
  if (bq.n > 0 && (bq.n + 1) * sizeof(bq_item) > bq.queue_limit) {
    pthread_mutex_unlock(&bq.mu);
    atomic_fetch_sub(&c->pending, OM_SIZE);
    return 1;
  }
  if (bq.n == bq.cap) {
    size_t cap = bq.cap ? bq.cap * 2 : 4096;
    bq_item *p = realloc(bq.items, cap * sizeof *p);
    if (p == NULL) bq_die("realloc");
    bq.items = p;
    bq.cap = cap;
  }
  bq.items[bq.n].conn = (uint32_t)ci;
  memcpy(bq.items[bq.n].data, msg, OM_SIZE);
  bq.n++;
  wake = !bq.wake_pending;
  bq.wake_pending = 1;
  pthread_mutex_unlock(&bq.mu);
  if (wake) {
    uint64_t one = 1;
    if (write(bq.efd, &one, sizeof one) < 0 && errno != EAGAIN)
      bq_die("eventfd");
  }
  return 0;
}

/* Listens on "ip:port": the socket, or -1 with errno set. */
static inline int bq_listen(const char *addr) {
  struct sockaddr_in sa = {.sin_family = AF_INET};
  char host[64];
  int port, fd, one = 1;
  if (om_split_addr(addr, host, sizeof host, &port) != 0 ||
      inet_pton(AF_INET, host, &sa.sin_addr) != 1) {
    errno = EINVAL;
    return -1;
  }
  sa.sin_port = htons((uint16_t)port);
  if ((fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0) return -1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (bind(fd, (struct sockaddr *)&sa, sizeof sa) || listen(fd, 4096)) {
    int e = errno;
    close(fd);
    errno = e;
    return -1;
  }
  return fd;
}

/* Accepts `nconn` connections on lfd (then closes it) and sets up the
** writer's epoll set; limits left 0 keep the defaults. 0, or -1 with
** errno set (the queue then cannot be used). */
static inline int bq_accept(int lfd, int nconn, size_t send_limit,
                            size_t queue_limit) {
  struct epoll_event ev;
  int one = 1;
  if (send_limit) bq.send_limit = send_limit;
  if (queue_limit) bq.queue_limit = queue_limit;
  if ((bq.conns = calloc((size_t)nconn, sizeof *bq.conns)) == NULL) return -1;
  if ((bq.ep = epoll_create1(EPOLL_CLOEXEC)) < 0) return -1;
  if ((bq.efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0) return -1;
  ev.events = EPOLLIN;
  ev.data.u64 = UINT64_MAX;
  if (epoll_ctl(bq.ep, EPOLL_CTL_ADD, bq.efd, &ev) != 0) return -1;
  for (int i = 0; i < nconn; i++) {
    int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) return -1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    bq.conns[i].fd = fd;
    ev.events = EPOLLOUT | EPOLLET;
    ev.data.u64 = (uint64_t)i;
    if (epoll_ctl(bq.ep, EPOLL_CTL_ADD, fd, &ev) != 0) return -1;
  }
  bq.nconn = nconn;
  close(lfd);
  return 0;
}

/* Makes bq_run return at its next wake-up; from any thread. */
static inline void bq_stop(void) {
  uint64_t one = 1;
  atomic_store(&bq.stop, 1);
  if (write(bq.efd, &one, sizeof one) < 0 && errno != EAGAIN) bq_die("eventfd");
}

static inline void bq_conn_fail(bconn *c) {
  atomic_store(&c->closed, 1);
  atomic_fetch_sub(&c->pending, c->len);
  c->off = c->len = 0;
}

static inline void bq_conn_append(bconn *c, const unsigned char *p) {
  if (c->off + c->len + OM_SIZE > c->cap) {
    if (c->off > 0) {
      memmove(c->buf, c->buf + c->off, c->len);
      c->off = 0;
    }
    if (c->len + OM_SIZE > c->cap) {
      size_t cap = c->cap ? c->cap * 2 : 16384;
      char *b = realloc(c->buf, cap);
      if (b == NULL) bq_die("realloc");
      c->buf = b;
      c->cap = cap;
    }
  }
  memcpy(c->buf + c->off + c->len, p, OM_SIZE);
  c->len += OM_SIZE;
}

/* Write what the connection holds, until done or EAGAIN. */
static inline void bq_conn_flush(bconn *c) {
  while (c->len > 0) {
    ssize_t w = send(c->fd, c->buf + c->off, c->len, MSG_NOSIGNAL);
    if (w < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN) {
        c->blocked = 1;
        return;
      }
      bq_conn_fail(c);
      return;
    }
    c->off += (size_t)w;
    c->len -= (size_t)w;
    atomic_fetch_sub(&c->pending, (size_t)w);
  }
  c->off = 0;
}

/* The writer: on the thread that called bq_accept or one started after
** it, until bq_stop(). */
static inline void bq_run(void) {
  struct epoll_event evs[256];
  bq_item *spare = NULL;
  size_t spare_cap = 0;
  int *dirty = calloc((size_t)bq.nconn, sizeof *dirty);
  int ndirty = 0;
  if (dirty == NULL) bq_die("calloc");
  while (!atomic_load(&bq.stop)) {
    int n = epoll_wait(bq.ep, evs, 256, -1), wake = 0;
    if (n < 0) {
      if (errno == EINTR) continue;
      bq_die("epoll_wait");
    }
    for (int k = 0; k < n; k++) {
      bconn *c;
      if (evs[k].data.u64 == UINT64_MAX) {
        wake = 1;
        continue;
      }
      c = &bq.conns[evs[k].data.u64];
      if (evs[k].events & (EPOLLERR | EPOLLHUP)) {
        bq_conn_fail(c);
        continue;
      }
      c->blocked = 0;
      bq_conn_flush(c);
    }
    if (!wake) continue;
    /* Read the eventfd before taking the batch: a wake-up written after
    ** the read announces messages the swap below may already take (one
    ** spare turn), never messages it leaves behind unannounced. */
    {
      uint64_t v;
      if (read(bq.efd, &v, sizeof v) < 0 && errno != EAGAIN) bq_die("eventfd");
    }
    bq_item *items;
    size_t cnt, cap;
    pthread_mutex_lock(&bq.mu);
    items = bq.items;
    cap = bq.cap;
    cnt = bq.n;
    bq.items = spare;
    bq.cap = spare_cap;
    bq.n = 0;
    bq.wake_pending = 0;
    pthread_mutex_unlock(&bq.mu);
    for (size_t k = 0; k < cnt; k++) {
      bconn *c = &bq.conns[items[k].conn];
      if (atomic_load_explicit(&c->closed, memory_order_relaxed)) {
        atomic_fetch_sub(&c->pending, OM_SIZE);
        continue;
      }
      bq_conn_append(c, items[k].data);
      if (!c->dirty) {
        c->dirty = 1;
        dirty[ndirty++] = (int)items[k].conn;
      }
    }
    /* The vector taken becomes the spare, its capacity kept. */
    spare = items;
    spare_cap = cap;
    for (int k = 0; k < ndirty; k++) {
      bconn *c = &bq.conns[dirty[k]];
      c->dirty = 0;
      if (!c->blocked) bq_conn_flush(c);
    }
    ndirty = 0;
  }
  free(dirty);
  free(spare);
}

#endif
