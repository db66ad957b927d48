/*
** test_tls_link.c: the OpenSSL netio is built with links and works -- on
** Linux Debian's libssl, on Windows the static libraries
** tools/win-openssl.sh cross-builds, run under Wine. A client and a server
** handshake in one thread over memory BIOs (no network: the TLS specs do
** that over real sockets), with a certificate made here (no key material
** in the tree); on Windows, nio__tls_system_store fills a context's store
** from the ROOT system store.
*/
#include <stdio.h>
#include <string.h>
#ifdef _WIN32
/* Before OpenSSL's headers, which undo wincrypt.h's X509_NAME and others. */
#include <windows.h>
#include <wincrypt.h>
#endif
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include "helpers.h"
#ifdef _WIN32
/* csrc/engine/tls_store_win.c */
int nio__tls_system_store(SSL_CTX *ctx);
int nio__tls_add_cert_store(SSL_CTX *ctx, HCERTSTORE h);
#endif

/* The OpenSSL error queue as one line, for failure messages. */
static const char *ssl_errors(void) {
  static char buf[512];
  size_t n = 0;
  unsigned long e;
  buf[0] = '\0';
  while ((e = ERR_get_error()) != 0 && n + 2 < sizeof buf) {
    if (n) buf[n++] = ';';
    ERR_error_string_n(e, buf + n, sizeof buf - n);
    n += strlen(buf + n);
  }
  return buf;
}

/* A self-signed EC P-256 certificate named cn, valid from `from` to `to`
** seconds from now; cert_make: "localhost", valid for a day. */
typedef struct cert {
  EVP_PKEY *key;
  X509 *x509;
} cert;

static void cert_make_as(cert *c, const char *cn, long from, long to) {
  c->key = EVP_EC_gen("P-256");
  if (c->key == NULL) th_fail("expected an EC P-256 key: %s", ssl_errors());
  X509 *x = X509_new();
  assert_non_null(x);
  assert_int_equal(X509_set_version(x, X509_VERSION_3), 1);
  ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
  X509_gmtime_adj(X509_getm_notBefore(x), from);
  X509_gmtime_adj(X509_getm_notAfter(x), to);
  X509_NAME *name = X509_get_subject_name(x);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             (const unsigned char *)cn, -1, -1, 0);
  X509_set_issuer_name(x, name);
  X509_set_pubkey(x, c->key);
  X509V3_CTX v3;
  X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
  X509_EXTENSION *san =
      X509V3_EXT_conf_nid(NULL, &v3, NID_subject_alt_name, "DNS:localhost");
  assert_non_null(san);
  X509_add_ext(x, san, -1);
  X509_EXTENSION_free(san);
  if (X509_sign(x, c->key, EVP_sha256()) == 0)
    th_fail("expected the certificate to be signed: %s", ssl_errors());
  c->x509 = x;
}

static void cert_make(cert *c) {
  cert_make_as(c, "localhost", -60, 24 * 3600);
}

static void cert_free(cert *c) {
  X509_free(c->x509);
  EVP_PKEY_free(c->key);
}

/* A server context with c; a client context verifying peers, trusting c
** when trust is set (and nothing otherwise). */
static SSL_CTX *server_ctx(const cert *c) {
  SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
  assert_non_null(ctx);
  if (SSL_CTX_use_certificate(ctx, c->x509) != 1 ||
      SSL_CTX_use_PrivateKey(ctx, c->key) != 1)
    th_fail("expected the server to take its certificate: %s", ssl_errors());
  return ctx;
}

static SSL_CTX *client_ctx(const cert *trust) {
  SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
  assert_non_null(ctx);
  SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
  if (trust != NULL)
    assert_int_equal(
        X509_STORE_add_cert(SSL_CTX_get_cert_store(ctx), trust->x509), 1);
  return ctx;
}

/* A client and a server connected by memory BIOs, as the engine's filter
** does it: each SSL reads from its own BIO and writes to another; pump()
** moves what one wrote into what the other reads. The SSLs own the BIOs. */
typedef struct pair {
  SSL *c, *s;
  BIO *c_in, *c_out, *s_in, *s_out;
} pair;

static void pair_open(pair *p, SSL_CTX *cctx, SSL_CTX *sctx, const char *host) {
  p->c = SSL_new(cctx);
  p->s = SSL_new(sctx);
  assert_non_null(p->c);
  assert_non_null(p->s);
  p->c_in = BIO_new(BIO_s_mem());
  p->c_out = BIO_new(BIO_s_mem());
  p->s_in = BIO_new(BIO_s_mem());
  p->s_out = BIO_new(BIO_s_mem());
  SSL_set_bio(p->c, p->c_in, p->c_out);
  SSL_set_bio(p->s, p->s_in, p->s_out);
  SSL_set_connect_state(p->c);
  SSL_set_accept_state(p->s);
  SSL_set_tlsext_host_name(p->c, host);
  assert_int_equal(SSL_set1_host(p->c, host), 1);
}

static void pair_close(pair *p) {
  SSL_free(p->c);
  SSL_free(p->s);
}

/* Bytes moved from one SSL's output to the other's input. */
static size_t move(BIO *from, BIO *to) {
  char buf[16384];
  size_t moved = 0;
  int n;
  while ((n = BIO_read(from, buf, (int)sizeof buf)) > 0) {
    assert_int_equal(BIO_write(to, buf, n), n);
    moved += (size_t)n;
  }
  return moved;
}

static size_t pump(pair *p) {
  return move(p->c_out, p->s_in) + move(p->s_out, p->c_in);
}

/* Drive both handshakes until both finish or nothing moves any more; 1
** when both finished. A side that fails returns at once, leaving its
** reason on the error queue (the other side's next call would clear it). */
static int handshake(pair *p) {
  for (int round = 0; round < 32; round++) {
    int rc = SSL_do_handshake(p->c);
    if (rc != 1 && SSL_get_error(p->c, rc) != SSL_ERROR_WANT_READ) return 0;
    int rs = SSL_do_handshake(p->s);
    if (rs != 1 && SSL_get_error(p->s, rs) != SSL_ERROR_WANT_READ) return 0;
    if (rc == 1 && rs == 1) return 1;
    if (pump(p) == 0) return 0;
  }
  return 0;
}

/* n bytes written by one side arrive intact at the other. */
static void transfer(pair *p, SSL *from, SSL *to, int n) {
  static char out[16384], in[16384];
  uint64_t sent = TH_HASH_INIT, got = TH_HASH_INIT;
  int off = 0, recvd = 0;
  while (recvd < n) {
    if (off < n) {
      int k = n - off < (int)sizeof out ? n - off : (int)sizeof out;
      th_pattern(out, (size_t)k, (uint64_t)off);
      sent = th_hash(sent, out, (size_t)k);
      if (SSL_write(from, out, k) != k)
        th_fail("expected SSL_write of %d bytes: %s", k, ssl_errors());
      off += k;
    }
    pump(p);
    int r;
    while ((r = SSL_read(to, in, (int)sizeof in)) > 0) {
      got = th_hash(got, in, (size_t)r);
      recvd += r;
    }
    if (SSL_get_error(to, r) != SSL_ERROR_WANT_READ)
      th_fail("expected more plaintext after %d of %d bytes: %s", recvd, n,
              ssl_errors());
    if (off == n && recvd < n && pump(p) == 0)
      th_fail("expected %d bytes, the peer got %d and nothing moves", n, recvd);
  }
  assert_int_equal(recvd, n);
  if (sent != got) th_fail("expected the bytes received to be the bytes sent");
}

static void openssl_is_version_3_as_compiled(void **state) {
  (void)state;
  unsigned long v = OpenSSL_version_num();
  if ((v >> 28) != OPENSSL_VERSION_MAJOR)
    th_fail("expected the OpenSSL linked (%s) to be the major version "
            "compiled against (%s)",
            OpenSSL_version(OPENSSL_VERSION), OPENSSL_VERSION_TEXT);
  assert_true(OPENSSL_VERSION_MAJOR >= 3);
}

static void memory_bio_handshake_verifies_and_carries_data(void **state) {
  (void)state;
  cert c;
  cert_make(&c);
  SSL_CTX *sctx = server_ctx(&c), *cctx = client_ctx(&c);
  pair p;
  pair_open(&p, cctx, sctx, "localhost");
  if (!handshake(&p))
    th_fail("expected the handshake to complete: %s", ssl_errors());
  assert_int_equal(SSL_get_verify_result(p.c), X509_V_OK);
  if (SSL_version(p.c) != TLS1_3_VERSION)
    th_fail("expected TLS 1.3, got %s", SSL_get_version(p.c));
  /* 1 MiB each way: the record layer and the ciphers (assembly included,
  ** where it was built) work, not only the handshake. */
  transfer(&p, p.c, p.s, 1 << 20);
  transfer(&p, p.s, p.c, 1 << 20);
  pair_close(&p);
  SSL_CTX_free(cctx);
  SSL_CTX_free(sctx);
  cert_free(&c);
}

/* The failures a client must see, so that the test above cannot pass by
** not verifying: an untrusted self-signed peer, and a name mismatch. */
static void
memory_bio_handshake_refuses_untrusted_or_misnamed_peer(void **state) {
  (void)state;
  cert c;
  cert_make(&c);
  SSL_CTX *sctx = server_ctx(&c);
  struct {
    const cert *trust;
    const char *host;
    long want;
  } cases[] = {
      {NULL, "localhost", X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT},
      {&c, "example.org", X509_V_ERR_HOSTNAME_MISMATCH},
  };
  for (int i = 0; i < (int)(sizeof cases / sizeof cases[0]); i++) {
    SSL_CTX *cctx = client_ctx(cases[i].trust);
    pair p;
    pair_open(&p, cctx, sctx, cases[i].host);
    if (handshake(&p))
      th_fail("expected case %d (%s) to fail the handshake", i, cases[i].host);
    long got = SSL_get_verify_result(p.c);
    if (got != cases[i].want)
      th_fail("expected verify error \"%s\", got \"%s\"",
              X509_verify_cert_error_string(cases[i].want),
              X509_verify_cert_error_string(got));
    const char *errs = ssl_errors();
    if (strstr(errs, "certificate verify failed") == NULL)
      th_fail("expected \"certificate verify failed\" in \"%s\"", errs);
    pair_close(&p);
    SSL_CTX_free(cctx);
  }
  SSL_CTX_free(sctx);
  cert_free(&c);
}

#ifdef _WIN32
static int store_count(SSL_CTX *ctx) {
  STACK_OF(X509_OBJECT) *objs =
      X509_STORE_get0_objects(SSL_CTX_get_cert_store(ctx));
  return sk_X509_OBJECT_num(objs);
}

static void system_store_loads_windows_root_certificates(void **state) {
  (void)state;
  /* What the ROOT store holds, counted without the code under test. */
  HCERTSTORE h = CertOpenSystemStoreW(0, L"ROOT");
  if (h == NULL) th_fail("expected the ROOT system store to open");
  int windows = 0;
  const CERT_CONTEXT *cc = NULL;
  while ((cc = CertEnumCertificatesInStore(h, cc)) != NULL) windows++;
  CertCloseStore(h, 0);
  if (windows == 0) {
    print_message("skipped: the ROOT system store (Wine's) has no "
                  "certificates to load\n");
    skip();
  }

  SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
  assert_non_null(ctx);
  assert_int_equal(store_count(ctx), 0);
  int rc = nio__tls_system_store(ctx);
  if (rc != 0) th_fail("expected 0, got %d (%s)", rc, nio_strerror(rc));
  int loaded = store_count(ctx);
  print_message("ROOT store: %d certificates, %d loaded\n", windows, loaded);
  if (loaded == 0 || loaded > windows)
    th_fail("expected 1..%d certificates in the context's store, got %d",
            windows, loaded);

  /* What was loaded is usable: the roots verify as trust anchors. */
  X509_STORE *st = SSL_CTX_get_cert_store(ctx);
  STACK_OF(X509_OBJECT) *objs = X509_STORE_get0_objects(st);
  int anchors = 0;
  for (int i = 0; i < sk_X509_OBJECT_num(objs); i++) {
    X509 *x = X509_OBJECT_get0_X509(sk_X509_OBJECT_value(objs, i));
    if (x == NULL) continue;
    X509_STORE_CTX *vc = X509_STORE_CTX_new();
    assert_non_null(vc);
    assert_int_equal(X509_STORE_CTX_init(vc, st, x, NULL), 1);
    if (X509_verify_cert(vc) == 1) anchors++;
    X509_STORE_CTX_free(vc);
  }
  if (anchors == 0)
    th_fail("expected the loaded roots to verify as trust anchors: %s",
            ssl_errors());

  /* Loading again adds nothing and is not an error. */
  rc = nio__tls_system_store(ctx);
  if (rc != 0) th_fail("expected 0 the second time, got %d", rc);
  assert_int_equal(store_count(ctx), loaded);
  SSL_CTX_free(ctx);
}

/* The roots a store may hold that must not anchor TLS chains, in a memory
** store (Wine's ROOT store has expired roots but no restricted ones, and
** a test must not change the system's): only the unrestricted and the
** server-auth roots are loaded. */
static void cert_store_skips_expired_and_restricted_roots(void **state) {
  (void)state;
  static LPSTR server[] = {szOID_PKIX_KP_SERVER_AUTH};
  static LPSTR signing[] = {szOID_PKIX_KP_CODE_SIGNING};
  struct {
    const char *cn;
    long from, to;
    int eku; /* -1: no property; else how many of `oids` */
    LPSTR *oids;
    int loaded;
  } cases[] = {
      {"plain", -60, 3600, -1, NULL, 1},
      {"server auth", -60, 3600, 1, server, 1},
      {"code signing only", -60, 3600, 1, signing, 0},
      {"disabled", -60, 3600, 0, NULL, 0},
      {"expired", -7200, -3600, -1, NULL, 0},
      {"not yet valid", 3600, 7200, -1, NULL, 0},
  };
  enum { NCASES = sizeof cases / sizeof cases[0] };
  HCERTSTORE mem = CertOpenStore(CERT_STORE_PROV_MEMORY, 0, 0, 0, NULL);
  assert_non_null(mem);
  for (int i = 0; i < NCASES; i++) {
    cert c;
    cert_make_as(&c, cases[i].cn, cases[i].from, cases[i].to);
    unsigned char *der = NULL;
    int len = i2d_X509(c.x509, &der);
    assert_true(len > 0);
    const CERT_CONTEXT *cc = NULL;
    if (!CertAddEncodedCertificateToStore(mem, X509_ASN_ENCODING, der,
                                          (DWORD)len, CERT_STORE_ADD_ALWAYS,
                                          &cc))
      th_fail("expected \"%s\" added to a memory store", cases[i].cn);
    if (cases[i].eku >= 0) {
      CERT_ENHKEY_USAGE u = {(DWORD)cases[i].eku, cases[i].oids};
      if (!CertSetEnhancedKeyUsage(cc, &u))
        th_fail("expected \"%s\" to take its usage property", cases[i].cn);
    }
    CertFreeCertificateContext(cc);
    OPENSSL_free(der);
    cert_free(&c);
  }

  SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
  assert_non_null(ctx);
  int rc = nio__tls_add_cert_store(ctx, mem);
  if (rc != 0) th_fail("expected 0, got %d (%s)", rc, nio_strerror(rc));
  CertCloseStore(mem, 0);
  STACK_OF(X509_OBJECT) *objs =
      X509_STORE_get0_objects(SSL_CTX_get_cert_store(ctx));
  for (int i = 0; i < NCASES; i++) {
    int found = 0;
    for (int k = 0; k < sk_X509_OBJECT_num(objs); k++) {
      X509 *x = X509_OBJECT_get0_X509(sk_X509_OBJECT_value(objs, k));
      char cn[64];
      if (x != NULL &&
          X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName,
                                    cn, sizeof cn) > 0 &&
          strcmp(cn, cases[i].cn) == 0)
        found = 1;
    }
    if (found != cases[i].loaded)
      th_fail("expected the \"%s\" root %s", cases[i].cn,
              cases[i].loaded ? "loaded" : "left out");
  }
  assert_int_equal(sk_X509_OBJECT_num(objs), 2);
  SSL_CTX_free(ctx);
}
#endif

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(openssl_is_version_3_as_compiled),
      cmocka_unit_test(memory_bio_handshake_verifies_and_carries_data),
      cmocka_unit_test(memory_bio_handshake_refuses_untrusted_or_misnamed_peer),
#ifdef _WIN32
      cmocka_unit_test(system_store_loads_windows_root_certificates),
      cmocka_unit_test(cert_store_skips_expired_and_restricted_roots),
#endif
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
