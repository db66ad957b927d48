/*
** sys.h: the small per-OS layer (threads, locks, time, socket helpers).
** The engine and the binding call only this and port.h, so they carry no
** #ifdef for the OS. Implemented in sys_unix.c and sys_win.c.
**
** All functions returning int return 0 or a count on success and a
** negative NIO_E* code on failure; none of them leaves errno meaningful.
*/
#ifndef NIO_SYS_H
#define NIO_SYS_H

#include <stddef.h>
#include <stdint.h>
#include "netio.h"

#ifdef _WIN32
#include <winsock2.h>
#include <ws2tcpip.h>
typedef SOCKET nio_sock;
#define NIO_BAD_SOCK INVALID_SOCKET
#else
#include <pthread.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h> /* inet_pton, htons for the engine's addr.c */
typedef int nio_sock;
#define NIO_BAD_SOCK (-1)
#endif

/* A byte range for vectored sends; same layout as struct iovec / WSABUF is
** not guaranteed, so backends convert (uring/epoll cast: the layout matches
** struct iovec on Linux, checked by a static assert in sys_unix.c). */
typedef struct nio_iov {
  void *base;
  size_t len;
} nio_iov;

/* Socket addresses. */
typedef struct nio_addr {
  struct sockaddr_storage ss;
  uint32_t len; /* socklen_t */
} nio_addr;

/* Once per process before the first socket call (WSAStartup on Windows;
** nothing elsewhere). The socket functions here and the ports call it
** themselves; code using the OS socket API directly (tests) calls it. */
int nio__sys_init(void);
/* The host's process-wide allocator settings, before it allocates much:
** keep memory freed at the top of the heap instead of handing it back to
** the OS at every free (glibc trims above 128 KiB, so a server churning
** 16 KiB strings faults the same pages in again at every message). A
** library never calls this; it is the executable's choice. No-op where
** there is nothing to tune. */
void nio__sys_tune_heap(void);

/* The host's interrupts. fn(sig) runs for SIGINT/SIGTERM (POSIX: in a
** signal handler, so it may only do async-signal-safe work) or for
** Ctrl-C/Ctrl-Break/console close (Windows: on a thread of its own, given
** SIGINT or SIGTERM). NULL restores the default. */
typedef void (*nio_interrupt_fn)(int sig);
void nio__sys_on_interrupt(nio_interrupt_fn fn);
/* Block (1) or unblock (0) the interrupt signals in the calling thread;
** threads it starts inherit the mask. No-op on Windows. */
void nio__sys_interrupt_mask(int block);
/* Leave the process at once, without atexit handlers or flushing. */
void nio__sys_exit_now(int status);
int nio__sys_stdin_is_tty(void);
/* Read the process's standard input (blocking: call it off the loop).
** Returns bytes read, 0 at end of input, or NIO_E*. */
long nio__sys_read_stdin(void *buf, size_t len);

/* Time: monotonic nanoseconds. */
uint64_t nio__now_ns(void);
/* Wall-clock time: nanoseconds since the Unix epoch (it may jump when the
** system clock is set; never use it for timeouts). */
uint64_t nio__wall_ns(void);

/* Threads and locks. */
typedef struct nio_thread nio_thread;
typedef void (*nio_thread_fn)(void *arg);
int nio__thread_start(nio_thread **out, nio_thread_fn fn, void *arg);
/* Wait for the thread and free it. */
int nio__thread_join(nio_thread *t);
/* Let a started thread go: it is never joined, its resources go when it
** ends. Frees t. */
void nio__thread_detach(nio_thread *t);
/* Start a thread that frees itself when fn returns. */
int nio__thread_detach_start(nio_thread_fn fn, void *arg);
/* Keep the shared object holding addr loaded until the process exits:
** threads the engine lets go (a lookup stuck in getaddrinfo, the stdin
** reader) may still run its code after the Lua state that loaded it
** closed and unloaded it. A no-op when addr is in the executable. */
void nio__module_pin(const void *addr);
/* Block SIGINT/SIGTERM/SIGPIPE in the calling thread (threads it starts
** inherit this), so only the host's main thread sees them. No-op on
** Windows. */
void nio__thread_block_signals(void);
/* A process-wide thread-specific slot whose non-NULL value is handed to
** dtor when its thread ends (pthread keys; fiber-local storage on
** Windows). Returns 0 or NIO_E*. */
typedef uintptr_t nio_tls_key;
int nio__tls_key_new(nio_tls_key *key, void (*dtor)(void *));
void nio__tls_set(nio_tls_key key, void *value);
/* A small integer naming the calling OS thread, for log headers. */
uint64_t nio__thread_self_id(void);

typedef struct nio_mutex {
#ifdef _WIN32
  SRWLOCK l;
#else
  pthread_mutex_t m;
#endif
} nio_mutex;
typedef struct nio_cond {
#ifdef _WIN32
  CONDITION_VARIABLE c;
#else
  pthread_cond_t c;
#endif
} nio_cond;
int nio__mutex_init(nio_mutex *m);
void nio__mutex_destroy(nio_mutex *m);
void nio__mutex_lock(nio_mutex *m);
void nio__mutex_unlock(nio_mutex *m);
int nio__cond_init(nio_cond *c);
void nio__cond_destroy(nio_cond *c);
void nio__cond_signal(nio_cond *c);
void nio__cond_broadcast(nio_cond *c);
/* Wait on c with m held. timeout_ns < 0 waits forever. Returns 0, or
** NIO_ETIMEDOUT when the time passed. */
int nio__cond_wait(nio_cond *c, nio_mutex *m, int64_t timeout_ns);

/* Sockets. Every socket made here is non-blocking and close-on-exec.
** family: AF_INET, AF_INET6, or AF_UNIX where nio__addr_unix() makes
** such addresses (a stream socket in every case). */
int nio__sock_tcp(int family, nio_sock *out);
int nio__sock_close(nio_sock s);
/* bind + listen, with SO_REUSEADDR (and SO_REUSEPORT if reuseport) for
** IP addresses. A Unix socket path that exists (a stale socket file
** included) fails with NIO_EADDRINUSE: nothing is unlinked here. */
int nio__sock_listen(const nio_addr *a, int backlog, int reuseport,
                     nio_sock *out);
/* Bind a fresh socket to a, with address (and port) reuse, for a client
** that wants a fixed local address (hole punching). */
int nio__sock_bind_reuse(nio_sock s, const nio_addr *a);
int nio__sock_getsockname(nio_sock s, nio_addr *a);
int nio__sock_getpeername(nio_sock s, nio_addr *a);
/* Pending error of a socket (SO_ERROR) as NIO_E*, or 0. */
int nio__sock_error(nio_sock s);
/* Options by LuaSocket name: "tcp-nodelay", "keepalive", "reuseaddr",
** "broadcast" (value 0/1), "linger" (value = seconds, < 0 turns it off),
*"sndbuf",
** "rcvbuf" (SO_SNDBUF/SO_RCVBUF, value = bytes > 0).
** "tcp-nodelay" on a Unix socket succeeds doing nothing: there is no
** Nagle there to turn off. */
int nio__sock_setopt(nio_sock s, const char *name, int value);
/* Datagram (UDP) sockets. A new one is non-blocking and close-on-exec;
** on Windows an ICMP "port unreachable" does not fail a later receive of
** the unconnected socket (SIO_UDP_CONNRESET off), as on Linux. An IPv6
** one is dual-stack. */
int nio__sock_udp(int family, nio_sock *out);
int nio__sock_bind(nio_sock s, const nio_addr *a);
/* Connect a datagram socket (at once: there is no handshake). From then
** on a peer's "port unreachable" fails its receives with NIO_ECONNREFUSED
** (turned back on for this socket on Windows). */
int nio__sock_udp_connect(nio_sock s, const nio_addr *a);
/* One non-blocking sendto (a == NULL: the connected peer): bytes sent or
** NIO_E* (NIO_EAGAIN when the socket's buffer is full). */
long nio__sock_sendto(nio_sock s, const void *p, size_t len, const nio_addr *a);
/* One non-blocking receive of one datagram: the bytes stored (at most
** len) with *trunc = 1 when the datagram was longer (the rest is lost),
** and its source in *a (if a); NIO_EAGAIN when none is there, or NIO_E*
** (NIO_ECONNREFUSED: a connected socket's peer refused, on every OS). */
long nio__sock_recvfrom(nio_sock s, void *p, size_t len, nio_addr *a,
                        int *trunc);
/* Half-close the sending side. */
int nio__sock_shutdown_write(nio_sock s);
/* Abortive close: SO_LINGER 0 then close, the peer sees a reset. */
int nio__sock_close_reset(nio_sock s);
/* Whether s has something to read right now -- bytes, the end of the
** stream or a pending error -- without waiting and without taking it:
** 1 or 0, or NIO_E*. For a connection that must be quiet (an idle pooled
** one) whose news the port may not have delivered yet. */
int nio__sock_readable(nio_sock s);
/* A connected pair of stream sockets: *engine_end is non-blocking (for a
** port), *writer_end blocking (for a helper thread's nio__sock_send). A
** Unix socket pair where there is one, a loopback TCP pair elsewhere. */
int nio__sock_pair(nio_sock *engine_end, nio_sock *writer_end);
/* One blocking send on a blocking socket, never raising SIGPIPE: bytes
** sent (> 0) or NIO_E*. */
long nio__sock_send(nio_sock s, const void *p, size_t len);
/* Error of the last failed socket call of this thread, as NIO_E*. */
int nio__sock_last_error(void);

/* The interface an IPv6 zone names: an interface name ("eth0") or a
** decimal index of an existing interface. Returns 0 with *index set, or
** NIO_ENODEV when no interface answers to it. */
int nio__if_index(const char *zone, uint32_t *index);
/* Format an address as ip text and port ("::1", 8080). A Unix socket
** address is formatted "unix:/path" ("unix:@name" for an abstract one,
** "unix:" for an unnamed peer) with *port = -1; iplen must then hold
** NIO_ADDR_TEXT_MAX bytes or the result is NIO_ENAMETOOLONG. */
#define NIO_ADDR_TEXT_MAX 128
int nio__addr_format(const nio_addr *a, char *ip, size_t iplen, int *port);
/* A Unix domain socket address for path ("/run/x.sock", "rel/x.sock";
** on Linux "@name" is the abstract name "name"). Returns 0, NIO_EINVAL
** for an empty path, NIO_ENAMETOOLONG when it does not fit sun_path, or
** NIO_EAFNOSUPPORT where the OS layer has no Unix sockets (Windows, for
** now). */
int nio__addr_unix(const char *path, nio_addr *a);
/* A listening Unix socket's file: its identity after bind (*id, 0 when it
** has none: abstract, or no Unix sockets), and its removal at close, only
** if the path still names that same socket file (not one a later listener
** made after someone removed ours). */
typedef struct nio_file_id {
  uint64_t dev, ino;
} nio_file_id;
void nio__addr_unix_id(const nio_addr *a, nio_file_id *id);
void nio__addr_unix_unlink(const nio_addr *a, const nio_file_id *id);
/* Resolve a host name (blocking: call it off the loop) to its IPv4/IPv6
** addresses in the resolver's preferred order, at most max of them, port
** set. Returns how many (> 0) or NIO_E* (NIO_EAI_NONAME when none). */
int nio__addr_resolve(const char *host, int port, nio_addr *out, int max);

#endif /* NIO_SYS_H */
