/*
** internal.h: the engine's private structures, shared by the files of
** csrc/engine only (engine.c, timer.c, pool.c, conn*.c, listener.c, ...).
** Nothing outside csrc/engine includes this; the contract is engine.h.
*/
#ifndef NIO_ENGINE_INTERNAL_H
#define NIO_ENGINE_INTERNAL_H

#include <stdatomic.h>
#include <string.h>
#include "engine.h"
#include "../util/list.h"

/* For a function whose hot caller must not pay a call (or wants it
** specialized for its constant arguments). */
#if defined(__GNUC__)
#define NIO_ALWAYS_INLINE inline __attribute__((always_inline))
#else
#define NIO_ALWAYS_INLINE inline
#endif
/* For a rare path kept out of its hot caller (fewer registers to save). */
#if defined(__GNUC__)
#define NIO_NOINLINE __attribute__((noinline))
#else
#define NIO_NOINLINE
#endif
/* Fetch the cache line at p ahead of its use (never faults). */
#if defined(__GNUC__)
#define NIO_PREFETCH(p) __builtin_prefetch(p)
#else
#define NIO_PREFETCH(p) ((void)(p))
#endif

typedef struct conn conn;
typedef struct listener listener;
typedef struct nio_resolve_req nio_resolve_req;
typedef struct nio_resolver nio_resolver;
typedef struct conn_tls conn_tls;

/*
** Connection ids: bits 0..21 slot, 22..45 generation, 46..53 engine index,
** 54..62 engine epoch. The id stays positive (a Lua integer) and is never
** 0: engine indexes start at 1. A slot's generation is bumped when its
** connection closes, so an old id never matches the slot's next tenant;
** the epoch (a per-process engine serial) keeps an id of an engine that
** ended from matching the next engine given the same registry index.
*/
#define NIO_ID_SLOT_BITS 22
#define NIO_ID_GEN_BITS 24
#define NIO_ID_INDEX_BITS 8
#define NIO_ID_EPOCH_BITS 9
#define NIO_ID_MAX_SLOTS (1u << NIO_ID_SLOT_BITS)
#define NIO_ID_GEN_MASK ((1u << NIO_ID_GEN_BITS) - 1)
#define NIO_ID_INDEX_MASK ((1u << NIO_ID_INDEX_BITS) - 1)
#define NIO_ID_EPOCH_MASK ((1u << NIO_ID_EPOCH_BITS) - 1)
#define NIO_ID_GEN_SHIFT NIO_ID_SLOT_BITS
#define NIO_ID_INDEX_SHIFT (NIO_ID_GEN_SHIFT + NIO_ID_GEN_BITS)
#define NIO_ID_EPOCH_SHIFT (NIO_ID_INDEX_SHIFT + NIO_ID_INDEX_BITS)
#define NIO_ID_MAKE(epoch, index, gen, slot)                                   \
  (((uint64_t)(epoch) << NIO_ID_EPOCH_SHIFT) |                                 \
   ((uint64_t)(index) << NIO_ID_INDEX_SHIFT) |                                 \
   ((uint64_t)(gen) << NIO_ID_GEN_SHIFT) | (uint64_t)(slot))
#define NIO_ID_EPOCH(id)                                                       \
  ((unsigned)((id) >> NIO_ID_EPOCH_SHIFT) & NIO_ID_EPOCH_MASK)
#define NIO_ID_INDEX(id)                                                       \
  ((unsigned)((id) >> NIO_ID_INDEX_SHIFT) & NIO_ID_INDEX_MASK)
#define NIO_ID_GEN(id) ((uint32_t)((id) >> NIO_ID_GEN_SHIFT) & NIO_ID_GEN_MASK)
#define NIO_ID_SLOT(id) ((uint32_t)(id) & (NIO_ID_MAX_SLOTS - 1))
/* Whether id was made by engine e (it may still name a closed slot). */
#define NIO_ID_OF(e, id)                                                       \
  ((id) >> 63 == 0 && NIO_ID_INDEX(id) == (e)->index &&                        \
   NIO_ID_EPOCH(id) == (e)->epoch)

/*
** What other threads may know of a slot: the outside view that nio_send()
** reads to accept or refuse bytes without touching the worker's state.
** Entries live in blocks of NIO_XS_BLOCK, allocated by the worker as the
** slot table grows and published with a release store; a block never
** moves and is freed only with the engine itself (the last reference).
*/
#define NIO_XS_BLOCK_BITS 10
#define NIO_XS_BLOCK (1u << NIO_XS_BLOCK_BITS)
#define NIO_XS_BLOCKS (NIO_ID_MAX_SLOTS / NIO_XS_BLOCK)
typedef struct nio_xslot {
  /* The id of the connection that takes outside bytes, 0 when none (free
  ** slot, or closed by its owner). Written by the worker only. */
  _Atomic uint64_t id;
  /* Mirror of the connection's queued output (worker writes). */
  _Atomic size_t queued;
  /* Bytes accepted by nio_send() and still in the inbox: changed only
  ** under the engine's inbox lock (senders add, the worker subtracts once
  ** per batch what it moved into the output queue); read anywhere. */
  _Atomic size_t inbox;
  /* The connection's cap on queued + inbox for outside senders. */
  _Atomic size_t limit;
  /* Worker only: inbox bytes delivered in the current batch, subtracted
  ** from `inbox` once per slot at the end of the batch; the slots with
  ** some are linked from the engine's `touched`. */
  size_t wsub;
  struct nio_xslot *wnext;
} nio_xslot;

/* One entry of the slot table. The table is engine-owned and may be
** reallocated: nothing keeps pointers into it, only slot numbers. */
typedef struct nio_slot {
  conn *c;       /* live connection, NULL when free */
  uint32_t gen;  /* generation of the current/next tenant, never 0 */
  uint32_t next; /* free list link (slot + 1; 0 = end) */
} nio_slot;

/*
** A queued output chunk. Copy chunks (cap > 0) hold their bytes in data[]
** and may grow in place (len increases, the buffer never moves) while part
** of them is in flight. Referenced chunks (cap == 0) point at the owner's
** bytes and call free(ud, p, len) once, when sent or dropped. Chunks are
** freed only when no send names them: after the send completion that covers
** them, or by the sweep after the connection's final completions.
*/
typedef struct nio_chunk {
  struct nio_chunk *next;
  const char *p;
  size_t len; /* bytes at p */
  size_t off; /* bytes already sent */
  size_t cap; /* capacity of data[], 0 for a referenced chunk */
  nio_chunk_free free;
  void *ud;
  char data[];
} nio_chunk;

/*
** The addresses a connect tries, in order, one at a time: allocated by
** nio__conn_dial_list, freed when the connect ends (connected, every
** address failed, or its final completion after a close). addrs[i] is
** the one the connect request in flight names.
*/
typedef struct conn_dial {
  int n, i;
  int has_bind; /* bind: the local address each socket binds first */
  nio_addr bind;
  nio_addr addrs[];
} conn_dial;

/*
** The engine-private view of a connection. Allocated by conn.c, freed by
** the sweep (engine turn) once it is closing and neither rreq nor wreq is
** active; the socket is closed at that same point.
*/
struct conn {
  nio_conn pub; /* first: a nio_conn * is a conn * */
  /* What every small write reads or writes (nio__conn_write_tail) follows
  ** pub's queued, up to wreq's active flag: a write touches the struct's
  ** first three cache lines (a flood of outside sends takes it per
  ** message; the inbox prefetches those lines). */
  nio_engine *e;
  nio_chunk *qhead, *qtail;
  nio_xslot *xs;     /* this slot's outside view (stable; see nio_xslot) */
  conn_tls *tls;     /* TLS filter (tls.c), NULL for plain TCP; owned */
  size_t max_output; /* queued output that aborts the connection; 0 none */
  conn *knext;       /* engine's kick list: output to submit this turn */
  uint32_t want;
  uint32_t slot;
  /* Queued output below which NIO_EV_WRITE comes (32 bits: it shares the
  ** word of want and slot, the struct is 8 bytes smaller). */
  uint32_t lowat;
  uint8_t devents; /* deferred events to deliver at the next turn */
  unsigned connecting : 1, connected : 1, caf : 1, pending : 1, reset : 1,
      shut_done : 1, deferred : 1, zombie : 1;
  /* The multishot receive was canceled because input reached `want`: its
  ** final NIO_ECANCELED is flow control, not an error. */
  unsigned rpaused : 1;
  /* pub.in is a receive buffer lent by the port (nio__port_keep), given
  ** back when drained, closed, or when more input must be appended. */
  unsigned lent : 1;
  /* On the engine's kick list (a send to submit before the next wait). */
  unsigned kickq : 1;
  /* Its slot (and id) went to a successor: close leaves the slot alone. */
  unsigned moved : 1;
  /* TLS holds enough ciphertext not yet decrypted: receiving waits until
  ** the owner consumed (input stays bounded as for plain TCP). */
  unsigned tlshold : 1;
  /* Handshaking for its listener (on its `shaking` list through link). */
  unsigned shaking : 1;
  nio_req wreq; /* connect, then the one vectored send in flight */
  nio_req rreq; /* the one receive, re-posted while input < want */
  /* iov of the send in flight: &iov1 for a single chunk, else a lazily
  ** allocated array of NIO_CONN_IOV entries, freed when the queue empties. */
  nio_iov *iov;
  nio_iov iov1;
  union {
    conn_dial *dial; /* connect targets, while connecting (owned) */
    listener *pl;    /* listener whose pending queue holds us */
  } u;
  /* In one list at a time: its listener's pending (or shaking), then
  ** e->flushing while closed after flush, then e->zombies. */
  nio_link link;
  conn *dnext;   /* deferred-event list */
  uint64_t fdue; /* close-after-flush deadline */
};

/* A free list of malloc'ed blocks of one size class, kept by the engine so
** that the per-message buffers (input buffers, copy chunks) skip malloc and
** free: at every message they would take glibc's slow path, and above
** 128 KiB of churn its heap trimming makes the kernel fault the pages in
** again. Size classes and the byte budget are in pool.c. */
typedef struct nio_pool {
  void *head; /* blocks linked through their first word */
} nio_pool;
#define NIO_POOL_CLASSES 8 /* 512 B .. 64 KiB */

/* The engine-private view of a listener; freed by the sweep once closing
** and its accept request had its final completion. */
struct listener {
  nio_listener pub;
  nio_engine *e;
  nio_req areq;
  nio_timer retry;  /* re-arm after an accept error (EMFILE...) */
  nio_list pending; /* of conn.link: accepted, not yet taken by the owner */
  int backlog, npending;
  /* TLS listeners: the context (a reference) and the connections in their
  ** handshake (of conn.link), which count against the backlog too. */
  nio_tls_ctx *tls;
  uint64_t tls_timeout;
  nio_list shaking;
  int nshaking;
  /* A Unix listener's address and socket file, removed at close (owned;
  ** NULL for other listeners). */
  nio_addr *upath;
  nio_file_id uid;
  nio_link link; /* in e->listeners while open, then in e->lzombies */
  unsigned closing : 1;
};

/*
** The inbox is a byte vector of records (inbox.c), swapped whole by the
** worker: small sends are copied into it inline, so a message costs no
** allocation. Everything else -- calls, posts, large sends -- is an nio_msg
** the record points to. An nio_msg is allocated by the sender with its
** payload behind it; owned by the inbox until the worker takes it, then
** freed by the worker -- except posts, which the hooks' message callback
** owns from delivery on (nio__msg_free), and large sends, whose payload
** the output queue references until it is sent.
*/
typedef struct nio_ibuf {
  char *p;
  size_t len, cap;
} nio_ibuf;
enum { NIO_MSG_CALL = 1, NIO_MSG_SEND, NIO_MSG_POST };
struct nio_msg {
  nio_msg *next;
  uint8_t type; /* NIO_MSG_* */
  uint8_t kind; /* posts: the poster's tag (NIO_POST_*) */
  size_t len;   /* payload bytes in data[] */
  size_t size;  /* what the message counts against the limits */
  union {
    struct {
      nio_call_fn fn;
      void *arg;
    } call;
    uint64_t id; /* send: the target connection */
  } u;
  char data[];
};

struct nio_engine {
  /* Worker-only state. */
  nio_port *port;
  nio_thread *thread;
  nio_engine_hooks hooks;
  char backend[16];
  uint64_t now;
  uint64_t grace_ns;
  void *udata;
  int result;
  unsigned quit : 1, stop_seen : 1, started : 1, ending : 1;

  /* Timers: a binary min-heap on due. heapmax: the capacity it may grow
  ** to (NETIO_TEST_TIMER_HEAP, for tests of a heap that cannot grow). */
  nio_timer **heap;
  uint32_t nheap, heapcap, heapmax;

  /* Connections. */
  nio_slot *slots;
  uint32_t nslots, free_slot; /* free_slot: slot + 1 of the first free */
  nio_list zombies;           /* of conn.link: closed, freed by the sweep */
  conn *deferred, *deferred_tail;
  /* Connections with output queued this turn and no send in flight: their
  ** send is submitted just before the wait, with everything the turn
  ** queued (one send per connection per turn, not one per write). */
  conn *kicks;
  nio_list flushing; /* of conn.link: closed after flush, by fdue */
  nio_timer ftimer;
  nio_list listeners; /* of listener.link: open listeners */
  nio_list lzombies;  /* closed, freed after their accept's last completion */
  nio_list udps;      /* of udp.link: open datagram sockets */
  nio_list uzombies;  /* closed, freed after their requests' completions */
  nio_pool pools[NIO_POOL_CLASSES]; /* free buffers, 512 B << class */
  size_t pooled;                    /* bytes in pools */
  nio_list resolving;               /* of nio_resolve_req.link: lookups whose
                                    ** callback has not run */
  nio_resolver *resolver; /* lookup threads, made by the first lookup */
  nio_counters stats;

  /* Set before the worker starts, then read-only: any thread reads. */
  unsigned index; /* registry index, 1..NIO_ID_INDEX_MASK */
  unsigned epoch; /* engine serial, NIO_ID_EPOCH_BITS wide */
  size_t send_limit, inbox_limit, post_limit;
  /* The outside view of the slots: NIO_XS_BLOCKS block pointers. */
  nio_xslot *_Atomic *xblocks;

  /* Shared with any thread. The engine's memory is freed when the last
  ** reference goes: the owner's (dropped by nio__engine_free), and one
  ** per sender inside nio_send() or holder such as a netio thread. */
  atomic_int refs;
  _Atomic size_t posted;   /* bytes of posts not yet freed by their owner */
  atomic_int posts_closed; /* nio__engine_close_posts() was called */
  /* Inbox, under mu: the records waiting, and the bytes they stand for
  ** (theirs and their messages'). */
  nio_mutex mu;
  nio_ibuf in;
  size_t ibytes;
  int iclosed;
  /* Worker only: the records taken, delivered from coff on. */
  nio_ibuf cur;
  size_t coff;
  uint64_t ifull_ns;  /* a batch last used a large vector (inbox.c) */
  nio_xslot *touched; /* slots with a wsub to settle */
  atomic_int wake_pending;
  atomic_int stop_req;
  atomic_int posting; /* nio__engine_stop() calls inside their post */
  _Atomic(nio_port *) wake_port;
};

/* Thread-local variables of the engine: initial-exec, because the module
** is dlopen'ed by lua5.4 and the general-dynamic model would allocate them
** per thread through __tls_get_addr, which LeakSanitizer's thread tracking
** trips over when many threads come and go; they fit the static TLS that
** glibc keeps for dlopen'ed objects. */
#if defined(__GNUC__) && !defined(_WIN32)
#define NIO_TLS_MODEL __attribute__((tls_model("initial-exec")))
#else
#define NIO_TLS_MODEL
#endif

/* engine.c */
void nio__engine_defer(conn *c, int events);
/* The engine with this id's index and epoch, with a reference taken
** (nio__engine_unref), or NULL. Any thread. */
nio_engine *nio__engine_acquire(uint64_t id);

/* inbox.c */
/* Deliver the messages waiting (worker). Messages they queue wait for the
** next call. */
void nio__inbox_run(nio_engine *e);
/* Refuse new messages, then deliver every one accepted before (worker, or
** the owner's free when the worker never ran). */
void nio__inbox_close(nio_engine *e);
/* Bytes the inbox's vectors hold (worker). */
size_t nio__inbox_kept(nio_engine *e);
/* Free what is left at the last reference (counted as dropped). */
void nio__inbox_free(nio_engine *e);

/* timer.c */
/* Milliseconds until the first timer is due (-1: none), from now. */
int nio__timers_timeout(nio_engine *e, uint64_t now);
void nio__timers_run(nio_engine *e);
void nio__timers_free(nio_engine *e);

/* pool.c */
/* The size nio__buf_get() allocates for a request of n bytes: the next size
** class, or n itself above the classes. */
size_t nio__buf_size(size_t n);
/* A block of nio__buf_size(n) bytes, or NULL. */
void *nio__buf_get(nio_engine *e, size_t n);
/* Give back a block of sz bytes (from nio__buf_get, or any malloc'ed
** block; NULL is ignored). */
void nio__buf_put(nio_engine *e, void *b, size_t sz);
/* Free the blocks kept in the engine's pools (end of the engine). */
void nio__conns_free_pools(nio_engine *e);

/* conn.c */
/* The outside view of a slot, or NULL when its block does not exist yet.
** Any thread (inline: every nio_send() asks). */
static inline nio_xslot *nio__xslot(nio_engine *e, uint32_t slot) {
  nio_xslot *blk;
  if (slot >= NIO_ID_MAX_SLOTS) return NULL;
  blk = atomic_load_explicit(&e->xblocks[slot >> NIO_XS_BLOCK_BITS],
                             memory_order_acquire);
  return blk ? &blk[slot & (NIO_XS_BLOCK - 1)] : NULL;
}
/* Free the outside view's blocks (the engine's last reference). */
void nio__xslots_free(nio_engine *e);
/* The open connection id names, or NULL (nio__conn_get; inline for the
** inbox, which asks per message). */
static inline conn *nio__conn_of(nio_engine *e, uint64_t id) {
  uint32_t s = NIO_ID_SLOT(id);
  conn *c = s < e->nslots ? e->slots[s].c : NULL;
  /* Its id whole: generation, engine, epoch and the high bits. */
  return c && c->pub.id == id ? c : NULL;
}
/* nio__conn_write for bytes nio_send() accepted: also while c is being
** closed after flush (they were accepted before that close). */
int nio__conn_write_accepted(conn *c, const void *p, size_t len,
                             nio_chunk_free freefn, void *ud);
/* Wrap an accepted socket (already added to the port). */
int nio__conn_accepted(nio_engine *e, nio_sock fd, conn **out);
/* Call the owner's callback with events (none after close; a connection
** closed after flush has no owner, and an error ends it). */
void nio__conn_deliver(conn *c, int events);
/* Outside senders are refused from now on (the owner closed c). */
void nio__conn_refuse_outside(conn *c);
/* The stream failed (first error wins). */
void nio__conn_set_err(conn *c, int err);
/* Take c off its listener's pending queue (c->pending). */
void nio__conn_unpend(conn *c);
/* Free closed connections whose requests all completed. */
void nio__conns_sweep(nio_engine *e);
/* Close every open connection (end of the engine). */
void nio__conns_close_all(nio_engine *e);
/* Every change of the queued output goes through here, so the mirror
** outside senders read stays exact. */
static inline void nio__conn_set_queued(conn *c, size_t queued) {
  c->pub.queued = queued;
  atomic_store_explicit(&c->xs->queued, queued, memory_order_release);
}
/* Output was queued: the send goes with the rest of this turn's output
** (nio__conns_kick); one in flight already is followed by the next at its
** completion. */
static inline void nio__conn_kick_later(conn *c) {
  if (!c->kickq && !c->wreq.active) {
    c->kickq = 1;
    c->knext = c->e->kicks;
    c->e->kicks = c;
  }
}
/* The common case of a small write, kept short (a flood of outside sends
** takes it per message): a plain connection in good health whose tail
** copy chunk has room takes the bytes. Returns 0 when it did; otherwise
** nothing happened and the caller goes through the full write. */
static inline int nio__conn_write_tail(conn *c, const void *p, size_t len) {
  nio_chunk *t = c->qtail;
  if (t == NULL || t->cap == 0 || t->cap - t->len < len || c->pub.err ||
      c->pub.closing || c->pub.shut || c->tls ||
      (c->max_output && c->pub.queued + len > c->max_output))
    return -1;
  memcpy(t->data + t->len, p, len);
  t->len += len;
  nio__conn_set_queued(c, c->pub.queued + len);
  nio__conn_kick_later(c);
  return 0;
}

/* conn_in.c */
/* Append n plaintext bytes to the input buffer (TLS). */
int nio__conn_append(conn *c, const char *data, size_t n);
/* The receive's completion callback (c->rreq). */
void nio__conn_on_recv(nio_req *req, int res, const char *data, unsigned flags);
/* Arm the receive if c is healthy, connected and its input under want
** (also: start receiving on a connection whose owner just took it). */
void nio__conn_recv_kick(conn *c);
/* Give the input buffer back (to the pools, or the port when lent). */
void nio__conn_free_input(conn *c);

/* conn_out.c */
/* Queue bytes as they are, below TLS (the ciphertext; as nio__conn_write
** otherwise). late: as nio__conn_write_accepted. */
int nio__conn_write_raw(conn *c, const void *p, size_t len,
                        nio_chunk_free freefn, void *ud, int late);
/* Submit the next vectored send if none is in flight; deferred: report a
** failure at the next turn rather than now. */
void nio__conn_send_kick(conn *c, int deferred);
/* Shut the sending side once the owner asked and the output went out. */
void nio__conn_do_shutdown(conn *c);
/* Free the output queue, calling its free callbacks; only when no send
** names it. */
void nio__conn_drop_queue(conn *c);
/* Submit the sends of the connections on the kick list (before a wait). */
void nio__conns_kick(nio_engine *e);

/* conn_caf.c */
/* Take c off the close-after-flush list. */
void nio__conn_caf_unlink(conn *c);
/* Whether close-after-flush connections still have output to send. */
int nio__conns_flushing(const nio_engine *e);

/* tls.c */
#ifdef NIO_HAVE_TLS
/* Plaintext from the ciphertext received (0 or NIO_E*). */
int nio__tls_feed(conn *c, const char *data, size_t n);
/* Decrypt what waits in TLS once the owner consumed (no callback: a
** deferred NIO_EV_READ when input grew). */
void nio__tls_pump(conn *c);
/* The socket's end of stream: NIO_EOF handling (truncation). */
void nio__tls_eof(conn *c);
int nio__tls_write(conn *c, const void *p, size_t len, nio_chunk_free freefn,
                   void *ud, int late);
/* The connection closes: stop its timer (the sweep frees it). */
void nio__tls_stop(conn *c);
void nio__tls_free(conn *c);
/* Whether c failed at the TLS level with the alert that says why queued:
** its output still goes out (the socket is sound), and a close after
** flush waits for it. */
int nio__tls_alerting(const conn *c);
#define NIO_TLS_ALERTING(c) ((c)->tls != NULL && nio__tls_alerting(c))
#else
#define NIO_TLS_ALERTING(c) 0
#endif
/* listener.c: a handshaking connection closes (take it off its list). */
void nio__listener_unshake(conn *c);

/* udp.c */
void nio__udps_sweep(nio_engine *e);
void nio__udps_close_all(nio_engine *e);

/* listener.c */
void nio__listeners_sweep(nio_engine *e);
void nio__listeners_close_all(nio_engine *e);

/* resolve.c */
/* At the engine's end: cancel resolutions in flight (their callbacks run
** now with NIO_ECANCELED; helper threads drop their results) and stop the
** lookup threads (without waiting for a getaddrinfo that still runs). */
void nio__resolve_cancel_all(nio_engine *e);

#endif /* NIO_ENGINE_INTERNAL_H */
