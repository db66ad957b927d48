/*
** helpers_posix.c: the OS-specific test helpers of helpers.h for Linux --
** blocking BSD-socket test clients, the open-files limit.
*/
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>
#include "helpers.h"

void th_init(int nofile) {
  const char *b = th_backend();
  struct rlimit rl;
  if (b[0] != '\0' && !nio__port_available(b)) {
    fprintf(stderr, "SKIP: backend \"%s\" cannot be opened here\n", b);
    exit(77);
  }
  if (nofile > 0 && getrlimit(RLIMIT_NOFILE, &rl) == 0 &&
      rl.rlim_cur < (rlim_t)nofile) {
    rl.rlim_cur = rl.rlim_max < (rlim_t)nofile ? rl.rlim_max : (rlim_t)nofile;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
}

int th_client(const nio_addr *a) {
  int fd = socket(a->ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) th_fail("socket(): %s", strerror(errno));
  if (connect(fd, (const struct sockaddr *)&a->ss, a->len) != 0)
    th_fail("expected a blocking connect to succeed: %s", strerror(errno));
  th_sock_timeout(fd, 10000);
  return fd;
}

void th_set_blocking(int fd, int blocking) {
  int fl = fcntl(fd, F_GETFL);
  fl = blocking ? (fl & ~O_NONBLOCK) : (fl | O_NONBLOCK);
  fcntl(fd, F_SETFL, fl);
}

void th_sock_timeout(int fd, int ms) {
  struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

void th_pair(nio_port *p, int *client, nio_sock *server) {
  nio_addr a;
  nio_sock l = th_listen(&a);
  int fd, r;
  int64_t deadline = th_now_ms() + 5000;
  *client = th_client(&a);
  th_set_blocking(l, 1);
  th_sock_timeout(l, 5000);
  do fd = accept4(l, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
  while (fd < 0 && errno == EINTR && th_now_ms() < deadline);
  if (fd < 0)
    th_fail("expected to accept the test client: %s", strerror(errno));
  nio__sock_close(l);
  *server = fd;
  if (p && (r = nio__port_add(p, fd)) != 0)
    th_fail("expected nio__port_add to succeed, got %s", nio_err_name(r));
}

void th_write_all(int fd, const void *buf, size_t len) {
  const char *c = buf;
  ssize_t n;
  while (len > 0) {
    n = send(fd, c, len, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0)
      th_fail("expected to write %zu more bytes: %s", len,
              n < 0 ? strerror(errno) : "wrote 0");
    c += n;
    len -= (size_t)n;
  }
}

size_t th_read_some(int fd, void *buf, size_t len) {
  ssize_t n;
  do n = recv(fd, buf, len, 0);
  while (n < 0 && errno == EINTR);
  if (n < 0)
    th_fail("expected to read up to %zu bytes: %s", len, strerror(errno));
  return (size_t)n;
}

void th_close(int fd) {
  close(fd);
}

void th_usleep(unsigned us) {
  usleep(us);
}

void th_setenv(const char *name, const char *value) {
  if (value)
    setenv(name, value, 1);
  else
    unsetenv(name);
}

long th_recv(int fd, void *buf, size_t len) {
  ssize_t n;
  do n = recv(fd, buf, len, 0);
  while (n < 0 && errno == EINTR);
  return n < 0 ? nio_translate_sys_error(errno) : (long)n;
}

long th_send(int fd, const void *buf, size_t len) {
  ssize_t n;
  do n = send(fd, buf, len, MSG_NOSIGNAL);
  while (n < 0 && errno == EINTR);
  return n < 0 ? nio_translate_sys_error(errno) : (long)n;
}

void th_check_nonblock_cloexec(nio_sock fd, const char *what) {
  int fl = fcntl(fd, F_GETFL);
  if (!(fl & O_NONBLOCK)) th_fail("expected %s non-blocking", what);
  fl = fcntl(fd, F_GETFD);
  if (!(fl & FD_CLOEXEC)) th_fail("expected %s close-on-exec", what);
}

static struct rlimit th_saved_nofile;

int th_fds_limit_now(void) {
  struct rlimit low;
  int next;
  if (getrlimit(RLIMIT_NOFILE, &th_saved_nofile) != 0) return -1;
  if ((next = dup(0)) < 0) return -1;
  close(next);
  low = th_saved_nofile;
  low.rlim_cur = (rlim_t)next;
  return setrlimit(RLIMIT_NOFILE, &low) == 0 ? 0 : -1;
}

void th_fds_limit_restore(void) {
  setrlimit(RLIMIT_NOFILE, &th_saved_nofile);
}

int th_dup_lowest(nio_sock fd) {
  if (fd < 0) return -1;
  return fcntl(fd, F_DUPFD_CLOEXEC, 0);
}

int th_connect_pending(nio_sock s, const nio_addr *a, int ms) {
  struct pollfd pfd = {s, POLLOUT, 0};
  if (connect(s, (const struct sockaddr *)&a->ss, a->len) == 0) return 0;
  if (errno != EINPROGRESS) return 0;
  return poll(&pfd, 1, ms) == 0;
}
