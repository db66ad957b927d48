/*
** tls.c: TLS as a filter inside a connection, with OpenSSL through memory
** BIOs: ciphertext from the receive completions is written into the read
** BIO and decrypted into the input buffer the recv patterns read; what the
** owner or outside senders write is encrypted and the write BIO's bytes go
** to the ordinary output queue. The port and its backends never see TLS,
** so the same code runs over io_uring, epoll and IOCP.
*/
#ifdef NIO_HAVE_TLS
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include "internal.h"
#include "../util/log.h"

/* Plaintext is encrypted in pieces of this size, each flushed to the
** output queue before the next, so the write BIO never holds a whole
** large send twice. */
#define TLS_WRITE_PIECE ((size_t)256 << 10)
/* Sessions a client context keeps for resumption (by key, most recent
** first). */
#define TLS_SESSIONS 64

/* A cached client session: owned by its context's list. */
typedef struct tls_sess {
  struct tls_sess *next;
  SSL_SESSION *s; /* one reference, ours */
  char key[];
} tls_sess;

/* Made by nio__tls_ctx_new, freed with its last reference (the creator's
** and one per connection that uses it). Worker thread of its engine. */
struct nio_tls_ctx {
  SSL_CTX *ctx; /* one reference, ours */
  int refs;
  int server;
  tls_sess *sessions;
  int nsess;
};

/*
** A connection's TLS state: allocated by nio__conn_starttls, freed by the
** sweep with the connection (nio__tls_free); the SSL owns both BIOs.
*/
struct conn_tls {
  SSL *ssl;
  BIO *rbio, *wbio;
  nio_tls_ctx *ctx; /* a reference */
  nio_timer timer;  /* the handshake's deadline, when asked for */
  char *key;        /* clients: the session cache key (owned), or NULL */
  /* Plaintext written while handshaking, encrypted once it is done. */
  char *pend;
  size_t plen, pcap;
  char err[256]; /* why it failed, "" if it did not */
  unsigned done : 1, sockeof : 1, notified : 1;
  /* Failed at the TLS level with output queued (the alert): see
  ** nio__tls_alerting. */
  unsigned alert : 1;
};

/* ---- contexts ---------------------------------------------------------- */

static int tls_new_session(SSL *ssl, SSL_SESSION *s);

int nio__tls_ctx_new(void *ssl_ctx, int server, nio_tls_ctx **out) {
  nio_tls_ctx *t = calloc(1, sizeof *t);
  *out = NULL;
  if (t == NULL) return NIO_ENOMEM;
  if (!SSL_CTX_up_ref(ssl_ctx)) {
    free(t);
    return NIO_ENOMEM;
  }
  t->ctx = ssl_ctx;
  t->refs = 1;
  t->server = server != 0;
  if (!server) {
    /* Sessions go to our cache by key (servername or address), not
    ** OpenSSL's internal one, which clients do not look up. */
    SSL_CTX_set_session_cache_mode(
        t->ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
    SSL_CTX_sess_set_new_cb(t->ctx, tls_new_session);
  }
  *out = t;
  return 0;
}

void nio__tls_ctx_ref(nio_tls_ctx *t) {
  t->refs++;
}

void nio__tls_ctx_unref(nio_tls_ctx *t) {
  tls_sess *s, *next;
  if (t == NULL || --t->refs > 0) return;
  for (s = t->sessions; s; s = next) {
    next = s->next;
    SSL_SESSION_free(s->s);
    free(s);
  }
  SSL_CTX_free(t->ctx);
  free(t);
}

void *nio__tls_ctx_ssl(nio_tls_ctx *t) {
  return t->ctx;
}

int nio__tls_ctx_server(const nio_tls_ctx *t) {
  return t->server;
}

static tls_sess **tls_sess_find(nio_tls_ctx *t, const char *key) {
  tls_sess **p;
  for (p = &t->sessions; *p; p = &(*p)->next)
    if (strcmp((*p)->key, key) == 0) return p;
  return NULL;
}

/* OpenSSL made a session a client can resume (TLS 1.3: a ticket after the
** handshake): keep it under the connection's key, newest first. */
static int tls_new_session(SSL *ssl, SSL_SESSION *sess) {
  conn *c = SSL_get_app_data(ssl);
  nio_tls_ctx *t;
  tls_sess **p, *s;
  size_t n;
  if (c == NULL || c->tls == NULL || c->tls->key == NULL) return 0;
  t = c->tls->ctx;
  if ((p = tls_sess_find(t, c->tls->key)) != NULL) {
    s = *p;
    *p = s->next;
    SSL_SESSION_free(s->s);
    t->nsess--;
  } else {
    n = strlen(c->tls->key) + 1;
    if ((s = malloc(sizeof *s + n)) == NULL) return 0;
    memcpy(s->key, c->tls->key, n);
  }
  s->s = sess; /* returning 1 gives us the reference */
  s->next = t->sessions;
  t->sessions = s;
  if (++t->nsess > TLS_SESSIONS) { /* drop the oldest */
    for (p = &t->sessions; (*p)->next; p = &(*p)->next) {
    }
    SSL_SESSION_free((*p)->s);
    free(*p);
    *p = NULL;
    t->nsess--;
  }
  return 1;
}

/* ---- the filter -------------------------------------------------------- */

/* Empty the thread's error queue before an SSL call (SSL_get_error reads
** it). Usually it is empty already: ERR_peek_error only looks, while
** ERR_clear_error walks all its slots (5% of a TLS server's CPU per
** request when called before every read and write). */
static void tls_clear_errors(void) {
  if (ERR_peek_error() != 0) ERR_clear_error();
}

/* Move what TLS wrote (handshake messages, records, alerts) to the output
** queue, as ciphertext below the filter. */
static void tls_flush(conn *c) {
  char *p;
  long n = BIO_get_mem_data(c->tls->wbio, &p);
  int r;
  if (n <= 0) return;
  r = nio__conn_write_raw(c, p, (size_t)n, NULL, NULL, 1);
  (void)BIO_reset(c->tls->wbio);
  if (r < 0 && r != NIO_ECLOSED) nio__conn_set_err(c, r);
}

/* The last OpenSSL reason, or dflt. */
static const char *tls_reason(const char *dflt) {
  unsigned long e = ERR_peek_last_error();
  const char *r = e ? ERR_reason_error_string(e) : NULL;
  return r ? r : dflt;
}

static void tls_deliver(conn *c, int events, int deferred) {
  if (deferred)
    nio__engine_defer(c, events);
  else
    nio__conn_deliver(c, events);
}

/* The stream failed with err; msg says why. The alert TLS wrote to say
** why (a handshake refused, a bad record) still goes to the peer: sending
** goes on past the error for it, and a close after flush waits for it,
** so the peer learns the reason rather than seeing a bare close. Not
** after a timeout (the peer may not read) or a failed socket. */
static void tls_fail(conn *c, int err, const char *msg, int deferred) {
  conn_tls *t = c->tls;
  if (t->err[0] == '\0') snprintf(t->err, sizeof t->err, "%s", msg);
  nio__timer_stop(c->e, &t->timer);
  c->tlshold = 1;
  tls_flush(c);
  if ((err == NIO_ETLS || err == NIO_ECERT) && c->pub.err == 0 &&
      c->qhead != NULL)
    t->alert = 1;
  nio__conn_set_err(c, err);
  tls_deliver(c, NIO_EV_READ | NIO_EV_WRITE | (t->done ? 0 : NIO_EV_TLS),
              deferred);
}

/* A handshake that did not complete: the certificate's verdict when it
** was refused, else OpenSSL's reason. */
static void tls_handshake_failed(conn *c, int deferred) {
  conn_tls *t = c->tls;
  long v = SSL_get_verify_result(t->ssl);
  char msg[256];
  if (v != X509_V_OK) {
    snprintf(msg, sizeof msg, "certificate verify failed: %s",
             X509_verify_cert_error_string(v));
    tls_fail(c, NIO_ECERT, msg, deferred);
  } else {
    snprintf(msg, sizeof msg, "handshake failed: %s",
             tls_reason("the peer closed the connection"));
    tls_fail(c, NIO_ETLS, msg, deferred);
  }
}

static int tls_encrypt(conn *c, const char *p, size_t len);

/* Drive the handshake on; once done, NIO_EV_TLS. */
static void tls_handshake(conn *c, int deferred) {
  conn_tls *t = c->tls;
  int r, e;
  tls_clear_errors();
  r = SSL_do_handshake(t->ssl);
  tls_flush(c);
  if (r == 1) {
    t->done = 1;
    nio__timer_stop(c->e, &t->timer);
    if (t->plen) {
      nio__conn_set_queued(c, c->pub.queued - t->plen);
      tls_encrypt(c, t->pend, t->plen);
      free(t->pend);
      t->pend = NULL;
      t->plen = t->pcap = 0;
    }
    tls_deliver(c, NIO_EV_TLS, deferred);
    return;
  }
  e = SSL_get_error(t->ssl, r);
  if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
    if (t->sockeof) tls_handshake_failed(c, deferred);
    return;
  }
  tls_handshake_failed(c, deferred);
}

/* Decrypt into the input buffer while it holds less than `want`: the rest
** waits in the read BIO, bounded by what the receive may add (the receive
** stops at `want`, conn_in.c). */
static void tls_read(conn *c, int deferred) {
  conn_tls *t = c->tls;
  char buf[16384];
  int k, e;
  while (!c->pub.err && !c->pub.eof && c->pub.wpos - c->pub.rpos < c->want) {
    tls_clear_errors();
    k = SSL_read(t->ssl, buf, sizeof buf);
    if (k > 0) {
      if (nio__conn_append(c, buf, (size_t)k) < 0) {
        nio__conn_set_err(c, NIO_ENOMEM);
        break;
      }
      continue;
    }
    e = SSL_get_error(t->ssl, k);
    if (e == SSL_ERROR_WANT_READ) {
      if (t->sockeof) {
        /* The socket ended: a partial record is a truncation, an end at a
        ** record boundary without close_notify an end of stream (as most
        ** clients take a server that does not send it). */
        if (BIO_ctrl_pending(t->rbio) > 0 || SSL_has_pending(t->ssl))
          tls_fail(c, NIO_ETLS, "truncated record", deferred);
        else
          c->pub.eof = 1;
      }
      break;
    }
    if (e == SSL_ERROR_ZERO_RETURN) { /* close_notify */
      c->pub.eof = 1;
      break;
    }
    {
      char msg[256];
      snprintf(msg, sizeof msg, "tls: %s", tls_reason("protocol error"));
      tls_fail(c, NIO_ETLS, msg, deferred);
    }
    break;
  }
  /* Answers TLS owes the peer (a key update, a refused renegotiation). */
  tls_flush(c);
  c->tlshold = t->sockeof || c->pub.eof || c->pub.err != 0;
}

int nio__tls_alerting(const conn *c) {
  return c->tls->alert && !c->pub.closing;
}

int nio__tls_feed(conn *c, const char *data, size_t n) {
  conn_tls *t = c->tls;
  if (BIO_write(t->rbio, data, (int)n) != (int)n) return NIO_ENOMEM;
  if (!t->done) {
    tls_handshake(c, 0);
    if (!t->done || c->pub.closing) return 0;
  }
  tls_read(c, 0);
  return 0;
}

void nio__tls_pump(conn *c) {
  conn_tls *t = c->tls;
  size_t before = c->pub.wpos - c->pub.rpos;
  unsigned eof = c->pub.eof;
  if (!t->done || c->pub.err || c->pub.closing || c->caf) return;
  tls_read(c, 1);
  if (c->pub.wpos - c->pub.rpos > before || c->pub.eof != eof)
    nio__engine_defer(c, NIO_EV_READ);
}

void nio__tls_eof(conn *c) {
  conn_tls *t = c->tls;
  t->sockeof = 1;
  c->tlshold = 1;
  if (!t->done) {
    /* No OpenSSL call failed: what the thread's error queue holds is
    ** another connection's. */
    ERR_clear_error();
    tls_handshake_failed(c, 0);
    return;
  }
  tls_read(c, 0);
}

/* Encrypt plaintext into the output queue, in pieces. */
static int tls_encrypt(conn *c, const char *p, size_t len) {
  conn_tls *t = c->tls;
  size_t off = 0, piece;
  int k;
  while (off < len) {
    piece = len - off < TLS_WRITE_PIECE ? len - off : TLS_WRITE_PIECE;
    tls_clear_errors();
    k = SSL_write(t->ssl, p + off, (int)piece);
    if (k <= 0) {
      char msg[256];
      snprintf(msg, sizeof msg, "tls: %s", tls_reason("write failed"));
      tls_fail(c, NIO_ETLS, msg, 1);
      return NIO_ETLS;
    }
    off += (size_t)k;
    tls_flush(c);
    if (c->pub.err) return c->pub.err;
  }
  return 0;
}

int nio__tls_write(conn *c, const void *p, size_t len, nio_chunk_free freefn,
                   void *ud, int late) {
  conn_tls *t = c->tls;
  /* The connection's own checks (closed, failed, shut down), nothing
  ** queued. */
  int r = nio__conn_write_raw(c, NULL, 0, NULL, NULL, late);
  if (r == 0 && len > 0) {
    if (!t->done) {
      if (t->plen + len > t->pcap) {
        size_t cap = t->pcap ? t->pcap : 4096;
        char *np;
        while (cap < t->plen + len) cap *= 2;
        if ((np = realloc(t->pend, cap)) == NULL) {
          r = NIO_ENOMEM;
          goto out;
        }
        t->pend = np;
        t->pcap = cap;
      }
      memcpy(t->pend + t->plen, p, len);
      t->plen += len;
      nio__conn_set_queued(c, c->pub.queued + len);
    } else {
      r = tls_encrypt(c, p, len);
    }
  }
out:
  if (freefn) freefn(ud, p, len);
  return r;
}

static void tls_timeout(nio_timer *tm) {
  conn *c = tm->data;
  tls_fail(c, NIO_ETIMEDOUT, "timeout", 0);
}

int nio__conn_starttls(nio_conn *pc, nio_tls_ctx *ctx, const nio_tls_opts *o) {
  conn *c = (conn *)pc;
  conn_tls *t;
  size_t avail;
  if (c->tls) return NIO_EALREADY;
  if (pc->closing || c->caf) return NIO_ECLOSED;
  if (pc->err) return pc->err;
  if (!c->connected) return NIO_ENOTCONN;
  if ((t = calloc(1, sizeof *t)) == NULL) return NIO_ENOMEM;
  t->rbio = BIO_new(BIO_s_mem());
  t->wbio = BIO_new(BIO_s_mem());
  t->ssl = SSL_new(ctx->ctx);
  if (t->rbio == NULL || t->wbio == NULL || t->ssl == NULL) {
    BIO_free(t->rbio);
    BIO_free(t->wbio);
    SSL_free(t->ssl);
    free(t);
    return NIO_ENOMEM;
  }
  /* An empty read BIO means "more to come", not the end of the stream:
  ** the socket's end is told by nio__tls_eof. */
  BIO_set_mem_eof_return(t->rbio, -1);
  BIO_set_mem_eof_return(t->wbio, -1);
  SSL_set_bio(t->ssl, t->rbio, t->wbio);
  SSL_set_app_data(t->ssl, c);
  SSL_set_options(t->ssl, SSL_OP_NO_RENEGOTIATION);
  if (ctx->server) {
    SSL_set_accept_state(t->ssl);
    if (o && o->verify >= 0)
      SSL_set_verify(t->ssl,
                     o->verify
                         ? SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT
                         : SSL_VERIFY_NONE,
                     NULL);
  } else {
    int verify =
        o && o->verify >= 0
            ? o->verify
            : (SSL_CTX_get_verify_mode(ctx->ctx) & SSL_VERIFY_PEER) != 0;
    SSL_set_connect_state(t->ssl);
    SSL_set_verify(t->ssl, verify ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, NULL);
    if (o && o->servername && *o->servername) {
      if (!SSL_set_tlsext_host_name(t->ssl, o->servername)) goto nomem;
      if (verify && !SSL_set1_host(t->ssl, o->servername)) goto nomem;
    } else if (o && o->ip && verify) {
      if (!X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(t->ssl), o->ip))
        goto nomem;
    }
    if (o && o->session_key) {
      tls_sess **s = tls_sess_find(ctx, o->session_key);
      if ((t->key = strdup(o->session_key)) == NULL) goto nomem;
      if (s) SSL_set_session(t->ssl, (*s)->s);
    }
  }
  t->ctx = ctx;
  nio__tls_ctx_ref(ctx);
  c->tls = t;
  c->tlshold = 0;
  if (o && o->timeout_ns) {
    t->timer.data = c;
    if (nio__timer_start(c->e, &t->timer, o->timeout_ns, tls_timeout) < 0) {
      tls_fail(c, NIO_ENOMEM, "not enough memory", 1);
      return 0;
    }
  }
  /* Bytes that arrived behind the plaintext before the upgrade (a client
  ** that sent its ClientHello right after STARTTLS) are TLS's. */
  avail = pc->wpos - pc->rpos;
  if (avail > 0) {
    if (BIO_write(t->rbio, pc->in + pc->rpos, (int)avail) != (int)avail) {
      tls_fail(c, NIO_ENOMEM, "not enough memory", 1);
      return 0;
    }
    nio__conn_free_input(c);
  }
  tls_handshake(c, 1);
  nio__conn_recv_kick(c);
  return 0;
nomem:
  SSL_free(t->ssl); /* and the BIOs it was given */
  free(t->key);
  free(t);
  return NIO_ENOMEM;
}

int nio__conn_tls_state(const nio_conn *pc) {
  const conn *c = (const conn *)pc;
  if (c->tls == NULL) return 0;
  return c->tls->done ? 2 : 1;
}

const char *nio__conn_tls_error(const nio_conn *pc) {
  const conn *c = (const conn *)pc;
  return c->tls && c->tls->err[0] ? c->tls->err : NULL;
}

void *nio__conn_tls_ssl(const nio_conn *pc) {
  const conn *c = (const conn *)pc;
  return c->tls ? c->tls->ssl : NULL;
}

void nio__conn_tls_close(nio_conn *pc) {
  conn *c = (conn *)pc;
  conn_tls *t = c->tls;
  if (t == NULL || !t->done || t->notified || pc->err || pc->closing ||
      pc->shut)
    return;
  t->notified = 1;
  tls_clear_errors();
  SSL_shutdown(t->ssl);
  tls_flush(c);
}

void nio__tls_stop(conn *c) {
  nio__timer_stop(c->e, &c->tls->timer);
}

void nio__tls_free(conn *c) {
  conn_tls *t = c->tls;
  if (t == NULL) return;
  c->tls = NULL;
  SSL_free(t->ssl);
  nio__tls_ctx_unref(t->ctx);
  free(t->pend);
  free(t->key);
  free(t);
}

/* ---- the system store (non-Windows; tls_store_win.c on Windows) ------- */

#ifndef _WIN32
int nio__tls_system_store(SSL_CTX *ctx);
int nio__tls_system_store(SSL_CTX *ctx) {
  return SSL_CTX_set_default_verify_paths(ctx) == 1 ? 0 : NIO_ENOENT;
}
#endif

#endif /* NIO_HAVE_TLS */
