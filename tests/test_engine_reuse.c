/*
** test_engine_reuse.c: what the connection pool of the binding asks of a
** connection -- a new id that leaves the old one dead (nio__conn_renew_id),
** and a look at the socket for news the port has not delivered yet
** (nio__conn_quiet).
*/
#include "engine_helpers.h"

typedef struct reuse_state {
  eh_test t;
  nio_listener *l;
  nio_addr addr;
  nio_sock client;
  nio_conn *a; /* the accepted end */
  uint64_t old_id;
  int quiet_before, quiet_after, old_get, new_get, old_send, new_send;
  int stray; /* the peer sends bytes instead of closing */
} reuse_state;

static void reuse_ccb(nio_conn *c, int ev) {
  (void)c;
  (void)ev;
}

static void reuse_lcb(nio_listener *l, int ev) {
  reuse_state *s = l->udata;
  nio_conn *c;
  (void)ev;
  if (s->a || (c = nio__listener_accept(l, reuse_ccb, s)) == NULL) return;
  s->a = c;
  s->quiet_before = nio__conn_quiet(c);
  s->old_id = c->id;
  nio__conn_renew_id(c);
  s->old_get = nio__conn_get(s->t.e, s->old_id) == c;
  s->new_get = nio__conn_get(s->t.e, c->id) == c;
  s->old_send = nio_send(s->old_id, "x", 1);
  s->new_send = nio_send(c->id, "y", 1);
  if (s->stray) {
    s->t.stage = "two turns after the accept";
    return; /* reuse_turn goes on once the receive reached the port */
  }
  /* The peer closes while the engine has no turn: its FIN is in the
  ** kernel only, the connection has not heard of it. */
  nio__sock_close(s->client);
  s->client = NIO_BAD_SOCK;
  th_usleep(100000);
  s->quiet_after = c->eof || c->wpos != c->rpos ? -1 : nio__conn_quiet(c);
  s->t.done = 1;
}

/* The stray case, two turns after the accept: the connection's receive
** has been submitted (io_uring: it is armed in the kernel). */
static void reuse_turn(eh_test *t) {
  reuse_state *s = (reuse_state *)t;
  if (s->a == NULL) return;
  if (s->stray++ != 3) {
    t->ready = 1; /* no blocking wait until then */
    return;
  }
  /* The peer sends while the engine has no turn: an armed io_uring
  ** receive takes the bytes off the socket into a completion not
  ** delivered yet, where no look at the socket sees them. */
  (void)nio__sock_send(s->client, "stray", 5);
  th_usleep(100000);
  s->quiet_after = s->a->wpos != s->a->rpos ? -1 : nio__conn_quiet(s->a);
  t->done = 1;
}

static int reuse_start(eh_test *t) {
  reuse_state *s = (reuse_state *)t;
  int r;
  if ((s->l = eh_listen(t, &s->addr, 16, reuse_lcb, s)) == NULL) return 0;
  r = nio__sock_tcp(AF_INET, &s->client);
  if (!EH_CHECK(t, r == 0, "socket: expected 0, got %s", nio_err_name(r)))
    return 0;
  (void)th_connect_pending(s->client, &s->addr, 0);
  t->stage = "the connection to be accepted";
  return 0;
}

static void reuse_finish(eh_test *t) {
  reuse_state *s = (reuse_state *)t;
  if (s->a) nio__conn_close(s->a, 0);
  if (s->l) nio__listener_close(s->l);
  if (s->client != NIO_BAD_SOCK) nio__sock_close(s->client);
}

static void
renewed_id_leaves_the_old_one_dead_and_quiet_sees_the_fin(void **state) {
  reuse_state s;
  (void)state;
  memset(&s, 0, sizeof s);
  s.client = NIO_BAD_SOCK;
  s.t.start = reuse_start;
  s.t.finish = reuse_finish;
  eh_run(&s.t);
  if (s.quiet_before != 1)
    fail_msg("expected a fresh idle connection to be quiet, got %d",
             s.quiet_before);
  if (s.old_get || !s.new_get)
    fail_msg("expected the old id to find nothing and the new one the "
             "connection, got old %d new %d",
             s.old_get, s.new_get);
  if (s.old_send != NIO_ECLOSED || s.new_send != 0)
    fail_msg("expected nio_send to the old id ECLOSED and to the new one 0, "
             "got %s and %s",
             nio_err_name(s.old_send), nio_err_name(s.new_send));
  if (s.quiet_after != 0)
    fail_msg("expected a connection whose peer closed (FIN not delivered "
             "yet) not to be quiet, got %d",
             s.quiet_after);
}

static void quiet_sees_bytes_the_port_has_not_delivered_yet(void **state) {
  /* io_uring with deferred task work leaves the bytes in the socket until
  ** the engine waits; with cooperative task work (older kernels) the
  ** kernel moves them at once: both setups are tried. */
  static const char *const setups[] = {"", "coop"};
  int n = strcmp(th_backend(), "uring") == 0 ? 2 : 1;
  (void)state;
  for (int i = 0; i < n; i++) {
    reuse_state s;
    memset(&s, 0, sizeof s);
    s.client = NIO_BAD_SOCK;
    s.stray = 1;
    s.t.start = reuse_start;
    s.t.turn = reuse_turn;
    s.t.finish = reuse_finish;
    th_setenv("NETIO_TEST_URING_SETUP", i ? setups[i] : NULL);
    eh_run(&s.t);
    th_setenv("NETIO_TEST_URING_SETUP", NULL);
    if (s.quiet_after != 0)
      fail_msg("expected a connection whose peer sent bytes (not delivered "
               "yet) not to be quiet (uring setup '%s'), got %d",
               setups[i], s.quiet_after);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(
          renewed_id_leaves_the_old_one_dead_and_quiet_sees_the_fin),
      cmocka_unit_test(quiet_sees_bytes_the_port_has_not_delivered_yet),
  };
  th_init(0);
  return cmocka_run_group_tests(tests, NULL, NULL);
}
