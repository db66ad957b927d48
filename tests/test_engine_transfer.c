/*
** test_engine_transfer.c: bulk data through the engine -- 64 MiB each way
** with checksums, sends the kernel takes in parts, the low-water
** NIO_EV_WRITE, and small writes coalesced into growing chunks.
*/
#include "engine_helpers.h"
#include "engine/internal.h"

#define MIB (1024ull * 1024)
#define HIGH_WATER (1 * MIB)

/* The checksum of the first len bytes of th_pattern's stream. */
static uint64_t pattern_hash(uint64_t len) {
  static char buf[1 << 20];
  uint64_t h = TH_HASH_INIT, off = 0;
  while (off < len) {
    size_t n = len - off < sizeof buf ? (size_t)(len - off) : sizeof buf;
    th_pattern(buf, n, off);
    h = th_hash(h, buf, n);
    off += n;
  }
  return h;
}

/* One end of a bulk transfer: writes total bytes of the pattern, reads
** and checksums what the other end writes. */
typedef struct end {
  struct xfer *x;
  nio_conn *c;
  uint64_t sent, total;
  uint64_t got, hash;
  int nwrites, nrefs, eof;
  eh_frees frees;
} end;

typedef struct xfer {
  eh_test t;
  nio_listener *l;
  end a, b; /* a: the connecting end, b: the accepted end */
  uint64_t total;
} xfer;

static void end_pump(end *d) {
  int r = eh_pump(d->c, HIGH_WATER, &d->sent, d->total, &d->nwrites, &d->nrefs,
                  &d->frees);
  EH_CHECK(&d->x->t, r == 0, "write: expected 0, got %s", nio_err_name(r));
}

static void xfer_check_done(xfer *x) {
  if (x->a.got == x->total && x->b.got == x->total && x->a.c->queued == 0 &&
      x->b.c->queued == 0)
    x->t.done = 1;
}

static void end_cb(nio_conn *c, int ev) {
  end *d = c->udata;
  xfer *x = d->x;
  if (!EH_CHECK(&x->t, c->err == 0, "transfer: expected no error, got %s",
                nio_err_name(c->err)))
    return;
  if (ev & (NIO_EV_CONNECT | NIO_EV_WRITE)) end_pump(d);
  if (ev & NIO_EV_READ) {
    size_t n;
    const char *p = nio__conn_input(c, &n);
    EH_CHECK(&x->t, !c->eof, "transfer: unexpected EOF after %llu bytes",
             (unsigned long long)d->got);
    d->hash = th_hash(d->hash, p, n);
    d->got += n;
    nio__conn_consume(c, n);
  }
  xfer_check_done(x);
}

static void xfer_listener_cb(nio_listener *l, int ev) {
  xfer *x = l->udata;
  nio_conn *c = nio__listener_accept(l, end_cb, &x->b);
  (void)ev;
  if (c == NULL) return;
  EH_CHECK(&x->t, x->b.c == NULL, "accept: expected one connection");
  x->b.c = c;
  end_pump(&x->b);
}

static int xfer_start(eh_test *t) {
  xfer *x = (xfer *)t;
  nio_addr a;
  t->stage = "64 MiB each way";
  if ((x->l = eh_listen(t, &a, 0, xfer_listener_cb, x)) == NULL) return 0;
  x->a.c = eh_connect(t, &a, end_cb, &x->a);
  return 0;
}

static void xfer_finish(eh_test *t) {
  xfer *x = (xfer *)t;
  if (x->a.c) nio__conn_close(x->a.c, 0);
  if (x->b.c) nio__conn_close(x->b.c, 0);
  if (x->l) nio__listener_close(x->l);
}

static void transfer_64mib_each_way_with_checksum(void **state) {
  xfer *x = calloc(1, sizeof *x);
  uint64_t want;
  (void)state;
  x->total = 64 * MIB;
  x->a.x = x->b.x = x;
  x->a.total = x->b.total = x->total;
  x->a.hash = x->b.hash = TH_HASH_INIT;
  x->t.start = xfer_start;
  x->t.finish = xfer_finish;
  x->t.timeout_ms = 120000;
  eh_run(&x->t);
  want = pattern_hash(x->total);
  assert_int_equal(x->a.got, x->total);
  assert_int_equal(x->b.got, x->total);
  if (x->a.hash != want || x->b.hash != want)
    fail_msg("checksum: expected %llx both ways, got a %llx, b %llx",
             (unsigned long long)want, (unsigned long long)x->a.hash,
             (unsigned long long)x->b.hash);
  /* Every referenced chunk was released exactly once. */
  assert_int_equal(x->a.frees.calls, x->a.nrefs);
  assert_int_equal(x->b.frees.calls, x->b.nrefs);
  free(x);
}

/* ---- a writer and a paused reader ------------------------------------ */

/* The tests below with a reader held back: a connects to a listener whose
** accepted end b receives one byte, then nothing until on_resume runs
** resume_ns later. The tests' structs start with it (their udata). */
typedef struct paused {
  eh_test t;
  nio_listener *l;
  nio_conn *a, *b;
  nio_timer resume;
  uint64_t resume_ns;
  nio_conn_cb a_cb, b_cb;
  nio_timer_cb on_resume;
  int resumed;        /* the reader takes input (paused_resume_reader) */
  uint64_t got, hash; /* what it took, and its checksum */
} paused;

/* The reader's part of b's callback: once resumed, take and checksum what
** arrived. 1 if it read. */
static int paused_read(paused *s, nio_conn *c, int ev) {
  size_t n;
  const char *p;
  if (!(ev & NIO_EV_READ) || !s->resumed) return 0;
  p = nio__conn_input(c, &n);
  s->hash = th_hash(s->hash, p, n);
  s->got += n;
  nio__conn_consume(c, n);
  return 1;
}

/* From on_resume: let b receive again and take what is already there. */
static void paused_resume_reader(paused *s, const char *stage) {
  s->resumed = 1;
  nio__conn_want(s->b, 64 * 1024);
  s->b_cb(s->b, NIO_EV_READ);
  s->t.stage = stage;
}

static void paused_listener_cb(nio_listener *l, int ev) {
  paused *s = l->udata;
  (void)ev;
  if ((s->b = nio__listener_accept(l, s->b_cb, s)) == NULL) return;
  /* Hold the reader back: want 1 byte means one receive, then nothing. */
  nio__conn_want(s->b, 1);
  s->resume.data = s;
  nio__timer_start(s->t.e, &s->resume, s->resume_ns, s->on_resume);
}

static int paused_start(eh_test *t) {
  paused *s = (paused *)t;
  nio_addr a;
  t->stage = "the reader to resume";
  if ((s->l = eh_listen(t, &a, 0, paused_listener_cb, s)) == NULL) return 0;
  s->a = eh_connect(t, &a, s->a_cb, s);
  return 0;
}

static void paused_finish(eh_test *t) {
  paused *s = (paused *)t;
  nio__timer_stop(t->e, &s->resume);
  if (s->a) nio__conn_close(s->a, 0);
  if (s->b) nio__conn_close(s->b, 0);
  if (s->l) nio__listener_close(s->l);
}

/* Run the test whose struct starts with p (its other fields set). */
static void paused_run(paused *p, unsigned resume_ms, nio_conn_cb a_cb,
                       nio_conn_cb b_cb, nio_timer_cb on_resume) {
  p->t.start = paused_start;
  p->t.finish = paused_finish;
  p->t.timeout_ms = 60000;
  p->resume_ns = resume_ms * 1000000ull;
  p->a_cb = a_cb;
  p->b_cb = b_cb;
  p->on_resume = on_resume;
  p->hash = TH_HASH_INIT;
  eh_run(&p->t);
}

/* ---- a large send the kernel takes in parts ------------------------- */

#define BIG (16 * MIB)

typedef struct part {
  paused p;
  eh_frees frees;
  int frees_before_flushed, flushed;
  uint64_t queued_while_paused;
  int write_events;
  size_t lowat;
  int over_lowat_events, zero_events;
} part;

static void part_b_cb(nio_conn *c, int ev) {
  part *s = c->udata;
  if (paused_read(&s->p, c, ev) && s->flushed && s->p.got == BIG)
    s->p.t.done = 1;
}

static void part_resume(nio_timer *tm) {
  part *s = tm->data;
  s->queued_while_paused = s->p.a->queued;
  paused_resume_reader(&s->p, "the paused reader to drain the send");
}

static void part_a_cb(nio_conn *c, int ev) {
  part *s = c->udata;
  if (!EH_CHECK(&s->p.t, c->err == 0, "writer: expected no error, got %s",
                nio_err_name(c->err)))
    return;
  if (ev & NIO_EV_CONNECT) {
    char *p = malloc(BIG);
    int r;
    th_pattern(p, BIG, 0);
    nio__conn_set_lowat(c, s->lowat);
    r = nio__conn_write(c, p, BIG, eh_free_cb, &s->frees);
    EH_CHECK(&s->p.t, r == 0, "write 16 MiB: expected 0, got %s",
             nio_err_name(r));
  }
  if (ev & NIO_EV_WRITE) {
    s->write_events++;
    if (c->queued > s->lowat) s->over_lowat_events++;
    if (c->queued == 0 && !s->flushed) {
      s->zero_events++;
      s->flushed = 1;
      s->frees_before_flushed = s->frees.calls;
      if (s->p.got == BIG) s->p.t.done = 1;
    }
  }
}

static void large_send_resumes_across_short_writes(void **state) {
  part s;
  (void)state;
  memset(&s, 0, sizeof s);
  s.lowat = 256 * 1024;
  paused_run(&s.p, 200, part_a_cb, part_b_cb, part_resume);
  if (s.queued_while_paused == 0)
    fail_msg("paused reader: expected the 16 MiB send to be partly queued, "
             "it was all taken");
  assert_int_equal(s.p.got, BIG);
  if (s.p.hash != pattern_hash(BIG))
    fail_msg("checksum of the 16 MiB send: expected the pattern's");
  /* The chunk is released once, when all of it went, before the flush
  ** event. */
  assert_int_equal(s.frees.calls, 1);
  assert_int_equal(s.frees_before_flushed, 1);
  if (s.over_lowat_events)
    fail_msg("NIO_EV_WRITE: expected only at or below the low-water mark, "
             "%d came above it",
             s.over_lowat_events);
  assert_int_equal(s.zero_events, 1);
}

/* ---- water mark: many chunks, events only at/below lowat ------------- */

static void lowat_a_cb(nio_conn *c, int ev) {
  part *s = c->udata;
  if (!EH_CHECK(&s->p.t, c->err == 0, "writer: expected no error, got %s",
                nio_err_name(c->err)))
    return;
  if (ev & NIO_EV_CONNECT) {
    uint64_t off = 0;
    nio__conn_set_lowat(c, s->lowat);
    /* 256 referenced chunks of 64 KiB: sends span many chunks, and the
    ** queue passes the mark in steps. */
    for (int i = 0; i < 256; i++, off += 65536) {
      char *p = malloc(65536);
      th_pattern(p, 65536, off);
      nio__conn_write(c, p, 65536, eh_free_cb, &s->frees);
    }
  }
  if (ev & NIO_EV_WRITE) {
    s->write_events++;
    if (c->queued > s->lowat) s->over_lowat_events++;
    if (!s->p.resumed && c->queued > 0) s->over_lowat_events += 1000;
    if (c->queued == 0 && !s->flushed) {
      s->zero_events++;
      s->flushed = 1;
      s->frees_before_flushed = s->frees.calls;
      if (s->p.got == BIG) s->p.t.done = 1;
    }
  }
}

static void write_event_at_low_water_mark_and_flush(void **state) {
  part s;
  (void)state;
  memset(&s, 0, sizeof s);
  s.lowat = 1 * MIB;
  paused_run(&s.p, 200, lowat_a_cb, part_b_cb, part_resume);
  assert_int_equal(s.p.got, BIG);
  if (s.p.hash != pattern_hash(BIG))
    fail_msg("checksum of 256 chunks: expected the pattern's");
  assert_int_equal(s.frees.calls, 256);
  assert_int_equal(s.frees_before_flushed, 256);
  if (s.over_lowat_events)
    fail_msg("NIO_EV_WRITE: expected only at or below the 1 MiB mark and "
             "not while the reader was paused (%d bad events)",
             s.over_lowat_events);
  assert_int_equal(s.zero_events, 1);
}

/* ---- small copies: growing chunks, the stream intact ----------------- */

#define GROW_TOTAL (8 * MIB)

typedef struct grow {
  paused p;
  int nchunks;
  size_t first_alloc, max_alloc;
} grow;

static void grow_b_cb(nio_conn *c, int ev) {
  grow *s = c->udata;
  if (paused_read(&s->p, c, ev) && s->p.got == GROW_TOTAL &&
      s->p.a->queued == 0)
    s->p.t.done = 1;
}

static void grow_resume(nio_timer *tm) {
  grow *s = tm->data;
  paused_resume_reader(&s->p,
                       "the paused reader to drain 8 MiB of small writes");
}

static void grow_a_cb(nio_conn *c, int ev) {
  static const size_t sizes[] = {1, 7, 64, 100, 300, 511};
  grow *s = c->udata;
  if (!EH_CHECK(&s->p.t, c->err == 0, "writer: expected no error, got %s",
                nio_err_name(c->err)))
    return;
  if (ev & NIO_EV_CONNECT) {
    char tmp[512];
    uint64_t sent = 0;
    int k = 0;
    /* All of it queued in this callback: no send completes meanwhile. */
    while (sent < GROW_TOTAL) {
      size_t n = sizes[k++ % (int)(sizeof sizes / sizeof sizes[0])];
      int r;
      if (n > GROW_TOTAL - sent) n = (size_t)(GROW_TOTAL - sent);
      th_pattern(tmp, n, sent);
      r = nio__conn_write(c, tmp, n, NULL, NULL);
      if (!EH_CHECK(&s->p.t, r == 0,
                    "write %u bytes at %llu: expected 0, got %s", (unsigned)n,
                    (unsigned long long)sent, nio_err_name(r)))
        return;
      sent += n;
    }
    for (nio_chunk *ch = ((conn *)c)->qhead; ch; ch = ch->next) {
      size_t alloc = sizeof *ch + ch->cap;
      if (s->nchunks++ == 0) s->first_alloc = alloc;
      if (alloc > s->max_alloc) s->max_alloc = alloc;
    }
  }
  if ((ev & NIO_EV_WRITE) && c->queued == 0 && s->p.got == GROW_TOTAL)
    s->p.t.done = 1;
}

static void small_writes_fill_growing_chunks_and_arrive_intact(void **state) {
  grow s;
  (void)state;
  memset(&s, 0, sizeof s);
  paused_run(&s.p, 100, grow_a_cb, grow_b_cb, grow_resume);
  assert_int_equal(s.p.got, GROW_TOTAL);
  if (s.p.hash != pattern_hash(GROW_TOTAL))
    fail_msg("checksum of 8 MiB in small writes: expected the pattern's");
  /* The first chunk is the small one a connection that talks in small
  ** messages keeps; those after a full one double up to 64 KiB, so 8 MiB
  ** takes about 130 chunks (2 KiB ones would take over 4,000). */
  assert_int_equal(s.first_alloc, 2048);
  assert_int_equal(s.max_alloc, 64 * 1024);
  if (s.nchunks > 140)
    fail_msg("8 MiB of small writes: expected at most 140 chunks, got %d",
             s.nchunks);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(transfer_64mib_each_way_with_checksum),
      cmocka_unit_test(large_send_resumes_across_short_writes),
      cmocka_unit_test(write_event_at_low_water_mark_and_flush),
      cmocka_unit_test(small_writes_fill_growing_chunks_and_arrive_intact),
  };
  th_init(0);
  return cmocka_run_group_tests(tests, NULL, NULL);
}
