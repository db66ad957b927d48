/*
** conn.c: connections -- the slot table and its generation-tagged ids,
** open (accept, adopt, connect, successor), close and the sweep that frees
** them. Input is conn_in.c, output conn_out.c, close-after-flush conn_caf.c.
*/
#include <stdlib.h>
#include <string.h>
#include "internal.h"
#include "../util/log.h"

#define CONN_WANT (64u * 1024)
#define CONN_LOWAT ((size_t)256 * 1024)

static void conn_on_connect(nio_req *req, int res, const char *data,
                            unsigned flags);

/* ---- slot table ----------------------------------------------------- */

/* Make sure the outside view covers slot s: allocate its block if missing
** and publish it for senders. Blocks are made as slots are first handed
** out, not for the whole slot table: the table doubles, and the blocks of
** its unused half would cost up to 48 bytes per connection. */
static int xslot_block(nio_engine *e, uint32_t s) {
  uint32_t b = s >> NIO_XS_BLOCK_BITS;
  nio_xslot *blk;
  if (atomic_load_explicit(&e->xblocks[b], memory_order_relaxed)) return 0;
  if ((blk = calloc(NIO_XS_BLOCK, sizeof *blk)) == NULL) return NIO_ENOMEM;
  atomic_store_explicit(&e->xblocks[b], blk, memory_order_release);
  return 0;
}

void nio__xslots_free(nio_engine *e) {
  for (uint32_t b = 0; b < NIO_XS_BLOCKS; b++) {
    nio_xslot *blk = atomic_load_explicit(&e->xblocks[b], memory_order_relaxed);
    if (blk == NULL) continue;
    free(blk);
    atomic_store_explicit(&e->xblocks[b], NULL, memory_order_relaxed);
  }
}

static int slot_alloc(nio_engine *e, conn *c) {
  uint32_t s;
  if (e->free_slot == 0) {
    uint32_t n = e->nslots ? e->nslots * 2 : 64, i;
    nio_slot *t;
    if (n > NIO_ID_MAX_SLOTS) n = NIO_ID_MAX_SLOTS;
    if (n == e->nslots) return NIO_ENOMEM;
    if ((t = realloc(e->slots, n * sizeof *t)) == NULL) return NIO_ENOMEM;
    /* Push the new slots so that the lowest is handed out first. */
    for (i = n; i-- > e->nslots;) {
      t[i].c = NULL;
      t[i].gen = 1;
      t[i].next = e->free_slot;
      e->free_slot = i + 1;
    }
    e->slots = t;
    e->nslots = n;
  }
  s = e->free_slot - 1;
  if (xslot_block(e, s) < 0) return NIO_ENOMEM;
  e->free_slot = e->slots[s].next;
  e->slots[s].c = c;
  c->slot = s;
  c->pub.id = NIO_ID_MAKE(e->epoch, e->index, e->slots[s].gen, s);
  c->xs = nio__xslot(e, s);
  atomic_store_explicit(&c->xs->queued, 0, memory_order_relaxed);
  atomic_store_explicit(&c->xs->limit, e->send_limit, memory_order_relaxed);
  atomic_store_explicit(&c->xs->id, c->pub.id, memory_order_release);
  return 0;
}

static void slot_next_gen(nio_slot *s) {
  s->gen = (s->gen + 1) & NIO_ID_GEN_MASK;
  if (s->gen == 0) s->gen = 1;
}

/* The slot is reusable at once: the bumped generation keeps the old id
** from matching its next tenant. */
static void slot_release(nio_engine *e, conn *c) {
  nio_slot *s = &e->slots[c->slot];
  s->c = NULL;
  slot_next_gen(s);
  s->next = e->free_slot;
  e->free_slot = c->slot + 1;
}

/* Outside senders are refused from now on (the owner closed c). */
void nio__conn_refuse_outside(conn *c) {
  atomic_store_explicit(&c->xs->id, 0, memory_order_release);
}

/* The stream failed (first error wins): it can never send again, so
** outside senders hear "closed" from now on, not after the owner's close. */
void nio__conn_set_err(conn *c, int err) {
  if (c->pub.err) return;
  c->pub.err = err;
  /* A connect that failed keeps taking bytes: its owner may hand them to
  ** a successor (a reconnecting client), or they are counted at close. */
  if (!c->pub.closing && c->connected) nio__conn_refuse_outside(c);
}

/* Same slot, next generation: the old id now fails nio__conn_get() and
** the outside view's id check, as if the connection had closed. */
void nio__conn_renew_id(nio_conn *pc) {
  conn *c = (conn *)pc;
  nio_engine *e = c->e;
  nio_slot *s = &e->slots[c->slot];
  uint64_t old = pc->id;
  if (pc->closing || c->moved) return;
  slot_next_gen(s);
  pc->id = NIO_ID_MAKE(e->epoch, e->index, s->gen, c->slot);
  if (atomic_load_explicit(&c->xs->id, memory_order_relaxed) == old)
    atomic_store_explicit(&c->xs->id, pc->id, memory_order_release);
}

nio_conn *nio__conn_get(nio_engine *e, uint64_t id) {
  conn *c = e ? nio__conn_of(e, id) : NULL;
  return c ? &c->pub : NULL;
}

void nio__conn_set_send_limit(nio_conn *pc, size_t limit) {
  atomic_store_explicit(&((conn *)pc)->xs->limit, limit, memory_order_relaxed);
}

/* ---- life ----------------------------------------------------------- */

/* Everything but the slot. */
static void conn_init(conn *c, nio_engine *e, nio_sock fd) {
  c->e = e;
  c->pub.fd = fd;
  c->want = CONN_WANT;
  c->lowat = CONN_LOWAT;
  c->rreq.fd = fd;
  c->rreq.op = NIO_OP_RECV;
  c->rreq.flags = NIO_REQ_MULTISHOT;
  c->rreq.cb = nio__conn_on_recv;
  c->rreq.data = c;
  c->wreq.fd = fd;
  c->wreq.data = c;
  e->stats.conns++;
}

static conn *conn_new(nio_engine *e, nio_sock fd) {
  conn *c = calloc(1, sizeof *c);
  if (c == NULL) return NULL;
  if (slot_alloc(e, c) < 0) {
    free(c);
    return NULL;
  }
  conn_init(c, e, fd);
  return c;
}

int nio__conn_accepted(nio_engine *e, nio_sock fd, conn **out) {
  conn *c = conn_new(e, fd);
  *out = c;
  if (c == NULL) return NIO_ENOMEM;
  c->connected = 1;
  return 0;
}

int nio__conn_adopt(nio_engine *e, nio_sock fd, nio_conn_cb cb, void *udata,
                    nio_conn **out) {
  conn *c;
  int r;
  *out = NULL;
  if (e->ending) return NIO_ECLOSED;
  if ((r = nio__port_add(e->port, fd)) < 0) return r;
  if ((c = conn_new(e, fd)) == NULL) {
    nio__port_remove(e->port, fd);
    return NIO_ENOMEM;
  }
  c->connected = 1;
  c->pub.cb = cb;
  c->pub.udata = udata;
  *out = &c->pub;
  nio__conn_recv_kick(c);
  return 0;
}

/* Owner callbacks. None after close; a connection forgotten by its owner
** (close-after-flush) has no owner, and any failure ends it. */
void nio__conn_deliver(conn *c, int events) {
  if (c->pub.closing) return;
  if (c->caf) {
    if (c->pub.err) nio__conn_close(&c->pub, 0);
    return;
  }
  if (c->pub.cb) c->pub.cb(&c->pub, events);
}

void nio__conn_unpend(conn *c) {
  listener *l = c->u.pl;
  nio__list_remove(&l->pending, &c->link);
  l->npending--;
  c->pending = 0;
  c->u.pl = NULL;
}

void nio__conn_close(nio_conn *pc, int reset) {
  conn *c = (conn *)pc;
  nio_engine *e = c->e;
  if (c->pub.closing) return;
  if (c->pending)
    nio__conn_unpend(c);
  else if (c->shaking)
    nio__listener_unshake(c);
#ifdef NIO_HAVE_TLS
  if (c->tls) nio__tls_stop(c);
#endif
  c->pub.closing = 1;
  c->pub.cb = NULL;
  c->reset = reset != 0;
  e->stats.dropped_bytes += c->pub.queued;
  e->stats.conns--;
  c->pub.queued = 0;
  if (!c->moved) {
    nio__conn_refuse_outside(c);
    nio__conn_set_queued(c, 0);
    slot_release(e, c);
  }
  if (c->caf) nio__conn_caf_unlink(c);
  if (c->rreq.active) nio__port_cancel(e->port, &c->rreq);
  if (c->wreq.active)
    nio__port_cancel(e->port, &c->wreq);
  else
    nio__conn_drop_queue(c);
  nio__conn_free_input(c);
  c->zombie = 1;
  nio__list_push_front(&e->zombies, &c->link);
}

/* Free the closed connections whose requests have all completed; their
** sockets are closed here, after the port forgot them. */
void nio__conns_sweep(nio_engine *e) {
  nio_link *k, *next;
  nio__list_each(&e->zombies, k, next) {
    conn *c = nio__list_item(k, conn, link);
    if (c->rreq.active || c->wreq.active || c->deferred || c->kickq) continue;
    nio__list_remove(&e->zombies, k);
    nio__conn_drop_queue(c);
#ifdef NIO_HAVE_TLS
    nio__tls_free(c);
#endif
    if (c->pub.fd != NIO_BAD_SOCK) { /* a detached one never had one */
      nio__port_remove(e->port, c->pub.fd);
      if (c->reset)
        nio__sock_close_reset(c->pub.fd);
      else
        nio__sock_close(c->pub.fd);
    }
    free(c);
  }
}

void nio__conns_close_all(nio_engine *e) {
  for (uint32_t s = 0; s < e->nslots; s++)
    if (e->slots[s].c) nio__conn_close(&e->slots[s].c->pub, 0);
}

/* ---- connect -------------------------------------------------------- */

static void conn_on_connect(nio_req *req, int res, const char *data,
                            unsigned flags);

static void conn_dial_free(conn *c) {
  free(c->u.dial);
  c->u.dial = NULL;
}

/* A socket for d->addrs[d->i], bound if asked, connecting. 0 or NIO_E*
** (then c has no socket). */
static int conn_dial_one(conn *c, conn_dial *d) {
  nio_engine *e = c->e;
  nio_addr *addr = &d->addrs[d->i];
  nio_sock fd;
  int r;
  if ((r = nio__sock_tcp(addr->ss.ss_family, &fd)) < 0) return r;
  if (d->has_bind && (r = nio__sock_bind_reuse(fd, &d->bind)) < 0) goto fail;
  if ((r = nio__port_add(e->port, fd)) < 0) goto fail;
  c->pub.fd = c->rreq.fd = c->wreq.fd = fd;
  c->wreq.op = NIO_OP_CONNECT;
  c->wreq.cb = conn_on_connect;
  c->wreq.u.connect.addr = addr;
  if ((r = nio__port_submit(e->port, &c->wreq)) < 0) {
    nio__port_remove(e->port, fd);
    c->pub.fd = c->rreq.fd = c->wreq.fd = NIO_BAD_SOCK;
    goto fail;
  }
  return 0;
fail:
  nio__sock_close(fd);
  return r;
}

/* The address d->i failed with err: drop its socket and try the next
** ones. Returns 0 when one is connecting, else the last error. */
static int conn_dial_next(conn *c, conn_dial *d, int err) {
  if (c->pub.fd != NIO_BAD_SOCK) {
    nio__port_remove(c->e->port, c->pub.fd);
    nio__sock_close(c->pub.fd);
    c->pub.fd = c->rreq.fd = c->wreq.fd = NIO_BAD_SOCK;
  }
  while (++d->i < d->n) {
    if ((err = conn_dial_one(c, d)) == 0) return 0;
  }
  return err;
}

static void conn_on_connect(nio_req *req, int res, const char *data,
                            unsigned flags) {
  conn *c = req->data;
  conn_dial *d = c->u.dial;
  (void)data;
  (void)flags;
  /* A failed address gives way to the next; the error reported is the
  ** last one's (its family and route are what was tried last). */
  if (res < 0 && !c->pub.closing && res != NIO_ECANCELED && d &&
      (res = conn_dial_next(c, d, res)) == 0)
    return; /* the next address is connecting */
  conn_dial_free(c);
  c->connecting = 0;
  if (c->pub.closing) return;
  if (res < 0) {
    nio__conn_set_err(c, res == NIO_ECANCELED ? NIO_ECLOSED : res);
    nio__conn_deliver(c, NIO_EV_CONNECT);
    return;
  }
  c->connected = 1;
  nio__conn_recv_kick(c);
  nio__conn_send_kick(c, 0);
  nio__conn_do_shutdown(c);
  if (c->caf && (c->qhead == NULL || c->pub.err)) {
    nio__conn_close(&c->pub, 0);
    return;
  }
  nio__conn_deliver(c, NIO_EV_CONNECT);
}

int nio__conn_detached(nio_engine *e, nio_conn_cb cb, void *udata,
                       nio_conn **out) {
  conn *c;
  *out = NULL;
  if (e->ending) return NIO_ECLOSED;
  if ((c = conn_new(e, NIO_BAD_SOCK)) == NULL) return NIO_ENOMEM;
  c->pub.cb = cb;
  c->pub.udata = udata;
  *out = &c->pub;
  return 0;
}

int nio__conn_dial_list(nio_conn *pc, const nio_addr *addrs, int n,
                        const nio_addr *bind) {
  conn *c = (conn *)pc;
  conn_dial *d;
  int r, k = 0, family = bind ? bind->ss.ss_family : 0, match = 0;
  if (addrs == NULL || n <= 0) return NIO_EINVAL;
  for (int i = 0; i < n; i++) {
    if (addrs[i].len == 0 || addrs[i].len > sizeof addrs[i].ss)
      return NIO_EINVAL;
    if (addrs[i].ss.ss_family == family) match++;
  }
  if (c->pub.closing || c->caf) return NIO_ECLOSED;
  if (c->pub.fd != NIO_BAD_SOCK || c->connecting) return NIO_EISCONN;
  if (c->e->ending) return NIO_ECLOSED;
  if ((d = malloc(sizeof *d + (size_t)n * sizeof d->addrs[0])) == NULL)
    return NIO_ENOMEM;
  /* A socket bound to an address of one family cannot reach the other. */
  for (int i = 0; i < n; i++)
    if (match == 0 || addrs[i].ss.ss_family == family) d->addrs[k++] = addrs[i];
  d->n = k;
  d->i = 0;
  d->has_bind = bind != NULL;
  if (bind) d->bind = *bind;
  /* Only the first attempt's failure is the caller's to see at once; a
  ** later address failing synchronously is tried past, as a completion. */
  for (;;) {
    if ((r = conn_dial_one(c, d)) == 0) break;
    if (d->i + 1 >= d->n) {
      free(d);
      return r;
    }
    d->i++;
  }
  c->u.dial = d;
  c->connecting = 1;
  return 0;
}

int nio__conn_dial(nio_conn *pc, const nio_addr *addr, const nio_addr *bind) {
  if (addr == NULL) return NIO_EINVAL;
  return nio__conn_dial_list(pc, addr, 1, bind);
}

int nio__conn_connect_list(nio_engine *e, const nio_addr *addrs, int n,
                           const nio_addr *bind, nio_conn_cb cb, void *udata,
                           nio_conn **out) {
  nio_conn *c;
  int r;
  *out = NULL;
  if (addrs == NULL || n <= 0) return NIO_EINVAL;
  for (int i = 0; i < n; i++)
    if (addrs[i].len == 0 || addrs[i].len > sizeof addrs[i].ss)
      return NIO_EINVAL;
  if ((r = nio__conn_detached(e, cb, udata, &c)) < 0) return r;
  if ((r = nio__conn_dial_list(c, addrs, n, bind)) < 0) {
    /* The sweep closes the socket, if any, and frees c. */
    nio__conn_close(c, 0);
    return r;
  }
  *out = c;
  return 0;
}

int nio__conn_connect(nio_engine *e, const nio_addr *addr, const nio_addr *bind,
                      nio_conn_cb cb, void *udata, nio_conn **out) {
  *out = NULL;
  if (addr == NULL) return NIO_EINVAL;
  return nio__conn_connect_list(e, addr, 1, bind, cb, udata, out);
}

int nio__conn_successor(nio_conn *pc, nio_conn **out) {
  conn *c = (conn *)pc, *n;
  nio_engine *e = c->e;
  *out = NULL;
  if (c->pub.closing || c->caf) return NIO_ECLOSED;
  if ((n = calloc(1, sizeof *n)) == NULL) return NIO_ENOMEM;
  /* The slot, its id and its outside view go over; c closes as usual but
  ** leaves them be. Sends queued in the inbox for the id reach n. */
  conn_init(n, e, NIO_BAD_SOCK);
  n->slot = c->slot;
  n->pub.id = c->pub.id;
  n->xs = c->xs;
  n->max_output = c->max_output;
  n->pub.cb = c->pub.cb;
  n->pub.udata = c->pub.udata;
  e->slots[c->slot].c = n;
  c->moved = 1;
  /* Never connected: nothing of its output went anywhere (no send was
  ** ever submitted), so all of it goes on with the id. Otherwise what is
  ** left may be the rest of a message the peer got part of: dropped. */
  if (!c->connected && c->qhead) {
    n->qhead = c->qhead;
    n->qtail = c->qtail;
    n->pub.queued = c->pub.queued;
    c->qhead = c->qtail = NULL;
    c->pub.queued = 0;
  }
  nio__conn_close(pc, 0);
  /* A failed stream refused outside senders: the new one takes them. */
  atomic_store_explicit(&n->xs->id, n->pub.id, memory_order_release);
  nio__conn_set_queued(n, n->pub.queued);
  *out = &n->pub;
  return 0;
}

void nio__conn_set_max_output(nio_conn *pc, size_t max) {
  ((conn *)pc)->max_output = max;
}

/* ---- socket queries ------------------------------------------------- */

int nio__conn_getsockname(nio_conn *c, nio_addr *a) {
  if (c->closing) return NIO_ECLOSED;
  return nio__sock_getsockname(c->fd, a);
}

int nio__conn_getpeername(nio_conn *pc, nio_addr *a) {
  conn *c = (conn *)pc;
  int r;
  if (pc->closing) return NIO_ECLOSED;
  r = nio__sock_getpeername(pc->fd, a);
  /* A stream that was connected has no peer any more only because one side
  ** closed or reset it (possibly before its owner accepted it): that is
  ** "closed", not misuse. */
  if (r == NIO_ENOTCONN && c->connected) r = NIO_ECLOSED;
  return r;
}

int nio__conn_quiet(nio_conn *pc) {
  conn *c = (conn *)pc;
  if (pc->closing || pc->err || pc->eof || pc->shut || !c->connected ||
      c->caf || pc->wpos != pc->rpos)
    return 0;
  /* Bytes a receive armed in the kernel took off the socket are not in
  ** it any more: the port is asked first. */
  if (nio__port_pending(c->e->port, &c->rreq)) return 0;
  return nio__sock_readable(pc->fd) == 0;
}

int nio__conn_setopt(nio_conn *c, const char *name, int value) {
  if (c->closing) return NIO_ECLOSED;
  if (name == NULL) return NIO_EINVAL;
  return nio__sock_setopt(c->fd, name, value);
}
