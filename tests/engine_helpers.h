/*
** engine_helpers.h: helpers of the engine tests -- run a test's state
** machine on an engine's worker thread with a watchdog, and report its
** first failure on the main thread (cmocka asserts only work there).
*/
#ifndef NIO_TEST_ENGINE_HELPERS_H
#define NIO_TEST_ENGINE_HELPERS_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "helpers.h"
#include "engine/engine.h"

/*
** One engine test. The test fills start (and optionally turn, stop,
** finish), runs eh_run(), and reads its own results afterwards. Worker
** code reports failures with EH_CHECK, which records the first one and
** ends the engine; eh_run() then fails the test with that message.
*/
typedef struct eh_test {
  nio_engine *e;
  int (*start)(struct eh_test *t);
  void (*turn)(struct eh_test *t); /* each loop turn, before the wait */
  void (*stop)(struct eh_test *t);
  void (*finish)(struct eh_test *t);
  /* A posted message (nio__engine_post); the test owns m. NULL: freed. */
  void (*message)(struct eh_test *t, nio_msg *m);
  nio_options opts;  /* for eh_new() */
  int timeout_ms;    /* watchdog; 0 = 10 s */
  const char *stage; /* what the test waits for, for the watchdog message */
  int done;          /* set by the test: quit at the next turn */
  int ready;         /* set by the test: the next wait must not block */
  int failed;
  char msg[512];
  int turns;
  int result; /* nio__engine_join() */
  nio_timer watchdog;
  void *ud;
} eh_test;

#define EH_CHECK(t, cond, ...)                                                 \
  ((cond) ? 1 : (eh_failf((t), __FILE__, __LINE__, __VA_ARGS__), 0))

static inline void eh_failf(eh_test *t, const char *file, int line,
                            const char *fmt, ...) {
  va_list ap;
  int n;
  if (t->failed) return;
  t->failed = 1;
  n = snprintf(t->msg, sizeof t->msg, "%s:%d: ", file, line);
  va_start(ap, fmt);
  vsnprintf(t->msg + n, sizeof t->msg - (size_t)n, fmt, ap);
  va_end(ap);
  nio__engine_quit(t->e, -1);
}

static inline void eh_watchdog(nio_timer *w) {
  eh_test *t = w->data;
  eh_failf(t, __FILE__, __LINE__, "timed out after %d ms waiting for %s",
           t->timeout_ms, t->stage ? t->stage : "the test to finish");
}

static inline int eh_hook_start(nio_engine *e, void *arg) {
  eh_test *t = arg;
  /* t->e was set by eh_new(); other threads of the test read it. */
  t->watchdog.data = t;
  if (nio__timer_start(e, &t->watchdog, (uint64_t)t->timeout_ms * 1000000ull,
                       eh_watchdog) < 0)
    return NIO_ENOMEM; /* no watchdog, no bound on the test */
  return t->start ? t->start(t) : 0;
}

static inline int eh_hook_turn(nio_engine *e, void *arg) {
  eh_test *t = arg;
  int ready;
  t->turns++;
  if (t->turn && !t->failed && !t->done) t->turn(t);
  if (t->done || t->failed) {
    nio__timer_stop(e, &t->watchdog);
    nio__engine_quit(e, t->failed ? -1 : 0);
  }
  ready = t->ready;
  t->ready = 0;
  return ready;
}

static inline void eh_hook_stop(nio_engine *e, void *arg) {
  eh_test *t = arg;
  (void)e;
  if (t->stop) t->stop(t);
}

static inline void eh_hook_finish(nio_engine *e, void *arg) {
  eh_test *t = arg;
  nio__timer_stop(e, &t->watchdog);
  if (t->finish) t->finish(t);
}

static inline void eh_hook_message(nio_engine *e, void *arg, nio_msg *m) {
  eh_test *t = arg;
  if (t->message)
    t->message(t, m);
  else
    nio__msg_free(e, m);
}

/* The hooks of a test. */
static inline nio_engine_hooks eh_hooks(eh_test *t) {
  nio_engine_hooks h = {
      eh_hook_start,  eh_hook_turn, eh_hook_stop, eh_hook_finish, t,
      eh_hook_message};
  return h;
}

/* Create the engine (t->e) without starting it. */
static inline void eh_new(eh_test *t) {
  int r = nio__engine_new(&t->e, &t->opts);
  if (r < 0) th_fail("nio__engine_new: expected 0, got %s", nio_err_name(r));
  if (t->timeout_ms == 0) t->timeout_ms = 10000;
}

/* Start t->e (eh_new first), wait for it to end, check the result. The
** engine is left for the caller to inspect and free (eh_free). */
static inline void eh_start_join(eh_test *t) {
  nio_engine_hooks h = eh_hooks(t);
  int r = nio__engine_start(t->e, &h);
  if (r < 0) th_fail("nio__engine_start: expected 0, got %s", nio_err_name(r));
  t->result = nio__engine_join(t->e);
  if (t->failed) th_fail("%s", t->msg);
}

static inline void eh_free(eh_test *t) {
  nio__engine_free(t->e);
  t->e = NULL;
}

/* The common case: new, start, join, check, free. */
static inline void eh_run(eh_test *t) {
  eh_new(t);
  eh_start_join(t);
  if (t->result != 0)
    th_fail("engine result: expected 0, got %d (%s)", t->result,
            nio_err_name(t->result));
  eh_free(t);
}

/* A listener on 127.0.0.1:0; *a gets its real address. Worker thread. */
static inline nio_listener *eh_listen(eh_test *t, nio_addr *a, int backlog,
                                      nio_listener_cb cb, void *ud) {
  nio_listener *l = NULL;
  int r;
  th_addr_loopback(a, 0);
  r = nio__listen(t->e, a, backlog, 0, 0, cb, ud, &l);
  if (!EH_CHECK(t, r == 0, "nio__listen: expected 0, got %s", nio_err_name(r)))
    return NULL;
  r = nio__listener_getsockname(l, a);
  EH_CHECK(t, r == 0 && th_addr_port(a) > 0,
           "listener getsockname: expected a port, got %s", nio_err_name(r));
  return l;
}

static inline nio_conn *eh_connect(eh_test *t, const nio_addr *a,
                                   nio_conn_cb cb, void *ud) {
  nio_conn *c = NULL;
  int r = nio__conn_connect(t->e, a, NULL, cb, ud, &c);
  EH_CHECK(t, r == 0 && c != NULL, "nio__conn_connect: expected 0, got %s",
           nio_err_name(r));
  return c;
}

/* A free callback for referenced chunks that counts and frees. */
typedef struct eh_frees {
  int calls;
  uint64_t bytes;
} eh_frees;

static inline void eh_free_cb(void *ud, const void *p, size_t len) {
  eh_frees *f = ud;
  f->calls++;
  f->bytes += len;
  free((void *)p);
}

/* One end of a transfer: th_pattern's stream written to c from offset
** *sent up to total, while c->queued stays under high. Write sizes cycle
** through copies (< 512 bytes, coalesced) and referenced chunks of
** several sizes (counted in *nrefs, freed through f). Returns 0, or the
** NIO_E* of the write that failed. */
static inline int eh_pump(nio_conn *c, size_t high, uint64_t *sent,
                          uint64_t total, int *nwrites, int *nrefs,
                          eh_frees *f) {
  static const size_t sizes[] = {100, 7, 300,     65536, 511, 200000,
                                 512, 1, 1000000, 4096,  33,  70000};
  while (c->queued < high && *sent < total) {
    size_t n = sizes[*nwrites % (int)(sizeof sizes / sizeof sizes[0])];
    int r;
    if (n > total - *sent) n = (size_t)(total - *sent);
    if (n < 512) {
      char tmp[512];
      th_pattern(tmp, n, *sent);
      r = nio__conn_write(c, tmp, n, NULL, NULL);
    } else {
      char *p = malloc(n);
      th_pattern(p, n, *sent);
      (*nrefs)++;
      r = nio__conn_write(c, p, n, eh_free_cb, f);
    }
    if (r != 0) return r;
    *sent += n;
    (*nwrites)++;
  }
  return 0;
}

#endif /* NIO_TEST_ENGINE_HELPERS_H */
