/*
** udp_loadgen.c: the load generator of the UDP echo benchmark
** (bench/udp_echo.sh). K client sockets, each connected to the server and
** keeping W datagrams of S bytes in flight, for D seconds after a warm-up;
** prints the datagrams echoed per second, round-trip percentiles and
** everything that went wrong.
**
**   udp_loadgen -a 127.0.0.1:7000 [-k 16] [-W 8] [-s 64] [-d 3] [-w 1]
**               [-t timeout_ms] [-P pid[,pid]] [-C cpu]
**
** A datagram is a 16-byte header (magic, socket index, sequence; little
** endian) and filler computed from the header, so an echo is checked byte
** for byte. Each socket has W slots; slot j carries the sequences j, j+W,
** j+2W, ...: the echo of a slot's current sequence completes it and the
** slot sends its next sequence at once. UDP may drop (on loopback when the
** server's receive queue is full): a slot unanswered for `timeout_ms`
** (default 200) counts one loss and moves on to its next sequence, so the
** run never stalls and a late echo of the old sequence is recognised
** (late=) and never counted. An echo of the wrong length or content, or of
** a sequence never sent, is corrupt=. A server that vanished shows as
** errors= (ECONNREFUSED on the connected sockets) and losses.
**
** Before the clock starts it probes the server until one echo comes back
** (up to 5 s; none: exit 1), so a server still starting is not measured.
**
** This generator batches with recvmmsg/sendmmsg (the servers measured do
** not): its cost per datagram stays below a plain recvfrom/sendto server's,
** so the baseline is not held back by the load.
**
** Output, one line:
**   dgrams=N secs=D dgrams_per_sec=R p50_us=A p99_us=B lost=L late=X
**   corrupt=C errors=E lg_cpu_us=U [cpu_busy_us=X] [srv_cpu_us=Y]
** dgrams, lost, late and corrupt count the measured window only. lg_cpu_us
** is this process's CPU time in the window (is the load the bottleneck?);
** cpu_busy_us and srv_cpu_us as in loadgen.c: busy time of CPU -C from
** /proc/stat and utime+stime of the -P processes over the window. Exit
** status 1 when nothing was echoed or an echo was corrupt.
*/
#define _GNU_SOURCE
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include "proc_cpu.h"

#define MAX_US 1000000 /* latency histogram: 1 us buckets up to 1 s */
#define MAX_PIDS 8
#define HDR 16
#define MAGIC 0x55647021u       /* "!pdU": a measured datagram */
#define PROBE_MAGIC 0x50726f62u /* "borP": the start-up probe */
#define BATCH 32                /* datagrams per recvmmsg / sendmmsg */
#define MAX_DGRAM 65507         /* largest IPv4 UDP payload */

/* One datagram in flight (or waiting to go) in a socket's window. */
typedef struct ul_slot {
  uint64_t seq;    /* the sequence this slot waits for */
  uint64_t t_sent; /* when it went out, ns (valid when !pending) */
  int pending;     /* filled but not accepted by the kernel yet */
} ul_slot;

/* A client socket. Owns its slots and their W datagram images (bufs, slot
** j at j * S), allocated at start, never freed (the process exits). */
typedef struct ul_sock {
  int fd;
  uint32_t idx;
  int npending;
  ul_slot *slots;
  unsigned char *bufs;
} ul_sock;

static uint32_t ul_hist[MAX_US + 1];
static size_t ul_size = 64, ul_window = 8;
static int ul_pids[MAX_PIDS], ul_npids, ul_cpu = -1;
static uint64_t ul_t_measure, ul_t_end;
static uint64_t ul_dgrams, ul_lost, ul_late, ul_corrupt, ul_errors;
static unsigned char *ul_rbufs; /* BATCH receive buffers of ul_size + 1 */

static uint64_t ul_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t ul_self_cpu_ns(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return ((uint64_t)ru.ru_utime.tv_sec + (uint64_t)ru.ru_stime.tv_sec) *
             1000000000u +
         ((uint64_t)ru.ru_utime.tv_usec + (uint64_t)ru.ru_stime.tv_usec) *
             1000u;
}

static void ul_die(const char *what) {
  perror(what);
  exit(1);
}

static int ul_in_window(uint64_t t) {
  return t >= ul_t_measure && t < ul_t_end;
}

static void ul_put32(unsigned char *p, uint32_t v) {
  for (int i = 0; i < 4; i++) p[i] = (unsigned char)(v >> (8 * i));
}

static uint32_t ul_get32(const unsigned char *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
         (uint32_t)p[3] << 24;
}

static uint64_t ul_get64(const unsigned char *p) {
  return (uint64_t)ul_get32(p) | (uint64_t)ul_get32(p + 4) << 32;
}

/* The datagram image of (socket, seq): the header, then filler that
** depends on both, so a datagram echoed into the wrong slot or mangled
** anywhere fails the comparison. */
static void ul_fill(unsigned char *b, uint32_t magic, uint32_t idx,
                    uint64_t seq) {
  uint32_t x = (uint32_t)(seq * 2654435761u) ^ (idx << 16);
  ul_put32(b, magic);
  ul_put32(b + 4, idx);
  ul_put32(b + 8, (uint32_t)seq);
  ul_put32(b + 12, (uint32_t)(seq >> 32));
  for (size_t i = HDR; i < ul_size; i++) b[i] = (unsigned char)(x + i);
}

/* "ip:port" or "[v6]:port", numeric only. */
static int ul_parse(const char *s, struct sockaddr_storage *ss,
                    socklen_t *len) {
  char host[64];
  const char *colon = strrchr(s, ':'), *h = s;
  size_t hl;
  struct addrinfo hints, *ai;
  if (!colon) return -1;
  hl = (size_t)(colon - s);
  if (hl >= 2 && s[0] == '[' && s[hl - 1] == ']') h = s + 1, hl -= 2;
  if (hl >= sizeof host) return -1;
  memcpy(host, h, hl);
  host[hl] = '\0';
  memset(&hints, 0, sizeof hints);
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_DGRAM;
  hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
  if (getaddrinfo(host, colon + 1, &hints, &ai) != 0) return -1;
  memcpy(ss, ai->ai_addr, ai->ai_addrlen);
  *len = ai->ai_addrlen;
  freeaddrinfo(ai);
  return 0;
}

/* Hand the socket's pending slots to the kernel, in one sendmmsg per
** BATCH. What the kernel refuses (EAGAIN, ENOBUFS) stays pending and is
** retried on a later turn of the loop. */
static void ul_flush(ul_sock *u) {
  struct mmsghdr msgs[BATCH];
  struct iovec iov[BATCH];
  ul_slot *which[BATCH];
  size_t j = 0;
  while (u->npending > 0) {
    int n = 0, sent;
    for (; j < ul_window && n < BATCH; j++) {
      if (!u->slots[j].pending) continue;
      iov[n].iov_base = u->bufs + j * ul_size;
      iov[n].iov_len = ul_size;
      memset(&msgs[n], 0, sizeof msgs[n]);
      msgs[n].msg_hdr.msg_iov = &iov[n];
      msgs[n].msg_hdr.msg_iovlen = 1;
      which[n++] = &u->slots[j];
    }
    if (n == 0) break;
    sent = sendmmsg(u->fd, msgs, (unsigned)n, MSG_DONTWAIT);
    if (sent < 0) {
      /* ECONNREFUSED: an earlier datagram met a closed port. */
      if (errno != EAGAIN && errno != ENOBUFS) ul_errors++;
      return;
    }
    uint64_t t = ul_now();
    for (int i = 0; i < sent; i++) {
      which[i]->pending = 0;
      which[i]->t_sent = t;
    }
    u->npending -= sent;
    if (sent < n) return;
  }
}

/* The slot's next sequence, queued to go out. */
static void ul_advance(ul_sock *u, size_t j) {
  ul_slot *s = &u->slots[j];
  s->seq += ul_window;
  ul_fill(u->bufs + j * ul_size, MAGIC, u->idx, s->seq);
  s->pending = 1;
  u->npending++;
}

static void ul_check(ul_sock *u, const unsigned char *b, size_t len,
                     uint64_t t) {
  uint64_t seq;
  size_t j;
  ul_slot *s;
  if (len == ul_size && ul_get32(b) == PROBE_MAGIC) return;
  if (len != ul_size || ul_get32(b) != MAGIC || ul_get32(b + 4) != u->idx) {
    if (ul_in_window(t)) ul_corrupt++;
    return;
  }
  seq = ul_get64(b + 8);
  j = (size_t)(seq % ul_window);
  s = &u->slots[j];
  if (seq != s->seq || s->pending) {
    /* Not the slot's current datagram: an earlier one declared lost
    ** (late), if it was ever sent and is intact. */
    unsigned char *img = ul_rbufs + BATCH * (ul_size + 1);
    ul_fill(img, MAGIC, u->idx, seq);
    if (ul_in_window(t)) {
      if (seq < s->seq && memcmp(img, b, ul_size) == 0)
        ul_late++;
      else
        ul_corrupt++;
    }
    return;
  }
  if (memcmp(u->bufs + j * ul_size, b, ul_size) != 0) {
    /* The slot keeps waiting: its true echo may still come, else it
    ** times out as a loss. */
    if (ul_in_window(t)) ul_corrupt++;
    return;
  }
  if (ul_in_window(t)) {
    uint64_t us = (t - s->t_sent) / 1000;
    ul_dgrams++;
    ul_hist[us > MAX_US ? MAX_US : us]++;
  }
  ul_advance(u, j);
}

static void ul_readable(ul_sock *u) {
  struct mmsghdr msgs[BATCH];
  struct iovec iov[BATCH];
  for (int round = 0; round < 8; round++) { /* then let others have a go */
    int n;
    for (int i = 0; i < BATCH; i++) {
      iov[i].iov_base = ul_rbufs + (size_t)i * (ul_size + 1);
      iov[i].iov_len = ul_size + 1; /* one more: a longer echo shows */
      memset(&msgs[i], 0, sizeof msgs[i]);
      msgs[i].msg_hdr.msg_iov = &iov[i];
      msgs[i].msg_hdr.msg_iovlen = 1;
    }
    n = recvmmsg(u->fd, msgs, BATCH, MSG_DONTWAIT, NULL);
    if (n < 0) {
      if (errno == EAGAIN) break;
      ul_errors++; /* ECONNREFUSED: the server is gone; cleared by now */
      if (errno != ECONNREFUSED) break;
      continue;
    }
    uint64_t t = ul_now();
    for (int i = 0; i < n; i++)
      ul_check(u, iov[i].iov_base, msgs[i].msg_len, t);
    if (n < BATCH) break;
  }
  ul_flush(u);
}

/* Slots unanswered for longer than the timeout: one loss each, and the
** slot moves on to its next sequence. */
static void ul_expire(ul_sock *socks, int k, uint64_t t, uint64_t timeout) {
  for (int i = 0; i < k; i++) {
    ul_sock *u = &socks[i];
    for (size_t j = 0; j < ul_window; j++) {
      ul_slot *s = &u->slots[j];
      if (s->pending || t - s->t_sent < timeout) continue;
      if (ul_in_window(t)) ul_lost++;
      ul_advance(u, j);
    }
    if (u->npending) ul_flush(u);
  }
}

/* Echo one probe datagram off the server, retrying for up to 5 s. */
static int ul_probe(ul_sock *u) {
  unsigned char *img = ul_rbufs + BATCH * (ul_size + 1);
  ul_fill(img, PROBE_MAGIC, u->idx, 0);
  for (int attempt = 0; attempt < 50; attempt++) {
    struct pollfd pfd = {.fd = u->fd, .events = POLLIN};
    uint64_t until = ul_now() + 100000000u;
    if (send(u->fd, img, ul_size, MSG_DONTWAIT) < 0 && errno != EAGAIN &&
        errno != ENOBUFS && errno != ECONNREFUSED)
      ul_die("send");
    while (ul_now() < until) {
      int left = (int)((until - ul_now()) / 1000000u) + 1;
      if (poll(&pfd, 1, left) <= 0) continue;
      ssize_t r = recv(u->fd, ul_rbufs, ul_size + 1, MSG_DONTWAIT);
      if (r < 0) {
        /* ECONNREFUSED: no one on the port yet; wait out the 100 ms. */
        if (errno == ECONNREFUSED) usleep(50000);
        continue;
      }
      if ((size_t)r == ul_size && memcmp(ul_rbufs, img, ul_size) == 0) return 0;
    }
  }
  return -1;
}

static void ul_percentiles(uint64_t *p50, uint64_t *p99) {
  uint64_t acc = 0, total = 0;
  int have50 = 0;
  *p50 = *p99 = 0;
  for (int i = 0; i <= MAX_US; i++) total += ul_hist[i];
  for (int i = 0; i <= MAX_US && total; i++) {
    acc += ul_hist[i];
    if (!have50 && acc * 2 >= total) {
      *p50 = (uint64_t)i;
      have50 = 1;
    }
    if (acc * 100 >= total * 99) {
      *p99 = (uint64_t)i;
      break;
    }
  }
}

int main(int argc, char **argv) {
  const char *addr = "127.0.0.1:7000";
  int k = 16, secs = 3, warm = 1, timeout_ms = 200, opt, ep, sampled = 0;
  struct sockaddr_storage sa;
  socklen_t salen;
  ul_sock *socks;
  uint64_t cpu0 = 0, cpu1 = 0, pid0 = 0, pid1 = 0, self0 = 0, self1;
  uint64_t t_start, next_expire, timeout_ns;
  struct epoll_event evs[256];

  while ((opt = getopt(argc, argv, "a:k:W:s:d:w:t:P:C:")) != -1) {
    switch (opt) {
    case 'a':
      addr = optarg;
      break;
    case 'k':
      k = atoi(optarg);
      break;
    case 'W':
      ul_window = (size_t)atol(optarg);
      break;
    case 's':
      ul_size = (size_t)atol(optarg);
      break;
    case 'd':
      secs = atoi(optarg);
      break;
    case 'w':
      warm = atoi(optarg);
      break;
    case 't':
      timeout_ms = atoi(optarg);
      break;
    case 'C':
      ul_cpu = atoi(optarg);
      break;
    case 'P': {
      char *dup = strdup(optarg), *tok, *save = NULL;
      for (tok = strtok_r(dup, ",", &save); tok && ul_npids < MAX_PIDS;
           tok = strtok_r(NULL, ",", &save))
        ul_pids[ul_npids++] = atoi(tok);
      free(dup);
      break;
    }
    default:
      fprintf(stderr, "usage: udp_loadgen -a ip:port [-k sockets] "
                      "[-W window] [-s size] [-d secs] [-w warmup] "
                      "[-t timeout_ms] [-P pid,pid] [-C cpu]\n");
      return 2;
    }
  }
  if (k <= 0 || ul_window == 0 || secs <= 0 || warm < 0 || timeout_ms <= 0 ||
      ul_size < HDR || ul_size > MAX_DGRAM || ul_parse(addr, &sa, &salen)) {
    fprintf(stderr,
            "udp_loadgen: bad address, or a count, size (%d..%d) or "
            "duration out of range\n",
            HDR, MAX_DGRAM);
    return 2;
  }
  ul_rbufs = malloc((BATCH + 1) * (ul_size + 1)); /* + one scratch image */
  socks = calloc((size_t)k, sizeof *socks);
  if (!ul_rbufs || !socks) ul_die("malloc");
  if ((ep = epoll_create1(EPOLL_CLOEXEC)) < 0) ul_die("epoll_create1");
  for (int i = 0; i < k; i++) {
    ul_sock *u = &socks[i];
    u->fd = socket(sa.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (u->fd < 0) ul_die("socket");
    /* connected: only the server's datagrams arrive, and a closed port
    ** comes back as ECONNREFUSED */
    if (connect(u->fd, (struct sockaddr *)&sa, salen) != 0) ul_die("connect");
    u->idx = (uint32_t)i;
    u->slots = calloc(ul_window, sizeof *u->slots);
    u->bufs = malloc(ul_window * ul_size);
    if (!u->slots || !u->bufs) ul_die("malloc");
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = u};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, u->fd, &ev) != 0) ul_die("epoll_ctl");
  }
  if (ul_probe(&socks[0]) != 0) {
    fprintf(stderr, "udp_loadgen: no echo from %s within 5 s\n", addr);
    return 1;
  }

  t_start = ul_now();
  ul_t_measure = t_start + (uint64_t)warm * 1000000000u;
  ul_t_end = ul_t_measure + (uint64_t)secs * 1000000000u;
  timeout_ns = (uint64_t)timeout_ms * 1000000u;
  next_expire = t_start + timeout_ns / 4;
  if (warm == 0) {
    cpu0 = pc_cpu_ticks(ul_cpu);
    pid0 = pc_pid_ticks(ul_pids, ul_npids);
    self0 = ul_self_cpu_ns();
    sampled = 1;
  }
  /* Open every window: slot j starts at sequence j (ul_advance adds W). */
  for (int i = 0; i < k; i++) {
    for (size_t j = 0; j < ul_window; j++) {
      socks[i].slots[j].seq = j - ul_window;
      ul_advance(&socks[i], j);
    }
    ul_flush(&socks[i]);
  }
  for (;;) {
    uint64_t now = ul_now();
    if (!sampled && now >= ul_t_measure) {
      cpu0 = pc_cpu_ticks(ul_cpu);
      pid0 = pc_pid_ticks(ul_pids, ul_npids);
      self0 = ul_self_cpu_ns();
      sampled = 1;
    }
    if (now >= ul_t_end) break;
    if (now >= next_expire) {
      ul_expire(socks, k, now, timeout_ns);
      next_expire = now + timeout_ns / 4;
    }
    int n = epoll_wait(ep, evs, 256, 10);
    if (n < 0 && errno != EINTR) ul_die("epoll_wait");
    for (int i = 0; i < n; i++) ul_readable(evs[i].data.ptr);
  }
  cpu1 = pc_cpu_ticks(ul_cpu);
  pid1 = pc_pid_ticks(ul_pids, ul_npids);
  self1 = ul_self_cpu_ns();
  {
    uint64_t p50, p99;
    long hz = sysconf(_SC_CLK_TCK);
    ul_percentiles(&p50, &p99);
    printf("dgrams=%llu secs=%d dgrams_per_sec=%.0f p50_us=%llu p99_us=%llu "
           "lost=%llu late=%llu corrupt=%llu errors=%llu lg_cpu_us=%.0f",
           (unsigned long long)ul_dgrams, secs, (double)ul_dgrams / secs,
           (unsigned long long)p50, (unsigned long long)p99,
           (unsigned long long)ul_lost, (unsigned long long)ul_late,
           (unsigned long long)ul_corrupt, (unsigned long long)ul_errors,
           (double)(self1 - self0) / 1e3);
    if (ul_cpu >= 0)
      printf(" cpu_busy_us=%.0f", (double)(cpu1 - cpu0) * 1e6 / (double)hz);
    if (ul_npids > 0)
      printf(" srv_cpu_us=%.0f", (double)(pid1 - pid0) * 1e6 / (double)hz);
    printf("\n");
  }
  return ul_dgrams == 0 || ul_corrupt > 0 ? 1 : 0;
}
