/*
** test_port_connect.c: connect through the port -- success, refusal,
** cancel of a connect still in progress, binding a fixed local address.
*/
#include "helpers.h"

static nio_sock new_sock(nio_port *p) {
  nio_sock s;
  int r;
  if ((r = nio__sock_tcp(AF_INET, &s)) != 0)
    th_fail("expected a new socket, got %s", nio_err_name(r));
  if (p && (r = nio__port_add(p, s)) != 0)
    th_fail("expected nio__port_add to succeed, got %s", nio_err_name(r));
  return s;
}

static void connect_to_a_listener_succeeds(void **state) {
  nio_port *p = th_port_open();
  nio_addr a, peer;
  nio_sock l = th_listen(&a), s = new_sock(p);
  nio_req r;
  th_log log;
  (void)state;
  th_log_init(&log);
  th_req(&r, s, NIO_OP_CONNECT, &log);
  r.u.connect.addr = &a;
  assert_int_equal(nio__port_submit(p, &r), 0);
  th_run_until(p, th_log_final, &log, 5000, "the connect completion");
  if (log.ncqe != 1 || log.last_res != 0)
    th_fail("expected one completion with 0, got %d completions, last %s",
            log.ncqe, nio_err_name(log.last_res));
  assert_false(r.active);
  assert_int_equal(nio__sock_getpeername(s, &peer), 0);
  assert_int_equal(th_addr_port(&peer), th_addr_port(&a));
  nio__port_remove(p, s);
  nio__sock_close(s);
  nio__sock_close(l);
  nio__port_close(p);
}

static void connect_to_a_closed_port_is_refused(void **state) {
  nio_port *p = th_port_open();
  nio_addr a;
  nio_sock s = new_sock(p);
  nio_req r;
  th_log log;
  (void)state;
  th_addr_closed(&a);
  th_log_init(&log);
  th_req(&r, s, NIO_OP_CONNECT, &log);
  r.u.connect.addr = &a;
  assert_int_equal(nio__port_submit(p, &r), 0);
  th_run_until(p, th_log_final, &log, 5000, "the refused connect");
  if (log.last_res != NIO_ECONNREFUSED)
    th_fail("expected ECONNREFUSED connecting to a closed port, got %s",
            nio_err_name(log.last_res));
  nio__port_remove(p, s);
  nio__sock_close(s);
  nio__port_close(p);
}

/* A listener whose accept queue is full drops new SYNs, so a connect to it
** stays in progress (the client retries after a second). */
static int connect_stays_pending(nio_sock s, const nio_addr *a) {
  return th_connect_pending(s, a, 50);
}

static void connect_then_cancel_gives_one_completion(void **state) {
  nio_port *p = th_port_open();
  nio_addr any, a;
  nio_sock l, s, fill[16];
  nio_req r;
  th_log log;
  int nfill = 0, pending = 0;
  (void)state;
  th_addr_loopback(&any, 0);
  assert_int_equal(nio__sock_listen(&any, 1, 0, &l), 0);
  assert_int_equal(nio__sock_getsockname(l, &a), 0);
  while (nfill < 16 && !pending) {
    fill[nfill] = new_sock(NULL);
    pending = connect_stays_pending(fill[nfill++], &a);
  }
  if (!pending) {
    for (int i = 0; i < nfill; i++) nio__sock_close(fill[i]);
    nio__sock_close(l);
    nio__port_close(p);
    skip();
  }
  s = new_sock(p);
  th_log_init(&log);
  th_req(&r, s, NIO_OP_CONNECT, &log);
  r.u.connect.addr = &a;
  assert_int_equal(nio__port_submit(p, &r), 0);
  th_run_for(p, 50);
  if (log.ncqe != 0)
    th_fail("expected the connect to a full backlog to be pending, got %s",
            nio_err_name(log.last_res));
  assert_int_equal(nio__port_cancel(p, &r), 0);
  th_run_until(p, th_log_final, &log, 5000, "the canceled connect");
  th_run_for(p, 50);
  if (log.ncqe != 1 || log.last_res != NIO_ECANCELED)
    th_fail("expected exactly one ECANCELED completion, got %d, last %s",
            log.ncqe, nio_err_name(log.last_res));
  assert_false(r.active);
  nio__port_remove(p, s);
  nio__sock_close(s);
  for (int i = 0; i < nfill; i++) nio__sock_close(fill[i]);
  nio__sock_close(l);
  nio__port_close(p);
}

static void connect_from_a_bound_address_keeps_it(void **state) {
  nio_port *p = th_port_open();
  nio_addr a, local, got;
  nio_sock l = th_listen(&a), s = new_sock(p), probe;
  nio_req r;
  th_log log;
  (void)state;
  /* A free local port: bind one, note it, release it. */
  probe = new_sock(NULL);
  th_addr_loopback(&local, 0);
  assert_int_equal(nio__sock_bind_reuse(probe, &local), 0);
  assert_int_equal(nio__sock_getsockname(probe, &local), 0);
  assert_int_equal(nio__sock_bind_reuse(s, &local), 0);
  th_log_init(&log);
  th_req(&r, s, NIO_OP_CONNECT, &log);
  r.u.connect.addr = &a;
  assert_int_equal(nio__port_submit(p, &r), 0);
  th_run_until(p, th_log_final, &log, 5000, "the connect from a bound port");
  if (log.last_res != 0)
    th_fail("expected the bound connect to succeed, got %s",
            nio_err_name(log.last_res));
  assert_int_equal(nio__sock_getsockname(s, &got), 0);
  if (th_addr_port(&got) != th_addr_port(&local))
    th_fail("expected local port %d, got %d", th_addr_port(&local),
            th_addr_port(&got));
  nio__sock_close(probe);
  nio__port_remove(p, s);
  nio__sock_close(s);
  nio__sock_close(l);
  nio__port_close(p);
}

static void connected_socket_carries_data_both_ways(void **state) {
  nio_port *p = th_port_open();
  nio_addr a;
  nio_sock l = th_listen(&a), s = new_sock(p);
  nio_req r;
  th_log log;
  nio_iov iov = {"ping", 4};
  char buf[8];
  int srv;
  (void)state;
  th_log_init(&log);
  th_req(&r, s, NIO_OP_CONNECT, &log);
  r.u.connect.addr = &a;
  assert_int_equal(nio__port_submit(p, &r), 0);
  th_run_until(p, th_log_final, &log, 5000, "the connect");
  assert_int_equal(log.last_res, 0);
  th_set_blocking(l, 1);
  th_sock_timeout(l, 5000);
  srv = accept(l, NULL, NULL);
  assert_true(srv >= 0);
  th_sock_timeout(srv, 5000);
  th_log_init(&log);
  th_req(&r, s, NIO_OP_SEND, &log);
  r.u.send.iov = &iov;
  r.u.send.iovcnt = 1;
  assert_int_equal(nio__port_submit(p, &r), 0);
  th_run_until(p, th_log_final, &log, 5000, "the send after connect");
  assert_int_equal(log.last_res, 4);
  assert_int_equal(th_read_some(srv, buf, sizeof buf), 4);
  assert_memory_equal(buf, "ping", 4);
  th_close(srv);
  nio__port_remove(p, s);
  nio__sock_close(s);
  nio__sock_close(l);
  nio__port_close(p);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(connect_to_a_listener_succeeds),
      cmocka_unit_test(connect_to_a_closed_port_is_refused),
      cmocka_unit_test(connect_then_cancel_gives_one_completion),
      cmocka_unit_test(connect_from_a_bound_address_keeps_it),
      cmocka_unit_test(connected_socket_carries_data_both_ways),
  };
  th_init(0);
  return cmocka_run_group_tests(tests, NULL, NULL);
}
