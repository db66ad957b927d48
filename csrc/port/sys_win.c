/*
** sys_win.c: the per-OS layer of sys.h for Windows (Win32 threads,
** SRW locks and condition variables, QueryPerformanceCounter, overlapped
** non-inheritable Winsock sockets and their options).
*/
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <io.h>
#include <process.h>
#include <signal.h>
#include <stdatomic.h>
#include "sys.h"

/* ---- process ------------------------------------------------------- */

static INIT_ONCE sys_once = INIT_ONCE_STATIC_INIT;
static int sys_init_err;

static BOOL CALLBACK sys_init_once(PINIT_ONCE once, PVOID param, PVOID *ctx) {
  WSADATA wsa;
  int r;
  (void)once, (void)param, (void)ctx;
  r = WSAStartup(MAKEWORD(2, 2), &wsa);
  sys_init_err = r == 0 ? 0 : nio_translate_sys_error(r);
  return TRUE;
}

/* WSAStartup once per process; WSACleanup is never called, the process
** exit releases Winsock (other modules may still use it meanwhile). */
int nio__sys_init(void) {
  InitOnceExecuteOnce(&sys_once, sys_init_once, NULL, NULL);
  return sys_init_err;
}

/* The process heap of Windows needs no tuning here. */
void nio__sys_tune_heap(void) {}

static nio_interrupt_fn sys_interrupt_fn;

/* Runs on a thread the console creates for the event. Returning TRUE for
** Ctrl-C keeps the process alive: the handler asked for a graceful stop
** (or exited at once on the second). */
static BOOL WINAPI sys_console_handler(DWORD ev) {
  nio_interrupt_fn fn = sys_interrupt_fn;
  if (fn == NULL) return FALSE;
  switch (ev) {
  case CTRL_C_EVENT:
  case CTRL_BREAK_EVENT:
    fn(SIGINT);
    return TRUE;
  case CTRL_CLOSE_EVENT:
    fn(SIGTERM);
    return TRUE;
  default:
    return FALSE;
  }
}

void nio__sys_on_interrupt(nio_interrupt_fn fn) {
  sys_interrupt_fn = fn;
  SetConsoleCtrlHandler(sys_console_handler, fn != NULL);
}

/* Console events arrive on their own thread, never on the worker, so
** there is nothing to mask. */
void nio__sys_interrupt_mask(int block) {
  (void)block;
}

void nio__sys_exit_now(int status) {
  _exit(status);
}

/* A console, not _isatty: that is true of any character device (NUL), and
** under Wine of a file a cmd.exe started by another program redirected. */
int nio__sys_stdin_is_tty(void) {
  HANDLE h = GetStdHandle(STD_INPUT_HANDLE);
  DWORD mode;
  if (h == NULL || h == INVALID_HANDLE_VALUE) return 0;
  return GetConsoleMode(h, &mode) != 0;
}

long nio__sys_read_stdin(void *buf, size_t len) {
  HANDLE h = GetStdHandle(STD_INPUT_HANDLE);
  DWORD n = 0;
  if (len > 0x10000000u) len = 0x10000000u;
  if (h == NULL || h == INVALID_HANDLE_VALUE) return 0;
  if (!ReadFile(h, buf, (DWORD)len, &n, NULL)) {
    DWORD e = GetLastError();
    /* The writer of a pipe went away: that is the end of the input. */
    if (e == ERROR_BROKEN_PIPE || e == ERROR_HANDLE_EOF) return 0;
    return nio_translate_sys_error((int)e);
  }
  return (long)n;
}

/* ---- time ---------------------------------------------------------- */

uint64_t nio__now_ns(void) {
  static LARGE_INTEGER freq; /* constant after boot; a racy first write
                             ** stores the same value */
  LARGE_INTEGER c;
  uint64_t f;
  if (freq.QuadPart == 0) QueryPerformanceFrequency(&freq);
  QueryPerformanceCounter(&c);
  f = (uint64_t)freq.QuadPart;
  /* Split to keep c * 1e9 from overflowing. */
  return (uint64_t)c.QuadPart / f * 1000000000u +
         (uint64_t)c.QuadPart % f * 1000000000u / f;
}

/* FILETIME counts 100 ns units from 1601-01-01; the Unix epoch is
** 11644473600 s later. (GetSystemTimePreciseAsFileTime needs Windows 8;
** the build targets Windows 7, and milliseconds are all netio.time()
** promises.) */
uint64_t nio__wall_ns(void) {
  FILETIME ft;
  ULARGE_INTEGER u;
  GetSystemTimeAsFileTime(&ft);
  u.LowPart = ft.dwLowDateTime;
  u.HighPart = ft.dwHighDateTime;
  return (u.QuadPart - 116444736000000000u) * 100u;
}

/* ---- threads ------------------------------------------------------- */

/* Allocated by nio__thread_start/detach_start; freed by nio__thread_join,
** or, for a thread detached, by whichever of the thread's end and
** nio__thread_detach() comes last (`gone` tells). */
struct nio_thread {
  HANDLE h;
  nio_thread_fn fn;
  void *arg;
  int detached;    /* started detached: the thread owns the record */
  atomic_int gone; /* 1: the thread's end, or the detach, came first */
};

static unsigned __stdcall thread_main(void *ud) {
  struct nio_thread *t = ud;
  nio_thread_fn fn = t->fn;
  void *arg = t->arg;
  int detached = t->detached;
  if (detached) free(t);
  fn(arg);
  if (!detached && atomic_exchange(&t->gone, 1)) free(t);
  return 0;
}

int nio__thread_start(nio_thread **out, nio_thread_fn fn, void *arg) {
  struct nio_thread *t;
  uintptr_t h;
  *out = NULL;
  if ((t = calloc(1, sizeof *t)) == NULL) return NIO_ENOMEM;
  t->fn = fn;
  t->arg = arg;
  h = _beginthreadex(NULL, 0, thread_main, t, 0, NULL);
  if (h == 0) {
    free(t);
    return NIO_EAGAIN;
  }
  t->h = (HANDLE)h;
  *out = t;
  return 0;
}

int nio__thread_join(nio_thread *t) {
  DWORD w = WaitForSingleObject(t->h, INFINITE);
  CloseHandle(t->h);
  free(t);
  return w == WAIT_OBJECT_0 ? 0 : NIO_EINVAL;
}

void nio__thread_detach(nio_thread *t) {
  CloseHandle(t->h);
  if (atomic_exchange(&t->gone, 1)) free(t); /* it ended already */
}

int nio__thread_detach_start(nio_thread_fn fn, void *arg) {
  struct nio_thread *t;
  uintptr_t h;
  if ((t = calloc(1, sizeof *t)) == NULL) return NIO_ENOMEM;
  t->fn = fn;
  t->arg = arg;
  t->detached = 1;
  /* On success the thread frees t, possibly before this returns. */
  h = _beginthreadex(NULL, 0, thread_main, t, 0, NULL);
  if (h == 0) {
    free(t);
    return NIO_EAGAIN;
  }
  CloseHandle((HANDLE)h);
  return 0;
}

void nio__thread_block_signals(void) {}

int nio__tls_key_new(nio_tls_key *key, void (*dtor)(void *)) {
  /* Fiber-local storage: its callback runs when a thread ends. */
  DWORD k = FlsAlloc((PFLS_CALLBACK_FUNCTION)dtor);
  if (k == FLS_OUT_OF_INDEXES) return NIO_ENOMEM;
  *key = (nio_tls_key)k;
  return 0;
}

void nio__tls_set(nio_tls_key key, void *value) {
  FlsSetValue((DWORD)key, value);
}

uint64_t nio__thread_self_id(void) {
  return (uint64_t)GetCurrentThreadId();
}

/* ---- locks --------------------------------------------------------- */

int nio__mutex_init(nio_mutex *m) {
  InitializeSRWLock(&m->l);
  return 0;
}

void nio__mutex_destroy(nio_mutex *m) {
  (void)m; /* SRW locks hold no resources */
}

void nio__mutex_lock(nio_mutex *m) {
  AcquireSRWLockExclusive(&m->l);
}

void nio__mutex_unlock(nio_mutex *m) {
  ReleaseSRWLockExclusive(&m->l);
}

int nio__cond_init(nio_cond *c) {
  InitializeConditionVariable(&c->c);
  return 0;
}

void nio__cond_destroy(nio_cond *c) {
  (void)c;
}

void nio__cond_signal(nio_cond *c) {
  WakeConditionVariable(&c->c);
}

void nio__cond_broadcast(nio_cond *c) {
  WakeAllConditionVariable(&c->c);
}

/* The timeout is relative, so the wall clock cannot stretch it; rounded
** up to whole milliseconds so that a wait never ends early. */
int nio__cond_wait(nio_cond *c, nio_mutex *m, int64_t timeout_ns) {
  DWORD ms = INFINITE;
  if (timeout_ns >= 0) {
    uint64_t v = ((uint64_t)timeout_ns + 999999u) / 1000000u;
    ms = v >= INFINITE ? INFINITE - 1 : (DWORD)v;
  }
  if (SleepConditionVariableSRW(&c->c, &m->l, ms, 0)) return 0;
  if (GetLastError() == ERROR_TIMEOUT) return NIO_ETIMEDOUT;
  return nio_translate_sys_error((int)GetLastError());
}

/* ---- sockets ------------------------------------------------------- */

static int sock_err(void) {
  return nio_translate_sys_error(WSAGetLastError());
}

static int sock_setint(nio_sock s, int level, int name, int value) {
  if (setsockopt(s, level, name, (const char *)&value, sizeof value) != 0)
    return sock_err();
  return 0;
}

static int sock_make_type(int family, int type, int proto, nio_sock *out) {
  u_long nb = 1;
  SOCKET s;
  /* WSA_FLAG_NO_HANDLE_INHERIT needs Windows 7 SP1; older systems reject
  ** the flag, then inheritance is switched off on the handle. */
  s = WSASocketW(family, type, proto, NULL, 0,
                 WSA_FLAG_OVERLAPPED | WSA_FLAG_NO_HANDLE_INHERIT);
  if (s == INVALID_SOCKET && WSAGetLastError() == WSAEINVAL) {
    s = WSASocketW(family, type, proto, NULL, 0, WSA_FLAG_OVERLAPPED);
    if (s != INVALID_SOCKET)
      SetHandleInformation((HANDLE)s, HANDLE_FLAG_INHERIT, 0);
  }
  if (s == INVALID_SOCKET) return sock_err();
  /* Non-blocking for the plain recv() after a zero-byte read; overlapped
  ** operations are unaffected by it. */
  if (ioctlsocket(s, FIONBIO, &nb) != 0) {
    int r = sock_err();
    closesocket(s);
    return r;
  }
  *out = s;
  return 0;
}

static int sock_make(int family, nio_sock *out) {
  return sock_make_type(family, SOCK_STREAM, IPPROTO_TCP, out);
}

int nio__sock_tcp(int family, nio_sock *out) {
  int r;
  *out = NIO_BAD_SOCK;
  if ((r = nio__sys_init()) != 0) return r;
  return sock_make(family, out);
}

int nio__sock_close(nio_sock s) {
  if (closesocket(s) != 0) return sock_err();
  return 0;
}

/* No SO_REUSEADDR: on Windows it would let a second socket bind a port
** that is being listened on; a port with connections in TIME_WAIT can be
** bound again without it. reuseport has no Windows counterpart with the
** same meaning (shared accept load); it maps to SO_REUSEADDR, which lets
** several listeners bind the port. An IPv6 listener is dual-stack, as on
** Linux. */
int nio__sock_listen(const nio_addr *a, int backlog, int reuseport,
                     nio_sock *out) {
  nio_sock s;
  int r;
  *out = NIO_BAD_SOCK;
  if ((r = nio__sock_tcp(a->ss.ss_family, &s)) != 0) return r;
  if (reuseport && (r = sock_setint(s, SOL_SOCKET, SO_REUSEADDR, 1)) != 0)
    goto fail;
  if (a->ss.ss_family == AF_INET6 &&
      (r = sock_setint(s, IPPROTO_IPV6, IPV6_V6ONLY, 0)) != 0)
    goto fail;
  if (bind(s, (const struct sockaddr *)&a->ss, (int)a->len) != 0 ||
      listen(s, backlog) != 0) {
    r = sock_err();
    goto fail;
  }
  *out = s;
  return 0;
fail:
  closesocket(s);
  return r;
}

int nio__sock_bind_reuse(nio_sock s, const nio_addr *a) {
  int r;
  if ((r = sock_setint(s, SOL_SOCKET, SO_REUSEADDR, 1)) != 0) return r;
  if (bind(s, (const struct sockaddr *)&a->ss, (int)a->len) != 0)
    return sock_err();
  return 0;
}

int nio__sock_getsockname(nio_sock s, nio_addr *a) {
  int len = sizeof a->ss;
  if (getsockname(s, (struct sockaddr *)&a->ss, &len) != 0) return sock_err();
  a->len = (uint32_t)len;
  return 0;
}

int nio__sock_getpeername(nio_sock s, nio_addr *a) {
  int len = sizeof a->ss;
  if (getpeername(s, (struct sockaddr *)&a->ss, &len) != 0) return sock_err();
  a->len = (uint32_t)len;
  return 0;
}

int nio__sock_error(nio_sock s) {
  int err = 0, len = sizeof err;
  if (getsockopt(s, SOL_SOCKET, SO_ERROR, (char *)&err, &len) != 0)
    return sock_err();
  return err == 0 ? 0 : nio_translate_sys_error(err);
}

int nio__sock_setopt(nio_sock s, const char *name, int value) {
  struct linger l;
  if (strcmp(name, "tcp-nodelay") == 0)
    return sock_setint(s, IPPROTO_TCP, TCP_NODELAY, value != 0);
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
    l.l_linger = (u_short)(value >= 0 ? (value > 65535 ? 65535 : value) : 0);
    if (setsockopt(s, SOL_SOCKET, SO_LINGER, (const char *)&l, sizeof l) != 0)
      return sock_err();
    return 0;
  }
  return NIO_EINVAL;
}

#ifndef SIO_UDP_CONNRESET
#define SIO_UDP_CONNRESET _WSAIOW(IOC_VENDOR, 12)
#endif

/* Whether a "port unreachable" fails the socket's next receive. Off for
** an unconnected socket, where one peer's ICMP would fail the receive of
** every other peer's datagrams. */
static int sock_udp_connreset(nio_sock s, BOOL on) {
  DWORD bytes = 0;
  if (WSAIoctl(s, SIO_UDP_CONNRESET, &on, sizeof on, NULL, 0, &bytes, NULL,
               NULL) != 0)
    return sock_err();
  return 0;
}

int nio__sock_udp(int family, nio_sock *out) {
  int r;
  *out = NIO_BAD_SOCK;
  if ((r = nio__sys_init()) != 0) return r;
  if ((r = sock_make_type(family, SOCK_DGRAM, IPPROTO_UDP, out)) != 0) return r;
  if ((family == AF_INET6 &&
       (r = sock_setint(*out, IPPROTO_IPV6, IPV6_V6ONLY, 0)) != 0) ||
      (r = sock_udp_connreset(*out, FALSE)) != 0) {
    closesocket(*out);
    *out = NIO_BAD_SOCK;
    return r;
  }
  return 0;
}

int nio__sock_bind(nio_sock s, const nio_addr *a) {
  if (bind(s, (const struct sockaddr *)&a->ss, (int)a->len) != 0)
    return sock_err();
  return 0;
}

int nio__sock_udp_connect(nio_sock s, const nio_addr *a) {
  if (connect(s, (const struct sockaddr *)&a->ss, (int)a->len) != 0)
    return sock_err();
  /* Best effort: without it a refused peer only shows as silence. */
  sock_udp_connreset(s, TRUE);
  return 0;
}

long nio__sock_sendto(nio_sock s, const void *p, size_t len,
                      const nio_addr *a) {
  int n = sendto(s, p, (int)len, 0, a ? (const struct sockaddr *)&a->ss : NULL,
                 a ? (int)a->len : 0);
  int r;
  if (n != SOCKET_ERROR) return n;
  r = sock_err();
  return r == NIO_ECONNRESET ? NIO_ECONNREFUSED : r;
}

/* A datagram longer than the buffer fills it and fails with WSAEMSGSIZE;
** a "port unreachable" comes as WSAECONNRESET. */
long nio__sock_recvfrom(nio_sock s, void *p, size_t len, nio_addr *a,
                        int *trunc) {
  int alen = (int)sizeof a->ss, n, r;
  *trunc = 0;
  n = recvfrom(s, p, (int)len, 0, a ? (struct sockaddr *)&a->ss : NULL,
               a ? &alen : NULL);
  if (n == SOCKET_ERROR) {
    r = sock_err();
    if (r == NIO_ECONNRESET) return NIO_ECONNREFUSED;
    if (r != NIO_EMSGSIZE) return r;
    *trunc = 1;
    n = (int)len;
  }
  if (a) a->len = (uint32_t)alen;
  return n;
}

int nio__sock_shutdown_write(nio_sock s) {
  if (shutdown(s, SD_SEND) != 0) return sock_err();
  return 0;
}

int nio__sock_close_reset(nio_sock s) {
  struct linger l = {1, 0};
  setsockopt(s, SOL_SOCKET, SO_LINGER, (const char *)&l, sizeof l);
  return nio__sock_close(s);
}

/* select() with no wait: readable covers bytes and the end of the stream,
** the exception set a failure. One socket, so FD_SETSIZE is no limit. */
int nio__sock_readable(nio_sock s) {
  fd_set r, x;
  struct timeval tv = {0, 0};
  int n;
  FD_ZERO(&r);
  FD_ZERO(&x);
  FD_SET(s, &r);
  FD_SET(s, &x);
  if ((n = select(0, &r, NULL, &x, &tv)) == SOCKET_ERROR) return sock_err();
  return n > 0;
}

/* No socketpair on Windows: a loopback TCP connection made here, the
** engine's end overlapped and non-blocking (from sock_make, through the
** listener), the writer's end a plain blocking socket. */
int nio__sock_pair(nio_sock *engine_end, nio_sock *writer_end) {
  nio_addr a;
  nio_sock l = NIO_BAD_SOCK, w = INVALID_SOCKET, e = INVALID_SOCKET;
  struct sockaddr_in *in = (struct sockaddr_in *)&a.ss;
  u_long blocking = 0;
  int r;
  *engine_end = *writer_end = NIO_BAD_SOCK;
  memset(&a, 0, sizeof a);
  in->sin_family = AF_INET;
  in->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.len = sizeof *in;
  if ((r = nio__sock_listen(&a, 1, 0, &l)) != 0) return r;
  if ((r = nio__sock_getsockname(l, &a)) != 0) goto fail;
  /* Blocking accept for this one connection. */
  if (ioctlsocket(l, FIONBIO, &blocking) != 0) goto fail_err;
  if ((w = socket(AF_INET, SOCK_STREAM, IPPROTO_TCP)) == INVALID_SOCKET)
    goto fail_err;
  SetHandleInformation((HANDLE)w, HANDLE_FLAG_INHERIT, 0);
  if (connect(w, (const struct sockaddr *)&a.ss, (int)a.len) != 0)
    goto fail_err;
  if ((e = accept(l, NULL, NULL)) == INVALID_SOCKET) goto fail_err;
  {
    u_long nb = 1;
    if (ioctlsocket(e, FIONBIO, &nb) != 0) goto fail_err;
  }
  nio__sock_close(l);
  *engine_end = e;
  *writer_end = w;
  return 0;
fail_err:
  r = sock_err();
fail:
  if (e != INVALID_SOCKET) closesocket(e);
  if (w != INVALID_SOCKET) closesocket(w);
  nio__sock_close(l);
  return r;
}

long nio__sock_send(nio_sock s, const void *p, size_t len) {
  int n;
  if (len > 0x10000000u) len = 0x10000000u;
  n = send(s, p, (int)len, 0);
  return n == SOCKET_ERROR ? sock_err() : (long)n;
}

int nio__sock_last_error(void) {
  int e = WSAGetLastError();
  return e == 0 ? 0 : nio_translate_sys_error(e);
}

/* ---- name resolution ------------------------------------------------- */

static int resolve_error(int eai) {
  switch (eai) {
  case EAI_NONAME:
  case EAI_NODATA:
  case EAI_SERVICE:
    return NIO_EAI_NONAME;
  case EAI_AGAIN:
    return NIO_EAI_AGAIN;
  case EAI_MEMORY:
    return NIO_ENOMEM;
  case EAI_FAMILY:
    return NIO_EAFNOSUPPORT;
  default:
    return NIO_EAI_FAIL;
  }
}

int nio__addr_resolve(const char *host, int port, nio_addr *out, int max) {
  struct addrinfo hints, *res = NULL;
  int r, n = 0;
  if ((r = nio__sys_init()) != 0) return r;
  memset(&hints, 0, sizeof hints);
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_protocol = IPPROTO_TCP;
  if ((r = getaddrinfo(host, NULL, &hints, &res)) != 0) return resolve_error(r);
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
  HMODULE h;
  (void)GetModuleHandleExW(GET_MODULE_HANDLE_EX_FLAG_FROM_ADDRESS |
                               GET_MODULE_HANDLE_EX_FLAG_PIN,
                           (LPCWSTR)addr, &h);
}
