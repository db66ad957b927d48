/*
** test_port_io.c: recv and send through the port -- data, end of stream,
** reset, half close, resumed short sends, recv limits, multishot recv.
*/
#include <stdlib.h>
#include <string.h>
#include "helpers.h"

static void recv_delivers_data_sent_by_peer(void **state) {
  nio_port *p = th_port_open();
  nio_req r;
  th_log log;
  int c;
  nio_sock s;
  (void)state;
  th_pair(p, &c, &s);
  th_log_init(&log);
  th_req(&r, s, NIO_OP_RECV, &log);
  assert_int_equal(nio__port_submit(p, &r), 0);
  assert_true(r.active);
  th_write_all(c, "hello", 5);
  th_run_until(p, th_log_final, &log, 5000, "the recv completion");
  assert_int_equal(log.ncqe, 1);
  assert_int_equal(log.last_res, 5);
  assert_int_equal(log.last_flags, 0);
  assert_int_equal(log.hash, th_hash(TH_HASH_INIT, "hello", 5));
  assert_false(r.active);
  assert_false(log.active_seen);
  th_pair_finish(p, c, s);
}

static void recv_completes_at_once_when_data_is_already_there(void **state) {
  nio_port *p = th_port_open();
  nio_req r;
  th_log log;
  int c;
  nio_sock s;
  (void)state;
  th_pair(p, &c, &s);
  th_write_all(c, "early", 5);
  th_run_for(p, 20);
  th_log_init(&log);
  th_req(&r, s, NIO_OP_RECV, &log);
  assert_int_equal(nio__port_submit(p, &r), 0);
  th_run_until(p, th_log_final, &log, 5000, "the recv of data already there");
  assert_int_equal(log.last_res, 5);
  th_pair_finish(p, c, s);
}

static void send_delivers_all_bytes_to_peer(void **state) {
  nio_port *p = th_port_open();
  nio_req r;
  th_log log;
  nio_iov iov[3] = {{"ab", 2}, {"", 0}, {"cdef", 4}};
  char buf[16];
  size_t got = 0;
  int c;
  nio_sock s;
  (void)state;
  th_pair(p, &c, &s);
  th_log_init(&log);
  th_req(&r, s, NIO_OP_SEND, &log);
  r.u.send.iov = iov;
  r.u.send.iovcnt = 3;
  assert_int_equal(nio__port_submit(p, &r), 0);
  th_run_until(p, th_log_final, &log, 5000, "the send completion");
  assert_int_equal(log.ncqe, 1);
  assert_int_equal(log.last_res, 6);
  while (got < 6) {
    size_t n = th_read_some(c, buf + got, sizeof buf - got);
    if (n == 0) break;
    got += n;
  }
  assert_int_equal(got, 6);
  assert_memory_equal(buf, "abcdef", 6);
  th_pair_finish(p, c, s);
}

static void send_of_nothing_completes_with_zero(void **state) {
  nio_port *p = th_port_open();
  nio_req r;
  th_log log;
  int c;
  nio_sock s;
  (void)state;
  th_pair(p, &c, &s);
  th_log_init(&log);
  th_req(&r, s, NIO_OP_SEND, &log);
  r.u.send.iov = NULL;
  r.u.send.iovcnt = 0;
  assert_int_equal(nio__port_submit(p, &r), 0);
  th_run_until(p, th_log_final, &log, 5000, "the empty send's completion");
  assert_int_equal(log.last_res, 0);
  th_pair_finish(p, c, s);
}

static void recv_delivers_eof_after_data(void **state) {
  nio_port *p = th_port_open();
  nio_req r;
  th_log log;
  int c;
  nio_sock s;
  (void)state;
  th_pair(p, &c, &s);
  th_write_all(c, "last words", 10);
  th_close(c);
  th_log_init(&log);
  th_req(&r, s, NIO_OP_RECV, &log);
  assert_int_equal(nio__port_submit(p, &r), 0);
  th_run_until(p, th_log_final, &log, 5000, "the data before EOF");
  if (log.last_res != 10)
    th_fail("expected the 10 bytes before EOF first, got %d", log.last_res);
  th_log_init(&log);
  assert_int_equal(nio__port_submit(p, &r), 0);
  th_run_until(p, th_log_final, &log, 5000, "EOF");
  if (log.last_res != 0)
    th_fail("expected EOF (0) after the data, got %d", log.last_res);
  nio__port_remove(p, s);
  nio__sock_close(s);
  nio__port_close(p);
}

static void recv_reports_reset_when_peer_aborts(void **state) {
  nio_port *p = th_port_open();
  nio_req r;
  th_log log;
  int c;
  nio_sock s;
  (void)state;
  th_pair(p, &c, &s);
  th_log_init(&log);
  th_req(&r, s, NIO_OP_RECV, &log);
  assert_int_equal(nio__port_submit(p, &r), 0);
  th_run_for(p, 20);
  assert_int_equal(log.ncqe, 0);
  nio__sock_close_reset(c);
  th_run_until(p, th_log_final, &log, 5000, "the recv after a reset");
  if (log.last_res != NIO_ECONNRESET)
    th_fail("expected ECONNRESET after the peer's abortive close, got %s",
            nio_err_name(log.last_res));
  nio__port_remove(p, s);
  nio__sock_close(s);
  nio__port_close(p);
}

static void send_reports_error_when_peer_has_reset(void **state) {
  nio_port *p = th_port_open();
  nio_req r;
  th_log log;
  static char big[256 * 1024];
  nio_iov iov;
  int c, tries = 0;
  nio_sock s;
  (void)state;
  th_pair(p, &c, &s);
  nio__sock_close_reset(c);
  /* The first send may still be accepted by the kernel before the reset is
  ** seen; the one after must fail with a reset or a broken pipe. */
  do {
    th_log_init(&log);
    th_req(&r, s, NIO_OP_SEND, &log);
    iov.base = big;
    iov.len = sizeof big;
    r.u.send.iov = &iov;
    r.u.send.iovcnt = 1;
    assert_int_equal(nio__port_submit(p, &r), 0);
    th_run_until(p, th_log_final, &log, 5000, "the send to a reset peer");
  } while (log.last_res > 0 && ++tries < 3);
  if (log.last_res != NIO_ECONNRESET && log.last_res != NIO_EPIPE)
    th_fail("expected ECONNRESET or EPIPE sending to a reset peer, got %s",
            nio_err_name(log.last_res));
  nio__port_remove(p, s);
  nio__sock_close(s);
  nio__port_close(p);
}

static void shutdown_write_gives_peer_eof_and_keeps_reading(void **state) {
  nio_port *p = th_port_open();
  nio_req r;
  th_log log;
  char buf[8];
  int c;
  nio_sock s;
  (void)state;
  th_pair(p, &c, &s);
  assert_int_equal(nio__sock_shutdown_write(s), 0);
  if (th_read_some(c, buf, sizeof buf) != 0)
    th_fail("expected the peer to read EOF after shutdown_write");
  th_write_all(c, "still", 5);
  th_log_init(&log);
  th_req(&r, s, NIO_OP_RECV, &log);
  assert_int_equal(nio__port_submit(p, &r), 0);
  th_run_until(p, th_log_final, &log, 5000, "data after half close");
  if (log.last_res != 5)
    th_fail("expected 5 bytes on the half-closed socket, got %d", log.last_res);
  th_pair_finish(p, c, s);
}

/* The slow reader of the 64 MiB send: small reads, a pause now and then,
** so the sender meets a full socket many times. */
typedef struct slow_reader {
  int fd;
  uint64_t bytes;
  uint64_t hash;
  int err;
} slow_reader;

static void slow_reader_main(void *arg) {
  slow_reader *sr = arg;
  static char buf[16 * 1024];
  uint64_t next_pause = 1 << 20;
  size_t n;
  long got;
  for (;;) {
    got = th_recv(sr->fd, buf, sizeof buf);
    if (got < 0) {
      sr->err = (int)-got;
      return;
    }
    if (got == 0) return;
    n = (size_t)got;
    sr->hash = th_hash(sr->hash, buf, n);
    sr->bytes += n;
    if (sr->bytes >= next_pause) {
      next_pause += 4 << 20;
      th_usleep(2000);
    }
  }
}

#define BIG_CHUNKS 64
#define BIG_CHUNK (1u << 20)

static void send_resumes_short_sends_until_64mib_went(void **state) {
  nio_port *p = th_port_open();
  nio_req r;
  th_log log;
  nio_iov iov[BIG_CHUNKS];
  char *data = malloc(BIG_CHUNK * (size_t)BIG_CHUNKS);
  uint64_t want_hash;
  slow_reader sr = {0};
  nio_thread *t;
  int c, small = 16 * 1024;
  nio_sock s;
  (void)state;
  assert_non_null(data);
  th_pair(p, &c, &s);
  setsockopt(c, SOL_SOCKET, SO_RCVBUF, (const char *)&small, sizeof small);
  setsockopt(s, SOL_SOCKET, SO_SNDBUF, (const char *)&small, sizeof small);
  th_pattern(data, BIG_CHUNK * (size_t)BIG_CHUNKS, 0);
  want_hash = th_hash(TH_HASH_INIT, data, BIG_CHUNK * (size_t)BIG_CHUNKS);
  for (int i = 0; i < BIG_CHUNKS; i++) {
    iov[i].base = data + (size_t)i * BIG_CHUNK;
    iov[i].len = BIG_CHUNK;
  }
  sr.fd = c;
  sr.hash = TH_HASH_INIT;
  th_sock_timeout(c, 20000);
  assert_int_equal(nio__thread_start(&t, slow_reader_main, &sr), 0);
  th_log_init(&log);
  th_req(&r, s, NIO_OP_SEND, &log);
  r.u.send.iov = iov;
  r.u.send.iovcnt = BIG_CHUNKS;
  assert_int_equal(nio__port_submit(p, &r), 0);
  th_run_until(p, th_log_final, &log, 60000, "the 64 MiB send's completion");
  if (log.ncqe != 1)
    th_fail("expected exactly one completion for the 64 MiB send, got %d",
            log.ncqe);
  if (log.last_res != BIG_CHUNK * BIG_CHUNKS)
    th_fail("expected the send to complete with %u bytes, got %d (%s)",
            BIG_CHUNK * BIG_CHUNKS, log.last_res, nio_err_name(log.last_res));
  nio__port_remove(p, s);
  nio__sock_close(s);
  nio__thread_join(t);
  if (sr.err) th_fail("slow reader failed: %s", strerror(sr.err));
  if (sr.bytes != (uint64_t)BIG_CHUNK * BIG_CHUNKS)
    th_fail("expected the reader to get %u bytes, got %llu",
            BIG_CHUNK * BIG_CHUNKS, (unsigned long long)sr.bytes);
  if (sr.hash != want_hash)
    th_fail("expected the reader's checksum to match what was sent");
  th_close(c);
  free(data);
  nio__port_close(p);
}

static void recv_delivers_at_most_max_bytes(void **state) {
  nio_port *p = th_port_open();
  nio_req r;
  th_log log;
  char buf[1000];
  int c;
  nio_sock s;
  (void)state;
  th_pair(p, &c, &s);
  th_pattern(buf, sizeof buf, 0);
  th_write_all(c, buf, sizeof buf);
  th_run_for(p, 20);
  th_req(&r, s, NIO_OP_RECV, &log);
  r.u.recv.max = 100;
  for (int i = 0; i < 10; i++) {
    th_log_init(&log);
    assert_int_equal(nio__port_submit(p, &r), 0);
    th_run_until(p, th_log_final, &log, 5000, "a recv with max 100");
    if (log.last_res != 100)
      th_fail("expected recv %d with max 100 to deliver 100 bytes, got %d", i,
              log.last_res);
    if (log.hash != th_hash(TH_HASH_INIT, buf + i * 100, 100))
      th_fail("expected recv %d to deliver bytes %d..%d in order", i, i * 100,
              i * 100 + 99);
  }
  th_pair_finish(p, c, s);
}

static void recv_without_max_delivers_at_most_64k(void **state) {
  nio_port *p = th_port_open();
  nio_req r;
  th_log log;
  static char buf[200 * 1024];
  uint64_t total = 0;
  int c;
  nio_sock s;
  (void)state;
  th_pair(p, &c, &s);
  th_pattern(buf, sizeof buf, 0);
  th_write_all(c, buf, sizeof buf);
  th_req(&r, s, NIO_OP_RECV, &log);
  while (total < sizeof buf) {
    th_log_init(&log);
    assert_int_equal(nio__port_submit(p, &r), 0);
    th_run_until(p, th_log_final, &log, 5000, "a recv of the 200 KiB");
    if (log.last_res <= 0 || log.last_res > 65536)
      th_fail("expected 1..65536 bytes per recv, got %d", log.last_res);
    if (log.hash != th_hash(TH_HASH_INIT, buf + total, (size_t)log.last_res))
      th_fail("expected the bytes at offset %llu in order",
              (unsigned long long)total);
    total += (uint64_t)log.last_res;
  }
  assert_int_equal(total, sizeof buf);
  th_pair_finish(p, c, s);
}

static void multishot_recv_delivers_until_eof(void **state) {
  nio_port *p = th_port_open();
  nio_req r;
  th_log log;
  static char buf[300 * 1024];
  int c;
  nio_sock s;
  (void)state;
  th_pair(p, &c, &s);
  th_pattern(buf, sizeof buf, 7);
  th_log_init(&log);
  th_req(&r, s, NIO_OP_RECV, &log);
  r.flags = NIO_REQ_MULTISHOT;
  assert_int_equal(nio__port_submit(p, &r), 0);
  for (int i = 0; i < 3; i++) {
    th_write_all(c, buf + i * 100 * 1024, 100 * 1024);
    th_run_for(p, 10);
  }
  th_close(c);
  th_run_until(p, th_log_final, &log, 10000, "the multishot recv's EOF");
  if (log.last_res != 0)
    th_fail("expected the multishot recv to end with EOF, got %s",
            nio_err_name(log.last_res));
  if (log.bytes != sizeof buf)
    th_fail("expected %zu bytes through the multishot recv, got %llu",
            sizeof buf, (unsigned long long)log.bytes);
  if (log.hash != th_hash(TH_HASH_INIT, buf, sizeof buf))
    th_fail("expected the multishot recv's bytes in order");
  if (log.max_res > 65536)
    th_fail("expected at most 64 KiB per completion, got %d", log.max_res);
  /* A backend may treat multishot as a hint and deliver single shots; then
  ** the request must still have completed each time with the data. */
  if (log.nmore + 1 != log.ncqe || log.neof != 1)
    th_fail("expected MORE on every completion but the final EOF (%d "
            "completions, %d more, %d eof)",
            log.ncqe, log.nmore, log.neof);
  assert_false(r.active);
  nio__port_remove(p, s);
  nio__sock_close(s);
  nio__port_close(p);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(recv_delivers_data_sent_by_peer),
      cmocka_unit_test(recv_completes_at_once_when_data_is_already_there),
      cmocka_unit_test(send_delivers_all_bytes_to_peer),
      cmocka_unit_test(send_of_nothing_completes_with_zero),
      cmocka_unit_test(recv_delivers_eof_after_data),
      cmocka_unit_test(recv_reports_reset_when_peer_aborts),
      cmocka_unit_test(send_reports_error_when_peer_has_reset),
      cmocka_unit_test(shutdown_write_gives_peer_eof_and_keeps_reading),
      cmocka_unit_test(send_resumes_short_sends_until_64mib_went),
      cmocka_unit_test(recv_delivers_at_most_max_bytes),
      cmocka_unit_test(recv_without_max_delivers_at_most_64k),
      cmocka_unit_test(multishot_recv_delivers_until_eof),
  };
  th_init(0);
  return cmocka_run_group_tests(tests, NULL, NULL);
}
