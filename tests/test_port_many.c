/*
** test_port_many.c: a thousand simultaneous loopback connections through
** one port, both ends driven by it -- connect, send, echo, recv, close.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "helpers.h"

#define NCONN 1000

/* One echo server connection; freed by the test after its EOF. */
typedef struct srv {
  nio_req rr, rs;
  nio_sock fd;
  char buf[64];
  nio_iov iov;
  int closed;
} srv;

/* One client: connect, send its message, read the echo, and stay open
** until every client has its echo (so all are open at once). */
typedef struct cli {
  nio_req r;
  nio_sock fd;
  char msg[32];
  int msglen;
  char got[32];
  int ngot;
  nio_iov iov;
  int echoed;
} cli;

typedef struct world {
  nio_port *p;
  nio_req acc;
  srv *srvs[NCONN];
  int nsrv;
  cli clis[NCONN];
  int echoed;  /* clients with their echo */
  int sclosed; /* server ends that saw EOF */
  int accept_ended;
  int errors;
  char first_error[160];
} world;

static world W;

static void note_error(const char *what, int res) {
  if (W.errors++ == 0)
    snprintf(W.first_error, sizeof W.first_error, "%s: %s", what,
             nio_err_name(res));
}

static void srv_on_recv(nio_req *r, int res, const char *data, unsigned flags);

static void srv_on_send(nio_req *r, int res, const char *data, unsigned flags) {
  srv *s = r->data;
  (void)data;
  (void)flags;
  if (res < 0) return note_error("server send", res);
  if (nio__port_submit(W.p, &s->rr) != 0) note_error("server re-recv", -1);
}

static void srv_on_recv(nio_req *r, int res, const char *data, unsigned flags) {
  srv *s = r->data;
  (void)flags;
  if (res <= 0) {
    if (res < 0) note_error("server recv", res);
    nio__port_remove(W.p, s->fd);
    nio__sock_close(s->fd);
    s->closed = 1;
    W.sclosed++;
    return;
  }
  memcpy(s->buf, data, (size_t)res);
  s->iov.base = s->buf;
  s->iov.len = (size_t)res;
  s->rs.u.send.iov = &s->iov;
  s->rs.u.send.iovcnt = 1;
  if (nio__port_submit(W.p, &s->rs) != 0) note_error("server send submit", -1);
}

static void on_accept(nio_req *r, int res, const char *data, unsigned flags) {
  srv *s;
  (void)r;
  (void)data;
  if (!(flags & NIO_CQE_MORE)) {
    W.accept_ended = 1;
    if (res != NIO_ECANCELED) note_error("accept ended", res);
    return;
  }
  if (res < 0) return note_error("accept", res);
  if (W.nsrv >= NCONN || (s = calloc(1, sizeof *s)) == NULL) {
    nio__sock_close(res);
    return note_error("accept: too many", NIO_ENOMEM);
  }
  W.srvs[W.nsrv++] = s;
  s->fd = res;
  if (nio__port_add(W.p, res) != 0) return note_error("add accepted", -1);
  s->rr.fd = s->rs.fd = res;
  s->rr.op = NIO_OP_RECV;
  s->rr.u.recv.max = sizeof s->buf;
  s->rr.cb = srv_on_recv;
  s->rr.data = s;
  s->rs.op = NIO_OP_SEND;
  s->rs.cb = srv_on_send;
  s->rs.data = s;
  if (nio__port_submit(W.p, &s->rr) != 0) note_error("server recv submit", -1);
}

static void cli_on_recv(nio_req *r, int res, const char *data, unsigned flags) {
  cli *c = r->data;
  (void)flags;
  if (res <= 0) return note_error("client recv", res ? res : NIO_EOF);
  if (c->ngot + res > c->msglen) return note_error("client: too much", -1);
  memcpy(c->got + c->ngot, data, (size_t)res);
  c->ngot += res;
  if (c->ngot < c->msglen) {
    if (nio__port_submit(W.p, r) != 0) note_error("client re-recv", -1);
    return;
  }
  if (memcmp(c->got, c->msg, (size_t)c->msglen) != 0)
    return note_error("client: echo differs", -1);
  c->echoed = 1;
  W.echoed++;
}

static void cli_on_send(nio_req *r, int res, const char *data, unsigned flags) {
  cli *c = r->data;
  (void)data;
  (void)flags;
  if (res != c->msglen) return note_error("client send", res);
  r->op = NIO_OP_RECV;
  r->u.recv.max = 0;
  r->cb = cli_on_recv;
  if (nio__port_submit(W.p, r) != 0) note_error("client recv submit", -1);
}

static void cli_on_connect(nio_req *r, int res, const char *data,
                           unsigned flags) {
  cli *c = r->data;
  (void)data;
  (void)flags;
  if (res != 0) return note_error("client connect", res);
  c->iov.base = c->msg;
  c->iov.len = (size_t)c->msglen;
  r->op = NIO_OP_SEND;
  r->u.send.iov = &c->iov;
  r->u.send.iovcnt = 1;
  r->cb = cli_on_send;
  if (nio__port_submit(W.p, r) != 0) note_error("client send submit", -1);
}

static int all_echoed(void *ud) {
  (void)ud;
  return W.echoed == NCONN || W.errors > 0;
}

static int all_server_ends_closed(void *ud) {
  (void)ud;
  return W.sclosed == NCONN || W.errors > 0;
}

static int accept_ended(void *ud) {
  (void)ud;
  return W.accept_ended;
}

static void thousand_connections_each_echo_once(void **state) {
  nio_addr a;
  nio_sock l;
  int r;
  (void)state;
  memset(&W, 0, sizeof W);
  W.p = th_port_open();
  l = th_listen(&a);
  assert_int_equal(nio__port_add(W.p, l), 0);
  W.acc.fd = l;
  W.acc.op = NIO_OP_ACCEPT;
  W.acc.cb = on_accept;
  assert_int_equal(nio__port_submit(W.p, &W.acc), 0);
  for (int i = 0; i < NCONN; i++) {
    cli *c = &W.clis[i];
    c->msglen = snprintf(c->msg, sizeof c->msg, "hello from client %d", i);
    if ((r = nio__sock_tcp(AF_INET, &c->fd)) != 0)
      th_fail("expected client socket %d, got %s", i, nio_err_name(r));
    if ((r = nio__port_add(W.p, c->fd)) != 0)
      th_fail("expected to add client socket %d, got %s", i, nio_err_name(r));
    c->r.fd = c->fd;
    c->r.op = NIO_OP_CONNECT;
    c->r.u.connect.addr = &a;
    c->r.cb = cli_on_connect;
    c->r.data = c;
    assert_int_equal(nio__port_submit(W.p, &c->r), 0);
  }
  th_run_until(W.p, all_echoed, NULL, 60000, "1000 echoes");
  if (W.errors)
    th_fail("expected no errors, got %d, first: %s", W.errors, W.first_error);
  if (W.nsrv != NCONN)
    th_fail("expected %d accepted connections, got %d", NCONN, W.nsrv);
  for (int i = 0; i < NCONN; i++) {
    nio__port_remove(W.p, W.clis[i].fd);
    nio__sock_close(W.clis[i].fd);
  }
  th_run_until(W.p, all_server_ends_closed, NULL, 30000,
               "every server end to see EOF");
  if (W.errors)
    th_fail("expected clean closes, got %d errors, first: %s", W.errors,
            W.first_error);
  assert_int_equal(nio__port_cancel(W.p, &W.acc), 0);
  th_run_until(W.p, accept_ended, NULL, 5000, "the canceled accept");
  for (int i = 0; i < W.nsrv; i++) free(W.srvs[i]);
  nio__port_remove(W.p, l);
  nio__sock_close(l);
  nio__port_close(W.p);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(thousand_connections_each_echo_once),
  };
  th_init(8192);
  return cmocka_run_group_tests(tests, NULL, NULL);
}
