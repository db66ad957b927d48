/*
** conn.c: the "netio.conn" class -- a TCP connection read and written
** by tasks: recv patterns, send with water marks, flush, close, options.
*/
#include <stdlib.h>
#include <string.h>
#include "binding.h"

/* recv modes; a continuation's context is (n << RM_BITS) | mode. RM_UPTO
** is receiveany(max), RM_LINE_EOL "*L" (the line with its EOL). */
enum {
  RM_ANY = 0,
  RM_N = 1,
  RM_LINE = 2,
  RM_ALL = 3,
  RM_LINE_EOL = 4,
  RM_UPTO = 5,
  RM_BITS = 3
};

/* ---- life cycle ------------------------------------------------------ */

nb_conn *nio__bind_conn_new(lua_State *L, nb_state *S, int pooled) {
  /* A user value costs 24 bytes (16 and a larger header): only the
  ** connections that may be pooled have one. */
  nb_conn *nb = lua_newuserdatauv(L, sizeof *nb, pooled ? 1 : 0);
  memset(nb, 0, sizeof *nb);
  nb->tag = (uintptr_t)nb ^ NB_CONN_KEY;
  nb->tmo_connect = nb->tmo_send = nb->tmo_read = -1;
  nb->max_input = NB_MAX_INPUT;
  luaL_setmetatable(L, NB_CONN_MT);
  nb->S = S;
  nio__list_push_front(&S->conns, &nb->link);
  return nb;
}

static void conn_unlink(nb_conn *nb) {
  nb_state *S = nb->S;
  if (S == NULL) return; /* nb is in S->conns while nb->S is set */
  nio__list_remove(&S->conns, &nb->link);
  nb->S = NULL;
}

void nio__bind_conn_cb(nio_conn *c, int events) {
  nb_conn *nb = c->udata;
  if (nb == NULL) return;
  if (events & NIO_EV_CONNECT) nb->connected = 1;
  /* A failed stream wakes both sides: each sees the error. */
  if (c->err) events |= NIO_EV_READ | NIO_EV_WRITE;
  if ((events & (NIO_EV_READ | NIO_EV_CONNECT | NIO_EV_TLS)) && nb->reader)
    nio__bind_wake(nb->reader);
  if ((events & NIO_EV_WRITE) && nb->writer) nio__bind_wake(nb->writer);
}

void nio__bind_conn_attach(nb_conn *nb, nio_conn *c) {
  nb->c = c;
  nb->id = c->id;
  c->udata = nb;
  c->cb = nio__bind_conn_cb;
  nio__conn_set_lowat(c, NB_SEND_LOW);
  /* No Nagle by default (as Go does): the engine already coalesces what a
  ** turn queued into one send, and Nagle with delayed ACKs costs a
  ** request/response protocol 40 ms a round. setoption turns it back. */
  nio__conn_setopt(c, "tcp-nodelay", 1);
}

static void acc_reset(nb_conn *nb) {
  free(nb->acc);
  nb->acc = NULL;
  nb->acclen = nb->acccap = 0;
}

static int acc_append(nb_conn *nb, const char *p, size_t n);

void nio__bind_conn_close(nb_conn *nb, int flush) {
  nio_conn *c = nb->c;
  size_t len;
  const char *p;
  if (c == NULL) return;
  /* A task waiting in recv gets what arrived as its partial. */
  if (nb->reader && nb->connected && (p = nio__conn_input(c, &len), len > 0))
    acc_append(nb, p, len);
  nb->c = NULL;
  c->udata = NULL;
#ifdef NIO_HAVE_TLS
  /* A graceful close tells a TLS peer so (close_notify, then flushed). */
  if (flush) nio__conn_tls_close(c);
#endif
  if (flush && c->queued > 0)
    nio__conn_close_after_flush(c);
  else
    nio__conn_close(c, 0);
  /* They see nb->c == NULL and return nil, "closed". */
  if (nb->reader) nio__bind_wake(nb->reader);
  if (nb->writer) nio__bind_wake(nb->writer);
}

void nio__bind_close_conns(nb_state *S, int flush, int detach) {
  nio_link *k, *next;
  nio__list_each(&S->conns, k, next) {
    nb_conn *nb = nio__list_item(k, nb_conn, link);
    nio__bind_conn_close(nb, flush);
    if (detach) {
      nio__bind_vacate(&nb->reader);
      nio__bind_vacate(&nb->writer);
      k->prev = k->next = NULL;
      nb->S = NULL;
    }
  }
  if (detach) S->conns.first = S->conns.last = NULL;
}

/* __gc and __close. Never waits: queued output is sent by the engine
** after the object is gone (nio__conn_close_after_flush). */
static int l_conn_gc(lua_State *L) {
  nb_conn *nb = nio__bind_conn_check(L, 1);
  nio__bind_conn_close(nb, 1);
  if (lua_gettop(L) == 1) { /* __gc (__close gets the error too) */
    nio__bind_vacate(&nb->reader);
    nio__bind_vacate(&nb->writer);
    conn_unlink(nb);
    acc_reset(nb);
  }
  return 0;
}

static int l_conn_close(lua_State *L) {
  nb_conn *nb = nio__bind_conn_check(L, 1);
  nio__bind_conn_close(nb, 1);
  lua_pushboolean(L, 1);
  return 1;
}

/* ---- recv ------------------------------------------------------------ */

static void want(nb_conn *nb, size_t n) {
  if (nb->want == n || nb->c == NULL) return;
  nb->want = n;
  nio__conn_want(nb->c, n ? n : NB_RECV_ANY_MAX);
}

static int acc_append(nb_conn *nb, const char *p, size_t n) {
  if (nb->acclen + n > nb->acccap) {
    size_t cap = nb->acccap ? nb->acccap : NB_RECV_ANY_MAX;
    char *q;
    while (cap < nb->acclen + n) cap *= 2;
    if ((q = realloc(nb->acc, cap)) == NULL) return NIO_ENOMEM;
    nb->acc = q;
    nb->acccap = cap;
  }
  memcpy(nb->acc + nb->acclen, p, n);
  nb->acclen += n;
  return 0;
}

/* A connection closed by either side is "closed", a reset
** included; other failures keep their readable text. */
static const char *conn_errmsg(int err) {
  if (err == NIO_ECLOSED || err == NIO_EOF || err == NIO_ECANCELED ||
      err == NIO_ECONNRESET || err == NIO_EPIPE || err == NIO_ECONNABORTED)
    return "closed";
  return nio_strerror(err);
}

/* The message of c's failure: TLS says why its stream failed. */
const char *nio__bind_conn_cerr(nio_conn *c) {
#ifdef NIO_HAVE_TLS
  const char *m =
      c->err == NIO_ETLS || c->err == NIO_ECERT ? nio__conn_tls_error(c) : NULL;
  if (m) return m;
#endif
  return conn_errmsg(c->err);
}

/* nil, msg, partial: partial = collected bytes + all buffered input,
** consumed (the cosocket convention). */
static int recv_fail(lua_State *L, nb_conn *nb, const char *msg) {
  const char *p = NULL;
  size_t len = 0;
  lua_pushnil(L);
  lua_pushstring(L, msg);
  if (nb->c) p = nio__conn_input(nb->c, &len);
  if (nb->acclen == 0) {
    lua_pushlstring(L, p ? p : "", len);
  } else {
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    luaL_addlstring(&b, nb->acc, nb->acclen);
    if (len) luaL_addlstring(&b, p, len);
    luaL_pushresult(&b);
  }
  if (nb->c && len) nio__conn_consume(nb->c, len);
  acc_reset(nb);
  nb->scan = 0;
  want(nb, 0);
  return 3;
}

/* nil, "too large", partial: the call gathered all a recv may (max_input)
** and needs more. partial is exactly what it gathered; input past it stays
** buffered, so the next recv goes on with the byte right after. */
static int recv_too_large(lua_State *L, nb_conn *nb) {
  lua_pushnil(L);
  lua_pushliteral(L, "too large");
  lua_pushlstring(L, nb->acc ? nb->acc : "", nb->acclen);
  acc_reset(nb);
  nb->scan = 0;
  want(nb, 0);
  return 3;
}

/* Move up to n input bytes into the reader's buffer, as far as the cap
** leaves room. Returns the bytes moved, or -1 when memory ran out. */
static ptrdiff_t recv_gather(nb_conn *nb, const char *p, size_t n) {
  /* The cap may have been lowered under a waiting recv. */
  size_t room = nb->acclen < nb->max_input ? nb->max_input - nb->acclen : 0;
  if (n > room) n = room;
  if (n == 0) return 0;
  if (acc_append(nb, p, n) != 0) return -1;
  nio__conn_consume(nb->c, n);
  return (ptrdiff_t)n;
}

/* A pattern not satisfied by the input: a finished stream ends the wait
** (the results pushed), else -1. */
static int recv_short(lua_State *L, nb_conn *nb) {
  if (nb->c->err) return recv_fail(L, nb, nio__bind_conn_cerr(nb->c));
  if (nb->c->eof) return recv_fail(L, nb, "closed");
  return -1;
}

/* recv_step for RM_ANY, the usual mode, apart: no switch, and a frame
** small enough to build at each of its two calls a message. */
static int recv_any(lua_State *L, nb_conn *nb) {
  nio_conn *c = nb->c;
  size_t len, k;
  const char *p = nio__conn_input(c, &len);
  if (len == 0) return recv_short(L, nb);
  k = len < NB_RECV_ANY_MAX ? len : NB_RECV_ANY_MAX;
  if (k > nb->max_input) k = nb->max_input;
  lua_pushlstring(L, p, k);
  nio__conn_consume(c, k);
  return 1;
}

/* One attempt at the pattern, of any mode but RM_ANY (recv_any: recv_try
** chooses). Returns the number of results pushed, or -1 when it must wait
** for more input. */
static int recv_step(lua_State *L, nb_conn *nb, int mode, size_t n) {
  nio_conn *c = nb->c;
  size_t len, k;
  const char *p = nio__conn_input(c, &len);
  switch (mode) {
  case RM_N:
    if (n == 0) {
      lua_pushliteral(L, "");
      return 1;
    }
    if (nb->acclen == 0 && n <= NB_RECV_DIRECT_MAX && n <= nb->max_input) {
      /* Straight from the input buffer, one copy into the Lua string. */
      if (len >= n) {
        lua_pushlstring(L, p, n);
        nio__conn_consume(c, n);
        want(nb, 0);
        return 1;
      }
      if (n > NB_RECV_ANY_MAX) want(nb, n);
      break;
    }
    /* Large: collect in the reader's buffer so the input stays small. */
    k = n - nb->acclen;
    if (k > len) k = len;
    if (recv_gather(nb, p, k) < 0) return recv_fail(L, nb, "not enough memory");
    if (nb->acclen == n) {
      lua_pushlstring(L, nb->acc, nb->acclen);
      acc_reset(nb);
      want(nb, 0);
      return 1;
    }
    if (nb->acclen >= nb->max_input) return recv_too_large(L, nb);
    want(nb, NB_RECV_DIRECT_MAX);
    break;
  case RM_UPTO:
    if (len > 0) {
      k = len < n ? len : n;
      if (k > nb->max_input) k = nb->max_input;
      lua_pushlstring(L, p, k);
      nio__conn_consume(c, k);
      return 1;
    }
    break;
  case RM_LINE:
  case RM_LINE_EOL: {
    size_t m, used;
    int r = nio__line_scan(p, len, &nb->scan, NB_LINE_MAX, &m, &used);
    if (r == NIO_EMSGSIZE) {
      /* partial is the long line (what arrived of it), not the lines
      ** after it. */
      lua_pushnil(L);
      lua_pushliteral(L, "line too long");
      lua_pushlstring(L, p, used);
      nio__conn_consume(c, used);
      nb->scan = 0;
      want(nb, 0);
      return 3;
    }
    if (r == 0) {
      lua_pushlstring(L, p, mode == RM_LINE ? m : used);
      nio__conn_consume(c, used);
      want(nb, 0);
      return 1;
    }
    /* Let a long line accumulate, up to the limit. */
    if (len >= NB_RECV_ANY_MAX) want(nb, NB_LINE_MAX + 1);
    break;
  }
  default: /* RM_ALL */
    if (len > 0) {
      ptrdiff_t got = recv_gather(nb, p, len);
      if (got < 0) return recv_fail(L, nb, "not enough memory");
      if ((size_t)got < len) return recv_too_large(L, nb);
    }
    if (c->eof && !c->err) {
      lua_pushlstring(L, nb->acc ? nb->acc : "", nb->acclen);
      acc_reset(nb);
      want(nb, 0);
      return 1;
    }
    want(nb, NB_RECV_DIRECT_MAX);
    break;
  }
  return recv_short(L, nb);
}

/* One attempt at the pattern: recv_any or recv_step. */
static inline int recv_try(lua_State *L, nb_conn *nb, int mode, size_t n) {
  return mode == RM_ANY ? recv_any(L, nb) : recv_step(L, nb, mode, n);
}

static int recv_k(lua_State *L, int status, lua_KContext ctx) {
  nb_conn *nb = lua_touserdata(L, 1);
  nb_task *t;
  int r;
  (void)status;
  NB_K_GUARD(t, L, nb->S, ctx, recv_k);
  /* Cleared first, so an error raised below (memory) frees the slot. */
  nio__bind_vacate(&nb->reader);
  if (nb->c == NULL) {
    nio__bind_wait_end(t);
    return recv_fail(L, nb, "closed");
  }
  if ((r = recv_try(L, nb, (int)(ctx & ((1 << RM_BITS) - 1)),
                    (size_t)(ctx >> RM_BITS))) >= 0) {
    nio__bind_wait_end(t);
    return r;
  }
  if (t->timedout) {
    nio__bind_wait_end(t);
    return recv_fail(L, nb, "timeout");
  }
  nio__bind_occupy(&nb->reader, t);
  return nio__bind_yield(L, t, ctx, recv_k);
}

static int recv_pattern(lua_State *L, size_t *n) {
  lua_Integer i;
  const char *p;
  int isint;
  switch (lua_type(L, 2)) {
  case LUA_TNONE:
  case LUA_TNIL:
    return RM_ANY;
  case LUA_TNUMBER:
    i = lua_tointegerx(L, 2, &isint);
    luaL_argcheck(L, isint, 2, "number has no integer representation");
    luaL_argcheck(L, i >= 0, 2, "size must not be negative");
    luaL_argcheck(L, (lua_Unsigned)i <= ((lua_Unsigned)INTPTR_MAX >> RM_BITS),
                  2, "size too large");
    *n = (size_t)i;
    return RM_N;
  case LUA_TSTRING:
    p = lua_tostring(L, 2);
    if (p[0] == '*') p++;
    if (p[0] == 'l' && p[1] == '\0') return RM_LINE;
    if (p[0] == 'L' && p[1] == '\0') return RM_LINE_EOL;
    if (p[0] == 'a' && p[1] == '\0') return RM_ALL;
    /* fall through */
  default:
    return luaL_argerror(L, 2, "number or pattern expected");
  }
}

/* A recv canceled partway: the bytes it had collected go back in front of
** the input, for the next read; the reader state is as before the call. */
static void recv_cancel(nb_task *t, void *arg) {
  nb_conn *nb = arg;
  (void)t;
  if (nb->acclen && nb->c) nio__conn_unread(nb->c, nb->acc, nb->acclen);
  acc_reset(nb);
  nb->scan = 0;
  want(nb, 0);
}

/* recv and receiveany, their arguments checked: tmo is the timeout (at 3,
** or the conn's), top the number of arguments. */
static int recv_start(lua_State *L, nb_conn *nb, int mode, size_t n,
                      int64_t tmo, int top, const char *name) {
  nb_task *t = nio__bind_task(L, nb->S, name);
  lua_KContext ctx = ((lua_KContext)n << RM_BITS) | mode;
  int r;
  if (nb->c == NULL) return recv_fail(L, nb, "closed");
  if (nb->reader) {
    lua_pushnil(L);
    lua_pushliteral(L, "busy");
    lua_pushliteral(L, "");
    return 3;
  }
  nb->scan = 0;
  if ((r = recv_try(L, nb, mode, n)) >= 0) return r;
  /* Extra arguments are dropped while it waits (the usual call has none:
  ** no settop to pay). */
  if (top > 3) lua_settop(L, 3);
  if (nio__bind_wait_begin(t, tmo) < 0)
    return recv_fail(L, nb, nio_strerror(NIO_ENOMEM));
  nio__bind_occupy(&nb->reader, t);
  nio__bind_on_cancel(t, recv_cancel, nb);
  return nio__bind_yield(L, t, ctx, recv_k);
}

static int l_conn_recv(lua_State *L) {
  nb_conn *nb = nio__bind_conn_check(L, 1);
  int top = lua_gettop(L), mode;
  size_t n = 0;
  int64_t tmo;
  /* conn:recv(), the usual call: no pattern or timeout to look at. */
  if (top == 1) return recv_start(L, nb, RM_ANY, 0, nb->tmo_read, 1, "recv");
  mode = recv_pattern(L, &n);
  tmo = nio__bind_opt_timeout(L, 3, nb->tmo_read);
  return recv_start(L, nb, mode, n, tmo, top, "recv");
}

/* conn:receiveany(max[, timeout]): whatever has arrived, 1..max bytes. */
static int l_conn_receiveany(lua_State *L) {
  nb_conn *nb = nio__bind_conn_check(L, 1);
  lua_Integer max;
  int isint;
  max = lua_tointegerx(L, 2, &isint);
  luaL_argexpected(L, lua_type(L, 2) == LUA_TNUMBER, 2, "number");
  luaL_argcheck(L, isint, 2, "number has no integer representation");
  luaL_argcheck(L, max > 0, 2, "max must be positive");
  if ((lua_Unsigned)max > ((lua_Unsigned)INTPTR_MAX >> RM_BITS))
    max = (lua_Integer)((lua_Unsigned)INTPTR_MAX >> RM_BITS);
  return recv_start(L, nb, RM_UPTO, (size_t)max,
                    nio__bind_opt_timeout(L, 3, nb->tmo_read), lua_gettop(L),
                    "receiveany");
}

/* ---- shared with receive.c (conn:receiveuntil) ------------------------ */

void nio__bind_recv_want(nb_conn *nb, size_t n) {
  want(nb, n);
}

int nio__bind_recv_fail(lua_State *L, nb_conn *nb, const char *msg) {
  return recv_fail(L, nb, msg);
}

int nio__bind_recv_too_large(lua_State *L, nb_conn *nb) {
  return recv_too_large(L, nb);
}

ptrdiff_t nio__bind_recv_gather(nb_conn *nb, const char *p, size_t n) {
  return recv_gather(nb, p, n);
}

void nio__bind_recv_cancel(nb_task *t, void *arg) {
  recv_cancel(t, arg);
}

const char *nio__bind_conn_errmsg(int err) {
  return conn_errmsg(err);
}

/* ---- send, flush ------------------------------------------------------ */

static void send_unref(void *ud, const void *p, size_t len) {
  nb_sendref *r = ud;
  (void)p;
  (void)len;
  /* No Lua here (we may be inside the engine): the turn hook drops it. */
  r->next = r->S->unrefs;
  r->S->unrefs = r;
}

/* Queue p[0..len), the string at idx. *anchor is the stack slot of the
** anchor table, 0 until a large piece needs it (then pushed on top). */
static int send_piece(lua_State *L, nb_conn *nb, int idx, const char *p,
                      size_t len, int *anchor, size_t *total) {
  nb_sendref *ref;
  int r;
  if (len == 0) return 0;
  if (len <= NB_SEND_COPY_MAX) {
    r = nio__conn_write(nb->c, p, len, NULL, NULL);
  } else {
    /* Referenced, not copied: anchored until the engine frees it. */
    if (*anchor == 0) {
      lua_rawgetp(L, LUA_REGISTRYINDEX, nb->S);
      *anchor = lua_gettop(L);
    }
    if ((ref = malloc(sizeof *ref)) == NULL) return NIO_ENOMEM;
    ref->S = nb->S;
    ref->next = NULL;
    lua_pushvalue(L, idx);
    lua_rawsetp(L, *anchor, ref);
    r = nio__conn_write(nb->c, p, len, send_unref, ref);
  }
  if (r < 0) return r;
  *total += len;
  return 0;
}

static int send_failed(lua_State *L, int err) {
  lua_pushnil(L);
  lua_pushstring(L, conn_errmsg(err));
  return 2;
}

static int send_k(lua_State *L, int status, lua_KContext ctx) {
  nb_conn *nb = lua_touserdata(L, 1);
  nb_task *t;
  (void)status;
  NB_K_GUARD(t, L, nb->S, ctx, send_k);
  nio__bind_vacate(&nb->writer);
  if (nb->c == NULL || nb->c->err) {
    nio__bind_wait_end(t);
    return send_failed(L, nb->c ? nb->c->err : NIO_ECLOSED);
  }
  if (nb->c->queued <= NB_SEND_LOW) {
    nio__bind_wait_end(t);
    lua_pushinteger(L, (lua_Integer)ctx);
    return 1;
  }
  if (t->timedout) {
    nio__bind_wait_end(t);
    lua_pushnil(L);
    lua_pushliteral(L, "timeout");
    lua_pushinteger(L, (lua_Integer)ctx);
    return 3;
  }
  nio__bind_occupy(&nb->writer, t);
  return nio__bind_yield(L, t, ctx, send_k);
}

/* Misuse: writing to netio.stdin(). */
static void conn_writable(lua_State *L, nb_conn *nb, const char *name) {
  if (nb->readonly) luaL_error(L, "netio: %s: the stream is read-only", name);
}

static int l_conn_send(lua_State *L) {
  nb_conn *nb = nio__bind_conn_check(L, 1);
  size_t total = 0, n = 0, len = 0;
  int r = 0, tp = lua_type(L, 2), anchor = 0;
  const char *p = NULL;
  nb_task *t;
  if (tp == LUA_TTABLE) {
    /* Check every element before queueing any, so misuse queues nothing. */
    n = (size_t)lua_rawlen(L, 2);
    luaL_checkstack(L, 4, NULL);
    for (size_t i = 1; i <= n; i++) {
      int et = lua_rawgeti(L, 2, (lua_Integer)i);
      if (et != LUA_TSTRING && et != LUA_TNUMBER) {
        lua_pushfstring(L, "string expected at index %I, got %s",
                        (lua_Integer)i, lua_typename(L, et));
        return luaL_argerror(L, 2, lua_tostring(L, -1));
      }
      lua_pop(L, 1);
    }
  } else if (tp != LUA_TSTRING && tp != LUA_TNUMBER) {
    return luaL_argerror(L, 2, "string or array of strings expected");
  }
  conn_writable(L, nb, "send");
  t = nio__bind_task(L, nb->S, "send");
  if (nb->c == NULL) return send_failed(L, NIO_ECLOSED);
  if (tp != LUA_TTABLE) p = lua_tolstring(L, 2, &len);
  /* Nothing to queue still says whether the connection can send. One
  ** non-empty string with no other writer skips the probe: its own write
  ** fails the same way, and nothing else comes between. */
  if (tp == LUA_TTABLE || len == 0 || nb->writer) {
    if ((r = nio__conn_write(nb->c, "", 0, NULL, NULL)) < 0)
      return send_failed(L, r);
    if (nb->writer && nb->c->queued > NB_SEND_HIGH) {
      lua_pushnil(L);
      lua_pushliteral(L, "busy");
      return 2;
    }
  }
  if (tp == LUA_TTABLE) {
    /* The anchor table at 3, under the elements pushed one by one. */
    lua_settop(L, 2);
    lua_rawgetp(L, LUA_REGISTRYINDEX, nb->S);
    anchor = 3;
    for (size_t i = 1; i <= n && r == 0; i++) {
      size_t elen;
      const char *ep;
      lua_rawgeti(L, 2, (lua_Integer)i);
      ep = lua_tolstring(L, 4, &elen);
      r = send_piece(L, nb, 4, ep, elen, &anchor, &total);
      lua_pop(L, 1);
    }
  } else if (len <= NB_SEND_COPY_MAX) {
    /* The usual: one short string, copied into the output. */
    if (len > 0 && (r = nio__conn_write(nb->c, p, len, NULL, NULL)) == 0)
      total = len;
  } else {
    r = send_piece(L, nb, 2, p, len, &anchor, &total);
  }
  if (r < 0) return send_failed(L, r);
  /* Below the high-water mark, or another task (a flush) holds the one
  ** writer slot: the bytes are queued, and this send does not wait. */
  if (nb->c->queued <= NB_SEND_HIGH || nb->writer) {
    lua_pushinteger(L, (lua_Integer)total);
    return 1;
  }
  /* Above the high-water mark: wait for the low one. */
  lua_settop(L, 2);
  if (nio__bind_wait_begin(t, nb->tmo_send) < 0) {
    /* Queued, but the wait for the low-water mark has no deadline. */
    lua_pushnil(L);
    lua_pushstring(L, nio_strerror(NIO_ENOMEM));
    lua_pushinteger(L, (lua_Integer)total);
    return 3;
  }
  nio__bind_occupy(&nb->writer, t);
  return nio__bind_yield(L, t, (lua_KContext)total, send_k);
}

static int flush_k(lua_State *L, int status, lua_KContext ctx) {
  nb_conn *nb = lua_touserdata(L, 1);
  nb_task *t;
  (void)status;
  NB_K_GUARD(t, L, nb->S, ctx, flush_k);
  nio__bind_vacate(&nb->writer);
  if (nb->c == NULL || nb->c->err) {
    nio__bind_wait_end(t);
    return send_failed(L, nb->c ? nb->c->err : NIO_ECLOSED);
  }
  if (nb->c->queued == 0) {
    nio__bind_wait_end(t);
    lua_pushboolean(L, 1);
    return 1;
  }
  if (t->timedout) {
    nio__bind_wait_end(t);
    lua_pushnil(L);
    lua_pushliteral(L, "timeout");
    return 2;
  }
  nio__bind_occupy(&nb->writer, t);
  return nio__bind_yield(L, t, ctx, flush_k);
}

static int l_conn_flush(lua_State *L) {
  nb_conn *nb = nio__bind_conn_check(L, 1);
  int64_t tmo = nio__bind_opt_timeout(L, 2, nb->tmo_send);
  nb_task *t;
  conn_writable(L, nb, "flush");
  t = nio__bind_task(L, nb->S, "flush");
  if (nb->c == NULL) return send_failed(L, NIO_ECLOSED);
  if (nb->c->err) return send_failed(L, nb->c->err);
  if (nb->c->queued == 0) {
    lua_pushboolean(L, 1);
    return 1;
  }
  if (nb->writer) {
    lua_pushnil(L);
    lua_pushliteral(L, "busy");
    return 2;
  }
  lua_settop(L, 2);
  if (nio__bind_wait_begin(t, tmo) < 0) return send_failed(L, NIO_ENOMEM);
  nio__bind_occupy(&nb->writer, t);
  return nio__bind_yield(L, t, 0, flush_k);
}

/* ---- the rest ------------------------------------------------------ */

static int conn_closed(lua_State *L) {
  lua_pushnil(L);
  lua_pushliteral(L, "closed");
  return 2;
}

static int l_conn_shutdown(lua_State *L) {
  nb_conn *nb = nio__bind_conn_check(L, 1);
  int r;
  conn_writable(L, nb, "shutdown");
  if (nb->c == NULL) return conn_closed(L);
  if ((r = nio__conn_shutdown(nb->c)) < 0) return send_failed(L, r);
  lua_pushboolean(L, 1);
  return 1;
}

static int l_conn_settimeout(lua_State *L) {
  nb_conn *nb = nio__bind_conn_check(L, 1);
  int64_t t = nio__bind_opt_timeout(L, 2, -1);
  if (nb->c == NULL) return conn_closed(L);
  nb->tmo_connect = nb->tmo_send = nb->tmo_read = t;
  lua_pushboolean(L, 1);
  return 1;
}

static int l_conn_settimeouts(lua_State *L) {
  nb_conn *nb = nio__bind_conn_check(L, 1);
  int64_t c = nio__bind_opt_timeout(L, 2, -1);
  int64_t s = nio__bind_opt_timeout(L, 3, -1);
  int64_t r = nio__bind_opt_timeout(L, 4, -1);
  if (nb->c == NULL) return conn_closed(L);
  nb->tmo_connect = c;
  nb->tmo_send = s;
  nb->tmo_read = r;
  lua_pushboolean(L, 1);
  return 1;
}

/* ip, port; for a Unix socket "unix:/path" (or "unix:" when unnamed),
** nil. */
static int push_addr(lua_State *L, int r, const nio_addr *a) {
  char ip[NIO_ADDR_TEXT_MAX];
  int port;
  if (r == 0) r = nio__addr_format(a, ip, sizeof ip, &port);
  if (r == NIO_ECLOSED) return conn_closed(L);
  if (r < 0) return nio__bind_fail(L, r);
  lua_pushstring(L, ip);
  if (port < 0)
    lua_pushnil(L);
  else
    lua_pushinteger(L, port);
  return 2;
}

static int l_conn_getpeername(lua_State *L) {
  nb_conn *nb = nio__bind_conn_check(L, 1);
  nio_addr a;
  if (nb->c == NULL) return conn_closed(L);
  return push_addr(L, nio__conn_getpeername(nb->c, &a), &a);
}

static int l_conn_getsockname(lua_State *L) {
  nb_conn *nb = nio__bind_conn_check(L, 1);
  nio_addr a;
  if (nb->c == NULL) return conn_closed(L);
  return push_addr(L, nio__conn_getsockname(nb->c, &a), &a);
}

static int l_conn_setoption(lua_State *L) {
  static const char *const names[] = {
      "tcp-nodelay", "keepalive", "linger", "reuseaddr", "send-limit",
      "max-output",  "max-input", "sndbuf", "rcvbuf",    NULL};
  nb_conn *nb = nio__bind_conn_check(L, 1);
  int opt = luaL_checkoption(L, 2, NULL, names), value, r;
  if (opt >= 4 && opt <= 6) { /* byte counts of netio's own */
    lua_Integer n = luaL_checkinteger(L, 3);
    if (opt == 6)
      luaL_argcheck(L, n > 0, 3, "bytes must be positive");
    else
      luaL_argcheck(L, n >= 0, 3, "bytes must not be negative");
    if (nb->c == NULL) return conn_closed(L);
    if (opt == 4)
      nio__conn_set_send_limit(nb->c, (size_t)n);
    else if (opt == 5)
      nio__conn_set_max_output(nb->c, (size_t)n);
    else
      nb->max_input = (size_t)n;
    lua_pushboolean(L, 1);
    return 1;
  }
  if (opt >= 7) { /* sndbuf, rcvbuf: SO_SNDBUF, SO_RCVBUF in bytes */
    lua_Integer n = luaL_checkinteger(L, 3);
    luaL_argcheck(L, n > 0 && n <= INT32_MAX, 3, "bytes out of range");
    value = (int)n;
  } else if (opt == 2) { /* linger: seconds, false = off, or a table */
    if (lua_istable(L, 3)) {
      lua_getfield(L, 3, "on");
      lua_getfield(L, 3, "timeout");
      value = lua_toboolean(L, -2) ? (int)luaL_optinteger(L, -1, 0) : -1;
      lua_pop(L, 2);
    } else if (lua_isboolean(L, 3) && !lua_toboolean(L, 3)) {
      value = -1;
    } else {
      lua_Integer s = luaL_checkinteger(L, 3);
      luaL_argcheck(L, s >= 0 && s <= 65535, 3, "seconds out of range");
      value = (int)s;
    }
  } else {
    luaL_argexpected(L, lua_isboolean(L, 3) || lua_isnumber(L, 3), 3,
                     "boolean");
    value = lua_isboolean(L, 3) ? lua_toboolean(L, 3) : lua_tonumber(L, 3) != 0;
  }
  if (nb->c == NULL) return conn_closed(L);
  if ((r = nio__conn_setopt(nb->c, names[opt], value)) < 0)
    return nio__bind_fail(L, r);
  lua_pushboolean(L, 1);
  return 1;
}

/* conn:successor(): this connection closes and a new one, not yet
** connected (conn:dial()), takes over its id -- for reconnecting clients:
** what other threads send to the id goes to the new one. */
static int l_conn_successor(lua_State *L) {
  nb_conn *nb = nio__bind_conn_check(L, 1), *n;
  nio_conn *c;
  int r;
  if (nb->c == NULL || nb->S == NULL) return conn_closed(L);
  n = nio__bind_conn_new(L, nb->S, 0);
  if ((r = nio__conn_successor(nb->c, &c)) < 0) return nio__bind_fail(L, r);
  /* The old one is closed by the engine: forget it, wake its waiters. */
  nb->c = NULL;
  acc_reset(nb);
  if (nb->reader) nio__bind_wake(nb->reader);
  if (nb->writer) nio__bind_wake(nb->writer);
  nio__bind_conn_attach(n, c);
  n->tmo_connect = nb->tmo_connect;
  n->tmo_send = nb->tmo_send;
  n->tmo_read = nb->tmo_read;
  n->max_input = nb->max_input;
  return 1;
}

static int l_conn_id(lua_State *L) {
  nb_conn *nb = nio__bind_conn_check(L, 1);
  lua_pushinteger(L, (lua_Integer)nb->id);
  return 1;
}

static int l_conn_getstats(lua_State *L) {
  nb_conn *nb = nio__bind_conn_check(L, 1);
  if (nb->c == NULL) return conn_closed(L);
  lua_createtable(L, 0, 3);
  lua_pushinteger(L, (lua_Integer)nb->c->bytes_in);
  lua_setfield(L, -2, "bytes_in");
  lua_pushinteger(L, (lua_Integer)nb->c->bytes_out);
  lua_setfield(L, -2, "bytes_out");
  lua_pushinteger(L, (lua_Integer)nb->c->queued);
  lua_setfield(L, -2, "queued");
  return 1;
}

static int l_conn_tostring(lua_State *L) {
  nb_conn *nb = nio__bind_conn_check(L, 1);
  if (nb->c)
    lua_pushfstring(L, "netio.conn (%I)", (lua_Integer)nb->id);
  else
    lua_pushliteral(L, "netio.conn (closed)");
  return 1;
}

void nio__bind_conn_open(lua_State *L) {
  static const luaL_Reg methods[] = {
      {"recv", l_conn_recv},
      {"receive", l_conn_recv}, /* LuaSocket's name */
      {"receiveany", l_conn_receiveany},
      {"receiveuntil", nio__bind_l_receiveuntil},
      {"send", l_conn_send},
      {"flush", l_conn_flush},
      {"close", l_conn_close},
      {"shutdown", l_conn_shutdown},
      {"settimeout", l_conn_settimeout},
      {"settimeouts", l_conn_settimeouts},
      {"getpeername", l_conn_getpeername},
      {"getsockname", l_conn_getsockname},
      {"setoption", l_conn_setoption},
      {"id", l_conn_id},
      {"dial", nio__bind_l_dial},
      {"successor", l_conn_successor},
      {"getstats", l_conn_getstats},
      {"starttls", nio__bind_l_starttls},
      {"tlsinfo", nio__bind_l_tlsinfo},
      {NULL, NULL}};
  static const luaL_Reg meta[] = {{"__gc", l_conn_gc},
                                  {"__close", l_conn_gc},
                                  {"__tostring", l_conn_tostring},
                                  {NULL, NULL}};
  nio__bind_class(L, NB_CONN_MT, methods, meta);
}
