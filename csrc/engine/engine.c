/*
** engine.c: the engine's life -- the registry that routes ids to engines,
** references, the worker thread and its loop, the hooks, graceful stop
** and the final drain. (Messages from other threads: inbox.c.)
*/
#include <stdlib.h>
#include <string.h>
#include "internal.h"
#include "../util/log.h"

#define ENGINE_GRACE_NS (5ull * 1000000000ull)
#define ENGINE_MAX NIO_ID_INDEX_MASK
#define ENGINE_SEND_LIMIT ((size_t)4 << 20)
#define ENGINE_INBOX_LIMIT ((size_t)16 << 20)
#define ENGINE_POST_LIMIT ((size_t)64 << 20)

/* The engine whose worker is this thread (NIO_TLS_MODEL: internal.h). */
static _Thread_local nio_engine *engine_tls NIO_TLS_MODEL;

/*
** The process-wide registry of engines, so that an id (which carries the
** engine index and epoch) can be routed from any thread. A sender takes a
** reference under the lock, so an engine is never freed under it. Held for
** a few instructions, so a spin lock: it needs no initialisation, which a
** portable static mutex would.
*/
static atomic_flag registry_lock = ATOMIC_FLAG_INIT;
static nio_engine *registry[ENGINE_MAX + 1];
static unsigned registry_serial; /* under the lock */

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
      e->epoch = registry_serial++ & NIO_ID_EPOCH_MASK;
      r = 0;
      break;
    }
  }
  registry_release();
  return r;
}

nio_engine *nio__engine_acquire(uint64_t id) {
  unsigned i = NIO_ID_INDEX(id);
  nio_engine *e;
  if (id >> 63 || i == 0) return NULL;
  registry_acquire();
  e = registry[i];
  if (e && e->epoch == NIO_ID_EPOCH(id))
    atomic_fetch_add_explicit(&e->refs, 1, memory_order_relaxed);
  else
    e = NULL;
  registry_release();
  return e;
}

static void registry_remove(nio_engine *e) {
  registry_acquire();
  if (e->index && registry[e->index] == e) registry[e->index] = NULL;
  registry_release();
}

/* A test switch: the timer heap's largest capacity (it grows 64, 128...;
** 0: no timer can be armed), to see how waits fail when it cannot grow. */
static uint32_t engine_heapmax_from_env(void) {
  const char *s = getenv("NETIO_TEST_TIMER_HEAP");
  char *end;
  unsigned long n;
  if (s == NULL || *s == '\0') return UINT32_MAX;
  n = strtoul(s, &end, 10);
  return *end != '\0' || n > UINT32_MAX ? UINT32_MAX : (uint32_t)n;
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

int nio__engine_new(nio_engine **out, const nio_options *o) {
  nio_engine *e;
  int r;
  *out = NULL;
  if (o && o->backend && strlen(o->backend) >= sizeof e->backend)
    return NIO_EINVAL;
  if ((e = calloc(1, sizeof *e)) == NULL) return NIO_ENOMEM;
  if ((e->xblocks = calloc(NIO_XS_BLOCKS, sizeof *e->xblocks)) == NULL) {
    free(e);
    return NIO_ENOMEM;
  }
  if (o && o->backend) strcpy(e->backend, o->backend);
  e->send_limit = o && o->send_limit ? o->send_limit : ENGINE_SEND_LIMIT;
  e->inbox_limit = o && o->inbox_limit ? o->inbox_limit : ENGINE_INBOX_LIMIT;
  e->post_limit = o && o->post_limit ? o->post_limit : ENGINE_POST_LIMIT;
  e->grace_ns = engine_grace_from_env();
  e->heapmax = engine_heapmax_from_env();
  atomic_init(&e->refs, 1);
  if ((r = nio__mutex_init(&e->mu)) < 0) {
    free(e->xblocks);
    free(e);
    return r;
  }
  if ((r = registry_add(e)) < 0) {
    nio__mutex_destroy(&e->mu);
    free(e->xblocks);
    free(e);
    return r;
  }
  e->now = nio__now_ns();
  *out = e;
  return 0;
}

void nio__engine_free(nio_engine *e) {
  if (e == NULL) return;
  /* No new reference after this; senders holding one find the inbox
  ** closed. What the worker owned goes now; the shared part with the
  ** last reference. */
  registry_remove(e);
  nio__inbox_close(e);
  nio__timers_free(e);
  nio__conns_free_pools(e);
  free(e->slots);
  e->slots = NULL;
  e->nslots = 0;
  nio__engine_unref(e);
}

void nio__engine_ref(nio_engine *e) {
  atomic_fetch_add_explicit(&e->refs, 1, memory_order_relaxed);
}

void nio__engine_unref(nio_engine *e) {
  if (atomic_fetch_sub_explicit(&e->refs, 1, memory_order_acq_rel) != 1) return;
  nio__inbox_free(e);
  nio__xslots_free(e);
  free(e->xblocks);
  nio__mutex_destroy(&e->mu);
  free(e);
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

int nio_backend_available(const char *name) {
  return name ? nio__port_available(name) : 0;
}

const char *nio_backend_name(int i) {
  return nio__port_backend_name(i);
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
  int n;
  /* What was queued since the last kick goes now; a submit that failed
  ** left an event to deliver, so the wait must not block. */
  nio__conns_kick(e);
  if (e->deferred) timeout_ms = 0;
  n = nio__port_wait(e->port, timeout_ms);
  e->now = nio__now_ns();
  engine_run_deferred(e);
  if (timers) nio__timers_run(e);
  nio__inbox_run(e);
  nio__conns_sweep(e);
  nio__listeners_sweep(e);
  nio__udps_sweep(e);
  return n;
}

static void engine_loop(nio_engine *e) {
  int ready, timeout, n;
  while (!e->quit) {
    engine_check_stop(e);
    ready = e->hooks.turn ? e->hooks.turn(e, e->hooks.arg) : 0;
    if (e->quit) break;
    /* The turn's output is submitted (one send per connection), then what
    ** the turn closed with nothing in flight is closed now, not when the
    ** wait next returns (the peer must see the close at once). */
    nio__conns_kick(e);
    nio__conns_sweep(e);
    nio__listeners_sweep(e);
    nio__udps_sweep(e);
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
  uint64_t deadline = e->now + e->grace_ns, dropped;
  int timeout;
  e->ending = 1;
  while (nio__conns_flushing(e) && e->now < deadline) {
    timeout = (int)((deadline - e->now + 999999) / 1000000);
    if (timeout > 100) timeout = 100;
    if (engine_poll(e, timeout, 0) < 0) break;
  }
  /* From here on, queued output no peer took is dropped: counted, and
  ** said once, so that a stop never loses output silently. */
  dropped = e->stats.dropped_bytes;
  nio__resolve_cancel_all(e);
  /* Before finish: the owner sees every message accepted, then none. */
  nio__inbox_close(e);
  if (e->hooks.finish) e->hooks.finish(e, e->hooks.arg);
  engine_run_deferred(e);
  nio__listeners_close_all(e);
  nio__udps_close_all(e);
  nio__conns_close_all(e);
  dropped = e->stats.dropped_bytes - dropped;
  if (dropped > 0)
    nio__log(NIO_LOG_WARN,
             "netio: the run ended with %llu bytes of queued output unsent "
             "(their peers did not take them within the %.3g s grace "
             "period, NETIO_GRACE): dropped",
             (unsigned long long)dropped, (double)e->grace_ns / 1e9);
  nio__conns_sweep(e);
  nio__listeners_sweep(e);
  nio__udps_sweep(e);
  while (!nio__list_empty(&e->zombies) || !nio__list_empty(&e->lzombies) ||
         !nio__list_empty(&e->uzombies)) {
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
    nio__inbox_close(e);
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
  if (e->port) return nio__port_backend(e->port);
  return e->backend[0] ? e->backend : NULL; /* asked for, not (yet) open */
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

void nio__engine_stats(nio_engine *e, nio_counters *st) {
  *st = e->stats;
  st->inbox_kept = nio__inbox_kept(e);
}

void nio_engine_stats(nio_engine *e, nio_stats *st) {
  st->dropped_bytes = e->stats.dropped_bytes;
  st->outside_dropped = e->stats.outside_dropped;
}
