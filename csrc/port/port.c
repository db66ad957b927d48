/*
** port.c: backend selection, and the one place where the contract of
** port.h is checked. The backends are called only with requests that
** passed these checks (libuv's uv_tcp_connect -> uv__tcp_connect), so they
** assume them rather than check them again, each a little differently.
*/
#include <limits.h>
#include <stdlib.h>
#ifndef _WIN32
#include <errno.h>
#endif
#include <string.h>
#include "port.h"
#include "../util/log.h"

static const nio_port_ops *const port_backends[] = {
#ifdef _WIN32
    &nio__iocp_ops,
#else
#ifdef NIO_HAVE_URING /* built with liburing (CMake NETIO_URING) */
    &nio__uring_ops,
#endif
    &nio__epoll_ops,
#endif
    NULL};

static const nio_port_ops *port_find(const char *name) {
  for (int i = 0; port_backends[i]; i++)
    if (strcmp(port_backends[i]->name, name) == 0) return port_backends[i];
  return NULL;
}

/* ---- the sockets of a port ----------------------------------------- */

/* An open-addressing table (linear probing, at most half full) of the
** sockets added to the port, keyed by the socket itself: descriptors are
** small numbers on Linux, SOCKET values sparse handles on Windows. */

static uint32_t sock_hash(const nio_port *p, nio_sock fd) {
  uint64_t x = (uint64_t)(uintptr_t)fd * 0x9E3779B97F4A7C15ull;
  return (uint32_t)(x >> 32) & (p->scap - 1);
}

static nio_port_sock *sock_find(nio_port *p, nio_sock fd) {
  uint32_t i;
  if (p->scap == 0) return NULL;
  for (i = sock_hash(p, fd); p->socks[i].fd != NIO_BAD_SOCK;
       i = (i + 1) & (p->scap - 1))
    if (p->socks[i].fd == fd) return &p->socks[i];
  return NULL;
}

static int sock_grow(nio_port *p) {
  nio_port_sock *old = p->socks, *s;
  uint32_t ocap = p->scap, ncap = ocap ? ocap * 2 : 64, i;
  if ((s = malloc(ncap * sizeof *s)) == NULL) return NIO_ENOMEM;
  for (i = 0; i < ncap; i++) s[i].fd = NIO_BAD_SOCK;
  p->socks = s;
  p->scap = ncap;
  for (uint32_t j = 0; j < ocap; j++) {
    if (old[j].fd == NIO_BAD_SOCK) continue;
    for (i = sock_hash(p, old[j].fd); s[i].fd != NIO_BAD_SOCK;
         i = (i + 1) & (ncap - 1)) {
    }
    s[i] = old[j];
  }
  free(old);
  return 0;
}

static int sock_insert(nio_port *p, nio_sock fd) {
  uint32_t i;
  int r;
  if (sock_find(p, fd) != NULL) return NIO_EEXIST;
  /* At most 3/4 full: linear probing stays short, and the table (24
  ** bytes an entry) costs 32..64 bytes per socket, not 48..96. */
  if (4 * (p->nsocks + 1) > 3 * p->scap && (r = sock_grow(p)) < 0) return r;
  for (i = sock_hash(p, fd); p->socks[i].fd != NIO_BAD_SOCK;
       i = (i + 1) & (p->scap - 1)) {
  }
  p->socks[i].fd = fd;
  p->socks[i].rd = p->socks[i].wr = NULL;
  p->nsocks++;
  return 0;
}

/* Deletion without tombstones: the entries after the hole that probed
** past it move back into it. */
static void sock_delete(nio_port *p, nio_port_sock *s) {
  uint32_t mask = p->scap - 1, i = (uint32_t)(s - p->socks), j = i, h;
  for (;;) {
    p->socks[i].fd = NIO_BAD_SOCK;
    for (;;) {
      j = (j + 1) & mask;
      if (p->socks[j].fd == NIO_BAD_SOCK) {
        p->nsocks--;
        return;
      }
      h = sock_hash(p, p->socks[j].fd);
      /* Stays if its home lies cyclically in (i, j]. */
      if (i <= j ? (i < h && h <= j) : (i < h || h <= j)) continue;
      break;
    }
    p->socks[i] = p->socks[j];
    i = j;
  }
}

/* ---- the port -------------------------------------------------------- */

int nio__port_open(nio_port **out, const char *backend) {
  const nio_port_ops *ops;
  int r = NIO_ENOSYS;
  *out = NULL;
  if (backend == NULL || backend[0] == '\0') backend = getenv("NETIO_BACKEND");
  if (backend != NULL && backend[0] != '\0') {
    if ((ops = port_find(backend)) == NULL) return NIO_EINVAL;
    return ops->open(out);
  }
  /* The best available: the first that opens. */
  for (int i = 0; port_backends[i]; i++) {
    r = port_backends[i]->open(out);
    if (r == 0) return 0;
    if (port_backends[i + 1] != NULL)
      nio__log_once(NIO_LOG_DEBUG, port_backends[i]->name,
                    "netio: %s backend unavailable (%s), using %s",
                    port_backends[i]->name, nio_strerror(r),
                    port_backends[i + 1]->name);
  }
  return r;
}

void nio__port_close(nio_port *p) {
  if (p == NULL) return;
  free(p->socks);
  p->socks = NULL;
  p->ops->close(p);
}

const char *nio__port_backend(const nio_port *p) {
  return p->ops->name;
}

int nio__port_available(const char *backend) {
  const nio_port_ops *ops = port_find(backend);
  nio_port *p;
  if (ops == NULL || ops->open(&p) != 0) return 0;
  ops->close(p);
  return 1;
}

const char *nio__port_backend_name(int i) {
  static const int n = sizeof port_backends / sizeof port_backends[0] - 1;
  return i >= 0 && i < n ? port_backends[i]->name : NULL;
}

int nio__port_add(nio_port *p, nio_sock fd) {
  int r;
  if (fd == NIO_BAD_SOCK) return NIO_EBADF;
  if ((r = sock_insert(p, fd)) < 0) return r;
  if ((r = p->ops->add(p, fd)) < 0) sock_delete(p, sock_find(p, fd));
  return r;
}

void nio__port_remove(nio_port *p, nio_sock fd) {
  nio_port_sock *s = sock_find(p, fd);
  if (s == NULL) return;
  p->ops->remove(p, fd);
  sock_delete(p, s);
}

int nio__port_close_listener(nio_port *p, nio_sock fd) {
  nio_port_sock *s = sock_find(p, fd);
  nio_req *acc;
  if (s == NULL) return NIO_EBADF;
  if ((acc = s->rd) != NULL && acc->op != NIO_OP_ACCEPT) return NIO_EINVAL;
  /* The accept's final completion finds no entry (or a new socket's with
  ** the same number, whose places it does not hold): nothing to free. */
  sock_delete(p, s);
  p->ops->close_listener(p, fd, acc);
  return 0;
}

/* The checks every backend relies on. The total of a send must fit the
** int its completion reports. */
static int port_check(nio_port *p, nio_req *r, nio_req ***side) {
  nio_port_sock *s;
  size_t total = 0;
  if (r->active) return NIO_EBUSY;
  if (r->cb == NULL) return NIO_EINVAL;
  if (r->fd == NIO_BAD_SOCK || (s = sock_find(p, r->fd)) == NULL)
    return NIO_EBADF;
  switch (r->op) {
  case NIO_OP_ACCEPT:
  case NIO_OP_RECV:
    *side = &s->rd;
    break;
  case NIO_OP_CONNECT:
    if (r->u.connect.addr == NULL || r->u.connect.addr->len == 0 ||
        r->u.connect.addr->len > sizeof r->u.connect.addr->ss)
      return NIO_EINVAL;
    *side = &s->wr;
    break;
  case NIO_OP_SEND:
    if (r->u.send.iovcnt < 0 || (r->u.send.iovcnt > 0 && !r->u.send.iov))
      return NIO_EINVAL;
    for (int i = 0; i < r->u.send.iovcnt; i++) {
      if (r->u.send.iov[i].len > (size_t)INT_MAX - total) return NIO_EMSGSIZE;
      total += r->u.send.iov[i].len;
    }
    *side = &s->wr;
    break;
  case NIO_OP_RECVFROM:
  case NIO_OP_SENDTO:
    if (r->u.dgram.len > 0 && r->u.dgram.buf == NULL) return NIO_EINVAL;
    if (r->op == NIO_OP_RECVFROM) {
      /* The result is an int; the address is only written. */
      if (r->u.dgram.len > INT_MAX) return NIO_EINVAL;
      *side = &s->rd;
      break;
    }
    if (r->u.dgram.addr != NULL &&
        (r->u.dgram.addr->len == 0 ||
         r->u.dgram.addr->len > sizeof r->u.dgram.addr->ss))
      return NIO_EINVAL;
    /* No datagram is longer (an IP packet's length is 16 bits). */
    if (r->u.dgram.len > 65535) return NIO_EMSGSIZE;
    *side = &s->wr;
    break;
  default:
    return NIO_EINVAL;
  }
  /* One reader and one sender per socket, each until its final
  ** completion. */
  if (**side != NULL) return NIO_EBUSY;
  return 0;
}

int nio__port_submit(nio_port *p, nio_req *r) {
  nio_req **side = NULL;
  int e;
  if ((e = port_check(p, r, &side)) < 0) return e;
  if ((e = p->ops->submit(p, r)) < 0) return e;
  *side = r;
  return 0;
}

void nio__port_done(nio_port *p, nio_req *r) {
  nio_port_sock *s = sock_find(p, r->fd);
  if (s == NULL) return; /* removed early (a broken contract, logged) */
  if (s->rd == r) s->rd = NULL;
  if (s->wr == r) s->wr = NULL;
}

int nio__port_accept_error(int err) {
  switch (err) {
  case NIO_EMFILE:
  case NIO_ENFILE:
  case NIO_ENOBUFS:
  case NIO_ENOMEM:
    return NIO_ACCEPT_BACKOFF;
  /* The connection went away before it was taken, or the network failed
  ** it (Linux's accept(2) passes on the new socket's pending network
  ** errors; AcceptEx the reset of a client gone before it completed). */
  case NIO_EINTR:
  case NIO_EAGAIN:
  case NIO_ECONNABORTED:
  case NIO_ECONNRESET:
  case NIO_ETIMEDOUT:
  case NIO_EPERM: /* Linux: a firewall rule refused the connection */
  case NIO_ENETDOWN:
  case NIO_ENETUNREACH:
  case NIO_EHOSTDOWN:
  case NIO_EHOSTUNREACH:
  case NIO_EOPNOTSUPP:
  /* Windows: a client that reset before its AcceptEx completed fails
  ** SO_UPDATE_ACCEPT_CONTEXT with WSAENOTCONN (seen under Wine). */
  case NIO_ENOTCONN:
#ifndef _WIN32
  /* Linux-only codes outside the NIO_E* list (equal to -errno there). */
  case -EPROTO:
  case -ENOPROTOOPT:
  case -ENONET:
#endif
    return NIO_ACCEPT_SKIP;
  default:
    return NIO_ACCEPT_FATAL;
  }
}

int nio__port_cancel(nio_port *p, nio_req *r) {
  if (!r->active) return NIO_ENOENT;
  return p->ops->cancel(p, r);
}

int nio__port_pending(nio_port *p, const nio_req *r) {
  return r->active && p->ops->pending ? p->ops->pending(p, r) : 0;
}

int nio__port_keep(nio_port *p, nio_req *r, const char *data) {
  return p->ops->keep ? p->ops->keep(p, r, data) : NIO_ENOBUFS;
}

void nio__port_release(nio_port *p, const char *data) {
  if (p->ops->release) p->ops->release(p, data);
}

int nio__port_wait(nio_port *p, int timeout_ms) {
  return p->ops->wait(p, timeout_ms);
}

int nio__port_post(nio_port *p) {
  return p->ops->post(p);
}
