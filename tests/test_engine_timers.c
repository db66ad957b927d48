/*
** test_engine_timers.c: the engine's timer heap -- order, stop, re-arm,
** many timers, and timers driving the port's wait.
*/
#include "engine_helpers.h"

#define MS 1000000ull

typedef struct tm_state {
  eh_test t;
  nio_timer timers[8];
  int order[8], nfired;
  int rearms, rearm_turns[4];
  uint64_t armed_at, fired_at;
} tm_state;

/* ---- order ---------------------------------------------------------- */

static void order_cb(nio_timer *tm) {
  tm_state *s = tm->data;
  s->order[s->nfired++] = (int)(tm - s->timers);
  if (s->nfired == 5) s->t.done = 1;
}

static int order_start(eh_test *t) {
  tm_state *s = (tm_state *)t;
  const int delays[5] = {50, 10, 30, 20, 40};
  for (int i = 0; i < 5; i++) {
    s->timers[i].data = s;
    nio__timer_start(t->e, &s->timers[i], (uint64_t)delays[i] * MS, order_cb);
  }
  t->stage = "five timers";
  return 0;
}

static void timers_fire_in_due_order(void **state) {
  tm_state s;
  const int want[5] = {1, 3, 2, 4, 0};
  (void)state;
  memset(&s, 0, sizeof s);
  s.t.start = order_start;
  eh_run(&s.t);
  for (int i = 0; i < 5; i++)
    if (s.order[i] != want[i])
      fail_msg("firing #%d: expected timer %d (delay order), got %d", i,
               want[i], s.order[i]);
}

/* ---- stop ----------------------------------------------------------- */

static void stop_cb(nio_timer *tm) {
  tm_state *s = tm->data;
  s->order[s->nfired++] = (int)(tm - s->timers);
  if (tm == &s->timers[2]) s->t.done = 1;
}

static int stop_start(eh_test *t) {
  tm_state *s = (tm_state *)t;
  for (int i = 0; i < 3; i++) {
    s->timers[i].data = s;
    nio__timer_start(t->e, &s->timers[i], (uint64_t)(10 + 10 * i) * MS,
                     stop_cb);
  }
  nio__timer_stop(t->e, &s->timers[0]);
  nio__timer_stop(t->e, &s->timers[0]); /* stopping twice is harmless */
  EH_CHECK(t, !nio__timer_active(&s->timers[0]),
           "stopped timer: expected inactive");
  EH_CHECK(t, nio__timer_active(&s->timers[1]), "armed timer: expected active");
  nio__timer_stop(t->e, &s->timers[3]); /* never armed: a no-op */
  return 0;
}

static void stopped_timer_never_fires(void **state) {
  tm_state s;
  (void)state;
  memset(&s, 0, sizeof s);
  s.t.start = stop_start;
  eh_run(&s.t);
  assert_int_equal(s.nfired, 2);
  if (s.order[0] != 1 || s.order[1] != 2)
    fail_msg("expected timers 1 then 2 (0 was stopped), got %d then %d",
             s.order[0], s.order[1]);
}

/* ---- re-arm --------------------------------------------------------- */

static void rearm_cb(nio_timer *tm) {
  tm_state *s = tm->data;
  if (tm == &s->timers[0]) {
    s->fired_at = nio__now_ns();
    /* Re-armed from its own callback with delay 0: runs again at a later
    ** turn, not in a loop inside this one. */
    s->timers[1].data = s;
    nio__timer_start(s->t.e, &s->timers[1], 0, rearm_cb);
    return;
  }
  s->rearm_turns[s->rearms++] = s->t.turns;
  if (s->rearms < 4)
    nio__timer_start(s->t.e, tm, 0, rearm_cb);
  else
    s->t.done = 1;
}

static int rearm_start(eh_test *t) {
  tm_state *s = (tm_state *)t;
  s->timers[0].data = s;
  nio__timer_start(t->e, &s->timers[0], 5000 * MS, rearm_cb);
  /* Re-arming moves the due time: 5 s becomes 20 ms. A delay counts from
  ** the turn's time (nio__engine_now), not from the call: a worker
  ** preempted between the two would otherwise see the timer "early". */
  s->armed_at = nio__engine_now(t->e);
  nio__timer_start(t->e, &s->timers[0], 20 * MS, rearm_cb);
  t->stage = "a re-armed timer";
  return 0;
}

static void
rearmed_timer_uses_new_delay_and_zero_delay_waits_a_turn(void **state) {
  tm_state s;
  uint64_t ms;
  (void)state;
  memset(&s, 0, sizeof s);
  s.t.start = rearm_start;
  eh_run(&s.t);
  ms = (s.fired_at - s.armed_at) / MS;
  if (ms < 19 || ms > 2000)
    fail_msg("re-armed 20 ms timer: expected to fire after ~20 ms, took %llu",
             (unsigned long long)ms);
  for (int i = 1; i < 4; i++)
    if (s.rearm_turns[i] <= s.rearm_turns[i - 1])
      fail_msg("zero-delay re-arm #%d: expected a later turn than %d, got %d",
               i, s.rearm_turns[i - 1], s.rearm_turns[i]);
}

/* ---- many ----------------------------------------------------------- */

#define NT 20000

typedef struct many_tm {
  eh_test t;
  nio_timer tm[NT];
  uint64_t last_due;
  int fired, expected, out_of_order, fired_stopped;
} many_tm;

static void many_cb(nio_timer *tm) {
  many_tm *s = tm->data;
  int i = (int)(tm - s->tm);
  if (tm->due < s->last_due) s->out_of_order++;
  s->last_due = tm->due;
  if (i % 3 == 0) s->fired_stopped++;
  if (++s->fired == s->expected) s->t.done = 1;
}

static int many_start(eh_test *t) {
  many_tm *s = (many_tm *)t;
  uint32_t x = 12345;
  for (int i = 0; i < NT; i++) {
    x = x * 1103515245u + 12345u;
    s->tm[i].data = s;
    nio__timer_start(t->e, &s->tm[i], (uint64_t)((x >> 8) % 50000) * 1000,
                     many_cb);
  }
  for (int i = 0; i < NT; i += 3) nio__timer_stop(t->e, &s->tm[i]);
  s->expected = NT - (NT + 2) / 3;
  t->stage = "20000 timers";
  return 0;
}

static void many_timers_fire_once_each_in_order(void **state) {
  many_tm *s = calloc(1, sizeof *s);
  (void)state;
  s->t.start = many_start;
  eh_run(&s->t);
  assert_int_equal(s->fired, s->expected);
  if (s->out_of_order)
    fail_msg("expected timers to fire by due time, %d fired out of order",
             s->out_of_order);
  if (s->fired_stopped)
    fail_msg("expected stopped timers not to fire, %d did", s->fired_stopped);
  free(s);
}

/* ---- timeouts drive the wait ---------------------------------------- */

static void wait_cb(nio_timer *tm) {
  tm_state *s = tm->data;
  s->fired_at = nio__now_ns();
  s->t.done = 1;
}

static int wait_start(eh_test *t) {
  tm_state *s = (tm_state *)t;
  s->timers[0].data = s;
  s->armed_at = nio__engine_now(t->e); /* what the delay counts from */
  nio__timer_start(t->e, &s->timers[0], 150 * MS, wait_cb);
  t->stage = "a 150 ms timer";
  return 0;
}

static void timer_drives_the_wait_without_spinning(void **state) {
  tm_state s;
  uint64_t ms;
  (void)state;
  memset(&s, 0, sizeof s);
  s.t.start = wait_start;
  eh_run(&s.t);
  ms = (s.fired_at - s.armed_at) / MS;
  if (ms < 149 || ms > 3000)
    fail_msg("150 ms timer: expected to fire after 150 ms, took %llu ms",
             (unsigned long long)ms);
  /* An idle engine blocks in the port until the timer is due: a handful
  ** of turns, not thousands. */
  if (s.t.turns > 10)
    fail_msg("idle wait: expected a few loop turns, got %d", s.t.turns);
}

/* ---- now ------------------------------------------------------------ */

static void now_turn(eh_test *t) {
  tm_state *s = (tm_state *)t;
  uint64_t now = nio__engine_now(t->e), real = nio__now_ns();
  EH_CHECK(t, now >= s->armed_at, "engine now went backwards");
  EH_CHECK(t, now <= real && real - now < 1000 * MS,
           "engine now: expected the turn's time, off by %llu ns",
           (unsigned long long)(real - now));
  EH_CHECK(t, nio__engine_current() == t->e,
           "nio__engine_current on the worker: expected the engine");
  s->armed_at = now;
  if (++s->nfired == 20) t->done = 1;
  t->ready = 1; /* turn again without waiting */
}

static void engine_now_is_the_turn_time(void **state) {
  tm_state s;
  (void)state;
  memset(&s, 0, sizeof s);
  s.t.turn = now_turn;
  eh_run(&s.t);
  assert_null(nio__engine_current());
  assert_int_equal(s.nfired, 20);
}

/* ---- a heap that cannot grow ---------------------------------------- */

/* NETIO_TEST_TIMER_HEAP=64 caps the heap at its first capacity: the
** watchdog takes one entry, so 63 timers arm and the rest get NIO_ENOMEM
** and stay stopped -- never armed in part, and the heap stays whole. */
#define FULL_N 100

typedef struct full_state {
  eh_test t;
  nio_timer tm[FULL_N];
  int armed, refused, fired;
} full_state;

static void full_cb(nio_timer *tm) {
  full_state *s = tm->data;
  s->fired++;
  s->t.done = 1;
}

static int full_start(eh_test *t) {
  full_state *s = (full_state *)t;
  for (int i = 0; i < FULL_N; i++) {
    int r;
    s->tm[i].data = s;
    r = nio__timer_start(t->e, &s->tm[i], i == 0 ? 20 * MS : 60000 * MS,
                         full_cb);
    if (r == 0 && nio__timer_active(&s->tm[i]))
      s->armed++;
    else if (r == NIO_ENOMEM && !nio__timer_active(&s->tm[i]))
      s->refused++;
    else
      eh_failf(t, __FILE__, __LINE__,
               "timer %d: expected 0 and armed or NIO_ENOMEM and stopped, "
               "got %d, active %d",
               i, r, nio__timer_active(&s->tm[i]));
  }
  t->stage = "the 20 ms timer of a full heap";
  return 0;
}

static void full_done(eh_test *t) {
  full_state *s = (full_state *)t;
  for (int i = 0; i < FULL_N; i++) nio__timer_stop(t->e, &s->tm[i]);
}

static void
timer_start_fails_with_enomem_when_the_heap_cannot_grow(void **state) {
  full_state s;
  (void)state;
  memset(&s, 0, sizeof s);
  s.t.start = full_start;
  s.t.finish = full_done;
  th_setenv("NETIO_TEST_TIMER_HEAP", "64");
  eh_run(&s.t);
  th_setenv("NETIO_TEST_TIMER_HEAP", NULL);
  if (s.armed != 63 || s.refused != FULL_N - 63)
    fail_msg("a heap of 64 with the watchdog in it: expected 63 timers armed "
             "and %d refused, got %d and %d",
             FULL_N - 63, s.armed, s.refused);
  if (s.fired != 1)
    fail_msg("expected the 20 ms timer to fire once, fired %d", s.fired);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(timers_fire_in_due_order),
      cmocka_unit_test(stopped_timer_never_fires),
      cmocka_unit_test(
          rearmed_timer_uses_new_delay_and_zero_delay_waits_a_turn),
      cmocka_unit_test(many_timers_fire_once_each_in_order),
      cmocka_unit_test(timer_drives_the_wait_without_spinning),
      cmocka_unit_test(engine_now_is_the_turn_time),
      cmocka_unit_test(timer_start_fails_with_enomem_when_the_heap_cannot_grow),
  };
  th_init(0);
  return cmocka_run_group_tests(tests, NULL, NULL);
}
