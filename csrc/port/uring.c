/*
** uring.c: the io_uring backend of the completion port -- requests are
** SQEs, completions are CQEs, reaped in batches.
**
** user_data of every SQE is the nio_req pointer, so a CQE leads straight to
** its request. Internal SQEs are tagged in the low two bits (a request is at
** least 4-byte aligned): the wake-up read and the cancels carry a constant
** tag and no pointer, so their CQEs never reach a request.
**
** What the kernel holds per request (bkflags): at most one op (F_INFLIGHT),
** from the SQE until a CQE without IORING_CQE_F_MORE. A request is active
** from submit() until just before its final callback, and may cross several
** kernel ops in between: multishot accept and recv re-armed after the kernel
** ends them, a recv re-queued after -ENOBUFS, a short send resumed. Each of
** those re-arms first checks F_CANCELED, and cancel() queues its cancel SQE
** behind any re-armed SQE, so a cancel always finds the op it meant or no op
** at all; either way the request gets exactly one final completion.
**
** The ABA hazard of cancel-by-pointer: a cancel SQE still in the SQ names a
** request whose final completion may be delivered in the same batch, after
** which the owner may reuse the memory and submit again. The new SQE lands
** behind the cancel SQE, and the kernel runs ASYNC_CANCEL inline at
** submission, so the cancel finds nothing and returns -ENOENT.
**
** Receive buffers: one provided-buffer ring (group URING_BGID) of
** nbufs x 64 KiB owned by the port. The kernel picks a buffer only when data
** is there, so an idle connection holds none; the buffer goes back to the
** ring right after the callback that saw it returns, unless the callback
** kept it (keep(): at most nbufs / 2 at once, so that receiving goes on);
** then release() gives it back.
**
** When the SQ is full and submitting cannot free it, requests (and cancels)
** wait in a FIFO backlog (bklink) that wait() drains first.
**
** Test switches: NETIO_TEST_URING_FAIL=1 makes open() fail (NIO_ENOSYS);
** NETIO_TEST_URING_SETUP=defer|coop|plain starts the setup-flag fallback
** chain at that step; NETIO_TEST_URING_BUFS=n (a power of two) shrinks the
** buffer ring to exercise exhaustion.
*/
#include <errno.h>
#include <limits.h>
#include <stdalign.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>
#include <liburing.h>
#include "port.h"
#include "../util/log.h"

/* The send path hands the nio_iov array to the kernel as struct iovec. */
_Static_assert(sizeof(nio_iov) == sizeof(struct iovec), "nio_iov size");
_Static_assert(offsetof(nio_iov, base) == offsetof(struct iovec, iov_base),
               "nio_iov base");
_Static_assert(offsetof(nio_iov, len) == offsetof(struct iovec, iov_len),
               "nio_iov len");
_Static_assert(alignof(nio_req) >= 4, "user_data tags need two free bits");

#define URING_SQ_ENTRIES 1024
#define URING_CQ_ENTRIES 8192
#define URING_BUF_SIZE (64 * 1024)
#define URING_NBUFS 128 /* 8 MiB of address space, touched as used */
#define URING_BGID 0
#define URING_BATCH 128 /* CQEs copied out per pass of the reap loop */
/* A single send SQE carries a 32-bit length; longer runs are resumed. */
#define URING_SEND_MAX (1u << 30)

#define URING_TAG_MASK 3ull
#define URING_TAG_CANCEL 1ull /* constant: the CQE of a cancel SQE */
#define URING_TAG_WAKE 2ull   /* constant: the eventfd read */

/* req->bkflags. */
enum {
  F_INFLIGHT = 1,       /* an op of r is in the SQ or the kernel */
  F_CANCELED = 2,       /* cancel() was called; no re-arm from now on */
  F_BACKLOG = 4,        /* on p->backlog waiting for an SQE for its op */
  F_CANCEL_BACKLOG = 8, /* on p->backlog waiting for an SQE for its cancel */
  F_MSHOT = 16,         /* the recv op in flight is multishot */
  F_CLOSE = 32,         /* close r->fd at the final completion (a listener
                        ** closed with its accept in flight) */
  F_WAITOUT = 64        /* the send's next SQE waits for room first (it came
                        ** back with -EAGAIN) */
};

/* A msghdr for a vectored send or a datagram op (with the iovec a
** datagram's buffer needs), lent to a request (bkptr) from its first
** SQE that needs one to its final completion; kept on a free list by the
** port. */
typedef struct uring_msg {
  struct msghdr m;
  struct iovec iov;
  struct uring_msg *next;
} uring_msg;

/* Owned by the worker thread; other threads only write to evfd (post). */
typedef struct uring_port {
  nio_port base;
  struct io_uring ring;
  int ring_ok;
  int evfd;          /* post() writes here; a read SQE on the ring wakes wait */
  uint64_t evbuf;    /* where that read lands */
  int wake_armed;    /* the read SQE is queued or in the kernel */
  int no_mshot_recv; /* the kernel refused a multishot recv: single-shot */
  unsigned cq_entries;
  struct io_uring_buf_ring *br; /* nbufs entries, registered as URING_BGID */
  size_t br_size;
  char *bufs; /* nbufs * URING_BUF_SIZE; buffer i is lent to the kernel
              ** while it sits in br, to one callback while delivered */
  size_t bufs_size;
  unsigned nbufs;
  unsigned nkept; /* buffers lent to owners by keep() */
  int cur_bid;    /* buffer of the completion being delivered, or -1 */
  int cur_kept;   /* ... and keep() was called on it */
  int br_registered;
  nio_list backlog; /* of nio_req.bklink */
  uring_msg *msgs;  /* free list */
} uring_port;

static int uring_err(void) {
  return nio_translate_sys_error(errno);
}

static void *uring_ptr(uint64_t ud) {
  return (void *)(uintptr_t)(ud & ~URING_TAG_MASK);
}

/* ---- SQEs and the backlog ---------------------------------------------- */

/* An SQE, submitting what is queued when the SQ is full; NULL when even
** that did not free a slot. Never runs a callback. */
static struct io_uring_sqe *uring_get_sqe(uring_port *p) {
  struct io_uring_sqe *sqe = io_uring_get_sqe(&p->ring);
  if (sqe == NULL) {
    io_uring_submit(&p->ring);
    sqe = io_uring_get_sqe(&p->ring);
  }
  return sqe;
}

static void uring_backlog_push(uring_port *p, nio_req *r, int flag) {
  r->bkflags |= (uint8_t)flag;
  nio__list_push_back(&p->backlog, &r->bklink);
}

static nio_req *uring_backlog_pop(uring_port *p) {
  return nio__list_item(nio__list_pop_front(&p->backlog), nio_req, bklink);
}

/* r is on the backlog (F_BACKLOG or F_CANCEL_BACKLOG says so). */
static void uring_backlog_unlink(uring_port *p, nio_req *r) {
  nio__list_remove(&p->backlog, &r->bklink);
}

static uring_msg *uring_msg_get(uring_port *p) {
  uring_msg *m = p->msgs;
  if (m)
    p->msgs = m->next;
  else
    m = malloc(sizeof *m);
  return m;
}

static void uring_msg_put(uring_port *p, uring_msg *m) {
  m->next = p->msgs;
  p->msgs = m;
}

static void uring_send_trim(nio_req *r) {
  while (r->u.send.iovcnt > 0 && r->u.send.iov->len == 0)
    r->u.send.iov++, r->u.send.iovcnt--;
}

static void uring_arm_wake(uring_port *p) {
  struct io_uring_sqe *sqe = uring_get_sqe(p);
  if (sqe == NULL) return; /* the next wait() tries again */
  io_uring_prep_read(sqe, p->evfd, &p->evbuf, sizeof p->evbuf, 0);
  io_uring_sqe_set_data64(sqe, URING_TAG_WAKE);
  p->wake_armed = 1;
}

/* Fills sqe with r's op; r's memory (and the buffers it names) must stay put
** until the CQE, which the ownership rule of port.h guarantees. */
static void uring_prep(uring_port *p, nio_req *r, struct io_uring_sqe *sqe) {
  unsigned len;
  unsigned waitout = r->bkflags & F_WAITOUT;
  r->bkflags = (uint8_t)((r->bkflags & ~(F_MSHOT | F_WAITOUT)) | F_INFLIGHT);
  switch (r->op) {
  case NIO_OP_ACCEPT:
    io_uring_prep_multishot_accept(sqe, r->fd, NULL, NULL,
                                   SOCK_NONBLOCK | SOCK_CLOEXEC);
    break;
  case NIO_OP_CONNECT:
    io_uring_prep_connect(sqe, r->fd,
                          (const struct sockaddr *)&r->u.connect.addr->ss,
                          (socklen_t)r->u.connect.addr->len);
    break;
  case NIO_OP_RECV:
    /* Multishot takes no length (older kernels refuse one), so a capped
    ** recv is single-shot: the SQE length caps the buffer the kernel fills. */
    len = r->u.recv.max;
    if (len >= URING_BUF_SIZE) len = 0;
    if ((r->flags & NIO_REQ_MULTISHOT) && len == 0 && !p->no_mshot_recv) {
      io_uring_prep_recv_multishot(sqe, r->fd, NULL, 0, 0);
      /* The rest of the owner's limit (bkdata: bytes delivered since the
      ** submit) ends the multishot in the kernel: without it one wake-up
      ** of the socket fills up to 32 buffers, all delivered, whatever the
      ** owner's flow control says. liburing 2.3 names sqe->optlen
      ** file_index. A kernel that cannot (before 6.17) refuses it with
      ** EINVAL, and receives are single-shot from then on. */
      if (r->u.recv.limit)
        sqe->file_index = r->bkdata < r->u.recv.limit
                              ? r->u.recv.limit - (uint32_t)r->bkdata
                              : 1;
      r->bkflags |= F_MSHOT;
    } else {
      io_uring_prep_recv(sqe, r->fd, NULL, len, 0);
    }
    sqe->flags |= IOSQE_BUFFER_SELECT;
    sqe->buf_group = URING_BGID;
    break;
  case NIO_OP_SEND:
    /* MSG_WAITALL makes the kernel resume short sends on a stream socket
    ** itself; the backend still resumes whatever comes back short. */
    if (r->u.send.iovcnt == 0) {
      io_uring_prep_nop(sqe); /* nothing to send: completes with 0 */
    } else if (r->u.send.iovcnt == 1) {
      size_t n = r->u.send.iov->len;
      io_uring_prep_send(sqe, r->fd, r->u.send.iov->base,
                         n < URING_SEND_MAX ? n : URING_SEND_MAX,
                         MSG_NOSIGNAL | MSG_WAITALL);
    } else {
      struct msghdr *m = &((uring_msg *)r->bkptr)->m;
      memset(m, 0, sizeof *m);
      m->msg_iov = (struct iovec *)r->u.send.iov;
      m->msg_iovlen =
          (size_t)(r->u.send.iovcnt < IOV_MAX ? r->u.send.iovcnt : IOV_MAX);
      io_uring_prep_sendmsg(sqe, r->fd, m, MSG_NOSIGNAL | MSG_WAITALL);
    }
    /* After an -EAGAIN the kernel polls for room before it tries again,
    ** so a send that keeps meeting a full socket cannot spin. */
    if (waitout && r->u.send.iovcnt > 0)
      sqe->ioprio |= IORING_RECVSEND_POLL_FIRST;
    break;
  case NIO_OP_RECVFROM:
  case NIO_OP_SENDTO: {
    uring_msg *um = r->bkptr;
    nio_addr *a = r->u.dgram.addr;
    memset(&um->m, 0, sizeof um->m);
    um->iov.iov_base = r->u.dgram.buf;
    um->iov.iov_len = r->u.dgram.len;
    um->m.msg_iov = &um->iov;
    um->m.msg_iovlen = 1;
    if (a != NULL) {
      um->m.msg_name = &a->ss;
      um->m.msg_namelen =
          r->op == NIO_OP_SENDTO ? (socklen_t)a->len : (socklen_t)sizeof a->ss;
    }
    /* MSG_TRUNC: the CQE carries the datagram's real length even when the
    ** buffer was shorter -- the truncation signal. */
    if (r->op == NIO_OP_RECVFROM) {
      io_uring_prep_recvmsg(sqe, r->fd, &um->m, MSG_TRUNC);
      if (r->flags & NIO_REQ_POLL_FIRST)
        sqe->ioprio |= IORING_RECVSEND_POLL_FIRST;
    } else
      io_uring_prep_sendmsg(sqe, r->fd, &um->m, MSG_NOSIGNAL);
    break;
  }
  default:
    io_uring_prep_nop(sqe); /* unreachable: port.c checked the op */
    break;
  }
  io_uring_sqe_set_data(sqe, r);
}

/* Queues r's (next) op: an SQE now, or the backlog. Returns 0 or NIO_E*
** (then nothing was queued). */
static int uring_queue(uring_port *p, nio_req *r) {
  struct io_uring_sqe *sqe;
  if (r->op == NIO_OP_SEND) {
    uring_send_trim(r);
    if (r->u.send.iovcnt > 1 && r->bkptr == NULL &&
        (r->bkptr = uring_msg_get(p)) == NULL)
      return NIO_ENOMEM;
  } else if ((r->op == NIO_OP_RECVFROM || r->op == NIO_OP_SENDTO) &&
             r->bkptr == NULL && (r->bkptr = uring_msg_get(p)) == NULL) {
    return NIO_ENOMEM;
  }
  /* Behind a non-empty backlog to keep submission order. */
  if (!nio__list_empty(&p->backlog) || (sqe = uring_get_sqe(p)) == NULL) {
    uring_backlog_push(p, r, F_BACKLOG);
    return 0;
  }
  uring_prep(p, r, sqe);
  return 0;
}

static void uring_queue_cancel(uring_port *p, nio_req *r) {
  struct io_uring_sqe *sqe;
  if (!nio__list_empty(&p->backlog) || (sqe = uring_get_sqe(p)) == NULL) {
    uring_backlog_push(p, r, F_CANCEL_BACKLOG);
    return;
  }
  io_uring_prep_cancel(sqe, r, 0);
  io_uring_sqe_set_data64(sqe, URING_TAG_CANCEL);
}

/* ---- completions ------------------------------------------------------- */

static void uring_buf_give(uring_port *p, unsigned bid) {
  io_uring_buf_ring_add(p->br, p->bufs + (size_t)bid * URING_BUF_SIZE,
                        URING_BUF_SIZE, (unsigned short)bid,
                        io_uring_buf_ring_mask(p->nbufs), 0);
  io_uring_buf_ring_advance(p->br, 1);
}

/* The final completion. r is released before the callback, which may
** submit r again or free it; r is not touched afterwards. */
static int uring_finish_f(uring_port *p, nio_req *r, int res, const char *data,
                          unsigned flags) {
  /* No SQE names the fd any more: its number may be taken again. */
  if (r->bkflags & F_CLOSE) close(r->fd);
  if (r->bkptr) {
    uring_msg_put(p, r->bkptr);
    r->bkptr = NULL;
  }
  r->bkflags = 0;
  r->active = 0;
  nio__port_done(&p->base, r);
  r->cb(r, res, data, flags);
  return 1;
}

static int uring_finish(uring_port *p, nio_req *r, int res, const char *data) {
  return uring_finish_f(p, r, res, data, 0);
}

/* A datagram op's one completion. The kernel wrote the source address's
** length back into the msghdr (recvmsg(2) does). */
static int uring_on_dgram(uring_port *p, nio_req *r, int res) {
  uring_msg *um = r->bkptr;
  if (r->op == NIO_OP_SENDTO || res < 0) return uring_finish(p, r, res, NULL);
  if (r->u.dgram.addr != NULL) r->u.dgram.addr->len = um->m.msg_namelen;
  if ((uint32_t)res > r->u.dgram.len)
    return uring_finish_f(p, r, (int)r->u.dgram.len, r->u.dgram.buf,
                          NIO_CQE_TRUNC);
  return uring_finish(p, r, res, r->u.dgram.buf);
}

/* The kernel ended r's op; re-arm it unless the owner canceled. */
static int uring_again(uring_port *p, nio_req *r) {
  int e;
  if (r->bkflags & F_CANCELED) return uring_finish(p, r, NIO_ECANCELED, NULL);
  if ((e = uring_queue(p, r)) < 0) return uring_finish(p, r, e, NULL);
  return 0;
}

/* Multishot accept. The kernel ends a multishot accept on any error and,
** rarely, after a success (CQ overflow). Whatever ends it, the owner sees
** one stream: sockets with NIO_CQE_MORE, errors of one incoming connection
** skipped (re-armed at once), and one final completion: NIO_ECANCELED
** after cancel(), or the error that ended it -- EMFILE and friends for the
** owner to back off, or a fatal one (EINVAL: not listening, EBADF...). */
static int uring_on_accept(uring_port *p, nio_req *r, int res, unsigned cf) {
  if (res < 0 && nio__port_accept_error(res) == NIO_ACCEPT_SKIP)
    return (cf & IORING_CQE_F_MORE) ? 0 : uring_again(p, r);
  if (cf & IORING_CQE_F_MORE) {
    /* Still armed: an error here (no kernel reports one so) ends
    ** nothing. */
    if (res < 0) return 0;
    r->cb(r, res, NULL, NIO_CQE_MORE);
    return 1;
  }
  if (res >= 0) {
    r->cb(r, res, NULL, NIO_CQE_MORE);
    return 1 + uring_again(p, r);
  }
  /* After a cancel the error is its consequence (a listener closed under
  ** its accept fails with EINVAL): the owner asked to stop. */
  if (r->bkflags & F_CANCELED) res = NIO_ECANCELED;
  return uring_finish(p, r, res, NULL);
}

/* Recv through the buffer ring. -ENOBUFS (ring empty) is not the owner's
** business: buffers come back as callbacks return, so the recv is simply
** queued again for the next submission. A multishot recv the kernel ended
** with data (CQ overflow) is delivered with MORE and re-armed; the final
** completion is EOF (0), an error, or NIO_ECANCELED. */
static int uring_on_recv(uring_port *p, nio_req *r, int res, const char *data,
                         unsigned cf) {
  if (res > 0) r->bkdata += (uint64_t)res;
  if (cf & IORING_CQE_F_MORE) {
    r->cb(r, res, data, NIO_CQE_MORE);
    return 1;
  }
  if (res == NIO_ENOBUFS) return uring_again(p, r);
  if (res == NIO_EINVAL && (r->bkflags & F_MSHOT)) {
    nio__log_once(NIO_LOG_DEBUG, "uring-mshot-recv",
                  "netio: uring: multishot recv refused, using single-shot");
    p->no_mshot_recv = 1;
    return uring_again(p, r);
  }
  /* Ended with data: by the owner's limit (the final completion, so the
  ** owner re-arms with its new room), or by a CQ overflow (re-armed). */
  if (res > 0 && (r->bkflags & F_MSHOT) &&
      (r->u.recv.limit == 0 || r->bkdata < r->u.recv.limit)) {
    r->cb(r, res, data, NIO_CQE_MORE);
    return 1 + uring_again(p, r);
  }
  return uring_finish(p, r, res, data);
}

/* A send completes once, with the total: the iov array is advanced past
** what went and the rest is sent again. */
static int uring_on_send(uring_port *p, nio_req *r, int res) {
  size_t left;
  /* The kernel may complete a send on a full non-blocking socket with
  ** -EAGAIN instead of waiting for room (seen on 6.18 with two sends
  ** of 16 MiB crossing a proxy): not a failure, the send goes again,
  ** once the socket has room (F_WAITOUT). */
  if (res == -EAGAIN) {
    r->bkflags |= F_WAITOUT;
    return uring_again(p, r);
  }
  if (res < 0) return uring_finish(p, r, res, NULL);
  r->bkdata += (uint64_t)res;
  left = (size_t)res;
  while (left > 0 && r->u.send.iovcnt > 0 && left >= r->u.send.iov->len)
    left -= r->u.send.iov->len, r->u.send.iov++, r->u.send.iovcnt--;
  if (left > 0 && r->u.send.iovcnt > 0) {
    r->u.send.iov->base = (char *)r->u.send.iov->base + left;
    r->u.send.iov->len -= left;
  }
  uring_send_trim(r);
  if (r->u.send.iovcnt == 0) return uring_finish(p, r, (int)r->bkdata, NULL);
  /* No progress on a stream socket with bytes left cannot be resumed. */
  if (res == 0) return uring_finish(p, r, NIO_EIO, NULL);
  return uring_again(p, r);
}

static int uring_on_cqe(uring_port *p, uint64_t ud, int res, unsigned cf) {
  nio_req *r;
  const char *data = NULL;
  int bid = -1, n;
  switch (ud & URING_TAG_MASK) {
  case 0:
    break;
  case URING_TAG_WAKE:
    p->wake_armed = 0;
    uring_arm_wake(p);
    return 0;
  default: /* a cancel's own CQE */
    return 0;
  }
  r = uring_ptr(ud);
  if (cf & IORING_CQE_F_BUFFER) {
    bid = (int)(cf >> IORING_CQE_BUFFER_SHIFT);
    data = p->bufs + (size_t)bid * URING_BUF_SIZE;
    p->cur_bid = bid;
    p->cur_kept = 0;
  }
  if (!(cf & IORING_CQE_F_MORE)) {
    r->bkflags &= (uint8_t)~F_INFLIGHT;
    /* A cancel not yet queued has nothing left to cancel. */
    if (r->bkflags & F_CANCEL_BACKLOG) {
      uring_backlog_unlink(p, r);
      r->bkflags &= (uint8_t)~F_CANCEL_BACKLOG;
    }
  }
  switch (r->op) {
  case NIO_OP_ACCEPT:
    n = uring_on_accept(p, r, res, cf);
    break;
  case NIO_OP_RECV:
    n = uring_on_recv(p, r, res, data, cf);
    break;
  case NIO_OP_SEND:
    n = uring_on_send(p, r, res);
    break;
  case NIO_OP_RECVFROM:
  case NIO_OP_SENDTO:
    n = uring_on_dgram(p, r, res);
    break;
  default: /* NIO_OP_CONNECT */
    n = uring_finish(p, r, res, NULL);
    break;
  }
  /* The callback has returned: the buffer goes back to the kernel, unless
  ** the owner kept it. */
  if (bid >= 0) {
    p->cur_bid = -1;
    if (!p->cur_kept) uring_buf_give(p, (unsigned)bid);
  }
  return n;
}

/* Queues what waited in the backlog; canceled requests that never reached
** the kernel get their final completion here. */
static int uring_flush_backlog(uring_port *p) {
  struct io_uring_sqe *sqe;
  nio_req *r;
  int n = 0;
  while ((r = nio__list_item(p->backlog.first, nio_req, bklink)) != NULL) {
    if ((r->bkflags & (F_BACKLOG | F_CANCELED)) == (F_BACKLOG | F_CANCELED)) {
      uring_backlog_pop(p);
      n += uring_finish(p, r, NIO_ECANCELED, NULL);
      continue;
    }
    if ((sqe = uring_get_sqe(p)) == NULL) break;
    uring_backlog_pop(p);
    if (r->bkflags & F_CANCEL_BACKLOG) {
      r->bkflags &= (uint8_t)~F_CANCEL_BACKLOG;
      io_uring_prep_cancel(sqe, r, 0);
      io_uring_sqe_set_data64(sqe, URING_TAG_CANCEL);
    } else {
      r->bkflags &= (uint8_t)~F_BACKLOG;
      uring_prep(p, r, sqe);
    }
  }
  if (!p->wake_armed) uring_arm_wake(p);
  return n;
}

/* Copies ready CQEs out and advances the CQ before running callbacks, so
** callbacks may submit (and even enter the kernel) freely. Bounded, so a
** flood of completions cannot keep one wait() from returning. */
static int uring_reap(uring_port *p) {
  struct {
    uint64_t ud;
    int32_t res;
    uint32_t flags;
  } batch[URING_BATCH];
  struct io_uring_cqe *cqe;
  unsigned head, cnt, budget = 2 * p->cq_entries;
  int n = 0, flushed = 0;
  for (;;) {
    cnt = 0;
    io_uring_for_each_cqe(&p->ring, head, cqe) {
      batch[cnt].ud = cqe->user_data;
      batch[cnt].res = cqe->res;
      batch[cnt].flags = cqe->flags;
      if (++cnt == URING_BATCH) break;
    }
    if (cnt == 0) {
      /* CQEs the kernel kept aside while the CQ was full. */
      if (flushed || !io_uring_cq_has_overflow(&p->ring)) break;
      flushed = 1;
      io_uring_get_events(&p->ring);
      continue;
    }
    io_uring_cq_advance(&p->ring, cnt);
    for (unsigned i = 0; i < cnt; i++)
      n += uring_on_cqe(p, batch[i].ud, batch[i].res, batch[i].flags);
    if (budget <= cnt) break;
    budget -= cnt;
  }
  return n;
}

/* ---- the ops ----------------------------------------------------------- */

/* A look at the CQ ring without consuming it. What the kernel kept aside
** while the CQ was full cannot be looked at: it may hold one. */
static int uring_pending(nio_port *pp, const nio_req *r) {
  uring_port *p = (uring_port *)pp;
  struct io_uring_cqe *cqe;
  unsigned head;
  if (io_uring_cq_has_overflow(&p->ring)) return 1;
  io_uring_for_each_cqe(&p->ring, head, cqe) {
    if ((cqe->user_data & URING_TAG_MASK) == 0 &&
        uring_ptr(cqe->user_data) == r)
      return 1;
  }
  return 0;
}

static int uring_wait(nio_port *pp, int timeout_ms) {
  uring_port *p = (uring_port *)pp;
  struct io_uring_cqe *cqe = NULL;
  struct __kernel_timespec ts;
  int n, r;
  n = uring_flush_backlog(p);
  if (n > 0) timeout_ms = 0;
  if (timeout_ms == 0) {
    r = io_uring_submit_and_get_events(&p->ring);
  } else if (timeout_ms < 0) {
    r = io_uring_submit_and_wait(&p->ring, 1);
  } else {
    ts.tv_sec = timeout_ms / 1000;
    ts.tv_nsec = (long long)(timeout_ms % 1000) * 1000000;
    r = io_uring_submit_and_wait_timeout(&p->ring, &cqe, 1, &ts, NULL);
  }
  if (r < 0 && r != -ETIME && r != -EINTR && r != -EAGAIN && r != -EBUSY &&
      io_uring_cq_ready(&p->ring) == 0)
    return n > 0 ? n : r;
  return n + uring_reap(p);
}

/* port.c checked the request (port.h). */
static int uring_submit(nio_port *pp, nio_req *r) {
  uring_port *p = (uring_port *)pp;
  int e;
  r->active = 1;
  r->bkflags = 0;
  r->bklink.prev = r->bklink.next = NULL;
  r->bkptr = NULL;
  r->bkdata = 0;
  if ((e = uring_queue(p, r)) < 0) {
    r->active = 0;
    return e;
  }
  return 0;
}

/* Never calls back. When r has no op in the kernel (it waits in the
** backlog, or its CQE is being handled right now) the flag is enough: the
** code that would re-arm it delivers NIO_ECANCELED instead. */
static int uring_cancel(nio_port *pp, nio_req *r) {
  uring_port *p = (uring_port *)pp;
  if (r->bkflags & F_CANCELED) return 0;
  r->bkflags |= F_CANCELED;
  if (r->bkflags & F_INFLIGHT) uring_queue_cancel(p, r);
  return 0;
}

/* shutdown() takes the socket out of LISTEN at once (connections are
** refused, the address is free, the accept fails); the descriptor itself
** is closed only after the accept's final completion, so that no SQE still
** in the SQ can meet its number given to a new socket. */
static void uring_close_listener(nio_port *pp, nio_sock fd, nio_req *acc) {
  shutdown(fd, SHUT_RDWR);
  if (acc == NULL) {
    close(fd);
    return;
  }
  acc->bkflags |= F_CLOSE;
  uring_cancel(pp, acc);
}

/* Only the buffer of the completion being delivered can be kept. */
static int uring_keep(nio_port *pp, nio_req *r, const char *data) {
  uring_port *p = (uring_port *)pp;
  (void)r;
  if (p->cur_bid < 0 || p->cur_kept ||
      data != p->bufs + (size_t)p->cur_bid * URING_BUF_SIZE)
    return NIO_EINVAL;
  if (p->nkept >= p->nbufs / 2) return NIO_ENOBUFS;
  p->cur_kept = 1;
  p->nkept++;
  return 0;
}

static void uring_release(nio_port *pp, const char *data) {
  uring_port *p = (uring_port *)pp;
  size_t off = (size_t)(data - p->bufs);
  p->nkept--;
  uring_buf_give(p, (unsigned)(off / URING_BUF_SIZE));
}

static int uring_add(nio_port *p, nio_sock fd) {
  (void)p;
  (void)fd;
  return 0;
}

static void uring_remove(nio_port *p, nio_sock fd) {
  (void)p;
  (void)fd;
}

/* Any thread, and async-signal-safe: one write(2), errno kept. The eventfd
** is blocking (so the ring's read waits on it), but a write of 1 only
** blocks at a counter of 2^64-2. */
static int uring_post(nio_port *pp) {
  uring_port *p = (uring_port *)pp;
  uint64_t one = 1;
  int saved = errno, r = 0;
  ssize_t w;
  do w = write(p->evfd, &one, sizeof one);
  while (w < 0 && errno == EINTR);
  if (w < 0 && errno != EAGAIN) r = uring_err();
  errno = saved;
  return r;
}

static void uring_close(nio_port *pp) {
  uring_port *p = (uring_port *)pp;
  uring_msg *m;
  if (p == NULL) return;
  if (p->ring_ok) {
    if (p->br_registered) io_uring_unregister_buf_ring(&p->ring, URING_BGID);
    /* Cancels the wake-up read; owner requests are all done (port.h). */
    io_uring_queue_exit(&p->ring);
  }
  if (p->br) munmap(p->br, p->br_size);
  if (p->bufs) munmap(p->bufs, p->bufs_size);
  if (p->evfd >= 0) close(p->evfd);
  while ((m = p->msgs) != NULL) {
    p->msgs = m->next;
    free(m);
  }
  free(p);
}

static unsigned uring_env_nbufs(void) {
  const char *s = getenv("NETIO_TEST_URING_BUFS");
  unsigned long n;
  if (s == NULL || *s == '\0') return URING_NBUFS;
  n = strtoul(s, NULL, 10);
  if (n == 0 || n > 32768 || (n & (n - 1)) != 0) return URING_NBUFS;
  return (unsigned)n;
}

/* The setup-flag fallback chain: each step drops what an older kernel
** refuses with EINVAL. */
static int uring_setup(uring_port *p) {
  static const struct {
    const char *name;
    unsigned flags;
  } steps[] = {
      {"defer", IORING_SETUP_SUBMIT_ALL | IORING_SETUP_SINGLE_ISSUER |
                    IORING_SETUP_DEFER_TASKRUN},
      {"coop", IORING_SETUP_SUBMIT_ALL | IORING_SETUP_COOP_TASKRUN},
      {"plain", IORING_SETUP_SUBMIT_ALL},
      {"plain", 0},
  };
  const char *start = getenv("NETIO_TEST_URING_SETUP");
  struct io_uring_params prm;
  size_t i = 0, nsteps = sizeof steps / sizeof steps[0];
  int r = NIO_EINVAL;
  if (start != NULL && *start != '\0') {
    while (i < nsteps && strcmp(steps[i].name, start) != 0) i++;
    if (i == nsteps) return NIO_EINVAL;
  }
  for (; i < nsteps; i++) {
    memset(&prm, 0, sizeof prm);
    prm.flags = steps[i].flags | IORING_SETUP_CQSIZE | IORING_SETUP_CLAMP;
    prm.cq_entries = URING_CQ_ENTRIES;
    r = io_uring_queue_init_params(URING_SQ_ENTRIES, &p->ring, &prm);
    if (r == 0) {
      p->ring_ok = 1;
      p->cq_entries = prm.cq_entries;
      nio__log(NIO_LOG_DEBUG, "netio: uring: ring set up (%s, flags 0x%x)",
               steps[i].name, prm.flags);
      if (!(prm.features & IORING_FEAT_NODROP) ||
          !(prm.features & IORING_FEAT_EXT_ARG))
        return NIO_ENOSYS; /* pre-5.11 kernel: not worth supporting */
      return 0;
    }
    if (r != -EINVAL) return r;
  }
  return r;
}

static int uring_open(nio_port **out) {
  const char *fail = getenv("NETIO_TEST_URING_FAIL");
  struct io_uring_buf_reg reg;
  uring_port *p;
  long page = sysconf(_SC_PAGESIZE);
  int r;
  *out = NULL;
  if (fail != NULL && strcmp(fail, "1") == 0) return NIO_ENOSYS;
  if ((p = calloc(1, sizeof *p)) == NULL) return NIO_ENOMEM;
  p->base.ops = &nio__uring_ops;
  p->evfd = -1;
  p->nbufs = uring_env_nbufs();
  p->cur_bid = -1;
  if ((p->evfd = eventfd(0, EFD_CLOEXEC)) < 0) {
    r = uring_err();
    goto fail;
  }
  if ((r = uring_setup(p)) != 0) goto fail;
  /* Saves a file lookup per io_uring_enter; optional. */
  io_uring_register_ring_fd(&p->ring);

  /* The buffer ring: liburing 2.3 has no io_uring_setup_buf_ring, so the
  ** ring memory is mapped here and registered by hand. Buffers are mapped
  ** untouched (MAP_NORESERVE): pages appear as the kernel first fills them. */
  p->br_size = (size_t)p->nbufs * sizeof(struct io_uring_buf);
  p->br_size = (p->br_size + (size_t)page - 1) & ~((size_t)page - 1);
  p->br = mmap(NULL, p->br_size, PROT_READ | PROT_WRITE,
               MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p->br == MAP_FAILED) {
    p->br = NULL;
    r = uring_err();
    goto fail;
  }
  p->bufs_size = (size_t)p->nbufs * URING_BUF_SIZE;
  p->bufs = mmap(NULL, p->bufs_size, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p->bufs == MAP_FAILED) {
    p->bufs = NULL;
    r = uring_err();
    goto fail;
  }
  memset(&reg, 0, sizeof reg);
  reg.ring_addr = (uint64_t)(uintptr_t)p->br;
  reg.ring_entries = p->nbufs;
  reg.bgid = URING_BGID;
  if ((r = io_uring_register_buf_ring(&p->ring, &reg, 0)) != 0) {
    if (r == -EINVAL) r = NIO_ENOSYS; /* pre-5.19 kernel */
    goto fail;
  }
  p->br_registered = 1;
  io_uring_buf_ring_init(p->br);
  for (unsigned i = 0; i < p->nbufs; i++)
    io_uring_buf_ring_add(p->br, p->bufs + (size_t)i * URING_BUF_SIZE,
                          URING_BUF_SIZE, (unsigned short)i,
                          io_uring_buf_ring_mask(p->nbufs), (int)i);
  io_uring_buf_ring_advance(p->br, (int)p->nbufs);

  uring_arm_wake(p);
  *out = &p->base;
  return 0;
fail:
  uring_close(&p->base);
  return r;
}

const nio_port_ops nio__uring_ops = {
    .name = "uring",
    .open = uring_open,
    .close = uring_close,
    .add = uring_add,
    .remove = uring_remove,
    .close_listener = uring_close_listener,
    .submit = uring_submit,
    .cancel = uring_cancel,
    .wait = uring_wait,
    .post = uring_post,
    .keep = uring_keep,
    .release = uring_release,
    .pending = uring_pending,
};
