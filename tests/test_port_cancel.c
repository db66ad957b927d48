/*
** test_port_cancel.c: cancel and post -- exactly one final completion per
** canceled request, races with data, cancel then close, cancel from a
** callback, post() waking wait() from other threads.
*/
#include <stdatomic.h>
#include <string.h>
#include "helpers.h"

static void cancel_pending_recv_gives_one_ecanceled(void **state) {
  nio_port *p = th_port_open();
  nio_req r;
  th_log log;
  int c;
  nio_sock s;
  (void)state;
  th_pair(p, &c, &s);
  th_log_init(&log);
  th_req(&r, s, NIO_OP_RECV, &log);
  assert_int_equal(nio__port_submit(p, &r), 0);
  th_run_for(p, 20);
  assert_int_equal(log.ncqe, 0);
  assert_int_equal(nio__port_cancel(p, &r), 0);
  if (log.ncqe != 0) th_fail("expected no callback from inside cancel");
  th_run_until(p, th_log_final, &log, 5000, "the canceled recv");
  th_run_for(p, 50);
  if (log.ncqe != 1 || log.last_res != NIO_ECANCELED)
    th_fail("expected exactly one ECANCELED completion, got %d, last %s",
            log.ncqe, nio_err_name(log.last_res));
  assert_false(r.active);
  assert_false(log.active_seen);
  /* The socket is still usable: a new recv gets what comes next. */
  th_log_init(&log);
  assert_int_equal(nio__port_submit(p, &r), 0);
  th_write_all(c, "after", 5);
  th_run_until(p, th_log_final, &log, 5000, "a recv after the cancel");
  assert_int_equal(log.last_res, 5);
  th_pair_finish(p, c, s);
}

static void cancel_before_first_turn_gives_one_completion(void **state) {
  nio_port *p = th_port_open();
  nio_req r;
  th_log log;
  int c;
  nio_sock s;
  (void)state;
  th_pair(p, &c, &s);
  th_log_init(&log);
  th_req(&r, s, NIO_OP_RECV, &log);
  assert_int_equal(nio__port_submit(p, &r), 0);
  assert_int_equal(nio__port_cancel(p, &r), 0);
  th_run_until(p, th_log_final, &log, 5000, "the canceled recv");
  th_run_for(p, 50);
  if (log.ncqe != 1 || log.last_res != NIO_ECANCELED)
    th_fail("expected exactly one ECANCELED completion, got %d, last %s",
            log.ncqe, nio_err_name(log.last_res));
  th_pair_finish(p, c, s);
}

static void
cancel_after_data_arrived_gives_data_or_ecanceled_once(void **state) {
  nio_port *p = th_port_open();
  nio_req r;
  th_log log;
  int c;
  nio_sock s;
  (void)state;
  th_pair(p, &c, &s);
  for (int round = 0; round < 20; round++) {
    th_log_init(&log);
    th_req(&r, s, NIO_OP_RECV, &log);
    assert_int_equal(nio__port_submit(p, &r), 0);
    if (round % 2) th_run_for(p, 1);
    th_write_all(c, "raced", 5);
    assert_int_equal(nio__port_cancel(p, &r), 0);
    th_run_until(p, th_log_final, &log, 5000, "the raced recv");
    th_run_for(p, 5);
    if (log.ncqe != 1)
      th_fail("round %d: expected exactly one completion, got %d", round,
              log.ncqe);
    if (log.last_res != 5 && log.last_res != NIO_ECANCELED)
      th_fail("round %d: expected the data or ECANCELED, got %d (%s)", round,
              log.last_res, nio_err_name(log.last_res));
    if (log.last_res == NIO_ECANCELED) {
      /* The data stays in the socket for the next reader. */
      th_log_init(&log);
      assert_int_equal(nio__port_submit(p, &r), 0);
      th_run_until(p, th_log_final, &log, 5000, "the data left by the cancel");
      assert_int_equal(log.last_res, 5);
    }
  }
  th_pair_finish(p, c, s);
}

static void cancel_then_close_fd_completes_and_is_quiet(void **state) {
  nio_port *p = th_port_open();
  nio_req r;
  th_log log;
  int c;
  nio_sock s;
  (void)state;
  th_pair(p, &c, &s);
  th_log_init(&log);
  th_req(&r, s, NIO_OP_RECV, &log);
  assert_int_equal(nio__port_submit(p, &r), 0);
  th_run_for(p, 10);
  /* The engine's close: cancel, data racing in, the final completion, then
  ** forget the socket in the port and close it. */
  assert_int_equal(nio__port_cancel(p, &r), 0);
  th_write_all(c, "late", 4);
  th_run_until(p, th_log_final, &log, 5000, "the recv canceled before close");
  if (log.ncqe != 1) th_fail("expected one completion, got %d", log.ncqe);
  if (log.last_res != NIO_ECANCELED && log.last_res != 4)
    th_fail("expected ECANCELED (or the raced data), got %s",
            nio_err_name(log.last_res));
  nio__port_remove(p, s);
  nio__sock_close(s);
  /* Closed with unread data, the socket was reset: the peer's send may
  ** fail, and nothing may reach the port. */
  (void)th_send(c, "later", 5);
  th_run_for(p, 50);
  if (log.ncqe != 1)
    th_fail("expected nothing after the close, got %d completions", log.ncqe);
  th_close(c);
  nio__port_close(p);
}

static void cancel_pending_send_gives_one_completion(void **state) {
  nio_port *p = th_port_open();
  nio_req r;
  th_log log;
  static char big[8 << 20];
  nio_iov iov = {big, sizeof big};
  int c;
  nio_sock s;
  (void)state;
  th_pair(p, &c, &s);
  th_log_init(&log);
  th_req(&r, s, NIO_OP_SEND, &log);
  r.u.send.iov = &iov;
  r.u.send.iovcnt = 1;
  assert_int_equal(nio__port_submit(p, &r), 0);
  th_run_for(p, 30);
  if (log.ncqe != 0)
    th_fail("expected 8 MiB to a peer that does not read to stay pending");
  assert_int_equal(nio__port_cancel(p, &r), 0);
  th_run_until(p, th_log_final, &log, 5000, "the canceled send");
  th_run_for(p, 50);
  if (log.ncqe != 1)
    th_fail("expected exactly one completion, got %d", log.ncqe);
  /* Part of it went, but not all: the result is the cancel, never a
  ** partial count (a send completes with all its bytes or an error). */
  if (log.last_res != NIO_ECANCELED)
    th_fail("expected ECANCELED, got %d (%s)", log.last_res,
            nio_err_name(log.last_res));
  th_pair_finish(p, c, s);
}

static void cancel_twice_still_gives_one_completion(void **state) {
  nio_port *p = th_port_open();
  nio_req r;
  th_log log;
  int c;
  nio_sock s;
  (void)state;
  th_pair(p, &c, &s);
  th_log_init(&log);
  th_req(&r, s, NIO_OP_RECV, &log);
  assert_int_equal(nio__port_submit(p, &r), 0);
  th_run_for(p, 10);
  assert_int_equal(nio__port_cancel(p, &r), 0);
  nio__port_cancel(p, &r);
  th_run_until(p, th_log_final, &log, 5000, "the twice canceled recv");
  th_run_for(p, 50);
  if (log.ncqe != 1 || log.last_res != NIO_ECANCELED)
    th_fail("expected exactly one ECANCELED completion, got %d, last %s",
            log.ncqe, nio_err_name(log.last_res));
  th_pair_finish(p, c, s);
}

/* Two sockets get data in the same turn; the first callback cancels the
** other's recv (whose readiness may already be in the batch) and the other
** must still complete exactly once. */
typedef struct cross {
  nio_port *p;
  nio_req r[2];
  th_log log[2];
  int first; /* index whose callback ran first, or -1 */
} cross;

static void cross_cb(nio_req *r, int res, const char *data, unsigned flags) {
  cross *x = r->data;
  int me = r == &x->r[0] ? 0 : 1;
  r->data = &x->log[me];
  th_log_cb(r, res, data, flags);
  r->data = x;
  if (x->first < 0) {
    x->first = me;
    if (x->r[1 - me].active) nio__port_cancel(x->p, &x->r[1 - me]);
  }
}

static int both_final(void *ud) {
  cross *x = ud;
  return x->log[0].nfinal && x->log[1].nfinal;
}

static void callback_may_cancel_another_socket_in_the_same_batch(void **state) {
  nio_port *p = th_port_open();
  static cross x;
  int c[2];
  nio_sock s[2];
  (void)state;
  memset(&x, 0, sizeof x);
  x.p = p;
  x.first = -1;
  for (int i = 0; i < 2; i++) {
    th_pair(p, &c[i], &s[i]);
    th_log_init(&x.log[i]);
    th_req(&x.r[i], s[i], NIO_OP_RECV, &x.log[i]);
    x.r[i].cb = cross_cb;
    x.r[i].data = &x;
    assert_int_equal(nio__port_submit(p, &x.r[i]), 0);
  }
  th_run_for(p, 10);
  th_write_all(c[0], "a", 1);
  th_write_all(c[1], "b", 1);
  th_run_until(p, both_final, &x, 5000, "both recvs to end");
  th_run_for(p, 50);
  for (int i = 0; i < 2; i++)
    if (x.log[i].ncqe != 1)
      th_fail("expected socket %d to complete exactly once, got %d", i,
              x.log[i].ncqe);
  if (x.log[x.first].last_res != 1)
    th_fail("expected the first callback to carry its byte, got %s",
            nio_err_name(x.log[x.first].last_res));
  for (int i = 0; i < 2; i++) {
    nio__port_remove(p, s[i]);
    nio__sock_close(s[i]);
    th_close(c[i]);
  }
  nio__port_close(p);
}

/* A callback that closes another socket which still has readiness pending
** in the batch, then opens a new one that may reuse its number: the stale
** readiness must not reach the new socket's request. */
typedef struct reuse {
  nio_port *p;
  nio_sock victim;
  int victim_client;
  nio_req r, r2;
  th_log log, log2;
  int c2;
  nio_sock spare, s2;
  int done;
} reuse;

static void reuse_cb(nio_req *r, int res, const char *data, unsigned flags) {
  reuse *x = r->data;
  r->data = &x->log;
  th_log_cb(r, res, data, flags);
  r->data = x;
  nio__port_remove(x->p, x->victim);
  nio__sock_close(x->victim);
  /* F_DUPFD takes the lowest free number: most likely the victim's. */
  x->s2 = th_dup_lowest(x->spare);
  assert_true(x->s2 != NIO_BAD_SOCK);
  nio__sock_close(x->spare);
  assert_int_equal(nio__port_add(x->p, x->s2), 0);
  th_log_init(&x->log2);
  th_req(&x->r2, x->s2, NIO_OP_RECV, &x->log2);
  assert_int_equal(nio__port_submit(x->p, &x->r2), 0);
  x->done = 1;
}

static void stale_readiness_of_a_closed_socket_is_ignored(void **state) {
  nio_port *p = th_port_open();
  static reuse x;
  int c;
  nio_sock s;
  (void)state;
  memset(&x, 0, sizeof x);
  if (th_dup_lowest(NIO_BAD_SOCK) == -2) {
    nio__port_close(p);
    skip(); /* socket handles are not reusable small numbers (Windows) */
  }
  x.p = p;
  th_pair(p, &c, &s);
  th_pair(p, &x.victim_client, &x.victim);
  th_pair(NULL, &x.c2, &x.spare);
  th_log_init(&x.log);
  th_req(&x.r, s, NIO_OP_RECV, &x.log);
  x.r.cb = reuse_cb;
  x.r.data = &x;
  assert_int_equal(nio__port_submit(p, &x.r), 0);
  th_run_for(p, 10);
  th_write_all(c, "go", 2);
  th_write_all(x.victim_client, "stale", 5);
  th_run_for(p, 100);
  assert_int_equal(x.done, 1);
  if (x.log2.ncqe != 0)
    th_fail("expected the new socket's recv to stay pending, got %d (%s)",
            x.log2.last_res, nio_err_name(x.log2.last_res));
  th_write_all(x.c2, "fresh", 5);
  th_run_until(p, th_log_final, &x.log2, 5000, "the new socket's recv");
  assert_int_equal(x.log2.last_res, 5);
  assert_int_equal(x.log2.hash, th_hash(TH_HASH_INIT, "fresh", 5));
  nio__port_remove(p, x.s2);
  nio__sock_close(x.s2);
  th_close(x.c2);
  th_close(x.victim_client);
  th_pair_finish(p, c, s);
}

typedef struct poster {
  nio_port *p;
  int delay_ms;
  int count;
  atomic_int posted;
} poster;

static void poster_main(void *arg) {
  poster *ps = arg;
  if (ps->delay_ms) th_usleep((unsigned)ps->delay_ms * 1000);
  for (int i = 0; i < ps->count; i++) {
    nio__port_post(ps->p);
    atomic_fetch_add(&ps->posted, 1);
  }
}

static void post_from_another_thread_wakes_wait(void **state) {
  nio_port *p = th_port_open();
  poster ps = {p, 100, 1, 0};
  nio_thread *t;
  int64_t t0, dt;
  int r;
  (void)state;
  assert_int_equal(nio__thread_start(&t, poster_main, &ps), 0);
  t0 = th_now_ms();
  r = nio__port_wait(p, 10000);
  dt = th_now_ms() - t0;
  assert_true(r >= 0);
  if (dt > 5000)
    th_fail("expected post() to wake wait() after ~100 ms, took %lld ms",
            (long long)dt);
  nio__thread_join(t);
  nio__port_close(p);
}

static void post_before_wait_makes_it_return_at_once(void **state) {
  nio_port *p = th_port_open();
  int64_t t0, dt;
  (void)state;
  assert_int_equal(nio__port_post(p), 0);
  t0 = th_now_ms();
  assert_true(nio__port_wait(p, 10000) >= 0);
  dt = th_now_ms() - t0;
  if (dt > 5000)
    th_fail("expected wait() after post() to return at once, took %lld ms",
            (long long)dt);
  nio__port_close(p);
}

static int all_posted(void *ud) {
  poster *ps = ud;
  int n = 0;
  for (int i = 0; i < 4; i++) n += atomic_load(&ps[i].posted);
  return n == 4 * 1000;
}

static void posts_from_many_threads_are_safe(void **state) {
  nio_port *p = th_port_open();
  poster ps[4];
  nio_thread *t[4];
  (void)state;
  for (int i = 0; i < 4; i++) {
    ps[i].p = p;
    ps[i].delay_ms = 0;
    ps[i].count = 1000;
    atomic_init(&ps[i].posted, 0);
    assert_int_equal(nio__thread_start(&t[i], poster_main, &ps[i]), 0);
  }
  th_run_until(p, all_posted, ps, 10000, "4000 posts from 4 threads");
  for (int i = 0; i < 4; i++) nio__thread_join(t[i]);
  /* Whatever wake-ups are left are absorbed without blocking. */
  assert_true(nio__port_wait(p, 0) >= 0);
  nio__port_close(p);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(cancel_pending_recv_gives_one_ecanceled),
      cmocka_unit_test(cancel_before_first_turn_gives_one_completion),
      cmocka_unit_test(cancel_after_data_arrived_gives_data_or_ecanceled_once),
      cmocka_unit_test(cancel_then_close_fd_completes_and_is_quiet),
      cmocka_unit_test(cancel_pending_send_gives_one_completion),
      cmocka_unit_test(cancel_twice_still_gives_one_completion),
      cmocka_unit_test(callback_may_cancel_another_socket_in_the_same_batch),
      cmocka_unit_test(stale_readiness_of_a_closed_socket_is_ignored),
      cmocka_unit_test(post_from_another_thread_wakes_wait),
      cmocka_unit_test(post_before_wait_makes_it_return_at_once),
      cmocka_unit_test(posts_from_many_threads_are_safe),
  };
  th_init(0);
  return cmocka_run_group_tests(tests, NULL, NULL);
}
