/*
** listener.c: listening sockets -- one pre-posted multishot accept, the
** queue of accepted connections waiting for their owner, and the one
** back-off on accept errors (the port ends the accept on them and never
** rests on its own).
*/
#include <stdlib.h>
#include <string.h>
#include "internal.h"
#include "../util/log.h"

/* After an accept error such as EMFILE (NIO_ACCEPT_BACKOFF) the accept is
** re-armed only after this pause: re-arming at once would spin on the same
** error. */
#define LISTEN_RETRY_NS (100ull * 1000000ull)
#define LISTEN_BACKLOG 511

static void listener_on_accept(nio_req *req, int res, const char *data,
                               unsigned flags);

static void listener_fire(listener *l) {
  if (!l->closing && l->pub.cb) l->pub.cb(&l->pub, NIO_EV_READ);
}

static void listener_retry(nio_timer *t);

/* An error of the listening socket itself (pub.err): it accepts no more.
** The owner hears it once, so that nobody waits for connections that
** cannot come; those already pending can still be taken. */
static void listener_dead(listener *l) {
  l->pub.dead = 1;
  listener_fire(l);
}

/* Keep the accept armed unless closing, backing off, or the pending queue
** is full (then nio__listener_accept() re-arms after taking one). */
static void listener_arm(listener *l) {
  int r;
  if (l->closing || l->pub.dead || l->areq.active ||
      nio__timer_active(&l->retry) || l->npending + l->nshaking >= l->backlog)
    return;
  if ((r = nio__port_submit(l->e->port, &l->areq)) < 0) {
    l->pub.err = r;
    if (nio__port_accept_error(r) == NIO_ACCEPT_BACKOFF) {
      l->retry.data = l;
      /* Re-arming here would recurse on the same error: without the retry
      ** timer the listener waits for its owner's next accept. Say so. */
      if (nio__timer_start(l->e, &l->retry, LISTEN_RETRY_NS, listener_retry) <
          0)
        nio__log(NIO_LOG_ERROR,
                 "netio: a listener cannot accept (%s) nor arm its retry "
                 "(not enough memory): it waits for the next accept call",
                 nio_strerror(r));
    } else {
      listener_dead(l);
    }
  }
}

static void listener_retry(nio_timer *t) {
  listener_arm(t->data);
}

void nio__listener_unshake(conn *c) {
  listener *l = c->u.pl;
  nio__list_remove(&l->shaking, &c->link);
  l->nshaking--;
  c->shaking = 0;
  c->u.pl = NULL;
}

static void listener_pend(listener *l, conn *c) {
  c->pending = 1;
  c->u.pl = l;
  nio__list_push_back(&l->pending, &c->link);
  l->npending++;
}

#ifdef NIO_HAVE_TLS
/* A connection in its server handshake: once it is done the connection
** waits for the owner as any other; a failed or stalled one is dropped,
** and the listener goes on. */
static void listener_on_shake(nio_conn *pc, int events) {
  conn *c = (conn *)pc;
  listener *l = c->u.pl;
  const char *why;
  if (!(events & NIO_EV_TLS) && pc->err == 0) return;
  nio__listener_unshake(c);
  if (pc->err || nio__conn_tls_state(pc) != 2) {
    why = nio__conn_tls_error(pc);
    nio__log(NIO_LOG_DEBUG,
             "netio: TLS handshake of an accepted connection "
             "failed: %s",
             why ? why : nio_strerror(pc->err));
    nio__conn_close_after_flush(pc); /* the alert goes out first */
  } else {
    pc->cb = NULL;
    pc->udata = NULL;
    listener_pend(l, c);
    listener_fire(l);
  }
  listener_arm(l);
}

/* Start the server handshake of an accepted connection. */
static void listener_shake(listener *l, conn *c) {
  nio_tls_opts o;
  memset(&o, 0, sizeof o);
  o.verify = -1;
  o.timeout_ns = l->tls_timeout;
  c->shaking = 1;
  c->u.pl = l;
  nio__list_push_back(&l->shaking, &c->link);
  l->nshaking++;
  c->pub.cb = listener_on_shake;
  if (nio__conn_starttls(&c->pub, l->tls, &o) < 0) {
    nio__conn_close(&c->pub, 0);
    return;
  }
  nio__conn_recv_kick(c);
}

void nio__listener_tls(nio_listener *pl, nio_tls_ctx *ctx,
                       uint64_t timeout_ns) {
  listener *l = (listener *)pl;
  if (ctx) nio__tls_ctx_ref(ctx);
  if (l->tls) nio__tls_ctx_unref(l->tls);
  l->tls = ctx;
  l->tls_timeout = timeout_ns;
}
#endif

static void listener_take(listener *l, nio_sock fd) {
  nio_engine *e = l->e;
  conn *c;
  int r;
  if ((r = nio__port_add(e->port, fd)) < 0) {
    nio__sock_close(fd);
    l->pub.err = r;
    return;
  }
  if (nio__conn_accepted(e, fd, &c) < 0) {
    nio__port_remove(e->port, fd);
    nio__sock_close(fd);
    l->pub.err = NIO_ENOMEM;
    return;
  }
  l->pub.err = 0;
#ifdef NIO_HAVE_TLS
  if (l->tls) {
    listener_shake(l, c);
    return;
  }
#endif
  listener_pend(l, c);
}

static void listener_on_accept(nio_req *req, int res, const char *data,
                               unsigned flags) {
  listener *l = req->data;
  int more = (flags & NIO_CQE_MORE) != 0;
  (void)data;
  if (l->closing) {
    if (res >= 0) nio__sock_close((nio_sock)res);
    return;
  }
  if (res >= 0) {
    /* Taken even past the backlog: accepts that completed before our
    ** cancel took effect are real connections, not to be dropped. */
    listener_take(l, (nio_sock)res);
    if (more && l->npending + l->nshaking >= l->backlog)
      nio__port_cancel(l->e->port, &l->areq);
    else if (!more)
      listener_arm(l);
    listener_fire(l);
    return;
  }
  if (res == NIO_ECANCELED) {
    /* Our own cancel (queue full): the queue's drain re-arms. */
    if (!more) listener_arm(l);
    return;
  }
  /* An error ends the accept (port.h); the owner sees it in err. */
  l->pub.err = res;
  if (!more) {
    switch (nio__port_accept_error(res)) {
    case NIO_ACCEPT_SKIP:
      listener_arm(l);
      break;
    case NIO_ACCEPT_BACKOFF:
      /* EMFILE and friends: stop accepting for a while so the loop does
      ** not spin on the error. No memory for the pause: re-arm without it
      ** rather than never. */
      l->retry.data = l;
      if (nio__timer_start(l->e, &l->retry, LISTEN_RETRY_NS, listener_retry) <
          0)
        listener_arm(l);
      break;
    default:
      listener_dead(l);
      return;
    }
  }
  listener_fire(l);
}

int nio__listen(nio_engine *e, const nio_addr *addr, int backlog, int reuseport,
                int accepts, nio_listener_cb cb, void *udata,
                nio_listener **out) {
  listener *l = NULL;
  nio_sock fd;
  int r;
  *out = NULL;
  if (addr == NULL || addr->len == 0 || addr->len > sizeof addr->ss)
    return NIO_EINVAL;
  if (e->ending) return NIO_ECLOSED;
  if (backlog <= 0) backlog = LISTEN_BACKLOG;
  if (backlog > 65535) backlog = 65535;
  if ((r = nio__sock_listen(addr, backlog, reuseport, &fd)) < 0) return r;
  if ((l = calloc(1, sizeof *l)) == NULL) {
    r = NIO_ENOMEM;
    goto fail_sock;
  }
  /* The socket file this listener made is its to remove (at close, or
  ** now if the listen fails past this point). */
  nio__addr_unix_id(addr, &l->uid);
  if (l->uid.ino != 0 || l->uid.dev != 0) {
    if ((l->upath = malloc(sizeof *addr)) == NULL) {
      r = NIO_ENOMEM;
      goto fail_sock;
    }
    *l->upath = *addr;
  }
  if ((r = nio__port_add(e->port, fd)) < 0) goto fail_sock;
  l->e = e;
  l->pub.fd = fd;
  l->pub.cb = cb;
  l->pub.udata = udata;
  l->backlog = backlog;
  l->areq.fd = fd;
  l->areq.op = NIO_OP_ACCEPT;
  l->areq.u.accept.depth = accepts > 0 ? (uint32_t)accepts : 0;
  l->areq.cb = listener_on_accept;
  l->areq.data = l;
  if ((r = nio__port_submit(e->port, &l->areq)) < 0) {
    nio__port_remove(e->port, fd);
    goto fail_sock;
  }
  nio__list_push_front(&e->listeners, &l->link);
  *out = &l->pub;
  return 0;
fail_sock:
  nio__sock_close(fd);
  if (l) {
    if (l->upath) nio__addr_unix_unlink(l->upath, &l->uid);
    free(l->upath);
    free(l);
  } else {
    nio_file_id id;
    nio__addr_unix_id(addr, &id);
    nio__addr_unix_unlink(addr, &id);
  }
  return r;
}

nio_conn *nio__listener_accept(nio_listener *pl, nio_conn_cb cb, void *udata) {
  listener *l = (listener *)pl;
  conn *c = nio__list_item(l->pending.first, conn, link);
  if (c == NULL || l->closing) return NULL;
  nio__list_remove(&l->pending, &c->link);
  l->npending--;
  c->pending = 0;
  c->u.pl = NULL;
  c->pub.cb = cb;
  c->pub.udata = udata;
  nio__conn_recv_kick(c);
  listener_arm(l);
  return &c->pub;
}

int nio__listener_getsockname(nio_listener *l, nio_addr *a) {
  if (((listener *)l)->closing) return NIO_ECLOSED;
  return nio__sock_getsockname(l->fd, a);
}

void nio__listener_close(nio_listener *pl) {
  listener *l = (listener *)pl;
  nio_engine *e = l->e;
  if (l->closing) return;
  l->closing = 1;
  l->pub.cb = NULL;
  while (!nio__list_empty(&l->pending))
    nio__conn_close(&nio__list_item(l->pending.first, conn, link)->pub, 0);
  while (!nio__list_empty(&l->shaking))
    nio__conn_close(&nio__list_item(l->shaking.first, conn, link)->pub, 0);
  nio__timer_stop(e, &l->retry);
  /* The address is free when this returns; the socket is the port's now,
  ** and the accept's final completion (next wait) lets the sweep free l. */
  /* As libuv, nginx and redis do: the socket file goes with its
  ** listener, so the next listen on the path finds it free (a file left
  ** by a crash is not removed by listen: that could be another server's).
  ** Before the close, as libuv does: once the path is free another
  ** process may bind it, and its file must not be the one removed (the
  ** identity check covers a file replaced earlier). */
  if (l->upath) nio__addr_unix_unlink(l->upath, &l->uid);
  nio__port_close_listener(e->port, l->pub.fd);
  l->pub.fd = NIO_BAD_SOCK;
  nio__list_remove(&e->listeners, &l->link);
  nio__list_push_front(&e->lzombies, &l->link);
}

/* Free closed listeners whose accept had its final completion (their
** sockets went with nio__port_close_listener). */
void nio__listeners_sweep(nio_engine *e) {
  nio_link *k, *next;
  nio__list_each(&e->lzombies, k, next) {
    listener *l = nio__list_item(k, listener, link);
    if (l->areq.active) continue;
    nio__list_remove(&e->lzombies, k);
#ifdef NIO_HAVE_TLS
    nio__tls_ctx_unref(l->tls);
#endif
    free(l->upath);
    free(l);
  }
}

void nio__listeners_close_all(nio_engine *e) {
  listener *l;
  while ((l = nio__list_item(e->listeners.first, listener, link)) != NULL)
    nio__listener_close(&l->pub);
}
