/*
** test_engine_errors.c: failures and endings -- refused connects, resets,
** half close, close with requests in flight, bad arguments.
*/
#include "engine_helpers.h"

#define MS 1000000ull

typedef struct err_state {
  eh_test t;
  nio_listener *l;
  nio_conn *a, *b;
  nio_addr addr;
  int a_err, events, saw_eof_b, saw_eof_a;
  char abuf[64], bbuf[64];
  size_t an, bn;
  eh_frees frees;
  int frees_after_close, write_ret, write_frees;
  int arm_close; /* cif: arm the close at the next turn */
  uint64_t a_id, queued_at_err;
  nio_timer tm;
} err_state;

static void err_finish(eh_test *t) {
  err_state *s = (err_state *)t;
  nio__timer_stop(t->e, &s->tm);
  if (s->a) nio__conn_close(s->a, 0);
  if (s->b) nio__conn_close(s->b, 0);
  if (s->l) nio__listener_close(s->l);
}

/* ---- refused ---------------------------------------------------------- */

static void refused_cb(nio_conn *c, int ev) {
  err_state *s = c->udata;
  s->events |= ev;
  if (ev & NIO_EV_CONNECT) {
    s->a_err = c->err;
    s->t.done = 1;
  }
}

static int refused_start(eh_test *t) {
  err_state *s = (err_state *)t;
  th_addr_closed(&s->addr);
  s->a = eh_connect(t, &s->addr, refused_cb, s);
  t->stage = "the refused connect";
  return 0;
}

static void connect_refused_reports_econnrefused(void **state) {
  err_state s;
  (void)state;
  memset(&s, 0, sizeof s);
  s.t.start = refused_start;
  s.t.finish = err_finish;
  eh_run(&s.t);
  if (s.a_err != NIO_ECONNREFUSED)
    fail_msg("connect to a closed port: expected ECONNREFUSED, got %s",
             nio_err_name(s.a_err));
  assert_int_equal(s.events, NIO_EV_CONNECT);
}

/* ---- reset ------------------------------------------------------------ */

static void reset_b_cb(nio_conn *c, int ev) {
  err_state *s = c->udata;
  size_t n;
  if (!(ev & NIO_EV_READ)) return;
  nio__conn_input(c, &n);
  if (n > 0) {
    /* The client's first bytes arrived: reset the connection. */
    nio__conn_close(c, 1);
    s->b = NULL;
  }
}

static void reset_a_cb(nio_conn *c, int ev) {
  err_state *s = c->udata;
  if (ev & NIO_EV_CONNECT) {
    EH_CHECK(&s->t, c->err == 0, "connect: expected 0, got %s",
             nio_err_name(c->err));
    nio__conn_write(c, "x", 1, NULL, NULL);
  }
  if ((ev & NIO_EV_READ) && c->err) {
    char *p = malloc(100000);
    s->a_err = c->err;
    /* A failed connection refuses writes, releasing the chunk at once. */
    s->write_ret = nio__conn_write(c, p, 100000, eh_free_cb, &s->frees);
    s->write_frees = s->frees.calls;
    s->t.done = 1;
  }
}

static void reset_listener_cb(nio_listener *l, int ev) {
  err_state *s = l->udata;
  (void)ev;
  if ((s->b = nio__listener_accept(l, reset_b_cb, s)) != NULL)
    nio__listener_close(l), s->l = NULL;
}

static int reset_start(eh_test *t) {
  err_state *s = (err_state *)t;
  if ((s->l = eh_listen(t, &s->addr, 0, reset_listener_cb, s)) == NULL)
    return 0;
  s->a = eh_connect(t, &s->addr, reset_a_cb, s);
  t->stage = "the reset";
  return 0;
}

static void peer_reset_sets_econnreset(void **state) {
  err_state s;
  (void)state;
  memset(&s, 0, sizeof s);
  s.t.start = reset_start;
  s.t.finish = err_finish;
  eh_run(&s.t);
  if (s.a_err != NIO_ECONNRESET)
    fail_msg("peer reset: expected err ECONNRESET, got %s",
             nio_err_name(s.a_err));
  if (s.write_ret != NIO_ECONNRESET)
    fail_msg("write after reset: expected ECONNRESET, got %s",
             nio_err_name(s.write_ret));
  assert_int_equal(s.write_frees, 1);
}

/* ---- reset while sending: queue dropped, both events ------------------ */

static void rsend_b_cb(nio_conn *c, int ev) {
  err_state *s = c->udata;
  (void)ev;
  (void)s;
  (void)c;
}

static void rsend_reset(nio_timer *tm) {
  err_state *s = tm->data;
  nio__conn_close(s->b, 1);
  s->b = NULL;
}

static void rsend_a_cb(nio_conn *c, int ev) {
  err_state *s = c->udata;
  if (ev & NIO_EV_CONNECT) {
    char *p = malloc(32 * 1024 * 1024);
    memset(p, 'z', 32 * 1024 * 1024);
    nio__conn_write(c, p, 32 * 1024 * 1024, eh_free_cb, &s->frees);
    s->tm.data = s;
    nio__timer_start(s->t.e, &s->tm, 100 * MS, rsend_reset);
  }
  if (c->err && !s->a_err) {
    s->a_err = c->err;
    s->events = ev;
  }
  /* The send failure drops the queue and says so with EV_WRITE. */
  if (c->err && (ev & NIO_EV_WRITE)) {
    s->events |= ev;
    s->queued_at_err = c->queued;
    s->frees_after_close = s->frees.calls;
    s->t.done = 1;
  }
}

static void rsend_listener_cb(nio_listener *l, int ev) {
  err_state *s = l->udata;
  (void)ev;
  if ((s->b = nio__listener_accept(l, rsend_b_cb, s)) != NULL)
    nio__conn_want(s->b, 1); /* never reads past the first receive */
}

static int rsend_start(eh_test *t) {
  err_state *s = (err_state *)t;
  if ((s->l = eh_listen(t, &s->addr, 0, rsend_listener_cb, s)) == NULL)
    return 0;
  s->a = eh_connect(t, &s->addr, rsend_a_cb, s);
  t->stage = "the send to fail after the reset";
  return 0;
}

static void send_failure_drops_queue_and_fires_write(void **state) {
  err_state s;
  (void)state;
  memset(&s, 0, sizeof s);
  s.t.start = rsend_start;
  s.t.finish = err_finish;
  eh_run(&s.t);
  if (s.a_err != NIO_ECONNRESET && s.a_err != NIO_EPIPE)
    fail_msg("send to a reset peer: expected ECONNRESET or EPIPE, got %s",
             nio_err_name(s.a_err));
  if (!(s.events & NIO_EV_WRITE) || !(s.events & NIO_EV_READ))
    fail_msg("send failure: expected EV_WRITE|EV_READ, got %d", s.events);
  assert_int_equal(s.queued_at_err, 0);
  assert_int_equal(s.frees_after_close, 1);
}

/* ---- half close ------------------------------------------------------- */

static void half_b_cb(nio_conn *c, int ev) {
  err_state *s = c->udata;
  size_t n;
  const char *p;
  if (!(ev & NIO_EV_READ)) return;
  p = nio__conn_input(c, &n);
  if (s->bn + n <= sizeof s->bbuf) memcpy(s->bbuf + s->bn, p, n), s->bn += n;
  nio__conn_consume(c, n);
  if (c->eof && !s->saw_eof_b) {
    int r;
    s->saw_eof_b = 1;
    EH_CHECK(&s->t, s->bn == 4 && memcmp(s->bbuf, "ping", 4) == 0,
             "server: expected \"ping\" before EOF, got \"%.*s\"", (int)s->bn,
             s->bbuf);
    /* The peer's half close leaves our sending side open. */
    r = nio__conn_write(c, "pong", 4, NULL, NULL);
    EH_CHECK(&s->t, r == 0, "write after peer EOF: expected 0, got %s",
             nio_err_name(r));
    r = nio__conn_shutdown(c);
    EH_CHECK(&s->t, r == 0, "shutdown: expected 0, got %s", nio_err_name(r));
  }
}

static void half_a_cb(nio_conn *c, int ev) {
  err_state *s = c->udata;
  if (ev & NIO_EV_CONNECT) {
    EH_CHECK(&s->t, c->err == 0, "connect: expected 0, got %s",
             nio_err_name(c->err));
    nio__conn_write(c, "ping", 4, NULL, NULL);
    nio__conn_shutdown(c); /* after the queued "ping" */
    s->write_ret = nio__conn_write(c, "late", 4, NULL, NULL);
  }
  if (ev & NIO_EV_READ) {
    size_t n;
    const char *p = nio__conn_input(c, &n);
    EH_CHECK(&s->t, c->err == 0, "client: expected no error, got %s",
             nio_err_name(c->err));
    if (s->an + n <= sizeof s->abuf) memcpy(s->abuf + s->an, p, n), s->an += n;
    nio__conn_consume(c, n);
    if (c->eof) {
      s->saw_eof_a = 1;
      s->t.done = 1;
    }
  }
}

static void half_listener_cb(nio_listener *l, int ev) {
  err_state *s = l->udata;
  (void)ev;
  if (s->b == NULL) s->b = nio__listener_accept(l, half_b_cb, s);
}

static int half_start(eh_test *t) {
  err_state *s = (err_state *)t;
  if ((s->l = eh_listen(t, &s->addr, 0, half_listener_cb, s)) == NULL) return 0;
  s->a = eh_connect(t, &s->addr, half_a_cb, s);
  t->stage = "ping, EOF, pong, EOF";
  return 0;
}

static void half_close_eof_seen_while_peer_still_sends(void **state) {
  err_state s;
  (void)state;
  memset(&s, 0, sizeof s);
  s.t.start = half_start;
  s.t.finish = err_finish;
  eh_run(&s.t);
  assert_true(s.saw_eof_b);
  assert_true(s.saw_eof_a);
  if (s.an != 4 || memcmp(s.abuf, "pong", 4) != 0)
    fail_msg("client: expected \"pong\" before EOF, got \"%.*s\"", (int)s.an,
             s.abuf);
  if (s.write_ret != NIO_EPIPE)
    fail_msg("write after shutdown: expected EPIPE, got %s",
             nio_err_name(s.write_ret));
}

/* ---- close with requests in flight ----------------------------------- */

static void cif_close(nio_timer *tm);

static void cif_turn(eh_test *t) {
  err_state *s = (err_state *)t;
  /* Armed here, at the start of a turn, the close comes after the wait
  ** that follows this turn's kick: the send is in flight by then, however
  ** long the write took (32 MiB of memset is slow under sanitizers). */
  if (s->arm_close) {
    s->arm_close = 0;
    s->tm.data = s;
    nio__timer_start(t->e, &s->tm, 100 * MS, cif_close);
  }
  /* The chunk is released after the cancelled send's final completion. */
  if (s->frees_after_close >= 0 && s->a == NULL && s->frees.calls == 1)
    t->done = 1;
}

static void cif_close(nio_timer *tm) {
  err_state *s = tm->data;
  nio_counters st;
  nio__engine_stats(s->t.e, &st);
  s->queued_at_err = s->a->queued;
  nio__conn_close(s->a, 0);
  s->a = NULL;
  /* The send was in flight: its bytes must stay until its completion. */
  s->frees_after_close = s->frees.calls;
  EH_CHECK(&s->t, nio__conn_get(s->t.e, s->a_id) == NULL,
           "get(id) after close: expected NULL");
  nio__engine_stats(s->t.e, &st);
  EH_CHECK(&s->t, st.dropped_bytes > 0,
           "close with queued output: expected dropped bytes counted");
  s->t.stage = "the cancelled send's chunk to be released";
}

static void cif_a_cb(nio_conn *c, int ev) {
  err_state *s = c->udata;
  if (ev & NIO_EV_CONNECT) {
    char *p = malloc(32 * 1024 * 1024);
    memset(p, 'q', 32 * 1024 * 1024);
    s->a_id = c->id;
    nio__conn_write(c, p, 32 * 1024 * 1024, eh_free_cb, &s->frees);
    s->arm_close = 1;
  }
  EH_CHECK(&s->t, c->err == 0, "before close: expected no error, got %s",
           nio_err_name(c->err));
}

static int cif_start(eh_test *t) {
  err_state *s = (err_state *)t;
  s->frees_after_close = -1;
  if ((s->l = eh_listen(t, &s->addr, 0, rsend_listener_cb, s)) == NULL)
    return 0;
  s->a = eh_connect(t, &s->addr, cif_a_cb, s);
  t->stage = "the close";
  return 0;
}

static void close_cancels_in_flight_and_frees_after_completions(void **state) {
  err_state s;
  (void)state;
  memset(&s, 0, sizeof s);
  s.t.start = cif_start;
  s.t.turn = cif_turn;
  s.t.finish = err_finish;
  eh_run(&s.t);
  if (s.queued_at_err == 0)
    fail_msg("setup: expected output still queued at close");
  if (s.frees_after_close != 0)
    fail_msg("close with a send in flight: expected the chunk kept until "
             "the send's completion, it was freed inside close");
  assert_int_equal(s.frees.calls, 1);
}

/* ---- bad arguments ---------------------------------------------------- */

static void noop_cb(nio_conn *c, int ev) {
  (void)c;
  (void)ev;
}

static void noop_lcb(nio_listener *l, int ev) {
  (void)l;
  (void)ev;
}

static int bad_start(eh_test *t) {
  err_state *s = (err_state *)t;
  nio_addr bad;
  nio_conn *c = (nio_conn *)1;
  nio_listener *l2 = (nio_listener *)1;
  int r;
  memset(&bad, 0, sizeof bad);
  r = nio__conn_connect(t->e, &bad, NULL, noop_cb, NULL, &c);
  EH_CHECK(t, r < 0 && c == NULL,
           "connect to an empty address: expected an error and no conn, "
           "got %d",
           r);
  r = nio__conn_connect(t->e, NULL, NULL, noop_cb, NULL, &c);
  EH_CHECK(t, r == NIO_EINVAL, "connect(NULL): expected EINVAL, got %s",
           nio_err_name(r));
  if ((s->l = eh_listen(t, &s->addr, 0, noop_lcb, s)) == NULL) return 0;
  r = nio__listen(t->e, &s->addr, 0, 0, 0, noop_lcb, NULL, &l2);
  EH_CHECK(t, r == NIO_EADDRINUSE && l2 == NULL,
           "listen on a port in use: expected EADDRINUSE, got %s",
           nio_err_name(r));
  r = nio__resolve(t->e, NULL, 80, NULL, NULL);
  EH_CHECK(t, r == NIO_EINVAL, "resolve(NULL): expected EINVAL, got %s",
           nio_err_name(r));
  t->done = 1;
  return 0;
}

static void bad_arguments_return_errors(void **state) {
  err_state s;
  (void)state;
  memset(&s, 0, sizeof s);
  s.t.start = bad_start;
  s.t.finish = err_finish;
  eh_run(&s.t);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(connect_refused_reports_econnrefused),
      cmocka_unit_test(peer_reset_sets_econnreset),
      cmocka_unit_test(send_failure_drops_queue_and_fires_write),
      cmocka_unit_test(half_close_eof_seen_while_peer_still_sends),
      cmocka_unit_test(close_cancels_in_flight_and_frees_after_completions),
      cmocka_unit_test(bad_arguments_return_errors),
  };
  th_init(0);
  return cmocka_run_group_tests(tests, NULL, NULL);
}
