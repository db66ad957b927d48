/*
** test_sys.c: the OS layer (sys.h) -- clock, threads, condition timeouts,
** socket options, address formatting, dual-stack listeners.
*/
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <unistd.h>
#include "helpers.h"

static void now_is_monotonic_and_in_nanoseconds(void **state) {
  uint64_t a = nio__now_ns(), b;
  (void)state;
  th_usleep(20000);
  b = nio__now_ns();
  if (b < a + 15000000u || b > a + 5000000000u)
    th_fail("expected ~20 ms between two readings, got %llu ns",
            (unsigned long long)(b - a));
}

typedef struct sync_box {
  nio_mutex m;
  nio_cond c;
  int value;
  uint64_t tid;
} sync_box;

static void set_value(void *arg) {
  sync_box *b = arg;
  nio__mutex_lock(&b->m);
  b->value = 42;
  b->tid = nio__thread_self_id();
  nio__cond_signal(&b->c);
  nio__mutex_unlock(&b->m);
}

static void thread_runs_and_joins(void **state) {
  sync_box b = {0};
  nio_thread *t;
  (void)state;
  assert_int_equal(nio__mutex_init(&b.m), 0);
  assert_int_equal(nio__cond_init(&b.c), 0);
  assert_int_equal(nio__thread_start(&t, set_value, &b), 0);
  assert_int_equal(nio__thread_join(t), 0);
  assert_int_equal(b.value, 42);
  if (b.tid == 0 || b.tid == nio__thread_self_id())
    th_fail("expected the thread to have its own non-zero id");
  nio__cond_destroy(&b.c);
  nio__mutex_destroy(&b.m);
}

static void detached_thread_signals_a_waiter(void **state) {
  sync_box b = {0};
  int r = 0;
  (void)state;
  assert_int_equal(nio__mutex_init(&b.m), 0);
  assert_int_equal(nio__cond_init(&b.c), 0);
  nio__mutex_lock(&b.m);
  assert_int_equal(nio__thread_detach_start(set_value, &b), 0);
  while (b.value == 0 && r == 0) r = nio__cond_wait(&b.c, &b.m, 5000000000);
  nio__mutex_unlock(&b.m);
  if (b.value != 42)
    th_fail("expected the detached thread to set the value, wait gave %s",
            nio_err_name(r));
  /* The detached thread may still be unlocking; let it leave. */
  nio__mutex_lock(&b.m);
  nio__mutex_unlock(&b.m);
  th_usleep(10000);
  nio__cond_destroy(&b.c);
  nio__mutex_destroy(&b.m);
}

static void cond_wait_times_out(void **state) {
  nio_mutex m;
  nio_cond c;
  uint64_t t0;
  int r;
  (void)state;
  assert_int_equal(nio__mutex_init(&m), 0);
  assert_int_equal(nio__cond_init(&c), 0);
  nio__mutex_lock(&m);
  t0 = nio__now_ns();
  do r = nio__cond_wait(&c, &m, 30000000);
  while (r == 0 && nio__now_ns() - t0 < 30000000);
  nio__mutex_unlock(&m);
  if (r != NIO_ETIMEDOUT)
    th_fail("expected ETIMEDOUT after 30 ms, got %s", nio_err_name(r));
  if (nio__now_ns() - t0 < 25000000)
    th_fail("expected the wait to last about 30 ms");
  nio__cond_destroy(&c);
  nio__mutex_destroy(&m);
}

static void new_sockets_are_nonblocking_and_cloexec(void **state) {
  nio_sock s;
  (void)state;
  assert_int_equal(nio__sock_tcp(AF_INET, &s), 0);
  assert_true(fcntl(s, F_GETFL) & O_NONBLOCK);
  assert_true(fcntl(s, F_GETFD) & FD_CLOEXEC);
  assert_int_equal(nio__sock_close(s), 0);
}

static int getint(int s, int level, int name) {
  int v = -1;
  socklen_t len = sizeof v;
  getsockopt(s, level, name, &v, &len);
  return v;
}

static void setopt_knows_luasocket_names(void **state) {
  nio_sock s;
  struct linger l;
  socklen_t len = sizeof l;
  (void)state;
  assert_int_equal(nio__sock_tcp(AF_INET, &s), 0);
  assert_int_equal(nio__sock_setopt(s, "tcp-nodelay", 1), 0);
  assert_true(getint(s, IPPROTO_TCP, TCP_NODELAY));
  assert_int_equal(nio__sock_setopt(s, "keepalive", 1), 0);
  assert_true(getint(s, SOL_SOCKET, SO_KEEPALIVE));
  assert_int_equal(nio__sock_setopt(s, "reuseaddr", 0), 0);
  assert_false(getint(s, SOL_SOCKET, SO_REUSEADDR));
  assert_int_equal(nio__sock_setopt(s, "linger", 3), 0);
  getsockopt(s, SOL_SOCKET, SO_LINGER, &l, &len);
  assert_true(l.l_onoff);
  assert_int_equal(l.l_linger, 3);
  assert_int_equal(nio__sock_setopt(s, "linger", -1), 0);
  getsockopt(s, SOL_SOCKET, SO_LINGER, &l, &len);
  assert_false(l.l_onoff);
  if (nio__sock_setopt(s, "no-such-option", 1) != NIO_EINVAL)
    th_fail("expected EINVAL for an unknown option name");
  nio__sock_close(s);
}

static void setopt_sets_the_buffer_sizes(void **state) {
  nio_sock s;
  (void)state;
  assert_int_equal(nio__sock_tcp(AF_INET, &s), 0);
  assert_int_equal(nio__sock_setopt(s, "sndbuf", 100000), 0);
  assert_int_equal(nio__sock_setopt(s, "rcvbuf", 150000), 0);
  /* Linux doubles the value (for its bookkeeping); at least what was set. */
  if (getint(s, SOL_SOCKET, SO_SNDBUF) < 100000)
    th_fail("SO_SNDBUF is %d after setting 100000",
            getint(s, SOL_SOCKET, SO_SNDBUF));
  if (getint(s, SOL_SOCKET, SO_RCVBUF) < 150000)
    th_fail("SO_RCVBUF is %d after setting 150000",
            getint(s, SOL_SOCKET, SO_RCVBUF));
  nio__sock_close(s);
}

static void listener_reuses_address_and_port_when_asked(void **state) {
  nio_addr a;
  nio_sock l1, l2;
  (void)state;
  th_addr_loopback(&a, 0);
  assert_int_equal(nio__sock_listen(&a, 16, 1, &l1), 0);
  assert_true(getint(l1, SOL_SOCKET, SO_REUSEADDR));
  assert_true(getint(l1, SOL_SOCKET, SO_REUSEPORT));
  assert_int_equal(nio__sock_getsockname(l1, &a), 0);
  if (nio__sock_listen(&a, 16, 1, &l2) != 0)
    th_fail("expected a second reuseport listener on port %d",
            th_addr_port(&a));
  nio__sock_close(l2);
  nio__sock_close(l1);
}

static void listen_on_a_busy_port_is_eaddrinuse(void **state) {
  nio_addr a;
  nio_sock l1, l2;
  int r;
  (void)state;
  l1 = th_listen(&a);
  r = nio__sock_listen(&a, 16, 0, &l2);
  if (r != NIO_EADDRINUSE)
    th_fail("expected EADDRINUSE, got %s", nio_err_name(r));
  assert_int_equal(l2, NIO_BAD_SOCK);
  nio__sock_close(l1);
}

static void ipv6_any_listener_takes_ipv4_clients(void **state) {
  nio_addr a, peer;
  struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&a.ss;
  nio_sock l;
  int c, fd, r, port;
  char ip[64];
  (void)state;
  memset(&a, 0, sizeof a);
  s6->sin6_family = AF_INET6;
  s6->sin6_addr = in6addr_any;
  a.len = sizeof *s6;
  if ((r = nio__sock_listen(&a, 16, 0, &l)) != 0) {
    if (r == NIO_EAFNOSUPPORT || r == NIO_EADDRNOTAVAIL) skip();
    th_fail("expected a [::]:0 listener, got %s", nio_err_name(r));
  }
  assert_int_equal(nio__sock_getsockname(l, &a), 0);
  port = th_addr_port(&a);
  th_addr_loopback(&a, port);
  c = th_client(&a);
  th_set_blocking(l, 1);
  fd = accept(l, NULL, NULL);
  assert_true(fd >= 0);
  assert_int_equal(nio__sock_getpeername(fd, &peer), 0);
  assert_int_equal(nio__addr_format(&peer, ip, sizeof ip, &port), 0);
  if (strcmp(ip, "127.0.0.1") != 0)
    th_fail("expected the IPv4 client shown as 127.0.0.1, got %s", ip);
  th_close(fd);
  th_close(c);
  nio__sock_close(l);
}

static void addr_format_gives_ip_and_port(void **state) {
  nio_addr a;
  struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&a.ss;
  char ip[64], tiny[3];
  int port;
  (void)state;
  th_addr_loopback(&a, 8080);
  assert_int_equal(nio__addr_format(&a, ip, sizeof ip, &port), 0);
  assert_string_equal(ip, "127.0.0.1");
  assert_int_equal(port, 8080);
  memset(&a, 0, sizeof a);
  s6->sin6_family = AF_INET6;
  s6->sin6_port = htons(443);
  s6->sin6_addr = in6addr_loopback;
  a.len = sizeof *s6;
  assert_int_equal(nio__addr_format(&a, ip, sizeof ip, &port), 0);
  assert_string_equal(ip, "::1");
  assert_int_equal(port, 443);
  if (nio__addr_format(&a, tiny, sizeof tiny, &port) == 0)
    th_fail("expected an error formatting ::1 into a 3-byte buffer");
  /* A Unix socket address is formatted "unix:<path>", without a port;
  ** another family is refused. */
  a.ss.ss_family = AF_UNIX;
  a.len = sizeof(sa_family_t);
  assert_int_equal(nio__addr_format(&a, ip, sizeof ip, &port), 0);
  assert_string_equal(ip, "unix:");
  assert_int_equal(port, -1);
  a.ss.ss_family = AF_NETLINK;
  if (nio__addr_format(&a, ip, sizeof ip, &port) != NIO_EAFNOSUPPORT)
    th_fail("expected EAFNOSUPPORT for a non-IP, non-Unix address");
}

static void sock_error_reports_a_refused_connect(void **state) {
  nio_addr a;
  nio_sock s;
  int r = 0;
  int64_t deadline = th_now_ms() + 5000;
  (void)state;
  th_addr_closed(&a);
  assert_int_equal(nio__sock_tcp(AF_INET, &s), 0);
  connect(s, (const struct sockaddr *)&a.ss, a.len);
  while ((r = nio__sock_error(s)) == 0 && th_now_ms() < deadline)
    th_usleep(1000);
  if (r != NIO_ECONNREFUSED)
    th_fail("expected SO_ERROR to say ECONNREFUSED, got %s", nio_err_name(r));
  nio__sock_close(s);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(now_is_monotonic_and_in_nanoseconds),
      cmocka_unit_test(thread_runs_and_joins),
      cmocka_unit_test(detached_thread_signals_a_waiter),
      cmocka_unit_test(cond_wait_times_out),
      cmocka_unit_test(new_sockets_are_nonblocking_and_cloexec),
      cmocka_unit_test(setopt_knows_luasocket_names),
      cmocka_unit_test(setopt_sets_the_buffer_sizes),
      cmocka_unit_test(listener_reuses_address_and_port_when_asked),
      cmocka_unit_test(listen_on_a_busy_port_is_eaddrinuse),
      cmocka_unit_test(ipv6_any_listener_takes_ipv4_clients),
      cmocka_unit_test(addr_format_gives_ip_and_port),
      cmocka_unit_test(sock_error_reports_a_refused_connect),
  };
  th_init(0);
  return cmocka_run_group_tests(tests, NULL, NULL);
}
