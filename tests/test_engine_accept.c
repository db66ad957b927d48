/*
** test_engine_accept.c: the listener's one back-off -- out of descriptors,
** the engine stops accepting for a while instead of spinning, and takes
** the waiting clients once descriptors are free.
*/
#include "engine_helpers.h"

#define MS 1000000ull
#define NCLIENTS 3

typedef struct acc_state {
  eh_test t;
  nio_listener *l;
  nio_addr addr;
  nio_sock clients[NCLIENTS];
  nio_conn *accepted[NCLIENTS];
  int naccepted;
  int nemfile;        /* listener callbacks that saw EMFILE */
  int nemfile_at_end; /* ... when the limit was restored */
  int limited;        /* the descriptor limit could be lowered */
  nio_timer restore;
} acc_state;

static void acc_lcb(nio_listener *l, int ev) {
  acc_state *s = l->udata;
  nio_conn *c;
  (void)ev;
  if (l->err == NIO_EMFILE) s->nemfile++;
  while ((c = nio__listener_accept(l, NULL, NULL)) != NULL) {
    if (s->naccepted < NCLIENTS)
      s->accepted[s->naccepted++] = c;
    else
      nio__conn_close(c, 0);
  }
  if (s->naccepted == NCLIENTS && s->nemfile_at_end > 0) s->t.done = 1;
}

static void acc_restore(nio_timer *tm) {
  acc_state *s = tm->data;
  th_fds_limit_restore();
  s->nemfile_at_end = s->nemfile;
  s->t.stage = "the clients to be accepted once descriptors are free";
  if (s->nemfile_at_end == 0) {
    (void)EH_CHECK(
        &s->t, 0,
        "expected the listener to see EMFILE while out of descriptors");
    return;
  }
  if (s->naccepted == NCLIENTS) s->t.done = 1;
}

static int acc_start(eh_test *t) {
  acc_state *s = (acc_state *)t;
  int r;
  th_addr_loopback(&s->addr, 0);
  r = nio__listen(t->e, &s->addr, 0, 0, 0, acc_lcb, s, &s->l);
  if (r == 0) r = nio__listener_getsockname(s->l, &s->addr);
  if (!EH_CHECK(t, r == 0, "listen: expected 0, got %s", nio_err_name(r)))
    return 0;
  /* The client sockets exist before the limit drops; only their connects
  ** (which need no descriptor) come after. */
  for (int i = 0; i < NCLIENTS; i++) {
    r = nio__sock_tcp(AF_INET, &s->clients[i]);
    if (!EH_CHECK(t, r == 0, "socket: expected 0, got %s", nio_err_name(r)))
      return 0;
  }
  if (th_fds_limit_now() != 0) {
    t->done = 1; /* no descriptor limit to lower: skipped by the caller */
    return 0;
  }
  s->limited = 1;
  for (int i = 0; i < NCLIENTS; i++)
    (void)th_connect_pending(s->clients[i], &s->addr, 0);
  /* 350 ms out of descriptors: a back-off of 100 ms between tries gives
  ** about four EMFILE; a listener spinning on the error, thousands. */
  s->restore.data = s;
  nio__timer_start(t->e, &s->restore, 350 * MS, acc_restore);
  t->stage = "350 ms out of descriptors";
  return 0;
}

static void acc_finish(eh_test *t) {
  acc_state *s = (acc_state *)t;
  th_fds_limit_restore();
  nio__timer_stop(t->e, &s->restore);
  for (int i = 0; i < s->naccepted; i++) nio__conn_close(s->accepted[i], 0);
  if (s->l) nio__listener_close(s->l);
  for (int i = 0; i < NCLIENTS; i++) nio__sock_close(s->clients[i]);
}

static void listener_backs_off_out_of_fds_and_resumes(void **state) {
  acc_state s;
  (void)state;
  memset(&s, 0, sizeof s);
  s.t.start = acc_start;
  s.t.finish = acc_finish;
  eh_run(&s.t);
  if (!s.limited) skip(); /* no descriptor limit to lower (Windows) */
  if (s.nemfile_at_end < 2 || s.nemfile_at_end > 10)
    fail_msg("expected 2..10 EMFILE seen by the listener in 350 ms out of "
             "descriptors (a 100 ms back-off), got %d",
             s.nemfile_at_end);
  if (s.naccepted != NCLIENTS)
    fail_msg("expected the %d clients accepted once descriptors were free, "
             "got %d",
             NCLIENTS, s.naccepted);
}

/* An error of the listening socket itself (here: shut down under the
** engine, which Linux reports to accept as EINVAL) ends accepting for
** good, and the owner is told once instead of waiting forever. */
typedef struct dead_state {
  eh_test t;
  nio_listener *l;
  int fired, fired_dead;
  nio_timer settle;
} dead_state;

static void dead_settled(nio_timer *tm) {
  dead_state *s = tm->data;
  s->t.done = 1;
}

static void dead_lcb(nio_listener *l, int ev) {
  dead_state *s = l->udata;
  (void)ev;
  s->fired++;
  if (!l->dead) return;
  if (s->fired_dead++ == 0) {
    /* Wait a little: a listener that re-armed on the error would fire
    ** again and again meanwhile. */
    s->settle.data = s;
    nio__timer_start(s->t.e, &s->settle, 100 * MS, dead_settled);
    s->t.stage = "no further callbacks after the fatal error";
  }
}

static int dead_start(eh_test *t) {
  dead_state *s = (dead_state *)t;
  nio_addr a;
  int r;
  th_addr_loopback(&a, 0);
  r = nio__listen(t->e, &a, 0, 0, 0, dead_lcb, s, &s->l);
  if (!EH_CHECK(t, r == 0, "listen: expected 0, got %s", nio_err_name(r)))
    return 0;
#ifdef _WIN32
  t->done = 1; /* shutdown() does not fail a listening socket on Windows */
#else
  shutdown(s->l->fd, SHUT_RD);
  t->stage = "the listener to report its fatal error";
#endif
  return 0;
}

static void dead_finish(eh_test *t) {
  dead_state *s = (dead_state *)t;
  nio__timer_stop(t->e, &s->settle);
  if (s->l) nio__listener_close(s->l);
}

static void listener_fatal_error_ends_accepting_and_says_so_once(void **state) {
  dead_state s;
  (void)state;
#ifdef _WIN32
  skip(); /* shutdown() does not fail a listening socket on Windows */
#endif
  memset(&s, 0, sizeof s);
  s.t.start = dead_start;
  s.t.finish = dead_finish;
  eh_run(&s.t);
  if (s.fired_dead != 1)
    fail_msg("expected the listener's fatal error reported once (dead), got "
             "%d dead callbacks of %d",
             s.fired_dead, s.fired);
  if (s.fired != 1)
    fail_msg("expected one callback in all, got %d (the listener kept "
             "accepting after its fatal error)",
             s.fired);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(listener_backs_off_out_of_fds_and_resumes),
      cmocka_unit_test(listener_fatal_error_ends_accepting_and_says_so_once),
  };
  th_init(0);
  return cmocka_run_group_tests(tests, NULL, NULL);
}
