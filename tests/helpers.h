/*
** helpers.h: shared helpers of the cmocka tests -- the port of the backend
** named by NETIO_BACKEND, loopback sockets, bounded run loops, checksums.
**
** Every helper that can fail fails the running test with a message saying
** what was expected; none of them loops without a deadline.
*/
#ifndef NIO_TEST_HELPERS_H
#define NIO_TEST_HELPERS_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include "port/port.h"

/* Fail the current test with a formatted message saying what was
** expected. */
#define th_fail(...) fail_msg(__VA_ARGS__)

/* The backend under test: NETIO_BACKEND, or "" for the default choice. */
const char *th_backend(void);
/* Call first in main(): exits 77 (skipped) with a message when the backend
** named by NETIO_BACKEND cannot be opened on this machine, and raises the
** open-files limit to at least nofile (0 = leave it). */
void th_init(int nofile);
/* Open a port for th_backend(); fails the test if it cannot. */
nio_port *th_port_open(void);

/* 127.0.0.1:port. */
void th_addr_loopback(nio_addr *a, int port);
int th_addr_port(const nio_addr *a);
/* A non-blocking listener on 127.0.0.1:0; *a gets its real address. */
nio_sock th_listen(nio_addr *a);
/* The same on 127.0.113.1, which no other test binds: a port freed there
** cannot be taken by a test running in parallel (they listen on
** 127.0.0.1), so a test may listen on it again. */
nio_sock th_listen_private(nio_addr *a);
/* A loopback address on which nothing listens (a port just released). */
void th_addr_closed(nio_addr *a);
/* A blocking client socket connected to a. */
int th_client(const nio_addr *a);
/* A connected pair over loopback: *client is blocking, *server (the
** accepted end) is non-blocking and added to p if p is not NULL. */
void th_pair(nio_port *p, int *client, nio_sock *server);
/* The end of a th_pair test: forget the server end in p, close both ends,
** then close p. */
void th_pair_finish(nio_port *p, int client, nio_sock server);
void th_set_blocking(int fd, int blocking);
/* Blocking I/O that fails the test on error; read_some returns 0 at EOF. */
void th_write_all(int fd, const void *buf, size_t len);
size_t th_read_some(int fd, void *buf, size_t len);
/* Sets a receive timeout so that blocking reads in tests stay bounded. */
void th_sock_timeout(int fd, int ms);
/* One recv() on a blocking test socket, safe off the test thread: bytes
** (0 at EOF) or a negative NIO_E*. */
long th_recv(int fd, void *buf, size_t len);
/* send() on a test socket without SIGPIPE: bytes or a negative NIO_E*. */
long th_send(int fd, const void *buf, size_t len);
/* Fails the test unless fd is non-blocking and not inherited by children
** (what of it the OS lets one query). */
void th_check_nonblock_cloexec(nio_sock fd, const char *what);
/* Lower the open-files limit to the lowest free descriptor (no new one
** fits) and restore it; -1 where the OS has no such limit. */
int th_fds_limit_now(void);
void th_fds_limit_restore(void);
/* A new socket on the lowest free descriptor number, duplicating fd
** (F_DUPFD_CLOEXEC); -2 where descriptors are not small numbers. */
int th_dup_lowest(nio_sock fd);
/* Start a non-blocking connect of s to a; 1 when it is still in progress
** after ms milliseconds, 0 otherwise. */
int th_connect_pending(nio_sock s, const nio_addr *a, int ms);
/* Close a test client socket (close / closesocket). */
void th_close(int fd);
/* Sleep the calling thread. */
void th_usleep(unsigned us);
/* Set an environment variable; value NULL removes it. */
void th_setenv(const char *name, const char *value);

/* Monotonic milliseconds. */
int64_t th_now_ms(void);
/* Run the port until pred(ud) holds; fails with "timed out after ms ms
** waiting for <what>" at the deadline. */
void th_run_until(nio_port *p, int (*pred)(void *), void *ud, int ms,
                  const char *what);
/* Run the port for ms milliseconds whatever happens. */
void th_run_for(nio_port *p, int ms);

/* A record of a request's completions; put its address in req->data and
** th_log_cb in req->cb. */
typedef struct th_log {
  int ncqe;   /* completions seen */
  int nfinal; /* of which without NIO_CQE_MORE */
  int nmore;  /* of which with NIO_CQE_MORE */
  int first_res;
  int last_res;
  unsigned last_flags;
  int nerr;        /* completions with res < 0 */
  int neof;        /* completions with res == 0 */
  int max_res;     /* largest res */
  uint64_t bytes;  /* sum of res > 0 */
  uint64_t hash;   /* th_hash over the data received, in order */
  int active_seen; /* req->active seen in the final callback (must be 0) */
  int fds[4096];   /* accept: the sockets delivered */
  int nfds;
} th_log;
void th_log_init(th_log *l);
void th_log_cb(nio_req *r, int res, const char *data, unsigned flags);
/* A predicate for th_run_until: the log saw its final completion. */
int th_log_final(void *log);
/* Fill a request for op on fd that reports to log. */
void th_req(nio_req *r, nio_sock fd, int op, th_log *log);

/* FNV-1a, 64 bits, chainable: start from TH_HASH_INIT. */
#define TH_HASH_INIT 14695981039346656037ull
uint64_t th_hash(uint64_t h, const void *p, size_t len);
/* Deterministic test bytes: the byte at stream offset off is a function of
** off, so a stream's checksum can be computed without keeping it. */
void th_pattern(void *buf, size_t len, uint64_t off);

#endif /* NIO_TEST_HELPERS_H */
