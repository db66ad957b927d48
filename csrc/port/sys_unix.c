/*
** sys_unix.c: the per-OS layer of sys.h for Linux (pthreads, monotonic
** clock, non-blocking close-on-exec sockets and their options).
*/
#include <arpa/inet.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include "sys.h"

/* Backends hand the nio_iov array straight to writev/sendmsg/io_uring. */
_Static_assert(sizeof(nio_iov) == sizeof(struct iovec),
               "nio_iov must have the size of struct iovec");
_Static_assert(offsetof(nio_iov, base) == offsetof(struct iovec, iov_base),
               "nio_iov.base must sit where struct iovec.iov_base does");
_Static_assert(offsetof(nio_iov, len) == offsetof(struct iovec, iov_len),
               "nio_iov.len must sit where struct iovec.iov_len does");
_Static_assert(sizeof(((nio_iov *)0)->len) ==
                   sizeof(((struct iovec *)0)->iov_len),
               "nio_iov.len must have the width of iov_len");

/* ---- process ------------------------------------------------------- */

int nio__sys_init(void) {
  return 0;
}

void nio__sys_tune_heap(void) {
#ifdef __GLIBC__
  /* Fixed thresholds also end glibc's own adaptation, so both are set:
  ** up to 32 MiB free at the top stays mapped, blocks below 4 MiB come
  ** from the heap (and its free lists) rather than a fresh mmap. */
  mallopt(M_TRIM_THRESHOLD, 32 << 20);
  mallopt(M_MMAP_THRESHOLD, 4 << 20);
#endif
}

void nio__sys_on_interrupt(nio_interrupt_fn fn) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = fn ? fn : SIG_DFL;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
}

void nio__sys_interrupt_mask(int block) {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(block ? SIG_BLOCK : SIG_UNBLOCK, &set, NULL);
}

void nio__sys_exit_now(int status) {
  _exit(status);
}

int nio__sys_stdin_is_tty(void) {
  return isatty(STDIN_FILENO);
}

long nio__sys_read_stdin(void *buf, size_t len) {
  ssize_t n;
  do n = read(STDIN_FILENO, buf, len);
  while (n < 0 && errno == EINTR);
  return n < 0 ? nio_translate_sys_error(errno) : (long)n;
}

/* ---- time ---------------------------------------------------------- */

uint64_t nio__now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t nio__wall_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ---- threads ------------------------------------------------------- */

/* Allocated by nio__thread_start/detach_start; freed by nio__thread_join,
** or, for a thread detached, by whichever of the thread's end and
** nio__thread_detach() comes last (`gone` tells). */
struct nio_thread {
  pthread_t t;
  nio_thread_fn fn;
  void *arg;
  int detached;    /* started detached: the thread owns the record */
  atomic_int gone; /* 1: the thread's end, or the detach, came first */
};

static void *thread_main(void *ud) {
  struct nio_thread *t = ud;
  nio_thread_fn fn = t->fn;
  void *arg = t->arg;
  int detached = t->detached;
  /* A thread started detached owns its record; nobody else reads it. */
  if (detached) free(t);
  fn(arg);
  if (!detached && atomic_exchange(&t->gone, 1)) free(t);
  return NULL;
}

static int thread_create(struct nio_thread *t) {
  pthread_attr_t attr;
  int r = pthread_attr_init(&attr);
  if (r != 0) return nio_translate_sys_error(r);
  if (t->detached) pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  r = pthread_create(&t->t, &attr, thread_main, t);
  pthread_attr_destroy(&attr);
  return r == 0 ? 0 : nio_translate_sys_error(r);
}

int nio__thread_start(nio_thread **out, nio_thread_fn fn, void *arg) {
  struct nio_thread *t;
  int r;
  *out = NULL;
  if ((t = calloc(1, sizeof *t)) == NULL) return NIO_ENOMEM;
  t->fn = fn;
  t->arg = arg;
  if ((r = thread_create(t)) != 0) {
    free(t);
    return r;
  }
  *out = t;
  return 0;
}

int nio__thread_join(nio_thread *t) {
  int r = pthread_join(t->t, NULL);
  free(t);
  return r == 0 ? 0 : nio_translate_sys_error(r);
}

void nio__thread_detach(nio_thread *t) {
  pthread_detach(t->t);
  if (atomic_exchange(&t->gone, 1)) free(t); /* it ended already */
}

int nio__thread_detach_start(nio_thread_fn fn, void *arg) {
  struct nio_thread *t;
  int r;
  if ((t = calloc(1, sizeof *t)) == NULL) return NIO_ENOMEM;
  t->fn = fn;
  t->arg = arg;
  t->detached = 1;
  /* On success the thread frees t, possibly before pthread_create returns. */
  if ((r = thread_create(t)) != 0) free(t);
  return r;
}

void nio__thread_block_signals(void) {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &set, NULL);
}

int nio__tls_key_new(nio_tls_key *key, void (*dtor)(void *)) {
  pthread_key_t k;
  int r = pthread_key_create(&k, dtor);
  if (r != 0) return nio_translate_sys_error(r);
  *key = (nio_tls_key)k;
  return 0;
}

void nio__tls_set(nio_tls_key key, void *value) {
  pthread_setspecific((pthread_key_t)key, value);
}

uint64_t nio__thread_self_id(void) {
  static _Thread_local pid_t tid __attribute__((tls_model("initial-exec")));
  if (tid == 0) tid = gettid();
  return (uint64_t)tid;
}

/* ---- locks --------------------------------------------------------- */

int nio__mutex_init(nio_mutex *m) {
  int r = pthread_mutex_init(&m->m, NULL);
  return r == 0 ? 0 : nio_translate_sys_error(r);
}

void nio__mutex_destroy(nio_mutex *m) {
  pthread_mutex_destroy(&m->m);
}

void nio__mutex_lock(nio_mutex *m) {
  pthread_mutex_lock(&m->m);
}

void nio__mutex_unlock(nio_mutex *m) {
  pthread_mutex_unlock(&m->m);
}

/* Condition variables time out on the monotonic clock, like nio__now_ns(),
** so a wall-clock jump cannot stretch or cut a wait. */
int nio__cond_init(nio_cond *c) {
  pthread_condattr_t attr;
  int r = pthread_condattr_init(&attr);
  if (r != 0) return nio_translate_sys_error(r);
  pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
  r = pthread_cond_init(&c->c, &attr);
  pthread_condattr_destroy(&attr);
  return r == 0 ? 0 : nio_translate_sys_error(r);
}

void nio__cond_destroy(nio_cond *c) {
  pthread_cond_destroy(&c->c);
}

void nio__cond_signal(nio_cond *c) {
  pthread_cond_signal(&c->c);
}

void nio__cond_broadcast(nio_cond *c) {
  pthread_cond_broadcast(&c->c);
}

int nio__cond_wait(nio_cond *c, nio_mutex *m, int64_t timeout_ns) {
  struct timespec ts;
  uint64_t due;
  int r;
  if (timeout_ns < 0) {
    pthread_cond_wait(&c->c, &m->m);
    return 0;
  }
  due = nio__now_ns() + (uint64_t)timeout_ns;
  ts.tv_sec = (time_t)(due / 1000000000u);
  ts.tv_nsec = (long)(due % 1000000000u);
  r = pthread_cond_timedwait(&c->c, &m->m, &ts);
  if (r == ETIMEDOUT) return NIO_ETIMEDOUT;
  return r == 0 ? 0 : nio_translate_sys_error(r);
}

/* ---- sockets ------------------------------------------------------- */

static int sock_err(void) {
  return nio_translate_sys_error(errno);
}

static int sock_setint(nio_sock s, int level, int name, int value) {
  if (setsockopt(s, level, name, &value, sizeof value) != 0) return sock_err();
  return 0;
}

int nio__sock_tcp(int family, nio_sock *out) {
  int s = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  *out = NIO_BAD_SOCK;
  if (s < 0) return sock_err();
  *out = s;
  return 0;
}

int nio__sock_close(nio_sock s) {
  /* On Linux the descriptor is released even when close() reports EINTR;
  ** retrying could close a descriptor another thread just got. */
  if (close(s) != 0 && errno != EINTR) return sock_err();
  return 0;
}

/* An IPv6 listener is dual-stack (IPV6_V6ONLY off): "[::]:port" also takes
** IPv4 clients, which is what "*:port" users expect whichever family the
** resolver picked. Binding 0.0.0.0 and :: to one port then conflicts, as on
** most Linux defaults (net.ipv6.bindv6only=0). */
int nio__sock_listen(const nio_addr *a, int backlog, int reuseport,
                     nio_sock *out) {
  nio_sock s;
  int r;
  *out = NIO_BAD_SOCK;
  if ((r = nio__sock_tcp(a->ss.ss_family, &s)) != 0) return r;
  /* Address reuse means nothing to a Unix socket: its path is taken for
  ** as long as the file exists. */
  if (a->ss.ss_family != AF_UNIX &&
      (r = sock_setint(s, SOL_SOCKET, SO_REUSEADDR, 1)) != 0)
    goto fail;
  if (reuseport && a->ss.ss_family != AF_UNIX &&
      (r = sock_setint(s, SOL_SOCKET, SO_REUSEPORT, 1)) != 0)
    goto fail;
  if (a->ss.ss_family == AF_INET6 &&
      (r = sock_setint(s, IPPROTO_IPV6, IPV6_V6ONLY, 0)) != 0)
    goto fail;
  if (bind(s, (const struct sockaddr *)&a->ss, a->len) != 0 ||
      listen(s, backlog) != 0) {
    r = sock_err();
    goto fail;
  }
  *out = s;
  return 0;
fail:
  close(s);
  return r;
}

int nio__sock_bind_reuse(nio_sock s, const nio_addr *a) {
  int r;
  if ((r = sock_setint(s, SOL_SOCKET, SO_REUSEADDR, 1)) != 0) return r;
  if ((r = sock_setint(s, SOL_SOCKET, SO_REUSEPORT, 1)) != 0) return r;
  if (bind(s, (const struct sockaddr *)&a->ss, a->len) != 0) return sock_err();
  return 0;
}

int nio__sock_getsockname(nio_sock s, nio_addr *a) {
  socklen_t len = sizeof a->ss;
  if (getsockname(s, (struct sockaddr *)&a->ss, &len) != 0) return sock_err();
  a->len = len;
  return 0;
}

int nio__sock_getpeername(nio_sock s, nio_addr *a) {
  socklen_t len = sizeof a->ss;
  if (getpeername(s, (struct sockaddr *)&a->ss, &len) != 0) return sock_err();
  a->len = len;
  return 0;
}

int nio__sock_error(nio_sock s) {
  int err = 0;
  socklen_t len = sizeof err;
  if (getsockopt(s, SOL_SOCKET, SO_ERROR, &err, &len) != 0) return sock_err();
  return err == 0 ? 0 : nio_translate_sys_error(err);
}

int nio__sock_setopt(nio_sock s, const char *name, int value) {
  struct linger l;
  if (strcmp(name, "tcp-nodelay") == 0) {
    int r = sock_setint(s, IPPROTO_TCP, TCP_NODELAY, value != 0);
    nio_addr a;
    if (r == NIO_EOPNOTSUPP && nio__sock_getsockname(s, &a) == 0 &&
        a.ss.ss_family == AF_UNIX)
      r = 0;
    return r;
  }
  if (strcmp(name, "keepalive") == 0)
    return sock_setint(s, SOL_SOCKET, SO_KEEPALIVE, value != 0);
  if (strcmp(name, "reuseaddr") == 0)
    return sock_setint(s, SOL_SOCKET, SO_REUSEADDR, value != 0);
  if (strcmp(name, "broadcast") == 0)
    return sock_setint(s, SOL_SOCKET, SO_BROADCAST, value != 0);
  /* Buffer sizes in bytes (the caller checks they are positive). */
  if (strcmp(name, "sndbuf") == 0)
    return sock_setint(s, SOL_SOCKET, SO_SNDBUF, value);
  if (strcmp(name, "rcvbuf") == 0)
    return sock_setint(s, SOL_SOCKET, SO_RCVBUF, value);
  if (strcmp(name, "linger") == 0) {
    l.l_onoff = value >= 0;
    l.l_linger = value >= 0 ? value : 0;
    if (setsockopt(s, SOL_SOCKET, SO_LINGER, &l, sizeof l) != 0)
      return sock_err();
    return 0;
  }
  return NIO_EINVAL;
}

int nio__sock_udp(int family, nio_sock *out) {
  int s = socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  *out = NIO_BAD_SOCK;
  if (s < 0) return sock_err();
  if (family == AF_INET6 && sock_setint(s, IPPROTO_IPV6, IPV6_V6ONLY, 0) != 0) {
    int r = sock_err();
    close(s);
    return r;
  }
  *out = s;
  return 0;
}

int nio__sock_bind(nio_sock s, const nio_addr *a) {
  if (bind(s, (const struct sockaddr *)&a->ss, a->len) != 0) return sock_err();
  return 0;
}

int nio__sock_udp_connect(nio_sock s, const nio_addr *a) {
  if (connect(s, (const struct sockaddr *)&a->ss, a->len) != 0)
    return sock_err();
  return 0;
}

long nio__sock_sendto(nio_sock s, const void *p, size_t len,
                      const nio_addr *a) {
  ssize_t n;
  do
    n = sendto(s, p, len, MSG_NOSIGNAL | MSG_DONTWAIT,
               a ? (const struct sockaddr *)&a->ss : NULL,
               a ? (socklen_t)a->len : 0);
  while (n < 0 && errno == EINTR);
  return n < 0 ? sock_err() : (long)n;
}

/* MSG_TRUNC: the real length of a datagram longer than the buffer. */
long nio__sock_recvfrom(nio_sock s, void *p, size_t len, nio_addr *a,
                        int *trunc) {
  socklen_t alen = a ? (socklen_t)sizeof a->ss : 0;
  ssize_t n;
  do
    n = recvfrom(s, p, len, MSG_TRUNC | MSG_DONTWAIT,
                 a ? (struct sockaddr *)&a->ss : NULL, a ? &alen : NULL);
  while (n < 0 && errno == EINTR);
  if (n < 0) return sock_err();
  if (a) a->len = alen;
  *trunc = (size_t)n > len;
  return *trunc ? (long)len : (long)n;
}

int nio__sock_shutdown_write(nio_sock s) {
  if (shutdown(s, SHUT_WR) != 0) return sock_err();
  return 0;
}

int nio__sock_close_reset(nio_sock s) {
  struct linger l = {1, 0};
  /* Even if the option fails the descriptor must not leak. */
  setsockopt(s, SOL_SOCKET, SO_LINGER, &l, sizeof l);
  return nio__sock_close(s);
}

int nio__sock_readable(nio_sock s) {
  struct pollfd p = {s, POLLIN, 0};
  int n;
  do n = poll(&p, 1, 0);
  while (n < 0 && errno == EINTR);
  if (n < 0) return sock_err();
  return n > 0 && (p.revents & (POLLIN | POLLERR | POLLHUP)) != 0;
}

int nio__sock_pair(nio_sock *engine_end, nio_sock *writer_end) {
  int sv[2], fl;
  *engine_end = *writer_end = NIO_BAD_SOCK;
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
    return sock_err();
  if ((fl = fcntl(sv[0], F_GETFL)) < 0 ||
      fcntl(sv[0], F_SETFL, fl | O_NONBLOCK) != 0) {
    int r = sock_err();
    close(sv[0]);
    close(sv[1]);
    return r;
  }
  *engine_end = sv[0];
  *writer_end = sv[1];
  return 0;
}

long nio__sock_send(nio_sock s, const void *p, size_t len) {
  ssize_t n;
  do n = send(s, p, len, MSG_NOSIGNAL);
  while (n < 0 && errno == EINTR);
  return n < 0 ? sock_err() : (long)n;
}

int nio__sock_last_error(void) {
  return errno == 0 ? 0 : sock_err();
}

/* ---- name resolution ------------------------------------------------- */

static int resolve_error(int eai) {
  switch (eai) {
  case EAI_NONAME:
#ifdef EAI_NODATA
  case EAI_NODATA:
#endif
  case EAI_SERVICE:
    return NIO_EAI_NONAME;
  case EAI_AGAIN:
    return NIO_EAI_AGAIN;
  case EAI_MEMORY:
    return NIO_ENOMEM;
  case EAI_FAMILY:
    return NIO_EAFNOSUPPORT;
  case EAI_SYSTEM:
    return errno ? nio_translate_sys_error(errno) : NIO_EAI_FAIL;
  default:
    return NIO_EAI_FAIL;
  }
}

int nio__addr_resolve(const char *host, int port, nio_addr *out, int max) {
  struct addrinfo hints, *res = NULL;
  int r, n = 0;
  memset(&hints, 0, sizeof hints);
  /* No AI_ADDRCONFIG: it hides loopback addresses on a host with no
  ** configured address of that family, and "localhost" must work. */
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_protocol = IPPROTO_TCP;
  if ((r = getaddrinfo(host, NULL, &hints, &res)) != 0) return resolve_error(r);
  /* In the resolver's order (RFC 6724 sorting by glibc). */
  for (struct addrinfo *ai = res; ai && n < max; ai = ai->ai_next) {
    nio_addr *a = &out[n];
    if (ai->ai_addrlen > sizeof a->ss) continue;
    if (ai->ai_family != AF_INET && ai->ai_family != AF_INET6) continue;
    memset(a, 0, sizeof *a);
    memcpy(&a->ss, ai->ai_addr, ai->ai_addrlen);
    if (ai->ai_family == AF_INET)
      ((struct sockaddr_in *)&a->ss)->sin_port = htons((uint16_t)port);
    else
      ((struct sockaddr_in6 *)&a->ss)->sin6_port = htons((uint16_t)port);
    a->len = (uint32_t)ai->ai_addrlen;
    n++;
  }
  freeaddrinfo(res);
  return n > 0 ? n : NIO_EAI_NONAME;
}

void nio__module_pin(const void *addr) {
  Dl_info info;
  /* RTLD_NOLOAD finds the object already loaded; RTLD_NODELETE then keeps
  ** it past every dlclose. The handle is let go on purpose. */
  if (dladdr(addr, &info) != 0 && info.dli_fname != NULL)
    (void)dlopen(info.dli_fname, RTLD_NOW | RTLD_NOLOAD | RTLD_NODELETE);
}
