/*
** test_port_contract.c: the contract of port.h, checked at submit the same
** way on every backend -- one reader and one writer per socket, sockets
** added first, send totals that fit the int result, cancel of what is not
** active.
*/
#include <limits.h>
#include <string.h>
#include "helpers.h"

/* got must be want (a refusal, or 0); what: the call, for the message. */
static void expect_err(int got, int want, const char *what) {
  if (got != want)
    th_fail("expected %s to give %s, got %s", what, nio_err_name(want),
            nio_err_name(got));
}

static void second_recv_on_a_socket_is_refused_with_ebusy(void **state) {
  nio_port *p = th_port_open();
  nio_req r1, r2;
  th_log l1, l2;
  int c;
  nio_sock s;
  (void)state;
  th_pair(p, &c, &s);
  th_log_init(&l1);
  th_log_init(&l2);
  th_req(&r1, s, NIO_OP_RECV, &l1);
  th_req(&r2, s, NIO_OP_RECV, &l2);
  assert_int_equal(nio__port_submit(p, &r1), 0);
  expect_err(nio__port_submit(p, &r2), NIO_EBUSY,
             "a second recv on one socket");
  assert_false(r2.active);
  th_write_all(c, "x", 1);
  th_run_until(p, th_log_final, &l1, 5000, "the first recv");
  assert_int_equal(l1.last_res, 1);
  /* The place is free again after the first's final completion. */
  assert_int_equal(nio__port_submit(p, &r2), 0);
  th_close(c);
  th_run_until(p, th_log_final, &l2, 5000, "the second recv, after the first");
  assert_int_equal(l2.last_res, 0);
  nio__port_remove(p, s);
  nio__sock_close(s);
  nio__port_close(p);
}

static void second_accept_on_a_listener_is_refused_with_ebusy(void **state) {
  nio_port *p = th_port_open();
  nio_addr a;
  nio_sock l = th_listen(&a);
  nio_req r1, r2;
  static th_log l1, l2;
  (void)state;
  assert_int_equal(nio__port_add(p, l), 0);
  th_log_init(&l1);
  th_log_init(&l2);
  th_req(&r1, l, NIO_OP_ACCEPT, &l1);
  th_req(&r2, l, NIO_OP_ACCEPT, &l2);
  assert_int_equal(nio__port_submit(p, &r1), 0);
  expect_err(nio__port_submit(p, &r2), NIO_EBUSY,
             "a second accept on one listener");
  assert_int_equal(nio__port_cancel(p, &r1), 0);
  th_run_until(p, th_log_final, &l1, 5000, "the canceled accept");
  assert_int_equal(l2.ncqe, 0);
  nio__port_remove(p, l);
  nio__sock_close(l);
  nio__port_close(p);
}

/* A send to a peer that does not read stays pending; a second send on the
** socket meanwhile is refused, a recv (the other side) is not. */
static void second_send_on_a_socket_is_refused_with_ebusy(void **state) {
  nio_port *p = th_port_open();
  nio_req r1, r2, rr;
  th_log l1, l2, lr;
  static char big[16 << 20];
  nio_iov iov1 = {big, sizeof big}, iov2 = {"y", 1};
  int c;
  nio_sock s;
  (void)state;
  th_pair(p, &c, &s);
  th_log_init(&l1);
  th_log_init(&l2);
  th_log_init(&lr);
  th_req(&r1, s, NIO_OP_SEND, &l1);
  r1.u.send.iov = &iov1;
  r1.u.send.iovcnt = 1;
  th_req(&r2, s, NIO_OP_SEND, &l2);
  r2.u.send.iov = &iov2;
  r2.u.send.iovcnt = 1;
  th_req(&rr, s, NIO_OP_RECV, &lr);
  assert_int_equal(nio__port_submit(p, &r1), 0);
  th_run_for(p, 30);
  if (l1.ncqe != 0)
    th_fail("expected 16 MiB to a peer that does not read to stay pending");
  expect_err(nio__port_submit(p, &r2), NIO_EBUSY,
             "a second send on one socket");
  expect_err(nio__port_submit(p, &rr), 0, "a recv beside a pending send");
  assert_int_equal(nio__port_cancel(p, &r1), 0);
  assert_int_equal(nio__port_cancel(p, &rr), 0);
  th_run_until(p, th_log_final, &l1, 5000, "the canceled send");
  th_run_until(p, th_log_final, &lr, 5000, "the canceled recv");
  assert_int_equal(l2.ncqe, 0);
  th_pair_finish(p, c, s);
}

/* Three ranges of 1 GiB: the total does not fit the int a send completes
** with. Refused before anything is sent, so the ranges may name memory
** that does not exist. */
static void send_over_int_max_is_refused_with_emsgsize(void **state) {
  nio_port *p = th_port_open();
  nio_req r;
  th_log log;
  static char small[16];
  nio_iov iov[3] = {
      {small, (size_t)1 << 30}, {small, (size_t)1 << 30}, {small, 1u << 30}};
  int c;
  nio_sock s;
  (void)state;
  th_pair(p, &c, &s);
  th_log_init(&log);
  th_req(&r, s, NIO_OP_SEND, &log);
  r.u.send.iov = iov;
  r.u.send.iovcnt = 3;
  expect_err(nio__port_submit(p, &r), NIO_EMSGSIZE, "a send of 3 GiB");
  assert_false(r.active);
  th_run_for(p, 20);
  assert_int_equal(log.ncqe, 0);
  th_pair_finish(p, c, s);
}

static void submit_on_a_socket_not_added_is_refused_with_ebadf(void **state) {
  nio_port *p = th_port_open();
  nio_req r;
  th_log log;
  int c;
  nio_sock s;
  (void)state;
  th_pair(NULL, &c, &s);
  th_log_init(&log);
  th_req(&r, s, NIO_OP_RECV, &log);
  expect_err(nio__port_submit(p, &r), NIO_EBADF,
             "a recv on a socket not added");
  /* Added, then removed: refused again. */
  assert_int_equal(nio__port_add(p, s), 0);
  expect_err(nio__port_add(p, s), NIO_EEXIST, "adding a socket twice");
  nio__port_remove(p, s);
  expect_err(nio__port_submit(p, &r), NIO_EBADF, "a recv on a removed socket");
  assert_false(r.active);
  th_run_for(p, 20);
  assert_int_equal(log.ncqe, 0);
  th_pair_finish(p, c, s);
}

static void submit_of_a_malformed_request_is_refused_with_einval(void **state) {
  nio_port *p = th_port_open();
  nio_req r;
  th_log log;
  int c;
  nio_sock s;
  (void)state;
  th_pair(p, &c, &s);
  th_log_init(&log);
  th_req(&r, s, 99, &log);
  expect_err(nio__port_submit(p, &r), NIO_EINVAL, "op 99");
  th_req(&r, s, NIO_OP_RECV, &log);
  r.cb = NULL;
  expect_err(nio__port_submit(p, &r), NIO_EINVAL, "a request without callback");
  th_req(&r, s, NIO_OP_CONNECT, &log);
  expect_err(nio__port_submit(p, &r), NIO_EINVAL, "a connect without address");
  th_req(&r, s, NIO_OP_SEND, &log);
  r.u.send.iovcnt = 2;
  expect_err(nio__port_submit(p, &r), NIO_EINVAL, "a send without its iov");
  r.u.send.iovcnt = -1;
  expect_err(nio__port_submit(p, &r), NIO_EINVAL, "a send of -1 ranges");
  th_run_for(p, 20);
  assert_int_equal(log.ncqe, 0);
  th_pair_finish(p, c, s);
}

static void cancel_of_a_request_not_active_is_enoent(void **state) {
  nio_port *p = th_port_open();
  nio_req r;
  th_log log;
  int c;
  nio_sock s;
  (void)state;
  th_pair(p, &c, &s);
  th_log_init(&log);
  th_req(&r, s, NIO_OP_RECV, &log);
  expect_err(nio__port_cancel(p, &r), NIO_ENOENT,
             "cancel of a request never submitted");
  assert_int_equal(nio__port_submit(p, &r), 0);
  expect_err(nio__port_submit(p, &r), NIO_EBUSY,
             "submitting an active request again");
  th_write_all(c, "z", 1);
  th_run_until(p, th_log_final, &log, 5000, "the recv");
  expect_err(nio__port_cancel(p, &r), NIO_ENOENT,
             "cancel after the final completion");
  th_run_for(p, 20);
  assert_int_equal(log.ncqe, 1);
  th_pair_finish(p, c, s);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(second_recv_on_a_socket_is_refused_with_ebusy),
      cmocka_unit_test(second_accept_on_a_listener_is_refused_with_ebusy),
      cmocka_unit_test(second_send_on_a_socket_is_refused_with_ebusy),
      cmocka_unit_test(send_over_int_max_is_refused_with_emsgsize),
      cmocka_unit_test(submit_on_a_socket_not_added_is_refused_with_ebadf),
      cmocka_unit_test(submit_of_a_malformed_request_is_refused_with_einval),
      cmocka_unit_test(cancel_of_a_request_not_active_is_enoent),
  };
  th_init(0);
  return cmocka_run_group_tests(tests, NULL, NULL);
}
