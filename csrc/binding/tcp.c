/*
** tcp.c: netio.listen, netio.connect and netio.resolve -- address strings
** parsed with the engine's helpers, host names resolved off the loop
** (nio__resolve); a connect tries every address of a name in turn.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "binding.h"

/*
** A name resolution in flight. Allocated by the task that asks; freed by
** the task when the answer came, by the callback when the task gave up
** (t == NULL), or by its op's __gc when the task never came back for the
** answer (the run ended during the lookup: the callback ran with
** NIO_ECANCELED, the task was abandoned). The callback always runs once.
*/
typedef struct tcp_resolve {
  nb_task *t;
  int done, res;
  int n;
  nio_addr *addrs; /* n of them, malloc'ed; owned with the tcp_resolve */
} tcp_resolve;

static void tcp_resolve_free(tcp_resolve *r) {
  free(r->addrs);
  free(r);
}

/* The state of one listen or connect across yields: a userdata kept on
** the task's stack (index 3; the conn or nothing at 4). */
typedef struct tcp_op {
  nio_addr addr, bind;
  /* The addresses a name resolved to (malloc'ed, freed by __gc), or NULL:
  ** then addr alone. */
  nio_addr *addrs;
  int naddrs;
  int has_bind;
  int resolving;
  int backlog, reuseport, accepts;
  tcp_resolve *r;
  nb_conn *nb; /* connect: the connection being made */
  int dial;    /* conn:dial(): a failure leaves the connection to its owner */
  /* TLS: the context (a reference, dropped by __gc), whether the
  ** handshake started, the host of the address (SNI and name check),
  ** servername (owned copy, or NULL) and verify (-1: the context's). */
  nio_tls_ctx *tls;
  int tls_started, host_is_name, verify;
  uint64_t tls_timeout;
  char *servername;
  char host[256];
} tcp_op;

/* The op of a listen or connect is collected: a resolution it still holds
** is freed if answered, else left to its callback. */
static int tcp_op_gc(lua_State *L) {
  tcp_op *op = lua_touserdata(L, 1);
  if (op->r && op->r->done)
    tcp_resolve_free(op->r);
  else if (op->r)
    op->r->t = NULL;
  op->r = NULL;
  free(op->addrs);
  op->addrs = NULL;
#ifdef NIO_HAVE_TLS
  if (op->tls) nio__tls_ctx_unref(op->tls);
#endif
  op->tls = NULL;
  free(op->servername);
  op->servername = NULL;
  return 0;
}

static tcp_op *tcp_op_new(lua_State *L) {
  tcp_op *op = lua_newuserdatauv(L, sizeof *op, 0);
  memset(op, 0, sizeof *op);
  if (luaL_newmetatable(L, "netio.tcpop")) {
    lua_pushcfunction(L, tcp_op_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_setmetatable(L, -2);
  return op;
}

/* The task was canceled in the middle: the resolution's answer is
** dropped by its callback, a connection being made is closed. */
static void tcp_cancel(nb_task *t, void *arg) {
  tcp_op *op = arg;
  (void)t;
  if (op->r) {
    op->r->t = NULL;
    op->r = NULL;
  }
  op->resolving = 0;
  if (op->nb) nio__bind_conn_close(op->nb, 0);
}

static void resolve_cb(void *arg, int res, const nio_addr *a, int n) {
  tcp_resolve *r = arg;
  if (r->t == NULL) {
    tcp_resolve_free(r);
    return;
  }
  r->done = 1;
  r->res = res;
  if (res == 0 && n > 0) {
    if ((r->addrs = malloc((size_t)n * sizeof *a)) == NULL) {
      r->res = NIO_ENOMEM;
    } else {
      memcpy(r->addrs, a, (size_t)n * sizeof *a);
      r->n = n;
    }
  }
  nio__bind_wake(r->t);
}

/* nil, message, code for an address parse_addr refused with err: an
** unknown zone (NIO_ENODEV), a Unix socket path too long, empty, or on an
** OS without them, or anything else malformed (NIO_EBADADDR). */
static int malformed(lua_State *L, const char *addr, int err) {
  const char *zone = strchr(addr, '%'), *end;
  lua_pushnil(L);
  if (strncmp(addr, "unix:", 5) == 0 &&
      (err == NIO_ENAMETOOLONG || err == NIO_EAFNOSUPPORT ||
       err == NIO_EINVAL)) {
    lua_pushfstring(
        L, "%s: \"%s\"",
        err == NIO_EINVAL ? "empty Unix socket path" : nio_strerror(err), addr);
  } else if (err == NIO_ENODEV && zone && (end = strchr(zone, ']')) != NULL) {
    lua_pushliteral(L, "unknown interface \"");
    lua_pushlstring(L, zone + 1, (size_t)(end - zone - 1));
    lua_pushfstring(L, "\" in address \"%s\"", addr);
    lua_concat(L, 3);
  } else {
    err = NIO_EBADADDR;
    lua_pushfstring(L, "malformed address \"%s\"", addr);
  }
  lua_pushstring(L, nio_err_name(err));
  return 3;
}

static int timeout_fail(lua_State *L) {
  return nio__bind_fail(L, NIO_ETIMEDOUT); /* nil, "timeout", "ETIMEDOUT" */
}

/* Parse the string at index idx into a. Returns 0, 1 when host needs
** resolving (host and port filled), or NIO_E* (for malformed()). A string
** with a NUL inside is malformed: its C prefix could be a valid path. */
static int parse_addr(lua_State *L, int idx, char *host, size_t hostlen,
                      int *port, nio_addr *a) {
  size_t len;
  const char *s = lua_tolstring(L, idx, &len);
  if (s == NULL || strlen(s) != len) return NIO_EBADADDR;
  return nio__addr_parse(s, host, hostlen, port, a);
}

/* Start a name resolution for the task; 0 or NIO_E*. */
static int resolve_start(nb_task *t, tcp_op *op, const char *host, int port) {
  tcp_resolve *r = calloc(1, sizeof *r);
  int rc;
  if (r == NULL) return NIO_ENOMEM;
  r->t = t;
  if ((rc = nio__resolve(t->S->e, host, port, resolve_cb, r)) < 0) {
    free(r);
    return rc;
  }
  op->r = r;
  op->resolving = 1;
  return 0;
}

/* Resolution step of a continuation: 1 done (op->addr set), 0 wait, or
** the number of results pushed for a failure. */
static int resolve_step(lua_State *L, nb_task *t, tcp_op *op) {
  tcp_resolve *r = op->r;
  int res;
  if (r->done) {
    op->r = NULL;
    op->resolving = 0;
    res = r->res;
    if (res == 0) {
      op->addr = r->addrs[0];
      free(op->addrs);
      op->addrs = r->addrs;
      op->naddrs = r->n;
      r->addrs = NULL;
    }
    tcp_resolve_free(r);
    if (res < 0) {
      nio__bind_wait_end(t);
      return -nio__bind_fail(L, res);
    }
    return 1;
  }
  if (t->timedout) {
    r->t = NULL; /* the callback frees it */
    op->r = NULL;
    nio__bind_wait_end(t);
    return -timeout_fail(L);
  }
  return 0;
}

static int64_t opt_timeout_field(lua_State *L, int arg, const char *name) {
  int64_t v;
  lua_Number n;
  int tp = lua_getfield(L, arg, name);
  if (tp == LUA_TNIL)
    v = -1;
  else {
    if (tp != LUA_TNUMBER)
      luaL_argerror(L, arg,
                    lua_pushfstring(L, "field '%s' must be a number", name));
    n = lua_tonumber(L, -1);
    if (!(n >= 0))
      luaL_argerror(L, arg,
                    lua_pushfstring(L,
                                    "field '%s' must not be "
                                    "negative",
                                    name));
    v = n >= 1e9 ? -1 : (int64_t)(n * 1e9);
  }
  lua_pop(L, 1);
  return v;
}

/* ---- listen ----------------------------------------------------------- */

static int listen_do(lua_State *L, nb_state *S, tcp_op *op) {
  nb_listener *nl;
  nio_listener *l;
  int r;
  if (S->stopping || S->draining) return nio__bind_fail(L, NIO_ECLOSED);
  nl = nio__bind_listener_new(L, S);
  r = nio__listen(S->e, &op->addr, op->backlog, op->reuseport, op->accepts,
                  nio__bind_listener_cb, nl, &l);
  if (r < 0) return nio__bind_fail(L, r);
  nl->l = l;
#ifdef NIO_HAVE_TLS
  if (op->tls) nio__listener_tls(l, op->tls, op->tls_timeout);
#endif
  return 1;
}

static int listen_k(lua_State *L, int status, lua_KContext ctx) {
  tcp_op *op = lua_touserdata(L, 3);
  nb_task *t;
  int r;
  (void)status;
  NB_K_GUARD(t, L, NULL, ctx, listen_k);
  if ((r = resolve_step(L, t, op)) < 0) return -r;
  if (r == 0) return nio__bind_yield(L, t, ctx, listen_k);
  nio__bind_wait_end(t);
  return listen_do(L, t->S, op);
}

int nio__bind_l_listen(lua_State *L) {
  const char *addr = luaL_checkstring(L, 1);
  char host[256];
  int port, r;
  nb_state *S;
  nb_task *t;
  tcp_op *op;
  lua_Integer backlog = 511, accepts = 0;
  int reuseport = 0;
  nio_tls_ctx *tls = NULL;
  uint64_t tls_tmo = 30000000000ull; /* handshake_timeout: 30 s */
  if (!lua_isnoneornil(L, 2)) {
    static const char *const known[] = {
        "backlog", "reuseport", "accepts", "tls", "handshake_timeout", NULL};
    luaL_checktype(L, 2, LUA_TTABLE);
    nio__bind_check_opts(L, 2, known);
    if (lua_getfield(L, 2, "backlog") != LUA_TNIL) {
      int isint;
      backlog = lua_tointegerx(L, -1, &isint);
      luaL_argcheck(L,
                    lua_type(L, -1) == LUA_TNUMBER && isint && backlog > 0 &&
                        backlog <= 65535,
                    2, "field 'backlog' must be a positive integer");
    }
    if (lua_getfield(L, 2, "accepts") != LUA_TNIL) {
      int isint;
      accepts = lua_tointegerx(L, -1, &isint);
      luaL_argcheck(L,
                    lua_type(L, -1) == LUA_TNUMBER && isint && accepts > 0 &&
                        accepts <= 1024,
                    2, "field 'accepts' must be an integer from 1 to 1024");
    }
    lua_getfield(L, 2, "reuseport");
    reuseport = lua_toboolean(L, -1);
    if (lua_getfield(L, 2, "tls") != LUA_TNIL && lua_toboolean(L, -1)) {
      tls = nio__bind_tls_opt(L, -1);
#ifdef NIO_HAVE_TLS
      luaL_argcheck(L, nio__tls_ctx_server(tls), 2,
                    "field 'tls' must be a server context");
#endif
    }
    if (lua_getfield(L, 2, "handshake_timeout") != LUA_TNIL) {
      int64_t v = opt_timeout_field(L, 2, "handshake_timeout");
      tls_tmo = v < 0 ? 0 : (uint64_t)v;
    }
  }
  lua_settop(L, 2);
  S = nio__bind_current(L);
  if (S == NULL) {
    lua_pushliteral(L, "netio: listen must be called from a netio task");
    return lua_error(L);
  }
  op = tcp_op_new(L);
  op->backlog = (int)backlog;
  op->reuseport = reuseport;
  op->accepts = (int)accepts;
#ifdef NIO_HAVE_TLS
  if (tls) nio__tls_ctx_ref(tls);
#endif
  op->tls = tls;
  op->tls_timeout = tls_tmo;
  r = parse_addr(L, 1, host, sizeof host, &port, &op->addr);
  if (r < 0) return malformed(L, addr, r);
  if (r == 0) return listen_do(L, S, op);
  /* A host name: resolving waits, so it needs a task. */
  t = nio__bind_task(L, S, "listen");
  nio__bind_wait_begin(t, -1);
  if ((r = resolve_start(t, op, host, port)) < 0) {
    nio__bind_wait_end(t);
    return nio__bind_fail(L, r);
  }
  nio__bind_on_cancel(t, tcp_cancel, op);
  return nio__bind_yield(L, t, 0, listen_k);
}

/* ---- connect ---------------------------------------------------------- */

/* Every address of a name, in order, or the one numeric address: the
** engine tries the next when one fails, all within the task's timeout. */
static int connect_start(nb_task *t, nb_conn *nb, tcp_op *op) {
  const nio_addr *bind = op->has_bind ? &op->bind : NULL;
  const nio_addr *addrs = op->addrs ? op->addrs : &op->addr;
  int n = op->addrs ? op->naddrs : 1;
  nio_conn *c;
  int r;
  if (op->dial) {
    /* conn:dial(): the connection exists (with its id and what was
    ** written to it); only its socket is made now. */
    if ((r = nio__conn_dial_list(nb->c, addrs, n, bind)) < 0) return r;
    nio__conn_setopt(nb->c, "tcp-nodelay", 1);
  } else {
    r = nio__conn_connect_list(t->S->e, addrs, n, bind, nio__bind_conn_cb, nb,
                               &c);
    if (r < 0) return r;
    nio__bind_conn_attach(nb, c);
  }
  nio__bind_occupy(&nb->reader, t);
  return 0;
}

static int connect_k(lua_State *L, int status, lua_KContext ctx) {
  tcp_op *op = lua_touserdata(L, 3);
  nb_conn *nb = lua_touserdata(L, 4);
  nb_task *t;
  int r;
  (void)status;
  NB_K_GUARD(t, L, nb->S, ctx, connect_k);
  if (op->resolving) {
    if ((r = resolve_step(L, t, op)) < 0) return -r;
    if (r == 0) return nio__bind_yield(L, t, ctx, connect_k);
    if ((r = connect_start(t, nb, op)) < 0) {
      nio__bind_wait_end(t);
      return nio__bind_fail(L, r);
    }
    return nio__bind_yield(L, t, ctx, connect_k);
  }
  nio__bind_vacate(&nb->reader);
  if (nb->c == NULL) { /* closed by another task meanwhile */
    nio__bind_wait_end(t);
    return nio__bind_fail(L, NIO_ECLOSED);
  }
#ifdef NIO_HAVE_TLS
  if (nb->connected && op->tls && (op->tls_started || nb->c->err == 0)) {
    /* Connected: the handshake follows, within the same timeout. */
    if (!op->tls_started) {
      op->tls_started = 1;
      r = nio__bind_tls_connect(nb, op->tls, op->host, op->host_is_name,
                                op->servername, op->verify);
      if (r < 0) {
        nio__bind_wait_end(t);
        nio__bind_conn_close(nb, 0);
        return nio__bind_fail(L, r);
      }
    }
    r = nio__bind_tls_step(L, t, nb);
    if (r == 1) {
      nio__bind_occupy(&nb->reader, t);
      return nio__bind_yield(L, t, ctx, connect_k);
    }
    nio__bind_wait_end(t);
    if (r < 0) return -r;
    lua_settop(L, 4);
    return 1;
  }
#endif
  if (nb->connected) {
    nio__bind_wait_end(t);
    if ((r = nb->c->err) != 0) {
      if (!op->dial) nio__bind_conn_close(nb, 0);
      return nio__bind_fail(L, r);
    }
    lua_settop(L, 4);
    return 1;
  }
  if (t->timedout) {
    nio__bind_wait_end(t);
    if (!op->dial) nio__bind_conn_close(nb, 0);
    return timeout_fail(L);
  }
  nio__bind_occupy(&nb->reader, t);
  return nio__bind_yield(L, t, ctx, connect_k);
}

/* netio.connect(addr[, opts]) and conn:dial(addr[, opts]): the address at
** 1, the options at 2; dial: the detached connection. */
static int connect_common(lua_State *L, nb_conn *dial) {
  const char *addr = luaL_checkstring(L, 1), *bind = NULL, *pool = NULL;
  const char *fname = dial ? "dial" : "connect";
  char host[256];
  int port, r;
  int64_t tmo = dial ? dial->tmo_connect : -1;
  nio_tls_ctx *tls = NULL;
  const char *servername = NULL;
  char tlspool[1024];
  int verify = -1;
  nb_task *t;
  tcp_op *op;
  nb_conn *nb;
  if (!lua_isnoneornil(L, 2)) {
    /* conn:dial() connects a connection of its own: no pool. */
    static const char *const known[] = {"timeout",    "bind",   "pool", "tls",
                                        "servername", "verify", NULL};
    static const char *const known_dial[] = {"timeout", "bind", NULL};
    luaL_checktype(L, 2, LUA_TTABLE);
    nio__bind_check_opts(L, 2, dial ? known_dial : known);
    if (lua_getfield(L, 2, "timeout") != LUA_TNIL)
      tmo = opt_timeout_field(L, 2, "timeout");
    lua_pop(L, 1);
    if (lua_getfield(L, 2, "bind") != LUA_TNIL) {
      luaL_argcheck(L, lua_type(L, -1) == LUA_TSTRING, 2,
                    "field 'bind' must be a string");
      bind = lua_tostring(L, -1);
      luaL_argcheck(L, strlen(bind) == lua_rawlen(L, -1), 2,
                    "field 'bind' must not contain a NUL");
    }
    lua_pop(L, 1); /* the string stays alive in the table */
    if (lua_getfield(L, 2, "pool") != LUA_TNIL) {
      luaL_argcheck(L, lua_type(L, -1) == LUA_TSTRING, 2,
                    "field 'pool' must be a string");
      pool = lua_tostring(L, -1);
    }
    lua_pop(L, 1);
    if (!dial) {
      if (lua_getfield(L, 2, "tls") != LUA_TNIL && lua_toboolean(L, -1)) {
        tls = nio__bind_tls_opt(L, -1);
#ifdef NIO_HAVE_TLS
        luaL_argcheck(L, !nio__tls_ctx_server(tls), 2,
                      "field 'tls' must be a client context");
#endif
      }
      lua_pop(L, 1);
      if (lua_getfield(L, 2, "servername") != LUA_TNIL) {
        luaL_argcheck(L, lua_type(L, -1) == LUA_TSTRING, 2,
                      "field 'servername' must be a string");
        servername = lua_tostring(L, -1);
      }
      lua_pop(L, 1);
      if (lua_getfield(L, 2, "verify") != LUA_TNIL)
        verify = lua_toboolean(L, -1);
      lua_pop(L, 1);
    }
  }
  lua_settop(L, dial ? 3 : 2); /* dial: its conn at 3 */
  if (tls && pool == NULL) {
    /* A TLS connection is pooled apart from plain ones to the same
    ** address: a connect with tls never gets a plaintext one. */
    snprintf(tlspool, sizeof tlspool, bind ? "%s bind %s tls" : "%s tls", addr,
             bind);
    pool = tlspool;
  }
  t = nio__bind_task(L, NULL, fname);
  /* An idle connection of its pool (conn:setkeepalive) instead (a TLS
  ** connection is pooled under its own address and is still TLS). */
  if (!dial && nio__bind_pool_take(L, t->S, 1, pool, bind)) return 1;
  op = tcp_op_new(L);
  lua_insert(L, 3); /* op at 3; connect_k finds the conn at 4 */
  if (dial) {
    nb = dial;
    op->dial = 1;
  } else {
    nb = nio__bind_conn_new(L, t->S, 1); /* 4 */
    nb->tmo_connect = tmo;
    nio__bind_pool_tag(L, 4, 1, pool, bind);
    op->nb = nb;
  }
  if (bind != NULL) {
    char bhost[256];
    int bport;
    lua_pushstring(L, bind);
    r = parse_addr(L, -1, bhost, sizeof bhost, &bport, &op->bind);
    lua_pop(L, 1);
    if (r != 0) return malformed(L, bind, r);
    op->has_bind = 1;
  }
  r = parse_addr(L, 1, host, sizeof host, &port, &op->addr);
  if (r < 0) return malformed(L, addr, r);
  if (tls) {
#ifdef NIO_HAVE_TLS
    nio__tls_ctx_ref(tls);
#endif
    op->tls = tls;
    op->verify = verify;
    op->host_is_name = r == 1;
    memcpy(op->host, host, sizeof op->host);
    if (servername && (op->servername = strdup(servername)) == NULL)
      return nio__bind_fail(L, NIO_ENOMEM);
  }
  if (nio__bind_wait_begin(t, tmo) < 0) return nio__bind_fail(L, NIO_ENOMEM);
  r = r == 1 ? resolve_start(t, op, host, port) : connect_start(t, nb, op);
  if (r < 0) {
    nio__bind_wait_end(t);
    return nio__bind_fail(L, r);
  }
  nio__bind_on_cancel(t, tcp_cancel, op);
  return nio__bind_yield(L, t, 0, connect_k);
}

int nio__bind_l_connect(lua_State *L) {
  return connect_common(L, NULL);
}

/* conn:dial(addr[, opts]): connect a connection made by core.detached()
** (or conn:successor()); what was written to it goes once connected.
** Returns the conn | nil, err, code; a failure leaves it to its owner. */
int nio__bind_l_dial(lua_State *L) {
  nb_conn *nb = nio__bind_conn_check(L, 1);
  if (nb->c == NULL) {
    lua_pushnil(L);
    lua_pushliteral(L, "closed");
    return 2;
  }
  if (nb->connected || nb->reader || nb->c->fd != NIO_BAD_SOCK)
    return luaL_argerror(L, 1, "not a connection waiting to be dialed");
  lua_settop(L, 3);
  lua_rotate(L, 1, -1); /* addr, opts, conn */
  return connect_common(L, nb);
}

/* core.detached(): a connection with an id and no socket yet, for
** conn:dial() -- written to before it is connected. */
int nio__bind_l_detached(lua_State *L) {
  nb_state *S = nio__bind_current(L);
  nb_conn *nb;
  nio_conn *c;
  int r;
  if (S == NULL || S->e == NULL) {
    lua_pushliteral(L, "netio: detached must be called from a netio task");
    return lua_error(L);
  }
  nb = nio__bind_conn_new(L, S, 0);
  if ((r = nio__conn_detached(S->e, nio__bind_conn_cb, nb, &c)) < 0)
    return nio__bind_fail(L, r);
  nio__bind_conn_attach(nb, c);
  return 1;
}

/* ---- resolve ---------------------------------------------------------- */

/* { "ip", ... } for the n addresses. */
static int push_ips(lua_State *L, const nio_addr *a, int n) {
  char ip[NIO_ADDR_TEXT_MAX];
  int port, k = 0;
  lua_createtable(L, n, 0);
  for (int i = 0; i < n; i++) {
    if (nio__addr_format(&a[i], ip, sizeof ip, &port) < 0) continue;
    lua_pushstring(L, ip);
    lua_rawseti(L, -2, ++k);
  }
  return 1;
}

static int resolve_k(lua_State *L, int status, lua_KContext ctx) {
  tcp_op *op = lua_touserdata(L, 3);
  nb_task *t;
  int r;
  (void)status;
  NB_K_GUARD(t, L, NULL, ctx, resolve_k);
  if ((r = resolve_step(L, t, op)) < 0) return -r;
  if (r == 0) return nio__bind_yield(L, t, ctx, resolve_k);
  nio__bind_wait_end(t);
  return push_ips(L, op->addrs, op->naddrs);
}

static int bad_host(lua_State *L, const char *host, int err) {
  lua_pushnil(L);
  if (err == NIO_ENODEV)
    lua_pushfstring(L, "unknown interface in address \"%s\"", host);
  else
    lua_pushfstring(L, "malformed host name \"%s\"", host);
  lua_pushstring(L, nio_err_name(err == NIO_ENODEV ? err : NIO_EBADADDR));
  return 3;
}

/* netio.resolve(host[, opts]) -> { "ip", ... } | nil, message, code. An
** IP literal (IPv6 with or without brackets) is its own answer, at once;
** a name is looked up on the engine's lookup threads. */
int nio__bind_l_resolve(lua_State *L) {
  size_t len;
  const char *host;
  char lit[256];
  int64_t tmo = -1;
  nio_addr a;
  nb_task *t;
  tcp_op *op;
  int r;
  if (lua_type(L, 1) != LUA_TSTRING) return luaL_typeerror(L, 1, "string");
  host = lua_tolstring(L, 1, &len);
  if (!lua_isnoneornil(L, 2)) {
    static const char *const known[] = {"timeout", NULL};
    luaL_checktype(L, 2, LUA_TTABLE);
    nio__bind_check_opts(L, 2, known);
    if (lua_getfield(L, 2, "timeout") != LUA_TNIL)
      tmo = opt_timeout_field(L, 2, "timeout");
    lua_pop(L, 1);
  }
  lua_settop(L, 2);
  if (len == 0 || len >= sizeof lit || strlen(host) != len)
    return bad_host(L, host, NIO_EBADADDR);
  if (host[0] == '[' && host[len - 1] == ']' && len > 2) {
    memcpy(lit, host + 1, len - 2);
    lit[len - 2] = '\0';
    if (strchr(lit, ':') == NULL) return bad_host(L, host, NIO_EBADADDR);
  } else {
    memcpy(lit, host, len + 1);
  }
  r = nio__addr_numeric(lit, 0, &a);
  if (r == 0) return push_ips(L, &a, 1);
  if (r != NIO_EAI_NONAME) return bad_host(L, host, r);
  if (nio__addr_name_check(lit) < 0) return bad_host(L, host, NIO_EBADADDR);
  t = nio__bind_task(L, NULL, "resolve");
  op = tcp_op_new(L); /* 3 */
  if (nio__bind_wait_begin(t, tmo) < 0) return nio__bind_fail(L, NIO_ENOMEM);
  if ((r = resolve_start(t, op, lit, 0)) < 0) {
    nio__bind_wait_end(t);
    return nio__bind_fail(L, r);
  }
  nio__bind_on_cancel(t, tcp_cancel, op);
  return nio__bind_yield(L, t, 0, resolve_k);
}
