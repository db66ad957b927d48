/*
** udp.c: datagram sockets -- one datagram per receive into the socket's
** own 64 KiB buffer, sends tried at once and handed to the port only when
** the socket is full.
**
** Receiving: nio__udp_recv() first takes a result the port delivered,
** then (no receive in the port) tries the non-blocking syscall, and only
** on EAGAIN arms a RECVFROM. The armed receive stays in the port when its
** owner stops waiting (a timeout): whatever it gets is kept, in order,
** for the next call, so nothing is lost and nothing reordered. The
** buffer is 64 KiB, more than any IP datagram's payload, so the engine
** never cuts one: truncation to the caller's size is the caller's.
**
** Test switch: NETIO_TEST_UDP_QUEUE=1 (read at open) sends every
** datagram through the port, as when the socket is full, which loopback
** sockets almost never are.
*/
#include <stdlib.h>
#include <string.h>
#include "internal.h"

#define UDP_BUF (64 * 1024)

/*
** The engine-private view of a datagram socket. Allocated by
** nio__udp_open; freed by the sweep once closing and neither request is
** active (their final completions seen). rbuf and sbuf are owned, made
** at first use: rbuf is the RECVFROM's buffer while rreq is active, sbuf
** the copy a SENDTO sends while sreq is.
*/
typedef struct udp {
  nio_udp pub;
  nio_engine *e;
  nio_req rreq, sreq;
  char *rbuf;
  char *sbuf;
  nio_addr raddr, saddr, peer;
  int rres;    /* the delivered receive's result */
  int sres;    /* the last port send's result */
  int opts[4]; /* broadcast, reuseaddr, sndbuf, rcvbuf; -1 = unset */
  unsigned rready : 1, rtrunc : 1;
  unsigned rwant : 1; /* a receive waits for the socket to exist */
  unsigned queue : 1; /* NETIO_TEST_UDP_QUEUE: no send tried at once */
  unsigned closing : 1;
  nio_link link; /* in e->udps while open, then in e->uzombies */
} udp;

static const char *const udp_optnames[] = {"broadcast", "reuseaddr", "sndbuf",
                                           "rcvbuf"};
#define UDP_NOPTS 4

static int udp_arm_recv(udp *u, int poll_first);

/* A v4-mapped IPv6 address (::ffff:a.b.c.d) becomes the IPv4 one, so that
** a dual-stack socket names its IPv4 peers as IPv4. */
static void udp_unmap(nio_addr *a) {
  struct sockaddr_in6 s6;
  struct sockaddr_in *s4;
  static const unsigned char pre[12] = {0, 0, 0, 0, 0,    0,
                                        0, 0, 0, 0, 0xff, 0xff};
  if (a->ss.ss_family != AF_INET6) return;
  memcpy(&s6, &a->ss, sizeof s6);
  if (memcmp(&s6.sin6_addr, pre, 12) != 0) return;
  memset(&a->ss, 0, sizeof a->ss);
  s4 = (struct sockaddr_in *)&a->ss;
  s4->sin_family = AF_INET;
  s4->sin_port = s6.sin6_port;
  memcpy(&s4->sin_addr, (const unsigned char *)&s6.sin6_addr + 12, 4);
  a->len = sizeof *s4;
}

/* An IPv4 address for an IPv6 socket: v4-mapped into *m. */
static const nio_addr *udp_map(const udp *u, const nio_addr *a, nio_addr *m) {
  const struct sockaddr_in *s4;
  struct sockaddr_in6 *s6;
  unsigned char *b;
  if (a == NULL || u->pub.family != AF_INET6 || a->ss.ss_family != AF_INET)
    return a;
  s4 = (const struct sockaddr_in *)&a->ss;
  memset(m, 0, sizeof *m);
  s6 = (struct sockaddr_in6 *)&m->ss;
  s6->sin6_family = AF_INET6;
  s6->sin6_port = s4->sin_port;
  b = (unsigned char *)&s6->sin6_addr;
  b[10] = b[11] = 0xff;
  memcpy(b + 12, &s4->sin_addr, 4);
  m->len = sizeof *s6;
  return m;
}

static void udp_on_recv(nio_req *r, int res, const char *data, unsigned flags) {
  udp *u = r->data;
  (void)data;
  if (u->closing || res == NIO_ECANCELED) return;
  u->rres = res;
  u->rtrunc = (flags & NIO_CQE_TRUNC) != 0;
  u->rready = 1;
  if (u->pub.cb) u->pub.cb(&u->pub, NIO_EV_READ);
}

static void udp_on_send(nio_req *r, int res, const char *data, unsigned flags) {
  udp *u = r->data;
  (void)data;
  (void)flags;
  u->sres = res;
  if (!u->closing && u->pub.cb) u->pub.cb(&u->pub, NIO_EV_WRITE);
}

/* Make the socket of family, with the options asked so far, bound to a
** if given. */
static int udp_make(udp *u, int family, const nio_addr *bind) {
  nio_sock fd;
  int r;
  if ((r = nio__sock_udp(family, &fd)) < 0) return r;
  for (int i = 0; i < UDP_NOPTS; i++)
    if (u->opts[i] >= 0 &&
        (r = nio__sock_setopt(fd, udp_optnames[i], u->opts[i])) < 0)
      goto fail;
  if (bind != NULL && (r = nio__sock_bind(fd, bind)) < 0) goto fail;
  if ((r = nio__port_add(u->e->port, fd)) < 0) goto fail;
  u->pub.fd = fd;
  u->pub.family = family;
  u->rreq.fd = u->sreq.fd = fd;
  /* A receive that waited for the socket starts now. */
  if (u->rwant) {
    u->rwant = 0;
    if ((r = udp_arm_recv(u, 0)) < 0) {
      u->rres = r;
      u->rready = 1;
      if (u->pub.cb) u->pub.cb(&u->pub, NIO_EV_READ);
    }
  }
  return 0;
fail:
  nio__sock_close(fd);
  return r;
}

int nio__udp_open(nio_engine *e, const nio_addr *bind, int reuseaddr,
                  int broadcast, nio_udp_cb cb, void *udata, nio_udp **out) {
  udp *u;
  int r;
  *out = NULL;
  if (e->ending) return NIO_ECLOSED;
  if (bind != NULL && bind->ss.ss_family != AF_INET &&
      bind->ss.ss_family != AF_INET6)
    return NIO_EAFNOSUPPORT;
  if ((u = calloc(1, sizeof *u)) == NULL) return NIO_ENOMEM;
  u->e = e;
  u->pub.fd = NIO_BAD_SOCK;
  u->pub.cb = cb;
  u->pub.udata = udata;
  for (int i = 0; i < UDP_NOPTS; i++) u->opts[i] = -1;
  if (broadcast) u->opts[0] = 1;
  if (reuseaddr) u->opts[1] = 1;
  u->rreq.op = NIO_OP_RECVFROM;
  u->rreq.cb = udp_on_recv;
  u->rreq.data = u;
  u->sreq.op = NIO_OP_SENDTO;
  u->sreq.cb = udp_on_send;
  u->sreq.data = u;
  u->rreq.fd = u->sreq.fd = NIO_BAD_SOCK;
  {
    const char *q = getenv("NETIO_TEST_UDP_QUEUE");
    u->queue = q != NULL && strcmp(q, "1") == 0;
  }
  if (bind != NULL && (r = udp_make(u, bind->ss.ss_family, bind)) < 0) {
    free(u);
    return r;
  }
  nio__list_push_front(&e->udps, &u->link);
  e->stats.udps++;
  *out = &u->pub;
  return 0;
}

/* poll_first: the caller's own try just found the socket empty. */
static int udp_arm_recv(udp *u, int poll_first) {
  if (u->rbuf == NULL && (u->rbuf = malloc(UDP_BUF)) == NULL) return NIO_ENOMEM;
  u->rreq.flags = poll_first ? NIO_REQ_POLL_FIRST : 0;
  u->rreq.u.dgram.buf = u->rbuf;
  u->rreq.u.dgram.len = UDP_BUF;
  u->rreq.u.dgram.addr = &u->raddr;
  return nio__port_submit(u->e->port, &u->rreq);
}

long nio__udp_recv(nio_udp *pu, const char **p, nio_addr *from, int *trunc) {
  udp *u = (udp *)pu;
  long n;
  int r;
  *trunc = 0;
  if (u->closing) return NIO_ECLOSED;
  if (u->rready) {
    u->rready = 0;
    if (u->rres < 0) return u->rres;
    *p = u->rbuf;
    *from = u->raddr;
    udp_unmap(from);
    *trunc = u->rtrunc;
    return u->rres;
  }
  /* A receive in the port gets the next datagram: reading past it would
  ** reorder them. */
  if (u->rreq.active) return NIO_EAGAIN;
  if (pu->fd == NIO_BAD_SOCK) {
    u->rwant = 1;
    return NIO_EAGAIN;
  }
  if (u->rbuf == NULL && (u->rbuf = malloc(UDP_BUF)) == NULL) return NIO_ENOMEM;
  n = nio__sock_recvfrom(pu->fd, u->rbuf, UDP_BUF, from, trunc);
  if (n != NIO_EAGAIN) {
    *p = u->rbuf;
    if (n >= 0) udp_unmap(from);
    return n;
  }
  if ((r = udp_arm_recv(u, 1)) < 0) return r;
  return NIO_EAGAIN;
}

long nio__udp_send(nio_udp *pu, const void *p, size_t len, const nio_addr *a) {
  udp *u = (udp *)pu;
  const nio_addr *to;
  nio_addr m;
  long n;
  int r, fam;
  if (u->closing) return NIO_ECLOSED;
  if (a == NULL && !pu->connected) return NIO_ENOTCONN;
  fam = (a ? a : &u->peer)->ss.ss_family;
  if (fam != AF_INET && fam != AF_INET6) return NIO_EAFNOSUPPORT;
  if (len > (fam == AF_INET6 ? NIO_UDP_MAX_V6 : NIO_UDP_MAX_V4))
    return NIO_EMSGSIZE;
  if (pu->fd == NIO_BAD_SOCK && (r = udp_make(u, fam, NULL)) < 0) return r;
  if (u->sreq.active) return NIO_EBUSY;
  to = udp_map(u, a, &m);
  n = u->queue ? NIO_EAGAIN : nio__sock_sendto(pu->fd, p, len, to);
  if (n != NIO_EAGAIN) return n;
  /* The socket is full: a copy waits in the port, so the caller's bytes
  ** need not outlive this call. */
  if (u->sbuf == NULL && (u->sbuf = malloc(UDP_BUF)) == NULL) return NIO_ENOMEM;
  memcpy(u->sbuf, p, len);
  if (to != NULL) u->saddr = *to;
  u->sreq.u.dgram.buf = u->sbuf;
  u->sreq.u.dgram.len = (uint32_t)len;
  u->sreq.u.dgram.addr = to != NULL ? &u->saddr : NULL;
  if ((r = nio__port_submit(u->e->port, &u->sreq)) < 0) return r;
  return NIO_EINPROGRESS;
}

int nio__udp_send_result(nio_udp *u) {
  return ((udp *)u)->sres;
}

int nio__udp_sending(const nio_udp *u) {
  return ((const udp *)u)->sreq.active;
}

int nio__udp_connect(nio_udp *pu, const nio_addr *a) {
  udp *u = (udp *)pu;
  nio_addr m;
  int r, fam = a->ss.ss_family;
  if (u->closing) return NIO_ECLOSED;
  if (fam != AF_INET && fam != AF_INET6) return NIO_EAFNOSUPPORT;
  if (pu->fd == NIO_BAD_SOCK && (r = udp_make(u, fam, NULL)) < 0) return r;
  if ((r = nio__sock_udp_connect(pu->fd, udp_map(u, a, &m))) < 0) return r;
  u->peer = *a;
  pu->connected = 1;
  return 0;
}

int nio__udp_setopt(nio_udp *pu, const char *name, int value) {
  udp *u = (udp *)pu;
  if (u->closing) return NIO_ECLOSED;
  for (int i = 0; i < UDP_NOPTS; i++) {
    if (strcmp(name, udp_optnames[i]) != 0) continue;
    if (pu->fd != NIO_BAD_SOCK) return nio__sock_setopt(pu->fd, name, value);
    u->opts[i] = value;
    return 0;
  }
  return NIO_EINVAL;
}

int nio__udp_getsockname(nio_udp *pu, nio_addr *a) {
  int r;
  if (((udp *)pu)->closing) return NIO_ECLOSED;
  if (pu->fd == NIO_BAD_SOCK) return NIO_EINVAL;
  if ((r = nio__sock_getsockname(pu->fd, a)) == 0) udp_unmap(a);
  return r;
}

int nio__udp_getpeername(nio_udp *pu, nio_addr *a) {
  udp *u = (udp *)pu;
  if (u->closing) return NIO_ECLOSED;
  if (!pu->connected) return NIO_ENOTCONN;
  *a = u->peer;
  return 0;
}

void nio__udp_close(nio_udp *pu) {
  udp *u = (udp *)pu;
  nio_engine *e = u->e;
  if (u->closing) return;
  u->closing = 1;
  pu->cb = NULL;
  if (u->rreq.active) nio__port_cancel(e->port, &u->rreq);
  if (u->sreq.active) nio__port_cancel(e->port, &u->sreq);
  nio__list_remove(&e->udps, &u->link);
  nio__list_push_front(&e->uzombies, &u->link);
  e->stats.udps--;
}

/* Free closed sockets whose requests had their final completions; only
** then is the descriptor closed, so no request names a reused number. */
void nio__udps_sweep(nio_engine *e) {
  nio_link *k, *next;
  nio__list_each(&e->uzombies, k, next) {
    udp *u = nio__list_item(k, udp, link);
    if (u->rreq.active || u->sreq.active) continue;
    nio__list_remove(&e->uzombies, k);
    if (u->pub.fd != NIO_BAD_SOCK) {
      nio__port_remove(e->port, u->pub.fd);
      nio__sock_close(u->pub.fd);
    }
    free(u->rbuf);
    free(u->sbuf);
    free(u);
  }
}

void nio__udps_close_all(nio_engine *e) {
  udp *u;
  while ((u = nio__list_item(e->udps.first, udp, link)) != NULL)
    nio__udp_close(&u->pub);
}
