/*
** port.h: the completion port. One IOCP-shaped interface, three backends
** (uring.c, epoll.c, iocp.c) chosen at run time by port.c.
**
** The model: the caller fills a request (the OVERLAPPED analogue) and
** submits it; later, inside nio__port_wait(), the port calls the request's
** callback with the result. The caller owns the request and every buffer it
** names from submission until the request's *final* completion has been
** delivered -- also after nio__port_cancel(). A multishot request (accept,
** recv on uring) may complete several times; every completion but the last
** carries NIO_CQE_MORE. Memory of a request is never freed or reused before
** its final completion.
**
** Threading: everything but nio__port_post() is called on the one thread
** that opened the port (the engine's worker thread).
*/
#ifndef NIO_PORT_H
#define NIO_PORT_H

#include "sys.h"
#include "../util/list.h"

typedef struct nio_port nio_port;
typedef struct nio_req nio_req;

enum nio_op {
  NIO_OP_NONE = 0,
  /* Accept connections on a listening socket. Multishot: completes once per
  ** accepted socket (res = the new socket, non-blocking, close-on-exec)
  ** with NIO_CQE_MORE set while the request stays armed. Errors of one
  ** incoming connection (NIO_ACCEPT_SKIP below) are skipped; any other
  ** error ends the request: the final completion (no MORE) carries it, or
  ** NIO_ECANCELED after a cancel. The port never rests or retries on its
  ** own: after EMFILE and friends the owner backs off and submits again. */
  NIO_OP_ACCEPT,
  /* Connect req->fd to req->u.connect.addr. res = 0 or NIO_E*. */
  NIO_OP_CONNECT,
  /* Receive into a buffer the port owns, so an idle socket holds none.
  ** res = bytes (> 0), 0 at end of stream, or NIO_E*. The data pointer
  ** passed to the callback is valid only during the callback (unless kept:
  ** nio__port_keep). May be
  ** multishot (NIO_CQE_MORE); the port never delivers more than one
  ** completion per callback call and stops on EOF or error. At most
  ** u.recv.max bytes are delivered per completion (0 = the port's own buffer
  ** size, 64 KiB). */
  NIO_OP_RECV,
  /* Send the byte ranges u.send.iov[0..iovcnt). The port resumes short
  ** sends by itself and completes once: res = total bytes sent (all of
  ** them) or NIO_E*. The port may modify the iov array (it advances it);
  ** the array belongs to the caller again at completion. One send in flight
  ** per socket: the caller never submits a second before the first
  ** completes. */
  NIO_OP_SEND,
  /* Receive one datagram into u.dgram.buf (at most u.dgram.len bytes) and
  ** its source address into *u.dgram.addr (NULL: not wanted); both the
  ** caller's until completion. Single-shot. res = bytes stored (0 for an
  ** empty datagram) or NIO_E*; data = buf. A datagram longer than len is
  ** cut to len and the completion carries NIO_CQE_TRUNC: truncation is
  ** never silent. On a connected socket an ICMP "port unreachable" from
  ** the peer fails it with NIO_ECONNREFUSED (every backend). */
  NIO_OP_RECVFROM,
  /* Send u.dgram.buf[0..len) as one datagram to *u.dgram.addr (NULL: the
  ** connected peer); buf and addr are the caller's until completion.
  ** res = len or NIO_E*. Datagram sockets only. */
  NIO_OP_SENDTO,
};

/* What an accept error means (nio__port_accept_error), the one
** classification the backends and the engine's listener share. */
enum {
  NIO_ACCEPT_SKIP = 0, /* of one incoming connection (ECONNABORTED...):
                       ** skip it and accept the next at once */
  NIO_ACCEPT_BACKOFF,  /* out of a resource (EMFILE, ENFILE, ENOBUFS,
                       ** ENOMEM): stop, try again after a pause */
  NIO_ACCEPT_FATAL     /* of the listener (EINVAL, EBADF...): stop */
};
int nio__port_accept_error(int err);

/* Flags passed to the callback. */
enum {
  NIO_CQE_MORE = 1, /* the request is still armed: more completions follow */
  NIO_CQE_TRUNC = 2 /* recvfrom: the datagram was longer than the buffer */
};

typedef void (*nio_req_cb)(nio_req *req, int res, const char *data,
                           unsigned flags);

struct nio_req {
  /* Filled by the caller before submit. */
  nio_sock fd;
  uint8_t op;      /* enum nio_op */
  uint8_t flags;   /* NIO_REQ_* below */
  uint8_t active;  /* set by the port at submit, cleared before the final
                   ** callback; the caller must not touch an active request */
  uint8_t bkflags; /* backend-private */
  nio_req_cb cb;
  void *data; /* the owner's */
  union {
    struct {
      /* iocp: AcceptEx calls kept posted (0 = 4, at most 1024). uring and
      ** epoll take no such count (one multishot request, or readiness). */
      uint32_t depth;
    } accept;
    struct {
      nio_addr *addr; /* caller-owned until completion */
    } connect;
    struct {
      uint32_t max; /* at most this many bytes per completion; 0 = any */
      /* Multishot: the owner's flow control. The request ends (a final
      ** completion, which may carry data) once it delivered this many
      ** bytes, or less than one completion's worth more; 0 = no limit.
      ** It bounds what a backend still delivers after the owner asked for
      ** a cancel (uring: completions the kernel already queued). A backend
      ** that delivers nothing once the callback's cancel returned (epoll,
      ** iocp) may ignore it. */
      uint32_t limit;
    } recv;
    struct {
      nio_iov *iov; /* caller-owned until completion */
      int iovcnt;
    } send;
    struct {
      char *buf;      /* caller-owned until completion */
      uint32_t len;   /* buffer size (recvfrom), datagram size (sendto) */
      nio_addr *addr; /* caller-owned until completion, or NULL */
    } dgram;
  } u;
  /* Backend-private: bklink in the backend's queue (epoll and iocp run
  ** queues, uring backlog), bkptr (iocp OVERLAPPED state...). */
  nio_link bklink;
  void *bkptr;
  uint64_t bkdata;
};

enum {
  NIO_REQ_MULTISHOT = 1, /* recv: keep the request armed (a hint) */
  /* recvfrom: the owner has just found the socket empty (its own
  ** non-blocking try said EAGAIN), so the backend waits for readiness
  ** before its first try instead of failing the same syscall again (a
  ** hint: uring IORING_RECVSEND_POLL_FIRST, epoll parks the request at
  ** once; iocp posts its receive either way). */
  NIO_REQ_POLL_FIRST = 2
};

/* Open a port on the calling thread. backend: "uring", "epoll", "iocp" or
** NULL/"" for the best available; the environment variable NETIO_BACKEND
** overrides NULL. When the best is chosen and io_uring cannot be set up,
** epoll is used instead and the reason logged once at debug level. A
** backend asked for by name that cannot be set up is an error. The test
** switch NETIO_TEST_URING_FAIL=1 makes io_uring setup fail. */
int nio__port_open(nio_port **out, const char *backend);
/* Close the port. All requests must have had their final completion. */
void nio__port_close(nio_port *p);
/* "uring", "epoll" or "iocp". */
const char *nio__port_backend(const nio_port *p);
/* Whether backend name can be opened on this machine (opens and closes a
** port to find out). */
int nio__port_available(const char *backend);
/* The backends this build has, in the order the best is chosen: name i
** (from 0), or NULL past the last. The one list of backend names: code
** that names or lists backends asks here. */
const char *nio__port_backend_name(int i);

/* Associate a new socket with the port before any request on it (epoll
** registers it, iocp associates it with the completion port). */
int nio__port_add(nio_port *p, nio_sock fd);
/* Forget a socket before closing it; all its requests must have had their
** final completion. */
void nio__port_remove(nio_port *p, nio_sock fd);
/* Stop accepting on a listening socket and close it, with its accept still
** pending or not: from this call new connections are refused and the
** address can be bound again, and the socket is the port's -- the caller
** neither removes nor closes it. An active accept on it is canceled and
** stays the caller's until its final completion (NIO_ECANCELED, exactly
** once, never from inside this call); connections that raced the close
** may come before it with NIO_CQE_MORE. NIO_EBADF if fd was not added,
** NIO_EINVAL if its reader is not an accept. */
int nio__port_close_listener(nio_port *p, nio_sock fd);

/* Queue a request. It takes effect at the next nio__port_wait() (one
** submission per loop turn) or earlier if the backend's queue fills.
** Never calls the callback from inside submit. Returns 0 or NIO_E* (the
** request was not accepted and will not complete). The contract is
** checked here, once for every backend: NIO_EBUSY for a request still
** active, or for a second reader (accept, recv) or a second writer
** (connect, send) on a socket before the first's final completion;
** NIO_EBADF for a socket not added; NIO_EMSGSIZE for a send whose total is
** over INT_MAX (its result is an int); NIO_EINVAL for an unknown op, no
** callback, a connect without an address or a send without its iov. */
int nio__port_submit(nio_port *p, nio_req *r);
/* Inside the callback of a receive completion carrying data: keep the
** port's buffer that holds it, so the owner need not copy the bytes out.
** data (the pointer the callback got) then stays valid after the callback
** until nio__port_release(p, data). Returns 0, or NIO_ENOBUFS when the
** port cannot lend (a backend without such buffers, or enough of them
** lent already): the owner copies. Lent buffers are not available to
** receive into, so the owner gives them back as soon as it can. */
int nio__port_keep(nio_port *p, nio_req *r, const char *data);
/* Give back a buffer kept by nio__port_keep() (before the port closes). */
void nio__port_release(nio_port *p, const char *data);
/* Ask an active request to finish early. Its final completion follows with
** NIO_ECANCELED, or with its real result if that raced the cancel. The
** callback is never called from inside cancel. NIO_ENOENT when r is not
** active. */
int nio__port_cancel(nio_port *p, nio_req *r);
/* 1 when a completion of the active request r may have happened already
** without having been delivered (io_uring: a CQE in the ring, or CQEs the
** kernel holds back in its overflow list), else 0. Backends that leave
** the data in the socket until they deliver it (epoll, and iocp's
** zero-byte receive) always answer 0: a look at the socket sees it. The
** connection pool asks it before handing out an idle connection. */
int nio__port_pending(nio_port *p, const nio_req *r);

/* Submit what is queued, wait up to timeout_ms (-1 = no limit, 0 = poll)
** for completions, and call the callback of every completion ready, in one
** batch. Callbacks may submit and cancel. Returns the number of completions
** delivered, or NIO_E*. Wakes early (returning 0 or more) after post(). */
int nio__port_wait(nio_port *p, int timeout_ms);
/* Any thread: make the current or next nio__port_wait() return. */
int nio__port_post(nio_port *p);

/*
** The backend table (nginx-style). Each backend file defines one. port.c
** calls submit only with a request that passed the checks listed at
** nio__port_submit(), and cancel only with an active request; add and
** remove only for sockets not added / added.
*/
typedef struct nio_port_ops {
  const char *name;
  int (*open)(nio_port **out);
  void (*close)(nio_port *p);
  int (*add)(nio_port *p, nio_sock fd);
  void (*remove)(nio_port *p, nio_sock fd);
  /* fd is forgotten by port.c already; acc: its active accept, or NULL. */
  void (*close_listener)(nio_port *p, nio_sock fd, nio_req *acc);
  int (*submit)(nio_port *p, nio_req *r);
  int (*cancel)(nio_port *p, nio_req *r);
  int (*wait)(nio_port *p, int timeout_ms);
  int (*post)(nio_port *p);
  /* Optional (NULL: the port never lends its receive buffers). */
  int (*keep)(nio_port *p, nio_req *r, const char *data);
  void (*release)(nio_port *p, const char *data);
  /* Optional (NULL: never anything undelivered). */
  int (*pending)(nio_port *p, const nio_req *r);
} nio_port_ops;

/* A socket added to the port, and its one reader and one writer from
** submit to final completion (port.c's; the backends never touch it). */
typedef struct nio_port_sock {
  nio_sock fd; /* NIO_BAD_SOCK: a free entry */
  nio_req *rd, *wr;
} nio_port_sock;

/* Every backend's port struct starts with this, zeroed by its open(). */
struct nio_port {
  const nio_port_ops *ops;
  nio_port_sock *socks; /* port.c's table of added sockets */
  uint32_t nsocks, scap;
};

/* Backends: call just before a request's final callback (after clearing
** active), so that port.c frees the socket's reader or writer place. */
void nio__port_done(nio_port *p, nio_req *r);

extern const nio_port_ops nio__uring_ops;
extern const nio_port_ops nio__epoll_ops;
extern const nio_port_ops nio__iocp_ops;

#endif /* NIO_PORT_H */
