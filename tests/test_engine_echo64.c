/*
** test_engine_echo64.c: 64 clients against an echo server on one engine,
** each sending messages of random sizes; every byte that comes back is
** checked against what was sent (byte for byte, not a checksum).
*/
#include "engine_helpers.h"

#define CLIENTS 64
#define MESSAGES 12

typedef struct echo64 echo64;

typedef struct client {
  echo64 *x;
  nio_conn *c;
  int index;
  uint64_t total; /* bytes this client sends (and must get back) */
  uint64_t got;
} client;

struct echo64 {
  eh_test t;
  nio_listener *l;
  client cl[CLIENTS];
  nio_conn *srv[CLIENTS];
  int nsrv;
  int complete; /* clients that got everything back */
  uint64_t rng;
  eh_frees frees;
};

/* xorshift64*: the same sizes on every run and backend. */
static uint32_t echo_rand(echo64 *x) {
  x->rng ^= x->rng >> 12;
  x->rng ^= x->rng << 25;
  x->rng ^= x->rng >> 27;
  return (uint32_t)((x->rng * 2685821657736338717ull) >> 32);
}

/* Each client's stream is a different stretch of th_pattern's stream. */
static uint64_t client_base(int index) {
  return (uint64_t)index << 36;
}

static int echo_send(echo64 *x, nio_conn *c, const char *p, size_t n) {
  char *copy = malloc(n);
  int r;
  if (!EH_CHECK(&x->t, copy != NULL, "malloc(%zu) failed", n)) return -1;
  memcpy(copy, p, n);
  r = nio__conn_write(c, copy, n, eh_free_cb, &x->frees);
  EH_CHECK(&x->t, r == 0, "write of %zu bytes: expected 0, got %s", n,
           nio_err_name(r));
  return r;
}

/* The server end: send back whatever arrives. */
static void server_cb(nio_conn *c, int ev) {
  echo64 *x = c->udata;
  size_t n;
  const char *p;
  if (!EH_CHECK(&x->t, c->err == 0, "server: expected no error, got %s",
                nio_err_name(c->err)))
    return;
  if (!(ev & NIO_EV_READ)) return;
  p = nio__conn_input(c, &n);
  if (n > 0 && echo_send(x, c, p, n) == 0) nio__conn_consume(c, n);
}

static void listener_cb(nio_listener *l, int ev) {
  echo64 *x = l->udata;
  nio_conn *c;
  (void)ev;
  while ((c = nio__listener_accept(l, server_cb, x)) != NULL) {
    if (!EH_CHECK(&x->t, x->nsrv < CLIENTS, "more than %d accepted", CLIENTS))
      return;
    x->srv[x->nsrv++] = c;
  }
}

/* Messages of 1 byte to 200 KB, most of them small. */
static void client_send_all(client *k) {
  echo64 *x = k->x;
  static char buf[200000];
  uint64_t off = 0;
  for (int i = 0; i < MESSAGES; i++) {
    uint32_t r = echo_rand(x);
    size_t n = 1 + (r % 4 == 0 ? (r >> 2) % sizeof buf : (r >> 2) % 2048);
    th_pattern(buf, n, client_base(k->index) + off);
    if (echo_send(x, k->c, buf, n) != 0) return;
    off += n;
  }
  k->total = off;
}

static void client_cb(nio_conn *c, int ev) {
  client *k = c->udata;
  echo64 *x = k->x;
  char want[4096];
  size_t n, done = 0;
  const char *p;
  if (!EH_CHECK(&x->t, c->err == 0, "client %d: expected no error, got %s",
                k->index, nio_err_name(c->err)))
    return;
  if (ev & NIO_EV_CONNECT) client_send_all(k);
  if (!(ev & NIO_EV_READ)) return;
  p = nio__conn_input(c, &n);
  if (!EH_CHECK(&x->t, !c->eof, "client %d: EOF after %llu of %llu bytes",
                k->index, (unsigned long long)k->got,
                (unsigned long long)k->total))
    return;
  if (!EH_CHECK(&x->t, k->got + n <= k->total,
                "client %d: got %llu bytes, sent only %llu", k->index,
                (unsigned long long)(k->got + n), (unsigned long long)k->total))
    return;
  while (done < n) {
    size_t m = n - done < sizeof want ? n - done : sizeof want;
    th_pattern(want, m, client_base(k->index) + k->got + done);
    if (memcmp(want, p + done, m) != 0) {
      size_t i = 0;
      while (want[i] == p[done + i]) i++;
      eh_failf(&x->t, __FILE__, __LINE__,
               "client %d: byte %llu differs from what was sent", k->index,
               (unsigned long long)(k->got + done + i));
      return;
    }
    done += m;
  }
  k->got += n;
  nio__conn_consume(c, n);
  if (k->got == k->total && ++x->complete == CLIENTS) x->t.done = 1;
}

static int echo_start(eh_test *t) {
  echo64 *x = (echo64 *)t;
  nio_addr a;
  t->stage = "64 clients to get their bytes back";
  if ((x->l = eh_listen(t, &a, CLIENTS, listener_cb, x)) == NULL) return 0;
  for (int i = 0; i < CLIENTS; i++) {
    x->cl[i].x = x;
    x->cl[i].index = i;
    x->cl[i].c = eh_connect(t, &a, client_cb, &x->cl[i]);
    if (x->cl[i].c == NULL) return 0;
  }
  return 0;
}

static void echo_finish(eh_test *t) {
  echo64 *x = (echo64 *)t;
  for (int i = 0; i < CLIENTS; i++)
    if (x->cl[i].c) nio__conn_close(x->cl[i].c, 0);
  for (int i = 0; i < x->nsrv; i++) nio__conn_close(x->srv[i], 0);
  if (x->l) nio__listener_close(x->l);
}

static void echo_64_clients_random_sizes_byte_for_byte(void **state) {
  echo64 *x = calloc(1, sizeof *x);
  uint64_t sent = 0;
  (void)state;
  assert_non_null(x);
  x->rng = 0x9E3779B97F4A7C15ull;
  x->t.start = echo_start;
  x->t.finish = echo_finish;
  x->t.timeout_ms = 60000;
  eh_run(&x->t);
  for (int i = 0; i < CLIENTS; i++) {
    if (x->cl[i].got != x->cl[i].total)
      th_fail("client %d: expected %llu bytes back, got %llu", i,
              (unsigned long long)x->cl[i].total,
              (unsigned long long)x->cl[i].got);
    sent += x->cl[i].total;
  }
  if (x->nsrv != CLIENTS)
    th_fail("expected %d accepted connections, got %d", CLIENTS, x->nsrv);
  print_message("echo64: %d clients, %llu bytes each way\n", CLIENTS,
                (unsigned long long)sent);
  free(x);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(echo_64_clients_random_sizes_byte_for_byte),
  };
  th_init(4096);
  return cmocka_run_group_tests(tests, NULL, NULL);
}
