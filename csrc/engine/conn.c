/*
** conn.c: connections -- the slot table and its generation-tagged ids, the
** input buffer, the output queue, the receive and send requests, connect,
** close and close-after-flush.
**
** Receiving: one multishot receive is kept armed while the input buffer
** holds fewer than `want` bytes and the stream is healthy, so a message
** costs no submission (a backend may treat multishot as single-shot: a
** final completion with data re-arms it). When input passes `want` the
** receive is canceled (rpaused) and re-armed once the owner consumed below
** `want`. Each arm carries the room left under `want` as its limit, so the
** completions a backend had on their way when it was canceled add at most
** one receive buffer: input stays within want + one buffer. The port owns
*receive buffers (uring: a provided-buffer ring;
** epoll: one buffer for the whole port), so an idle connection holds none;
** the bytes are copied into the input buffer, which goes back to the
** engine's pool as soon as the owner consumed all of it. A large receive
** into an empty input is not copied: the port lends its buffer (uring),
** until the owner consumed it or more input arrives.
**
** Sending: a queue of chunks; small writes are copied into a tail chunk
** (ping-pong messages coalesce), large ones referenced. One vectored send
** is in flight at a time, over at most CONN_IOV chunks.
*/
#include <stdlib.h>
#include <string.h>
#include "internal.h"
#include "../util/log.h"

#define CONN_WANT (64u * 1024)
#define CONN_LOWAT ((size_t)256 * 1024)
/* Writes below this size are copied (and coalesced), larger referenced. */
#define CONN_COPY_MAX 512
/* A copy chunk's allocation: its header and data together. */
#define CONN_CHUNK_ALLOC 2048
#define CONN_IOV 64
/* The most bytes one send request carries: far below the port's INT_MAX,
** so that a huge string is sent (and its progress counted) in pieces. */
#define CONN_SEND_MAX ((size_t)16 << 20)
#define CONN_INPUT_MIN 512
/* Receives of at least this size into an empty input borrow the port's
** buffer instead of being copied (smaller ones are cheaper to copy than
** to hold a 64 KiB port buffer for). */
#define CONN_LEND_MIN 2048
/* Buffers of 512 B << k (k < NIO_POOL_CLASSES) are kept in the engine's
** pools, up to this many bytes in all. Under AddressSanitizer nothing is
** kept, so a use after free is still caught. */
#define CONN_POOL_MIN_SHIFT 9
#ifndef CONN_POOL_BYTES
#if defined(__SANITIZE_ADDRESS__)
#define CONN_POOL_BYTES 0
#else
#define CONN_POOL_BYTES ((size_t)4 << 20)
#endif
#endif

static void conn_on_recv(nio_req *req, int res, const char *data,
                         unsigned flags);
static void conn_on_send(nio_req *req, int res, const char *data,
                         unsigned flags);
static void conn_on_connect(nio_req *req, int res, const char *data,
                            unsigned flags);
static void conn_recv_kick(conn *c);

/* ---- block pools ---------------------------------------------------- */

/* The size buf_get() allocates for a request of n bytes: the next size
** class, or n itself above the classes. */
static size_t buf_size(size_t n) {
  size_t sz = (size_t)1 << CONN_POOL_MIN_SHIFT;
  if (n <= sz) return sz;
  if (n > sz << (NIO_POOL_CLASSES - 1)) return n;
  while (sz < n) sz <<= 1;
  return sz;
}

/* The pool of a block of size sz, or -1 when sz is not a class size. */
static int buf_class(size_t sz) {
  int k = 0;
  if (sz < (size_t)1 << CONN_POOL_MIN_SHIFT || (sz & (sz - 1)) != 0) return -1;
  for (sz >>= CONN_POOL_MIN_SHIFT; sz > 1; sz >>= 1) k++;
  return k < NIO_POOL_CLASSES ? k : -1;
}

/* A block of buf_size(n) bytes. */
static void *buf_get(nio_engine *e, size_t n) {
  size_t sz = buf_size(n);
  int k = buf_class(sz);
  void *b;
  if (k < 0 || (b = e->pools[k].head) == NULL) return malloc(sz);
  e->pools[k].head = *(void **)b;
  e->pooled -= sz;
  return b;
}

/* Give back a block of sz bytes (from buf_get, or any malloc'ed block). */
static void buf_put(nio_engine *e, void *b, size_t sz) {
  int k = buf_class(sz);
  if (b == NULL) return;
  if (k < 0 || e->pooled + sz > CONN_POOL_BYTES) {
    free(b);
    return;
  }
  *(void **)b = e->pools[k].head;
  e->pools[k].head = b;
  e->pooled += sz;
}

void nio__conns_free_pools(nio_engine *e) {
  void *b;
  for (int k = 0; k < NIO_POOL_CLASSES; k++)
    while ((b = e->pools[k].head) != NULL) {
      e->pools[k].head = *(void **)b;
      free(b);
    }
  e->pooled = 0;
}

/* Copy chunks are blocks of buf_size(); referenced chunks (cap 0) are
** malloc'ed headers. */
static void chunk_free(nio_engine *e, nio_chunk *ch) {
  if (ch->cap > 0)
    buf_put(e, ch, sizeof *ch + ch->cap);
  else
    free(ch);
}

/* ---- slot table ----------------------------------------------------- */

/* Make sure the outside view covers slots [0, n): allocate the blocks
** missing and publish them for senders. */
static int xslots_grow(nio_engine *e, uint32_t n) {
  for (uint32_t b = 0; b < (n + NIO_XS_BLOCK - 1) / NIO_XS_BLOCK; b++) {
    nio_xslot *blk;
    if (atomic_load_explicit(&e->xblocks[b], memory_order_relaxed)) continue;
    if ((blk = calloc(NIO_XS_BLOCK, sizeof *blk)) == NULL) return NIO_ENOMEM;
    atomic_store_explicit(&e->xblocks[b], blk, memory_order_release);
  }
  return 0;
}

nio_xslot *nio__xslot(nio_engine *e, uint32_t slot) {
  nio_xslot *blk;
  if (slot >= NIO_ID_MAX_SLOTS) return NULL;
  blk = atomic_load_explicit(&e->xblocks[slot >> NIO_XS_BLOCK_BITS],
                             memory_order_acquire);
  return blk ? &blk[slot & (NIO_XS_BLOCK - 1)] : NULL;
}

void nio__xslots_free(nio_engine *e) {
  for (uint32_t b = 0; b < NIO_XS_BLOCKS; b++) {
    nio_xslot *blk = atomic_load_explicit(&e->xblocks[b], memory_order_relaxed);
    if (blk == NULL) break; /* blocks are allocated in order */
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
    if (xslots_grow(e, n) < 0) return NIO_ENOMEM;
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

/* The slot is reusable at once: the bumped generation keeps the old id
** from matching its next tenant. */
static void slot_release(nio_engine *e, conn *c) {
  nio_slot *s = &e->slots[c->slot];
  s->c = NULL;
  s->gen = (s->gen + 1) & NIO_ID_GEN_MASK;
  if (s->gen == 0) s->gen = 1;
  s->next = e->free_slot;
  e->free_slot = c->slot + 1;
}

/* Outside senders are refused from now on (the owner closed c). */
static void conn_refuse_outside(conn *c) {
  atomic_store_explicit(&c->xs->id, 0, memory_order_release);
}

/* Every change of the queued output goes through here, so the mirror
** outside senders read stays exact. */
static inline void conn_set_queued(conn *c, size_t queued) {
  c->pub.queued = queued;
  atomic_store_explicit(&c->xs->queued, queued, memory_order_release);
}

/* The stream failed (first error wins): it can never send again, so
** outside senders hear "closed" from now on, not after the owner's close. */
static void conn_set_err(conn *c, int err) {
  if (c->pub.err) return;
  c->pub.err = err;
  /* A connect that failed keeps taking bytes: its owner may hand them to
  ** a successor (a reconnecting client), or they are counted at close. */
  if (!c->pub.closing && c->connected) conn_refuse_outside(c);
}

nio_conn *nio__conn_get(nio_engine *e, uint64_t id) {
  uint32_t s = NIO_ID_SLOT(id);
  if (e == NULL || !NIO_ID_OF(e, id) || s >= e->nslots) return NULL;
  if (e->slots[s].c == NULL || e->slots[s].gen != NIO_ID_GEN(id)) return NULL;
  if (id != e->slots[s].c->pub.id) return NULL; /* stray high bits */
  return &e->slots[s].c->pub;
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
  c->rreq.cb = conn_on_recv;
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
  conn_recv_kick(c);
  return 0;
}

/* Owner callbacks. None after close; a connection forgotten by its owner
** (close-after-flush) has no owner, and any failure ends it. */
static void conn_fire(conn *c, int events) {
  if (c->pub.closing) return;
  if (c->caf) {
    if (c->pub.err) nio__conn_close(&c->pub, 0);
    return;
  }
  if (c->pub.cb) c->pub.cb(&c->pub, events);
}

void nio__conn_deliver(conn *c, int events) {
  conn_fire(c, events);
}

static void conn_free_input(conn *c) {
  if (c->lent)
    nio__port_release(c->e->port, c->pub.in);
  else
    buf_put(c->e, c->pub.in, c->pub.cap);
  c->lent = 0;
  c->pub.in = NULL;
  c->pub.rpos = c->pub.wpos = c->pub.cap = 0;
}

/* Call the free callbacks of every queued chunk. Only when no send names
** them: no send in flight, or after the connection's final completions. */
static void conn_drop_queue(conn *c) {
  nio_chunk *ch = c->qhead, *next;
  for (; ch; ch = next) {
    next = ch->next;
    if (ch->free) ch->free(ch->ud, ch->p, ch->len);
    chunk_free(c->e, ch);
  }
  c->qhead = c->qtail = NULL;
  free(c->iov);
  c->iov = NULL;
}

static void conn_caf_unlink(conn *c) {
  nio_engine *e = c->e;
  if (c->fprev)
    c->fprev->fnext = c->fnext;
  else if (e->fhead == c)
    e->fhead = c->fnext;
  if (c->fnext)
    c->fnext->fprev = c->fprev;
  else if (e->ftail == c)
    e->ftail = c->fprev;
  c->fprev = c->fnext = NULL;
}

static void conn_unpend(conn *c) {
  listener *l = c->u.pl;
  conn **pp = &l->phead, *prev = NULL;
  while (*pp && *pp != c) {
    prev = *pp;
    pp = &(*pp)->next;
  }
  if (*pp == c) {
    *pp = c->next;
    if (l->ptail == c) l->ptail = prev;
    l->npending--;
  }
  c->pending = 0;
  c->u.pl = NULL;
  c->next = NULL;
}

void nio__conn_close(nio_conn *pc, int reset) {
  conn *c = (conn *)pc;
  nio_engine *e = c->e;
  if (c->pub.closing) return;
  if (c->pending) conn_unpend(c);
  c->pub.closing = 1;
  c->pub.cb = NULL;
  c->reset = reset != 0;
  e->stats.dropped_bytes += c->pub.queued;
  e->stats.conns--;
  c->pub.queued = 0;
  if (!c->moved) {
    conn_refuse_outside(c);
    conn_set_queued(c, 0);
    slot_release(e, c);
  }
  if (c->caf) conn_caf_unlink(c);
  if (c->rreq.active) nio__port_cancel(e->port, &c->rreq);
  if (c->wreq.active)
    nio__port_cancel(e->port, &c->wreq);
  else
    conn_drop_queue(c);
  conn_free_input(c);
  c->zombie = 1;
  c->next = e->zombies;
  e->zombies = c;
}

/* Free the closed connections whose requests have all completed; their
** sockets are closed here, after the port forgot them. */
void nio__conns_sweep(nio_engine *e) {
  conn **pp = &e->zombies, *c;
  while ((c = *pp) != NULL) {
    if (c->rreq.active || c->wreq.active || c->deferred || c->kickq) {
      pp = &c->next;
      continue;
    }
    *pp = c->next;
    conn_drop_queue(c);
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

int nio__conns_flushing(const nio_engine *e) {
  return e->fhead != NULL;
}

void nio__conns_close_all(nio_engine *e) {
  for (uint32_t s = 0; s < e->nslots; s++)
    if (e->slots[s].c) nio__conn_close(&e->slots[s].c->pub, 0);
}

/* ---- receiving ------------------------------------------------------ */

static void conn_recv_kick(conn *c) {
  int r;
  if (c->rreq.active || !c->connected || c->pending || c->pub.eof ||
      c->pub.err || c->pub.closing)
    return;
  if (!c->caf && c->pub.wpos - c->pub.rpos >= c->want) return;
  c->rreq.u.recv.max = 0;
  /* The port stops by itself at the room left under want, so what arrives
  ** after the cancel of a pause is bounded too. A connection closed after
  ** flush reads only to discard: no limit. */
  c->rreq.u.recv.limit = c->caf ? 0 : c->want - (c->pub.wpos - c->pub.rpos);
  if ((r = nio__port_submit(c->e->port, &c->rreq)) < 0) {
    conn_set_err(c, r);
    nio__engine_defer(c, NIO_EV_READ);
  }
}

void nio__conn_start(conn *c) {
  conn_recv_kick(c);
}

/* Append n bytes to the input buffer, compacting or growing it (doubling,
** so a large recv(n) costs O(log n) reallocations). Its capacity is always
** a buf_size(), so it can go back to the pools. */
static int conn_append(conn *c, const char *data, size_t n) {
  nio_conn *p = &c->pub;
  size_t avail = p->wpos - p->rpos, need = avail + n, cap;
  if (need > UINT32_MAX) return NIO_ENOMEM;
  if (c->lent) {
    /* Into a buffer of our own; the port gets its own back at once. */
    char *in = buf_get(c->e, need);
    if (in == NULL) return NIO_ENOMEM;
    memcpy(in, p->in + p->rpos, avail);
    nio__port_release(c->e->port, p->in);
    c->lent = 0;
    p->in = in;
    p->cap = (uint32_t)buf_size(need);
    p->rpos = 0;
    p->wpos = (uint32_t)avail;
  }
  if (p->cap - p->wpos < n) {
    if (p->rpos > 0) {
      memmove(p->in, p->in + p->rpos, avail);
      p->rpos = 0;
      p->wpos = (uint32_t)avail;
    }
    if (p->cap < need) {
      char *in;
      cap = p->cap ? p->cap : CONN_INPUT_MIN;
      while (cap < need) cap *= 2;
      if (cap > UINT32_MAX) cap = UINT32_MAX;
      cap = buf_size(cap);
      if ((in = buf_get(c->e, cap)) == NULL) return NIO_ENOMEM;
      if (avail > 0) memcpy(in, p->in, avail);
      buf_put(c->e, p->in, p->cap);
      p->in = in;
      p->cap = (uint32_t)cap;
    }
  }
  memcpy(p->in + p->wpos, data, n);
  p->wpos += (uint32_t)n;
  return 0;
}

/* Take n received bytes: a large receive into an empty input borrows the
** port's buffer, anything else is appended (copied). */
static int conn_take(conn *c, nio_req *req, const char *data, size_t n) {
  if (c->pub.cap == 0 && n >= CONN_LEND_MIN &&
      nio__port_keep(c->e->port, req, data) == 0) {
    c->pub.in = (char *)data;
    c->pub.rpos = 0;
    c->pub.wpos = c->pub.cap = (uint32_t)n;
    c->lent = 1;
    return 0;
  }
  return conn_append(c, data, n);
}

static void conn_on_recv(nio_req *req, int res, const char *data,
                         unsigned flags) {
  conn *c = req->data;
  if (c->pub.closing) return; /* the sweep frees it */
  if (!(flags & NIO_CQE_MORE) && c->rpaused) {
    c->rpaused = 0;
    /* The cancel of a pause won (or the receive ended by itself): receive
    ** again if the owner drained the input meanwhile. */
    if (res == NIO_ECANCELED) {
      conn_recv_kick(c);
      return;
    }
  }
  if (res > 0) {
    c->pub.bytes_in += (uint64_t)res;
    /* A connection nobody owns any more reads only to let its close be a
    ** clean FIN rather than a reset for unread data. */
    if (!c->caf && conn_take(c, req, data, (size_t)res) < 0)
      conn_set_err(c, NIO_ENOMEM);
    if (!(flags & NIO_CQE_MORE)) {
      conn_recv_kick(c);
    } else if (!c->caf && !c->rpaused &&
               (c->pub.err || c->pub.wpos - c->pub.rpos >= c->want)) {
      /* Flow control: stop the multishot receive; consume() re-arms it. */
      c->rpaused = 1;
      nio__port_cancel(c->e->port, &c->rreq);
    }
    if (!c->caf) conn_fire(c, NIO_EV_READ);
  } else if (res == 0) {
    c->pub.eof = 1;
    conn_fire(c, NIO_EV_READ);
  } else {
    /* Only close cancels a receive, and closing returned above. */
    if (res == NIO_ECANCELED) res = NIO_ECLOSED;
    conn_set_err(c, res);
    conn_fire(c, NIO_EV_READ);
  }
}

const char *nio__conn_input(nio_conn *pc, size_t *len) {
  *len = pc->wpos - pc->rpos;
  return pc->in ? pc->in + pc->rpos : "";
}

void nio__conn_consume(nio_conn *pc, size_t n) {
  conn *c = (conn *)pc;
  size_t avail = pc->wpos - pc->rpos;
  if (n > avail) n = avail;
  pc->rpos += (uint32_t)n;
  /* An idle connection holds no input buffer. */
  if (pc->rpos == pc->wpos) conn_free_input(c);
  conn_recv_kick(c);
}

int nio__conn_unread(nio_conn *pc, const void *p, size_t n) {
  conn *c = (conn *)pc;
  size_t avail = pc->wpos - pc->rpos;
  char *in;
  if (n == 0) return 0;
  if (!c->lent && pc->rpos >= n) {
    pc->rpos -= (uint32_t)n;
    memcpy(pc->in + pc->rpos, p, n);
    return 0;
  }
  if (n + avail > UINT32_MAX || (in = buf_get(c->e, n + avail)) == NULL)
    return NIO_ENOMEM;
  memcpy(in, p, n);
  if (avail) memcpy(in + n, pc->in + pc->rpos, avail);
  conn_free_input(c);
  pc->in = in;
  pc->cap = (uint32_t)buf_size(n + avail);
  pc->rpos = 0;
  pc->wpos = (uint32_t)(n + avail);
  return 0;
}

void nio__conn_want(nio_conn *pc, size_t n) {
  conn *c = (conn *)pc;
  if (n == 0) n = 1;
  if (n > UINT32_MAX / 2) n = UINT32_MAX / 2;
  c->want = (uint32_t)n;
  conn_recv_kick(c);
}

/* ---- sending -------------------------------------------------------- */

static void conn_send_failed(conn *c, int err, int deferred) {
  conn_set_err(c, err);
  /* The peer can no longer get them: counted, never silently lost. */
  c->e->stats.dropped_bytes += c->pub.queued;
  conn_drop_queue(c);
  conn_set_queued(c, 0);
  if (deferred)
    nio__engine_defer(c, NIO_EV_WRITE | NIO_EV_READ);
  else
    conn_fire(c, NIO_EV_WRITE | NIO_EV_READ);
}

static void conn_do_shutdown(conn *c) {
  int r;
  if (!c->pub.shut || c->shut_done || c->qhead || c->wreq.active ||
      !c->connected || c->pub.closing)
    return;
  c->shut_done = 1;
  if ((r = nio__sock_shutdown_write(c->pub.fd)) < 0) conn_set_err(c, r);
}

/* Submit the next vectored send if none is in flight. */
static void conn_send_kick(conn *c, int deferred) {
  nio_chunk *ch = c->qhead;
  nio_iov *iov;
  size_t total = 0;
  int n = 0, r;
  if (c->wreq.active || ch == NULL || !c->connected || c->pub.err ||
      c->pub.closing)
    return;
  if (ch->next == NULL) {
    iov = &c->iov1;
  } else {
    if (c->iov == NULL && (c->iov = malloc(CONN_IOV * sizeof *iov)) == NULL) {
      conn_send_failed(c, NIO_ENOMEM, deferred);
      return;
    }
    iov = c->iov;
  }
  for (; ch && n < CONN_IOV && total < CONN_SEND_MAX; ch = ch->next, n++) {
    iov[n].base = (void *)(ch->p + ch->off);
    iov[n].len = ch->len - ch->off;
    if (iov[n].len > CONN_SEND_MAX - total) iov[n].len = CONN_SEND_MAX - total;
    total += iov[n].len;
  }
  c->wreq.op = NIO_OP_SEND;
  c->wreq.cb = conn_on_send;
  c->wreq.u.send.iov = iov;
  c->wreq.u.send.iovcnt = n;
  if ((r = nio__port_submit(c->e->port, &c->wreq)) < 0)
    conn_send_failed(c, r, deferred);
}

static void conn_on_send(nio_req *req, int res, const char *data,
                         unsigned flags) {
  conn *c = req->data;
  size_t before = c->pub.queued, left;
  (void)data;
  (void)flags;
  if (c->pub.closing) return;
  if (res < 0) {
    conn_send_failed(c, res == NIO_ECANCELED ? NIO_ECLOSED : res, 0);
    return;
  }
  /* The tail copy chunk may have grown since the submit; walking by bytes
  ** pops exactly what was sent. */
  left = (size_t)res;
  while (left > 0 && c->qhead) {
    nio_chunk *ch = c->qhead;
    size_t rem = ch->len - ch->off;
    if (left < rem) {
      ch->off += left;
      break;
    }
    left -= rem;
    c->qhead = ch->next;
    if (c->qhead == NULL) c->qtail = NULL;
    if (ch->free) ch->free(ch->ud, ch->p, ch->len);
    chunk_free(c->e, ch);
  }
  c->pub.bytes_out += (uint64_t)res;
  if (c->qhead == NULL) {
    free(c->iov);
    c->iov = NULL;
    conn_set_queued(c, 0);
  } else {
    conn_set_queued(c, before > (size_t)res ? before - (size_t)res : 0);
  }
  conn_send_kick(c, 0);
  conn_do_shutdown(c);
  if (c->pub.closing) return;
  if (c->caf) {
    if (c->qhead == NULL || c->pub.err) nio__conn_close(&c->pub, 0);
    return;
  }
  if (c->pub.queued == 0 || (before > c->lowat && c->pub.queued <= c->lowat))
    conn_fire(c, NIO_EV_WRITE);
}

static nio_chunk *conn_chunk_copy(nio_engine *e, size_t len) {
  size_t sz = CONN_CHUNK_ALLOC;
  nio_chunk *ch;
  if (len > sz - sizeof *ch) sz = buf_size(sizeof *ch + len);
  if ((ch = buf_get(e, sz)) == NULL) return NULL;
  ch->p = ch->data;
  ch->cap = sz - sizeof *ch;
  ch->free = NULL;
  ch->ud = NULL;
  return ch;
}

/* late: bytes accepted from outside before the owner closed c after
** flush; they join the output being flushed. */
static int conn_write(conn *c, const void *p, size_t len, nio_chunk_free freefn,
                      void *ud, int late) {
  nio_chunk *ch, *t = c->qtail;
  int r = 0;
  if (c->pub.closing || (c->caf && !late))
    r = NIO_ECLOSED;
  else if (c->pub.err && c->connected)
    r = c->pub.err;
  else if (c->pub.shut)
    r = NIO_EPIPE;
  if (r == 0 && c->max_output && c->pub.queued + len > c->max_output) {
    /* A reader that does not keep up: the connection is aborted rather
    ** than let its output grow. A send in flight names queued chunks:
    ** the queue goes at its (canceled) completion, else now. */
    conn_set_err(c, NIO_ECONNABORTED);
    c->reset = 1;
    if (c->wreq.active)
      nio__port_cancel(c->e->port, &c->wreq);
    else
      conn_send_failed(c, NIO_ECONNABORTED, 1);
    r = NIO_ECONNABORTED;
  }
  if (r < 0 || len == 0) {
    if (freefn) freefn(ud, p, len);
    return r;
  }
  if (freefn == NULL || len < CONN_COPY_MAX) {
    /* Appending behind bytes in flight is safe: a copy chunk never moves. */
    if (t && t->cap && t->cap - t->len >= len) {
      memcpy(t->data + t->len, p, len);
      t->len += len;
      ch = NULL;
    } else if ((ch = conn_chunk_copy(c->e, len)) != NULL) {
      memcpy(ch->data, p, len);
      ch->len = len;
    } else {
      r = NIO_ENOMEM;
    }
    if (freefn) freefn(ud, p, len);
  } else if ((ch = malloc(sizeof *ch)) != NULL) {
    ch->p = p;
    ch->len = len;
    ch->cap = 0;
    ch->free = freefn;
    ch->ud = ud;
  } else {
    freefn(ud, p, len);
    r = NIO_ENOMEM;
  }
  if (r < 0) return r;
  if (ch) {
    ch->next = NULL;
    ch->off = 0;
    if (t)
      t->next = ch;
    else
      c->qhead = ch;
    c->qtail = ch;
  }
  conn_set_queued(c, c->pub.queued + len);
  /* The send goes with the rest of this turn's output (nio__conns_kick);
  ** one in flight already is followed by the next at its completion. */
  if (!c->kickq && !c->wreq.active) {
    c->kickq = 1;
    c->knext = c->e->kicks;
    c->e->kicks = c;
  }
  return 0;
}

void nio__conns_kick(nio_engine *e) {
  conn *c;
  while ((c = e->kicks) != NULL) {
    e->kicks = c->knext;
    c->knext = NULL;
    c->kickq = 0;
    conn_send_kick(c, 1);
  }
}

int nio__conn_write(nio_conn *pc, const void *p, size_t len,
                    nio_chunk_free freefn, void *ud) {
  return conn_write((conn *)pc, p, len, freefn, ud, 0);
}

int nio__conn_write_accepted(conn *c, const void *p, size_t len,
                             nio_chunk_free freefn, void *ud) {
  return conn_write(c, p, len, freefn, ud, 1);
}

void nio__conn_set_lowat(nio_conn *pc, size_t lowat) {
  ((conn *)pc)->lowat = lowat;
}

int nio__conn_shutdown(nio_conn *pc) {
  conn *c = (conn *)pc;
  if (c->pub.closing) return NIO_ECLOSED;
  if (c->pub.err) return c->pub.err;
  c->pub.shut = 1;
  conn_refuse_outside(c); /* the sending side is closing */
  conn_do_shutdown(c);
  return c->pub.err;
}

/* ---- close after flush ---------------------------------------------- */

static void conn_caf_expire(nio_timer *t) {
  nio_engine *e = t->data;
  conn *c;
  while ((c = e->fhead) != NULL && c->fdue <= e->now)
    nio__conn_close(&c->pub, 0);
  /* Without the timer the rest would wait for their peers forever: their
  ** grace ends now. */
  if (c && nio__timer_start(e, &e->ftimer, c->fdue - e->now, conn_caf_expire))
    while ((c = e->fhead) != NULL) nio__conn_close(&c->pub, 0);
}

void nio__conn_close_after_flush(nio_conn *pc) {
  conn *c = (conn *)pc;
  nio_engine *e = c->e;
  if (c->pub.closing || c->caf) return;
  if (c->pending) conn_unpend(c);
  c->caf = 1;
  c->pub.cb = NULL;
  conn_refuse_outside(c);
  conn_free_input(c);
  if (c->qhead == NULL || c->pub.err) {
    nio__conn_close(pc, 0);
    return;
  }
  /* Bounded even while the engine runs: a peer that never reads cannot
  ** keep a forgotten connection (and its output) forever. The grace is
  ** the same for all, so appending keeps the list ordered by deadline. */
  c->fdue = e->now + e->grace_ns;
  c->fprev = e->ftail;
  c->fnext = NULL;
  if (e->ftail)
    e->ftail->fnext = c;
  else
    e->fhead = c;
  e->ftail = c;
  if (!nio__timer_active(&e->ftimer)) {
    e->ftimer.data = e;
    /* No timer, no bound: close now rather than maybe never. */
    if (nio__timer_start(e, &e->ftimer, e->grace_ns, conn_caf_expire) < 0) {
      nio__conn_close(pc, 0);
      return;
    }
  }
  conn_recv_kick(c);
}

/* ---- connect -------------------------------------------------------- */

static void conn_on_connect(nio_req *req, int res, const char *data,
                            unsigned flags) {
  conn *c = req->data;
  (void)data;
  (void)flags;
  free(c->u.caddr);
  c->u.caddr = NULL;
  c->connecting = 0;
  if (c->pub.closing) return;
  if (res < 0) {
    conn_set_err(c, res == NIO_ECANCELED ? NIO_ECLOSED : res);
    conn_fire(c, NIO_EV_CONNECT);
    return;
  }
  c->connected = 1;
  conn_recv_kick(c);
  conn_send_kick(c, 0);
  conn_do_shutdown(c);
  if (c->caf && (c->qhead == NULL || c->pub.err)) {
    nio__conn_close(&c->pub, 0);
    return;
  }
  conn_fire(c, NIO_EV_CONNECT);
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

int nio__conn_dial(nio_conn *pc, const nio_addr *addr, const nio_addr *bind) {
  conn *c = (conn *)pc;
  nio_engine *e = c->e;
  nio_sock fd;
  int r;
  if (addr == NULL || addr->len == 0 || addr->len > sizeof addr->ss)
    return NIO_EINVAL;
  if (c->pub.closing || c->caf) return NIO_ECLOSED;
  if (c->pub.fd != NIO_BAD_SOCK || c->connecting) return NIO_EISCONN;
  if (e->ending) return NIO_ECLOSED;
  if ((r = nio__sock_tcp(addr->ss.ss_family, &fd)) < 0) return r;
  if (bind && (r = nio__sock_bind_reuse(fd, bind)) < 0) goto fail_close;
  if ((r = nio__port_add(e->port, fd)) < 0) goto fail_close;
  if ((c->u.caddr = malloc(sizeof *addr)) == NULL) {
    r = NIO_ENOMEM;
    goto fail_remove;
  }
  *c->u.caddr = *addr;
  c->pub.fd = c->rreq.fd = c->wreq.fd = fd;
  c->wreq.op = NIO_OP_CONNECT;
  c->wreq.cb = conn_on_connect;
  c->wreq.u.connect.addr = c->u.caddr;
  if ((r = nio__port_submit(e->port, &c->wreq)) < 0) {
    /* The socket stays with c: the sweep closes it with c. */
    free(c->u.caddr);
    c->u.caddr = NULL;
    return r;
  }
  c->connecting = 1;
  return 0;
fail_remove:
  nio__port_remove(e->port, fd);
fail_close:
  nio__sock_close(fd);
  return r;
}

int nio__conn_connect(nio_engine *e, const nio_addr *addr, const nio_addr *bind,
                      nio_conn_cb cb, void *udata, nio_conn **out) {
  nio_conn *c;
  int r;
  *out = NULL;
  if (addr == NULL || addr->len == 0 || addr->len > sizeof addr->ss)
    return NIO_EINVAL;
  if ((r = nio__conn_detached(e, cb, udata, &c)) < 0) return r;
  if ((r = nio__conn_dial(c, addr, bind)) < 0) {
    /* The sweep closes the socket, if any, and frees c. */
    nio__conn_close(c, 0);
    return r;
  }
  *out = c;
  return 0;
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
  conn_set_queued(n, n->pub.queued);
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

int nio__conn_setopt(nio_conn *c, const char *name, int value) {
  if (c->closing) return NIO_ECLOSED;
  if (name == NULL) return NIO_EINVAL;
  return nio__sock_setopt(c->fd, name, value);
}
