/*
** test_engine_tls.c: the engine's TLS filter without Lua -- a TLS listener
** and a client that starts TLS on its connected stream, 16 MiB each way
** with checksums (writes of every size, plaintext queued during the
** handshake included), and a certificate the client does not trust. The
** certificate is made in memory for the run.
*/
#include "engine_helpers.h"

#ifdef NIO_HAVE_TLS
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#define MIB (1024ull * 1024)
#define HIGH_WATER (1 * MIB)

static EVP_PKEY *pkey;
static X509 *cert;

/* A self-signed certificate for "localhost", made once. */
static void make_cert(void) {
  X509_NAME *name;
  if (cert) return;
  pkey = EVP_EC_gen("P-256");
  cert = X509_new();
  if (pkey == NULL || cert == NULL) th_fail("cannot make a test key");
  ASN1_INTEGER_set(X509_get_serialNumber(cert), 1);
  X509_gmtime_adj(X509_getm_notBefore(cert), -3600);
  X509_gmtime_adj(X509_getm_notAfter(cert), 3600);
  X509_set_pubkey(cert, pkey);
  name = X509_get_subject_name(cert);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             (const unsigned char *)"localhost", -1, -1, 0);
  X509_set_issuer_name(cert, name);
  if (X509_sign(cert, pkey, EVP_sha256()) == 0)
    th_fail("cannot sign the test certificate");
}

/* A context of the engine: server (the test certificate) or client
** (trusting it when trust is set, else nothing). */
static nio_tls_ctx *make_ctx(int server, int trust) {
  SSL_CTX *ctx = SSL_CTX_new(TLS_method());
  nio_tls_ctx *t;
  make_cert();
  if (ctx == NULL) th_fail("SSL_CTX_new failed");
  if (server) {
    if (SSL_CTX_use_certificate(ctx, cert) != 1 ||
        SSL_CTX_use_PrivateKey(ctx, pkey) != 1)
      th_fail("cannot load the test certificate");
  } else {
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    if (trust) X509_STORE_add_cert(SSL_CTX_get_cert_store(ctx), cert);
  }
  if (nio__tls_ctx_new(ctx, server, &t) != 0) th_fail("nio__tls_ctx_new");
  SSL_CTX_free(ctx); /* t holds it */
  return t;
}

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

/* ---- 16 MiB each way ------------------------------------------------- */

typedef struct end {
  struct xfer *x;
  nio_conn *c;
  uint64_t sent, total, got, hash;
  int nwrites, nrefs, tls_events;
  eh_frees frees;
} end;

typedef struct xfer {
  eh_test t;
  nio_tls_ctx *sctx, *cctx;
  nio_listener *l;
  end a, b; /* a: the client, b: the accepted end */
  uint64_t total;
  int hs_writes; /* writes the client made before its handshake ended */
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
  const char *why = nio__conn_tls_error(c);
  if (!EH_CHECK(&x->t, c->err == 0, "transfer: expected no error, got %s (%s)",
                nio_err_name(c->err), why ? why : "-"))
    return;
  if (ev & NIO_EV_CONNECT) {
    nio_tls_opts o;
    int r;
    memset(&o, 0, sizeof o);
    o.servername = "localhost";
    o.verify = 1;
    r = nio__conn_starttls(c, x->cctx, &o);
    if (!EH_CHECK(&x->t, r == 0, "starttls: expected 0, got %s",
                  nio_err_name(r)))
      return;
    r = nio__conn_starttls(c, x->cctx, &o);
    EH_CHECK(&x->t, r == NIO_EALREADY,
             "a second starttls: expected EALREADY, got %s", nio_err_name(r));
    /* Written while handshaking: held, and counted in queued. */
    end_pump(d);
    x->hs_writes = d->nwrites;
    EH_CHECK(&x->t, c->queued >= d->sent,
             "queued during the handshake: expected at least the %llu bytes "
             "written, got %llu",
             (unsigned long long)d->sent, (unsigned long long)c->queued);
  }
  if (ev & NIO_EV_TLS) {
    d->tls_events++;
    EH_CHECK(&x->t, nio__conn_tls_state(c) == 2,
             "NIO_EV_TLS: expected the handshake done");
  }
  if (ev & NIO_EV_WRITE) end_pump(d);
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
  EH_CHECK(&x->t, nio__conn_tls_state(c) == 2,
           "accept: expected a connection whose handshake is done");
  x->b.c = c;
  end_pump(&x->b);
}

static int xfer_start(eh_test *t) {
  xfer *x = (xfer *)t;
  nio_addr a;
  t->stage = "16 MiB each way over TLS";
  if ((x->l = eh_listen(t, &a, 0, xfer_listener_cb, x)) == NULL) return 0;
  nio__listener_tls(x->l, x->sctx, 5000000000ull);
  x->a.c = eh_connect(t, &a, end_cb, &x->a);
  return 0;
}

static void xfer_finish(eh_test *t) {
  xfer *x = (xfer *)t;
  if (x->a.c) nio__conn_close(x->a.c, 0);
  if (x->b.c) nio__conn_close(x->b.c, 0);
  if (x->l) nio__listener_close(x->l);
}

static void tls_16mib_each_way_with_checksum(void **state) {
  xfer *x = calloc(1, sizeof *x);
  uint64_t want;
  (void)state;
  x->total = 16 * MIB;
  x->a.x = x->b.x = x;
  x->a.total = x->b.total = x->total;
  x->a.hash = x->b.hash = TH_HASH_INIT;
  x->sctx = make_ctx(1, 0);
  x->cctx = make_ctx(0, 1);
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
  assert_int_equal(x->a.tls_events, 1);
  if (x->hs_writes == 0)
    fail_msg("expected the client to write during its handshake");
  assert_int_equal(x->a.frees.calls, x->a.nrefs);
  assert_int_equal(x->b.frees.calls, x->b.nrefs);
  nio__tls_ctx_unref(x->sctx);
  nio__tls_ctx_unref(x->cctx);
  free(x);
}

/* ---- an untrusted certificate ---------------------------------------- */

typedef struct refuse {
  eh_test t;
  nio_tls_ctx *sctx, *cctx;
  nio_listener *l;
  nio_conn *c;
  int err, accepted;
  char why[256];
} refuse;

static void refuse_cb(nio_conn *c, int ev) {
  refuse *s = c->udata;
  if (ev & NIO_EV_CONNECT) {
    nio_tls_opts o;
    memset(&o, 0, sizeof o);
    o.servername = "localhost";
    o.verify = -1;
    EH_CHECK(&s->t, c->err == 0 && nio__conn_starttls(c, s->cctx, &o) == 0,
             "connect and starttls: expected 0");
    return;
  }
  if ((ev & NIO_EV_TLS) || c->err) {
    const char *why = nio__conn_tls_error(c);
    s->err = c->err;
    snprintf(s->why, sizeof s->why, "%s", why ? why : "");
    s->t.done = 1;
  }
}

static void refuse_listener_cb(nio_listener *l, int ev) {
  refuse *s = l->udata;
  nio_conn *c = nio__listener_accept(l, NULL, NULL);
  (void)ev;
  if (c) {
    s->accepted++;
    nio__conn_close(c, 0);
  }
}

static int refuse_start(eh_test *t) {
  refuse *s = (refuse *)t;
  nio_addr a;
  t->stage = "the client to refuse the certificate";
  if ((s->l = eh_listen(t, &a, 0, refuse_listener_cb, s)) == NULL) return 0;
  nio__listener_tls(s->l, s->sctx, 5000000000ull);
  s->c = eh_connect(t, &a, refuse_cb, s);
  return 0;
}

static void refuse_finish(eh_test *t) {
  refuse *s = (refuse *)t;
  if (s->c) nio__conn_close(s->c, 0);
  if (s->l) nio__listener_close(s->l);
}

static void tls_untrusted_certificate_fails_with_ecert(void **state) {
  refuse s;
  (void)state;
  memset(&s, 0, sizeof s);
  s.sctx = make_ctx(1, 0);
  s.cctx = make_ctx(0, 0);
  s.t.start = refuse_start;
  s.t.finish = refuse_finish;
  s.t.timeout_ms = 10000;
  eh_run(&s.t);
  if (s.err != NIO_ECERT)
    fail_msg("expected NIO_ECERT, got %s", nio_err_name(s.err));
  if (strncmp(s.why, "certificate verify failed: ", 27) != 0)
    fail_msg("expected \"certificate verify failed: ...\", got \"%s\"", s.why);
  assert_int_equal(s.accepted, 0);
  nio__tls_ctx_unref(s.sctx);
  nio__tls_ctx_unref(s.cctx);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(tls_16mib_each_way_with_checksum),
      cmocka_unit_test(tls_untrusted_certificate_fails_with_ecert),
  };
  int r;
  th_init(0);
  r = cmocka_run_group_tests(tests, NULL, NULL);
  X509_free(cert);
  EVP_PKEY_free(pkey);
  return r;
}

#else /* !NIO_HAVE_TLS */

int main(void) {
  fprintf(stderr, "test_engine_tls: built without TLS; skipping\n");
  return 77;
}

#endif
