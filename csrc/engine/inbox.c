/*
** inbox.c: messages from any thread to the worker -- calls, sends to a
** connection (nio_send) and posts (nio_post) -- in one bounded queue per
** engine, woken through the port's post once per batch.
**
** The queue is a byte vector of records under one lock. A small send is
** copied into its record, so it costs the sender no allocation and the
** worker no free; calls, posts and large sends are records that point to
** an nio_msg. The worker swaps the whole vector for its spare one and
** delivers from it, up to INBOX_BATCH records per loop turn.
**
** Order: one queue, so messages from one thread are delivered in the
** order they were sent, whatever their kinds. Bounds: the bytes waiting in
** the inbox (inbox_limit), the bytes waiting for one connection (its send
** limit, counting its output queue too), the posts not yet freed by their
** owner (post_limit). A full bound answers NIO_EBUSY at once; nothing here
** ever blocks a sender.
*/
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include "internal.h"

/* Sends at least this large travel as an nio_msg, which the output queue
** then references instead of copying (the message already is a private
** copy); smaller ones are copied into the vector, then into the queue. */
#define INBOX_REF_MIN 4096
/* Records delivered per loop turn at most: timers and I/O get their turn
** in between, yet a flood is sent in large pieces (each connection's
** share of a batch goes out as one send). */
#define INBOX_BATCH 65536
/* A vector larger than INBOX_KEEP goes back to the allocator at its next
** delivery once no batch has used an eighth of it for INBOX_KEEP_NS. A flood's
** batches vary widely in size; freeing a vector at the first small one
** made the senders grow the next from nothing, every page a fresh one to
** fault in (thousands of page faults a second, a third of the throughput
** with two senders on one CPU). */
#define INBOX_KEEP ((size_t)256 << 10)
#define INBOX_KEEP_NS 1000000000u

enum { REC_SEND = 1, REC_MSG = 2 };

/* A record: this header, then the payload (REC_SEND) or an nio_msg
** pointer (REC_MSG), padded to 8 bytes. */
typedef struct nio_rec {
  uint64_t id;  /* REC_SEND: the target connection */
  uint32_t len; /* REC_SEND: payload bytes */
  uint32_t type;
} nio_rec;

#define REC_SIZE(payload) (sizeof(nio_rec) + (((payload) + 7) & ~(size_t)7))
/* The size of the record at h, for the walks that read the vector. */
static inline size_t rec_size(const nio_rec *h) {
  return h->type == REC_SEND ? REC_SIZE(h->len) : REC_SIZE(sizeof(nio_msg *));
}

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

/* Room for n more bytes in b (under the lock: vectors keep their capacity
** across swaps, so this rarely allocates). */
static int ibuf_reserve(nio_ibuf *b, size_t n) {
  size_t cap;
  char *p;
  if (b->cap - b->len >= n) return 0;
  cap = b->cap ? b->cap : 4096;
  while (cap - b->len < n) {
    if (cap > SIZE_MAX / 2) return NIO_ENOMEM;
    cap *= 2;
  }
  if ((p = realloc(b->p, cap)) == NULL) return NIO_ENOMEM;
  b->p = p;
  b->cap = cap;
  return 0;
}

/*
** Append a record: a send of len bytes at p, or (m != NULL) a pointer to
** m. Refused when the inbox is closed or full; an empty inbox takes any
** one message, so one larger than the limit still passes alone. Inlined
** into the small sends' path (m NULL: its message branches fold away); the
** other callers share inbox_push.
*/
static NIO_ALWAYS_INLINE int inbox_push_inline(nio_engine *e, uint64_t id,
                                               const void *p, size_t len,
                                               nio_msg *m, nio_xslot *xs) {
  size_t rec = m ? REC_SIZE(sizeof m) : REC_SIZE(len);
  size_t cost = rec + (m ? m->size : 0), waiting = 0;
  nio_port *port = NULL;
  nio_rec *h;
  int r = 0;
  nio__mutex_lock(&e->mu);
  /* A send counts against its connection: the bytes already waiting for
  ** it (here and in its output queue) must be below its limit. The count
  ** changes only under this lock, so of senders racing for the last room
  ** one passes. */
  if (xs) waiting = atomic_load_explicit(&xs->inbox, memory_order_relaxed);
  if (e->iclosed)
    r = NIO_ECLOSED;
  else if (xs &&
           waiting + atomic_load_explicit(&xs->queued, memory_order_acquire) >=
               atomic_load_explicit(&xs->limit, memory_order_relaxed))
    r = NIO_EBUSY;
  else if (e->ibytes > 0 && e->ibytes + cost > e->inbox_limit &&
           !(m && m->type == NIO_MSG_CALL))
    r = NIO_EBUSY; /* calls are the engine's own: never refused as full */
  else
    r = ibuf_reserve(&e->in, rec);
  if (r < 0) {
    nio__mutex_unlock(&e->mu);
    return r;
  }
  h = (nio_rec *)(e->in.p + e->in.len);
  h->id = id;
  h->len = m ? 0 : (uint32_t)len;
  h->type = m ? REC_MSG : REC_SEND;
  if (m)
    memcpy(h + 1, &m, sizeof m);
  else if (len)
    memcpy(h + 1, p, len);
  e->in.len += rec;
  e->ibytes += cost;
  if (xs)
    atomic_store_explicit(&xs->inbox, waiting + len, memory_order_relaxed);
  /* One wake-up per batch: the worker clears wake_pending before it takes
  ** the vector, so records waiting mean wake_pending is set (also before
  ** the port exists: the worker's first turn then looks). The post itself
  ** is made after the unlock; `posting` keeps the port open until then. */
  if (!atomic_load_explicit(&e->wake_pending, memory_order_relaxed) &&
      !atomic_exchange(&e->wake_pending, 1) &&
      (port = atomic_load(&e->wake_port)) != NULL)
    atomic_fetch_add(&e->posting, 1);
  nio__mutex_unlock(&e->mu);
  if (port) {
    nio__port_post(port);
    atomic_fetch_sub(&e->posting, 1);
  }
  return 0;
}

static int inbox_push(nio_engine *e, uint64_t id, const void *p, size_t len,
                      nio_msg *m, nio_xslot *xs) {
  return inbox_push_inline(e, id, p, len, m, xs);
}

/* ---- calls ------------------------------------------------------------ */

int nio__engine_call(nio_engine *e, nio_call_fn fn, void *arg) {
  nio_msg *m;
  int r;
  if (e == NULL || fn == NULL) return NIO_EINVAL;
  if ((m = msg_new(NIO_MSG_CALL, 0)) == NULL) return NIO_ENOMEM;
  m->size = 0; /* calls count nothing against the limits */
  m->u.call.fn = fn;
  m->u.call.arg = arg;
  if ((r = inbox_push(e, 0, NULL, 0, m, NULL)) < 0) free(m);
  return r;
}

/* ---- sends ------------------------------------------------------------ */

static void send_ref_free(void *ud, const void *p, size_t len) {
  (void)p;
  (void)len;
  free(ud);
}

/* Sends accepted before any close after flush go out with the rest; a
** connection gone since has them counted as dropped. Its slot's inbox
** count is settled at the end of the batch (an over-count meanwhile only
** refuses senders sooner). Inlined into the batch loop for the small
** sends (m NULL), which a flood delivers per message. */
static NIO_ALWAYS_INLINE void deliver_send(nio_engine *e, uint64_t id,
                                           const char *p, size_t len,
                                           nio_msg *m) {
  conn *c = nio__conn_of(e, id);
  nio_xslot *xs = c ? c->xs : nio__xslot(e, NIO_ID_SLOT(id));
  int r = NIO_ECLOSED;
  if (c == NULL) {
    free(m);
  } else if (m) {
    r = nio__conn_write_accepted(c, m->data, len, send_ref_free, m);
  } else if ((r = nio__conn_write_tail(c, p, len)) < 0) {
    r = nio__conn_write_accepted(c, p, len, NULL, NULL);
  }
  if (r < 0) e->stats.outside_dropped += len;
  if (xs) {
    if (xs->wsub == 0) {
      xs->wnext = e->touched;
      e->touched = xs;
    }
    xs->wsub += len;
  }
}

/* After the queued mirrors were updated by the writes: a sender that sees
** bytes leave the inbox sees them in the queue (until then it counts them
** twice, which only refuses sooner). */
static void settle_touched(nio_engine *e) {
  nio_xslot *xs = e->touched;
  if (xs == NULL) return;
  nio__mutex_lock(&e->mu);
  for (; xs; xs = xs->wnext) {
    atomic_store_explicit(
        &xs->inbox,
        atomic_load_explicit(&xs->inbox, memory_order_relaxed) - xs->wsub,
        memory_order_relaxed);
    xs->wsub = 0;
  }
  nio__mutex_unlock(&e->mu);
  e->touched = NULL;
}

/* The fast path: the engine's own thread writes straight to the output
** queue (nothing of this thread can be waiting in the inbox). */
static int send_local(nio_engine *e, uint64_t id, const void *p, size_t len) {
  nio_conn *c = nio__conn_get(e, id);
  nio_xslot *xs;
  int r;
  if (c == NULL) return NIO_ECLOSED;
  xs = ((conn *)c)->xs;
  if (atomic_load_explicit(&xs->id, memory_order_relaxed) != id)
    return NIO_ECLOSED; /* closed by its owner, flushing, or failed */
  if (len == 0) return 0;
  if (c->queued + atomic_load_explicit(&xs->inbox, memory_order_acquire) >=
      atomic_load_explicit(&xs->limit, memory_order_relaxed))
    return NIO_EBUSY;
  r = nio__conn_write(c, p, len, NULL, NULL);
  /* It can no longer send (closed by either side): no error of its own. */
  return r < 0 && r != NIO_ENOMEM ? NIO_ECLOSED : r;
}

static int send_remote(nio_engine *e, uint64_t id, const void *p, size_t len) {
  nio_xslot *xs = nio__xslot(e, NIO_ID_SLOT(id));
  nio_msg *m = NULL;
  int r;
  if (xs == NULL || atomic_load_explicit(&xs->id, memory_order_acquire) != id)
    return NIO_ECLOSED;
  if (len == 0) return 0;
  /* The small send's push is inlined here without its message branches:
  ** a flood of small sends takes it per message. */
  if (len < INBOX_REF_MIN) return inbox_push_inline(e, id, p, len, NULL, xs);
  if ((m = msg_new(NIO_MSG_SEND, len)) == NULL) return NIO_ENOMEM;
  m->u.id = id;
  memcpy(m->data, p, len);
  if ((r = inbox_push(e, id, p, len, m, xs)) < 0) free(m);
  return r;
}

/*
** Each sending thread keeps a reference to the engine it last sent to, so
** that a send costs no registry lookup. The reference goes when the thread
** sends to another engine, or ends (a thread-specific destructor). An
** engine that ended meanwhile answers NIO_ECLOSED as it should: its inbox
** is closed and its connections are gone.
*/
typedef struct send_cache {
  uint64_t key; /* the id's index and epoch bits; 0: empty */
  nio_engine *e;
  int hooked; /* the destructor is set up for this thread */
} send_cache;

static _Thread_local send_cache send_tls NIO_TLS_MODEL;
static atomic_flag send_key_lock = ATOMIC_FLAG_INIT;
static nio_tls_key send_key;
static int send_key_state; /* 0 not made, 1 made, -1 failed */

static void send_cache_drop(void *p) {
  send_cache *c = p;
  nio_engine *e = c->e;
  c->e = NULL;
  c->key = 0;
  if (e) nio__engine_unref(e);
}

/* The engine for id from the registry, which then replaces the thread's
** cached one (nio_send looked in the cache first); NULL if none. */
static nio_engine *send_engine(uint64_t id) {
  send_cache *c = &send_tls;
  uint64_t key = id >> NIO_ID_INDEX_SHIFT;
  nio_engine *e;
  if ((e = nio__engine_acquire(id)) == NULL) return NULL;
  if (!c->hooked) {
    while (atomic_flag_test_and_set(&send_key_lock))
      ;
    if (send_key_state == 0)
      send_key_state =
          nio__tls_key_new(&send_key, send_cache_drop) == 0 ? 1 : -1;
    atomic_flag_clear(&send_key_lock);
    if (send_key_state != 1) return e; /* uncached: the caller drops it */
    nio__tls_set(send_key, c);
    c->hooked = 1;
  }
  send_cache_drop(c);
  c->e = e;
  c->key = key;
  return e;
}

/* Every nio_send but the usual outside one (below): the engine's own
** thread, a first send, an engine not cached. */
static NIO_NOINLINE int send_other(uint64_t id, const void *data, size_t len) {
  nio_engine *e = nio__engine_current();
  int r;
  if (e != NULL && NIO_ID_OF(e, id)) return send_local(e, id, data, len);
  if (id >> 63 || NIO_ID_INDEX(id) == 0) return NIO_ECLOSED;
  if ((e = send_engine(id)) == NULL) return NIO_ECLOSED;
  r = send_remote(e, id, data, len);
  if (e != send_tls.e) nio__engine_unref(e);
  return r;
}

int nio_send(uint64_t id, const void *data, size_t len) {
  const send_cache *c = &send_tls;
  if (data == NULL && len > 0) return NIO_EINVAL;
  /* The usual case: an outside thread sending to the engine it sent to
  ** last. The key is the id's index and epoch bits, so a hit also says
  ** the id is well formed; and a cached engine is never the calling
  ** thread's own (its worker sends to its own ids locally, never
  ** through the cache). */
  if (c->key == id >> NIO_ID_INDEX_SHIFT && c->e != NULL)
    return send_remote(c->e, id, data, len);
  return send_other(id, data, len);
}

/* ---- posts ------------------------------------------------------------ */

int nio__engine_post(nio_engine *e, int kind, const void *p, size_t len) {
  nio_msg *m;
  size_t before;
  int r;
  if (e == NULL || (p == NULL && len > 0)) return NIO_EINVAL;
  if (atomic_load(&e->posts_closed)) return NIO_ECLOSED;
  if ((m = msg_new(NIO_MSG_POST, len)) == NULL) return NIO_ENOMEM;
  m->kind = (uint8_t)kind;
  if (len) memcpy(m->data, p, len);
  /* Counted until the owner frees it: a task that never receives cannot
  ** make posts pile up. Any one post passes when none is waiting. */
  before = atomic_fetch_add_explicit(&e->posted, m->size, memory_order_acq_rel);
  if (before > 0 && before + m->size > e->post_limit) {
    r = NIO_EBUSY;
  } else if ((r = inbox_push(e, 0, NULL, 0, m, NULL)) == 0) {
    return 0;
  }
  atomic_fetch_sub_explicit(&e->posted, m->size, memory_order_acq_rel);
  free(m);
  return r;
}

void nio__engine_close_posts(nio_engine *e) {
  atomic_store(&e->posts_closed, 1);
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

nio_msg **nio__msg_next(nio_msg *m) {
  return &m->next;
}

void nio__msg_free(nio_engine *e, nio_msg *m) {
  if (m == NULL) return;
  atomic_fetch_sub_explicit(&e->posted, m->size, memory_order_acq_rel);
  free(m);
}

/* ---- the worker's side ------------------------------------------------ */

static void deliver_msg(nio_engine *e, nio_msg *m) {
  switch (m->type) {
  case NIO_MSG_CALL:
    m->u.call.fn(e, m->u.call.arg);
    free(m);
    break;
  case NIO_MSG_SEND:
    deliver_send(e, m->u.id, NULL, m->len, m);
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

/* Prefetching while a large batch is delivered: the records were written
** by the senders a scheduler slice ago (out of the cache by now), and each
** one names one of many connections. The record INBOX_AHEAD places ahead
** has its connection's first cache lines fetched, the stream further
** ahead its bytes. */
#define INBOX_AHEAD 4
#define INBOX_STREAM_AHEAD 1024

/* The offset k records after off (or end). */
static size_t rec_skip(const char *base, size_t off, size_t end, int k) {
  for (; k > 0 && off < end; k--)
    off += rec_size((const nio_rec *)(base + off));
  return off;
}

static inline void conn_prefetch(nio_engine *e, uint64_t id) {
  uint32_t s = NIO_ID_SLOT(id);
  const char *c = s < e->nslots ? (const char *)e->slots[s].c : NULL;
  if (c) {
    /* Its bytes up to wreq's flags (struct conn puts a write's fields
    ** there), wherever malloc placed it within a cache line. */
    NIO_PREFETCH(c);
    NIO_PREFETCH(c + 64);
    NIO_PREFETCH(c + 128);
    NIO_PREFETCH(c + offsetof(conn, wreq) + sizeof(uint64_t));
  }
}

size_t nio__inbox_kept(nio_engine *e) {
  size_t n;
  nio__mutex_lock(&e->mu);
  n = e->in.cap;
  nio__mutex_unlock(&e->mu);
  return n + e->cur.cap;
}

void nio__inbox_run(nio_engine *e) {
  int n = 0;
  if (e->coff >= e->cur.len) {
    nio_ibuf t;
    /* Nothing was queued since the last look: no lock taken (this runs at
    ** every loop turn). */
    if (!atomic_exchange(&e->wake_pending, 0)) return;
    t = e->cur;
    t.len = 0;
    nio__mutex_lock(&e->mu);
    e->cur = e->in;
    e->in = t;
    e->ibytes = 0;
    nio__mutex_unlock(&e->mu);
    e->coff = 0;
  }
  /* The batch's bounds in locals: a small send delivered makes no call
  ** that could change them, so they stay in registers; after any other
  ** message they are read again. */
  {
    const char *base = e->cur.p;
    size_t off = e->coff, end = e->cur.len;
    size_t ahead = rec_skip(base, off, end, INBOX_AHEAD);
    while (off < end && n++ < INBOX_BATCH) {
      const nio_rec *h = (const nio_rec *)(base + off);
      if (ahead < end) {
        const nio_rec *a = (const nio_rec *)(base + ahead);
        NIO_PREFETCH(base + ahead + INBOX_STREAM_AHEAD);
        if (a->type == REC_SEND) conn_prefetch(e, a->id);
        ahead += rec_size(a);
      }
      off += rec_size(h);
      if (h->type == REC_SEND) {
        deliver_send(e, h->id, (const char *)(h + 1), h->len, NULL);
      } else {
        nio_msg *m;
        memcpy(&m, h + 1, sizeof m);
        e->coff = off;
        deliver_msg(e, m);
        /* A call may have closed the inbox (the batch dropped). */
        base = e->cur.p;
        off = e->coff;
        end = e->cur.len;
        ahead = rec_skip(base, off, end, INBOX_AHEAD);
      }
    }
    e->coff = off;
  }
  settle_touched(e);
  if (e->coff < e->cur.len) {
    /* More than a batch: the next wait must not block. */
    if (e->port) nio__port_post(e->port);
    return;
  }
  /* A large vector is kept while batches use it (a flood), and goes back
  ** to the allocator at a delivery once they have used a small part of it
  ** for a while (each of the two vectors comes here in turn). */
  if (e->cur.cap > INBOX_KEEP) {
    if (e->cur.len >= e->cur.cap / 8) {
      e->ifull_ns = e->now;
    } else if (e->now - e->ifull_ns > INBOX_KEEP_NS) {
      free(e->cur.p);
      e->cur.p = NULL;
      e->cur.cap = 0;
    }
  }
  e->coff = e->cur.len = 0;
}

static int inbox_waiting(nio_engine *e) {
  int r;
  if (e->coff < e->cur.len) return 1;
  nio__mutex_lock(&e->mu);
  r = e->in.len > 0;
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
    while (inbox_waiting(e)) {
      if (e->coff >= e->cur.len) atomic_store(&e->wake_pending, 1);
      nio__inbox_run(e);
    }
}

/* Free the records of a vector from off on (nothing delivered them). */
static void ibuf_drop(nio_engine *e, nio_ibuf *b, size_t off) {
  while (off < b->len) {
    nio_rec *h = (nio_rec *)(b->p + off);
    off += rec_size(h);
    if (h->type == REC_SEND) {
      e->stats.outside_dropped += h->len;
    } else {
      nio_msg *m;
      memcpy(&m, h + 1, sizeof m);
      if (m->type == NIO_MSG_SEND) e->stats.outside_dropped += m->len;
      if (m->type == NIO_MSG_POST)
        nio__msg_free(e, m);
      else
        free(m);
    }
  }
  free(b->p);
  b->p = NULL;
  b->len = b->cap = 0;
}

void nio__inbox_free(nio_engine *e) {
  ibuf_drop(e, &e->cur, e->coff);
  ibuf_drop(e, &e->in, 0);
  e->coff = 0;
}
