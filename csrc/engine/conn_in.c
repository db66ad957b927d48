/*
** conn_in.c: a connection's input -- the receive request and the input
** buffer, into which the port may lend its own buffers.
**
** Receiving: one multishot receive is kept armed while the input buffer
** holds fewer than `want` bytes and the stream is healthy, so a message
** costs no submission (a backend may treat multishot as single-shot: a
** final completion with data re-arms it). When input passes `want` the
** receive is canceled (rpaused) and re-armed once the owner consumed below
** `want`. Each arm carries the room left under `want` as its limit, so the
** completions a backend had on their way when it was canceled add at most
** one receive buffer: input stays within want + one buffer. The port owns
** receive buffers (uring: a provided-buffer ring;
** epoll: one buffer for the whole port), so an idle connection holds none;
** the bytes are copied into the input buffer, which goes back to the
** engine's pool as soon as the owner consumed all of it. A large receive
** into an empty input is not copied: the port lends its buffer (uring),
** until the owner consumed it or more input arrives.
*/
#include <stdlib.h>
#include <string.h>
#include "internal.h"

#define CONN_INPUT_MIN 512
/* Receives of at least this size into an empty input borrow the port's
** buffer instead of being copied (smaller ones are cheaper to copy than
** to hold a 64 KiB port buffer for). */
#define CONN_LEND_MIN 2048

void nio__conn_free_input(conn *c) {
  if (c->lent)
    nio__port_release(c->e->port, c->pub.in);
  else
    nio__buf_put(c->e, c->pub.in, c->pub.cap);
  c->lent = 0;
  c->pub.in = NULL;
  c->pub.rpos = c->pub.wpos = c->pub.cap = 0;
}

/* ---- receiving ------------------------------------------------------ */

void nio__conn_recv_kick(conn *c) {
  int r;
  if (c->rreq.active || !c->connected || c->pending || c->tlshold ||
      c->pub.eof || c->pub.err || c->pub.closing)
    return;
  if (!c->caf && c->pub.wpos - c->pub.rpos >= c->want) return;
  c->rreq.u.recv.max = 0;
  /* The port stops by itself at the room left under want, so what arrives
  ** after the cancel of a pause is bounded too. A connection closed after
  ** flush reads only to discard: no limit. */
  c->rreq.u.recv.limit = c->caf ? 0 : c->want - (c->pub.wpos - c->pub.rpos);
  if ((r = nio__port_submit(c->e->port, &c->rreq)) < 0) {
    nio__conn_set_err(c, r);
    nio__engine_defer(c, NIO_EV_READ);
  }
}

/* Append n bytes to the input buffer, compacting or growing it (doubling,
** so a large recv(n) costs O(log n) reallocations). Its capacity is always
** a nio__buf_size(), so it can go back to the pools. */
/* Inlined into the receive completion, as when it had no other caller:
** TLS's use (nio__conn_append) must not cost plain TCP a call. */
static NIO_ALWAYS_INLINE int conn_append(conn *c, const char *data, size_t n) {
  nio_conn *p = &c->pub;
  size_t avail = p->wpos - p->rpos, need = avail + n, cap;
  if (need > UINT32_MAX) return NIO_ENOMEM;
  if (c->lent) {
    /* Into a buffer of our own; the port gets its own back at once. */
    char *in = nio__buf_get(c->e, need);
    if (in == NULL) return NIO_ENOMEM;
    memcpy(in, p->in + p->rpos, avail);
    nio__port_release(c->e->port, p->in);
    c->lent = 0;
    p->in = in;
    p->cap = (uint32_t)nio__buf_size(need);
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
      cap = nio__buf_size(cap);
      if ((in = nio__buf_get(c->e, cap)) == NULL) return NIO_ENOMEM;
      if (avail > 0) memcpy(in, p->in, avail);
      nio__buf_put(c->e, p->in, p->cap);
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

/* TLS's plaintext. */
int nio__conn_append(conn *c, const char *data, size_t n) {
  return conn_append(c, data, n);
}

void nio__conn_on_recv(nio_req *req, int res, const char *data,
                       unsigned flags) {
  conn *c = req->data;
  if (c->pub.closing) return; /* the sweep frees it */
  if (!(flags & NIO_CQE_MORE) && c->rpaused) {
    c->rpaused = 0;
    /* The cancel of a pause won (or the receive ended by itself): receive
    ** again if the owner drained the input meanwhile. */
    if (res == NIO_ECANCELED) {
      nio__conn_recv_kick(c);
      return;
    }
  }
  if (res > 0) {
    c->pub.bytes_in += (uint64_t)res;
    /* A connection nobody owns any more reads only to let its close be a
    ** clean FIN rather than a reset for unread data. */
#ifdef NIO_HAVE_TLS
    /* The one branch plain TCP pays for TLS: ciphertext goes through the
    ** filter, which appends the plaintext. */
    if (c->tls) {
      if (!c->caf && nio__tls_feed(c, data, (size_t)res) < 0)
        nio__conn_set_err(c, NIO_ENOMEM);
      if (c->pub.closing) return; /* its handshake failed, it was dropped */
    } else
#endif
        if (!c->caf && conn_take(c, req, data, (size_t)res) < 0)
      nio__conn_set_err(c, NIO_ENOMEM);
    if (!(flags & NIO_CQE_MORE)) {
      nio__conn_recv_kick(c);
    } else if (!c->caf && !c->rpaused &&
               (c->pub.err || c->pub.wpos - c->pub.rpos >= c->want)) {
      /* Flow control: stop the multishot receive; consume() re-arms it. */
      c->rpaused = 1;
      nio__port_cancel(c->e->port, &c->rreq);
    }
    if (!c->caf) nio__conn_deliver(c, NIO_EV_READ);
  } else if (res == 0) {
#ifdef NIO_HAVE_TLS
    if (c->tls && !c->caf) {
      nio__tls_eof(c);
      if (c->pub.closing) return;
    } else
#endif
      c->pub.eof = 1;
    nio__conn_deliver(c, NIO_EV_READ);
  } else {
    /* Only close cancels a receive, and closing returned above. */
    if (res == NIO_ECANCELED) res = NIO_ECLOSED;
    nio__conn_set_err(c, res);
    nio__conn_deliver(c, NIO_EV_READ);
  }
}

void nio__conn_consume(nio_conn *pc, size_t n) {
  conn *c = (conn *)pc;
  size_t avail = pc->wpos - pc->rpos;
  if (n > avail) n = avail;
  pc->rpos += (uint32_t)n;
  /* An idle connection holds no input buffer. */
  if (pc->rpos == pc->wpos) nio__conn_free_input(c);
#ifdef NIO_HAVE_TLS
  if (c->tls) nio__tls_pump(c); /* records that waited for room */
#endif
  nio__conn_recv_kick(c);
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
  if (n + avail > UINT32_MAX || (in = nio__buf_get(c->e, n + avail)) == NULL)
    return NIO_ENOMEM;
  memcpy(in, p, n);
  if (avail) memcpy(in + n, pc->in + pc->rpos, avail);
  nio__conn_free_input(c);
  pc->in = in;
  pc->cap = (uint32_t)nio__buf_size(n + avail);
  pc->rpos = 0;
  pc->wpos = (uint32_t)(n + avail);
  return 0;
}

void nio__conn_want(nio_conn *pc, size_t n) {
  conn *c = (conn *)pc;
  if (n == 0) n = 1;
  if (n > UINT32_MAX / 2) n = UINT32_MAX / 2;
  c->want = (uint32_t)n;
#ifdef NIO_HAVE_TLS
  /* Records TLS holds because the input was full fit in the new window. */
  if (c->tls) nio__tls_pump(c);
#endif
  nio__conn_recv_kick(c);
}
