/*
** test_engine_flow.c: input flow control -- a connection whose owner does
** not consume holds at most what it wants (nio__conn_want) plus one
** receive buffer, however fast its peer pushes.
*/
#include "engine_helpers.h"

#define KIB 1024u
#define MIB (1024u * 1024)
/* The port's receive buffer: the most one completion may add past want. */
#define RECV_BUF (64 * KIB)
#define NPEERS 8
#define PUSH_TOTAL (16 * MIB) /* each peer queues this much at once */
#define RUN_MS 1500

static char push_buf[PUSH_TOTAL];

typedef struct flow {
  eh_test t;
  nio_listener *l;
  nio_conn *peers[NPEERS];
  nio_conn *conns[NPEERS]; /* the accepted ends, never read */
  int naccepted;
  size_t want;
  size_t max_seen; /* the most input one accepted end held */
  uint64_t t0;
} flow;

static void no_free(void *ud, const void *p, size_t len) {
  (void)ud;
  (void)p;
  (void)len;
}

static void check_input(flow *f, nio_conn *c) {
  size_t len;
  nio__conn_input(c, &len);
  if (len > f->max_seen) f->max_seen = len;
  EH_CHECK(&f->t, len <= f->want + RECV_BUF,
           "input held by a connection never read: expected at most want "
           "(%zu) + one receive buffer (%u), got %zu",
           f->want, RECV_BUF, len);
}

static void server_cb(nio_conn *c, int ev) {
  flow *f = c->udata;
  (void)ev;
  EH_CHECK(&f->t, c->err == 0, "accepted end: expected no error, got %s",
           nio_err_name(c->err));
  check_input(f, c);
}

static void peer_cb(nio_conn *c, int ev) {
  flow *f = c->udata;
  (void)ev;
  EH_CHECK(&f->t, c->err == 0, "pushing peer: expected no error, got %s",
           nio_err_name(c->err));
}

static void on_accept(nio_listener *l, int ev) {
  flow *f = l->udata;
  nio_conn *c;
  (void)ev;
  while (f->naccepted < NPEERS &&
         (c = nio__listener_accept(l, server_cb, f)) != NULL) {
    if (f->want) nio__conn_want(c, f->want);
    f->conns[f->naccepted++] = c;
  }
}

static int flow_start(eh_test *t) {
  flow *f = (flow *)t;
  nio_addr a;
  f->l = eh_listen(t, &a, 64, on_accept, f);
  if (f->l == NULL) return 0;
  for (int i = 0; i < NPEERS; i++) {
    int r;
    if ((f->peers[i] = eh_connect(t, &a, peer_cb, f)) == NULL) return 0;
    r = nio__conn_write(f->peers[i], push_buf, sizeof push_buf, no_free, NULL);
    if (!EH_CHECK(t, r == 0, "push: expected 0, got %s", nio_err_name(r)))
      return 0;
  }
  f->t0 = nio__engine_now(t->e);
  t->stage = "the peers to fill what the accepted ends take";
  return 0;
}

static void flow_turn(eh_test *t) {
  flow *f = (flow *)t;
  for (int i = 0; i < f->naccepted; i++) check_input(f, f->conns[i]);
  if (nio__engine_now(t->e) - f->t0 < (uint64_t)RUN_MS * 1000000u) {
    /* Keep turning: the checks run at every turn. */
    t->ready = 1;
    th_usleep(1000);
    return;
  }
  EH_CHECK(t, f->naccepted == NPEERS, "expected %d accepted, got %d", NPEERS,
           f->naccepted);
  for (int i = 0; i < f->naccepted; i++) {
    size_t len;
    nio__conn_input(f->conns[i], &len);
    /* Flow control holds receiving back, not forever short of want. */
    EH_CHECK(t, len >= f->want,
             "a connection never read: expected its input to reach want "
             "(%zu), got %zu",
             f->want, len);
  }
  for (int i = 0; i < NPEERS; i++) {
    if (f->peers[i]) nio__conn_close(f->peers[i], 1);
    if (i < f->naccepted) nio__conn_close(f->conns[i], 1);
  }
  nio__listener_close(f->l);
  t->done = 1;
}

static void run_flow(size_t want) {
  flow f;
  memset(&f, 0, sizeof f);
  f.t.start = flow_start;
  f.t.turn = flow_turn;
  f.want = want ? want : 64 * KIB; /* 0: the engine's default */
  eh_run(&f.t);
  printf("# want %zu: the most input held was %zu\n", f.want, f.max_seen);
}

/* The default want: 64 KiB. */
static void input_stays_within_want_when_never_read(void **state) {
  (void)state;
  run_flow(0);
}

/* A raised want, as recv("*l") asks for a long line (1 MiB + 1). */
static void input_stays_within_a_raised_want_when_never_read(void **state) {
  (void)state;
  run_flow(MIB + 1);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(input_stays_within_want_when_never_read),
      cmocka_unit_test(input_stays_within_a_raised_want_when_never_read),
  };
  th_init(0);
  return cmocka_run_group_tests(tests, NULL, NULL);
}
