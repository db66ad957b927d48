/*
** inbox.c: messages from any thread to the worker -- calls, sends to a
** connection (nio_send) and posts (nio_post) -- in one bounded queue per
** engine, woken through the port's post once per batch.
**
** Order: one queue under one lock, taken whole by the worker, so messages
** from one thread are delivered in the order they were sent. Bounds: the
** bytes waiting in the inbox (inbox_limit), the bytes waiting for one
** connection (its send limit, counting its output queue too), the posts
** not yet freed by their owner (post_limit). A full bound answers
** NIO_EBUSY at once; nothing here ever blocks a sender.
*/
#include <stdlib.h>
#include <string.h>
#include "internal.h"

/* Sends at least this large are referenced by the output queue instead of
** copied into it (the message already is a private copy). */
#define INBOX_REF_MIN 4096

static nio_msg *msg_new(int type, size_t len) {
  nio_msg *m;
  if (len > SIZE_MAX - sizeof *m) return NULL;
  if ((m = malloc(sizeof *m + len)) == NULL) return NULL;
  m->next = NULL;
  m->type = (uint8_t)type;
  m->kind = 0;
  m->len = len;
  m->size = sizeof *m + len;
  return m;
}

/* Queue m unless the inbox is closed or full. An empty inbox takes any
** message, so one larger than the limit still passes alone. */
static int inbox_push(nio_engine *e, nio_msg *m) {
  nio_port *p;
  nio__mutex_lock(&e->mu);
  if (e->iclosed) {
    nio__mutex_unlock(&e->mu);
    return NIO_ECLOSED;
  }
  if (e->ibytes > 0 && e->ibytes + m->size > e->inbox_limit) {
    nio__mutex_unlock(&e->mu);
    return NIO_EBUSY;
  }
  if (e->itail)
    e->itail->next = m;
  else
    e->ihead = m;
  e->itail = m;
  e->ibytes += m->size;
  /* One wake-up per batch: the worker clears wake_pending before it takes
  ** the list. Posting under the lock keeps the port open meanwhile (it is
  ** closed only after the inbox is). */
  p = atomic_load(&e->wake_port);
  if (p && !atomic_exchange(&e->wake_pending, 1)) nio__port_post(p);
  nio__mutex_unlock(&e->mu);
  return 0;
}

/* ---- calls ------------------------------------------------------------ */

int nio__engine_call(nio_engine *e, nio_call_fn fn, void *arg) {
  nio_msg *m;
  int r;
  if (e == NULL || fn == NULL) return NIO_EINVAL;
  if ((m = msg_new(NIO_MSG_CALL, 0)) == NULL) return NIO_ENOMEM;
  m->size = 0; /* calls are the engine's own: never refused as "full" */
  m->u.call.fn = fn;
  m->u.call.arg = arg;
  if ((r = inbox_push(e, m)) < 0) free(m);
  return r;
}

/* ---- sends ------------------------------------------------------------ */

static void send_ref_free(void *ud, const void *p, size_t len) {
  (void)p;
  (void)len;
  free(ud);
}

/* On the worker: move a send into its connection's output queue. */
static void inbox_deliver_send(nio_engine *e, nio_msg *m) {
  nio_conn *c = nio__conn_get(e, m->u.id);
  nio_xslot *xs = nio__xslot(e, NIO_ID_SLOT(m->u.id));
  size_t len = m->len;
  int r = NIO_ECLOSED;
  if (c != NULL) {
    if (len >= INBOX_REF_MIN) {
      r = nio__conn_write(c, m->data, len, send_ref_free, m);
    } else {
      r = nio__conn_write(c, m->data, len, NULL, NULL);
      free(m);
    }
  } else {
    free(m);
  }
  if (r < 0) e->stats.outside_dropped += len;
  /* After the queued mirror was updated by the write: a sender that sees
  ** the bytes leave the inbox sees them in the queue. */
  if (xs) atomic_fetch_sub_explicit(&xs->inbox, len, memory_order_acq_rel);
}

/* The fast path: the engine's own thread writes straight to the output
** queue (nothing of this thread can be waiting in the inbox). */
static int send_local(nio_engine *e, uint64_t id, const void *p, size_t len) {
  nio_conn *c = nio__conn_get(e, id);
  nio_xslot *xs;
  if (c == NULL) return NIO_ECLOSED;
  xs = ((conn *)c)->xs;
  if (atomic_load_explicit(&xs->id, memory_order_relaxed) != id)
    return NIO_ECLOSED; /* closed by its owner, flushing */
  if (len == 0) return 0;
  if (c->queued + atomic_load_explicit(&xs->inbox, memory_order_acquire) >=
      atomic_load_explicit(&xs->limit, memory_order_relaxed))
    return NIO_EBUSY;
  return nio__conn_write(c, p, len, NULL, NULL);
}

static int send_remote(nio_engine *e, uint64_t id, const void *p, size_t len) {
  nio_xslot *xs = nio__xslot(e, NIO_ID_SLOT(id));
  size_t before;
  nio_msg *m;
  int r;
  if (xs == NULL || atomic_load_explicit(&xs->id, memory_order_acquire) != id)
    return NIO_ECLOSED;
  if (len == 0) return 0;
  /* Reserve first, so that concurrent senders see each other's bytes: of
  ** several racing for the last room, at most one passes. */
  before = atomic_fetch_add_explicit(&xs->inbox, len, memory_order_acq_rel);
  if (before + atomic_load_explicit(&xs->queued, memory_order_acquire) >=
      atomic_load_explicit(&xs->limit, memory_order_relaxed)) {
    r = NIO_EBUSY;
    goto undo;
  }
  if ((m = msg_new(NIO_MSG_SEND, len)) == NULL) {
    r = NIO_ENOMEM;
    goto undo;
  }
  m->u.id = id;
  memcpy(m->data, p, len);
  if ((r = inbox_push(e, m)) == 0) return 0;
  free(m);
undo:
  atomic_fetch_sub_explicit(&xs->inbox, len, memory_order_acq_rel);
  return r;
}

int nio_send(uint64_t id, const void *data, size_t len) {
  nio_engine *e = nio__engine_current();
  int r;
  if (data == NULL && len > 0) return NIO_EINVAL;
  if (e != NULL && NIO_ID_OF(e, id)) return send_local(e, id, data, len);
  if ((e = nio__engine_acquire(id)) == NULL) return NIO_ECLOSED;
  r = send_remote(e, id, data, len);
  nio__engine_unref(e);
  return r;
}

/* ---- posts ------------------------------------------------------------ */

int nio__engine_post(nio_engine *e, int kind, const void *p, size_t len) {
  nio_msg *m;
  size_t before;
  int r;
  if (e == NULL || (p == NULL && len > 0)) return NIO_EINVAL;
  if ((m = msg_new(NIO_MSG_POST, len)) == NULL) return NIO_ENOMEM;
  m->kind = (uint8_t)kind;
  if (len) memcpy(m->data, p, len);
  /* Counted until the owner frees it: a task that never receives cannot
  ** make posts pile up. Any one post passes when none is waiting. */
  before = atomic_fetch_add_explicit(&e->posted, m->size, memory_order_acq_rel);
  if (before > 0 && before + m->size > e->post_limit) {
    r = NIO_EBUSY;
  } else if ((r = inbox_push(e, m)) == 0) {
    return 0;
  }
  atomic_fetch_sub_explicit(&e->posted, m->size, memory_order_acq_rel);
  free(m);
  return r;
}

int nio_post(nio_engine *e, const void *data, size_t len) {
  return nio__engine_post(e, NIO_POST_RAW, data, len);
}

const char *nio__msg_data(const nio_msg *m, size_t *len) {
  *len = m->len;
  return m->data;
}

int nio__msg_kind(const nio_msg *m) {
  return m->kind;
}

void nio__msg_free(nio_engine *e, nio_msg *m) {
  if (m == NULL) return;
  atomic_fetch_sub_explicit(&e->posted, m->size, memory_order_acq_rel);
  free(m);
}

/* ---- the worker's side ------------------------------------------------ */

void nio__inbox_run(nio_engine *e) {
  nio_msg *m, *next;
  atomic_store(&e->wake_pending, 0);
  nio__mutex_lock(&e->mu);
  m = e->ihead;
  e->ihead = e->itail = NULL;
  e->ibytes = 0;
  nio__mutex_unlock(&e->mu);
  for (; m; m = next) {
    next = m->next;
    switch (m->type) {
    case NIO_MSG_CALL:
      m->u.call.fn(e, m->u.call.arg);
      free(m);
      break;
    case NIO_MSG_SEND:
      inbox_deliver_send(e, m);
      break;
    default: /* NIO_MSG_POST */
      m->next = NULL;
      if (e->hooks.message)
        e->hooks.message(e, e->hooks.arg, m);
      else
        nio__msg_free(e, m);
      break;
    }
  }
}

static int inbox_waiting(nio_engine *e) {
  int r;
  nio__mutex_lock(&e->mu);
  r = e->ihead != NULL;
  nio__mutex_unlock(&e->mu);
  return r;
}

void nio__inbox_close(nio_engine *e) {
  nio__mutex_lock(&e->mu);
  e->iclosed = 1;
  nio__mutex_unlock(&e->mu);
  /* A call accepted always runs (its argument is never leaked); sends find
  ** their connections closing and are counted. */
  if (e->started)
    while (inbox_waiting(e)) nio__inbox_run(e);
}

void nio__inbox_free(nio_engine *e) {
  nio_msg *m = e->ihead, *next;
  e->ihead = e->itail = NULL;
  for (; m; m = next) {
    next = m->next;
    if (m->type == NIO_MSG_SEND) {
      e->stats.outside_dropped += m->len;
      free(m);
    } else if (m->type == NIO_MSG_POST) {
      nio__msg_free(e, m);
    } else {
      free(m);
    }
  }
}
