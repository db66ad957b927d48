/*
** test_engine_stop.c: graceful stop -- output of forgotten connections is
** flushed to a reading peer, the grace period bounds the wait and counts
** what it drops.
*/
#include <stdatomic.h>
#include "engine_helpers.h"
#include "util/log.h"

#define MIB (1024ull * 1024)
#define FLUSH_BYTES (8 * MIB)

typedef struct stop_state {
  eh_test t;
  nio_listener *l;
  nio_conn *a, *b;
  atomic_int port;   /* the listener's port, published to the main thread */
  atomic_int queued; /* the server queued its output and forgot the conn */
  int stop_on_worker, stopping_seen;
  eh_frees frees;
  /* Output filled before the engine starts (filling 32 MiB under ASan
  ** takes longer than a short grace period), or NULL. */
  char *pre;
  /* The reader thread's results. */
  nio_addr addr;
  uint64_t got, hash;
  int read_eof;
  /* In-engine reader. */
  uint64_t a_got;
  int a_eof;
  nio_counters st;
} stop_state;

static void forget_cb(nio_conn *c, int ev) {
  (void)c;
  (void)ev;
}

/* Queue FLUSH_BYTES of the pattern on c and forget it. */
static void queue_and_forget(stop_state *s, nio_conn *c, uint64_t len) {
  char *p = s->pre;
  s->pre = NULL;
  if (p == NULL) {
    p = malloc(len);
    th_pattern(p, len, 0);
  }
  EH_CHECK(&s->t, nio__conn_write(c, p, len, eh_free_cb, &s->frees) == 0,
           "queue output: expected 0");
  nio__conn_close_after_flush(c);
}

/* ---- flush to a reading peer ------------------------------------------ */

static void flush_listener_cb(nio_listener *l, int ev) {
  stop_state *s = l->udata;
  nio_conn *c = nio__listener_accept(l, forget_cb, s);
  (void)ev;
  if (c == NULL) return;
  queue_and_forget(s, c, FLUSH_BYTES);
  atomic_store(&s->queued, 1);
  s->t.stage = "the stop request";
}

static int flush_start(eh_test *t) {
  stop_state *s = (stop_state *)t;
  nio_addr a;
  if ((s->l = eh_listen(t, &a, 0, flush_listener_cb, s)) == NULL) return 0;
  s->addr = a;
  atomic_store(&s->port, th_addr_port(&a));
  t->stage = "the reader to connect";
  return 0;
}

static void flush_stop(eh_test *t) {
  stop_state *s = (stop_state *)t;
  s->stop_on_worker = nio__engine_current() == t->e;
  s->stopping_seen = nio__engine_stopping(t->e);
  t->done = 1;
}

static void flush_finish(eh_test *t) {
  stop_state *s = (stop_state *)t;
  if (s->l) nio__listener_close(s->l);
}

/* A plain blocking peer that starts reading late, then reads to EOF. */
static void reader_thread(void *arg) {
  stop_state *s = arg;
  char buf[65536];
  size_t n;
  int fd = th_client(&s->addr);
  th_sock_timeout(fd, 20000);
  while (!atomic_load(&s->queued)) th_usleep(1000);
  th_usleep(300000); /* the stop comes while output is still queued */
  s->hash = TH_HASH_INIT;
  while ((n = th_read_some(fd, buf, sizeof buf)) > 0) {
    s->hash = th_hash(s->hash, buf, n);
    s->got += n;
  }
  s->read_eof = 1;
  th_close(fd);
}

static void wait_flag(atomic_int *f, const char *what) {
  int64_t deadline = th_now_ms() + 10000;
  while (!atomic_load(f)) {
    if (th_now_ms() > deadline) fail_msg("timed out waiting for %s", what);
    th_usleep(1000);
  }
}

static void graceful_stop_flushes_forgotten_output_to_reader(void **state) {
  stop_state *s = calloc(1, sizeof *s);
  nio_engine_hooks h = {eh_hook_start,  eh_hook_turn, eh_hook_stop,
                        eh_hook_finish, &s->t,        NULL};
  nio_thread *rd;
  char *want = malloc(FLUSH_BYTES);
  (void)state;
  s->t.start = flush_start;
  s->t.stop = flush_stop;
  s->t.finish = flush_finish;
  eh_new(&s->t);
  assert_int_equal(nio__engine_start(s->t.e, &h), 0);
  wait_flag(&s->port, "the listener");
  assert_int_equal(nio__thread_start(&rd, reader_thread, s), 0);
  wait_flag(&s->queued, "the server to queue its output");
  nio__engine_stop(s->t.e);
  s->t.result = nio__engine_join(s->t.e);
  nio__thread_join(rd);
  if (s->t.failed) fail_msg("%s", s->t.msg);
  nio__engine_stats(s->t.e, &s->st);
  eh_free(&s->t);
  assert_true(s->stop_on_worker);
  assert_true(s->stopping_seen);
  assert_true(s->read_eof);
  if (s->got != FLUSH_BYTES)
    fail_msg("reader: expected all %llu queued bytes before EOF, got %llu",
             (unsigned long long)FLUSH_BYTES, (unsigned long long)s->got);
  th_pattern(want, FLUSH_BYTES, 0);
  if (s->hash != th_hash(TH_HASH_INIT, want, FLUSH_BYTES))
    fail_msg("reader: expected the queued bytes, checksum differs");
  assert_int_equal(s->st.dropped_bytes, 0);
  assert_int_equal(s->frees.calls, 1);
  free(want);
  free(s);
}

/* ---- grace period ------------------------------------------------------ */

static void idle_cb(nio_conn *c, int ev) {
  (void)c;
  (void)ev;
}

static void grace_listener_cb(nio_listener *l, int ev) {
  stop_state *s = l->udata;
  nio_conn *c = nio__listener_accept(l, forget_cb, s);
  (void)ev;
  if (c == NULL) return;
  /* The peer (s->a) never reads past its first receive: most of this
  ** stays queued until the grace period drops it. */
  queue_and_forget(s, c, 32 * MIB);
  nio__engine_stop(s->t.e);
}

static int grace_start(eh_test *t) {
  stop_state *s = (stop_state *)t;
  nio_addr a;
  if ((s->l = eh_listen(t, &a, 0, grace_listener_cb, s)) == NULL) return 0;
  if ((s->a = eh_connect(t, &a, idle_cb, s)) != NULL) nio__conn_want(s->a, 1);
  t->stage = "the stop";
  return 0;
}

static void grace_finish(eh_test *t) {
  stop_state *s = (stop_state *)t;
  if (s->a) nio__conn_close(s->a, 0);
  if (s->l) nio__listener_close(s->l);
}

/* The whole of a small text file (the test's log), or "" if none. */
static void read_file(const char *path, char *buf, size_t size) {
  FILE *f = fopen(path, "rb");
  size_t n = 0;
  if (f) {
    n = fread(buf, 1, size - 1, f);
    fclose(f);
  }
  buf[n] = '\0';
}

static void grace_period_drops_and_counts_unsent_output(void **state) {
  static char logged[8192];
  char want[128], log_path[64];
  stop_state *s = calloc(1, sizeof *s);
  int64_t t0, ms;
  (void)state;
  /* One file per backend: ctest runs the backends side by side. */
  snprintf(log_path, sizeof log_path, "test_engine_stop.%s.log",
           th_backend()[0] ? th_backend() : "default");
  remove(log_path);
  assert_int_equal(nio__log_open(log_path, 0), 0);
  s->t.start = grace_start;
  s->t.stop = flush_stop;
  s->t.finish = grace_finish;
  s->pre = malloc(32 * MIB);
  th_pattern(s->pre, 32 * MIB, 0);
  th_setenv("NETIO_GRACE", "0.3");
  eh_new(&s->t);
  th_setenv("NETIO_GRACE", NULL);
  t0 = th_now_ms();
  eh_start_join(&s->t);
  ms = th_now_ms() - t0;
  nio__engine_stats(s->t.e, &s->st);
  eh_free(&s->t);
  nio__log_open(NULL, 0);
  read_file(log_path, logged, sizeof logged);
  remove(log_path);
  /* Said once, at level warn, with the count. */
  snprintf(want, sizeof want, "the run ended with %llu bytes of queued output",
           (unsigned long long)s->st.dropped_bytes);
  if (strstr(logged, want) == NULL || strstr(logged, "warn") == NULL ||
      strstr(strstr(logged, want) + 1, "the run ended with") != NULL)
    fail_msg("expected one warn line \"%s unsent...\", the log was: %s", want,
             logged);
  if (ms < 250 || ms > 5000)
    fail_msg("stop with a peer that never reads: expected to end after the "
             "0.3 s grace period, took %lld ms",
             (long long)ms);
  /* Counted: bytes not confirmed sent (a cancelled send reports no partial
  ** count, so the one 32 MiB chunk counts whole). */
  if (s->st.dropped_bytes == 0 || s->st.dropped_bytes > 32 * MIB)
    fail_msg("dropped bytes: expected the unconfirmed part of 32 MiB, got "
             "%llu",
             (unsigned long long)s->st.dropped_bytes);
  assert_int_equal(s->frees.calls, 1);
  assert_int_equal(s->st.conns, 0);
  free(s->pre);
  free(s);
}

/* ---- close after flush while running ----------------------------------- */

static void caf_a_cb(nio_conn *c, int ev) {
  stop_state *s = c->udata;
  size_t n;
  if (!(ev & NIO_EV_READ)) return;
  nio__conn_input(c, &n);
  s->a_got += n;
  nio__conn_consume(c, n);
  if (c->eof) {
    s->a_eof = 1;
    nio__engine_stats(s->t.e, &s->st);
    s->t.done = 1;
  }
}

static void caf_listener_cb(nio_listener *l, int ev) {
  stop_state *s = l->udata;
  nio_conn *c = nio__listener_accept(l, forget_cb, s);
  (void)ev;
  if (c) queue_and_forget(s, c, 4 * MIB);
}

static int caf_start(eh_test *t) {
  stop_state *s = (stop_state *)t;
  nio_addr a;
  if ((s->l = eh_listen(t, &a, 0, caf_listener_cb, s)) == NULL) return 0;
  s->a = eh_connect(t, &a, caf_a_cb, s);
  t->stage = "EOF after the forgotten connection flushed";
  return 0;
}

static void close_after_flush_sends_everything_then_closes(void **state) {
  stop_state *s = calloc(1, sizeof *s);
  (void)state;
  s->t.start = caf_start;
  s->t.finish = grace_finish;
  eh_run(&s->t);
  assert_true(s->a_eof);
  assert_int_equal(s->a_got, 4 * MIB);
  /* Only the reading end is left open. */
  assert_int_equal(s->st.conns, 1);
  assert_int_equal(s->st.dropped_bytes, 0);
  assert_int_equal(s->frees.calls, 1);
  free(s);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(graceful_stop_flushes_forgotten_output_to_reader),
      cmocka_unit_test(grace_period_drops_and_counts_unsent_output),
      cmocka_unit_test(close_after_flush_sends_everything_then_closes),
  };
  th_init(0);
  return cmocka_run_group_tests(tests, NULL, NULL);
}
