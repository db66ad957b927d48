/*
** iocp.c: the IOCP backend of the completion port (Windows) -- overlapped
** AcceptEx/ConnectEx/WSARecv/WSASend reaped with
** GetQueuedCompletionStatusEx.
**
** How a request moves: submit() allocates the request's overlapped state
** (req->bkptr) and puts it on the run queue; wait() runs the queue, issuing
** the overlapped calls, then reaps completion packets in batches. Sockets
** are in FILE_SKIP_COMPLETION_PORT_ON_SUCCESS mode, so a call that succeeds
** at once posts no packet: its OVERLAPPED goes on the ready list instead
** and is handled in the same wait() like a packet. Nothing ever calls back
** from inside submit() or cancel().
**
** Receiving: a zero-byte WSARecv waits for data without a buffer (idle
** connections hold none); when it completes, a plain non-blocking recv()
** copies into the port's one buffer, which the callback sees.
**
** Accepting: a multishot accept keeps u.accept.depth AcceptEx calls posted
** (IOCP_ACCEPTS when 0, at most IOCP_ACCEPTS_MAX), each with its own
** pre-made socket; each completion is delivered with
** NIO_CQE_MORE and its slot posted again.
**
** Ownership: the overlapped state of a request is the backend's, allocated
** at submit and freed just before the final callback; it is freed only
** when no OVERLAPPED of it is still known to the kernel -- after a cancel
** (CancelIoEx) the ERROR_OPERATION_ABORTED packet is waited for.
*/
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include "port.h"
#include "../util/log.h"
#include <mswsock.h>

#define IOCP_BUF_SIZE (64 * 1024)
#define IOCP_MAX_ENTRIES 128
#define IOCP_ACCEPTS 4
#define IOCP_ACCEPTS_MAX 1024
#define IOCP_SEND_BUFS 64
/* Per run of one request, so one busy socket cannot starve the others. */
#define IOCP_RECV_BATCH 16
#define IOCP_WAKE_KEY ((ULONG_PTR)1)
/* AcceptEx wants room for each address plus 16 bytes. */
#define IOCP_ADDR_SPACE ((DWORD)sizeof(struct sockaddr_storage) + 16)

/* What an OVERLAPPED belongs to: the first member of both kinds. */
typedef struct iocp_ov {
  OVERLAPPED ov;
  struct iocp_ov *next_ready; /* on the ready list (synchronous success) */
  DWORD ready_bytes;
  uint8_t kind; /* OV_IO or OV_ACCEPT */
} iocp_ov;

enum { OV_IO = 1, OV_ACCEPT };

/* io->state: where a single-OVERLAPPED request is. */
enum {
  IO_QUEUED = 1, /* on the run queue, nothing issued */
  IO_PENDING,    /* an overlapped call is out (or on the ready list) */
  IO_RUNNING     /* being run by wait(), maybe inside its callback */
};

/* The state of a recv, send or connect. */
typedef struct iocp_io {
  iocp_ov o;
  nio_req *r;
  uint8_t state;
  uint8_t canceled;
  uint64_t total; /* send: bytes sent so far */
  /* recvfrom: what WSARecvFrom writes at completion, so it lives here. */
  INT fromlen;
  DWORD dflags;
} iocp_io;

typedef struct iocp_accept iocp_accept;

typedef struct iocp_slot {
  iocp_ov o;
  iocp_accept *acc;
  SOCKET s;     /* the socket AcceptEx fills, or INVALID_SOCKET */
  uint8_t busy; /* an AcceptEx is out (or on the ready list) */
  char addrs[2 * IOCP_ADDR_SPACE];
} iocp_slot;

/* The state of a multishot accept, the backend's from submit until the
** final completion, which comes only once no AcceptEx of it is out (busy,
** libuv's reqs_pending): also after the listener was closed under it. */
struct iocp_accept {
  nio_req *r;
  int family;
  int busy; /* slots with an AcceptEx out */
  int err;  /* a fatal error: stop posting, final completion due */
  uint8_t canceled;
  uint8_t closed; /* close_listener closed r->fd: its handle value may
                  ** belong to another socket now, never use it */
  uint8_t queued; /* on the run queue */
  int nslots;
  iocp_slot slots[]; /* nslots */
};

/* Owned by the worker thread; only the handle is used by other threads
** (post). */
typedef struct iocp_port {
  nio_port base;
  HANDLE iocp;
  LPFN_ACCEPTEX acceptex;
  LPFN_CONNECTEX connectex;
  LPFN_GETACCEPTEXSOCKADDRS getaddrs; /* looked up for completeness: the
                                      ** engine asks getpeername() */
  int skip_ok;    /* FILE_SKIP_COMPLETION_PORT_ON_SUCCESS usable */
  SOCKET *noskip; /* sockets for which it could not be set */
  int nnoskip, capnoskip;
  nio_list q;             /* run queue, of nio_req.bklink */
  iocp_ov *rhead, *rtail; /* ready list */
  char *buf;              /* recv buffer, valid in one callback */
  OVERLAPPED_ENTRY entries[IOCP_MAX_ENTRIES];
} iocp_port;

static int wsa_err(void) {
  return nio_translate_sys_error(WSAGetLastError());
}

static void iocp_enqueue(iocp_port *p, nio_req *r) {
  nio__list_push_back(&p->q, &r->bklink);
}

static int iocp_skips(iocp_port *p, SOCKET s) {
  if (!p->skip_ok) return 0;
  for (int i = 0; i < p->nnoskip; i++)
    if (p->noskip[i] == s) return 0;
  return 1;
}

/* An overlapped call on socket s returned at once with success: with skip
** mode no packet follows, so the completion is queued here. */
static void iocp_sync_ok(iocp_port *p, SOCKET s, iocp_ov *o, DWORD bytes) {
  if (!iocp_skips(p, s)) return; /* a packet will come */
  o->ready_bytes = bytes;
  o->next_ready = NULL;
  if (p->rtail)
    p->rtail->next_ready = o;
  else
    p->rhead = o;
  p->rtail = o;
}

/* The result of a finished OVERLAPPED: 0 or NIO_E*. Read from the
** OVERLAPPED itself (WSAGetOverlappedResult does not wait here), so a
** socket closed in the meantime does not matter. */
static int iocp_ov_result(SOCKET s, OVERLAPPED *ov) {
  DWORD bytes, flags;
  if (ov->Internal == 0) return 0;
  if (WSAGetOverlappedResult(s, ov, &bytes, FALSE, &flags)) return 0;
  return wsa_err();
}

/* ---- single requests: recv, send, connect -------------------------- */

/* The final completion; the state is freed first, so the callback may
** submit r again or free it. */
static void io_finish_f(iocp_port *p, nio_req *r, int res, const char *data,
                        unsigned flags) {
  free(r->bkptr);
  r->bkptr = NULL;
  r->active = 0;
  nio__port_done(&p->base, r);
  r->cb(r, res, data, flags);
}

static void io_finish(iocp_port *p, nio_req *r, int res, const char *data) {
  io_finish_f(p, r, res, data, 0);
}

/* ---- datagrams: recvfrom, sendto ------------------------------------ */

/* A datagram op ended (a packet, the ready list, or a call that failed at
** once, which posts no packet). A datagram longer than the buffer fails
** with WSAEMSGSIZE after filling it: delivered cut, with NIO_CQE_TRUNC.
** Windows reports an ICMP "port unreachable" as WSAECONNRESET; the port's
** contract says NIO_ECONNREFUSED, as Linux does. */
static int io_dgram_done(iocp_port *p, iocp_io *io, DWORD bytes, int res) {
  nio_req *r = io->r;
  if (res == NIO_ECONNRESET) res = NIO_ECONNREFUSED;
  if (r->op == NIO_OP_SENDTO || (res < 0 && res != NIO_EMSGSIZE)) {
    if (res < 0 && io->canceled) res = NIO_ECANCELED;
    io_finish(p, r, res < 0 ? res : (int)bytes, NULL);
    return 1;
  }
  if (r->u.dgram.addr != NULL) r->u.dgram.addr->len = (uint32_t)io->fromlen;
  if (res == NIO_EMSGSIZE)
    io_finish_f(p, r, (int)r->u.dgram.len, r->u.dgram.buf, NIO_CQE_TRUNC);
  else
    io_finish(p, r, (int)bytes, r->u.dgram.buf);
  return 1;
}

/* The caller's buffer is posted: no zero-byte read first, because a
** zero-byte read of a datagram socket would take the datagram. */
static int io_run_recvfrom(iocp_port *p, iocp_io *io) {
  nio_req *r = io->r;
  nio_addr *a = r->u.dgram.addr;
  WSABUF b;
  DWORD bytes = 0;
  int err;
  b.buf = r->u.dgram.buf;
  b.len = r->u.dgram.len;
  io->dflags = 0;
  io->fromlen = (INT)sizeof a->ss;
  memset(&io->o.ov, 0, sizeof io->o.ov);
  io->state = IO_PENDING;
  if (WSARecvFrom(r->fd, &b, 1, &bytes, &io->dflags,
                  a ? (struct sockaddr *)&a->ss : NULL, a ? &io->fromlen : NULL,
                  &io->o.ov, NULL) == 0) {
    iocp_sync_ok(p, r->fd, &io->o, bytes);
    return 0;
  }
  if ((err = WSAGetLastError()) == WSA_IO_PENDING) return 0;
  return io_dgram_done(p, io, b.len, nio_translate_sys_error(err));
}

static int io_run_sendto(iocp_port *p, iocp_io *io) {
  nio_req *r = io->r;
  const nio_addr *a = r->u.dgram.addr;
  WSABUF b;
  DWORD sent = 0;
  int err;
  b.buf = r->u.dgram.buf;
  b.len = r->u.dgram.len;
  memset(&io->o.ov, 0, sizeof io->o.ov);
  io->state = IO_PENDING;
  if (WSASendTo(r->fd, &b, 1, &sent, 0,
                a ? (const struct sockaddr *)&a->ss : NULL, a ? (int)a->len : 0,
                &io->o.ov, NULL) == 0) {
    iocp_sync_ok(p, r->fd, &io->o, sent);
    return 0;
  }
  if ((err = WSAGetLastError()) == WSA_IO_PENDING) return 0;
  return io_dgram_done(p, io, 0, nio_translate_sys_error(err));
}

static int io_issue_recv(iocp_port *p, iocp_io *io);

/* Data may be there (the zero-byte read completed, or the request is new):
** read what there is into the port's buffer. */
static int io_run_recv(iocp_port *p, iocp_io *io) {
  nio_req *r = io->r;
  int max = IOCP_BUF_SIZE, got, n = 0, err;
  if (r->u.recv.max > 0 && r->u.recv.max < (uint32_t)max)
    max = (int)r->u.recv.max;
  for (int i = 0; i < IOCP_RECV_BATCH; i++) {
    got = recv(r->fd, p->buf, max, 0);
    if (got == SOCKET_ERROR) {
      err = WSAGetLastError();
      if (err == WSAEINTR) continue;
      if (err == WSAEWOULDBLOCK) return n + io_issue_recv(p, io);
      io_finish(p, r, nio_translate_sys_error(err), NULL);
      return n + 1;
    }
    n++;
    if (got == 0 || !(r->flags & NIO_REQ_MULTISHOT)) {
      io_finish(p, r, got, p->buf);
      return n;
    }
    r->cb(r, got, p->buf, NIO_CQE_MORE);
    if (io->canceled) {
      io_finish(p, r, NIO_ECANCELED, NULL);
      return n + 1;
    }
  }
  io->state = IO_QUEUED;
  iocp_enqueue(p, r);
  return n;
}

/* Wait for data without a buffer. Returns the completions delivered (a
** call that fails at once finishes the request). */
static int io_issue_recv(iocp_port *p, iocp_io *io) {
  nio_req *r = io->r;
  WSABUF b = {0, NULL};
  DWORD bytes = 0, flags = 0;
  memset(&io->o.ov, 0, sizeof io->o.ov);
  io->state = IO_PENDING;
  if (WSARecv(r->fd, &b, 1, &bytes, &flags, &io->o.ov, NULL) == 0) {
    iocp_sync_ok(p, r->fd, &io->o, bytes);
    return 0;
  }
  if (WSAGetLastError() == WSA_IO_PENDING) return 0;
  io_finish(p, r, wsa_err(), NULL);
  return 1;
}

/* Send from where the iov array stands; completes when all went. */
static int io_run_send(iocp_port *p, iocp_io *io) {
  nio_req *r = io->r;
  WSABUF bufs[IOCP_SEND_BUFS];
  nio_iov *iov = r->u.send.iov;
  int cnt = r->u.send.iovcnt, nb = 0;
  DWORD sent = 0;
  while (cnt > 0 && iov->len == 0) iov++, cnt--;
  r->u.send.iov = iov;
  r->u.send.iovcnt = cnt;
  if (cnt == 0) {
    io_finish(p, r, (int)io->total, NULL);
    return 1;
  }
  for (int i = 0; i < cnt && nb < IOCP_SEND_BUFS; i++) {
    if (iov[i].len == 0) continue;
    bufs[nb].buf = iov[i].base;
    bufs[nb].len = (ULONG)iov[i].len; /* the total fits an int */
    nb++;
  }
  memset(&io->o.ov, 0, sizeof io->o.ov);
  io->state = IO_PENDING;
  /* Winsock captures the WSABUF array before returning, so a stack array
  ** is fine; the bytes it names are the caller's until completion. */
  if (WSASend(r->fd, bufs, (DWORD)nb, &sent, 0, &io->o.ov, NULL) == 0) {
    iocp_sync_ok(p, r->fd, &io->o, sent);
    return 0;
  }
  if (WSAGetLastError() == WSA_IO_PENDING) return 0;
  io_finish(p, r, wsa_err(), NULL);
  return 1;
}

/* Advance the iov array past what a completion sent. */
static void io_sent(iocp_io *io, DWORD sent) {
  nio_req *r = io->r;
  nio_iov *iov = r->u.send.iov;
  int cnt = r->u.send.iovcnt;
  size_t left = sent;
  io->total += sent;
  while (cnt > 0 && left >= iov->len) left -= iov->len, iov++, cnt--;
  if (left > 0 && cnt > 0) {
    iov->base = (char *)iov->base + left;
    iov->len -= left;
  }
  r->u.send.iov = iov;
  r->u.send.iovcnt = cnt;
}

/* ConnectEx needs a bound socket: bind to the any address of the family
** unless the caller bound it already (EINVAL). */
static int io_run_connect(iocp_port *p, iocp_io *io) {
  nio_req *r = io->r;
  const nio_addr *a = r->u.connect.addr;
  struct sockaddr_storage any;
  int alen, err;
  memset(&any, 0, sizeof any);
  any.ss_family = a->ss.ss_family;
  alen = a->ss.ss_family == AF_INET6 ? (int)sizeof(struct sockaddr_in6)
                                     : (int)sizeof(struct sockaddr_in);
  if (bind(r->fd, (struct sockaddr *)&any, alen) != 0 &&
      (err = WSAGetLastError()) != WSAEINVAL) {
    io_finish(p, r, nio_translate_sys_error(err), NULL);
    return 1;
  }
  memset(&io->o.ov, 0, sizeof io->o.ov);
  io->state = IO_PENDING;
  if (p->connectex(r->fd, (const struct sockaddr *)&a->ss, (int)a->len, NULL, 0,
                   NULL, &io->o.ov)) {
    iocp_sync_ok(p, r->fd, &io->o, 0);
    return 0;
  }
  if (WSAGetLastError() == ERROR_IO_PENDING) return 0;
  io_finish(p, r, wsa_err(), NULL);
  return 1;
}

/* Runs a request taken off the run queue. */
static int io_run(iocp_port *p, iocp_io *io) {
  nio_req *r = io->r;
  if (io->canceled) {
    io_finish(p, r, NIO_ECANCELED, NULL);
    return 1;
  }
  io->state = IO_RUNNING;
  switch (r->op) {
  case NIO_OP_RECV:
    return io_run_recv(p, io);
  case NIO_OP_SEND:
    return io_run_send(p, io);
  case NIO_OP_CONNECT:
    return io_run_connect(p, io);
  case NIO_OP_RECVFROM:
    return io_run_recvfrom(p, io);
  case NIO_OP_SENDTO:
    return io_run_sendto(p, io);
  default:
    io_finish(p, r, NIO_EINVAL, NULL);
    return 1;
  }
}

/* An OVERLAPPED of a single request finished (packet or ready list). */
static int io_complete(iocp_port *p, iocp_io *io, DWORD bytes, int res) {
  nio_req *r = io->r;
  io->state = IO_RUNNING;
  switch (r->op) {
  case NIO_OP_RECV:
    /* A canceled read loses nothing: the data stays in the socket. */
    if (io->canceled) res = NIO_ECANCELED;
    if (res < 0) {
      io_finish(p, r, res, NULL);
      return 1;
    }
    return io_run_recv(p, io);
  case NIO_OP_SEND:
    if (res < 0) {
      io_finish(p, r, res, NULL);
      return 1;
    }
    io_sent(io, bytes);
    if (io->canceled && r->u.send.iovcnt > 0) {
      io_finish(p, r, NIO_ECANCELED, NULL);
      return 1;
    }
    return io_run_send(p, io); /* the rest of a short send, or done */
  case NIO_OP_CONNECT:
    /* Makes getpeername/shutdown work on the socket. */
    if (res == 0 &&
        setsockopt(r->fd, SOL_SOCKET, SO_UPDATE_CONNECT_CONTEXT, NULL, 0) != 0)
      res = wsa_err();
    io_finish(p, r, res, NULL);
    return 1;
  case NIO_OP_RECVFROM:
  case NIO_OP_SENDTO:
    return io_dgram_done(p, io, bytes, res);
  default:
    io_finish(p, r, NIO_EINVAL, NULL);
    return 1;
  }
}

/* ---- accept -------------------------------------------------------- */

static int acc_final_due(iocp_accept *acc) {
  return acc->busy == 0 && (acc->canceled || acc->err != 0);
}

/* Takes r off the run queue (a cancel may have queued it). acc->queued
** says r is on p->q, never on a batch iocp_run_queues() took off it: a
** request of the batch is finished only by its own run (acc_run clears
** queued first), as completions are dispatched after the batch. */
static void iocp_dequeue(iocp_port *p, nio_req *r) {
  nio__list_remove(&p->q, &r->bklink);
}

static void acc_finish(iocp_port *p, nio_req *r) {
  iocp_accept *acc = r->bkptr;
  if (acc->queued) iocp_dequeue(p, r);
  int res = acc->canceled ? NIO_ECANCELED : acc->err;
  for (int i = 0; i < acc->nslots; i++)
    if (acc->slots[i].s != INVALID_SOCKET) closesocket(acc->slots[i].s);
  io_finish(p, r, res, NULL);
}

/* Errors of one incoming connection, not of the listener. */
static int acc_skippable(int err) {
  return nio__port_accept_error(err) == NIO_ACCEPT_SKIP;
}

/* Post one AcceptEx. A failure to make the socket (EMFILE, ENOBUFS) or to
** post ends the request: the other slots are taken back and the final
** completion carries the error, for the owner to back off. Only an error
** of one connection is retried here, a few times. */
static void acc_post(iocp_port *p, iocp_accept *acc, iocp_slot *sl) {
  nio_req *r = acc->r;
  DWORD bytes = 0;
  int res, tries = 0;
again:
  if (sl->s == INVALID_SOCKET &&
      (res = nio__sock_tcp(acc->family, &sl->s)) < 0) {
    sl->s = INVALID_SOCKET;
    acc->err = res;
    return;
  }
  memset(&sl->o.ov, 0, sizeof sl->o.ov);
  sl->busy = 1;
  acc->busy++;
  if (p->acceptex(r->fd, sl->s, sl->addrs, 0, IOCP_ADDR_SPACE, IOCP_ADDR_SPACE,
                  &bytes, &sl->o.ov)) {
    iocp_sync_ok(p, r->fd, &sl->o, bytes);
    return;
  }
  if ((res = WSAGetLastError()) == ERROR_IO_PENDING) return;
  sl->busy = 0;
  acc->busy--;
  res = nio_translate_sys_error(res);
  closesocket(sl->s);
  sl->s = INVALID_SOCKET;
  if (acc_skippable(res) && ++tries < 4) goto again;
  if (acc->busy == 0 || !acc_skippable(res)) acc->err = res;
}

/* Post every idle slot unless stopping; after a fatal error take the
** others back; deliver the final completion once all are back. */
static int acc_rearm(iocp_port *p, iocp_accept *acc) {
  if (!acc->canceled)
    for (int i = 0; i < acc->nslots && acc->err == 0; i++)
      if (!acc->slots[i].busy) acc_post(p, acc, &acc->slots[i]);
  if (acc->err != 0 && !acc->canceled)
    for (int i = 0; i < acc->nslots; i++)
      if (acc->slots[i].busy)
        CancelIoEx((HANDLE)acc->r->fd, &acc->slots[i].o.ov);
  if (acc_final_due(acc)) {
    acc_finish(p, acc->r);
    return 1;
  }
  return 0;
}

static int acc_run(iocp_port *p, iocp_accept *acc) {
  acc->queued = 0;
  return acc_rearm(p, acc);
}

static int acc_complete(iocp_port *p, iocp_slot *sl, int res) {
  iocp_accept *acc = sl->acc;
  nio_req *r = acc->r;
  SOCKET s = sl->s;
  SOCKET lfd = r->fd;
  int n = 0;
  sl->busy = 0;
  acc->busy--;
  /* Accepted just before the close, or aborted by it: the owner closes a
  ** listener to stop, so the connection goes too. */
  if (acc->closed) res = NIO_ECANCELED;
  if (res == 0 && setsockopt(s, SOL_SOCKET, SO_UPDATE_ACCEPT_CONTEXT,
                             (char *)&lfd, sizeof lfd) != 0)
    res = wsa_err();
  if (res == 0 && (uintptr_t)s > INT_MAX) res = NIO_EMFILE; /* never seen */
  if (res == 0) {
    /* The socket is the owner's now, also when a cancel raced it. */
    sl->s = INVALID_SOCKET;
    r->cb(r, (int)s, NULL, NIO_CQE_MORE);
    n++;
  } else {
    closesocket(s);
    sl->s = INVALID_SOCKET;
    if (res != NIO_ECANCELED && !acc_skippable(res) && acc->err == 0) {
      /* Fatal for the listener (closed under us, out of memory): deliver
      ** it as the final result once every slot is back. */
      acc->err = res;
    }
  }
  return n + acc_rearm(p, acc);
}

/* ---- the loop ------------------------------------------------------ */

static int iocp_run(iocp_port *p, nio_req *r) {
  if (r->op == NIO_OP_ACCEPT) return acc_run(p, r->bkptr);
  return io_run(p, r->bkptr);
}

/* One finished OVERLAPPED. */
static int iocp_dispatch(iocp_port *p, iocp_ov *o, DWORD bytes) {
  if (o->kind == OV_ACCEPT) {
    iocp_slot *sl = (iocp_slot *)o;
    if (sl->acc->closed) return acc_complete(p, sl, NIO_ECANCELED);
    return acc_complete(p, sl, iocp_ov_result(sl->acc->r->fd, &o->ov));
  } else {
    iocp_io *io = (iocp_io *)o;
    return io_complete(p, io, bytes, iocp_ov_result(io->r->fd, &o->ov));
  }
}

/* Runs what was queued before this call, then the ready list as it was;
** what callbacks add meanwhile waits for the next turn. */
static int iocp_run_queues(iocp_port *p) {
  nio_list q = p->q;
  nio_link *k;
  iocp_ov *o, *onext;
  int n = 0;
  p->q.first = p->q.last = NULL;
  while ((k = nio__list_pop_front(&q)) != NULL)
    n += iocp_run(p, nio__list_item(k, nio_req, bklink));
  o = p->rhead;
  p->rhead = p->rtail = NULL;
  for (; o; o = onext) {
    onext = o->next_ready;
    o->next_ready = NULL;
    n += iocp_dispatch(p, o, o->ready_bytes);
  }
  return n;
}

static int iocp_wait(nio_port *pp, int timeout_ms) {
  iocp_port *p = (iocp_port *)pp;
  ULONG ne = 0;
  DWORD err;
  int n = iocp_run_queues(p);
  if (n > 0 || !nio__list_empty(&p->q) || p->rhead != NULL) timeout_ms = 0;
  if (!GetQueuedCompletionStatusEx(
          p->iocp, p->entries, IOCP_MAX_ENTRIES, &ne,
          timeout_ms < 0 ? INFINITE : (DWORD)timeout_ms, FALSE)) {
    err = GetLastError();
    if (err == WAIT_TIMEOUT) return n;
    return n > 0 ? n : nio_translate_sys_error((int)err);
  }
  for (ULONG i = 0; i < ne; i++) {
    OVERLAPPED_ENTRY *e = &p->entries[i];
    if (e->lpCompletionKey == IOCP_WAKE_KEY || e->lpOverlapped == NULL)
      continue;
    n += iocp_dispatch(p, (iocp_ov *)e->lpOverlapped,
                       e->dwNumberOfBytesTransferred);
  }
  return n;
}

static int iocp_submit(nio_port *pp, nio_req *r) {
  iocp_port *p = (iocp_port *)pp;
  nio_addr la;
  switch (r->op) {
  case NIO_OP_ACCEPT: {
    iocp_accept *acc;
    BOOL listening = FALSE;
    int optlen = sizeof listening;
    uint32_t n = r->u.accept.depth;
    n = n == 0 ? IOCP_ACCEPTS : n > IOCP_ACCEPTS_MAX ? IOCP_ACCEPTS_MAX : n;
    acc = calloc(1, sizeof *acc + n * sizeof acc->slots[0]);
    if (acc == NULL) return NIO_ENOMEM;
    acc->r = r;
    acc->nslots = (int)n;
    /* An unbound socket has no name: AcceptEx reports it (EINVAL) as the
    ** final completion, as accept(2) would. */
    acc->family =
        nio__sock_getsockname(r->fd, &la) == 0 ? la.ss.ss_family : AF_INET;
    /* Wine's AcceptEx on a socket that is not listening stays pending
    ** instead of failing: ask first, so both fail alike. */
    if (getsockopt(r->fd, SOL_SOCKET, SO_ACCEPTCONN, (char *)&listening,
                   &optlen) != 0 ||
        !listening)
      acc->err = NIO_EINVAL;
    for (int i = 0; i < acc->nslots; i++) {
      acc->slots[i].o.kind = OV_ACCEPT;
      acc->slots[i].acc = acc;
      acc->slots[i].s = INVALID_SOCKET;
    }
    acc->queued = 1;
    r->bkptr = acc;
    break;
  }
  case NIO_OP_CONNECT:
  case NIO_OP_RECV:
  case NIO_OP_SEND:
  case NIO_OP_RECVFROM:
  case NIO_OP_SENDTO: {
    iocp_io *io;
    if ((io = calloc(1, sizeof *io)) == NULL) return NIO_ENOMEM;
    io->o.kind = OV_IO;
    io->r = r;
    io->state = IO_QUEUED;
    r->bkptr = io;
    break;
  }
  default:
    return NIO_EINVAL;
  }
  r->active = 1;
  r->bkflags = 0;
  r->bkdata = 0;
  iocp_enqueue(p, r);
  return 0;
}

static int iocp_cancel(nio_port *pp, nio_req *r) {
  iocp_port *p = (iocp_port *)pp;
  if (r->op == NIO_OP_ACCEPT) {
    iocp_accept *acc = r->bkptr;
    if (acc->canceled) return 0;
    acc->canceled = 1;
    for (int i = 0; i < acc->nslots; i++)
      if (acc->slots[i].busy) CancelIoEx((HANDLE)r->fd, &acc->slots[i].o.ov);
    /* Nothing out: the run queue delivers the final completion. */
    if (acc->busy == 0 && !acc->queued) {
      acc->queued = 1;
      iocp_enqueue(p, r);
    }
    return 0;
  } else {
    iocp_io *io = r->bkptr;
    if (io->canceled) return 0;
    io->canceled = 1;
    /* QUEUED: the run delivers it; RUNNING: checked after the callback;
    ** PENDING: the aborted packet delivers it. ERROR_NOT_FOUND means the
    ** call finished and its packet (or ready entry) is on the way. */
    if (io->state == IO_PENDING) CancelIoEx((HANDLE)r->fd, &io->o.ov);
    return 0;
  }
}

/* Sockets are associated with the port for life (Windows has no way to
** undo it); each gets skip-on-success mode. */
static int iocp_add(nio_port *pp, nio_sock fd) {
  iocp_port *p = (iocp_port *)pp;
  SOCKET *t;
  if (CreateIoCompletionPort((HANDLE)fd, p->iocp, 0, 0) == NULL)
    return nio_translate_sys_error((int)GetLastError());
  if (p->skip_ok && !SetFileCompletionNotificationModes(
                        (HANDLE)fd, FILE_SKIP_COMPLETION_PORT_ON_SUCCESS |
                                        FILE_SKIP_SET_EVENT_ON_HANDLE)) {
    if (p->nnoskip == p->capnoskip) {
      int n = p->capnoskip ? p->capnoskip * 2 : 8;
      if ((t = realloc(p->noskip, (size_t)n * sizeof *t)) == NULL)
        return NIO_ENOMEM;
      p->noskip = t;
      p->capnoskip = n;
    }
    p->noskip[p->nnoskip++] = fd;
  }
  return 0;
}

static void iocp_remove(nio_port *pp, nio_sock fd) {
  iocp_port *p = (iocp_port *)pp;
  for (int i = 0; i < p->nnoskip; i++)
    if (p->noskip[i] == fd) {
      p->noskip[i] = p->noskip[--p->nnoskip];
      break;
    }
}

/* Closing the socket aborts every AcceptEx posted on it: each comes back
** as a packet (or is on the ready list already), and the last one back
** delivers the final completion. Nothing else is needed to stop listening
** at once, so no handle value is ever closed late. */
static void iocp_close_listener(nio_port *pp, nio_sock fd, nio_req *acc) {
  iocp_port *p = (iocp_port *)pp;
  iocp_accept *a = acc ? acc->bkptr : NULL;
  iocp_remove(pp, fd);
  if (a != NULL) {
    a->closed = 1;
    a->canceled = 1;
  }
  closesocket(fd);
  /* Nothing out: the run queue delivers the final completion. */
  if (a != NULL && a->busy == 0 && !a->queued) {
    a->queued = 1;
    iocp_enqueue(p, acc);
  }
}

/* Any thread. */
static int iocp_post(nio_port *pp) {
  iocp_port *p = (iocp_port *)pp;
  if (!PostQueuedCompletionStatus(p->iocp, 0, IOCP_WAKE_KEY, NULL))
    return nio_translate_sys_error((int)GetLastError());
  return 0;
}

static void iocp_close(nio_port *pp) {
  iocp_port *p = (iocp_port *)pp;
  if (p == NULL) return;
  if (p->iocp) CloseHandle(p->iocp);
  free(p->noskip);
  free(p->buf);
  free(p);
}

static int iocp_lookup(SOCKET s, GUID guid, void *fn, size_t fnsize) {
  DWORD bytes = 0;
  if (WSAIoctl(s, SIO_GET_EXTENSION_FUNCTION_POINTER, &guid, sizeof guid, fn,
               (DWORD)fnsize, &bytes, NULL, NULL) != 0)
    return wsa_err();
  return 0;
}

/* The extension functions are looked up once per port, on a probe socket
** (the Microsoft provider serves IPv4 and IPv6 with the same ones). Skip
** mode is used only on an IFS provider: a layered non-IFS provider may
** still post packets for calls that succeeded at once. */
static int iocp_open(nio_port **out) {
  iocp_port *p;
  SOCKET s = INVALID_SOCKET;
  WSAPROTOCOL_INFOW info;
  int r, len = sizeof info;
  GUID g_acc = WSAID_ACCEPTEX, g_con = WSAID_CONNECTEX,
       g_addrs = WSAID_GETACCEPTEXSOCKADDRS;
  *out = NULL;
  if ((r = nio__sys_init()) != 0) return r;
  if ((p = calloc(1, sizeof *p)) == NULL) return NIO_ENOMEM;
  p->base.ops = &nio__iocp_ops;
  if ((p->buf = malloc(IOCP_BUF_SIZE)) == NULL) {
    r = NIO_ENOMEM;
    goto fail;
  }
  if ((p->iocp = CreateIoCompletionPort(INVALID_HANDLE_VALUE, NULL, 0, 1)) ==
      NULL) {
    r = nio_translate_sys_error((int)GetLastError());
    goto fail;
  }
  if ((r = nio__sock_tcp(AF_INET, &s)) < 0) goto fail;
  if ((r = iocp_lookup(s, g_acc, &p->acceptex, sizeof p->acceptex)) < 0 ||
      (r = iocp_lookup(s, g_con, &p->connectex, sizeof p->connectex)) < 0 ||
      (r = iocp_lookup(s, g_addrs, &p->getaddrs, sizeof p->getaddrs)) < 0)
    goto fail;
  p->skip_ok =
      getsockopt(s, SOL_SOCKET, SO_PROTOCOL_INFOW, (char *)&info, &len) == 0 &&
      (info.dwServiceFlags1 & XP1_IFS_HANDLES) != 0;
  if (!p->skip_ok)
    nio__log_once(NIO_LOG_DEBUG, "iocp-noskip",
                  "netio: iocp: non-IFS socket provider, completions on "
                  "success are not skipped");
  nio__sock_close(s);
  *out = &p->base;
  return 0;
fail:
  if (s != INVALID_SOCKET) nio__sock_close(s);
  iocp_close(&p->base);
  return r;
}

const nio_port_ops nio__iocp_ops = {
    .name = "iocp",
    .open = iocp_open,
    .close = iocp_close,
    .add = iocp_add,
    .remove = iocp_remove,
    .close_listener = iocp_close_listener,
    .submit = iocp_submit,
    .cancel = iocp_cancel,
    .wait = iocp_wait,
    .post = iocp_post,
};
