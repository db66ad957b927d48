/*
** timer.c: one binary min-heap of every timer of an engine (sleeps,
** timeouts, retries); its root drives the port's wait timeout.
*/
#include <limits.h>
#include <stdlib.h>
#include "internal.h"

/* The heap stores pointers to timers embedded in their owners' structs;
** t->slot is the timer's index + 1 so that stop is O(log n). */

static int timer_less(const nio_timer *a, const nio_timer *b) {
  return a->due < b->due;
}

static void timer_place(nio_engine *e, nio_timer *t, uint32_t i) {
  e->heap[i] = t;
  t->slot = i + 1;
}

static void timer_up(nio_engine *e, uint32_t i) {
  nio_timer *t = e->heap[i];
  while (i > 0) {
    uint32_t parent = (i - 1) / 2;
    if (!timer_less(t, e->heap[parent])) break;
    timer_place(e, e->heap[parent], i);
    i = parent;
  }
  timer_place(e, t, i);
}

static void timer_down(nio_engine *e, uint32_t i) {
  nio_timer *t = e->heap[i];
  for (;;) {
    uint32_t child = 2 * i + 1;
    if (child >= e->nheap) break;
    if (child + 1 < e->nheap && timer_less(e->heap[child + 1], e->heap[child]))
      child++;
    if (!timer_less(e->heap[child], t)) break;
    timer_place(e, e->heap[child], i);
    i = child;
  }
  timer_place(e, t, i);
}

void nio__timer_stop(nio_engine *e, nio_timer *t) {
  uint32_t i;
  nio_timer *last;
  if (t->slot == 0) return;
  i = t->slot - 1;
  t->slot = 0;
  last = e->heap[--e->nheap];
  if (i == e->nheap) return;
  timer_place(e, last, i);
  timer_down(e, i);
  timer_up(e, last->slot - 1);
}

int nio__timer_start(nio_engine *e, nio_timer *t, uint64_t delay_ns,
                     nio_timer_cb cb) {
  nio__timer_stop(e, t);
  t->cb = cb;
  /* Never due at the current turn's instant: a timer re-armed with delay 0
  ** from its own callback then waits for the next turn instead of looping
  ** inside nio__timers_run(). */
  if (delay_ns == 0) delay_ns = 1;
  t->due = e->now + delay_ns;
  if (t->due < e->now) t->due = UINT64_MAX; /* saturate huge delays */
  if (e->nheap == e->heapcap) {
    uint32_t cap = e->heapcap ? e->heapcap * 2 : 64;
    nio_timer **h;
    /* The heap cannot grow: t stays stopped, and the caller decides what
    ** a wait without its deadline becomes (never a silent wait forever). */
    if (e->heapcap >= e->heapmax || cap < e->heapcap ||
        (h = realloc(e->heap, cap * sizeof *h)) == NULL)
      return NIO_ENOMEM;
    e->heap = h;
    e->heapcap = cap;
  }
  timer_place(e, t, e->nheap++);
  timer_up(e, e->nheap - 1);
  return 0;
}

int nio__timers_timeout(nio_engine *e, uint64_t now) {
  uint64_t due, ms;
  if (e->nheap == 0) return -1;
  due = e->heap[0]->due;
  if (due <= now) return 0;
  /* Round up: waking a little late is fine, waking early costs a turn. */
  ms = (due - now + 999999) / 1000000;
  return ms > INT_MAX ? INT_MAX : (int)ms;
}

void nio__timers_run(nio_engine *e) {
  while (e->nheap > 0 && e->heap[0]->due <= e->now) {
    nio_timer *t = e->heap[0];
    nio__timer_stop(e, t);
    t->cb(t);
  }
}

void nio__timers_free(nio_engine *e) {
  for (uint32_t i = 0; i < e->nheap; i++) e->heap[i]->slot = 0;
  e->nheap = 0;
  e->heapcap = 0;
  free(e->heap);
  e->heap = NULL;
}
