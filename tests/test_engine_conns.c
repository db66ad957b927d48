/*
** test_engine_conns.c: engine connections -- accept, connect, echo, ids,
** many simultaneous connections, the listener's pending queue.
*/
#include "engine_helpers.h"

/* ---- accept + connect + echo ---------------------------------------- */

typedef struct echo_state {
  eh_test t;
  nio_listener *l;
  nio_conn *client, *server;
  int connected, got;
  char buf[64];
  size_t nbuf;
  uint64_t cid, sid;
} echo_state;

static void echo_server_cb(nio_conn *c, int ev) {
  echo_state *s = c->udata;
  size_t n;
  const char *p;
  if (!(ev & NIO_EV_READ)) return;
  p = nio__conn_input(c, &n);
  if (n > 0) {
    int r = nio__conn_write(c, p, n, NULL, NULL);
    EH_CHECK(&s->t, r == 0, "server echo write: expected 0, got %s",
             nio_err_name(r));
    nio__conn_consume(c, n);
  }
}

static void echo_client_cb(nio_conn *c, int ev) {
  echo_state *s = c->udata;
  if (ev & NIO_EV_CONNECT) {
    if (!EH_CHECK(&s->t, c->err == 0, "connect: expected err 0, got %s",
                  nio_err_name(c->err)))
      return;
    s->connected = 1;
    EH_CHECK(&s->t, nio__conn_write(c, "hello", 5, NULL, NULL) == 0,
             "client write: expected 0");
    s->t.stage = "the echo";
  }
  if (ev & NIO_EV_READ) {
    size_t n;
    const char *p = nio__conn_input(c, &n);
    EH_CHECK(&s->t, c->err == 0, "client read: expected no error, got %s",
             nio_err_name(c->err));
    if (n + s->nbuf <= sizeof s->buf) {
      memcpy(s->buf + s->nbuf, p, n);
      s->nbuf += n;
    }
    nio__conn_consume(c, n);
    if (s->nbuf >= 5) {
      EH_CHECK(&s->t, memcmp(s->buf, "hello", 5) == 0,
               "echo: expected \"hello\", got \"%.*s\"", (int)s->nbuf, s->buf);
      /* Drained: an idle connection must hold no input buffer. */
      EH_CHECK(&s->t, c->in == NULL && c->cap == 0,
               "drained input: expected no buffer, got cap %u", c->cap);
      s->t.done = 1;
    }
  }
}

static void echo_listener_cb(nio_listener *l, int ev) {
  echo_state *s = l->udata;
  nio_conn *c;
  (void)ev;
  while ((c = nio__listener_accept(l, echo_server_cb, s)) != NULL) {
    EH_CHECK(&s->t, s->server == NULL, "accept: expected one connection");
    s->server = c;
    s->sid = c->id;
  }
}

static int echo_start(eh_test *t) {
  echo_state *s = (echo_state *)t;
  nio_addr a;
  s->l = eh_listen(t, &a, 0, echo_listener_cb, s);
  if (s->l == NULL) return 0;
  s->client = eh_connect(t, &a, echo_client_cb, s);
  if (s->client) s->cid = s->client->id;
  t->stage = "the connect";
  return 0;
}

static void echo_finish(eh_test *t) {
  echo_state *s = (echo_state *)t;
  /* Ids identify live connections, never 0, distinct. */
  EH_CHECK(t, s->cid != 0 && s->sid != 0 && s->cid != s->sid,
           "ids: expected two distinct non-zero ids, got %llu and %llu",
           (unsigned long long)s->cid, (unsigned long long)s->sid);
  EH_CHECK(t, nio__conn_get(t->e, s->cid) == s->client,
           "nio__conn_get(client id): expected the client");
  EH_CHECK(t, nio__conn_get(t->e, s->sid) == s->server,
           "nio__conn_get(server id): expected the server");
  if (s->client) nio__conn_close(s->client, 0);
  if (s->server) nio__conn_close(s->server, 0);
  if (s->l) nio__listener_close(s->l);
}

static void accept_connect_echo_round_trips(void **state) {
  echo_state s;
  (void)state;
  memset(&s, 0, sizeof s);
  s.t.start = echo_start;
  s.t.finish = echo_finish;
  eh_run(&s.t);
  assert_true(s.connected);
}

/* ---- ids ------------------------------------------------------------- */

typedef struct id_state {
  eh_test t;
  nio_listener *l;
  nio_addr a;
  uint64_t old_id, new_id;
  int phase;
} id_state;

static void id_conn_cb(nio_conn *c, int ev) {
  (void)c;
  (void)ev;
}

static void id_listener_cb(nio_listener *l, int ev) {
  nio_conn *c;
  (void)ev;
  /* Accepted and closed at once: this test is about client ids. */
  while ((c = nio__listener_accept(l, id_conn_cb, NULL)) != NULL)
    nio__conn_close(c, 0);
}

static int id_start(eh_test *t) {
  id_state *s = (id_state *)t;
  nio_conn *c, *c2;
  uint64_t garbage[] = {0, ~0ull, 1, 0x00ffffffffffffffull};
  s->l = eh_listen(t, &s->a, 0, id_listener_cb, s);
  if ((c = eh_connect(t, &s->a, id_conn_cb, s)) == NULL) return 0;
  s->old_id = c->id;
  EH_CHECK(t, nio__conn_get(t->e, s->old_id) == c,
           "get(live id): expected the connection");
  nio__conn_close(c, 0);
  EH_CHECK(t, nio__conn_get(t->e, s->old_id) == NULL,
           "get(id after close): expected NULL at once");
  /* The slot is reused by the next connection; the old id stays dead. */
  if ((c2 = eh_connect(t, &s->a, id_conn_cb, s)) == NULL) return 0;
  s->new_id = c2->id;
  EH_CHECK(t, s->new_id != s->old_id,
           "reused slot: expected a new id, got the old one");
  EH_CHECK(t, nio__conn_get(t->e, s->old_id) == NULL,
           "get(stale id of a reused slot): expected NULL");
  EH_CHECK(t, nio__conn_get(t->e, s->new_id) == c2,
           "get(new id): expected the new connection");
  for (size_t i = 0; i < sizeof garbage / sizeof garbage[0]; i++)
    EH_CHECK(t, nio__conn_get(t->e, garbage[i]) == NULL,
             "get(garbage id %llx): expected NULL",
             (unsigned long long)garbage[i]);
  EH_CHECK(t, nio__conn_get(t->e, s->new_id ^ (1ull << 60)) == NULL,
           "get(id with stray high bits): expected NULL");
  nio__conn_close(c2, 1);
  t->done = 1;
  return 0;
}

static void id_finish(eh_test *t) {
  id_state *s = (id_state *)t;
  if (s->l) nio__listener_close(s->l);
}

static void stale_id_after_close_returns_null(void **state) {
  id_state s;
  (void)state;
  memset(&s, 0, sizeof s);
  s.t.start = id_start;
  s.t.finish = id_finish;
  eh_run(&s.t);
}

/* ---- many connections ----------------------------------------------- */

#define MANY 1000

typedef struct many_client {
  struct many_state *s;
  nio_conn *c;
  int idx, echoed;
  char buf[16];
  size_t n;
} many_client;

typedef struct many_state {
  eh_test t;
  nio_listener *l;
  many_client clients[MANY];
  nio_conn *servers[MANY];
  int nservers, nconnected, nechoed;
  uint64_t max_open;
} many_state;

static void many_server_cb(nio_conn *c, int ev) {
  size_t n;
  const char *p;
  if (!(ev & NIO_EV_READ)) return;
  p = nio__conn_input(c, &n);
  if (n) nio__conn_write(c, p, n, NULL, NULL);
  nio__conn_consume(c, n);
}

static void many_client_cb(nio_conn *c, int ev) {
  many_client *mc = c->udata;
  many_state *s = mc->s;
  nio_counters st;
  if (ev & NIO_EV_CONNECT) {
    char msg[16];
    if (!EH_CHECK(&s->t, c->err == 0, "connect #%d: expected 0, got %s",
                  mc->idx, nio_err_name(c->err)))
      return;
    s->nconnected++;
    snprintf(msg, sizeof msg, "%08d", mc->idx);
    nio__conn_write(c, msg, 8, NULL, NULL);
  }
  if (ev & NIO_EV_READ) {
    size_t n;
    const char *p = nio__conn_input(c, &n);
    if (!EH_CHECK(&s->t, c->err == 0 && !c->eof,
                  "client #%d read: expected data, got %s eof=%d", mc->idx,
                  nio_err_name(c->err), c->eof))
      return;
    if (mc->n + n > sizeof mc->buf) n = sizeof mc->buf - mc->n;
    memcpy(mc->buf + mc->n, p, n);
    mc->n += n;
    nio__conn_consume(c, n);
    if (mc->n >= 8 && !mc->echoed) {
      char want[16];
      snprintf(want, sizeof want, "%08d", mc->idx);
      EH_CHECK(&s->t, memcmp(mc->buf, want, 8) == 0,
               "client #%d: expected its own echo %s, got %.8s", mc->idx, want,
               mc->buf);
      mc->echoed = 1;
      s->nechoed++;
      nio__engine_stats(s->t.e, &st);
      if (st.conns > s->max_open) s->max_open = st.conns;
      if (s->nechoed == MANY) s->t.done = 1;
    }
  }
}

static void many_listener_cb(nio_listener *l, int ev) {
  many_state *s = l->udata;
  nio_conn *c;
  (void)ev;
  while ((c = nio__listener_accept(l, many_server_cb, s)) != NULL) {
    if (!EH_CHECK(&s->t, s->nservers < MANY, "accept: more than %d", MANY)) {
      nio__conn_close(c, 0);
      continue;
    }
    s->servers[s->nservers++] = c;
  }
}

static int many_start(eh_test *t) {
  many_state *s = (many_state *)t;
  nio_addr a;
  t->stage = "1000 echoes";
  if ((s->l = eh_listen(t, &a, 0, many_listener_cb, s)) == NULL) return 0;
  for (int i = 0; i < MANY; i++) {
    s->clients[i].s = s;
    s->clients[i].idx = i;
    s->clients[i].c = eh_connect(t, &a, many_client_cb, &s->clients[i]);
    if (s->clients[i].c == NULL) return 0;
  }
  return 0;
}

static void many_finish(eh_test *t) {
  many_state *s = (many_state *)t;
  nio_counters st;
  for (int i = 0; i < MANY; i++)
    if (s->clients[i].c) nio__conn_close(s->clients[i].c, 0);
  for (int i = 0; i < s->nservers; i++) nio__conn_close(s->servers[i], 0);
  if (s->l) nio__listener_close(s->l);
  nio__engine_stats(t->e, &st);
  EH_CHECK(t, st.conns == 0, "after closing all: expected 0 open, got %llu",
           (unsigned long long)st.conns);
}

static void thousand_connections_echo_at_once(void **state) {
  many_state *s = calloc(1, sizeof *s);
  (void)state;
  s->t.start = many_start;
  s->t.finish = many_finish;
  s->t.timeout_ms = 30000;
  eh_run(&s->t);
  assert_int_equal(s->nconnected, MANY);
  assert_int_equal(s->nservers, MANY);
  /* The last echo came while every connection was still open. */
  assert_int_equal(s->max_open, 2 * MANY);
  free(s);
}

/* ---- pending queue bounded by the backlog ---------------------------- */

/* The kernel's queue (backlog + 1 on Linux) and the engine's hold every
** client between them, so no SYN is dropped and retried a second later. */
#define BL_CLIENTS 7
#define BL_BACKLOG 3

typedef struct bl_state {
  eh_test t;
  nio_listener *l;
  nio_conn *clients[BL_CLIENTS];
  nio_conn *servers[BL_CLIENTS];
  int nconnected, naccepted, events, maxpending;
  int pending; /* listener events not yet served */
  nio_timer later;
} bl_state;

static void bl_conn_cb(nio_conn *c, int ev) {
  bl_state *s = c->udata;
  if (ev & NIO_EV_CONNECT) {
    EH_CHECK(&s->t, c->err == 0, "connect: expected 0, got %s",
             nio_err_name(c->err));
    s->nconnected++;
  }
}

static void bl_accept_all(nio_timer *tm) {
  bl_state *s = tm->data;
  nio_conn *c;
  int n = 0;
  while ((c = nio__listener_accept(s->l, bl_conn_cb, s)) != NULL) {
    s->servers[s->naccepted++] = c;
    n++;
  }
  if (n > s->maxpending) s->maxpending = n;
  if (s->naccepted == BL_CLIENTS)
    s->t.done = 1;
  else
    nio__timer_start(s->t.e, &s->later, 50000000, bl_accept_all);
}

static void bl_listener_cb(nio_listener *l, int ev) {
  bl_state *s = l->udata;
  (void)ev;
  s->events++;
  /* Serve late, so the queue fills up to the backlog meanwhile. */
  if (!nio__timer_active(&s->later))
    nio__timer_start(s->t.e, &s->later, 50000000, bl_accept_all);
}

static int bl_start(eh_test *t) {
  bl_state *s = (bl_state *)t;
  nio_addr a;
  s->later.data = s;
  t->stage = "every queued connection to be accepted";
  if ((s->l = eh_listen(t, &a, BL_BACKLOG, bl_listener_cb, s)) == NULL)
    return 0;
  for (int i = 0; i < BL_CLIENTS; i++)
    if ((s->clients[i] = eh_connect(t, &a, bl_conn_cb, s)) == NULL) return 0;
  return 0;
}

static void bl_finish(eh_test *t) {
  bl_state *s = (bl_state *)t;
  nio__timer_stop(t->e, &s->later);
  for (int i = 0; i < BL_CLIENTS; i++)
    if (s->clients[i]) nio__conn_close(s->clients[i], 0);
  for (int i = 0; i < s->naccepted; i++) nio__conn_close(s->servers[i], 0);
  if (s->l) nio__listener_close(s->l);
}

static void listener_queue_bounded_by_backlog_then_rearms(void **state) {
  bl_state s;
  (void)state;
  memset(&s, 0, sizeof s);
  s.t.start = bl_start;
  s.t.finish = bl_finish;
  eh_run(&s.t);
  assert_int_equal(s.naccepted, BL_CLIENTS);
  /* Accepts that completed before the cancel took effect (uring's
  ** multishot) may overshoot the backlog a little, never take everyone. */
  if (s.maxpending > 2 * BL_BACKLOG)
    fail_msg("pending queue: expected at most ~%d waiting, saw %d", BL_BACKLOG,
             s.maxpending);
}

/* ---- listener close --------------------------------------------------- */

typedef struct lc_state {
  eh_test t;
  nio_listener *l;
  nio_conn *client;
  int listener_events, client_events, eof_seen;
} lc_state;

static void lc_listener_cb(nio_listener *l, int ev) {
  lc_state *s = l->udata;
  (void)ev;
  s->listener_events++;
  /* A connection is pending: close the listener with it queued. */
  nio__listener_close(l);
  s->l = NULL;
}

static void lc_client_cb(nio_conn *c, int ev) {
  lc_state *s = c->udata;
  s->client_events++;
  /* The pending server end was closed with the listener: EOF. */
  if ((ev & NIO_EV_READ) && (c->eof || c->err)) {
    s->eof_seen = 1;
    s->t.done = 1;
  }
}

static int lc_start(eh_test *t) {
  lc_state *s = (lc_state *)t;
  nio_addr a;
  t->stage = "EOF on a connection left pending by a closed listener";
  if ((s->l = eh_listen(t, &a, 0, lc_listener_cb, s)) == NULL) return 0;
  s->client = eh_connect(t, &a, lc_client_cb, s);
  return 0;
}

static void lc_finish(eh_test *t) {
  lc_state *s = (lc_state *)t;
  nio_counters st;
  if (s->client) nio__conn_close(s->client, 0);
  if (s->l) nio__listener_close(s->l);
  nio__engine_stats(t->e, &st);
  EH_CHECK(t, st.conns == 0, "open connections: expected 0, got %llu",
           (unsigned long long)st.conns);
}

static void listener_close_closes_pending_connections(void **state) {
  lc_state s;
  (void)state;
  memset(&s, 0, sizeof s);
  s.t.start = lc_start;
  s.t.finish = lc_finish;
  eh_run(&s.t);
  assert_int_equal(s.listener_events, 1);
  assert_true(s.eof_seen);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(accept_connect_echo_round_trips),
      cmocka_unit_test(stale_id_after_close_returns_null),
      cmocka_unit_test(thousand_connections_echo_at_once),
      cmocka_unit_test(listener_queue_bounded_by_backlog_then_rearms),
      cmocka_unit_test(listener_close_closes_pending_connections),
  };
  th_init(4096);
  return cmocka_run_group_tests(tests, NULL, NULL);
}
