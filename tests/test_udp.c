/*
** test_udp.c: datagrams through the port -- recvfrom with the source
** address, truncation, empty datagrams, sendto to an address and to the
** connected peer, "connection refused" on a connected socket, cancel, and
** the submit checks of the datagram ops.
*/
#include <stdlib.h>
#include <string.h>
#include "helpers.h"

#define BIG (64 * 1024)

/* A datagram socket bound to loopback port 0 (IPv4, or IPv6 when v6),
** its real address in *a; added to p when p is not NULL. */
static nio_sock udp_bound(nio_port *p, nio_addr *a, int v6) {
  nio_sock s;
  nio_addr any;
  memset(&any, 0, sizeof any);
  if (v6) {
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&any.ss;
    sin6->sin6_family = AF_INET6;
    sin6->sin6_addr = in6addr_loopback;
    any.len = sizeof *sin6;
  } else {
    th_addr_loopback(&any, 0);
  }
  if (nio__sock_udp(v6 ? AF_INET6 : AF_INET, &s) < 0)
    th_fail("expected a new datagram socket");
  if (nio__sock_bind(s, &any) < 0) {
    nio__sock_close(s);
    return NIO_BAD_SOCK;
  }
  assert_int_equal(nio__sock_getsockname(s, a), 0);
  if (p != NULL) assert_int_equal(nio__port_add(p, s), 0);
  return s;
}

static void udp_close(nio_port *p, nio_sock s) {
  if (p != NULL) nio__port_remove(p, s);
  nio__sock_close(s);
}

/* One datagram on a socket not in the port, waiting up to 5 s. */
static long peer_recv(nio_sock s, char *buf, size_t len, nio_addr *from,
                      int *trunc) {
  int64_t deadline = th_now_ms() + 5000;
  long n;
  while ((n = nio__sock_recvfrom(s, buf, len, from, trunc)) == NIO_EAGAIN) {
    if (th_now_ms() > deadline) th_fail("expected a datagram within 5 s");
    th_usleep(1000);
  }
  return n;
}

static void dgram_req(nio_req *r, nio_sock fd, int op, th_log *log, char *buf,
                      uint32_t len, nio_addr *a) {
  th_log_init(log);
  th_req(r, fd, op, log);
  r->u.dgram.buf = buf;
  r->u.dgram.len = len;
  r->u.dgram.addr = a;
}

static void recvfrom_delivers_datagram_and_its_source(void **state) {
  nio_port *p = th_port_open();
  nio_addr sa, pa, from;
  nio_sock s, peer;
  nio_req r;
  th_log log;
  char *buf = malloc(BIG);
  (void)state;
  s = udp_bound(p, &sa, 0);
  peer = udp_bound(NULL, &pa, 0);
  memset(&from, 0, sizeof from);
  dgram_req(&r, s, NIO_OP_RECVFROM, &log, buf, BIG, &from);
  assert_int_equal(nio__port_submit(p, &r), 0);
  th_run_for(p, 10);
  assert_int_equal(nio__sock_sendto(peer, "hello", 5, &sa), 5);
  th_run_until(p, th_log_final, &log, 5000, "the recvfrom completion");
  assert_int_equal(log.ncqe, 1);
  assert_int_equal(log.last_res, 5);
  if (log.last_flags != 0)
    th_fail("expected no flags on a whole datagram, got %u", log.last_flags);
  assert_int_equal(log.hash, th_hash(TH_HASH_INIT, "hello", 5));
  if (from.ss.ss_family != AF_INET || th_addr_port(&from) != th_addr_port(&pa))
    th_fail("expected the source to be the peer's port %d, got %d",
            th_addr_port(&pa), th_addr_port(&from));
  assert_int_equal(from.len, sizeof(struct sockaddr_in));
  udp_close(NULL, peer);
  udp_close(p, s);
  nio__port_close(p);
  free(buf);
}

static void
recvfrom_polling_first_gets_the_datagram_that_comes_later(void **state) {
  nio_port *p = th_port_open();
  nio_addr sa, pa;
  nio_sock s, peer;
  nio_req r;
  th_log log;
  char buf[64];
  int trunc;
  (void)state;
  s = udp_bound(p, &sa, 0);
  peer = udp_bound(NULL, &pa, 0);
  /* The owner's own try, as the engine does before submitting. */
  assert_int_equal(nio__sock_recvfrom(s, buf, sizeof buf, NULL, &trunc),
                   NIO_EAGAIN);
  dgram_req(&r, s, NIO_OP_RECVFROM, &log, buf, sizeof buf, NULL);
  r.flags = NIO_REQ_POLL_FIRST;
  assert_int_equal(nio__port_submit(p, &r), 0);
  th_run_for(p, 10);
  assert_int_equal(log.ncqe, 0);
  assert_int_equal(nio__sock_sendto(peer, "later", 5, &sa), 5);
  th_run_until(p, th_log_final, &log, 5000, "the datagram after poll-first");
  assert_int_equal(log.last_res, 5);
  assert_memory_equal(buf, "later", 5);
  udp_close(NULL, peer);
  udp_close(p, s);
  nio__port_close(p);
}

static void recvfrom_of_a_waiting_datagram_completes_at_once(void **state) {
  nio_port *p = th_port_open();
  nio_addr sa, pa;
  nio_sock s, peer;
  nio_req r;
  th_log log;
  char buf[64];
  (void)state;
  s = udp_bound(p, &sa, 0);
  peer = udp_bound(NULL, &pa, 0);
  assert_int_equal(nio__sock_sendto(peer, "early", 5, &sa), 5);
  th_usleep(10000);
  dgram_req(&r, s, NIO_OP_RECVFROM, &log, buf, sizeof buf, NULL);
  assert_int_equal(nio__port_submit(p, &r), 0);
  th_run_until(p, th_log_final, &log, 5000, "the recvfrom of a waiting one");
  assert_int_equal(log.last_res, 5);
  udp_close(NULL, peer);
  udp_close(p, s);
  nio__port_close(p);
}

static void recvfrom_cuts_a_longer_datagram_and_says_truncated(void **state) {
  nio_port *p = th_port_open();
  nio_addr sa, pa, from;
  nio_sock s, peer;
  nio_req r;
  th_log log;
  char buf[8];
  (void)state;
  s = udp_bound(p, &sa, 0);
  peer = udp_bound(NULL, &pa, 0);
  assert_int_equal(nio__sock_sendto(peer, "0123456789", 10, &sa), 10);
  memset(buf, 'x', sizeof buf);
  dgram_req(&r, s, NIO_OP_RECVFROM, &log, buf, 4, &from);
  assert_int_equal(nio__port_submit(p, &r), 0);
  th_run_until(p, th_log_final, &log, 5000, "the truncated recvfrom");
  if (log.last_res != 4 || !(log.last_flags & NIO_CQE_TRUNC))
    th_fail("expected 4 bytes with NIO_CQE_TRUNC, got %d flags %u",
            log.last_res, log.last_flags);
  assert_memory_equal(buf, "0123xxxx", 8);
  assert_int_equal(th_addr_port(&from), th_addr_port(&pa));
  /* The next datagram is whole again: nothing of the cut one is left. */
  assert_int_equal(nio__sock_sendto(peer, "ab", 2, &sa), 2);
  dgram_req(&r, s, NIO_OP_RECVFROM, &log, buf, sizeof buf, NULL);
  assert_int_equal(nio__port_submit(p, &r), 0);
  th_run_until(p, th_log_final, &log, 5000, "the recvfrom after a cut one");
  assert_int_equal(log.last_res, 2);
  assert_int_equal(log.last_flags, 0);
  udp_close(NULL, peer);
  udp_close(p, s);
  nio__port_close(p);
}

static void recvfrom_delivers_an_empty_datagram(void **state) {
  nio_port *p = th_port_open();
  nio_addr sa, pa;
  nio_sock s, peer;
  nio_req r;
  th_log log;
  char buf[16];
  (void)state;
  s = udp_bound(p, &sa, 0);
  peer = udp_bound(NULL, &pa, 0);
  dgram_req(&r, s, NIO_OP_RECVFROM, &log, buf, sizeof buf, NULL);
  assert_int_equal(nio__port_submit(p, &r), 0);
  th_run_for(p, 10);
  assert_int_equal(nio__sock_sendto(peer, "", 0, &sa), 0);
  th_run_until(p, th_log_final, &log, 5000, "the empty datagram");
  if (log.last_res != 0 || log.last_flags != 0)
    th_fail("expected an empty datagram (0, no flags), got %d flags %u",
            log.last_res, log.last_flags);
  udp_close(NULL, peer);
  udp_close(p, s);
  nio__port_close(p);
}

static void sendto_delivers_one_datagram_to_the_address(void **state) {
  nio_port *p = th_port_open();
  nio_addr sa, pa, from;
  nio_sock s, peer;
  nio_req r;
  th_log log;
  char *out = malloc(BIG), *in = malloc(BIG);
  int trunc = 1;
  (void)state;
  s = udp_bound(p, &sa, 0);
  peer = udp_bound(NULL, &pa, 0);
  assert_int_equal(nio__sock_setopt(peer, "rcvbuf", 1 << 20), 0);
  th_pattern(out, 65507, 0);
  dgram_req(&r, s, NIO_OP_SENDTO, &log, out, 65507, &pa);
  assert_int_equal(nio__port_submit(p, &r), 0);
  th_run_until(p, th_log_final, &log, 5000, "the sendto completion");
  assert_int_equal(log.last_res, 65507);
  assert_int_equal(peer_recv(peer, in, BIG, &from, &trunc), 65507);
  assert_false(trunc);
  assert_memory_equal(in, out, 65507);
  assert_int_equal(th_addr_port(&from), th_addr_port(&sa));
  udp_close(NULL, peer);
  udp_close(p, s);
  nio__port_close(p);
  free(out);
  free(in);
}

static void sendto_over_the_ipv4_maximum_fails_message_too_long(void **state) {
  nio_port *p = th_port_open();
  nio_addr sa, pa;
  nio_sock s, peer;
  nio_req r;
  th_log log;
  char *out = calloc(1, BIG);
  (void)state;
  s = udp_bound(p, &sa, 0);
  peer = udp_bound(NULL, &pa, 0);
  dgram_req(&r, s, NIO_OP_SENDTO, &log, out, 65508, &pa);
  assert_int_equal(nio__port_submit(p, &r), 0);
  th_run_until(p, th_log_final, &log, 5000, "the sendto of 65,508 bytes");
  if (log.last_res != NIO_EMSGSIZE)
    th_fail("expected NIO_EMSGSIZE for 65,508 bytes over IPv4, got %d",
            log.last_res);
  udp_close(NULL, peer);
  udp_close(p, s);
  nio__port_close(p);
  free(out);
}

static void sendto_without_address_goes_to_the_connected_peer(void **state) {
  nio_port *p = th_port_open();
  nio_addr sa, pa, from;
  nio_sock s, peer;
  nio_req r;
  th_log log;
  char in[16];
  int trunc;
  (void)state;
  s = udp_bound(p, &sa, 0);
  peer = udp_bound(NULL, &pa, 0);
  assert_int_equal(nio__sock_udp_connect(s, &pa), 0);
  dgram_req(&r, s, NIO_OP_SENDTO, &log, "conn", 4, NULL);
  assert_int_equal(nio__port_submit(p, &r), 0);
  th_run_until(p, th_log_final, &log, 5000, "the connected sendto");
  assert_int_equal(log.last_res, 4);
  assert_int_equal(peer_recv(peer, in, sizeof in, &from, &trunc), 4);
  assert_memory_equal(in, "conn", 4);
  udp_close(NULL, peer);
  udp_close(p, s);
  nio__port_close(p);
}

static void
recvfrom_on_connected_socket_reports_connection_refused(void **state) {
  nio_port *p = th_port_open();
  nio_addr sa, gone;
  nio_sock s, g;
  nio_req r;
  th_log log;
  char buf[16];
  (void)state;
  s = udp_bound(p, &sa, 0);
  g = udp_bound(NULL, &gone, 0);
  udp_close(NULL, g); /* nothing listens on that port now */
  assert_int_equal(nio__sock_udp_connect(s, &gone), 0);
  dgram_req(&r, s, NIO_OP_RECVFROM, &log, buf, sizeof buf, NULL);
  assert_int_equal(nio__port_submit(p, &r), 0);
  th_run_for(p, 10);
  assert_int_equal(nio__sock_sendto(s, "x", 1, NULL), 1);
  th_run_until(p, th_log_final, &log, 5000, "the refused recvfrom");
  if (log.last_res != NIO_ECONNREFUSED)
    th_fail("expected NIO_ECONNREFUSED after the peer's port unreachable, "
            "got %d (%s)",
            log.last_res, nio_strerror(log.last_res));
  udp_close(p, s);
  nio__port_close(p);
}

static void recvfrom_canceled_completes_once_with_ecanceled(void **state) {
  nio_port *p = th_port_open();
  nio_addr sa;
  nio_sock s;
  nio_req r;
  th_log log;
  char buf[16];
  (void)state;
  s = udp_bound(p, &sa, 0);
  dgram_req(&r, s, NIO_OP_RECVFROM, &log, buf, sizeof buf, NULL);
  assert_int_equal(nio__port_submit(p, &r), 0);
  th_run_for(p, 10);
  assert_int_equal(nio__port_cancel(p, &r), 0);
  th_run_until(p, th_log_final, &log, 5000, "the canceled recvfrom");
  assert_int_equal(log.ncqe, 1);
  assert_int_equal(log.last_res, NIO_ECANCELED);
  th_run_for(p, 20);
  assert_int_equal(log.ncqe, 1);
  udp_close(p, s);
  nio__port_close(p);
}

static void recvfrom_and_sendto_work_over_ipv6(void **state) {
  nio_port *p = th_port_open();
  nio_addr sa, pa, from;
  nio_sock s, peer;
  nio_req r, w;
  th_log log, wlog;
  char buf[64];
  (void)state;
  s = udp_bound(p, &sa, 1);
  if (s == NIO_BAD_SOCK) skip(); /* no IPv6 loopback here */
  peer = udp_bound(p, &pa, 1);
  dgram_req(&r, s, NIO_OP_RECVFROM, &log, buf, sizeof buf, &from);
  assert_int_equal(nio__port_submit(p, &r), 0);
  dgram_req(&w, peer, NIO_OP_SENDTO, &wlog, "six", 3, &sa);
  assert_int_equal(nio__port_submit(p, &w), 0);
  th_run_until(p, th_log_final, &log, 5000, "the IPv6 datagram");
  th_run_until(p, th_log_final, &wlog, 5000, "the IPv6 sendto");
  assert_int_equal(wlog.last_res, 3);
  assert_int_equal(log.last_res, 3);
  assert_memory_equal(buf, "six", 3);
  assert_int_equal(from.ss.ss_family, AF_INET6);
  assert_int_equal(th_addr_port(&from), th_addr_port(&pa));
  udp_close(p, peer);
  udp_close(p, s);
  nio__port_close(p);
}

static void submit_checks_datagram_requests(void **state) {
  nio_port *p = th_port_open();
  nio_addr sa, bad;
  nio_sock s;
  nio_req r, r2;
  th_log log, log2;
  char buf[16];
  (void)state;
  s = udp_bound(p, &sa, 0);
  dgram_req(&r, s, NIO_OP_RECVFROM, &log, NULL, 16, NULL);
  assert_int_equal(nio__port_submit(p, &r), NIO_EINVAL);
  dgram_req(&r, s, NIO_OP_SENDTO, &log, buf, 65536, &sa);
  assert_int_equal(nio__port_submit(p, &r), NIO_EMSGSIZE);
  memset(&bad, 0, sizeof bad);
  dgram_req(&r, s, NIO_OP_SENDTO, &log, buf, 1, &bad);
  assert_int_equal(nio__port_submit(p, &r), NIO_EINVAL);
  /* One reader: a second recvfrom while the first is active is busy. */
  dgram_req(&r, s, NIO_OP_RECVFROM, &log, buf, sizeof buf, NULL);
  assert_int_equal(nio__port_submit(p, &r), 0);
  dgram_req(&r2, s, NIO_OP_RECVFROM, &log2, buf, sizeof buf, NULL);
  assert_int_equal(nio__port_submit(p, &r2), NIO_EBUSY);
  nio__port_cancel(p, &r);
  th_run_until(p, th_log_final, &log, 5000, "the canceled recvfrom");
  udp_close(p, s);
  nio__port_close(p);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(recvfrom_delivers_datagram_and_its_source),
      cmocka_unit_test(recvfrom_of_a_waiting_datagram_completes_at_once),
      cmocka_unit_test(
          recvfrom_polling_first_gets_the_datagram_that_comes_later),
      cmocka_unit_test(recvfrom_cuts_a_longer_datagram_and_says_truncated),
      cmocka_unit_test(recvfrom_delivers_an_empty_datagram),
      cmocka_unit_test(sendto_delivers_one_datagram_to_the_address),
      cmocka_unit_test(sendto_over_the_ipv4_maximum_fails_message_too_long),
      cmocka_unit_test(sendto_without_address_goes_to_the_connected_peer),
      cmocka_unit_test(recvfrom_on_connected_socket_reports_connection_refused),
      cmocka_unit_test(recvfrom_canceled_completes_once_with_ecanceled),
      cmocka_unit_test(recvfrom_and_sendto_work_over_ipv6),
      cmocka_unit_test(submit_checks_datagram_requests),
  };
  th_init(0);
  return cmocka_run_group_tests(tests, NULL, NULL);
}
