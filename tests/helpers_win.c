/*
** helpers_win.c: the OS-specific test helpers of helpers.h for Windows --
** blocking Winsock test clients (plain, not overlapped, sockets).
*/
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "helpers.h"

static const char *wsa_msg(void) {
  return nio_strerror(nio_translate_sys_error(WSAGetLastError()));
}

/* Windows has no open-files limit to raise. */
void th_init(int nofile) {
  const char *b = th_backend();
  (void)nofile;
  nio__sys_init();
  if (b[0] != '\0' && !nio__port_available(b)) {
    fprintf(stderr, "SKIP: backend \"%s\" cannot be opened here\n", b);
    exit(77);
  }
}

int th_client(const nio_addr *a) {
  SOCKET fd;
  nio__sys_init();
  fd = socket(a->ss.ss_family, SOCK_STREAM, IPPROTO_TCP);
  if (fd == INVALID_SOCKET) th_fail("socket(): %s", wsa_msg());
  SetHandleInformation((HANDLE)fd, HANDLE_FLAG_INHERIT, 0);
  if (connect(fd, (const struct sockaddr *)&a->ss, (int)a->len) != 0)
    th_fail("expected a blocking connect to succeed: %s", wsa_msg());
  th_sock_timeout((int)fd, 10000);
  return (int)fd;
}

void th_set_blocking(int fd, int blocking) {
  u_long nb = blocking ? 0 : 1;
  ioctlsocket((SOCKET)fd, FIONBIO, &nb);
}

void th_sock_timeout(int fd, int ms) {
  DWORD tv = (DWORD)ms;
  setsockopt((SOCKET)fd, SOL_SOCKET, SO_RCVTIMEO, (const char *)&tv, sizeof tv);
  setsockopt((SOCKET)fd, SOL_SOCKET, SO_SNDTIMEO, (const char *)&tv, sizeof tv);
}

/* The accepted end is made by accept() on a listener from sys_win.c, so it
** is overlapped-capable and inherits non-blocking mode from it. */
void th_pair(nio_port *p, int *client, nio_sock *server) {
  nio_addr a;
  nio_sock l = th_listen(&a);
  SOCKET fd = INVALID_SOCKET;
  u_long nb = 1;
  int r;
  int64_t deadline = th_now_ms() + 5000;
  *client = th_client(&a);
  while (fd == INVALID_SOCKET && th_now_ms() < deadline) {
    fd = accept(l, NULL, NULL);
    if (fd == INVALID_SOCKET && WSAGetLastError() == WSAEWOULDBLOCK) Sleep(1);
  }
  if (fd == INVALID_SOCKET)
    th_fail("expected to accept the test client: %s", wsa_msg());
  ioctlsocket(fd, FIONBIO, &nb);
  SetHandleInformation((HANDLE)fd, HANDLE_FLAG_INHERIT, 0);
  nio__sock_close(l);
  *server = fd;
  if (p && (r = nio__port_add(p, fd)) != 0)
    th_fail("expected nio__port_add to succeed, got %s", nio_err_name(r));
}

void th_write_all(int fd, const void *buf, size_t len) {
  const char *c = buf;
  int n;
  while (len > 0) {
    n = send((SOCKET)fd, c, len > INT_MAX ? INT_MAX : (int)len, 0);
    if (n <= 0)
      th_fail("expected to write %zu more bytes: %s", len,
              n < 0 ? wsa_msg() : "wrote 0");
    c += n;
    len -= (size_t)n;
  }
}

size_t th_read_some(int fd, void *buf, size_t len) {
  int n = recv((SOCKET)fd, buf, len > INT_MAX ? INT_MAX : (int)len, 0);
  if (n < 0) th_fail("expected to read up to %zu bytes: %s", len, wsa_msg());
  return (size_t)n;
}

void th_close(int fd) {
  closesocket((SOCKET)fd);
}

void th_usleep(unsigned us) {
  Sleep((us + 999) / 1000);
}

/* getenv() reads the C runtime's copy, which _putenv_s updates. */
void th_setenv(const char *name, const char *value) {
  _putenv_s(name, value ? value : "");
}

long th_recv(int fd, void *buf, size_t len) {
  int n = recv((SOCKET)fd, buf, len > INT_MAX ? INT_MAX : (int)len, 0);
  return n < 0 ? nio_translate_sys_error(WSAGetLastError()) : (long)n;
}

long th_send(int fd, const void *buf, size_t len) {
  int n = send((SOCKET)fd, buf, len > INT_MAX ? INT_MAX : (int)len, 0);
  return n < 0 ? nio_translate_sys_error(WSAGetLastError()) : (long)n;
}

/* Winsock cannot report whether a socket is non-blocking; only the
** handle's inheritance is checked. */
void th_check_nonblock_cloexec(nio_sock fd, const char *what) {
  DWORD fl = 0;
  if (!GetHandleInformation((HANDLE)fd, &fl))
    th_fail("expected handle information for %s", what);
  if (fl & HANDLE_FLAG_INHERIT) th_fail("expected %s not inheritable", what);
}

int th_fds_limit_now(void) {
  return -1;
}

void th_fds_limit_restore(void) {}

int th_dup_lowest(nio_sock fd) {
  (void)fd;
  return -2;
}

int th_connect_pending(nio_sock s, const nio_addr *a, int ms) {
  fd_set wr, ex;
  struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
  if (connect(s, (const struct sockaddr *)&a->ss, (int)a->len) == 0) return 0;
  if (WSAGetLastError() != WSAEWOULDBLOCK) return 0;
  FD_ZERO(&wr);
  FD_ZERO(&ex);
  FD_SET(s, &wr);
  FD_SET(s, &ex);
  return select(0, NULL, &wr, &ex, &tv) == 0;
}
