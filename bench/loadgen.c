/*
** loadgen.c: the benchmark load generator. N connections of S-byte
** ping-pong (or pipelined) for D seconds against an echo server; prints
** messages per second and latency percentiles. Plain epoll, one thread, so
** its own cost is small and predictable.
**
**   loadgen -a 127.0.0.1:7000 -c 100 -s 64 -d 5 [-p depth] [-w warmup]
**           [-S 127.0.0.2,127.0.0.3]   (source addresses, round robin)
**           [-P pid[,pid]] [-C cpu]    (CPU used in the measured window)
**           [-H histfile]              (write the latency histogram)
**           [-i]                       (idle: hold connections, no traffic)
**   loadgen -M histfile...             (merge histograms of several loaders)
**
** Output, one line:
**   msgs=N secs=D msgs_per_sec=R p50_us=A p99_us=B errors=E
**   [cpu_busy_us=X] [srv_cpu_us=Y]
** cpu_busy_us is the busy time of CPU `-C` (user+nice+system+irq+softirq
** from /proc/stat) and srv_cpu_us the utime+stime of the `-P`
** processes, both over exactly the measured window (after the warm-up).
** Idle mode prints "ready conns=N" once every connection is established and
** then holds them for D seconds (or until killed).
*/
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include "proc_cpu.h"

#define MAX_US 1000000 /* latency histogram: 1 us buckets up to 1 s */
#define MAX_PIDS 8

typedef struct lg_conn {
  int fd;
  size_t sent;  /* bytes of the current batch written */
  size_t recvd; /* bytes of the current batch echoed back */
  uint64_t t0;  /* when the current batch was started, ns */
} lg_conn;

static uint32_t lg_hist[MAX_US + 1];
static char *lg_out, lg_in[1 << 16];
static size_t lg_size, lg_depth = 1;
static int lg_pids[MAX_PIDS], lg_npids, lg_cpu = -1;

static uint64_t lg_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void lg_die(const char *what) {
  perror(what);
  exit(1);
}

static int lg_parse(const char *s, struct sockaddr_in *sa) {
  char host[64];
  const char *colon = strrchr(s, ':');
  if (!colon || (size_t)(colon - s) >= sizeof host) return -1;
  memcpy(host, s, (size_t)(colon - s));
  host[colon - s] = '\0';
  memset(sa, 0, sizeof *sa);
  sa->sin_family = AF_INET;
  sa->sin_port = htons((uint16_t)atoi(colon + 1));
  return inet_pton(AF_INET, host, &sa->sin_addr) == 1 ? 0 : -1;
}

/* Write what is left of the current batch; 0 ok, -1 error. Partial writes
** (16 KiB messages, pipelining) resume on the next EPOLLOUT edge. */
static int lg_pump_out(lg_conn *c) {
  size_t total = lg_size * lg_depth;
  while (c->sent < total) {
    size_t off = c->sent % lg_size;
    ssize_t n = send(c->fd, lg_out + off, lg_size - off, MSG_NOSIGNAL);
    if (n < 0) return errno == EAGAIN ? 0 : -1;
    c->sent += (size_t)n;
  }
  return 0;
}

static void lg_percentiles(uint64_t *total, uint64_t *p50, uint64_t *p99) {
  uint64_t acc = 0;
  int have50 = 0;
  *total = *p50 = *p99 = 0;
  for (int i = 0; i <= MAX_US; i++) *total += lg_hist[i];
  for (int i = 0; i <= MAX_US && *total; i++) {
    acc += lg_hist[i];
    if (!have50 && acc * 2 >= *total) {
      *p50 = (uint64_t)i;
      have50 = 1;
    }
    if (acc * 100 >= *total * 99) {
      *p99 = (uint64_t)i;
      break;
    }
  }
}

/* -M: add up the histograms several loaders wrote with -H. */
static int lg_merge(int n, char **files) {
  uint64_t total, p50, p99;
  for (int i = 0; i < n; i++) {
    FILE *f = fopen(files[i], "r");
    unsigned long us, cnt;
    if (!f) lg_die(files[i]);
    while (fscanf(f, "%lu %lu", &us, &cnt) == 2)
      if (us <= MAX_US) lg_hist[us] += (uint32_t)cnt;
    fclose(f);
  }
  lg_percentiles(&total, &p50, &p99);
  printf("samples=%llu p50_us=%llu p99_us=%llu\n", (unsigned long long)total,
         (unsigned long long)p50, (unsigned long long)p99);
  return 0;
}

int main(int argc, char **argv) {
  const char *addr = "127.0.0.1:7000", *srcs = NULL, *histfile = NULL;
  int nconn = 100, secs = 5, warm = 1, idle = 0, merge = 0, opt, ep;
  struct sockaddr_in sa, src[64];
  int nsrc = 0;
  lg_conn *conns;
  uint64_t msgs = 0, errors = 0, t_start, t_end, t_measure;
  uint64_t cpu0 = 0, cpu1 = 0, pid0 = 0, pid1 = 0;
  int sampled = 0;
  struct epoll_event evs[256];

  while ((opt = getopt(argc, argv, "a:c:s:d:p:w:S:P:C:H:iM")) != -1) {
    switch (opt) {
    case 'a':
      addr = optarg;
      break;
    case 'c':
      nconn = atoi(optarg);
      break;
    case 's':
      lg_size = (size_t)atol(optarg);
      break;
    case 'd':
      secs = atoi(optarg);
      break;
    case 'p':
      lg_depth = (size_t)atol(optarg);
      break;
    case 'w':
      warm = atoi(optarg);
      break;
    case 'S':
      srcs = optarg;
      break;
    case 'C':
      lg_cpu = atoi(optarg);
      break;
    case 'H':
      histfile = optarg;
      break;
    case 'i':
      idle = 1;
      break;
    case 'M':
      merge = 1;
      break;
    case 'P': {
      char *dup = strdup(optarg), *tok, *save = NULL;
      for (tok = strtok_r(dup, ",", &save); tok && lg_npids < MAX_PIDS;
           tok = strtok_r(NULL, ",", &save))
        lg_pids[lg_npids++] = atoi(tok);
      free(dup);
      break;
    }
    default:
      fprintf(stderr, "usage: loadgen -a ip:port -c conns -s size -d secs "
                      "[-p depth] [-w warmup] [-S src,src] [-P pid,pid] "
                      "[-C cpu] [-H histfile] [-i]\n"
                      "       loadgen -M histfile...\n");
      return 2;
    }
  }
  if (merge) return lg_merge(argc - optind, argv + optind);
  if (lg_size == 0) lg_size = 64;
  if (lg_depth == 0) lg_depth = 1;
  if (nconn <= 0 || secs <= 0 || lg_parse(addr, &sa) != 0) {
    fprintf(stderr, "loadgen: bad address, connection count or duration\n");
    return 2;
  }
  if (srcs) {
    char *dup = strdup(srcs), *tok, *save = NULL;
    for (tok = strtok_r(dup, ",", &save); tok && nsrc < 64;
         tok = strtok_r(NULL, ",", &save)) {
      memset(&src[nsrc], 0, sizeof src[nsrc]);
      src[nsrc].sin_family = AF_INET;
      if (inet_pton(AF_INET, tok, &src[nsrc].sin_addr) == 1) nsrc++;
    }
    free(dup);
  }
  signal(SIGPIPE, SIG_IGN);
  lg_out = malloc(lg_size);
  if (!lg_out) lg_die("malloc");
  for (size_t i = 0; i < lg_size; i++) lg_out[i] = (char)('a' + i % 26);
  conns = calloc((size_t)nconn, sizeof *conns);
  if (!conns) lg_die("calloc");
  if ((ep = epoll_create1(EPOLL_CLOEXEC)) < 0) lg_die("epoll_create1");

  /* Connect everything first (blocking connects keep this simple; the
  ** kernel completes the handshake even before the server accepts). */
  for (int i = 0; i < nconn; i++) {
    int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    if (fd < 0) lg_die("socket");
    if (nsrc > 0) {
      /* Many connections from one source address run out of ephemeral
      ** ports; several 127.0.0.x sources multiply the range. */
      setsockopt(fd, SOL_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
      if (bind(fd, (struct sockaddr *)&src[i % nsrc], sizeof src[0]) != 0)
        lg_die("bind");
    }
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) lg_die("connect");
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (idle) {
      conns[i].fd = fd; /* idle connections never enter the epoll set */
      continue;
    }
    fcntl(fd, F_SETFL, O_NONBLOCK);
    conns[i].fd = fd;
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLET,
                             .data.ptr = &conns[i]};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) != 0) lg_die("epoll_ctl");
  }
  if (idle) {
    uint64_t until = lg_now() + (uint64_t)secs * 1000000000u;
    printf("ready conns=%d\n", nconn);
    fflush(stdout);
    while (lg_now() < until) sleep(1); /* SIGTERM ends us at once */
    return 0;
  }

  t_start = lg_now();
  t_measure = t_start + (uint64_t)warm * 1000000000u;
  t_end = t_measure + (uint64_t)secs * 1000000000u;
  if (warm == 0) {
    cpu0 = pc_cpu_ticks(lg_cpu);
    pid0 = pc_pid_ticks(lg_pids, lg_npids);
    sampled = 1;
  }
  for (int i = 0; i < nconn; i++) {
    conns[i].t0 = t_start;
    if (lg_pump_out(&conns[i]) != 0) errors++;
  }
  for (;;) {
    uint64_t now = lg_now();
    if (!sampled && now >= t_measure) {
      cpu0 = pc_cpu_ticks(lg_cpu);
      pid0 = pc_pid_ticks(lg_pids, lg_npids);
      sampled = 1;
    }
    if (now >= t_end) break;
    int n = epoll_wait(ep, evs, 256, 100);
    for (int k = 0; k < n; k++) {
      lg_conn *c = evs[k].data.ptr;
      if (evs[k].events & EPOLLOUT && lg_pump_out(c) != 0) errors++;
      for (;;) {
        ssize_t r = recv(c->fd, lg_in, sizeof lg_in, 0);
        if (r <= 0) {
          if (r == 0 || errno != EAGAIN) {
            errors++;
            epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
          }
          break;
        }
        c->recvd += (size_t)r;
        if (c->recvd >= lg_size * lg_depth) {
          uint64_t t = lg_now(), us = (t - c->t0) / 1000;
          if (t >= t_measure && t < t_end) {
            msgs += lg_depth;
            lg_hist[us > MAX_US ? MAX_US : us]++;
          }
          c->recvd -= lg_size * lg_depth;
          c->sent = 0;
          c->t0 = t;
          if (lg_pump_out(c) != 0) errors++;
        }
      }
    }
  }
  cpu1 = pc_cpu_ticks(lg_cpu);
  pid1 = pc_pid_ticks(lg_pids, lg_npids);
  {
    uint64_t total, p50, p99;
    long hz = sysconf(_SC_CLK_TCK);
    lg_percentiles(&total, &p50, &p99);
    printf("msgs=%llu secs=%d msgs_per_sec=%.0f p50_us=%llu p99_us=%llu "
           "errors=%llu",
           (unsigned long long)msgs, secs, (double)msgs / secs,
           (unsigned long long)p50, (unsigned long long)p99,
           (unsigned long long)errors);
    if (lg_cpu >= 0)
      printf(" cpu_busy_us=%.0f", (double)(cpu1 - cpu0) * 1e6 / (double)hz);
    if (lg_npids > 0)
      printf(" srv_cpu_us=%.0f", (double)(pid1 - pid0) * 1e6 / (double)hz);
    printf("\n");
  }
  if (histfile) {
    FILE *f = fopen(histfile, "w");
    if (!f) lg_die(histfile);
    for (int i = 0; i <= MAX_US; i++)
      if (lg_hist[i]) fprintf(f, "%d %u\n", i, lg_hist[i]);
    fclose(f);
  }
  return errors ? 1 : 0;
}
