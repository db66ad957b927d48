/*
** conn_caf.c: close after flush -- a connection its owner forgot sends
** what it has queued, then closes, within the engine's grace.
*/
#include "internal.h"

void nio__conn_caf_unlink(conn *c) {
  nio_engine *e = c->e;
  /* c->caf is set before c goes on the list, and one with nothing to
  ** send closes without ever being on it: only a link that has a
  ** predecessor or is the first is in the list. */
  if (c->link.prev || e->flushing.first == &c->link)
    nio__list_remove(&e->flushing, &c->link);
}

int nio__conns_flushing(const nio_engine *e) {
  return !nio__list_empty(&e->flushing);
}
/* ---- close after flush ---------------------------------------------- */

/* The one due first (the list is ordered by fdue), or NULL. */
static conn *caf_first(nio_engine *e) {
  return nio__list_item(e->flushing.first, conn, link);
}

static void conn_caf_expire(nio_timer *t) {
  nio_engine *e = t->data;
  conn *c;
  while ((c = caf_first(e)) != NULL && c->fdue <= e->now)
    nio__conn_close(&c->pub, 0);
  /* Without the timer the rest would wait for their peers forever: their
  ** grace ends now. */
  if (c && nio__timer_start(e, &e->ftimer, c->fdue - e->now, conn_caf_expire))
    while ((c = caf_first(e)) != NULL) nio__conn_close(&c->pub, 0);
}

void nio__conn_close_after_flush(nio_conn *pc) {
  conn *c = (conn *)pc;
  nio_engine *e = c->e;
  if (c->pub.closing || c->caf) return;
  /* Out of its listener's lists: c->link goes on e->flushing. */
  if (c->pending)
    nio__conn_unpend(c);
  else if (c->shaking)
    nio__listener_unshake(c);
  c->caf = 1;
  c->pub.cb = NULL;
  nio__conn_refuse_outside(c);
  nio__conn_free_input(c);
  /* Nothing to send, or nowhere to send it (failed, or detached without
  ** a socket: a client that never connected): the queue is dropped, and
  ** counted, now rather than after the grace. */
  if (c->qhead == NULL || (c->pub.err && !NIO_TLS_ALERTING(c)) ||
      c->pub.fd == NIO_BAD_SOCK) {
    nio__conn_close(pc, 0);
    return;
  }
  /* Bounded even while the engine runs: a peer that never reads cannot
  ** keep a forgotten connection (and its output) forever. The grace is
  ** the same for all, so appending keeps the list ordered by deadline. */
  c->fdue = e->now + e->grace_ns;
  nio__list_push_back(&e->flushing, &c->link);
  if (!nio__timer_active(&e->ftimer)) {
    e->ftimer.data = e;
    /* No timer, no bound: close now rather than maybe never. */
    if (nio__timer_start(e, &e->ftimer, e->grace_ns, conn_caf_expire) < 0) {
      nio__conn_close(pc, 0);
      return;
    }
  }
  nio__conn_recv_kick(c);
}
