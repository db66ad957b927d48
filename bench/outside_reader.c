/*
** outside_reader.c: the reading side of the outside-threads benchmark
** (bench/outside.sh). Connects N connections to a server whose own
** threads push 64-byte messages into them (outside_common.h), only reads,
** checks every message and measures.
**
**   outside_reader -a 127.0.0.1:7000 [-c 100] [-d secs] [-w warmup]
**                  [-P pid[,pid]] [-C cpu] [-H histfile]
**
** The window: `warmup` seconds after the first byte arrives, then `secs`
** seconds; messages read inside it are counted. Latency of a message: the
** time its recv() returned minus the send time in its first 8 bytes
** (CLOCK_MONOTONIC, shared by the processes of one machine), so it spans
** the send call, the server's queues, the kernel and this reader's wait.
**
** Checks: both magics, the sender thread index, the server's connection
** index (constant per connection), and each (thread, connection) sequence
** (must be the previous one + 1, from 0): a lost, repeated, reordered or
** torn message makes the connection "broken": it is reported (errors=,
** the first few on stderr) and no longer counted.
**
** Output, one line:
**   msgs=N secs=D msgs_per_sec=R p50_us=A p99_us=B errors=E total=T
**   reader_cpu_us=U [cpu_busy_us=X] [srv_cpu_us=Y]
** reader_cpu_us is this process's CPU time in the window (is the reader the
** bottleneck?); cpu_busy_us and srv_cpu_us as in loadgen.c: busy time of
** CPU -C from /proc/stat and utime+stime of the -P processes, both over
** the window. -H writes the latency histogram ("us count" lines; above
** 100 ms the buckets are 100 us wide). Exit status 1 when a connection failed
*or broke, or nothing
** arrived.
*/
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>
#include "outside_common.h"
#include "proc_cpu.h"

#define MAX_PIDS 8
/* Latency histogram: 1 us buckets below 100 ms, then 100 us buckets up to
** 100 s. */
#define H_FINE 100000
#define H_COARSE 1000000
#define H_BUCKETS (H_FINE + H_COARSE)
#define RBUF (256 * 1024)

typedef struct rconn {
  int fd;
  int broken;
  int index;    /* the server's connection index, -1 until the first message */
  size_t carry; /* bytes of a partial message kept in part[] */
  unsigned char part[OM_SIZE];
  uint64_t next[OM_MAX_THREADS];
} rconn;

static uint32_t hist[H_BUCKETS];
static unsigned char rbuf[OM_SIZE + RBUF];
static int pids[MAX_PIDS], npids, cpu = -1;
static uint64_t errors;

static void die(const char *what) {
  perror(what);
  exit(1);
}

static uint64_t self_cpu_ns(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return ((uint64_t)ru.ru_utime.tv_sec + (uint64_t)ru.ru_stime.tv_sec) *
             1000000000u +
         ((uint64_t)ru.ru_utime.tv_usec + (uint64_t)ru.ru_stime.tv_usec) *
             1000u;
}

static size_t bucket_of(uint64_t us) {
  if (us < H_FINE) return (size_t)us;
  us = H_FINE + (us - H_FINE) / 100;
  return us < H_BUCKETS ? (size_t)us : H_BUCKETS - 1;
}

static uint64_t us_of(size_t b) {
  return b < H_FINE ? b : H_FINE + (uint64_t)(b - H_FINE) * 100;
}

static void percentiles(uint64_t *total, uint64_t *p50, uint64_t *p99) {
  uint64_t acc = 0;
  int have50 = 0;
  *total = *p50 = *p99 = 0;
  for (size_t i = 0; i < H_BUCKETS; i++) *total += hist[i];
  for (size_t i = 0; i < H_BUCKETS && *total; i++) {
    acc += hist[i];
    if (!have50 && acc * 2 >= *total) {
      *p50 = us_of(i);
      have50 = 1;
    }
    if (acc * 100 >= *total * 99) {
      *p99 = us_of(i);
      break;
    }
  }
}

static void broken(rconn *c, int k, const char *why, const unsigned char *m) {
  if (errors < 5)
    fprintf(stderr,
            "outside_reader: connection %d broken: %s (thread %u, index %u, "
            "seq %llu)\n",
            k, why, (unsigned)(m[12] | m[13] << 8),
            (unsigned)(m[14] | m[15] << 8),
            (unsigned long long)om_get64(m + 16));
  c->broken = 1;
  errors++;
}

/* Check one message; 1 when good. */
static int check(rconn *c, int k, const unsigned char *m) {
  unsigned tid = (unsigned)(m[12] | m[13] << 8);
  unsigned idx = (unsigned)(m[14] | m[15] << 8);
  uint64_t seq = om_get64(m + 16);
  if (om_get32(m + 8) != OM_MAGIC1 || om_get32(m + 60) != OM_MAGIC2) {
    broken(c, k, "bad magic (framing lost)", m);
    return 0;
  }
  if (tid >= OM_MAX_THREADS) {
    broken(c, k, "bad thread index", m);
    return 0;
  }
  if (c->index < 0) c->index = (int)idx;
  if ((unsigned)c->index != idx) {
    broken(c, k, "message of another connection", m);
    return 0;
  }
  if (seq != c->next[tid]) {
    broken(c, k,
           seq < c->next[tid] ? "repeated or reordered message"
                              : "lost message",
           m);
    return 0;
  }
  c->next[tid] = seq + 1;
  return 1;
}

int main(int argc, char **argv) {
  const char *addr = "127.0.0.1:7000", *histfile = NULL;
  int nconn = 100, secs = 5, warm = 1, opt, ep, port, started = 0;
  int sampled = 0, open_conns;
  char host[64];
  struct sockaddr_in sa = {.sin_family = AF_INET};
  struct epoll_event evs[256];
  rconn *conns;
  uint64_t msgs = 0, total = 0, t_measure = 0, t_end = 0;
  uint64_t cpu0 = 0, cpu1 = 0, pid0 = 0, pid1 = 0, self0 = 0, self1 = 0;

  while ((opt = getopt(argc, argv, "a:c:d:w:P:C:H:")) != -1) {
    switch (opt) {
    case 'a':
      addr = optarg;
      break;
    case 'c':
      nconn = atoi(optarg);
      break;
    case 'd':
      secs = atoi(optarg);
      break;
    case 'w':
      warm = atoi(optarg);
      break;
    case 'C':
      cpu = atoi(optarg);
      break;
    case 'H':
      histfile = optarg;
      break;
    case 'P': {
      char *dup = strdup(optarg), *tok, *save = NULL;
      for (tok = strtok_r(dup, ",", &save); tok && npids < MAX_PIDS;
           tok = strtok_r(NULL, ",", &save))
        pids[npids++] = atoi(tok);
      free(dup);
      break;
    }
    default:
      fprintf(stderr, "usage: outside_reader -a ip:port [-c conns] "
                      "[-d secs] [-w warmup] [-P pid,pid] [-C cpu] "
                      "[-H histfile]\n");
      return 2;
    }
  }
  if (nconn < 1 || secs < 1 || warm < 0 ||
      om_split_addr(addr, host, sizeof host, &port) != 0 ||
      inet_pton(AF_INET, host, &sa.sin_addr) != 1) {
    fprintf(stderr, "outside_reader: bad arguments\n");
    return 2;
  }
  sa.sin_port = htons((uint16_t)port);
  signal(SIGPIPE, SIG_IGN);
  if (!(conns = calloc((size_t)nconn, sizeof *conns))) die("calloc");
  if ((ep = epoll_create1(EPOLL_CLOEXEC)) < 0) die("epoll_create1");
  for (int i = 0; i < nconn; i++) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) die("socket");
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) die("connect");
    fcntl(fd, F_SETFL, O_NONBLOCK);
    conns[i].fd = fd;
    conns[i].index = -1;
    struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)i};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) != 0) die("epoll_ctl");
  }
  open_conns = nconn;

  for (;;) {
    uint64_t now = om_now();
    if (started && !sampled && now >= t_measure) {
      cpu0 = pc_cpu_ticks(cpu);
      pid0 = pc_pid_ticks(pids, npids);
      self0 = self_cpu_ns();
      sampled = 1;
    }
    if (started && now >= t_end) break;
    if (open_conns == 0) break;
    int n = epoll_wait(ep, evs, 256, started ? 100 : 30000);
    if (n == 0 && !started) {
      fprintf(stderr, "outside_reader: nothing arrived in 30 s\n");
      return 1;
    }
    for (int k = 0; k < n; k++) {
      int ci = (int)evs[k].data.u32;
      rconn *c = &conns[ci];
      /* Level-triggered: one recv per event, so a busy connection cannot
      ** starve the others; what is left comes back at the next wait. */
      memcpy(rbuf, c->part, c->carry);
      ssize_t r = recv(c->fd, rbuf + c->carry, RBUF, 0);
      if (r <= 0) {
        if (r < 0 && errno == EAGAIN) continue;
        if (started && now < t_end)
          fprintf(stderr, "outside_reader: connection %d: %s\n", ci,
                  r == 0 ? "closed by the server" : strerror(errno));
        errors++;
        epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
        close(c->fd);
        c->fd = -1;
        open_conns--;
        continue;
      }
      uint64_t t = om_now();
      if (!started) {
        started = 1;
        t_measure = t + (uint64_t)warm * 1000000000u;
        t_end = t_measure + (uint64_t)secs * 1000000000u;
      }
      size_t have = c->carry + (size_t)r, off = 0;
      int in_window = t >= t_measure && t < t_end && sampled;
      for (; off + OM_SIZE <= have; off += OM_SIZE) {
        const unsigned char *m = rbuf + off;
        if (c->broken || !check(c, ci, m)) continue;
        total++;
        if (in_window) {
          uint64_t ts = om_get64(m);
          msgs++;
          hist[bucket_of(t > ts ? (t - ts) / 1000 : 0)]++;
        }
      }
      c->carry = have - off;
      memcpy(c->part, rbuf + off, c->carry);
    }
  }
  cpu1 = pc_cpu_ticks(cpu);
  pid1 = pc_pid_ticks(pids, npids);
  self1 = self_cpu_ns();
  {
    uint64_t samples, p50, p99;
    long hz = sysconf(_SC_CLK_TCK);
    percentiles(&samples, &p50, &p99);
    printf("msgs=%llu secs=%d msgs_per_sec=%.0f p50_us=%llu p99_us=%llu "
           "errors=%llu total=%llu reader_cpu_us=%.0f",
           (unsigned long long)msgs, secs, (double)msgs / secs,
           (unsigned long long)p50, (unsigned long long)p99,
           (unsigned long long)errors, (unsigned long long)total,
           sampled ? (double)(self1 - self0) / 1e3 : 0.0);
    if (cpu >= 0)
      printf(" cpu_busy_us=%.0f", (double)(cpu1 - cpu0) * 1e6 / (double)hz);
    if (npids > 0)
      printf(" srv_cpu_us=%.0f", (double)(pid1 - pid0) * 1e6 / (double)hz);
    printf("\n");
    fflush(stdout);
  }
  for (int i = 0; i < nconn; i++)
    if (conns[i].fd >= 0) close(conns[i].fd);
  if (histfile) {
    FILE *f = fopen(histfile, "w");
    if (!f) die(histfile);
    for (size_t i = 0; i < H_BUCKETS; i++)
      if (hist[i])
        fprintf(f, "%llu %u\n", (unsigned long long)us_of(i), hist[i]);
    fclose(f);
  }
  return errors || msgs == 0 ? 1 : 0;
}
