/*
** helpers.c: shared helpers of the cmocka tests (see helpers.h); the
** OS-specific ones (blocking test clients, limits) are in helpers_posix.c
** and helpers_win.c.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "helpers.h"

const char *th_backend(void) {
  const char *b = getenv("NETIO_BACKEND");
  return b ? b : "";
}

nio_port *th_port_open(void) {
  nio_port *p = NULL;
  int r = nio__port_open(&p, th_backend());
  if (r != 0)
    th_fail("expected nio__port_open(\"%s\") to succeed, got %s", th_backend(),
            nio_err_name(r));
  if (th_backend()[0] != '\0' &&
      strcmp(nio__port_backend(p), th_backend()) != 0)
    th_fail("expected backend \"%s\", got \"%s\"", th_backend(),
            nio__port_backend(p));
  return p;
}

void th_addr_loopback(nio_addr *a, int port) {
  struct sockaddr_in *sin = (struct sockaddr_in *)&a->ss;
  memset(a, 0, sizeof *a);
  sin->sin_family = AF_INET;
  sin->sin_port = htons((uint16_t)port);
  sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a->len = sizeof *sin;
}

int th_addr_port(const nio_addr *a) {
  char ip[64];
  int port = -1;
  if (nio__addr_format(a, ip, sizeof ip, &port) != 0) return -1;
  return port;
}

static nio_sock listen_at(nio_addr *a, uint32_t ip) {
  nio_addr any;
  nio_sock s;
  int r;
  th_addr_loopback(&any, 0);
  ((struct sockaddr_in *)&any.ss)->sin_addr.s_addr = htonl(ip);
  if ((r = nio__sock_listen(&any, 1024, 0, &s)) != 0)
    th_fail("expected a loopback listener, got %s", nio_err_name(r));
  if ((r = nio__sock_getsockname(s, a)) != 0)
    th_fail("expected getsockname on the listener, got %s", nio_err_name(r));
  return s;
}

nio_sock th_listen(nio_addr *a) {
  return listen_at(a, INADDR_LOOPBACK);
}

nio_sock th_listen_private(nio_addr *a) {
  return listen_at(a, 0x7f007101u); /* 127.0.113.1 */
}

void th_addr_closed(nio_addr *a) {
  nio_sock s = th_listen(a);
  nio__sock_close(s);
}

int64_t th_now_ms(void) {
  return (int64_t)(nio__now_ns() / 1000000u);
}

void th_run_until(nio_port *p, int (*pred)(void *), void *ud, int ms,
                  const char *what) {
  int64_t deadline = th_now_ms() + ms, left;
  int r;
  while (!pred(ud)) {
    left = deadline - th_now_ms();
    if (left <= 0) th_fail("timed out after %d ms waiting for %s", ms, what);
    r = nio__port_wait(p, left > 50 ? 50 : (int)left);
    if (r < 0)
      th_fail("expected nio__port_wait to succeed while waiting for %s, got "
              "%s",
              what, nio_err_name(r));
  }
}

void th_run_for(nio_port *p, int ms) {
  int64_t deadline = th_now_ms() + ms, left;
  int r;
  while ((left = deadline - th_now_ms()) > 0) {
    r = nio__port_wait(p, (int)left);
    if (r < 0)
      th_fail("expected nio__port_wait to succeed, got %s", nio_err_name(r));
  }
}

void th_log_init(th_log *l) {
  memset(l, 0, sizeof *l);
  l->hash = TH_HASH_INIT;
}

void th_log_cb(nio_req *r, int res, const char *data, unsigned flags) {
  th_log *l = r->data;
  if (l->ncqe == 0) l->first_res = res;
  l->ncqe++;
  l->last_res = res;
  l->last_flags = flags;
  if (flags & NIO_CQE_MORE)
    l->nmore++;
  else {
    l->nfinal++;
    l->active_seen = r->active;
  }
  if (res < 0) l->nerr++;
  if (res == 0) l->neof++;
  if (res > l->max_res) l->max_res = res;
  if (res > 0) {
    l->bytes += (uint64_t)res;
    if (data) l->hash = th_hash(l->hash, data, (size_t)res);
  }
  if (r->op == NIO_OP_ACCEPT && res >= 0 &&
      l->nfds < (int)(sizeof l->fds / sizeof l->fds[0]))
    l->fds[l->nfds++] = res;
}

int th_log_final(void *log) {
  return ((th_log *)log)->nfinal > 0;
}

void th_req(nio_req *r, nio_sock fd, int op, th_log *log) {
  memset(r, 0, sizeof *r);
  r->fd = fd;
  r->op = (uint8_t)op;
  r->cb = th_log_cb;
  r->data = log;
}

uint64_t th_hash(uint64_t h, const void *p, size_t len) {
  const unsigned char *c = p;
  for (size_t i = 0; i < len; i++) {
    h ^= c[i];
    h *= 1099511628211ull;
  }
  return h;
}

void th_pattern(void *buf, size_t len, uint64_t off) {
  unsigned char *c = buf;
  for (size_t i = 0; i < len; i++) {
    uint64_t x = off + i;
    c[i] = (unsigned char)((x * 2654435761u) >> 13 ^ (x >> 8));
  }
}

void th_pair_finish(nio_port *p, int client, nio_sock server) {
  nio__port_remove(p, server);
  nio__sock_close(server);
  th_close(client);
  nio__port_close(p);
}
