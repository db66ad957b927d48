/*
** test_engine_call.c: nio__engine_call from other threads -- runs on the
** worker, in order per thread, always runs once accepted, refused after
** the engine ended.
*/
#include <stdatomic.h>
#include "engine_helpers.h"

#define THREADS 4
#define CALLS 2000

typedef struct call_state {
  eh_test t;
  atomic_int started;
  atomic_int accepted;
  int ran, wrong_thread, out_of_order;
  int last[THREADS];
  int stop_after; /* quit once this many calls ran (0: all) */
} call_state;

typedef struct call_arg {
  call_state *s;
  int thread, seq;
} call_arg;

static void call_fn(nio_engine *e, void *arg) {
  call_arg *a = arg;
  call_state *s = a->s;
  if (nio__engine_current() != e) s->wrong_thread++;
  if (a->seq != s->last[a->thread] + 1) s->out_of_order++;
  s->last[a->thread] = a->seq;
  s->ran++;
  if (s->stop_after ? s->ran == s->stop_after : s->ran == THREADS * CALLS)
    s->t.done = 1;
  free(a);
}

typedef struct caller {
  call_state *s;
  int idx;
} caller;

static void caller_thread(void *arg) {
  caller *c = arg;
  call_state *s = c->s;
  for (int i = 1; i <= CALLS; i++) {
    call_arg *a = malloc(sizeof *a);
    int r;
    a->s = s;
    a->thread = c->idx;
    a->seq = i;
    r = nio__engine_call(s->t.e, call_fn, a);
    if (r == 0) {
      atomic_fetch_add(&s->accepted, 1);
    } else {
      free(a);
      if (r != NIO_ECLOSED) break;
    }
    if (i % 256 == 0) th_usleep(100);
  }
}

static int call_start(eh_test *t) {
  call_state *s = (call_state *)t;
  atomic_store(&s->started, 1);
  t->stage = "every call to run";
  return 0;
}

static void run_callers(call_state *s, int before_start) {
  nio_engine_hooks h = {eh_hook_start,  eh_hook_turn, eh_hook_stop,
                        eh_hook_finish, &s->t,        NULL};
  nio_thread *th[THREADS];
  caller cs[THREADS];
  for (int i = 0; i < THREADS; i++) s->last[i] = 0;
  s->t.start = call_start;
  eh_new(&s->t);
  if (!before_start) {
    assert_int_equal(nio__engine_start(s->t.e, &h), 0);
  }
  for (int i = 0; i < THREADS; i++) {
    cs[i].s = s;
    cs[i].idx = i;
    assert_int_equal(nio__thread_start(&th[i], caller_thread, &cs[i]), 0);
  }
  if (before_start) {
    /* Calls queued before the worker exists run once it starts. */
    th_usleep(20000);
    assert_int_equal(nio__engine_start(s->t.e, &h), 0);
  }
  for (int i = 0; i < THREADS; i++) nio__thread_join(th[i]);
  s->t.result = nio__engine_join(s->t.e);
  if (s->t.failed) fail_msg("%s", s->t.msg);
}

static void calls_from_threads_run_on_worker_in_order(void **state) {
  call_state *s = calloc(1, sizeof *s);
  int r;
  (void)state;
  run_callers(s, 0);
  assert_int_equal(atomic_load(&s->accepted), THREADS * CALLS);
  assert_int_equal(s->ran, THREADS * CALLS);
  if (s->wrong_thread)
    fail_msg("calls: expected all on the worker, %d were not", s->wrong_thread);
  if (s->out_of_order)
    fail_msg("calls: expected each thread's order kept, %d out of order",
             s->out_of_order);
  /* After the engine ended, calls are refused (fn never runs). */
  r = nio__engine_call(s->t.e, call_fn, NULL);
  if (r != NIO_ECLOSED)
    fail_msg("call after the end: expected ECLOSED, got %s", nio_err_name(r));
  eh_free(&s->t);
  free(s);
}

static void calls_queued_before_start_run(void **state) {
  call_state *s = calloc(1, sizeof *s);
  (void)state;
  run_callers(s, 1);
  assert_int_equal(s->ran, THREADS * CALLS);
  assert_int_equal(s->out_of_order, 0);
  eh_free(&s->t);
  free(s);
}

/* The engine quits while threads still call: every accepted call runs
** (none is lost with its argument), the rest are refused. */
static void every_accepted_call_runs_when_engine_ends(void **state) {
  call_state *s = calloc(1, sizeof *s);
  (void)state;
  s->stop_after = 500;
  run_callers(s, 0);
  assert_int_equal(s->ran, atomic_load(&s->accepted));
  assert_int_equal(s->out_of_order, 0);
  eh_free(&s->t);
  free(s);
}

/* A call is the engine's own work (a thread telling that it ended): it is
** accepted even while posts have filled the inbox past its limit. */
static void calls_are_accepted_while_the_inbox_is_full(void **state) {
  call_state *s = calloc(1, sizeof *s);
  nio_engine_hooks h = {eh_hook_start,  eh_hook_turn, eh_hook_stop,
                        eh_hook_finish, &s->t,        NULL};
  size_t big = 20u << 20; /* over the 16 MiB inbox limit: passes alone */
  char *p = calloc(1, big);
  call_arg *a = calloc(1, sizeof *a);
  int r;
  (void)state;
  s->t.start = call_start;
  s->stop_after = 1;
  eh_new(&s->t);
  assert_int_equal(nio_post(s->t.e, p, big), 0);
  r = nio_post(s->t.e, "x", 1);
  if (r != NIO_EBUSY)
    fail_msg("a post over the inbox limit: expected EBUSY, got %s",
             nio_err_name(r));
  a->s = s;
  a->seq = 1;
  r = nio__engine_call(s->t.e, call_fn, a);
  if (r != 0)
    fail_msg("a call into a full inbox: expected 0, got %s", nio_err_name(r));
  assert_int_equal(nio__engine_start(s->t.e, &h), 0);
  s->t.result = nio__engine_join(s->t.e);
  if (s->t.failed) fail_msg("%s", s->t.msg);
  assert_int_equal(s->ran, 1);
  eh_free(&s->t);
  free(p);
  free(s);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(calls_from_threads_run_on_worker_in_order),
      cmocka_unit_test(calls_queued_before_start_run),
      cmocka_unit_test(every_accepted_call_runs_when_engine_ends),
      cmocka_unit_test(calls_are_accepted_while_the_inbox_is_full),
  };
  th_init(0);
  return cmocka_run_group_tests(tests, NULL, NULL);
}
