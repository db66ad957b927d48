/*
** test_port_accept.c: multishot accept -- many clients, flags of accepted
** sockets, cancel giving exactly one final completion.
*/
#include "helpers.h"

typedef struct want_fds {
  th_log *log;
  int n;
} want_fds;

static int has_fds(void *ud) {
  want_fds *w = ud;
  return w->log->nfds >= w->n || w->log->nfinal > 0;
}

static void close_accepted(th_log *log) {
  for (int i = 0; i < log->nfds; i++) nio__sock_close(log->fds[i]);
}

#define MANY 300

static void accept_delivers_every_client_with_more(void **state) {
  nio_port *p = th_port_open();
  nio_addr a;
  nio_sock l = th_listen(&a);
  nio_req r;
  static th_log log;
  static int clients[MANY];
  want_fds w = {&log, MANY};
  (void)state;
  assert_int_equal(nio__port_add(p, l), 0);
  th_log_init(&log);
  th_req(&r, l, NIO_OP_ACCEPT, &log);
  assert_int_equal(nio__port_submit(p, &r), 0);
  /* Half before the first turn, half while the accept is armed. */
  for (int i = 0; i < MANY / 2; i++) clients[i] = th_client(&a);
  th_run_for(p, 10);
  for (int i = MANY / 2; i < MANY; i++) clients[i] = th_client(&a);
  th_run_until(p, has_fds, &w, 10000, "every client to be accepted");
  if (log.nfds != MANY)
    th_fail("expected %d accepted sockets, got %d", MANY, log.nfds);
  if (log.nfinal != 0 || log.nmore != MANY)
    th_fail("expected %d MORE completions and no final one, got %d more, %d "
            "final (last %s)",
            MANY, log.nmore, log.nfinal, nio_err_name(log.last_res));
  assert_true(r.active);
  assert_int_equal(nio__port_cancel(p, &r), 0);
  th_run_until(p, th_log_final, &log, 5000, "the final accept completion");
  assert_int_equal(log.last_res, NIO_ECANCELED);
  close_accepted(&log);
  for (int i = 0; i < MANY; i++) th_close(clients[i]);
  nio__port_remove(p, l);
  nio__sock_close(l);
  nio__port_close(p);
}

/* u.accept.depth: how many accepts iocp keeps posted (1, many, and a
** count above its cap); the other backends ignore it. Every client is
** accepted, and a cancel with every posted accept out ends once. */
static void accept_depth_accepts_every_client_and_cancels_once(void **state) {
  static const uint32_t depths[] = {1, 64, 0x80000000u};
  (void)state;
  for (size_t d = 0; d < sizeof depths / sizeof depths[0]; d++) {
    nio_port *p = th_port_open();
    nio_addr a;
    nio_sock l = th_listen(&a);
    nio_req r;
    static th_log log;
    static int clients[100];
    want_fds w = {&log, 100};
    assert_int_equal(nio__port_add(p, l), 0);
    th_log_init(&log);
    th_req(&r, l, NIO_OP_ACCEPT, &log);
    r.u.accept.depth = depths[d];
    assert_int_equal(nio__port_submit(p, &r), 0);
    th_run_for(p, 10);
    for (int i = 0; i < 100; i++) clients[i] = th_client(&a);
    th_run_until(p, has_fds, &w, 10000, "every client to be accepted");
    if (log.nfds != 100 || log.nfinal != 0)
      th_fail("depth %u: expected 100 accepted sockets and no final "
              "completion, got %d sockets, %d final (last %s)",
              (unsigned)depths[d], log.nfds, log.nfinal,
              nio_err_name(log.last_res));
    assert_int_equal(nio__port_cancel(p, &r), 0);
    th_run_until(p, th_log_final, &log, 5000, "the final accept completion");
    th_run_for(p, 50);
    if (log.nfinal != 1 || log.last_res != NIO_ECANCELED)
      th_fail("depth %u: expected one final ECANCELED completion, got %d "
              "(last %s)",
              (unsigned)depths[d], log.nfinal, nio_err_name(log.last_res));
    close_accepted(&log);
    for (int i = 0; i < 100; i++) th_close(clients[i]);
    nio__port_remove(p, l);
    nio__sock_close(l);
    nio__port_close(p);
  }
}

static void accepted_socket_is_nonblocking_and_cloexec(void **state) {
  nio_port *p = th_port_open();
  nio_addr a;
  nio_sock l = th_listen(&a);
  nio_req r;
  static th_log log;
  want_fds w = {&log, 1};
  int c;
  (void)state;
  assert_int_equal(nio__port_add(p, l), 0);
  th_log_init(&log);
  th_req(&r, l, NIO_OP_ACCEPT, &log);
  assert_int_equal(nio__port_submit(p, &r), 0);
  c = th_client(&a);
  th_run_until(p, has_fds, &w, 5000, "one accepted client");
  assert_int_equal(log.nfds, 1);
  th_check_nonblock_cloexec(log.fds[0], "the accepted socket");
  nio__port_cancel(p, &r);
  th_run_until(p, th_log_final, &log, 5000, "the final accept completion");
  close_accepted(&log);
  th_close(c);
  nio__port_remove(p, l);
  nio__sock_close(l);
  nio__port_close(p);
}

static void accept_cancel_gives_exactly_one_final_completion(void **state) {
  nio_port *p = th_port_open();
  nio_addr a;
  nio_sock l = th_listen(&a);
  nio_req r;
  static th_log log;
  (void)state;
  assert_int_equal(nio__port_add(p, l), 0);
  th_log_init(&log);
  th_req(&r, l, NIO_OP_ACCEPT, &log);
  assert_int_equal(nio__port_submit(p, &r), 0);
  th_run_for(p, 20);
  assert_int_equal(log.ncqe, 0);
  assert_int_equal(nio__port_cancel(p, &r), 0);
  if (log.ncqe != 0) th_fail("expected no callback from inside cancel");
  th_run_until(p, th_log_final, &log, 5000, "the canceled accept's completion");
  th_run_for(p, 50);
  if (log.ncqe != 1 || log.nfinal != 1)
    th_fail("expected exactly one completion after cancel, got %d (%d final)",
            log.ncqe, log.nfinal);
  if (log.last_res != NIO_ECANCELED)
    th_fail("expected ECANCELED, got %s", nio_err_name(log.last_res));
  assert_false(r.active);
  assert_false(log.active_seen);
  nio__port_remove(p, l);
  nio__sock_close(l);
  nio__port_close(p);
}

static void accept_cancel_before_first_turn_with_clients_waiting(void **state) {
  nio_port *p = th_port_open();
  nio_addr a;
  nio_sock l = th_listen(&a);
  nio_req r;
  static th_log log;
  int c[5];
  (void)state;
  assert_int_equal(nio__port_add(p, l), 0);
  for (int i = 0; i < 5; i++) c[i] = th_client(&a);
  th_log_init(&log);
  th_req(&r, l, NIO_OP_ACCEPT, &log);
  assert_int_equal(nio__port_submit(p, &r), 0);
  assert_int_equal(nio__port_cancel(p, &r), 0);
  th_run_until(p, th_log_final, &log, 5000, "the canceled accept's completion");
  th_run_for(p, 50);
  /* Clients accepted before the cancel took effect are allowed; after the
  ** final completion nothing else may come. */
  if (log.nfinal != 1 || log.ncqe != log.nfds + 1)
    th_fail("expected accepted sockets then exactly one final completion, "
            "got %d completions, %d sockets, %d final",
            log.ncqe, log.nfds, log.nfinal);
  if (log.last_res != NIO_ECANCELED)
    th_fail("expected the final completion to be ECANCELED, got %s",
            nio_err_name(log.last_res));
  close_accepted(&log);
  for (int i = 0; i < 5; i++) th_close(c[i]);
  nio__port_remove(p, l);
  nio__sock_close(l);
  nio__port_close(p);
}

/* Canceling from inside a MORE callback: the final completion follows,
** never from inside the cancel and never twice. */
typedef struct cancel_in_cb {
  th_log log;
  nio_port *p;
  int cqe_at_cancel;
} cancel_in_cb;

static void cancel_in_more_cb(nio_req *r, int res, const char *data,
                              unsigned flags) {
  cancel_in_cb *x = r->data;
  th_log_cb(r, res, data, flags);
  if ((flags & NIO_CQE_MORE) && x->log.nmore == 1) {
    x->cqe_at_cancel = x->log.ncqe;
    nio__port_cancel(x->p, r);
    if (x->log.ncqe != x->cqe_at_cancel)
      fail_msg("expected no callback from inside cancel");
  }
}

static void accept_canceled_from_its_callback_ends_once(void **state) {
  nio_port *p = th_port_open();
  nio_addr a;
  nio_sock l = th_listen(&a);
  nio_req r;
  static cancel_in_cb x;
  int c[3];
  (void)state;
  assert_int_equal(nio__port_add(p, l), 0);
  th_log_init(&x.log);
  x.p = p;
  th_req(&r, l, NIO_OP_ACCEPT, &x.log);
  r.cb = cancel_in_more_cb;
  r.data = &x;
  assert_int_equal(nio__port_submit(p, &r), 0);
  for (int i = 0; i < 3; i++) c[i] = th_client(&a);
  th_run_until(p, th_log_final, &x.log, 5000,
               "the final completion of an accept canceled in its callback");
  th_run_for(p, 50);
  if (x.log.nfinal != 1)
    th_fail("expected one final completion, got %d", x.log.nfinal);
  if (x.log.last_res != NIO_ECANCELED)
    th_fail("expected ECANCELED last, got %s", nio_err_name(x.log.last_res));
  close_accepted(&x.log);
  for (int i = 0; i < 3; i++) th_close(c[i]);
  nio__port_remove(p, l);
  nio__sock_close(l);
  nio__port_close(p);
}

static void accept_on_a_socket_not_listening_fails(void **state) {
  nio_port *p = th_port_open();
  nio_sock s;
  nio_req r;
  static th_log log;
  (void)state;
  assert_int_equal(nio__sock_tcp(AF_INET, &s), 0);
  assert_int_equal(nio__port_add(p, s), 0);
  th_log_init(&log);
  th_req(&r, s, NIO_OP_ACCEPT, &log);
  assert_int_equal(nio__port_submit(p, &r), 0);
  th_run_until(p, th_log_final, &log, 5000,
               "accept on a non-listening socket to fail");
  if (log.last_res != NIO_EINVAL)
    th_fail("expected EINVAL from accept on a socket not listening, got %s",
            nio_err_name(log.last_res));
  nio__port_remove(p, s);
  nio__sock_close(s);
  nio__port_close(p);
}

static int fds_or_final(void *ud) {
  th_log *log = ud;
  return log->nfds >= 3 || log->nfinal > 0;
}

/* Out of descriptors, a multishot accept ends with one final EMFILE: the
** port neither rests nor retries on its own (the owner backs off, once,
** in the engine), and a new accept takes the clients once descriptors are
** free. */
static void accept_out_of_fds_ends_with_one_emfile(void **state) {
  nio_port *p = th_port_open();
  nio_addr a;
  nio_sock l = th_listen(&a);
  nio_req r;
  static th_log log;
  int c[3];
  (void)state;
  assert_int_equal(nio__port_add(p, l), 0);
  for (int i = 0; i < 3; i++) c[i] = th_client(&a);
  /* The lowest free number becomes the limit: no new descriptor fits. */
  if (th_fds_limit_now() != 0) {
    for (int i = 0; i < 3; i++) th_close(c[i]);
    nio__port_remove(p, l);
    nio__sock_close(l);
    nio__port_close(p);
    skip(); /* no descriptor limit to lower (Windows) */
  }
  th_log_init(&log);
  th_req(&r, l, NIO_OP_ACCEPT, &log);
  assert_int_equal(nio__port_submit(p, &r), 0);
  th_run_for(p, 300);
  th_fds_limit_restore();
  if (log.ncqe != 1 || log.nfinal != 1 || log.last_res != NIO_EMFILE)
    th_fail("expected exactly one completion, a final EMFILE, in 300 ms out "
            "of descriptors; got %d completions, %d final, last %s",
            log.ncqe, log.nfinal, nio_err_name(log.last_res));
  assert_false(r.active);
  th_log_init(&log);
  assert_int_equal(nio__port_submit(p, &r), 0);
  th_run_until(p, fds_or_final, &log, 5000,
               "the 3 clients to be accepted once fds are free");
  if (log.nfds != 3 || log.nfinal != 0)
    th_fail("expected 3 clients accepted after EMFILE, got %d (final %d, %s)",
            log.nfds, log.nfinal, nio_err_name(log.last_res));
  nio__port_cancel(p, &r);
  th_run_until(p, th_log_final, &log, 5000, "the final accept completion");
  close_accepted(&log);
  for (int i = 0; i < 3; i++) th_close(c[i]);
  nio__port_remove(p, l);
  nio__sock_close(l);
  nio__port_close(p);
}

/* Listeners closed with their accepts pending, many at once (more than
** any fixed table holds) and round after round so that numbers and
** handles are reused: each address is free at once, and each accept ends
** with exactly one final ECANCELED, never from inside the close. */
#define NLISTEN 100
#define ROUNDS 3

typedef struct many_final {
  th_log *logs;
  int n;
} many_final;

static int all_final(void *ud) {
  many_final *m = ud;
  for (int i = 0; i < m->n; i++)
    if (m->logs[i].nfinal == 0) return 0;
  return 1;
}

static void
close_listener_with_pending_accepts_frees_address_and_ends_once(void **state) {
  nio_port *p = th_port_open();
  static th_log logs[NLISTEN];
  static nio_req reqs[NLISTEN];
  static nio_sock ls[NLISTEN], again[NLISTEN];
  static nio_addr addrs[NLISTEN];
  many_final m = {logs, NLISTEN};
  int e;
  (void)state;
  for (int round = 0; round < ROUNDS; round++) {
    for (int i = 0; i < NLISTEN; i++) {
      ls[i] = th_listen_private(&addrs[i]);
      assert_int_equal(nio__port_add(p, ls[i]), 0);
      th_log_init(&logs[i]);
      th_req(&reqs[i], ls[i], NIO_OP_ACCEPT, &logs[i]);
      assert_int_equal(nio__port_submit(p, &reqs[i]), 0);
    }
    /* The accepts are posted (iocp), armed (uring) or waiting (epoll). */
    th_run_for(p, 20);
    for (int i = 0; i < NLISTEN; i++) {
      if ((e = nio__port_close_listener(p, ls[i])) != 0)
        th_fail("round %d: expected close_listener to give 0, got %s", round,
                nio_err_name(e));
      if (logs[i].ncqe != 0)
        th_fail("expected no callback from inside close_listener");
    }
    /* Before any turn of the port: every address can be listened on. */
    for (int i = 0; i < NLISTEN; i++)
      if ((e = nio__sock_listen(&addrs[i], 16, 0, &again[i])) != 0)
        th_fail("round %d: expected port %d free right after the close of "
                "its listener (%d of %d), got %s",
                round, th_addr_port(&addrs[i]), i + 1, NLISTEN,
                nio_err_name(e));
    th_run_until(p, all_final, &m, 10000,
                 "the final completion of every closed listener's accept");
    th_run_for(p, 50);
    for (int i = 0; i < NLISTEN; i++) {
      if (logs[i].ncqe != 1 || logs[i].nfinal != 1 ||
          logs[i].last_res != NIO_ECANCELED)
        th_fail("round %d, listener %d: expected exactly one completion, a "
                "final ECANCELED; got %d completions, %d final, last %s",
                round, i, logs[i].ncqe, logs[i].nfinal,
                nio_err_name(logs[i].last_res));
      assert_false(reqs[i].active);
      nio__sock_close(again[i]);
    }
  }
  nio__port_close(p);
}

/* A listener with no accept active (the owner backing off) closes too. */
static void close_listener_without_accept_frees_address(void **state) {
  nio_port *p = th_port_open();
  nio_addr a;
  nio_sock l = th_listen_private(&a), again;
  int e;
  (void)state;
  assert_int_equal(nio__port_add(p, l), 0);
  assert_int_equal(nio__port_close_listener(p, l), 0);
  if ((e = nio__sock_listen(&a, 16, 0, &again)) != 0)
    th_fail("expected the address free after close_listener, got %s",
            nio_err_name(e));
  if ((e = nio__port_close_listener(p, l)) != NIO_EBADF)
    th_fail("expected a second close_listener to give EBADF, got %s",
            nio_err_name(e));
  nio__sock_close(again);
  th_run_for(p, 20);
  nio__port_close(p);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(accept_delivers_every_client_with_more),
      cmocka_unit_test(accept_depth_accepts_every_client_and_cancels_once),
      cmocka_unit_test(accepted_socket_is_nonblocking_and_cloexec),
      cmocka_unit_test(accept_cancel_gives_exactly_one_final_completion),
      cmocka_unit_test(accept_cancel_before_first_turn_with_clients_waiting),
      cmocka_unit_test(accept_canceled_from_its_callback_ends_once),
      cmocka_unit_test(accept_on_a_socket_not_listening_fails),
      cmocka_unit_test(accept_out_of_fds_ends_with_one_emfile),
      cmocka_unit_test(
          close_listener_with_pending_accepts_frees_address_and_ends_once),
      cmocka_unit_test(close_listener_without_accept_frees_address),
  };
  th_init(4096);
  return cmocka_run_group_tests(tests, NULL, NULL);
}
