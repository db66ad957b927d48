/*
** conn_out.c: a connection's output -- the queue of chunks and the one
** vectored send in flight, submitted with the rest of the turn's output.
**
** Sending: a queue of chunks; small writes are copied into a tail chunk
** (ping-pong messages coalesce), large ones referenced. One vectored send
** is in flight at a time, over at most CONN_IOV chunks.
*/
#include <stdlib.h>
#include <string.h>
#include "internal.h"

/* Writes below this size are copied (and coalesced), larger referenced. */
#define CONN_COPY_MAX 512
/* A copy chunk's allocation: its header and data together. A chunk that
** follows a full copy chunk is twice its size, up to CONN_CHUNK_MAX: a
** connection that writes faster than it sends gets fewer, larger chunks
** (fewer allocations and iovecs per send), one that talks in small
** messages keeps 2 KiB ones. */
#define CONN_CHUNK_ALLOC 2048
#define CONN_CHUNK_MAX ((size_t)64 << 10)
#define CONN_IOV 64
/* The most bytes one send request carries: far below the port's INT_MAX,
** so that a huge string is sent (and its progress counted) in pieces. */
#define CONN_SEND_MAX ((size_t)16 << 20)

static void conn_on_send(nio_req *req, int res, const char *data,
                         unsigned flags);

/* Copy chunks are blocks of nio__buf_size(); referenced chunks (cap 0) are
** malloc'ed headers. */
static void chunk_free(nio_engine *e, nio_chunk *ch) {
  if (ch->cap > 0)
    nio__buf_put(e, ch, sizeof *ch + ch->cap);
  else
    free(ch);
}

/* Call the free callbacks of every queued chunk. Only when no send names
** them: no send in flight, or after the connection's final completions. */
void nio__conn_drop_queue(conn *c) {
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

/* ---- sending -------------------------------------------------------- */

static void conn_send_failed(conn *c, int err, int deferred) {
  nio__conn_set_err(c, err);
  /* The peer can no longer get them: counted, never silently lost. */
  c->e->stats.dropped_bytes += c->pub.queued;
  nio__conn_drop_queue(c);
  nio__conn_set_queued(c, 0);
  if (deferred)
    nio__engine_defer(c, NIO_EV_WRITE | NIO_EV_READ);
  else
    nio__conn_deliver(c, NIO_EV_WRITE | NIO_EV_READ);
}

void nio__conn_do_shutdown(conn *c) {
  int r;
  if (!c->pub.shut || c->shut_done || c->qhead || c->wreq.active ||
      !c->connected || c->pub.closing)
    return;
  c->shut_done = 1;
  if ((r = nio__sock_shutdown_write(c->pub.fd)) < 0) nio__conn_set_err(c, r);
}

/* Submit the next vectored send if none is in flight. */
void nio__conn_send_kick(conn *c, int deferred) {
  nio_chunk *ch = c->qhead;
  nio_iov *iov;
  size_t total = 0;
  int n = 0, r;
  if (c->wreq.active || ch == NULL || !c->connected ||
      (c->pub.err && !NIO_TLS_ALERTING(c)) || c->pub.closing)
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
    /* Only a send of several chunks had an array (a call saved per
    ** message otherwise). */
    if (c->iov) {
      free(c->iov);
      c->iov = NULL;
    }
    nio__conn_set_queued(c, 0);
  } else {
    nio__conn_set_queued(c, before > (size_t)res ? before - (size_t)res : 0);
  }
  nio__conn_send_kick(c, 0);
  nio__conn_do_shutdown(c);
  if (c->pub.closing) return;
  if (c->caf) {
    if (c->qhead == NULL || (c->pub.err && !NIO_TLS_ALERTING(c)))
      nio__conn_close(&c->pub, 0);
    return;
  }
  if (c->pub.queued == 0 || (before > c->lowat && c->pub.queued <= c->lowat))
    nio__conn_deliver(c, NIO_EV_WRITE);
}

/* A copy chunk for len bytes after prev (the queue's tail, or NULL). */
static nio_chunk *conn_chunk_copy(nio_engine *e, size_t len,
                                  const nio_chunk *prev) {
  size_t sz = CONN_CHUNK_ALLOC;
  nio_chunk *ch;
  if (prev && prev->cap) {
    sz = 2 * (sizeof *prev + prev->cap);
    if (sz > CONN_CHUNK_MAX) sz = CONN_CHUNK_MAX;
  }
  if (len > sz - sizeof *ch) sz = nio__buf_size(sizeof *ch + len);
  if ((ch = nio__buf_get(e, sz)) == NULL) return NULL;
  ch->p = ch->data;
  ch->cap = sz - sizeof *ch;
  ch->free = NULL;
  ch->ud = NULL;
  return ch;
}

/* late: bytes accepted from outside before the owner closed c after
** flush; they join the output being flushed. */
int nio__conn_write_raw(conn *c, const void *p, size_t len,
                        nio_chunk_free freefn, void *ud, int late) {
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
    nio__conn_set_err(c, NIO_ECONNABORTED);
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
    } else if ((ch = conn_chunk_copy(c->e, len, t)) != NULL) {
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
  nio__conn_set_queued(c, c->pub.queued + len);
  nio__conn_kick_later(c);
  return 0;
}

void nio__conns_kick(nio_engine *e) {
  conn *c;
  while ((c = e->kicks) != NULL) {
    e->kicks = c->knext;
    c->knext = NULL;
    c->kickq = 0;
    nio__conn_send_kick(c, 1);
  }
}

/* Every write of plaintext comes here (the owner's and, through the
** inbox, outside senders'): with TLS it is encrypted first. */
int nio__conn_write(nio_conn *pc, const void *p, size_t len,
                    nio_chunk_free freefn, void *ud) {
#ifdef NIO_HAVE_TLS
  if (((conn *)pc)->tls)
    return nio__tls_write((conn *)pc, p, len, freefn, ud, 0);
#endif
  return nio__conn_write_raw((conn *)pc, p, len, freefn, ud, 0);
}

int nio__conn_write_accepted(conn *c, const void *p, size_t len,
                             nio_chunk_free freefn, void *ud) {
#ifdef NIO_HAVE_TLS
  if (c->tls) return nio__tls_write(c, p, len, freefn, ud, 1);
#endif
  return nio__conn_write_raw(c, p, len, freefn, ud, 1);
}

void nio__conn_set_lowat(nio_conn *pc, size_t lowat) {
  ((conn *)pc)->lowat = lowat > UINT32_MAX ? UINT32_MAX : (uint32_t)lowat;
}

int nio__conn_shutdown(nio_conn *pc) {
  conn *c = (conn *)pc;
  if (c->pub.closing) return NIO_ECLOSED;
  if (c->pub.err) return c->pub.err;
#ifdef NIO_HAVE_TLS
  nio__conn_tls_close(pc); /* close_notify goes before the FIN */
#endif
  c->pub.shut = 1;
  nio__conn_refuse_outside(c); /* the sending side is closing */
  nio__conn_do_shutdown(c);
  return c->pub.err;
}
