/*
** tls.c: netio.tls -- the "netio.tlsctx" class (netio.tls.context: an
** OpenSSL context with its certificates, trust, ALPN and SNI), and the
** conn methods starttls and tlsinfo. The filter itself is the engine's
** (csrc/engine/tls.c); connect and listen take a context through
** nio__bind_tls_opt. Built without OpenSSL, netio.tls is nil and a `tls`
** option raises.
*/
#include <string.h>
#include "binding.h"
#include "util/log.h"

#ifdef NIO_HAVE_TLS
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#define NB_TLSCTX_MT "netio.tlsctx"

/* The engine's system store (tls.c, or tls_store_win.c on Windows). */
int nio__tls_system_store(SSL_CTX *ctx);

/*
** What the OpenSSL callbacks of a context need: allocated with the
** context, attached to its SSL_CTX (ex_data) and freed with the SSL_CTX
** (which connections may keep after the Lua object is collected). The
** SNI choice (a table or a function) is a registry reference, released by
** the object's __gc; the callback then keeps the default certificate.
*/
typedef struct tls_extra {
  unsigned char *alpn; /* wire format, owned */
  unsigned alpnlen;
  int sniref; /* LUA_NOREF when none */
} tls_extra;

/* The payload of a "netio.tlsctx" userdata. */
typedef struct nb_tlsctx {
  nio_tls_ctx *t; /* one reference, dropped by __gc */
  SSL_CTX *ctx;   /* t's */
  tls_extra *x;   /* the SSL_CTX's (see tls_extra) */
} nb_tlsctx;

static void extra_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx,
                       long argl, void *argp) {
  tls_extra *x = ptr;
  (void)parent;
  (void)ad;
  (void)idx;
  (void)argl;
  (void)argp;
  if (x == NULL) return;
  free(x->alpn);
  free(x);
}

/* The ex_data index of tls_extra, made by the first context of the
** process (contexts may be made by several states in several threads). */
static _Atomic int extra_index = -1;

static int extra_index_get(void) {
  int idx = atomic_load(&extra_index), mine, expected = -1;
  if (idx >= 0) return idx;
  mine = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, extra_free);
  if (atomic_compare_exchange_strong(&extra_index, &expected, mine))
    return mine;
  return expected; /* another thread's (ours stays registered, unused) */
}

static int tlsctx_gc(lua_State *L) {
  nb_tlsctx *tc = luaL_checkudata(L, 1, NB_TLSCTX_MT);
  if (tc->x && tc->x->sniref != LUA_NOREF) {
    luaL_unref(L, LUA_REGISTRYINDEX, tc->x->sniref);
    tc->x->sniref = LUA_NOREF;
  }
  if (tc->t) nio__tls_ctx_unref(tc->t);
  tc->t = NULL;
  tc->x = NULL;
  return 0;
}

static int tlsctx_tostring(lua_State *L) {
  nb_tlsctx *tc = luaL_checkudata(L, 1, NB_TLSCTX_MT);
  lua_pushfstring(L, "netio.tlsctx (%s)",
                  tc->t && nio__tls_ctx_server(tc->t) ? "server" : "client");
  return 1;
}

/* nil, "<what>: <OpenSSL's reason>". */
static int ctx_fail(lua_State *L, const char *what, const char *dflt) {
  /* The first error is the specific one ("no start line"); those after it
  ** say which layer gave up ("PEM lib"). */
  unsigned long e = ERR_peek_error();
  const char *r = e ? ERR_reason_error_string(e) : NULL;
  ERR_clear_error();
  lua_pushnil(L);
  lua_pushfstring(L, "%s: %s", what, r ? r : dflt);
  return 2;
}

static int is_pem(const char *s) {
  return strncmp(s, "-----BEGIN", 10) == 0;
}

/* A path that cannot be opened: nil, "<what>: cannot open <path>: <why>". */
static int check_file(lua_State *L, const char *what, const char *path) {
  FILE *f = fopen(path, "rb");
  if (f != NULL) {
    fclose(f);
    return 0;
  }
  lua_pushnil(L);
  lua_pushfstring(L, "%s: cannot open %s: %s", what, path, strerror(errno));
  return 2;
}

static int load_cert(lua_State *L, SSL_CTX *ctx, const char *s, size_t len) {
  if (is_pem(s)) {
    BIO *b = BIO_new_mem_buf(s, (int)len);
    X509 *x = b ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
    int ok = x && SSL_CTX_use_certificate(ctx, x) == 1;
    X509_free(x);
    /* The rest of the string: the chain. */
    while (ok && (x = PEM_read_bio_X509(b, NULL, NULL, NULL)) != NULL)
      if (SSL_CTX_add_extra_chain_cert(ctx, x) != 1) {
        X509_free(x);
        ok = 0;
      }
    BIO_free(b);
    if (!ok) return ctx_fail(L, "cert", "bad PEM");
    ERR_clear_error(); /* the end of the chain */
    return 0;
  }
  if (check_file(L, "cert", s)) return 2;
  if (SSL_CTX_use_certificate_chain_file(ctx, s) != 1)
    return ctx_fail(L, "cert", "bad PEM");
  return 0;
}

static int load_key(lua_State *L, SSL_CTX *ctx, const char *s, size_t len) {
  if (is_pem(s)) {
    BIO *b = BIO_new_mem_buf(s, (int)len);
    EVP_PKEY *k = b ? PEM_read_bio_PrivateKey(b, NULL, NULL, NULL) : NULL;
    int ok = k && SSL_CTX_use_PrivateKey(ctx, k) == 1;
    EVP_PKEY_free(k);
    BIO_free(b);
    if (!ok) return ctx_fail(L, "key", "bad PEM");
    return 0;
  }
  if (check_file(L, "key", s)) return 2;
  if (SSL_CTX_use_PrivateKey_file(ctx, s, SSL_FILETYPE_PEM) != 1)
    return ctx_fail(L, "key", "bad PEM");
  return 0;
}

static int load_ca(lua_State *L, SSL_CTX *ctx, const char *s, size_t len) {
  struct stat st;
  if (is_pem(s)) {
    X509_STORE *store = SSL_CTX_get_cert_store(ctx);
    BIO *b = BIO_new_mem_buf(s, (int)len);
    STACK_OF(X509_INFO) *inf =
        b ? PEM_X509_INFO_read_bio(b, NULL, NULL, NULL) : NULL;
    int n = 0;
    for (int i = 0; inf && i < sk_X509_INFO_num(inf); i++) {
      X509_INFO *it = sk_X509_INFO_value(inf, i);
      if (it->x509 && X509_STORE_add_cert(store, it->x509) == 1) n++;
    }
    sk_X509_INFO_pop_free(inf, X509_INFO_free);
    BIO_free(b);
    if (n == 0) return ctx_fail(L, "ca", "bad PEM");
    return 0;
  }
  if (stat(s, &st) == 0 && S_ISDIR(st.st_mode)) {
    if (SSL_CTX_load_verify_locations(ctx, NULL, s) != 1)
      return ctx_fail(L, "ca", "bad directory");
    return 0;
  }
  if (check_file(L, "ca", s)) return 2;
  if (SSL_CTX_load_verify_locations(ctx, s, NULL) != 1)
    return ctx_fail(L, "ca", "bad PEM");
  return 0;
}

static int alpn_select(SSL *ssl, const unsigned char **out,
                       unsigned char *outlen, const unsigned char *in,
                       unsigned inlen, void *arg) {
  tls_extra *x = arg;
  (void)ssl;
  if (x->alpn &&
      SSL_select_next_proto((unsigned char **)out, outlen, x->alpn, x->alpnlen,
                            in, inlen) == OPENSSL_NPN_NEGOTIATED)
    return SSL_TLSEXT_ERR_OK;
  return SSL_TLSEXT_ERR_NOACK;
}

/* The client's SNI chooses the context (its certificate): a table
** {name = ctx} or a function(name) -> ctx | nil, called on the loop (it
** must not wait). No choice: the context's own certificate. */
static int sni_select(SSL *ssl, int *ad, void *arg) {
  tls_extra *x = arg;
  const char *name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
  nio_engine *e = nio__engine_current();
  nb_state *S = e ? nio__engine_udata(e) : NULL;
  lua_State *L = S ? S->L : NULL;
  nb_tlsctx *sel;
  int top;
  (void)ad;
  if (name == NULL || x->sniref == LUA_NOREF || L == NULL)
    return SSL_TLSEXT_ERR_OK;
  top = lua_gettop(L);
  if (lua_rawgeti(L, LUA_REGISTRYINDEX, x->sniref) == LUA_TTABLE) {
    lua_getfield(L, -1, name);
  } else {
    lua_pushstring(L, name);
    if (lua_pcall(L, 1, 1, 0) != LUA_OK) {
      nio__log(NIO_LOG_WARN, "netio: TLS sni function failed: %s",
               lua_tostring(L, -1) ? lua_tostring(L, -1) : "?");
      lua_settop(L, top);
      return SSL_TLSEXT_ERR_OK;
    }
  }
  sel = luaL_testudata(L, -1, NB_TLSCTX_MT);
  if (sel && sel->t) SSL_set_SSL_CTX(ssl, sel->ctx);
  lua_settop(L, top);
  return SSL_TLSEXT_ERR_OK;
}

static int opt_string(lua_State *L, int idx, const char *name, size_t *len,
                      const char **out) {
  int tp = lua_getfield(L, idx, name);
  *out = NULL;
  if (tp == LUA_TNIL) {
    lua_pop(L, 1);
    return 0;
  }
  if (tp != LUA_TSTRING)
    luaL_argerror(L, idx,
                  lua_pushfstring(L, "field '%s' must be a string", name));
  *out = lua_tolstring(L, -1, len);
  lua_pop(L, 1); /* the string stays alive in the table */
  return 1;
}

/* netio.tls.context(opts) -> ctx | nil, err */
static int l_tls_context(lua_State *L) {
  static const char *const known[] = {
      "mode", "cert", "key", "ca", "verify", "alpn", "sni", "protocols", NULL};
  const char *mode = NULL, *cert, *key, *ca, *proto;
  size_t certlen = 0, keylen = 0, calen = 0, len;
  int server = 0, verify, r;
  nb_tlsctx *tc;
  SSL_CTX *ctx;
  tls_extra *x;
  if (lua_isnoneornil(L, 1)) {
    lua_settop(L, 0);
    lua_newtable(L);
  }
  luaL_checktype(L, 1, LUA_TTABLE);
  nio__bind_check_opts(L, 1, known);
  lua_settop(L, 1);
  if (opt_string(L, 1, "mode", &len, &mode)) {
    if (strcmp(mode, "server") == 0)
      server = 1;
    else if (strcmp(mode, "client") != 0)
      return luaL_argerror(L, 1,
                           "field 'mode' must be \"client\" or "
                           "\"server\"");
  }
  opt_string(L, 1, "cert", &certlen, &cert);
  opt_string(L, 1, "key", &keylen, &key);
  opt_string(L, 1, "ca", &calen, &ca);
  lua_getfield(L, 1, "verify");
  verify = lua_isnil(L, -1) ? !server : lua_toboolean(L, -1);
  lua_pop(L, 1);
  if (lua_getfield(L, 1, "sni") != LUA_TNIL) {
    luaL_argcheck(L, server, 1, "field 'sni' is for server contexts");
    luaL_argcheck(
        L, lua_type(L, -1) == LUA_TTABLE || lua_type(L, -1) == LUA_TFUNCTION, 1,
        "field 'sni' must be a table or a function");
  }
  lua_pop(L, 1);
  if (opt_string(L, 1, "protocols", &len, &proto) &&
      strcmp(proto, "tlsv1.2") != 0 && strcmp(proto, "tlsv1.3") != 0)
    return luaL_argerror(L, 1,
                         "field 'protocols' must be \"tlsv1.2\" or "
                         "\"tlsv1.3\"");
  if (server && (cert == NULL || key == NULL)) {
    lua_pushnil(L);
    lua_pushstring(L, cert == NULL ? "cert: a server context needs cert and "
                                     "key"
                                   : "key: a server context needs cert and "
                                     "key");
    return 2;
  }
  if ((cert == NULL) != (key == NULL)) {
    lua_pushnil(L);
    lua_pushstring(L, cert == NULL ? "cert: missing (key given)"
                                   : "key: missing (cert given)");
    return 2;
  }
  tc = lua_newuserdatauv(L, sizeof *tc, 0); /* 2 */
  memset(tc, 0, sizeof *tc);
  luaL_setmetatable(L, NB_TLSCTX_MT);
  ERR_clear_error();
  if ((ctx = SSL_CTX_new(TLS_method())) == NULL ||
      (x = calloc(1, sizeof *x)) == NULL) {
    SSL_CTX_free(ctx);
    return nio__bind_fail(L, NIO_ENOMEM);
  }
  x->sniref = LUA_NOREF;
  SSL_CTX_set_ex_data(ctx, extra_index_get(), x);
  r = nio__tls_ctx_new(ctx, server, &tc->t);
  SSL_CTX_free(ctx); /* tc->t holds it now (or nobody) */
  if (r < 0) return nio__bind_fail(L, r);
  tc->ctx = ctx;
  tc->x = x;
  SSL_CTX_set_min_proto_version(ctx, proto && strcmp(proto, "tlsv1.3") == 0
                                         ? TLS1_3_VERSION
                                         : TLS1_2_VERSION);
  SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION);
  SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
  if (cert && (r = load_cert(L, ctx, cert, certlen)) != 0) return r;
  if (key && (r = load_key(L, ctx, key, keylen)) != 0) return r;
  if (cert && SSL_CTX_check_private_key(ctx) != 1)
    return ctx_fail(L, "key", "does not match the certificate");
  if (ca) {
    if ((r = load_ca(L, ctx, ca, calen)) != 0) return r;
  } else if (verify && nio__tls_system_store(ctx) < 0) {
    return ctx_fail(L, "ca", "no system certificate store");
  }
  SSL_CTX_set_verify(ctx,
                     !verify ? SSL_VERIFY_NONE
                     : server
                         ? SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT
                         : SSL_VERIFY_PEER,
                     NULL);
  if (server) {
    /* A server asks for a client certificate: the session id context
    ** keeps resumed sessions tied to this configuration. */
    static const unsigned char sid[] = "netio";
    SSL_CTX_set_session_id_context(ctx, sid, sizeof sid - 1);
  }
  if (lua_getfield(L, 1, "alpn") != LUA_TNIL) {
    luaL_Buffer b;
    lua_Integer n;
    luaL_argcheck(L, lua_type(L, -1) == LUA_TTABLE, 1,
                  "field 'alpn' must be a list of strings");
    n = luaL_len(L, -1);
    luaL_buffinit(L, &b);
    for (lua_Integer i = 1; i <= n; i++) {
      size_t pl;
      const char *p;
      lua_geti(L, 3, i);
      p = lua_tolstring(L, -1, &pl);
      if (p == NULL || pl == 0 || pl > 255)
        return luaL_argerror(L, 1,
                             "field 'alpn' must hold names of 1 to 255 bytes");
      lua_pop(L, 1);
      luaL_addchar(&b, (char)pl);
      luaL_addlstring(&b, p, pl);
    }
    luaL_pushresult(&b);
    {
      size_t wl;
      const char *w = lua_tolstring(L, -1, &wl);
      if (wl > 0) {
        if ((x->alpn = malloc(wl)) == NULL)
          return nio__bind_fail(L, NIO_ENOMEM);
        memcpy(x->alpn, w, wl);
        x->alpnlen = (unsigned)wl;
        if (server)
          SSL_CTX_set_alpn_select_cb(ctx, alpn_select, x);
        else if (SSL_CTX_set_alpn_protos(ctx, x->alpn, x->alpnlen) != 0)
          return nio__bind_fail(L, NIO_ENOMEM);
      }
    }
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
  if (lua_getfield(L, 1, "sni") != LUA_TNIL) {
    x->sniref = luaL_ref(L, LUA_REGISTRYINDEX);
    SSL_CTX_set_tlsext_servername_callback(ctx, sni_select);
    SSL_CTX_set_tlsext_servername_arg(ctx, x);
  } else {
    lua_pop(L, 1);
  }
  lua_settop(L, 2);
  return 1;
}

/* The context a `tls` option names: a context, or true for the default
** client context (system store, verify on; one per Lua state). */
nio_tls_ctx *nio__bind_tls_opt(lua_State *L, int idx) {
  nb_tlsctx *tc;
  idx = lua_absindex(L, idx);
  if (lua_type(L, idx) == LUA_TBOOLEAN && lua_toboolean(L, idx)) {
    if (lua_getfield(L, LUA_REGISTRYINDEX, "netio.tls.default") == LUA_TNIL) {
      lua_pop(L, 1);
      lua_pushcfunction(L, l_tls_context);
      lua_call(L, 0, 2);
      if (lua_isnil(L, -2)) {
        lua_pushfstring(L, "netio: default TLS context: %s",
                        lua_tostring(L, -1));
        lua_error(L);
      }
      lua_pop(L, 1);
      lua_pushvalue(L, -1);
      lua_setfield(L, LUA_REGISTRYINDEX, "netio.tls.default");
    }
    tc = lua_touserdata(L, -1);
    lua_pop(L, 1); /* the registry keeps it */
    return tc->t;
  }
  tc = luaL_testudata(L, idx, NB_TLSCTX_MT);
  if (tc == NULL || tc->t == NULL)
    luaL_error(L, "field 'tls' must be a netio.tls context or true");
  return tc->t;
}

/* nil, message, code for a failed TLS connection. */
int nio__bind_tls_fail(lua_State *L, nio_conn *c, int err) {
  const char *why = c ? nio__conn_tls_error(c) : NULL;
  if (why == NULL) return nio__bind_fail(L, err);
  lua_pushnil(L);
  lua_pushstring(L, why);
  lua_pushstring(L, nio_err_name(err));
  return 3;
}

/* ---- conn:starttls --------------------------------------------------- */

/* The handshake on nb: 0 done, 1 wait, or the results pushed (< 0). */
int nio__bind_tls_step(lua_State *L, nb_task *t, nb_conn *nb) {
  nio_conn *c = nb->c;
  if (c == NULL) return -nio__bind_fail(L, NIO_ECLOSED);
  if (c->err) {
    int n = nio__bind_tls_fail(L, c, c->err);
    /* A refusal (ours or the peer's) is flushed: the alert that says why
    ** reaches the peer before the close. */
    nio__bind_conn_close(nb, c->err == NIO_ETLS || c->err == NIO_ECERT);
    return -n;
  }
  if (nio__conn_tls_state(c) == 2) return 0;
  if (t->timedout) {
    nio__bind_conn_close(nb, 0);
    return -nio__bind_fail(L, NIO_ETIMEDOUT);
  }
  return 1;
}

static int starttls_k(lua_State *L, int status, lua_KContext ctx) {
  nb_conn *nb = lua_touserdata(L, 1);
  nb_task *t;
  int r;
  (void)status;
  NB_K_GUARD(t, L, nb->S, ctx, starttls_k);
  nio__bind_vacate(&nb->reader);
  r = nio__bind_tls_step(L, t, nb);
  if (r == 1) {
    nio__bind_occupy(&nb->reader, t);
    return nio__bind_yield(L, t, ctx, starttls_k);
  }
  nio__bind_wait_end(t);
  if (r < 0) return -r;
  lua_pushboolean(L, 1);
  return 1;
}

static void starttls_cancel(nb_task *t, void *arg) {
  (void)t;
  nio__bind_conn_close(arg, 0);
}

/* Fill o's client fields: servername (given, else none), else the peer's
** address checked as an IP; the session key is either. */
static void client_names(nio_conn *c, nio_tls_opts *o, char *ip, size_t iplen) {
  nio_addr a;
  int port;
  if (o->servername) {
    o->session_key = o->servername;
    return;
  }
  if (nio__conn_getpeername(c, &a) == 0 &&
      nio__addr_format(&a, ip, iplen, &port) == 0 && port >= 0) {
    o->ip = ip;
    o->session_key = ip;
  }
}

int nio__bind_l_starttls(lua_State *L) {
  nb_conn *nb = nio__bind_conn_check(L, 1);
  nb_tlsctx *tc = luaL_checkudata(L, 2, NB_TLSCTX_MT);
  static const char *const known[] = {"servername", "verify", "timeout", NULL};
  nio_tls_opts o;
  char ip[NIO_ADDR_TEXT_MAX];
  int64_t tmo;
  nb_task *t;
  int r;
  memset(&o, 0, sizeof o);
  o.verify = -1;
  tmo = nb->tmo_read;
  if (!lua_isnoneornil(L, 3)) {
    size_t len;
    luaL_checktype(L, 3, LUA_TTABLE);
    nio__bind_check_opts(L, 3, known);
    opt_string(L, 3, "servername", &len, &o.servername);
    if (lua_getfield(L, 3, "verify") != LUA_TNIL)
      o.verify = lua_toboolean(L, -1);
    lua_pop(L, 1);
    lua_getfield(L, 3, "timeout");
    tmo = nio__bind_opt_timeout(L, -1, tmo);
    lua_pop(L, 1);
  }
  luaL_argcheck(L, tc->t != NULL, 2, "a live netio.tlsctx expected");
  t = nio__bind_task(L, nb->S, "starttls");
  if (nb->c == NULL) return nio__bind_fail(L, NIO_ECLOSED);
  if (nio__conn_tls_state(nb->c) != 0) {
    lua_pushnil(L);
    lua_pushliteral(L, "TLS already started");
    return 2;
  }
  if (nb->reader) {
    lua_pushnil(L);
    lua_pushliteral(L, "busy");
    return 2;
  }
  if (!nio__tls_ctx_server(tc->t)) client_names(nb->c, &o, ip, sizeof ip);
  if ((r = nio__conn_starttls(nb->c, tc->t, &o)) < 0)
    return nio__bind_fail(L, r);
  lua_settop(L, 2);
  if (nio__bind_wait_begin(t, tmo) < 0) {
    nio__bind_conn_close(nb, 0);
    return nio__bind_nomem(L);
  }
  nio__bind_occupy(&nb->reader, t);
  nio__bind_on_cancel(t, starttls_cancel, nb);
  return nio__bind_yield(L, t, 0, starttls_k);
}

/* Start the client handshake of a connection netio.connect made. */
int nio__bind_tls_connect(nb_conn *nb, nio_tls_ctx *ctx, const char *host,
                          int host_is_name, const char *servername,
                          int verify) {
  nio_tls_opts o;
  memset(&o, 0, sizeof o);
  o.verify = verify;
  if (servername) {
    o.servername = o.session_key = servername;
  } else if (host_is_name) {
    o.servername = o.session_key = host;
  } else {
    o.ip = o.session_key = host;
  }
  return nio__conn_starttls(nb->c, ctx, &o);
}

/* conn:tlsinfo() -> { protocol, cipher, alpn, peer_subject, servername,
** resumed } | nil */
int nio__bind_l_tlsinfo(lua_State *L) {
  nb_conn *nb = nio__bind_conn_check(L, 1);
  SSL *ssl = nb->c ? nio__conn_tls_ssl(nb->c) : NULL;
  const unsigned char *alpn;
  unsigned alen;
  X509 *peer;
  const char *sn;
  if (ssl == NULL || nio__conn_tls_state(nb->c) != 2) {
    lua_pushnil(L);
    return 1;
  }
  lua_createtable(L, 0, 6);
  lua_pushstring(L, SSL_get_version(ssl));
  lua_setfield(L, -2, "protocol");
  lua_pushstring(L, SSL_get_cipher_name(ssl));
  lua_setfield(L, -2, "cipher");
  SSL_get0_alpn_selected(ssl, &alpn, &alen);
  if (alen > 0) {
    lua_pushlstring(L, (const char *)alpn, alen);
    lua_setfield(L, -2, "alpn");
  }
  if ((peer = SSL_get0_peer_certificate(ssl)) != NULL) {
    char buf[512];
    X509_NAME_oneline(X509_get_subject_name(peer), buf, sizeof buf);
    lua_pushstring(L, buf);
    lua_setfield(L, -2, "peer_subject");
  }
  if ((sn = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name)) != NULL) {
    lua_pushstring(L, sn);
    lua_setfield(L, -2, "servername");
  }
  lua_pushboolean(L, SSL_session_reused(ssl));
  lua_setfield(L, -2, "resumed");
  return 1;
}

/* Push netio.tls. */
void nio__bind_tls_push(lua_State *L) {
  static const luaL_Reg funcs[] = {{"context", l_tls_context}, {NULL, NULL}};
  if (luaL_newmetatable(L, NB_TLSCTX_MT)) {
    lua_pushcfunction(L, tlsctx_gc);
    lua_setfield(L, -2, "__gc");
    lua_pushcfunction(L, tlsctx_tostring);
    lua_setfield(L, -2, "__tostring");
    lua_pushliteral(L, "netio.tlsctx");
    lua_setfield(L, -2, "__name");
  }
  lua_pop(L, 1);
  luaL_newlib(L, funcs);
}

#else /* !NIO_HAVE_TLS */

nio_tls_ctx *nio__bind_tls_opt(lua_State *L, int idx) {
  (void)idx;
  luaL_error(L, "netio: built without TLS");
  return NULL;
}

int nio__bind_l_starttls(lua_State *L) {
  return luaL_error(L, "netio: built without TLS");
}

int nio__bind_l_tlsinfo(lua_State *L) {
  lua_pushnil(L);
  return 1;
}

void nio__bind_tls_push(lua_State *L) {
  lua_pushnil(L);
}

#endif
