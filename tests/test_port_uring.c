/*
** test_port_uring.c: what only the io_uring backend does -- buffer-ring
** exhaustion handled by re-queuing, the setup-flag fallback chain, the
** NETIO_TEST_URING_FAIL switch, cancel of a send the backend is resuming.
*Skipped (77) unless the backend under test
** is uring.
*/
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>
#include "helpers.h"

/* A recv that resubmits itself after each final completion with data, so
** single-shot and multishot recvs both read a whole stream. */
typedef struct stream {
  nio_port *p;
  th_log log;
  int eof;
  int resubmit_err;
} stream;

static void stream_cb(nio_req *r, int res, const char *data, unsigned flags) {
  stream *st = r->data;
  r->data = &st->log;
  th_log_cb(r, res, data, flags);
  r->data = st;
  if (flags & NIO_CQE_MORE) return;
  if (res > 0) {
    int e = nio__port_submit(st->p, r);
    if (e != 0) st->resubmit_err = e;
  } else {
    st->eof = 1;
  }
}

#define EXH_CONNS 16
#define EXH_BYTES (48 * 1024)

typedef struct exh {
  stream st[EXH_CONNS];
} exh;

static int exh_done(void *ud) {
  exh *e = ud;
  for (int i = 0; i < EXH_CONNS; i++)
    if (!e->st[i].eof) return 0;
  return 1;
}

/* Four receive buffers for sixteen sockets that all have data at the first
** submission: most recvs meet an empty ring (-ENOBUFS), which the owner
** must never see. */
static void recv_survives_buffer_ring_exhaustion(void **state) {
  static exh e;
  static char data[EXH_BYTES];
  nio_req r[EXH_CONNS];
  int c[EXH_CONNS];
  nio_sock s[EXH_CONNS];
  nio_port *p;
  uint64_t want;
  (void)state;
  setenv("NETIO_TEST_URING_BUFS", "4", 1);
  p = th_port_open();
  unsetenv("NETIO_TEST_URING_BUFS");
  th_pattern(data, sizeof data, 0);
  want = th_hash(TH_HASH_INIT, data, sizeof data);
  memset(&e, 0, sizeof e);
  for (int i = 0; i < EXH_CONNS; i++) {
    th_pair(p, &c[i], &s[i]);
    th_write_all(c[i], data, sizeof data);
    close(c[i]);
    e.st[i].p = p;
    th_log_init(&e.st[i].log);
    th_req(&r[i], s[i], NIO_OP_RECV, NULL);
    r[i].cb = stream_cb;
    r[i].data = &e.st[i];
    /* Half multishot, half single-shot with a cap. */
    if (i % 2 == 0)
      r[i].flags = NIO_REQ_MULTISHOT;
    else
      r[i].u.recv.max = 5000;
    assert_int_equal(nio__port_submit(p, &r[i]), 0);
  }
  th_run_until(p, exh_done, &e, 10000, "every stream to reach EOF");
  for (int i = 0; i < EXH_CONNS; i++) {
    stream *st = &e.st[i];
    if (st->log.nerr != 0 || st->resubmit_err != 0)
      th_fail("stream %d: expected no error completion, got %d (last %s)", i,
              st->log.nerr, nio_err_name(st->log.last_res));
    if (st->log.bytes != EXH_BYTES || st->log.hash != want)
      th_fail("stream %d: expected %d bytes with the right checksum, got %llu",
              i, EXH_BYTES, (unsigned long long)st->log.bytes);
    if (i % 2 == 1 && st->log.max_res > 5000)
      th_fail("stream %d: expected at most 5000 bytes per completion, got %d",
              i, st->log.max_res);
    if (st->log.active_seen)
      th_fail("stream %d: expected the request inactive in its final "
              "callback",
              i);
    nio__port_remove(p, s[i]);
    nio__sock_close(s[i]);
  }
  nio__port_close(p);
}

typedef struct poster {
  nio_port *p;
  int err;
} poster;

static void poster_main(void *arg) {
  poster *ps = arg;
  usleep(50 * 1000);
  ps->err = nio__port_post(ps->p);
}

/* Each step of the fallback chain must give a fully working port: accept,
** recv, send, cancel and a post from another thread. */
static void setup_fallback_steps_each_work(void **state) {
  static const char *steps[] = {"defer", "coop", "plain"};
  (void)state;
  for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
    nio_port *p;
    nio_addr a;
    nio_sock l;
    nio_req ra, rr, rs;
    th_log la, lr, ls;
    nio_iov iov = {(void *)"pong", 4};
    char buf[8];
    poster ps;
    nio_thread *t;
    int c, n;
    int64_t t0;
    setenv("NETIO_TEST_URING_SETUP", steps[i], 1);
    p = th_port_open();
    unsetenv("NETIO_TEST_URING_SETUP");
    l = th_listen(&a);
    assert_int_equal(nio__port_add(p, l), 0);
    th_log_init(&la);
    th_req(&ra, l, NIO_OP_ACCEPT, &la);
    assert_int_equal(nio__port_submit(p, &ra), 0);
    c = th_client(&a);
    while (la.nfds == 0 && la.nfinal == 0) nio__port_wait(p, 50);
    if (la.nfds != 1)
      th_fail("step %s: expected one accepted socket, got %d (%s)", steps[i],
              la.nfds, nio_err_name(la.last_res));
    assert_int_equal(nio__port_add(p, la.fds[0]), 0);
    th_log_init(&lr);
    th_req(&rr, la.fds[0], NIO_OP_RECV, &lr);
    assert_int_equal(nio__port_submit(p, &rr), 0);
    th_write_all(c, "ping", 4);
    th_run_until(p, th_log_final, &lr, 5000, "the recv");
    assert_int_equal(lr.last_res, 4);
    th_log_init(&ls);
    th_req(&rs, la.fds[0], NIO_OP_SEND, &ls);
    rs.u.send.iov = &iov;
    rs.u.send.iovcnt = 1;
    assert_int_equal(nio__port_submit(p, &rs), 0);
    th_run_until(p, th_log_final, &ls, 5000, "the send");
    assert_int_equal(ls.last_res, 4);
    n = (int)th_read_some(c, buf, sizeof buf);
    assert_int_equal(n, 4);
    /* A post wakes a wait with no time limit. */
    ps.p = p;
    ps.err = 0;
    assert_int_equal(nio__thread_start(&t, poster_main, &ps), 0);
    t0 = th_now_ms();
    n = nio__port_wait(p, 10000);
    nio__thread_join(t);
    assert_int_equal(ps.err, 0);
    if (n < 0 || th_now_ms() - t0 > 5000)
      th_fail("step %s: expected post() to wake wait() at once (%d, %lld ms)",
              steps[i], n, (long long)(th_now_ms() - t0));
    assert_int_equal(nio__port_cancel(p, &ra), 0);
    th_run_until(p, th_log_final, &la, 5000, "the canceled accept");
    assert_int_equal(la.last_res, NIO_ECANCELED);
    assert_int_equal(la.nfinal, 1);
    close(c);
    nio__port_remove(p, la.fds[0]);
    nio__sock_close(la.fds[0]);
    nio__port_remove(p, l);
    nio__sock_close(l);
    nio__port_close(p);
  }
}

static void fail_switch_falls_back_to_epoll(void **state) {
  const char *be = getenv("NETIO_BACKEND");
  char saved[32] = "";
  nio_port *p = NULL;
  int r;
  (void)state;
  if (be) snprintf(saved, sizeof saved, "%s", be);
  unsetenv("NETIO_BACKEND");
  setenv("NETIO_TEST_URING_FAIL", "1", 1);
  r = nio__port_open(&p, NULL);
  if (r != 0 || p == NULL)
    th_fail("expected the default port to open despite the uring switch, got "
            "%s",
            nio_err_name(r));
  if (strcmp(nio__port_backend(p), "epoll") != 0)
    th_fail("expected the fallback to epoll, got \"%s\"", nio__port_backend(p));
  nio__port_close(p);
  p = NULL;
  r = nio__port_open(&p, "uring");
  if (r != NIO_ENOSYS || p != NULL)
    th_fail("expected uring asked by name to fail with ENOSYS, got %s",
            nio_err_name(r));
  assert_false(nio__port_available("uring"));
  unsetenv("NETIO_TEST_URING_FAIL");
  assert_true(nio__port_available("uring"));
  if (saved[0]) setenv("NETIO_BACKEND", saved, 1);
}

/* Cancel lands while the backend is resuming a vectored send (more iovs
** than one sendmsg takes, the peer not reading): exactly one final
** completion, NIO_ECANCELED, and nothing after it. */
#define CS_IOVS 2048
#define CS_CHUNK (16 * 1024)

static void send_canceled_while_resumed_ends_once(void **state) {
  nio_port *p = th_port_open();
  static nio_iov iov[CS_IOVS];
  static char chunk[CS_CHUNK];
  nio_req r;
  th_log log;
  int c;
  nio_sock s;
  (void)state;
  th_pair(p, &c, &s);
  for (int i = 0; i < CS_IOVS; i++) {
    iov[i].base = chunk;
    iov[i].len = CS_CHUNK;
  }
  th_log_init(&log);
  th_req(&r, s, NIO_OP_SEND, &log);
  r.u.send.iov = iov;
  r.u.send.iovcnt = CS_IOVS;
  assert_int_equal(nio__port_submit(p, &r), 0);
  th_run_for(p, 100);
  assert_int_equal(log.ncqe, 0);
  assert_true(r.active);
  assert_int_equal(nio__port_cancel(p, &r), 0);
  assert_int_equal(nio__port_cancel(p, &r), 0); /* twice is harmless */
  th_run_until(p, th_log_final, &log, 5000, "the canceled send");
  th_run_for(p, 50);
  if (log.ncqe != 1 || log.last_res != NIO_ECANCELED)
    th_fail("expected one completion, ECANCELED, got %d (last %s)", log.ncqe,
            nio_err_name(log.last_res));
  assert_false(r.active);
  assert_int_equal(nio__port_cancel(p, &r), NIO_ENOENT);
  close(c);
  nio__port_remove(p, s);
  nio__sock_close(s);
  nio__port_close(p);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(recv_survives_buffer_ring_exhaustion),
      cmocka_unit_test(setup_fallback_steps_each_work),
      cmocka_unit_test(fail_switch_falls_back_to_epoll),
      cmocka_unit_test(send_canceled_while_resumed_ends_once),
  };
  const char *be = getenv("NETIO_BACKEND");
  if (be != NULL && be[0] != '\0' && strcmp(be, "uring") != 0) {
    fprintf(stderr, "SKIP: uring-only tests (NETIO_BACKEND=%s)\n", be);
    return 77;
  }
  if (!nio__port_available("uring")) {
    fprintf(stderr, "SKIP: io_uring cannot be set up here\n");
    return 77;
  }
  setenv("NETIO_BACKEND", "uring", 1);
  th_init(0);
  return cmocka_run_group_tests(tests, NULL, NULL);
}
