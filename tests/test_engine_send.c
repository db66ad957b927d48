/*
** test_engine_send.c: nio_send() and posts from other threads -- every
** byte delivered in per-thread order, dead and stale ids refused, the
** per-connection limit answering EBUSY without losing a byte, sends racing
** with closes and with the engine's stop accounted for exactly, posts in
** order and bounded.
**
** The readers are connections of the same engine (the client ends of
** loopback pairs), so the test runs the same on every backend.
*/
#include <stdatomic.h>
#include "engine_helpers.h"

#define MAXCONNS 100
#define SENDERS 4
#define REC 16 /* bytes of a record */
#define REC_MAGIC 0x6e696f21u

/* A record: which sender, its sequence number towards this connection,
** the connection's index, a magic word. */
static void rec_make(char *p, uint32_t sender, uint32_t seq, uint32_t conn) {
  uint32_t w[4] = {sender, seq, conn, REC_MAGIC};
  memcpy(p, w, REC);
}

typedef struct stest stest;

/* The client end of a pair: reads records and checks them. */
typedef struct rx {
  stest *s;
  nio_conn *c;
  int idx;
  uint32_t next[SENDERS]; /* next sequence number expected from each */
  uint64_t records;
  uint64_t bytes;
  int eof;
} rx;

struct stest {
  eh_test t;
  int nconns;
  nio_listener *l;
  rx cl[MAXCONNS];
  nio_conn *srv[MAXCONNS];
  int nsrv;
  _Atomic uint64_t ids[MAXCONNS];
  atomic_int ready;  /* ids published */
  atomic_int finish; /* senders: stop */
  int complete;      /* readers done */
  uint64_t expect;   /* records per reader, 0: read until EOF */
  int pause_reading; /* readers do not consume while set */
  /* Senders' tallies. */
  atomic_llong accepted; /* bytes */
  atomic_llong busy;
  atomic_llong closed;
  int msgs;  /* sends per sender */
  int mixed; /* sends of several records: see RUNS */
  /* Each sender posts after each send the bytes it had accepted so far;
  ** the posts' handler checks they are in the output of connection 0. */
  int post_each;
  uint64_t posted_bytes[SENDERS]; /* each sender's last post */
  int posts, post_bad;
  /* Races: close every server end after flush, one per tick. */
  nio_timer closer;
  int nclosed;
  nio_counters st;
};

static void rx_cb(nio_conn *c, int ev) {
  rx *k = c->udata;
  stest *s = k->s;
  size_t n, off = 0;
  const char *p;
  (void)ev;
  if (k->eof) return;
  p = nio__conn_input(c, &n);
  if (s->pause_reading) return;
  while (n - off >= REC) {
    uint32_t w[4];
    memcpy(w, p + off, REC);
    if (!EH_CHECK(&s->t,
                  w[3] == REC_MAGIC && w[0] < SENDERS &&
                      w[2] == (uint32_t)k->idx,
                  "reader %d: record %llu is not a record of this connection "
                  "(sender %u, conn %u, magic %08x)",
                  k->idx, (unsigned long long)k->records, w[0], w[2], w[3]))
      return;
    if (!EH_CHECK(&s->t, w[1] == k->next[w[0]],
                  "reader %d: sender %u: expected sequence %u, got %u (lost "
                  "or reordered)",
                  k->idx, w[0], k->next[w[0]], w[1]))
      return;
    k->next[w[0]]++;
    k->records++;
    off += REC;
  }
  k->bytes += off;
  nio__conn_consume(c, off);
  if (c->err || c->eof) {
    k->eof = 1;
    EH_CHECK(&s->t, n == off, "reader %d: %zu bytes of a torn record at EOF",
             k->idx, n - off);
  }
  if ((s->expect && k->records == s->expect && !k->eof) || k->eof) {
    if (s->expect && k->records == s->expect) k->eof = 1;
    if (++s->complete == s->nconns) s->t.done = 1;
  }
}

static void srv_cb(nio_conn *c, int ev) {
  (void)c;
  (void)ev;
}

static void lst_cb(nio_listener *l, int ev) {
  stest *s = l->udata;
  nio_conn *c;
  (void)ev;
  while ((c = nio__listener_accept(l, srv_cb, s)) != NULL) {
    if (!EH_CHECK(&s->t, s->nsrv < s->nconns, "more than %d accepted",
                  s->nconns))
      return;
    s->srv[s->nsrv++] = c;
  }
  if (s->nsrv == s->nconns) {
    /* Accepted in some order; the client that sent nothing yet tells which
    ** is which by its local port. Pair them by the peer address. */
    for (int i = 0; i < s->nconns; i++) {
      nio_addr a, b;
      nio__conn_getpeername(s->srv[i], &a);
      for (int j = 0; j < s->nconns; j++) {
        nio__conn_getsockname(s->cl[j].c, &b);
        if (th_addr_port(&a) == th_addr_port(&b)) {
          atomic_store(&s->ids[j], s->srv[i]->id);
          break;
        }
      }
    }
    for (int j = 0; j < s->nconns; j++)
      if (!EH_CHECK(&s->t, atomic_load(&s->ids[j]) != 0,
                    "client %d: no accepted end matches it", j))
        return;
    atomic_store(&s->ready, 1);
  }
}

static int st_start(eh_test *t) {
  stest *s = (stest *)t;
  nio_addr a;
  t->stage = "the readers to get every record";
  if ((s->l = eh_listen(t, &a, s->nconns, lst_cb, s)) == NULL) return 0;
  for (int i = 0; i < s->nconns; i++) {
    s->cl[i].s = s;
    s->cl[i].idx = i;
    if ((s->cl[i].c = eh_connect(t, &a, rx_cb, &s->cl[i])) == NULL) return 0;
  }
  return 0;
}

static void st_finish(eh_test *t) {
  stest *s = (stest *)t;
  if (nio__timer_active(&s->closer)) nio__timer_stop(t->e, &s->closer);
  nio__engine_stats(t->e, &s->st);
  for (int i = 0; i < s->nconns; i++)
    if (s->cl[i].c) nio__conn_close(s->cl[i].c, 0);
  if (s->l) nio__listener_close(s->l);
}

static int wait_ready(stest *s) {
  int64_t deadline = th_now_ms() + 20000;
  while (!atomic_load(&s->ready)) {
    if (th_now_ms() > deadline || s->t.failed) return 0;
    th_usleep(1000);
  }
  return 1;
}

typedef struct sender {
  stest *s;
  int idx;
} sender;

/* With s->mixed, the records of a send: the k-th send to a connection
** carries RUNS[k % NRUNS] records, so that single records, copies above
** the output queue's copy size (640 B) and sends large enough to travel
** as their own message (4800 B) follow each other on every connection. */
static const int RUNS[] = {1, 1, 40, 1, 300, 3};
#define NRUNS (int)(sizeof RUNS / sizeof RUNS[0])
#define RUN_MAX 300

/* Sender idx sends record k to connection k % nconns, retrying on EBUSY
** (the documented back-pressure), until msgs are sent or every connection
** answered ECLOSED. */
static void sender_thread(void *arg) {
  sender *d = arg;
  stest *s = d->s;
  uint32_t seq[MAXCONNS] = {0};
  int dead[MAXCONNS] = {0}, ndead = 0;
  uint64_t mine = 0; /* bytes accepted */
  char rec[REC * RUN_MAX];
  int64_t deadline = th_now_ms() + 60000;
  if (!wait_ready(s)) return;
  for (int k = 0; k < s->msgs && ndead < s->nconns; k++) {
    if ((k & 1023) == 0 && th_now_ms() > deadline) break;
    int i = k % s->nconns, r;
    int n = s->mixed ? RUNS[(k / s->nconns) % NRUNS] : 1;
    if (dead[i]) continue;
    for (int j = 0; j < n; j++)
      rec_make(rec + j * REC, (uint32_t)d->idx, seq[i] + (uint32_t)j,
               (uint32_t)i);
    for (;;) {
      r = nio_send(atomic_load(&s->ids[i]), rec, (size_t)n * REC);
      if (r != NIO_EBUSY || atomic_load(&s->finish)) break;
      atomic_fetch_add(&s->busy, 1);
      th_usleep(50);
    }
    if (r == 0) {
      seq[i] += (uint32_t)n;
      atomic_fetch_add(&s->accepted, n * REC);
      mine += (uint64_t)n * REC;
      if (s->post_each) {
        uint64_t m[2] = {(uint64_t)d->idx, mine};
        while (nio__engine_post(s->t.e, NIO_POST_VALUES, m, sizeof m) ==
               NIO_EBUSY)
          th_usleep(50);
      }
    } else if (r == NIO_ECLOSED) {
      dead[i] = 1;
      ndead++;
      atomic_fetch_add(&s->closed, 1);
    } else if (r != NIO_EBUSY) {
      break;
    }
  }
}

/* Start the engine, run the senders, join everything. free_first: free
** the engine before joining the senders (they must keep getting ECLOSED,
** never touch freed memory). */
static void st_run(stest *s, int free_first) {
  nio_engine_hooks h;
  nio_thread *th[SENDERS];
  sender d[SENDERS];
  int r;
  s->t.start = st_start;
  s->t.finish = st_finish;
  if (s->t.timeout_ms == 0) s->t.timeout_ms = 120000;
  eh_new(&s->t);
  h = eh_hooks(&s->t);
  assert_int_equal(nio__engine_start(s->t.e, &h), 0);
  for (int i = 0; i < SENDERS; i++) {
    d[i].s = s;
    d[i].idx = i;
    assert_int_equal(nio__thread_start(&th[i], sender_thread, &d[i]), 0);
  }
  if (free_first) {
    /* Stop while the senders run. */
    wait_ready(s);
    th_usleep(20000);
    nio__engine_stop(s->t.e);
    s->t.result = nio__engine_join(s->t.e);
    eh_free(&s->t);
    th_usleep(20000);
    atomic_store(&s->finish, 1);
    for (int i = 0; i < SENDERS; i++) nio__thread_join(th[i]);
  } else {
    for (int i = 0; i < SENDERS; i++) nio__thread_join(th[i]);
    s->t.result = nio__engine_join(s->t.e);
  }
  if (s->t.failed) th_fail("%s", s->t.msg);
  r = s->t.result;
  if (r != 0) th_fail("engine result: expected 0, got %s", nio_err_name(r));
}

static void four_threads_into_100_conns_in_order(void **state) {
  stest *s = calloc(1, sizeof *s);
  uint64_t total = 0;
  (void)state;
  s->nconns = 100;
  s->msgs = 100000;
  s->expect = (uint64_t)SENDERS * (uint64_t)s->msgs / (uint64_t)s->nconns;
  for (int i = 0; i < s->nconns; i++)
    for (int k = 0; k < SENDERS; k++) s->cl[i].next[k] = 0;
  st_run(s, 0);
  for (int i = 0; i < s->nconns; i++) {
    if (s->cl[i].records != s->expect)
      th_fail("reader %d: expected %llu records, got %llu", i,
              (unsigned long long)s->expect,
              (unsigned long long)s->cl[i].records);
    total += s->cl[i].records;
  }
  assert_int_equal(atomic_load(&s->closed), 0);
  assert_int_equal(s->st.outside_dropped, 0);
  print_message("nio_send: %d threads x %d records into %d connections, "
                "%llu delivered in order, %lld EBUSY retries\n",
                SENDERS, s->msgs, s->nconns, (unsigned long long)total,
                (long long)atomic_load(&s->busy));
  eh_free(&s->t);
  free(s);
}

/* Sends of 1 to 300 records (16 B to 4800 B) to the same connections:
** single records gather with the others sent to the connection, large
** sends travel as messages of their own; the bytes of each thread still
** reach each connection in order. */
static void mixed_sizes_keep_their_order(void **state) {
  stest *s = calloc(1, sizeof *s);
  uint64_t per_round = 0;
  (void)state;
  s->nconns = 20;
  s->mixed = 1;
  s->msgs = s->nconns * NRUNS * 40;
  for (int k = 0; k < NRUNS; k++) per_round += (uint64_t)RUNS[k];
  s->expect =
      (uint64_t)SENDERS * per_round * (uint64_t)(s->msgs / (s->nconns * NRUNS));
  st_run(s, 0);
  for (int i = 0; i < s->nconns; i++)
    if (s->cl[i].records != s->expect)
      th_fail("reader %d: expected %llu records, got %llu", i,
              (unsigned long long)s->expect,
              (unsigned long long)s->cl[i].records);
  assert_int_equal(atomic_load(&s->closed), 0);
  assert_int_equal(s->st.outside_dropped, 0);
  eh_free(&s->t);
  free(s);
}

/* A post tells the bytes its sender had accepted until then: all of
** every sender's are in the output of the (one) connection by the time
** its post arrives: bytes sent, plus bytes queued. */
static void post_after_sends(eh_test *t, nio_msg *m) {
  stest *s = (stest *)t;
  size_t len;
  const char *d = nio__msg_data(m, &len);
  uint64_t v[2], want = 0;
  if (len == sizeof v) {
    memcpy(v, d, sizeof v);
    if (v[0] < SENDERS) s->posted_bytes[v[0]] = v[1];
  }
  for (int i = 0; i < SENDERS; i++) want += s->posted_bytes[i];
  if (len != sizeof v || v[0] >= SENDERS || s->nsrv != 1 ||
      s->srv[0]->bytes_out + s->srv[0]->queued < want)
    s->post_bad++;
  s->posts++;
  nio__msg_free(t->e, m);
}

static void bytes_sent_before_a_post_are_queued_when_it_arrives(void **state) {
  stest *s = calloc(1, sizeof *s);
  (void)state;
  s->nconns = 1;
  s->msgs = 5000;
  s->post_each = 1;
  s->t.message = post_after_sends;
  s->expect = (uint64_t)SENDERS * (uint64_t)s->msgs;
  st_run(s, 0);
  if (s->cl[0].records != s->expect)
    th_fail("expected %llu records, got %llu", (unsigned long long)s->expect,
            (unsigned long long)s->cl[0].records);
  if (s->posts == 0) th_fail("no post arrived");
  if (s->post_bad)
    th_fail("%d of %d posts arrived before the bytes sent ahead of them were "
            "queued",
            s->post_bad, s->posts);
  eh_free(&s->t);
  free(s);
}

/* ---- races with close ---------------------------------------------- */

static void closer_tick(nio_timer *tm) {
  stest *s = tm->data;
  if (s->nclosed < s->nsrv) {
    /* As the binding closes a conn: queued output is flushed first. */
    nio__conn_close_after_flush(s->srv[s->nclosed++]);
    nio__timer_start(s->t.e, &s->closer, 3000000, closer_tick);
  }
}

static void race_turn(eh_test *t) {
  stest *s = (stest *)t;
  if (atomic_load(&s->ready) && s->nclosed == 0 &&
      !nio__timer_active(&s->closer)) {
    s->closer.data = s;
    nio__timer_start(t->e, &s->closer, 5000000, closer_tick);
  }
}

/* Every byte a sender was told was accepted either reached the peer or was
** counted as dropped: nothing is lost silently. */
static void check_accounting(stest *s) {
  uint64_t got = 0;
  for (int i = 0; i < s->nconns; i++) got += s->cl[i].bytes;
  if ((uint64_t)atomic_load(&s->accepted) !=
      got + s->st.outside_dropped + s->st.dropped_bytes)
    th_fail("accepted %lld bytes, but %llu were received and %llu + %llu "
            "counted as dropped",
            (long long)atomic_load(&s->accepted), (unsigned long long)got,
            (unsigned long long)s->st.outside_dropped,
            (unsigned long long)s->st.dropped_bytes);
  print_message("accepted %lld = received %llu + dropped %llu + %llu; "
                "%lld ECLOSED\n",
                (long long)atomic_load(&s->accepted), (unsigned long long)got,
                (unsigned long long)s->st.outside_dropped,
                (unsigned long long)s->st.dropped_bytes,
                (long long)atomic_load(&s->closed));
}

static void sends_racing_with_close_are_accounted(void **state) {
  stest *s = calloc(1, sizeof *s);
  (void)state;
  s->nconns = 20;
  s->msgs = INT32_MAX; /* until every connection is closed */
  s->t.turn = race_turn;
  st_run(s, 0);
  /* Every reader saw EOF; every sender saw every connection close. */
  for (int i = 0; i < s->nconns; i++)
    if (!s->cl[i].eof) th_fail("reader %d: expected EOF", i);
  if (atomic_load(&s->closed) != SENDERS * s->nconns)
    th_fail("expected %d ECLOSED answers, got %lld", SENDERS * s->nconns,
            (long long)atomic_load(&s->closed));
  check_accounting(s);
  eh_free(&s->t);
  free(s);
}

/* netio's graceful stop: the owner closes its connections after flush. */
static void stop_closes_after_flush(eh_test *t) {
  stest *s = (stest *)t;
  for (int i = 0; i < s->nsrv; i++) nio__conn_close_after_flush(s->srv[i]);
  s->nsrv = 0;
}

static void engine_stop_and_free_while_threads_send(void **state) {
  stest *s = calloc(1, sizeof *s);
  (void)state;
  s->nconns = 10;
  s->msgs = INT32_MAX; /* until the engine stopped */
  s->t.stop = stop_closes_after_flush;
  st_run(s, 1);
  for (int i = 0; i < s->nconns; i++)
    if (!s->cl[i].eof) th_fail("reader %d: expected EOF", i);
  check_accounting(s);
  free(s);
}

/* ---- dead and stale ids, the limit ----------------------------------- */

static void dead_and_stale_ids_are_closed(void **state) {
  stest *s = calloc(1, sizeof *s), *s2;
  uint64_t live, old;
  int r;
  (void)state;
  s->nconns = 1;
  s->expect = 1;
  s->t.start = st_start;
  s->t.finish = st_finish;
  eh_new(&s->t);
  {
    nio_engine_hooks h = eh_hooks(&s->t);
    assert_int_equal(nio__engine_start(s->t.e, &h), 0);
  }
  assert_true(wait_ready(s));
  live = atomic_load(&s->ids[0]);
  assert_int_equal(nio_send(live, "", 0), 0);
  /* Another generation, slot, index or epoch; garbage. */
  assert_int_equal(nio_send(live + (1ull << 22), "x", 1), NIO_ECLOSED);
  assert_int_equal(nio_send(live + 1, "x", 1), NIO_ECLOSED);
  assert_int_equal(nio_send(live ^ (1ull << 47), "x", 1), NIO_ECLOSED);
  assert_int_equal(nio_send(live ^ (1ull << 55), "x", 1), NIO_ECLOSED);
  assert_int_equal(nio_send(0, "x", 1), NIO_ECLOSED);
  assert_int_equal(nio_send(UINT64_MAX, "x", 1), NIO_ECLOSED);
  assert_int_equal(nio_send(live | (1ull << 63), "x", 1), NIO_ECLOSED);
  assert_int_equal(nio_send(live, NULL, 1), NIO_EINVAL);
  /* One record ends the reader. */
  {
    char rec[REC];
    rec_make(rec, 0, 0, 0);
    assert_int_equal(nio_send(live, rec, REC), 0);
  }
  s->t.result = nio__engine_join(s->t.e);
  if (s->t.failed) th_fail("%s", s->t.msg);
  /* The engine ended: its ids are dead, before and after the free. */
  assert_int_equal(nio_send(live, "x", 1), NIO_ECLOSED);
  eh_free(&s->t);
  assert_int_equal(nio_send(live, "x", 1), NIO_ECLOSED);
  old = live;

  /* A new engine gets the same registry index and slot 0 at generation
  ** 1: the epoch still tells the old id from the new one. */
  s2 = calloc(1, sizeof *s2);
  s2->nconns = 1;
  s2->expect = 1;
  s2->t.start = st_start;
  s2->t.finish = st_finish;
  eh_new(&s2->t);
  {
    nio_engine_hooks h = eh_hooks(&s2->t);
    assert_int_equal(nio__engine_start(s2->t.e, &h), 0);
  }
  assert_true(wait_ready(s2));
  live = atomic_load(&s2->ids[0]);
  assert_true(live != old);
  assert_int_equal((unsigned)(live & 0x3fffff), (unsigned)(old & 0x3fffff));
  r = nio_send(old, "x", 1);
  if (r != NIO_ECLOSED)
    th_fail("an id of an engine that ended: expected ECLOSED, got %s",
            nio_err_name(r));
  {
    char rec[REC];
    rec_make(rec, 0, 0, 0);
    assert_int_equal(nio_send(live, rec, REC), 0);
  }
  s2->t.result = nio__engine_join(s2->t.e);
  if (s2->t.failed) th_fail("%s", s2->t.msg);
  assert_int_equal(s2->cl[0].records, 1);
  eh_free(&s2->t);
  free(s);
  free(s2);
}

static void resume_reading(nio_engine *e, void *arg) {
  stest *s = arg;
  (void)e;
  s->pause_reading = 0;
  rx_cb(s->cl[0].c, NIO_EV_READ);
}

/* A reader that stopped reading: the sender gets EBUSY once the kernel's
** buffers and the connection's limit are full; once the reader resumes,
** the same sender goes on, and every accepted byte arrives in order. */
static void send_limit_answers_busy_without_loss(void **state) {
  stest *s = calloc(1, sizeof *s);
  uint64_t accepted = 0, before_busy;
  char buf[REC * 256];
  uint32_t seq = 0;
  int r, busy = 0;
  (void)state;
  s->nconns = 1;
  s->pause_reading = 1;
  s->t.opts.send_limit = 64 * 1024;
  s->t.start = st_start;
  s->t.finish = st_finish;
  eh_new(&s->t);
  {
    nio_engine_hooks h = eh_hooks(&s->t);
    assert_int_equal(nio__engine_start(s->t.e, &h), 0);
  }
  assert_true(wait_ready(s));
  /* Until EBUSY holds after a pause: the kernel's buffers may still take
  ** some of the queue meanwhile (they grow as they fill). */
  while (!busy) {
    for (int i = 0; i < 256; i++) rec_make(buf + i * REC, 0, seq + i, 0);
    r = nio_send(s->ids[0], buf, sizeof buf);
    if (r == NIO_EBUSY) {
      th_usleep(50000);
      r = nio_send(s->ids[0], buf, sizeof buf);
      busy = r == NIO_EBUSY;
    }
    if (!busy) {
      assert_int_equal(r, 0);
      seq += 256;
      accepted += sizeof buf;
      if (accepted > (256u << 20)) th_fail("expected EBUSY within 256 MiB");
    }
  }
  before_busy = accepted;
  /* Send 4 MiB more, waiting out EBUSY. */
  s->expect = (before_busy + (4u << 20)) / REC;
  assert_int_equal(nio__engine_call(s->t.e, resume_reading, s), 0);
  while (accepted < before_busy + (4u << 20)) {
    for (int i = 0; i < 256; i++) rec_make(buf + i * REC, 0, seq + i, 0);
    r = nio_send(s->ids[0], buf, sizeof buf);
    if (r == NIO_EBUSY) {
      th_usleep(200);
      continue;
    }
    assert_int_equal(r, 0);
    seq += 256;
    accepted += sizeof buf;
  }
  s->t.result = nio__engine_join(s->t.e);
  if (s->t.failed) th_fail("%s", s->t.msg);
  assert_int_equal(s->cl[0].bytes, accepted);
  print_message("send limit 64 KiB: EBUSY after %llu bytes (kernel buffers "
                "included), then %llu bytes in all, in order\n",
                (unsigned long long)before_busy, (unsigned long long)accepted);
  eh_free(&s->t);
  free(s);
}

/* ---- posts ------------------------------------------------------------- */

#define POSTERS 3
#define POSTS 20000

typedef struct ptest {
  eh_test t;
  int next[POSTERS];
  int got, bad;
  nio_msg *kept[64];
  int nkept, keep;
  atomic_int go;
} ptest;

static void post_message(eh_test *t, nio_msg *m) {
  ptest *p = (ptest *)t;
  size_t len;
  const char *d = nio__msg_data(m, &len);
  int who, seq;
  if (p->keep && p->nkept < 64) {
    p->kept[p->nkept++] = m;
    return;
  }
  if (len != 2 * sizeof(int) || nio__msg_kind(m) != NIO_POST_VALUES) {
    p->bad++;
  } else {
    memcpy(&who, d, sizeof who);
    memcpy(&seq, d + sizeof who, sizeof seq);
    if (who < 0 || who >= POSTERS || seq != p->next[who])
      p->bad++;
    else
      p->next[who]++;
  }
  nio__msg_free(t->e, m);
  if (++p->got == POSTERS * POSTS) t->done = 1;
}

typedef struct poster {
  ptest *p;
  int idx;
} poster;

static void poster_thread(void *arg) {
  poster *d = arg;
  int buf[2];
  while (!atomic_load(&d->p->go)) th_usleep(100);
  for (int i = 0; i < POSTS; i++) {
    int r;
    buf[0] = d->idx;
    buf[1] = i;
    while ((r = nio__engine_post(d->p->t.e, NIO_POST_VALUES, buf,
                                 sizeof buf)) == NIO_EBUSY)
      th_usleep(50);
    if (r != 0) return;
  }
}

static int post_start(eh_test *t) {
  atomic_store(&((ptest *)t)->go, 1);
  t->stage = "every post";
  return 0;
}

static void posts_from_threads_arrive_in_order(void **state) {
  ptest *p = calloc(1, sizeof *p);
  nio_thread *th[POSTERS];
  poster d[POSTERS];
  nio_engine_hooks h;
  (void)state;
  p->t.start = post_start;
  p->t.message = post_message;
  p->t.opts.post_limit = 4096; /* small: the posters meet EBUSY */
  p->t.timeout_ms = 60000;
  eh_new(&p->t);
  h = eh_hooks(&p->t);
  assert_int_equal(nio__engine_start(p->t.e, &h), 0);
  for (int i = 0; i < POSTERS; i++) {
    d[i].p = p;
    d[i].idx = i;
    assert_int_equal(nio__thread_start(&th[i], poster_thread, &d[i]), 0);
  }
  for (int i = 0; i < POSTERS; i++) nio__thread_join(th[i]);
  p->t.result = nio__engine_join(p->t.e);
  if (p->t.failed) th_fail("%s", p->t.msg);
  assert_int_equal(p->bad, 0);
  assert_int_equal(p->got, POSTERS * POSTS);
  /* After the end, posts are refused. */
  assert_int_equal(nio__engine_post(p->t.e, NIO_POST_RAW, "x", 1), NIO_ECLOSED);
  eh_free(&p->t);
  free(p);
}

static void kept_turn(eh_test *t) {
  ptest *p = (ptest *)t;
  if (p->nkept == 64 || atomic_load(&p->go) == 2) t->done = 1;
}

static void kept_finish(eh_test *t) {
  ptest *p = (ptest *)t;
  for (int i = 0; i < p->nkept; i++) nio__msg_free(t->e, p->kept[i]);
}

/* Posts the owner keeps count until it frees them: a poster whose posts
** are never received gets EBUSY instead of growing the engine's memory. */
static void unreceived_posts_are_bounded(void **state) {
  ptest *p = calloc(1, sizeof *p);
  nio_engine_hooks h;
  int r = 0, n = 0;
  char buf[1000];
  (void)state;
  memset(buf, 'p', sizeof buf);
  p->keep = 1;
  p->t.message = post_message;
  p->t.turn = kept_turn;
  p->t.finish = kept_finish;
  p->t.opts.post_limit = 16 * 1024;
  eh_new(&p->t);
  h = eh_hooks(&p->t);
  assert_int_equal(nio__engine_start(p->t.e, &h), 0);
  while (n < 1000 && (r = nio_post(p->t.e, buf, sizeof buf)) == 0) n++;
  assert_int_equal(r, NIO_EBUSY);
  if (n < 10 || n > 17)
    th_fail("post limit 16 KiB, posts of 1000 bytes: expected 10..17 "
            "accepted, got %d",
            n);
  atomic_store(&p->go, 2);
  nio__engine_stop(p->t.e); /* wake it to see go */
  p->t.result = nio__engine_join(p->t.e);
  if (p->t.failed) th_fail("%s", p->t.msg);
  assert_int_equal(p->nkept, n);
  eh_free(&p->t);
  free(p);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(four_threads_into_100_conns_in_order),
      cmocka_unit_test(mixed_sizes_keep_their_order),
      cmocka_unit_test(bytes_sent_before_a_post_are_queued_when_it_arrives),
      cmocka_unit_test(dead_and_stale_ids_are_closed),
      cmocka_unit_test(send_limit_answers_busy_without_loss),
      cmocka_unit_test(sends_racing_with_close_are_accounted),
      cmocka_unit_test(engine_stop_and_free_while_threads_send),
      cmocka_unit_test(posts_from_threads_arrive_in_order),
      cmocka_unit_test(unreceived_posts_are_bounded),
  };
  th_init(4096);
  return cmocka_run_group_tests(tests, NULL, NULL);
}
