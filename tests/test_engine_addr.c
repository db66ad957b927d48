/*
** test_engine_addr.c: address strings and name resolution -- splitting,
** numeric parsing, resolving "localhost" off the loop.
*/
#include "engine_helpers.h"
#ifdef __linux__
#include <dirent.h>
#include <stddef.h>
#include <sys/un.h>
#endif

/* Threads of this process now (Linux: /proc/self/task), or -1. */
static int count_threads(void) {
#ifdef __linux__
  DIR *d = opendir("/proc/self/task");
  struct dirent *de;
  int n = 0;
  if (d == NULL) return -1;
  while ((de = readdir(d)) != NULL)
    if (de->d_name[0] != '.') n++;
  closedir(d);
  return n;
#else
  return -1;
#endif
}

static void split_accepts_valid_forms(void **state) {
  static const struct {
    const char *in, *host;
    int port;
  } ok[] = {
      {"127.0.0.1:80", "127.0.0.1", 80},
      {"[::1]:8080", "::1", 8080},
      {"*:0", "", 0},
      {":123", "", 123},
      {"localhost:65535", "localhost", 65535},
      {"example.com:443", "example.com", 443},
      {"[fe80::1%lo]:1", "fe80::1%lo", 1},
      {"[::]:7", "::", 7},
      {"host:00080", "host", 80},
  };
  (void)state;
  for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
    char host[256];
    int port = -1, r = nio__addr_split(ok[i].in, host, sizeof host, &port);
    if (r != 0)
      fail_msg("split(\"%s\"): expected 0, got %s", ok[i].in, nio_err_name(r));
    if (strcmp(host, ok[i].host) != 0 || port != ok[i].port)
      fail_msg("split(\"%s\"): expected \"%s\" %d, got \"%s\" %d", ok[i].in,
               ok[i].host, ok[i].port, host, port);
  }
}

static void split_rejects_malformed(void **state) {
  static const char *bad[] = {
      "",
      "80",
      "host",
      "host:",
      "host:65536",
      "host:-1",
      "host:8o",
      "host:+80",
      "host: 80",
      "host:123456",
      "[::1]",
      "[::1",
      "[::1]80",
      "[::1]:",
      "::1:80",
      "a b:1",
      "[]:1",
      "[a]b]:1",
      "ho\tst:1",
      "**:1",
      "[::1]:1:2",
      "host:80 ",
      ":",
      "[:::1",
      "h\xc3\xa9:1",
      "[1.2.3.4]:1",
      "[localhost]:1",
      "[%lo]:1",
  };
  char host[256], tiny[4];
  int port;
  (void)state;
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    int r = nio__addr_split(bad[i], host, sizeof host, &port);
    if (r != NIO_EBADADDR)
      fail_msg("split(\"%s\"): expected EBADADDR, got %s", bad[i],
               nio_err_name(r));
  }
  assert_int_equal(nio__addr_split(NULL, host, sizeof host, &port),
                   NIO_EBADADDR);
  /* A host longer than the caller's buffer is refused, not truncated. */
  assert_int_equal(nio__addr_split("longhost:1", tiny, sizeof tiny, &port),
                   NIO_EBADADDR);
}

static void numeric_parses_ip_literals_only(void **state) {
  nio_addr a;
  struct sockaddr_in *in4 = (struct sockaddr_in *)&a.ss;
  struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&a.ss;
  (void)state;
  assert_int_equal(nio__addr_numeric("", 80, &a), 0);
  assert_int_equal(in4->sin_family, AF_INET);
  assert_int_equal(in4->sin_addr.s_addr, htonl(INADDR_ANY));
  assert_int_equal(ntohs(in4->sin_port), 80);
  assert_int_equal(nio__addr_numeric("127.0.0.1", 65535, &a), 0);
  assert_int_equal(in4->sin_addr.s_addr, htonl(INADDR_LOOPBACK));
  assert_int_equal(ntohs(in4->sin_port), 65535);
  assert_int_equal(a.len, sizeof *in4);
  assert_int_equal(nio__addr_numeric("::1", 1, &a), 0);
  assert_int_equal(in6->sin6_family, AF_INET6);
  assert_int_equal(a.len, sizeof *in6);
  assert_true(IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr));
  assert_int_equal(nio__addr_numeric("localhost", 80, &a), NIO_EAI_NONAME);
  assert_int_equal(nio__addr_numeric("256.1.1.1", 80, &a), NIO_EAI_NONAME);
  assert_int_equal(nio__addr_numeric("127.0.0.1", 65536, &a), NIO_EBADADDR);
  assert_int_equal(nio__addr_numeric("127.0.0.1", -1, &a), NIO_EBADADDR);
  assert_int_equal(nio__addr_numeric(NULL, 1, &a), NIO_EBADADDR);
}

/* A host with ':' or '%' came from brackets: an IPv6 literal with an
** optional zone, or refused here -- never handed to the resolver or the
** OS. */
static void numeric_checks_ipv6_literals_and_zones(void **state) {
  static const char *bad[] = {"::g",     "1::2::3",    "fe80::1%",     "%lo",
                              "::1%%lo", "1.2.3.4%lo", "fe80::1%lo%lo"};
  static const char *nodev[] = {"fe80::1%999", "fe80::1%no-such-if",
                                "fe80::1%4294967296", "fe80::1%0"};
  struct sockaddr_in6 *in6;
  nio_addr a;
  uint32_t lo;
  (void)state;
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    int r = nio__addr_numeric(bad[i], 1, &a);
    if (r != NIO_EBADADDR)
      fail_msg("numeric(\"%s\"): expected EBADADDR, got %s", bad[i],
               nio_err_name(r));
  }
  for (size_t i = 0; i < sizeof nodev / sizeof nodev[0]; i++) {
    int r = nio__addr_numeric(nodev[i], 1, &a);
    if (r != NIO_ENODEV)
      fail_msg("numeric(\"%s\"): expected ENODEV, got %s", nodev[i],
               nio_err_name(r));
  }
  /* The loopback interface by its index: the scope is that index. */
  if (nio__if_index("1", &lo) == 0) {
    char host[32];
    snprintf(host, sizeof host, "fe80::1%%%u", (unsigned)lo);
    assert_int_equal(nio__addr_numeric(host, 7, &a), 0);
    in6 = (struct sockaddr_in6 *)&a.ss;
    assert_int_equal(in6->sin6_family, AF_INET6);
    assert_int_equal(in6->sin6_scope_id, lo);
    assert_int_equal(ntohs(in6->sin6_port), 7);
  }
}

/* ---- "unix:" addresses, names, duplicates --------------------------- */

#ifndef _WIN32
static void parse_takes_unix_paths_and_abstract_names(void **state) {
  char host[256], path[200], want[256];
  int port = 0, n;
  nio_addr a;
  struct sockaddr_un *un = (struct sockaddr_un *)&a.ss;
  size_t off = offsetof(struct sockaddr_un, sun_path);
  (void)state;
  assert_int_equal(
      nio__addr_parse("unix:/tmp/x.sock", host, sizeof host, &port, &a), 0);
  assert_int_equal(un->sun_family, AF_UNIX);
  assert_string_equal(un->sun_path, "/tmp/x.sock");
  assert_int_equal(a.len, off + strlen("/tmp/x.sock") + 1);
  assert_int_equal(port, -1);
  assert_int_equal(nio__addr_format(&a, want, sizeof want, &port), 0);
  assert_string_equal(want, "unix:/tmp/x.sock");
  assert_int_equal(port, -1);
  /* A relative path is a path too. */
  assert_int_equal(
      nio__addr_parse("unix:rel.sock", host, sizeof host, &port, &a), 0);
  assert_string_equal(un->sun_path, "rel.sock");
  /* "@name": the abstract name, no NUL in its length. */
  assert_int_equal(nio__addr_parse("unix:@abs", host, sizeof host, &port, &a),
                   0);
  assert_int_equal(un->sun_path[0], '\0');
  assert_memory_equal(un->sun_path + 1, "abs", 3);
  assert_int_equal(a.len, off + 4);
  assert_int_equal(nio__addr_format(&a, want, sizeof want, &port), 0);
  assert_string_equal(want, "unix:@abs");
  /* The longest path that fits sun_path with its NUL, then one more. */
  n = (int)sizeof un->sun_path - 1;
  memset(path, 'p', sizeof path);
  memcpy(path, "unix:/", 6);
  path[5 + n] = '\0';
  assert_int_equal(nio__addr_parse(path, host, sizeof host, &port, &a), 0);
  assert_int_equal(strlen(un->sun_path), (size_t)n);
  path[5 + n] = 'p';
  path[5 + n + 1] = '\0';
  assert_int_equal(nio__addr_parse(path, host, sizeof host, &port, &a),
                   NIO_ENAMETOOLONG);
  assert_int_equal(nio__addr_parse("unix:", host, sizeof host, &port, &a),
                   NIO_EINVAL);
  assert_int_equal(nio__addr_parse("unix:@", host, sizeof host, &port, &a),
                   NIO_EINVAL);
  /* A buffer too small for the text is refused, not overrun. */
  assert_int_equal(
      nio__addr_parse("unix:/tmp/x.sock", host, sizeof host, &port, &a), 0);
  assert_int_equal(nio__addr_format(&a, want, 8, &port), NIO_ENAMETOOLONG);
  /* An unnamed socket (a client that never bound): "unix:". */
  a.len = (uint32_t)off;
  assert_int_equal(nio__addr_format(&a, want, sizeof want, &port), 0);
  assert_string_equal(want, "unix:");
}
#else
static void parse_takes_unix_paths_and_abstract_names(void **state) {
  char host[256];
  int port;
  nio_addr a;
  (void)state;
  /* Not on Windows yet: the iocp backend is not built for AF_UNIX. */
  assert_int_equal(
      nio__addr_parse("unix:C:/x.sock", host, sizeof host, &port, &a),
      NIO_EAFNOSUPPORT);
}
#endif

static void parse_gives_numeric_addresses_or_names_to_resolve(void **state) {
  char host[256];
  int port = 0;
  nio_addr a;
  (void)state;
  assert_int_equal(
      nio__addr_parse("127.0.0.1:80", host, sizeof host, &port, &a), 0);
  assert_int_equal(a.ss.ss_family, AF_INET);
  assert_int_equal(port, 80);
  assert_int_equal(
      nio__addr_parse("localhost:81", host, sizeof host, &port, &a), 1);
  assert_string_equal(host, "localhost");
  assert_int_equal(port, 81);
  assert_int_equal(nio__addr_parse("unix", host, sizeof host, &port, &a),
                   NIO_EBADADDR);
  assert_int_equal(nio__addr_parse("unixx:/a", host, sizeof host, &port, &a),
                   NIO_EBADADDR);
  assert_int_equal(nio__addr_parse(NULL, host, sizeof host, &port, &a),
                   NIO_EBADADDR);
}

static void name_check_refuses_junk_before_any_lookup(void **state) {
  char long_name[300];
  (void)state;
  assert_int_equal(nio__addr_name_check("localhost"), 0);
  assert_int_equal(nio__addr_name_check("a-b_c.example.com"), 0);
  assert_int_equal(nio__addr_name_check(""), NIO_EBADADDR);
  assert_int_equal(nio__addr_name_check(NULL), NIO_EBADADDR);
  assert_int_equal(nio__addr_name_check("a b"), NIO_EBADADDR);
  assert_int_equal(nio__addr_name_check("a:b"), NIO_EBADADDR);
  assert_int_equal(nio__addr_name_check("h\xc3\xa9"), NIO_EBADADDR);
  memset(long_name, 'a', sizeof long_name - 1);
  long_name[sizeof long_name - 1] = '\0';
  assert_int_equal(nio__addr_name_check(long_name), NIO_EBADADDR);
}

static void dedup_keeps_the_first_of_equal_addresses_in_order(void **state) {
  static const char *in[] = {"::1",       "127.0.0.1", "::1",
                             "127.0.0.2", "127.0.0.1", "::1"};
  static const char *want[] = {"::1", "127.0.0.1", "127.0.0.2"};
  nio_addr a[6];
  char ip[NIO_ADDR_TEXT_MAX];
  int n, port;
  (void)state;
  for (int i = 0; i < 6; i++)
    assert_int_equal(nio__addr_numeric(in[i], 80, &a[i]), 0);
  n = nio__addr_dedup(a, 6);
  assert_int_equal(n, 3);
  for (int i = 0; i < n; i++) {
    assert_int_equal(nio__addr_format(&a[i], ip, sizeof ip, &port), 0);
    if (strcmp(ip, want[i]) != 0)
      fail_msg("dedup: expected %s at %d, got %s", want[i], i, ip);
  }
  /* The same address on another port is another address. */
  assert_int_equal(nio__addr_numeric("127.0.0.1", 81, &a[1]), 0);
  assert_int_equal(nio__addr_numeric("127.0.0.1", 80, &a[0]), 0);
  assert_int_equal(nio__addr_dedup(a, 2), 2);
}

/* ---- resolution ------------------------------------------------------- */

typedef struct res_state {
  eh_test t;
  int calls, res, in_call, turns_waiting, port;
  int family, loopback, naddrs;
  nio_listener *l;
  nio_conn *c;
  int connected, conn_err;
} res_state;

static void res_conn_cb(nio_conn *c, int ev) {
  res_state *s = c->udata;
  if (ev & NIO_EV_CONNECT) {
    s->connected = 1;
    s->conn_err = c->err;
    s->t.done = 1;
  }
}

static void res_cb(void *arg, int res, const nio_addr *a, int n) {
  res_state *s = arg;
  s->calls++;
  s->res = res;
  s->naddrs = n;
  EH_CHECK(&s->t, !s->in_call,
           "resolve callback: expected later, not inside nio__resolve");
  EH_CHECK(&s->t, nio__engine_current() == s->t.e,
           "resolve callback: expected on the worker thread");
  if (res != 0) {
    s->t.done = 1;
    return;
  }
  s->family = a->ss.ss_family;
  if (a->ss.ss_family == AF_INET) {
    const struct sockaddr_in *in4 = (const struct sockaddr_in *)&a->ss;
    s->loopback = (ntohl(in4->sin_addr.s_addr) >> 24) == 127;
    s->port = ntohs(in4->sin_port);
  } else if (a->ss.ss_family == AF_INET6) {
    const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)&a->ss;
    s->loopback = IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr);
    s->port = ntohs(in6->sin6_port);
  }
  /* The resolved address connects to a dual-stack listener. */
  s->c = NULL;
  if (nio__conn_connect(s->t.e, a, NULL, res_conn_cb, s, &s->c) < 0)
    s->t.done = 1;
}

static void res_turn(eh_test *t) {
  res_state *s = (res_state *)t;
  if (s->calls == 0) s->turns_waiting++;
}

static void res_lcb(nio_listener *l, int ev) {
  nio_conn *c;
  (void)ev;
  while ((c = nio__listener_accept(l, NULL, NULL)) != NULL)
    nio__conn_close(c, 0);
}

static int res_start(eh_test *t) {
  res_state *s = (res_state *)t;
  nio_addr a;
  int r;
  /* "[::]" is dual-stack: whichever family localhost resolves to first
  ** reaches it. */
  r = nio__addr_numeric("::", 0, &a);
  if (r == 0) r = nio__listen(t->e, &a, 0, 0, 0, res_lcb, s, &s->l);
  if (r == 0) r = nio__listener_getsockname(s->l, &a);
  if (!EH_CHECK(t, r == 0, "listen on [::]:0: expected 0, got %s",
                nio_err_name(r)))
    return 0;
  s->in_call = 1;
  r = nio__resolve(t->e, "localhost", th_addr_port(&a), res_cb, s);
  s->in_call = 0;
  EH_CHECK(t, r == 0, "resolve: expected 0, got %s", nio_err_name(r));
  t->stage = "localhost to resolve and connect";
  return 0;
}

static void res_finish(eh_test *t) {
  res_state *s = (res_state *)t;
  if (s->c) nio__conn_close(s->c, 0);
  if (s->l) nio__listener_close(s->l);
}

static void resolve_localhost_off_the_loop(void **state) {
  res_state s;
  (void)state;
  memset(&s, 0, sizeof s);
  s.t.start = res_start;
  s.t.turn = res_turn;
  s.t.finish = res_finish;
  eh_run(&s.t);
  assert_int_equal(s.calls, 1);
  if (s.res != 0)
    fail_msg("resolve localhost: expected 0, got %s", nio_err_name(s.res));
  assert_true(s.loopback);
  assert_int_not_equal(s.port, 0);
  /* The loop kept turning while the helper thread looked the name up. */
  assert_true(s.turns_waiting >= 1);
  assert_true(s.connected);
  if (s.conn_err != 0)
    fail_msg("connect to resolved localhost: expected 0, got %s",
             nio_err_name(s.conn_err));
}

/* The engine ends while a lookup runs: the callback still runs once (with
** the result or NIO_ECANCELED) and the helper thread drops its result. */
static void cancel_cb(void *arg, int res, const nio_addr *a, int n) {
  res_state *s = arg;
  (void)a;
  (void)n;
  s->calls++;
  s->res = res;
}

static int cancel_start(eh_test *t) {
  res_state *s = (res_state *)t;
  for (int i = 0; i < 8; i++)
    EH_CHECK(t, nio__resolve(t->e, "localhost", 80, cancel_cb, s) == 0,
             "resolve: expected 0");
  t->done = 1;
  return 0;
}

static void engine_end_cancels_pending_resolutions(void **state) {
  res_state s;
  (void)state;
  memset(&s, 0, sizeof s);
  s.t.start = cancel_start;
  eh_run(&s.t);
  assert_int_equal(s.calls, 8);
  /* Let the helper threads finish their lookups and free their halves. */
  th_usleep(300000);
}

/* ---- the pool of lookup threads ------------------------------------- */

/* 64 lookups at once, each made to last 50 ms (NETIO_TEST_RESOLVE_DELAY):
** they all answer, and never more than 4 threads look names up. */
#define POOL_N 64

typedef struct pool_state {
  eh_test t;
  int base, peak, calls, ok, canceled;
} pool_state;

static void pool_sample(pool_state *s) {
  int n = count_threads();
  if (n > s->peak) s->peak = n;
}

static void pool_cb(void *arg, int res, const nio_addr *a, int n) {
  pool_state *s = arg;
  (void)a;
  (void)n;
  s->calls++;
  if (res == 0) s->ok++;
  if (res == NIO_ECANCELED) s->canceled++;
  if (s->calls == POOL_N) s->t.done = 1;
}

static int pool_start(eh_test *t) {
  pool_state *s = (pool_state *)t;
  s->base = count_threads();
  for (int i = 0; i < POOL_N; i++) {
    int r = nio__resolve(t->e, "localhost", 80, pool_cb, s);
    if (!EH_CHECK(t, r == 0, "resolve %d: expected 0, got %s", i,
                  nio_err_name(r)))
      return 0;
    pool_sample(s);
  }
  t->stage = "64 lookups of 50 ms on 4 threads";
  return 0;
}

static void pool_turn(eh_test *t) {
  pool_sample((pool_state *)t);
}

static void lookups_share_a_pool_of_four_threads(void **state) {
  pool_state s;
  int64_t t0;
  (void)state;
  memset(&s, 0, sizeof s);
  s.t.start = pool_start;
  s.t.turn = pool_turn;
  th_setenv("NETIO_TEST_RESOLVE_DELAY", "0.05");
  t0 = th_now_ms();
  eh_run(&s.t);
  th_setenv("NETIO_TEST_RESOLVE_DELAY", NULL);
  if (s.ok != POOL_N)
    fail_msg("expected %d lookups of localhost to answer, %d did (%d calls)",
             POOL_N, s.ok, s.calls);
  if (s.base > 0 && s.peak - s.base > 4)
    fail_msg("expected at most 4 lookup threads, counted %d more threads "
             "than before the lookups",
             s.peak - s.base);
  /* 16 rounds of 4 lookups of 50 ms: not one thread, not one per lookup. */
  if (th_now_ms() - t0 < 700)
    fail_msg("64 lookups of 50 ms took %lld ms: more than 4 at once",
             (long long)(th_now_ms() - t0));
}

/* The run ends while lookups wait (made to last 10 s): every callback runs
** with NIO_ECANCELED at the end, which does not wait for them, and the
** lookup threads end with the engine (ASan: nothing leaks). */
static int pending_start(eh_test *t) {
  pool_state *s = (pool_state *)t;
  for (int i = 0; i < 8; i++)
    EH_CHECK(t, nio__resolve(t->e, "localhost", 80, pool_cb, s) == 0,
             "resolve: expected 0");
  t->done = 1;
  return 0;
}

static void engine_end_stops_the_lookup_threads(void **state) {
  pool_state s;
  int64_t t0, deadline;
  int n = -1;
  (void)state;
  memset(&s, 0, sizeof s);
  s.base = count_threads();
  s.t.start = pending_start;
  th_setenv("NETIO_TEST_RESOLVE_DELAY", "10");
  t0 = th_now_ms();
  eh_run(&s.t);
  th_setenv("NETIO_TEST_RESOLVE_DELAY", NULL);
  if (s.calls != 8 || s.canceled != 8)
    fail_msg("expected 8 callbacks with NIO_ECANCELED, got %d calls, %d "
             "canceled",
             s.calls, s.canceled);
  if (th_now_ms() - t0 > 5000)
    fail_msg("the engine's end waited %lld ms for lookups",
             (long long)(th_now_ms() - t0));
  if (s.base < 0) return;
  deadline = th_now_ms() + 2000;
  while ((n = count_threads()) > s.base && th_now_ms() < deadline)
    th_usleep(10000);
  if (n > s.base)
    fail_msg("expected the lookup threads to end with the engine: %d threads, "
             "%d before",
             n, s.base);
}

/* ---- connecting to a list of addresses ------------------------------ */

/* A refused address, then a listening one: the connection reaches the
** second, and its owner sees one NIO_EV_CONNECT, without error. */
typedef struct list_state {
  eh_test t;
  nio_listener *l;
  nio_conn *c;
  int events, err, want_port, peer_port;
} list_state;

static void list_conn_cb(nio_conn *c, int ev) {
  list_state *s = c->udata;
  nio_addr a;
  if (!(ev & NIO_EV_CONNECT)) return;
  s->events++;
  s->err = c->err;
  if (c->err == 0 && nio__conn_getpeername(c, &a) == 0)
    s->peer_port = th_addr_port(&a);
  s->t.done = 1;
}

static void list_lcb(nio_listener *l, int ev) {
  (void)l;
  (void)ev;
}

static int list_start(eh_test *t) {
  list_state *s = (list_state *)t;
  nio_addr addrs[2], dead;
  nio_listener *d;
  int r;
  /* A port nobody listens on: listened on, then closed. */
  if ((d = eh_listen(t, &dead, 0, list_lcb, s)) == NULL) return 0;
  nio__listener_close(d);
  if ((s->l = eh_listen(t, &addrs[1], 0, list_lcb, s)) == NULL) return 0;
  s->want_port = th_addr_port(&addrs[1]);
  addrs[0] = dead;
  r = nio__conn_connect_list(t->e, addrs, 2, NULL, list_conn_cb, s, &s->c);
  EH_CHECK(t, r == 0, "connect_list: expected 0, got %s", nio_err_name(r));
  t->stage = "a refused address, then a listening one";
  return 0;
}

static void list_finish(eh_test *t) {
  list_state *s = (list_state *)t;
  if (s->c) nio__conn_close(s->c, 0);
  if (s->l) nio__listener_close(s->l);
}

static void connect_list_tries_the_next_address_after_a_failure(void **state) {
  list_state s;
  (void)state;
  memset(&s, 0, sizeof s);
  s.t.start = list_start;
  s.t.finish = list_finish;
  eh_run(&s.t);
  assert_int_equal(s.events, 1);
  if (s.err != 0)
    fail_msg("expected the second address to connect, got %s",
             nio_err_name(s.err));
  assert_int_equal(s.peer_port, s.want_port);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(split_accepts_valid_forms),
      cmocka_unit_test(split_rejects_malformed),
      cmocka_unit_test(numeric_parses_ip_literals_only),
      cmocka_unit_test(numeric_checks_ipv6_literals_and_zones),
      cmocka_unit_test(parse_takes_unix_paths_and_abstract_names),
      cmocka_unit_test(parse_gives_numeric_addresses_or_names_to_resolve),
      cmocka_unit_test(name_check_refuses_junk_before_any_lookup),
      cmocka_unit_test(dedup_keeps_the_first_of_equal_addresses_in_order),
      cmocka_unit_test(connect_list_tries_the_next_address_after_a_failure),
      cmocka_unit_test(resolve_localhost_off_the_loop),
      cmocka_unit_test(engine_end_cancels_pending_resolutions),
      cmocka_unit_test(lookups_share_a_pool_of_four_threads),
      cmocka_unit_test(engine_end_stops_the_lookup_threads),
  };
  th_init(0);
  return cmocka_run_group_tests(tests, NULL, NULL);
}
