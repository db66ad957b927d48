/*
** outside_baseline.c: the raw C baseline of the outside-threads benchmark
** (bench/outside.sh): what nio_send() is measured against.
**
**   outside_baseline -a ip:port [-c conns] [-t threads] [-r rate]
**                    [-l send_limit] [-q queue_limit] [-b backoff_us]
**
** It listens, prints "ready", accepts `conns` connections, then starts
** `threads` sender threads (outside_common.h: 64-byte messages,
** round-robin over the connections, flat out, or `rate` messages per
** second in all) while the main thread is a plain epoll writer:
**
**  - senders append to one vector under a mutex; the first message of a
**    batch writes an eventfd (a flag under the same mutex says a wake-up
**    is pending; the write itself is done after unlocking);
**  - the writer reads the eventfd, swaps the vector for its spare one
**    under the mutex (no allocation per message: both vectors keep their
**    capacity), appends each message to its connection's output buffer,
**    then writes every connection that got bytes with one write(2);
**    a connection the kernel refuses (EAGAIN) waits for EPOLLOUT (edge
**    triggered).
**
** Bounds, the same as nio_send()'s: a connection refuses more ("busy")
** while `send_limit` bytes wait for it (in the vector and in its output
** buffer together), and the vector refuses more while it holds
** `queue_limit` bytes (a message counts its slot, 68 bytes). A sender
** that hears "busy" pauses `backoff_us` and retries, as the nio_send and
** netio.send senders do. Defaults: 4 MiB and 16 MiB, nio's defaults.
** When the reader goes away the writes fail, the senders hear "closed",
** and the program prints the senders' counts and exits.
*/
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>
#include "outside_common.h"

typedef struct bq_item {
  uint32_t conn;
  unsigned char data[OM_SIZE];
} bq_item;

/* The queue the senders fill, under mu. */
static struct {
  pthread_mutex_t mu;
  bq_item *items;
  size_t n, cap;
  int wake_pending;
} q = {PTHREAD_MUTEX_INITIALIZER, NULL, 0, 0, 0};

/* A connection: its output buffer is the writer's; pending and closed
** are read by the senders. */
typedef struct bconn {
  int fd;
  int blocked; /* the last write hit EAGAIN: wait for EPOLLOUT */
  int dirty;   /* on the writer's list of connections to write */
  char *buf;
  size_t off, len, cap;
  _Atomic size_t pending; /* bytes in the queue + in buf, for the bound */
  atomic_int closed;
} bconn;

static bconn *conns;
static int nconn = 100, efd;
static size_t send_limit = (size_t)4 << 20, queue_limit = (size_t)16 << 20;
static atomic_int senders_done;

static void die(const char *what) {
  perror(what);
  exit(1);
}

/* The senders' call: 0 queued, 1 busy, -1 closed. */
static int bq_push(void *ctx, int ci, const unsigned char *msg) {
  bconn *c = &conns[ci];
  size_t before;
  int wake;
  (void)ctx;
  if (atomic_load_explicit(&c->closed, memory_order_relaxed)) return -1;
  /* Reserve first, so concurrent senders see each other's bytes. */
  before = atomic_fetch_add(&c->pending, OM_SIZE);
  if (before >= send_limit) {
    atomic_fetch_sub(&c->pending, OM_SIZE);
    return 1;
  }
  pthread_mutex_lock(&q.mu);
  if (q.n > 0 && (q.n + 1) * sizeof(bq_item) > queue_limit) {
    pthread_mutex_unlock(&q.mu);
    atomic_fetch_sub(&c->pending, OM_SIZE);
    return 1;
  }
  if (q.n == q.cap) {
    size_t cap = q.cap ? q.cap * 2 : 4096;
    bq_item *p = realloc(q.items, cap * sizeof *p);
    if (p == NULL) die("realloc");
    q.items = p;
    q.cap = cap;
  }
  q.items[q.n].conn = (uint32_t)ci;
  memcpy(q.items[q.n].data, msg, OM_SIZE);
  q.n++;
  wake = !q.wake_pending;
  q.wake_pending = 1;
  pthread_mutex_unlock(&q.mu);
  if (wake) {
    uint64_t one = 1;
    if (write(efd, &one, sizeof one) < 0 && errno != EAGAIN) die("eventfd");
  }
  return 0;
}

static void conn_fail(bconn *c) {
  atomic_store(&c->closed, 1);
  atomic_fetch_sub(&c->pending, c->len);
  c->off = c->len = 0;
}

static void conn_append(bconn *c, const unsigned char *p) {
  if (c->off + c->len + OM_SIZE > c->cap) {
    if (c->off > 0) {
      memmove(c->buf, c->buf + c->off, c->len);
      c->off = 0;
    }
    if (c->len + OM_SIZE > c->cap) {
      size_t cap = c->cap ? c->cap * 2 : 16384;
      char *b = realloc(c->buf, cap);
      if (b == NULL) die("realloc");
      c->buf = b;
      c->cap = cap;
    }
  }
  memcpy(c->buf + c->off + c->len, p, OM_SIZE);
  c->len += OM_SIZE;
}

/* Write what the connection holds, until done or EAGAIN. */
static void conn_flush(bconn *c) {
  while (c->len > 0) {
    ssize_t w = send(c->fd, c->buf + c->off, c->len, MSG_NOSIGNAL);
    if (w < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN) {
        c->blocked = 1;
        return;
      }
      conn_fail(c);
      return;
    }
    c->off += (size_t)w;
    c->len -= (size_t)w;
    atomic_fetch_sub(&c->pending, (size_t)w);
  }
  c->off = 0;
}

static void *sender_main(void *arg) {
  om_sender_run(arg);
  atomic_fetch_add(&senders_done, 1);
  uint64_t one = 1;
  if (write(efd, &one, sizeof one) < 0) { /* wake the writer to see it */
  }
  return NULL;
}

int main(int argc, char **argv) {
  om_opts oo;
  const char *addr;
  int nthreads, lfd, ep, one = 1, port;
  double rate;
  uint64_t backoff_ns;
  char host[64];
  struct sockaddr_in sa = {.sin_family = AF_INET};
  struct epoll_event ev, evs[256];
  bq_item *spare = NULL;
  size_t spare_cap = 0;
  int *dirty;
  int ndirty = 0;
  om_sender *snd;
  pthread_t *th;

  if (om_parse_opts(argc, argv, "outside_baseline", &oo) != 0) return 2;
  addr = oo.addr;
  nconn = oo.nconn;
  nthreads = oo.nthreads;
  rate = oo.rate;
  backoff_ns = oo.backoff_ns;
  if (oo.send_limit) send_limit = oo.send_limit;
  if (oo.queue_limit) queue_limit = oo.queue_limit;
  if (om_split_addr(addr, host, sizeof host, &port) != 0 ||
      inet_pton(AF_INET, host, &sa.sin_addr) != 1) {
    fprintf(stderr, "outside_baseline: bad arguments\n");
    return 2;
  }
  signal(SIGPIPE, SIG_IGN);
  sa.sin_port = htons((uint16_t)port);
  lfd = socket(AF_INET, SOCK_STREAM, 0);
  setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (bind(lfd, (struct sockaddr *)&sa, sizeof sa) || listen(lfd, 4096))
    die("listen");
  printf("ready\n");
  fflush(stdout);

  conns = calloc((size_t)nconn, sizeof *conns);
  dirty = calloc((size_t)nconn, sizeof *dirty);
  if (!conns || !dirty) die("calloc");
  if ((ep = epoll_create1(EPOLL_CLOEXEC)) < 0) die("epoll_create1");
  if ((efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0) die("eventfd");
  ev.events = EPOLLIN;
  ev.data.u64 = UINT64_MAX;
  if (epoll_ctl(ep, EPOLL_CTL_ADD, efd, &ev) != 0) die("epoll_ctl");
  for (int i = 0; i < nconn; i++) {
    int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) die("accept");
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    conns[i].fd = fd;
    ev.events = EPOLLOUT | EPOLLET;
    ev.data.u64 = (uint64_t)i;
    if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) != 0) die("epoll_ctl");
  }
  close(lfd);

  snd = calloc((size_t)nthreads, sizeof *snd);
  th = calloc((size_t)nthreads, sizeof *th);
  if (!snd || !th) die("calloc");
  for (int t = 0; t < nthreads; t++) {
    snd[t] = (om_sender){.send = bq_push,
                         .tid = t,
                         .nthreads = nthreads,
                         .nconn = nconn,
                         .rate = rate / nthreads,
                         .backoff_ns = backoff_ns};
    if (pthread_create(&th[t], NULL, sender_main, &snd[t]) != 0)
      die("pthread_create");
  }

  while (atomic_load(&senders_done) < nthreads) {
    int n = epoll_wait(ep, evs, 256, -1), wake = 0;
    if (n < 0) {
      if (errno == EINTR) continue;
      die("epoll_wait");
    }
    for (int k = 0; k < n; k++) {
      bconn *c;
      if (evs[k].data.u64 == UINT64_MAX) {
        wake = 1;
        continue;
      }
      c = &conns[evs[k].data.u64];
      if (evs[k].events & (EPOLLERR | EPOLLHUP)) {
        conn_fail(c);
        continue;
      }
      c->blocked = 0;
      conn_flush(c);
    }
    if (!wake) continue;
    /* Read the eventfd before taking the batch: a wake-up written after
    ** the read announces messages the swap below may already take (one
    ** spare turn), never messages it leaves behind unannounced. */
    {
      uint64_t v;
      if (read(efd, &v, sizeof v) < 0 && errno != EAGAIN) die("eventfd");
    }
    bq_item *items;
    size_t cnt, cap;
    pthread_mutex_lock(&q.mu);
    items = q.items;
    cap = q.cap;
    cnt = q.n;
    q.items = spare;
    q.cap = spare_cap;
    q.n = 0;
    q.wake_pending = 0;
    pthread_mutex_unlock(&q.mu);
    for (size_t k = 0; k < cnt; k++) {
      bconn *c = &conns[items[k].conn];
      if (atomic_load_explicit(&c->closed, memory_order_relaxed)) {
        atomic_fetch_sub(&c->pending, OM_SIZE);
        continue;
      }
      conn_append(c, items[k].data);
      if (!c->dirty) {
        c->dirty = 1;
        dirty[ndirty++] = (int)items[k].conn;
      }
    }
    /* The vector taken becomes the spare, its capacity kept. */
    spare = items;
    spare_cap = cap;
    for (int k = 0; k < ndirty; k++) {
      bconn *c = &conns[dirty[k]];
      c->dirty = 0;
      if (!c->blocked) conn_flush(c);
    }
    ndirty = 0;
  }
  for (int t = 0; t < nthreads; t++) pthread_join(th[t], NULL);
  {
    uint64_t sent = 0, busy = 0;
    for (int t = 0; t < nthreads; t++) sent += snd[t].sent, busy += snd[t].busy;
    printf("senders=%d sent=%llu busy=%llu\n", nthreads,
           (unsigned long long)sent, (unsigned long long)busy);
  }
  return 0;
}
