/*
** engine.h: the engine's internal API, used by the binding (csrc/binding)
** and by C programs that embed the engine without Lua (tests, benchmarks).
**
** One engine = one completion port + one worker thread. Every function here
** except those marked "any thread" runs on the worker thread. Callbacks are
** delivered on the worker thread, never from inside the call that caused
** them (no re-entrancy): they come from nio__port_wait() or from timers.
*/
#ifndef NIO_ENGINE_H
#define NIO_ENGINE_H

#include "netio.h"
#include "../port/port.h"

typedef struct nio_conn nio_conn;
typedef struct nio_listener nio_listener;
typedef struct nio_timer nio_timer;
typedef struct nio_msg nio_msg;

/* ---- engine -------------------------------------------------------- */

typedef struct nio_engine_hooks {
  /* On the worker thread, once the port is open, before the first turn.
  ** A non-zero return ends the loop at once with that as the run result. */
  int (*start)(nio_engine *e, void *arg);
  /* At the start of every loop turn, after completions, timers and calls
  ** were delivered. Return 1 when work is left ready (the next wait must
  ** not block), 0 otherwise. Call nio__engine_quit() to end the loop. */
  int (*turn)(nio_engine *e, void *arg);
  /* On the worker thread when nio__engine_stop() was called (graceful
  ** stop requested, from any thread or a signal). */
  void (*stop)(nio_engine *e, void *arg);
  /* On the worker thread after the loop ended, before the port closes:
  ** the last chance to close what is still open. */
  void (*finish)(nio_engine *e, void *arg);
  void *arg;
  /* On the worker thread: a message posted with nio__engine_post(). The
  ** hook owns m and frees it with nio__msg_free(). NULL: posts are
  ** freed as they arrive. */
  void (*message)(nio_engine *e, void *arg, nio_msg *m);
} nio_engine_hooks;

/* Create an engine (no thread yet). o may be NULL (defaults); o->backend
** as for nio__port_open(). The port itself is opened on the worker thread;
** an error opening it is returned by nio__engine_join(). */
int nio__engine_new(nio_engine **out, const nio_options *o);
/* The owner is done with e (after nio__engine_join(), or without ever
** starting it): new sends and posts are refused, and e's memory goes with
** its last reference. */
void nio__engine_free(nio_engine *e);
/* Any thread: take or drop a reference (the caller already holds one, or
** is the owner). While referenced, e's memory stays valid; calls on an
** engine that ended fail with NIO_ECLOSED. */
void nio__engine_ref(nio_engine *e);
void nio__engine_unref(nio_engine *e);
/* Any thread: start the worker thread, which opens the port, calls
** hooks->start, then loops until nio__engine_quit(). */
int nio__engine_start(nio_engine *e, const nio_engine_hooks *hooks);
/* Any thread but the worker: wait for the worker to end. Returns the value
** given to nio__engine_quit(), hooks->start's failure, or the port's open
** error. */
int nio__engine_join(nio_engine *e);
/* Worker thread: end the loop after the current turn. */
void nio__engine_quit(nio_engine *e, int result);
/* Any thread, async-signal-safe: ask for a graceful stop (hooks->stop runs
** on the worker). */
void nio__engine_stop(nio_engine *e);
/* Worker thread: whether a graceful stop was asked for. */
int nio__engine_stopping(const nio_engine *e);
/* Any thread: run fn(e, arg) on the worker thread soon. Returns NIO_ENOMEM
** or NIO_ECLOSED (the engine has ended; fn will not run). */
typedef void (*nio_call_fn)(nio_engine *e, void *arg);
int nio__engine_call(nio_engine *e, nio_call_fn fn, void *arg);
/* Whether backend name ("uring", "epoll", "iocp") can run here. */
int nio__engine_backend_available(const char *name);
/* The backend in use ("uring"/"epoll"/"iocp") while the port is open;
** otherwise the one asked for by name, or NULL. */
const char *nio__engine_backend(const nio_engine *e);
/* Monotonic time of the current loop turn, in ns (cheap; no syscall). */
uint64_t nio__engine_now(const nio_engine *e);
/* Opaque per-engine pointer for the layer above (the binding's state). */
void nio__engine_set_udata(nio_engine *e, void *udata);
void *nio__engine_udata(const nio_engine *e);
/* The engine whose worker is the calling thread, or NULL. */
nio_engine *nio__engine_current(void);
/* Counters (worker thread, or after the engine ended). */
typedef struct nio_counters {
  uint64_t conns;         /* connections open */
  uint64_t udps;          /* datagram sockets open */
  uint64_t dropped_bytes; /* queued output dropped by a close */
  /* Bytes nio_send() accepted for a connection that closed before they
  ** reached its output queue (or that could no longer send). */
  uint64_t outside_dropped;
  /* Bytes the inbox's two vectors hold (their capacity). */
  uint64_t inbox_kept;
} nio_counters;
void nio__engine_stats(nio_engine *e, nio_counters *st);

/* ---- messages from any thread (the inbox) ---------------------------- */

/* Kinds of posts: bytes from nio_post(), or the binding's own encoding. */
enum { NIO_POST_RAW = 0, NIO_POST_VALUES = 1 };
/* Any thread: post a copy of len bytes to the engine's message hook.
** Returns 0, NIO_EBUSY (the posts not yet freed exceed the engine's post
** limit), NIO_ECLOSED (the engine ended or refuses posts), NIO_ENOMEM. */
int nio__engine_post(nio_engine *e, int kind, const void *p, size_t len);
/* Any thread: refuse posts from now on (NIO_ECLOSED): the owner has
** nobody left to receive them. */
void nio__engine_close_posts(nio_engine *e);
const char *nio__msg_data(const nio_msg *m, size_t *len);
int nio__msg_kind(const nio_msg *m);
/* The message's link, for the owner to keep delivered posts in a list
** (NULL-terminated; the engine no longer uses it). */
nio_msg **nio__msg_next(nio_msg *m);
/* Worker thread (or after the end): free a delivered post. */
void nio__msg_free(nio_engine *e, nio_msg *m);

/* ---- timers (one heap for all sleeps and timeouts) ------------------ */

typedef void (*nio_timer_cb)(nio_timer *t);
/* Embedded by its owner; zero-initialise before first use. */
struct nio_timer {
  uint64_t due;  /* ns, nio__now_ns() clock */
  uint32_t slot; /* heap index + 1; 0 = not armed */
  nio_timer_cb cb;
  void *data; /* the owner's */
};
/* (Re)arm t to fire after delay_ns. Returns 0, or NIO_ENOMEM when the
** heap cannot grow: then t is stopped (even if it was armed before), and
** the caller must not wait on it -- fail the wait, or do at once what the
** timer would have done. */
int nio__timer_start(nio_engine *e, nio_timer *t, uint64_t delay_ns,
                     nio_timer_cb cb);
void nio__timer_stop(nio_engine *e, nio_timer *t);
#define nio__timer_active(t) ((t)->slot != 0)

/* ---- connections ---------------------------------------------------- */

/* Events delivered to a connection's owner (bit mask). */
enum {
  /* Input grew, or the stream reached its end (eof) or failed (err). */
  NIO_EV_READ = 1,
  /* Output left the queue: queued dropped to the low-water mark or below,
  ** or to 0 (flushed), or sending failed (err). */
  NIO_EV_WRITE = 2,
  /* A connect finished; err holds its result. */
  NIO_EV_CONNECT = 4,
  /* A TLS handshake ended (nio__conn_starttls): established, or err set
  ** (NIO_ETLS, NIO_ECERT, NIO_ETIMEDOUT; nio__conn_tls_error() says why). */
  NIO_EV_TLS = 8
};
typedef void (*nio_conn_cb)(nio_conn *c, int events);

/* Called when a queued chunk is no longer needed (sent or dropped). */
typedef void (*nio_chunk_free)(void *ud, const void *p, size_t len);

/*
** A connection. Allocated and freed by the engine. The owner (who accepted
** or connected it) reads the fields below and calls the functions; after it
** calls nio__conn_close() it must forget the pointer: the engine frees the
** connection once every request on it has completed.
*/
struct nio_conn {
  uint64_t id;    /* generation-tagged; see nio__conn_get() */
  nio_conn_cb cb; /* owner's; may be changed at any time */
  void *udata;    /* owner's */
  nio_sock fd;
  int err; /* first error (NIO_E*), 0 if none; sticky */
  /* Input: bytes in[rpos..wpos) of a buffer of size cap; see
  ** nio__conn_input(). (The 32-bit fields are kept together: no padding.) */
  char *in;
  uint32_t rpos, wpos, cap;
  unsigned eof : 1; /* the peer closed its sending side */
  unsigned closing : 1;
  unsigned shut : 1; /* shutdown asked for */
  /* Counters. */
  uint64_t bytes_in, bytes_out;
  size_t queued; /* bytes accepted for sending and not yet sent */
  /* Engine-private fields follow in engine.c's definition. */
};

/* Start a connection to addr. bind: local address to bind first (with
** address and port reuse), or NULL. The result comes as NIO_EV_CONNECT
** with c->err = 0 or NIO_E*; on failure the owner still closes c. */
int nio__conn_connect(nio_engine *e, const nio_addr *addr, const nio_addr *bind,
                      nio_conn_cb cb, void *udata, nio_conn **out);
/* A connection without a socket yet: it has an id and takes writes
** (queued, sent once connected), for nio__conn_dial() -- a client that
** may be written to before it is connected. */
int nio__conn_detached(nio_engine *e, nio_conn_cb cb, void *udata,
                       nio_conn **out);
/* Connect a detached connection to addr (as nio__conn_connect). */
int nio__conn_dial(nio_conn *c, const nio_addr *addr, const nio_addr *bind);
/* Connect to the first of addrs[0..n) that accepts, trying them in order
** (a new socket for each; the next once the previous failed). With bind,
** only the addresses of bind's family are tried (all of them if none
** is). NIO_EV_CONNECT comes once: connected, or c->err = the error of the
** last address tried. Returns 0 or an error of the first socket (then no
** event comes). The caller's timeout covers all the attempts. */
int nio__conn_dial_list(nio_conn *c, const nio_addr *addrs, int n,
                        const nio_addr *bind);
int nio__conn_connect_list(nio_engine *e, const nio_addr *addrs, int n,
                           const nio_addr *bind, nio_conn_cb cb, void *udata,
                           nio_conn **out);
/* Close c and give its id to a new detached connection, returned: what is
** sent to the id from now on (nio_send included) goes to the successor.
** If c never connected, its queued output goes over too; otherwise it is
** dropped (counted). For reconnecting clients. */
int nio__conn_successor(nio_conn *c, nio_conn **out);
/* Queued output above max bytes aborts the connection: its output is
** dropped (counted), it fails with NIO_ECONNABORTED, and its close
** resets (the peer sees the loss). 0: no limit. */
void nio__conn_set_max_output(nio_conn *c, size_t max);
/* Wrap a connected stream socket (a socket pair's end, say) as a
** connection, receiving at once. On failure the caller keeps fd. */
int nio__conn_adopt(nio_engine *e, nio_sock fd, nio_conn_cb cb, void *udata,
                    nio_conn **out);
/* Give c a new id, for a connection that goes to another owner (the
** binding's connection pool): its old id reaches nothing any more --
** nio_send() to it answers NIO_ECLOSED, and what the inbox still holds for
** it is dropped (counted as outside_dropped). A connection that refuses
** outside senders (failed, shut down) keeps refusing them. */
void nio__conn_renew_id(nio_conn *c);
/* Whether c is quiet: connected, healthy, not at its end, no input
** buffered, and nothing waiting in the kernel that the port has not
** delivered yet (bytes, the peer's FIN or a reset). One non-blocking
** readiness check: for taking an idle connection out of a pool. */
int nio__conn_quiet(nio_conn *c);
/* The live connection with this id, or NULL (closed, stale or foreign). */
nio_conn *nio__conn_get(nio_engine *e, uint64_t id);
/* The most bytes nio_send() may have waiting for c (in the inbox and in
** its output queue together) before it answers NIO_EBUSY. */
void nio__conn_set_send_limit(nio_conn *c, size_t limit);

/* Input. Bytes received and not consumed: *len bytes at the returned
** pointer (valid until the next engine call on c). */
static inline const char *nio__conn_input(nio_conn *c, size_t *len) {
  *len = c->wpos - c->rpos;
  return c->in ? c->in + c->rpos : "";
}
void nio__conn_consume(nio_conn *c, size_t n);
/* Put n bytes back in front of the input (consumed, then not used: a
** canceled read). Returns 0 or NIO_ENOMEM. */
int nio__conn_unread(nio_conn *c, const void *p, size_t n);
/* How many input bytes the owner wants buffered before the engine stops
** receiving (flow control). Default 64 KiB; raise it for recv(n) with a
** large n or recv("*a"). Receiving resumes when the buffer drains below. */
void nio__conn_want(nio_conn *c, size_t n);

/* Output. Queue len bytes at p. free == NULL: the bytes are copied now.
** Otherwise p must stay valid until free(ud, p, len) is called (after the
** bytes reached the kernel, or were dropped by close). Never blocks; the
** caller applies the water marks by looking at c->queued. Returns 0, or
** NIO_ECLOSED / c->err when the connection can no longer send (free is
** then called before returning). len == 0 is a no-op. */
int nio__conn_write(nio_conn *c, const void *p, size_t len, nio_chunk_free free,
                    void *ud);
/* Low-water mark at or below which NIO_EV_WRITE is delivered. */
void nio__conn_set_lowat(nio_conn *c, size_t lowat);
/* Half-close the sending side once queued output is sent. */
int nio__conn_shutdown(nio_conn *c);
/* Close now: cancel what is in flight, drop queued output (counted), close
** the socket once the cancels completed, then free c. No callback is
** delivered to the owner after this call. reset != 0 makes the peer see a
** reset (SO_LINGER 0). */
void nio__conn_close(nio_conn *c, int reset);
/* Close once queued output is sent (or the engine's grace period passes,
** or sending fails). For connections forgotten by their owner (__gc). */
void nio__conn_close_after_flush(nio_conn *c);

int nio__conn_getsockname(nio_conn *c, nio_addr *a);
int nio__conn_getpeername(nio_conn *c, nio_addr *a);
int nio__conn_setopt(nio_conn *c, const char *name, int value);

/* ---- TLS (tls.c; absent when built without NETIO_TLS) ---------------- */

/*
** TLS is a filter inside the connection: ciphertext from the receive
** completions goes through OpenSSL (memory BIOs) into the input buffer as
** plaintext; what is written (nio__conn_write, nio_send) is encrypted into
** the output queue. With TLS, `queued` counts the encrypted bytes not yet
** sent plus the plaintext written during the handshake (encrypted once it
** is done); the water marks apply to that figure.
**
** A context wraps an OpenSSL SSL_CTX (void * keeps this header free of
** OpenSSL) with the client session cache. Reference counted: its creator
** holds one, every connection using it another (any thread that owns the
** engine's worker; not shared between threads).
*/
typedef struct nio_tls_ctx nio_tls_ctx;
/* Wrap ssl_ctx (an SSL_CTX *; a reference is taken). server: accept side. */
int nio__tls_ctx_new(void *ssl_ctx, int server, nio_tls_ctx **out);
void nio__tls_ctx_ref(nio_tls_ctx *t);
void nio__tls_ctx_unref(nio_tls_ctx *t);
void *nio__tls_ctx_ssl(nio_tls_ctx *t);
int nio__tls_ctx_server(const nio_tls_ctx *t);
typedef struct nio_tls_opts {
  /* Clients: the name sent as SNI and checked against the certificate
  ** (NULL: none); or ip, an IP address checked against its IP SANs. */
  const char *servername, *ip;
  /* Clients: the session cache key (servername or address); NULL: none. */
  const char *session_key;
  int verify;          /* -1: the context's, 0: off, 1: on */
  uint64_t timeout_ns; /* 0: none; else the handshake fails NIO_ETIMEDOUT */
} nio_tls_opts;
/* Start TLS on an open connection (STARTTLS), as client or server by the
** context. Input already buffered is fed to TLS first. NIO_EV_TLS comes
** when the handshake ends. NIO_EALREADY when TLS was started before. */
int nio__conn_starttls(nio_conn *c, nio_tls_ctx *ctx, const nio_tls_opts *o);
/* 0: no TLS, 1: handshaking, 2: established. */
int nio__conn_tls_state(const nio_conn *c);
/* Why the handshake or the stream failed ("certificate verify failed:
** certificate has expired"), or NULL. */
const char *nio__conn_tls_error(const nio_conn *c);
/* The connection's SSL * (for queries), or NULL. */
void *nio__conn_tls_ssl(const nio_conn *c);
/* Queue the close_notify alert (graceful close); no-op without TLS. */
void nio__conn_tls_close(nio_conn *c);

/* ---- listeners ------------------------------------------------------ */

/* NIO_EV_READ on a listener: connections are pending (or err is set). */
typedef void (*nio_listener_cb)(nio_listener *l, int events);
struct nio_listener {
  nio_listener_cb cb;
  void *udata;
  nio_sock fd;
  int err;  /* last accept error (NIO_E*), 0 if none */
  int dead; /* err was fatal: no more connections come (callback fired) */
  /* Engine-private fields follow in listener.c's definition. */
};
/* Listen on addr. The engine accepts ahead and keeps up to backlog
** accepted connections waiting for nio__listener_accept(). accepts: how
** many accepts the backend keeps posted where it pre-posts them (iocp's
** AcceptEx; 0 = its default of 4, at most 1024); ignored elsewhere. */
int nio__listen(nio_engine *e, const nio_addr *addr, int backlog, int reuseport,
                int accepts, nio_listener_cb cb, void *udata,
                nio_listener **out);
/* A pending connection, now owned by the caller, or NULL if none. */
nio_conn *nio__listener_accept(nio_listener *l, nio_conn_cb cb, void *udata);
int nio__listener_getsockname(nio_listener *l, nio_addr *a);
/* Close: pending connections are closed; no callback after this call. */
void nio__listener_close(nio_listener *l);
/* Accept with TLS: each accepted connection gets its server handshake
** first (bounded by timeout_ns); only those that complete it become
** pending, the others are closed (logged at debug level). */
void nio__listener_tls(nio_listener *l, nio_tls_ctx *ctx, uint64_t timeout_ns);

/* ---- datagram sockets (UDP) ------------------------------------------ */

typedef struct nio_udp nio_udp;
/* NIO_EV_READ: a datagram (or a receive error) waits for
** nio__udp_recv(). NIO_EV_WRITE: a send that nio__udp_send() handed to
** the port ended; nio__udp_send_result() tells how. */
typedef void (*nio_udp_cb)(nio_udp *u, int events);
/*
** A datagram socket. Allocated and freed by the engine; the owner who
** opened it reads the fields and calls the functions, and forgets the
** pointer after nio__udp_close(): the engine frees it once its requests
** had their final completions. No callback after the close.
*/
struct nio_udp {
  nio_udp_cb cb; /* owner's */
  void *udata;   /* owner's */
  /* NIO_BAD_SOCK until the socket exists: made at open with a bind
  ** address, else by the first send or connect, in that address's
  ** family. */
  nio_sock fd;
  int family;             /* AF_INET or AF_INET6 once fd exists, else 0 */
  unsigned connected : 1; /* nio__udp_connect() succeeded */
  /* Engine-private fields follow in udp.c's definition. */
};
/* The largest datagram payload of an address family (IPv4 65,507, IPv6
** 65,527); what nio__udp_send refuses above with NIO_EMSGSIZE. */
#define NIO_UDP_MAX_V4 65507
#define NIO_UDP_MAX_V6 65527
/* Open a datagram socket, bound to bind (NULL: made unbound by the first
** send or connect). reuseaddr, broadcast: 0/1 (SO_REUSEADDR before the
** bind, SO_BROADCAST). */
int nio__udp_open(nio_engine *e, const nio_addr *bind, int reuseaddr,
                  int broadcast, nio_udp_cb cb, void *udata, nio_udp **out);
/* Take one datagram: returns its length (0 for an empty one) with the
** bytes at *p (valid until the next call on u) and the source in *from;
** *trunc = 1 if the OS cut it (never for the engine's 64 KiB buffer and
** an IP datagram). NIO_EAGAIN: none yet, NIO_EV_READ comes when one is
** there. NIO_ECONNREFUSED: a connected socket's peer answered with port
** unreachable. NIO_ECLOSED after the close. One datagram per call; a
** receive error is delivered once. */
long nio__udp_recv(nio_udp *u, const char **p, nio_addr *from, int *trunc);
/* Send len bytes as one datagram to a (NULL: the connected peer). A v4
** address on an IPv6 socket goes v4-mapped. Returns len when the kernel
** took it at once; NIO_EINPROGRESS when the socket was full and a copy
** went to the port (NIO_EV_WRITE then, and nio__udp_send_result());
** NIO_EBUSY while an earlier one is in the port; NIO_EMSGSIZE above the
** family's maximum; NIO_ENOTCONN without a and a peer; or NIO_E*. */
long nio__udp_send(nio_udp *u, const void *p, size_t len, const nio_addr *a);
/* The result of the send NIO_EINPROGRESS stood for: bytes or NIO_E*. */
int nio__udp_send_result(nio_udp *u);
/* Whether a send is in the port (NIO_EBUSY for the next). */
int nio__udp_sending(const nio_udp *u);
/* Connect (no handshake: sets the peer, filters what arrives, and makes
** a peer's port unreachable show as NIO_ECONNREFUSED). */
int nio__udp_connect(nio_udp *u, const nio_addr *a);
/* Options by name: "broadcast", "reuseaddr" (0/1), "sndbuf", "rcvbuf"
** (bytes > 0); kept until the socket exists if it does not yet. */
int nio__udp_setopt(nio_udp *u, const char *name, int value);
/* Source and peer addresses; a v4-mapped IPv6 address is given as IPv4.
** NIO_EINVAL before the socket exists (getsockname), NIO_ENOTCONN
** without a peer (getpeername). */
int nio__udp_getsockname(nio_udp *u, nio_addr *a);
int nio__udp_getpeername(nio_udp *u, nio_addr *a);
/* Close: cancel what is in the port, close the socket once that ended. */
void nio__udp_close(nio_udp *u);

/* ---- line scanning ("*l") -------------------------------------------- */

/* Find the end of the first line of p[0..len): an LF, with a CR right
** before it not part of the line. *scan counts the bytes already searched
** (0 at first; kept between calls while the input grows). Returns 0 with
** the line's length in *linelen and the bytes to consume (LF included) in
** *used, *scan back to 0; NIO_EAGAIN when there is no LF yet (*scan = len);
** NIO_EMSGSIZE when the line is longer than max bytes (found or not), with
** *used the bytes of that line buffered (up to its LF included, if seen):
** what a failure may consume, the lines after it left alone. */
int nio__line_scan(const char *p, size_t len, size_t *scan, size_t max,
                   size_t *linelen, size_t *used);

/* ---- addresses and name resolution ---------------------------------- */

/* Split "host:port", "[v6]:port" or "*:port" into host and port. "*" and
** "" give host "" (any address). Returns 0 or NIO_EBADADDR. */
int nio__addr_split(const char *s, char *host, size_t hostlen, int *port);
/* Parse a numeric host ("" = 0.0.0.0, "127.0.0.1", "::1", "fe80::1%eth0")
** and port (0..65535) into a. Returns 0, NIO_EBADADDR for a bad port or a
** host with ':' or '%' that is not an IPv6 literal with an optional zone,
** NIO_ENODEV for a zone that names no interface, or NIO_EAI_NONAME if
** host is not numeric (then resolve it). */
int nio__addr_numeric(const char *host, int port, nio_addr *a);
/* An address string as netio.listen and netio.connect take it:
** "host:port" forms as nio__addr_split, or "unix:/path" (and on Linux
** "unix:@abstract"). Returns 0 with a set, 1 when host is a name to
** resolve (host and port set), NIO_EBADADDR, NIO_ENODEV (unknown zone),
** or for "unix:" the errors of nio__addr_unix (NIO_EINVAL for an empty
** path, NIO_ENAMETOOLONG, NIO_EAFNOSUPPORT). */
int nio__addr_parse(const char *s, char *host, size_t hostlen, int *port,
                    nio_addr *a);
/* 0 if host can be a host name (letters, digits, '.', '-', '_'; 1 to 255
** of them), else NIO_EBADADDR: junk is refused before any lookup. */
int nio__addr_name_check(const char *host);
/* Remove the later copies of equal addresses from a[0..n), keeping the
** order of the first ones. Returns the new count. */
int nio__addr_dedup(nio_addr *a, int n);

/* The most addresses a lookup gives (nio__resolve); more are dropped. */
#define NIO_RESOLVE_MAX 32
/* Resolve a host name without blocking the loop: getaddrinfo runs on one
** of the engine's lookup threads (at most 4, started as needed, stopped
** when the engine ends); cb runs later on the worker with res = 0 and
** the n addresses (1 <= n <= NIO_RESOLVE_MAX, ports set, in the
** resolver's order, without duplicates; valid during the call), or
** NIO_E*, or NIO_ECANCELED as the engine ends. Returns 0, NIO_EBUSY
** (1024 lookups already wait for a thread), NIO_ECLOSED (the engine is
** ending), NIO_ENOMEM or a thread error.
** Test switch: NETIO_TEST_RESOLVE="name=ip,ip;name2=ip" answers those
** names with those addresses, in that order, without a lookup (read when
** the engine's first lookup starts). */
typedef void (*nio_resolve_cb)(void *arg, int res, const nio_addr *a, int n);
int nio__resolve(nio_engine *e, const char *host, int port, nio_resolve_cb cb,
                 void *arg);

#endif /* NIO_ENGINE_H */
