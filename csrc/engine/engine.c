/*
** engine.c: the engine's worker thread and loop, the inbox of cross-thread
** calls, the hooks, graceful stop and the final drain.
*/
#include <stdlib.h>
#include <string.h>
#include "internal.h"
#include "../port/log.h"

#define ENGINE_GRACE_NS (5ull * 1000000000ull)
#define ENGINE_MAX 255

static _Thread_local nio_engine *engine_tls;

/*
** The process-wide registry of engines, so that an id (which carries the
** engine index) can be routed from any thread. Tiny and rarely touched, so
** a spin lock: it needs no initialisation, which a portable static mutex
** would.
*/
static atomic_flag registry_lock = ATOMIC_FLAG_INIT;
static nio_engine *registry[ENGINE_MAX + 1];

static void registry_acquire(void) {
  while (
      atomic_flag_test_and_set_explicit(&registry_lock, memory_order_acquire))
    ;
}

static void registry_release(void) {
  atomic_flag_clear_explicit(&registry_lock, memory_order_release);
}

static int registry_add(nio_engine *e) {
  int r = NIO_ENOSPC;
  registry_acquire();
  for (unsigned i = 1; i <= ENGINE_MAX; i++) {
    if (registry[i] == NULL) {
      registry[i] = e;
      e->index = i;
      r = 0;
      break;
    }
  }
  registry_release();
  return r;
}

static void registry_remove(nio_engine *e) {
  registry_acquire();
  if (e->index && registry[e->index] == e) registry[e->index] = NULL;
  registry_release();
}

static uint64_t engine_grace_from_env(void) {
  const char *s = getenv("NETIO_GRACE");
  char *end;
  double d;
  if (s == NULL || *s == '\0') return ENGINE_GRACE_NS;
  d = strtod(s, &end);
  if (*end != '\0' || !(d >= 0) || d > 1e6) return ENGINE_GRACE_NS;
  return (uint64_t)(d * 1e9);
}

int nio__engine_new(nio_engine **out, const char *backend) {
  nio_engine *e;
  int r;
  *out = NULL;
  if (backend && strlen(backend) >= sizeof e->backend) return NIO_EINVAL;
  if ((e = calloc(1, sizeof *e)) == NULL) return NIO_ENOMEM;
  if (backend) strcpy(e->backend, backend);
  e->grace_ns = engine_grace_from_env();
  if ((r = nio__mutex_init(&e->mu)) < 0) {
    free(e);
    return r;
  }
  if ((r = registry_add(e)) < 0) {
    nio__mutex_destroy(&e->mu);
    free(e);
    return r;
  }
  e->now = nio__now_ns();
  *out = e;
  return 0;
}

void nio__engine_free(nio_engine *e) {
  nio_call *c, *next;
  if (e == NULL) return;
  registry_remove(e);
  /* Calls never run (the worker never started): drop them. */
  for (c = e->ihead; c; c = next) {
    next = c->next;
    free(c);
  }
  nio__timers_free(e);
  nio__conns_free_pools(e);
  free(e->slots);
  nio__mutex_destroy(&e->mu);
  free(e);
}

/* ---- inbox ---------------------------------------------------------- */

int nio__engine_call(nio_engine *e, nio_call_fn fn, void *arg) {
  nio_call *c;
  nio_port *p;
  if (e == NULL || fn == NULL) return NIO_EINVAL;
  if ((c = malloc(sizeof *c)) == NULL) return NIO_ENOMEM;
  c->next = NULL;
  c->fn = fn;
  c->arg = arg;
  nio__mutex_lock(&e->mu);
  if (e->iclosed) {
    nio__mutex_unlock(&e->mu);
    free(c);
    return NIO_ECLOSED;
  }
  if (e->itail)
    e->itail->next = c;
  else
    e->ihead = c;
  e->itail = c;
  /* One wake-up per batch: the worker clears wake_pending before it takes
  ** the list. Posting under the lock keeps the port open meanwhile (it is
  ** closed only after the inbox is). */
  p = atomic_load(&e->wake_port);
  if (p && !atomic_exchange(&e->wake_pending, 1)) nio__port_post(p);
  nio__mutex_unlock(&e->mu);
  return 0;
}

/* Run the calls queued so far. Calls they queue run at the next turn. */
static void engine_run_calls(nio_engine *e) {
  nio_call *c, *next;
  atomic_store(&e->wake_pending, 0);
  nio__mutex_lock(&e->mu);
  c = e->ihead;
  e->ihead = e->itail = NULL;
  nio__mutex_unlock(&e->mu);
  for (; c; c = next) {
    next = c->next;
    c->fn(e, c->arg);
    free(c);
  }
}

static int engine_calls_waiting(nio_engine *e) {
  int r;
  nio__mutex_lock(&e->mu);
  r = e->ihead != NULL;
  nio__mutex_unlock(&e->mu);
  return r;
}

/* Refuse new calls; the ones accepted before still run (a call that was
** accepted always runs, so its argument is never leaked). */
static void engine_close_inbox(nio_engine *e) {
  nio__mutex_lock(&e->mu);
  e->iclosed = 1;
  nio__mutex_unlock(&e->mu);
  while (engine_calls_waiting(e)) engine_run_calls(e);
}

/* ---- deferred events ------------------------------------------------ */

/* Events found inside an owner's call (a submit failing) are delivered at
** the next turn, never from inside that call. */
void nio__engine_defer(conn *c, int events) {
  nio_engine *e = c->e;
  c->devents |= (uint8_t)events;
  if (c->deferred) return;
  c->deferred = 1;
  c->dnext = NULL;
  if (e->deferred_tail)
    e->deferred_tail->dnext = c;
  else
    e->deferred = c;
  e->deferred_tail = c;
}

static void engine_run_deferred(nio_engine *e) {
  conn *c = e->deferred, *next;
  int ev;
  e->deferred = e->deferred_tail = NULL;
  for (; c; c = next) {
    next = c->dnext;
    ev = c->devents;
    c->devents = 0;
    c->deferred = 0;
    nio__conn_deliver(c, ev);
  }
}

int nio__engine_backend_available(const char *name) {
  return nio__port_available(name);
}

/* ---- the loop ------------------------------------------------------- */

static void engine_check_stop(nio_engine *e) {
  if (!e->stop_seen && atomic_load(&e->stop_req)) {
    e->stop_seen = 1;
    if (e->hooks.stop) e->hooks.stop(e, e->hooks.arg);
  }
}

/* Deliver what one wait produced: completions (inside the wait), then
** deferred events, expired timers, cross-thread calls; free what closed. */
static int engine_poll(nio_engine *e, int timeout_ms, int timers) {
  int n = nio__port_wait(e->port, timeout_ms);
  e->now = nio__now_ns();
  engine_run_deferred(e);
  if (timers) nio__timers_run(e);
  engine_run_calls(e);
  nio__conns_sweep(e);
  nio__listeners_sweep(e);
  return n;
}

static void engine_loop(nio_engine *e) {
  int ready, timeout, n;
  while (!e->quit) {
    engine_check_stop(e);
    ready = e->hooks.turn ? e->hooks.turn(e, e->hooks.arg) : 0;
    if (e->quit) break;
    /* What the turn closed with nothing in flight is closed now, not when
    ** the wait next returns (the peer must see the close at once). */
    nio__conns_sweep(e);
    nio__listeners_sweep(e);
    if (ready || e->deferred || atomic_load(&e->stop_req) != e->stop_seen)
      timeout = 0;
    else
      timeout = nio__timers_timeout(e, nio__now_ns());
    n = engine_poll(e, timeout, 1);
    if (n < 0 && n != NIO_EINTR) {
      nio__log(NIO_LOG_ERROR, "netio: port wait failed: %s", nio_strerror(n));
      e->result = n;
      break;
    }
  }
}

/*
** After the loop: give close-after-flush connections up to the grace
** period to send what they queued, let the owner close its things, then
** close what is left and wait for every final completion. Nothing is
** freed before its completion, so this ends only when the port is idle.
*/
static void engine_drain(nio_engine *e) {
  uint64_t deadline = e->now + e->grace_ns;
  int timeout;
  e->ending = 1;
  while (nio__conns_flushing(e) && e->now < deadline) {
    timeout = (int)((deadline - e->now + 999999) / 1000000);
    if (timeout > 100) timeout = 100;
    if (engine_poll(e, timeout, 0) < 0) break;
  }
  nio__resolve_cancel_all(e);
  if (e->hooks.finish) e->hooks.finish(e, e->hooks.arg);
  engine_close_inbox(e);
  engine_run_deferred(e);
  nio__listeners_close_all(e);
  nio__conns_close_all(e);
  nio__conns_sweep(e);
  nio__listeners_sweep(e);
  while (e->zombies || e->lzombies) {
    if (engine_poll(e, 100, 0) < 0) break;
  }
}

static void engine_worker(void *arg) {
  nio_engine *e = arg;
  nio_port *p;
  int r;
  engine_tls = e;
  nio__thread_block_signals();
  r = nio__port_open(&p, e->backend[0] ? e->backend : NULL);
  if (r < 0) {
    e->result = r;
    engine_close_inbox(e);
    engine_tls = NULL;
    return;
  }
  e->port = p;
  e->now = nio__now_ns();
  nio__mutex_lock(&e->mu);
  atomic_store(&e->wake_port, p);
  nio__mutex_unlock(&e->mu);
  /* A stop or a call that came before the port existed had nothing to
  ** post to: make the first wait see it. */
  nio__port_post(p);
  r = e->hooks.start ? e->hooks.start(e, e->hooks.arg) : 0;
  if (r != 0)
    nio__engine_quit(e, r);
  else
    engine_loop(e);
  engine_drain(e);
  nio__timers_free(e);
  nio__conns_free_pools(e);
  nio__mutex_lock(&e->mu);
  atomic_store(&e->wake_port, NULL);
  nio__mutex_unlock(&e->mu);
  while (atomic_load(&e->posting) > 0)
    ; /* a nio__engine_stop() is inside its post: a few instructions */
  e->port = NULL;
  nio__port_close(p);
  engine_tls = NULL;
}

int nio__engine_start(nio_engine *e, const nio_engine_hooks *hooks) {
  int r;
  if (e == NULL || e->started) return NIO_EINVAL;
  if (hooks) e->hooks = *hooks;
  e->started = 1;
  if ((r = nio__thread_start(&e->thread, engine_worker, e)) < 0) {
    e->started = 0;
    return r;
  }
  return 0;
}

int nio__engine_join(nio_engine *e) {
  int r;
  if (e == NULL || e->thread == NULL) return NIO_EINVAL;
  if ((r = nio__thread_join(e->thread)) < 0) return r;
  e->thread = NULL;
  return e->result;
}

void nio__engine_quit(nio_engine *e, int result) {
  e->quit = 1;
  e->result = result;
}

void nio__engine_stop(nio_engine *e) {
  nio_port *p;
  atomic_store(&e->stop_req, 1);
  /* No lock: this may run in a signal handler. Announcing the post first
  ** makes the worker, which clears wake_port before it closes the port,
  ** wait for the post to finish (both sides are sequentially consistent:
  ** either it sees posting, or we see NULL). */
  atomic_fetch_add(&e->posting, 1);
  p = atomic_load(&e->wake_port);
  if (p) nio__port_post(p);
  atomic_fetch_sub(&e->posting, 1);
}

int nio__engine_stopping(const nio_engine *e) {
  return e->stop_seen || atomic_load(&e->stop_req);
}

const char *nio__engine_backend(const nio_engine *e) {
  return e->port ? nio__port_backend(e->port) : NULL;
}

uint64_t nio__engine_now(const nio_engine *e) {
  return e->now;
}

void nio__engine_set_udata(nio_engine *e, void *udata) {
  e->udata = udata;
}

void *nio__engine_udata(const nio_engine *e) {
  return e->udata;
}

nio_engine *nio__engine_current(void) {
  return engine_tls;
}

void nio__engine_stats(const nio_engine *e, nio_engine_stats *st) {
  *st = e->stats;
}
