/*
** epoll.c: the epoll backend of the completion port -- readiness turned
** into completions inside the backend.
**
** How a request moves: submit() only queues it (QUEUED, on the run queue).
** wait() runs the queue: each request's syscall is tried first; when it
** completes its callback is called, when it would block the request parks
** in its fd's slot (WAITING) and the socket's edge-triggered readiness,
** registered once at add(), brings it back. Because every request tries its
** syscall before waiting, readiness seen while no request waits can simply
** be dropped, and a stale event only costs one EAGAIN.
**
** A slot holds the one read-side (accept, recv, recvfrom) and the one
** write-side (connect, send, sendto) request of an fd from submit until the
*final completion;
** the event's data carries the slot's generation, so events for an fd that
** was removed (and maybe reused) during the same batch are skipped.
**
** cancel() never calls back: it marks the request CANCELED and queues it;
** the next run of the queue delivers NIO_ECANCELED.
*/
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>
#include "port.h"
#include "../util/log.h"

#define EPOLL_BUF_SIZE (64 * 1024)
#define EPOLL_MAX_EVENTS 256
/* Per run of one request, so one busy socket cannot starve the others: a
** request that hits the bound goes back on the run queue for the next turn
** (edge-triggered readiness would not report the rest again). */
#define EPOLL_ACCEPT_BATCH 64
#define EPOLL_RECV_BATCH 16
#define EPOLL_WAKE_KEY UINT64_MAX

/* req->bkflags: a state in the low bits, flags above. */
enum {
  ST_NONE = 0, /* not submitted, or final completion delivered */
  ST_QUEUED,   /* on the run queue, syscall not tried yet this turn */
  ST_WAITING,  /* parked in its slot until readiness */
  ST_RUNNING,  /* being run by wait(), possibly inside its callback */
  ST_CANCELED, /* cancel asked; the final NIO_ECANCELED is due */
  ST_MASK = 7,
  F_CONNECTING = 8 /* connect() said EINPROGRESS */
};

#define req_state(r) ((r)->bkflags & ST_MASK)
#define req_set_state(r, s)                                                    \
  ((r)->bkflags = (uint8_t)(((r)->bkflags & ~ST_MASK) | (s)))

typedef struct epoll_slot {
  nio_req *rd; /* accept or recv, from submit to final completion */
  nio_req *wr; /* connect or send, likewise */
  uint32_t gen;
  uint8_t added;
} epoll_slot;

/* Owned by the worker thread; only efd is touched by other threads
** (post writes to it). */
typedef struct epoll_port {
  nio_port base;
  int epfd;
  int efd;           /* eventfd for post() */
  epoll_slot *slots; /* indexed by fd; realloc'd by add(), so never hold a
                     ** slot pointer across a callback */
  int nslots;
  nio_list q; /* run queue, of nio_req.bklink */
  char *buf;  /* recv buffer, valid during one callback */
  struct epoll_event events[EPOLL_MAX_EVENTS];
} epoll_port;

static int sys_err(void) {
  return nio_translate_sys_error(errno);
}

static epoll_slot *epoll_slot_of(epoll_port *p, nio_sock fd) {
  if (fd < 0 || fd >= p->nslots) return NULL;
  return &p->slots[fd];
}

static void epoll_enqueue(epoll_port *p, nio_req *r) {
  nio__list_push_back(&p->q, &r->bklink);
}

/* The final completion: the slot and the request are released before the
** callback, which may submit the next request on the same fd or free r. */
static void epoll_finish_f(epoll_port *p, nio_req *r, int res, const char *data,
                           unsigned flags) {
  epoll_slot *s = epoll_slot_of(p, r->fd);
  if (s) {
    if (s->rd == r) s->rd = NULL;
    if (s->wr == r) s->wr = NULL;
  }
  r->bkflags = ST_NONE;
  r->active = 0;
  nio__port_done(&p->base, r);
  r->cb(r, res, data, flags);
}

static void epoll_finish(epoll_port *p, nio_req *r, int res, const char *data) {
  epoll_finish_f(p, r, res, data, 0);
}

/* A MORE completion; returns 1 when the callback canceled r (it then gets
** its final completion from the caller). */
static int epoll_more(nio_req *r, int res, const char *data) {
  r->cb(r, res, data, NIO_CQE_MORE);
  return req_state(r) == ST_CANCELED;
}

/* Multishot accept. Errors of one incoming connection are skipped; any
** other error ends the request with a final completion carrying it
** (EMFILE and friends: the owner backs off and submits again). */
static int epoll_run_accept(epoll_port *p, nio_req *r) {
  int n = 0, fd, err;
  for (int i = 0; i < EPOLL_ACCEPT_BATCH; i++) {
    fd = accept4(r->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd >= 0) {
      n++;
      if (epoll_more(r, fd, NULL)) goto canceled;
      continue;
    }
    err = errno;
    if (err == EAGAIN || err == EWOULDBLOCK) {
      req_set_state(r, ST_WAITING);
      return n;
    }
    err = nio_translate_sys_error(err);
    if (nio__port_accept_error(err) == NIO_ACCEPT_SKIP) continue;
    epoll_finish(p, r, err, NULL);
    return n + 1;
  }
  req_set_state(r, ST_QUEUED);
  epoll_enqueue(p, r);
  return n;
canceled:
  epoll_finish(p, r, NIO_ECANCELED, NULL);
  return n + 1;
}

static int epoll_run_recv(epoll_port *p, nio_req *r) {
  size_t max = EPOLL_BUF_SIZE;
  ssize_t got;
  int n = 0;
  if (r->u.recv.max > 0 && r->u.recv.max < max) max = r->u.recv.max;
  for (int i = 0; i < EPOLL_RECV_BATCH; i++) {
    got = recv(r->fd, p->buf, max, 0);
    if (got < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        req_set_state(r, ST_WAITING);
        return n;
      }
      epoll_finish(p, r, sys_err(), NULL);
      return n + 1;
    }
    n++;
    if (got == 0 || !(r->flags & NIO_REQ_MULTISHOT)) {
      epoll_finish(p, r, (int)got, p->buf);
      return n;
    }
    /* Multishot keeps reading until EAGAIN: edge-triggered readiness
    ** would not report what is left. */
    if (epoll_more(r, (int)got, p->buf)) {
      epoll_finish(p, r, NIO_ECANCELED, NULL);
      return n + 1;
    }
  }
  req_set_state(r, ST_QUEUED);
  epoll_enqueue(p, r);
  return n;
}

/* Sends until everything went or the socket is full; the iov array is
** advanced in place and the running total kept in bkdata. */
static int epoll_run_send(epoll_port *p, nio_req *r) {
  struct msghdr msg;
  nio_iov *iov = r->u.send.iov;
  int cnt = r->u.send.iovcnt;
  ssize_t sent;
  size_t left;
  for (;;) {
    while (cnt > 0 && iov->len == 0) iov++, cnt--;
    r->u.send.iov = iov;
    r->u.send.iovcnt = cnt;
    if (cnt == 0) {
      epoll_finish(p, r, (int)r->bkdata, NULL);
      return 1;
    }
    memset(&msg, 0, sizeof msg);
    msg.msg_iov = (struct iovec *)iov;
    msg.msg_iovlen = (size_t)(cnt < IOV_MAX ? cnt : IOV_MAX);
    sent = sendmsg(r->fd, &msg, MSG_NOSIGNAL);
    if (sent < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        req_set_state(r, ST_WAITING);
        return 0;
      }
      epoll_finish(p, r, sys_err(), NULL);
      return 1;
    }
    r->bkdata += (uint64_t)sent;
    left = (size_t)sent;
    while (left > 0 && left >= iov->len) left -= iov->len, iov++, cnt--;
    if (left > 0) {
      iov->base = (char *)iov->base + left;
      iov->len -= left;
    }
  }
}

/* One datagram. MSG_TRUNC makes the kernel return the datagram's real
** length even when the buffer was shorter: the truncation signal. */
static int epoll_run_recvfrom(epoll_port *p, nio_req *r) {
  nio_addr *a = r->u.dgram.addr;
  socklen_t alen = a ? (socklen_t)sizeof a->ss : 0;
  ssize_t got;
  do
    got = recvfrom(r->fd, r->u.dgram.buf, r->u.dgram.len, MSG_TRUNC,
                   a ? (struct sockaddr *)&a->ss : NULL, a ? &alen : NULL);
  while (got < 0 && errno == EINTR);
  if (got < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      req_set_state(r, ST_WAITING);
      return 0;
    }
    epoll_finish(p, r, sys_err(), NULL);
    return 1;
  }
  if (a) a->len = alen;
  if ((size_t)got > r->u.dgram.len)
    epoll_finish_f(p, r, (int)r->u.dgram.len, r->u.dgram.buf, NIO_CQE_TRUNC);
  else
    epoll_finish(p, r, (int)got, r->u.dgram.buf);
  return 1;
}

static int epoll_run_sendto(epoll_port *p, nio_req *r) {
  const nio_addr *a = r->u.dgram.addr;
  ssize_t sent;
  do
    sent = sendto(r->fd, r->u.dgram.buf, r->u.dgram.len, MSG_NOSIGNAL,
                  a ? (const struct sockaddr *)&a->ss : NULL,
                  a ? (socklen_t)a->len : 0);
  while (sent < 0 && errno == EINTR);
  if (sent < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      req_set_state(r, ST_WAITING);
      return 0;
    }
    epoll_finish(p, r, sys_err(), NULL);
    return 1;
  }
  epoll_finish(p, r, (int)sent, NULL);
  return 1;
}

static int epoll_run_connect(epoll_port *p, nio_req *r) {
  const nio_addr *a = r->u.connect.addr;
  int err;
  if (r->bkflags & F_CONNECTING) {
    /* Readiness came: a pending error says it failed; otherwise connect()
    ** again tells "connected" (EISCONN) from "still going" (EALREADY). */
    if ((err = nio__sock_error(r->fd)) != 0) {
      epoll_finish(p, r, err, NULL);
      return 1;
    }
  }
  if (connect(r->fd, (const struct sockaddr *)&a->ss, a->len) == 0 ||
      errno == EISCONN) {
    epoll_finish(p, r, 0, NULL);
    return 1;
  }
  err = errno;
  if (err == EINPROGRESS || err == EALREADY || err == EINTR) {
    r->bkflags |= F_CONNECTING;
    req_set_state(r, ST_WAITING);
    return 0;
  }
  epoll_finish(p, r, nio_translate_sys_error(err), NULL);
  return 1;
}

/* Runs a request taken off the queue or woken by readiness; returns the
** number of completions delivered. */
static int epoll_run(epoll_port *p, nio_req *r) {
  if (req_state(r) == ST_CANCELED) {
    epoll_finish(p, r, NIO_ECANCELED, NULL);
    return 1;
  }
  req_set_state(r, ST_RUNNING);
  switch (r->op) {
  case NIO_OP_ACCEPT:
    return epoll_run_accept(p, r);
  case NIO_OP_RECV:
    return epoll_run_recv(p, r);
  case NIO_OP_SEND:
    return epoll_run_send(p, r);
  case NIO_OP_CONNECT:
    return epoll_run_connect(p, r);
  case NIO_OP_RECVFROM:
    return epoll_run_recvfrom(p, r);
  case NIO_OP_SENDTO:
    return epoll_run_sendto(p, r);
  default:
    epoll_finish(p, r, NIO_EINVAL, NULL);
    return 1;
  }
}

/* Runs what was queued before this call; what callbacks queue meanwhile
** waits for the next turn. */
static int epoll_run_queue(epoll_port *p) {
  nio_list q = p->q;
  nio_link *k;
  int n = 0;
  p->q.first = p->q.last = NULL;
  while ((k = nio__list_pop_front(&q)) != NULL)
    n += epoll_run(p, nio__list_item(k, nio_req, bklink));
  return n;
}

static void epoll_drain_wake(epoll_port *p) {
  uint64_t v;
  while (read(p->efd, &v, sizeof v) < 0 && errno == EINTR) {
  }
}

static int epoll_on_event(epoll_port *p, const struct epoll_event *ev) {
  int fd = (int)(uint32_t)ev->data.u64;
  uint32_t gen = (uint32_t)(ev->data.u64 >> 32);
  uint32_t e = ev->events;
  epoll_slot *s = epoll_slot_of(p, fd);
  nio_req *r;
  int n = 0;
  if (s == NULL || !s->added || s->gen != gen) return 0;
  if ((e & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) && (r = s->rd) &&
      req_state(r) == ST_WAITING)
    n += epoll_run(p, r);
  /* The read side's callback may have removed, re-added or grown the
  ** table. */
  s = epoll_slot_of(p, fd);
  if (s == NULL || !s->added || s->gen != gen) return n;
  if ((e & (EPOLLOUT | EPOLLHUP | EPOLLERR)) && (r = s->wr) &&
      req_state(r) == ST_WAITING)
    n += epoll_run(p, r);
  return n;
}

static int epoll_wait_port(nio_port *pp, int timeout_ms) {
  epoll_port *p = (epoll_port *)pp;
  int n, ne;
  n = epoll_run_queue(p);
  if (n > 0 || !nio__list_empty(&p->q)) timeout_ms = 0;
  ne = epoll_wait(p->epfd, p->events, EPOLL_MAX_EVENTS, timeout_ms);
  if (ne < 0) {
    if (errno != EINTR) return n > 0 ? n : sys_err();
    ne = 0;
  }
  for (int i = 0; i < ne; i++) {
    if (p->events[i].data.u64 == EPOLL_WAKE_KEY)
      epoll_drain_wake(p);
    else
      n += epoll_on_event(p, &p->events[i]);
  }
  return n;
}

/* port.c checked the request (port.h): the fd is added and its side is
** free. */
static int epoll_submit(nio_port *pp, nio_req *r) {
  epoll_port *p = (epoll_port *)pp;
  epoll_slot *s = epoll_slot_of(p, r->fd);
  if (r->op == NIO_OP_ACCEPT || r->op == NIO_OP_RECV ||
      r->op == NIO_OP_RECVFROM)
    s->rd = r;
  else
    s->wr = r;
  r->active = 1;
  r->bkptr = NULL;
  r->bkdata = 0;
  /* Edge-triggered readiness reports every datagram that comes after the
  ** owner's EAGAIN: parked, the request misses none. */
  if (r->op == NIO_OP_RECVFROM && (r->flags & NIO_REQ_POLL_FIRST)) {
    r->bkflags = ST_WAITING;
    return 0;
  }
  r->bkflags = ST_QUEUED;
  epoll_enqueue(p, r);
  return 0;
}

static int epoll_cancel(nio_port *pp, nio_req *r) {
  epoll_port *p = (epoll_port *)pp;
  switch (req_state(r)) {
  case ST_WAITING:
    req_set_state(r, ST_CANCELED);
    epoll_enqueue(p, r);
    break;
  case ST_QUEUED:  /* already queued: the run delivers the cancel */
  case ST_RUNNING: /* its run sees the state after the callback */
    req_set_state(r, ST_CANCELED);
    break;
  default: /* ST_CANCELED: once is enough */
    break;
  }
  return 0;
}

static int epoll_add(nio_port *pp, nio_sock fd) {
  epoll_port *p = (epoll_port *)pp;
  struct epoll_event ev;
  epoll_slot *s;
  int n;
  if (fd >= p->nslots) {
    n = p->nslots ? p->nslots : 64;
    while (n <= fd) n *= 2;
    s = realloc(p->slots, (size_t)n * sizeof *s);
    if (s == NULL) return NIO_ENOMEM;
    memset(s + p->nslots, 0, (size_t)(n - p->nslots) * sizeof *s);
    p->slots = s;
    p->nslots = n;
  }
  s = &p->slots[fd];
  if (s->added) return NIO_EEXIST;
  s->gen++;
  memset(&ev, 0, sizeof ev);
  ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
  ev.data.u64 = ((uint64_t)s->gen << 32) | (uint32_t)fd;
  if (epoll_ctl(p->epfd, EPOLL_CTL_ADD, fd, &ev) != 0) return sys_err();
  s->added = 1;
  s->rd = s->wr = NULL;
  return 0;
}

/* Removing an fd whose requests are still active breaks the contract;
** they are canceled rather than left to hang, and that is logged. */
static void epoll_remove(nio_port *pp, nio_sock fd) {
  epoll_port *p = (epoll_port *)pp;
  epoll_slot *s = epoll_slot_of(p, fd);
  struct epoll_event ev;
  if (s == NULL || !s->added) return;
  memset(&ev, 0, sizeof ev);
  epoll_ctl(p->epfd, EPOLL_CTL_DEL, fd, &ev);
  if (s->rd || s->wr) {
    nio__log(NIO_LOG_DEBUG, "netio: epoll: fd %d removed with active requests",
             (int)fd);
    if (s->rd) epoll_cancel(pp, s->rd);
    if (s->wr) epoll_cancel(pp, s->wr);
  }
  s->rd = s->wr = NULL;
  s->added = 0;
  s->gen++;
}

/* Readiness needs no kernel op to end: once removed, the accept's
** canceled run never touches the fd, which can be closed at once. */
static void epoll_close_listener(nio_port *pp, nio_sock fd, nio_req *acc) {
  epoll_port *p = (epoll_port *)pp;
  epoll_slot *s = epoll_slot_of(p, fd);
  struct epoll_event ev;
  shutdown(fd, SHUT_RDWR);
  if (s != NULL && s->added) {
    memset(&ev, 0, sizeof ev);
    epoll_ctl(p->epfd, EPOLL_CTL_DEL, fd, &ev);
    if (acc != NULL) epoll_cancel(pp, acc);
    s->rd = s->wr = NULL;
    s->added = 0;
    s->gen++;
  }
  close(fd);
}

/* Any thread, and async-signal-safe: one write(2), errno kept (a signal
** handler calls this between a syscall and its errno check). A full
** counter (EAGAIN) already means a wake-up is pending. */
static int epoll_post(nio_port *pp) {
  epoll_port *p = (epoll_port *)pp;
  uint64_t one = 1;
  int saved = errno, r = 0;
  ssize_t w;
  do w = write(p->efd, &one, sizeof one);
  while (w < 0 && errno == EINTR);
  if (w < 0 && errno != EAGAIN) r = sys_err();
  errno = saved;
  return r;
}

static void epoll_close(nio_port *pp) {
  epoll_port *p = (epoll_port *)pp;
  if (p == NULL) return;
  if (p->epfd >= 0) close(p->epfd);
  if (p->efd >= 0) close(p->efd);
  free(p->slots);
  free(p->buf);
  free(p);
}

static int epoll_open(nio_port **out) {
  epoll_port *p;
  struct epoll_event ev;
  int r;
  *out = NULL;
  if ((p = calloc(1, sizeof *p)) == NULL) return NIO_ENOMEM;
  p->base.ops = &nio__epoll_ops;
  p->epfd = p->efd = -1;
  if ((p->buf = malloc(EPOLL_BUF_SIZE)) == NULL) {
    r = NIO_ENOMEM;
    goto fail;
  }
  if ((p->epfd = epoll_create1(EPOLL_CLOEXEC)) < 0 ||
      (p->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0) {
    r = sys_err();
    goto fail;
  }
  memset(&ev, 0, sizeof ev);
  ev.events = EPOLLIN | EPOLLET;
  ev.data.u64 = EPOLL_WAKE_KEY;
  if (epoll_ctl(p->epfd, EPOLL_CTL_ADD, p->efd, &ev) != 0) {
    r = sys_err();
    goto fail;
  }
  *out = &p->base;
  return 0;
fail:
  epoll_close(&p->base);
  return r;
}

const nio_port_ops nio__epoll_ops = {
    .name = "epoll",
    .open = epoll_open,
    .close = epoll_close,
    .add = epoll_add,
    .remove = epoll_remove,
    .close_listener = epoll_close_listener,
    .submit = epoll_submit,
    .cancel = epoll_cancel,
    .wait = epoll_wait_port,
    .post = epoll_post,
};
