/*
** udp.c: netio.udp and the "netio.udp" class -- datagrams in tasks:
** sendto/recvfrom, the connected form (connect, send, recv), options,
** close (waking the tasks waiting on the socket with nil, "closed").
**
** Readers wait in a FIFO and are woken one at a time: the one woken takes
** the datagram, and passes the turn on to the next waiter when it leaves
** (with a datagram, a timeout or a cancel), so that the next one arms the
** next receive. Writers wait only while a send is in the port (the
** socket was full): the task whose send it is (swait) waits for its
** result, the others in the writers' FIFO.
*/
#include <string.h>
#include "binding.h"

#define UDP_SIZE_MAX 65536

static nb_udp *udp_check(lua_State *L) {
  return nio__bind_check(L, 1, NB_UDP_MT);
}

static int udp_closed(lua_State *L) {
  lua_pushnil(L);
  lua_pushliteral(L, "closed");
  return 2;
}

static int udp_fail2(lua_State *L, int err) {
  lua_pushnil(L);
  if (err == NIO_ECLOSED)
    lua_pushliteral(L, "closed");
  else
    lua_pushstring(L, nio_strerror(err));
  return 2;
}

/* nil, message, code: the failures of the calls that name their code
** (netio.udp, sendto, send, connect). */
static int udp_fail3(lua_State *L, int err) {
  udp_fail2(L, err);
  lua_pushstring(L, nio_err_name(err));
  return 3;
}

static void udp_cb(nio_udp *u, int events) {
  nb_udp *nu = u->udata;
  if (nu == NULL) return;
  if (events & NIO_EV_READ) {
    nb_task *t = nio__bind_waitq_wake_one(&nu->readers);
    if (t != NULL) nu->rturn = t;
  }
  if (events & NIO_EV_WRITE) {
    if (nu->swait != NULL) {
      nu->sres = nio__udp_send_result(u);
      nu->sdone = 1;
      nio__bind_wake(nu->swait);
    } else {
      nio__bind_waitq_wake_one(&nu->writers);
    }
  }
}

static void udp_close(nb_udp *nu) {
  if (nu->u == NULL) return;
  nu->u->udata = NULL;
  nio__udp_close(nu->u);
  nu->u = NULL;
  nu->rturn = NULL;
  nio__bind_waitq_wake_all(&nu->readers);
  nio__bind_waitq_wake_all(&nu->writers);
  if (nu->swait) nio__bind_wake(nu->swait);
}

static void udp_unlink(nb_udp *nu) {
  nb_state *S = nu->S;
  if (S == NULL) return;
  nio__list_remove(&S->udps, &nu->link);
  nu->S = NULL;
}

void nio__bind_close_udps(nb_state *S, int detach) {
  nio_link *k, *next;
  nio__list_each(&S->udps, k, next) {
    nb_udp *nu = nio__list_item(k, nb_udp, link);
    udp_close(nu);
    if (detach) {
      nio__bind_waitq_clear(&nu->readers);
      nio__bind_waitq_clear(&nu->writers);
      nu->swait = nu->rturn = NULL;
      nio__list_remove(&S->udps, k);
      nu->S = NULL;
    }
  }
}

/* ---- addresses --------------------------------------------------------- */

/* Parse a numeric IP address string at idx into a; else push nil, a
** message and its code and return 3. A host name needs netio.resolve first: a
*datagram
** call never waits for a lookup. */
static int udp_addr(lua_State *L, int idx, nio_addr *a) {
  size_t len;
  const char *s = lua_tolstring(L, idx, &len);
  char host[256];
  int port, r;
  r = (s == NULL || strlen(s) != len)
          ? NIO_EBADADDR
          : nio__addr_parse(s, host, sizeof host, &port, a);
  if (r == 0 && a->ss.ss_family != AF_INET && a->ss.ss_family != AF_INET6)
    r = NIO_EAFNOSUPPORT;
  if (r == 0) return 0;
  lua_pushnil(L);
  if (r == 1) {
    lua_pushfstring(L, "address must be numeric (use netio.resolve): \"%s\"",
                    s);
    r = NIO_EBADADDR;
  } else if (r == NIO_ENODEV) {
    lua_pushfstring(L, "unknown interface in address \"%s\"", s);
  } else if (r == NIO_EAFNOSUPPORT || strncmp(s, "unix:", 5) == 0) {
    lua_pushfstring(L, "not an IP address: \"%s\"", s);
    r = NIO_EAFNOSUPPORT;
  } else {
    lua_pushfstring(L, "malformed address \"%s\"", s);
    r = NIO_EBADADDR;
  }
  lua_pushstring(L, nio_err_name(r));
  return 3;
}

/* Push ip, port of a; returns 2. */
static int udp_push_addr(lua_State *L, const nio_addr *a) {
  char ip[NIO_ADDR_TEXT_MAX];
  int port = 0;
  if (nio__addr_format(a, ip, sizeof ip, &port) < 0) {
    lua_pushnil(L);
    lua_pushnil(L);
    return 2;
  }
  lua_pushstring(L, ip);
  lua_pushinteger(L, port);
  return 2;
}

/* ---- receiving --------------------------------------------------------- */

/* ctx of a receive: size << 1 | from (recvfrom: push ip, port too). */

/* One datagram if there is one: pushes the results and returns their
** number, or 0 (none yet; nothing pushed). */
static int udp_try_recv(lua_State *L, nb_udp *nu, lua_KContext ctx) {
  size_t size = (size_t)(ctx >> 1);
  int from = (int)(ctx & 1), trunc;
  const char *p = NULL;
  nio_addr a;
  long n = nio__udp_recv(nu->u, &p, &a, &trunc);
  if (n == NIO_EAGAIN) return 0;
  if (n < 0) return udp_fail2(L, (int)n);
  if (trunc || (size_t)n > size) {
    lua_pushnil(L);
    lua_pushliteral(L, "truncated");
    lua_pushlstring(L, p, (size_t)n < size ? (size_t)n : size);
    return from ? 3 + udp_push_addr(L, &a) : 3;
  }
  lua_pushlstring(L, p, (size_t)n);
  return from ? 1 + udp_push_addr(L, &a) : 1;
}

/* A reader leaves: the next one (if any) takes the turn. */
static void udp_pass_turn(nb_udp *nu) {
  if (nu->u != NULL) nu->rturn = nio__bind_waitq_wake_one(&nu->readers);
}

static void udp_recv_cancel(nb_task *t, void *arg) {
  nb_udp *nu = arg;
  if (nu->rturn == t) nu->rturn = NULL;
  udp_pass_turn(nu);
}

static int udp_recv_k(lua_State *L, int status, lua_KContext ctx) {
  nb_udp *nu = lua_touserdata(L, 1);
  nb_task *t;
  int n;
  (void)status;
  NB_K_GUARD(t, L, nu->S, ctx, udp_recv_k);
  if (nu->rturn == t) nu->rturn = NULL;
  if (nu->u == NULL) {
    nio__bind_waitq_remove(t);
    nio__bind_wait_end(t);
    return udp_closed(L);
  }
  if ((n = udp_try_recv(L, nu, ctx)) > 0 || t->timedout) {
    nio__bind_waitq_remove(t);
    nio__bind_wait_end(t);
    udp_pass_turn(nu);
    if (n > 0) return n;
    lua_pushnil(L);
    lua_pushliteral(L, "timeout");
    return 2;
  }
  /* Woken first, but nothing for it yet: it stays first. */
  if (!nio__bind_in_waitq(t)) nio__bind_waitq_add_first(&nu->readers, t);
  return nio__bind_yield(L, t, ctx, udp_recv_k);
}

static int udp_recv_common(lua_State *L, int from, const char *name) {
  nb_udp *nu = udp_check(L);
  lua_Integer size = luaL_optinteger(L, 2, UDP_SIZE_MAX);
  int64_t tmo;
  lua_KContext ctx;
  nb_task *t;
  int n;
  luaL_argcheck(L, size >= 1 && size <= UDP_SIZE_MAX, 2,
                "size must be from 1 to 65536");
  tmo = nio__bind_opt_timeout(L, 3, nu->tmo);
  t = nio__bind_task(L, nu->S, name);
  if (nu->u == NULL) return udp_closed(L);
  lua_settop(L, 3);
  ctx = (lua_KContext)size << 1 | from;
  /* Others wait already, or one was woken for a datagram: this one
  ** queues behind them. */
  if (nio__bind_waitq_empty(&nu->readers) && nu->rturn == NULL &&
      (n = udp_try_recv(L, nu, ctx)) > 0)
    return n;
  if (nio__bind_wait_begin(t, tmo) < 0) return nio__bind_nomem(L);
  nio__bind_waitq_add(&nu->readers, t);
  nio__bind_on_cancel(t, udp_recv_cancel, nu);
  return nio__bind_yield(L, t, ctx, udp_recv_k);
}

static int l_udp_recvfrom(lua_State *L) {
  return udp_recv_common(L, 1, "recvfrom");
}

static int l_udp_recv(lua_State *L) {
  return udp_recv_common(L, 0, "recv");
}

/* ---- sending ----------------------------------------------------------- */

/* ctx of a send: bit 0 = to the address at index 3 (sendto), bit 1 = this
** task's send is in the port. */
#define SEND_TO 1
#define SEND_MINE 2

static int udp_send_k(lua_State *L, int status, lua_KContext ctx);

static void udp_send_cancel(nb_task *t, void *arg) {
  nb_udp *nu = arg;
  if (nu->swait == t) {
    /* Its send goes on; the event wakes a writer when it ends. */
    nu->swait = NULL;
    nu->sdone = 0;
  } else if (nu->u != NULL && !nio__udp_sending(nu->u)) {
    nio__bind_waitq_wake_one(&nu->writers);
  }
}

/* Try to send; returns the results pushed, or yields. */
static int udp_send_do(lua_State *L, nb_udp *nu, nb_task *t, lua_KContext ctx) {
  size_t len;
  const char *p = lua_tolstring(L, 2, &len);
  nio_addr a;
  long n;
  if (nu->u == NULL) return udp_fail3(L, NIO_ECLOSED);
  if ((ctx & SEND_TO) && udp_addr(L, 3, &a) != 0) return 3;
  if (nu->swait != NULL || nio__udp_sending(nu->u)) {
    if (nio__bind_wait_begin(t, -1) < 0) return nio__bind_nomem(L);
    nio__bind_waitq_add(&nu->writers, t);
    nio__bind_on_cancel(t, udp_send_cancel, nu);
    return nio__bind_yield(L, t, ctx & SEND_TO, udp_send_k);
  }
  n = nio__udp_send(nu->u, p, len, (ctx & SEND_TO) ? &a : NULL);
  if (n >= 0) {
    lua_pushinteger(L, (lua_Integer)n);
    return 1;
  }
  if (n != NIO_EINPROGRESS) return udp_fail3(L, (int)n);
  /* The socket was full: a copy is in the port; wait for its result. */
  if (nio__bind_wait_begin(t, -1) < 0) return nio__bind_nomem(L);
  nu->swait = t;
  nu->sdone = 0;
  nio__bind_on_cancel(t, udp_send_cancel, nu);
  return nio__bind_yield(L, t, (ctx & SEND_TO) | SEND_MINE, udp_send_k);
}

static int udp_send_k(lua_State *L, int status, lua_KContext ctx) {
  nb_udp *nu = lua_touserdata(L, 1);
  nb_task *t;
  int r;
  (void)status;
  NB_K_GUARD(t, L, nu->S, ctx, udp_send_k);
  if (ctx & SEND_MINE) {
    if (nu->u != NULL && !nu->sdone)
      return nio__bind_yield(L, t, ctx, udp_send_k);
    nio__bind_wait_end(t);
    if (nu->swait == t) nu->swait = NULL;
    if (nu->u == NULL) return udp_fail3(L, NIO_ECLOSED);
    nu->sdone = 0;
    r = nu->sres;
    nio__bind_waitq_wake_one(&nu->writers);
    if (r < 0) return udp_fail3(L, r);
    lua_pushinteger(L, r);
    return 1;
  }
  if (nu->u != NULL && (nu->swait != NULL || nio__udp_sending(nu->u))) {
    if (!nio__bind_in_waitq(t)) nio__bind_waitq_add_first(&nu->writers, t);
    return nio__bind_yield(L, t, ctx, udp_send_k);
  }
  nio__bind_waitq_remove(t);
  nio__bind_wait_end(t);
  return udp_send_do(L, nu, t, ctx & SEND_TO);
}

static int l_udp_sendto(lua_State *L) {
  nb_udp *nu = udp_check(L);
  nb_task *t;
  luaL_checktype(L, 2, LUA_TSTRING);
  luaL_checktype(L, 3, LUA_TSTRING);
  t = nio__bind_task(L, nu->S, "sendto");
  lua_settop(L, 3);
  return udp_send_do(L, nu, t, SEND_TO);
}

static int l_udp_send(lua_State *L) {
  nb_udp *nu = udp_check(L);
  nb_task *t;
  luaL_checktype(L, 2, LUA_TSTRING);
  t = nio__bind_task(L, nu->S, "send");
  lua_settop(L, 2);
  return udp_send_do(L, nu, t, 0);
}

/* ---- the rest of the class --------------------------------------------- */

static int l_udp_connect(lua_State *L) {
  nb_udp *nu = udp_check(L);
  nio_addr a;
  int r;
  luaL_checktype(L, 2, LUA_TSTRING);
  if (nu->u == NULL) return udp_fail3(L, NIO_ECLOSED);
  if (udp_addr(L, 2, &a) != 0) return 3;
  if ((r = nio__udp_connect(nu->u, &a)) < 0) return udp_fail3(L, r);
  lua_pushboolean(L, 1);
  return 1;
}

static int l_udp_getsockname(lua_State *L) {
  nb_udp *nu = udp_check(L);
  nio_addr a;
  int r;
  if (nu->u == NULL) return udp_closed(L);
  if ((r = nio__udp_getsockname(nu->u, &a)) < 0) {
    if (r != NIO_EINVAL) return udp_fail2(L, r);
    lua_pushnil(L);
    lua_pushliteral(L, "not bound");
    return 2;
  }
  return udp_push_addr(L, &a);
}

static int l_udp_getpeername(lua_State *L) {
  nb_udp *nu = udp_check(L);
  nio_addr a;
  int r;
  if (nu->u == NULL) return udp_closed(L);
  if ((r = nio__udp_getpeername(nu->u, &a)) < 0) return udp_fail2(L, r);
  return udp_push_addr(L, &a);
}

static int l_udp_setoption(lua_State *L) {
  static const char *const names[] = {"broadcast", "reuseaddr", "sndbuf",
                                      "rcvbuf", NULL};
  nb_udp *nu = udp_check(L);
  int opt = luaL_checkoption(L, 2, NULL, names), value, r;
  if (opt >= 2) {
    lua_Integer n = luaL_checkinteger(L, 3);
    luaL_argcheck(L, n > 0 && n <= INT32_MAX, 3, "bytes out of range");
    value = (int)n;
  } else {
    luaL_checktype(L, 3, LUA_TBOOLEAN);
    value = lua_toboolean(L, 3);
  }
  if (nu->u == NULL) return udp_closed(L);
  if ((r = nio__udp_setopt(nu->u, names[opt], value)) < 0)
    return udp_fail2(L, r);
  lua_pushboolean(L, 1);
  return 1;
}

static int l_udp_settimeout(lua_State *L) {
  nb_udp *nu = udp_check(L);
  nu->tmo = nio__bind_opt_timeout(L, 2, -1);
  lua_pushboolean(L, 1);
  return 1;
}

static int l_udp_close(lua_State *L) {
  udp_close(udp_check(L));
  lua_pushboolean(L, 1);
  return 1;
}

/* __gc and __close. */
static int l_udp_gc(lua_State *L) {
  nb_udp *nu = udp_check(L);
  udp_close(nu);
  if (lua_gettop(L) == 1) udp_unlink(nu); /* __gc */
  return 0;
}

static int l_udp_tostring(lua_State *L) {
  nb_udp *nu = udp_check(L);
  lua_pushfstring(L, nu->u ? "netio.udp (%p)" : "netio.udp (closed)",
                  (void *)nu);
  return 1;
}

/* netio.udp([bind_addr[, opts]]) */
int nio__bind_l_udp(lua_State *L) {
  static const char *const known[] = {"reuseaddr", "broadcast", NULL};
  nb_state *S;
  nb_udp *nu;
  nio_addr a;
  nio_udp *u;
  int reuseaddr = 0, broadcast = 0, r, bound;
  if (!lua_isnoneornil(L, 1)) luaL_checktype(L, 1, LUA_TSTRING);
  if (!lua_isnoneornil(L, 2)) {
    luaL_checktype(L, 2, LUA_TTABLE);
    nio__bind_check_opts(L, 2, known);
    lua_getfield(L, 2, "reuseaddr");
    reuseaddr = lua_toboolean(L, -1);
    lua_getfield(L, 2, "broadcast");
    broadcast = lua_toboolean(L, -1);
  }
  lua_settop(L, 2);
  S = nio__bind_current(L);
  if (S == NULL) {
    lua_pushliteral(L, "netio: udp must be called from a netio task");
    return lua_error(L);
  }
  bound = !lua_isnil(L, 1);
  if (bound && udp_addr(L, 1, &a) != 0) return 3;
  if (S->stopping || S->draining) return nio__bind_fail(L, NIO_ECLOSED);
  nu = lua_newuserdatauv(L, sizeof *nu, 0);
  memset(nu, 0, sizeof *nu);
  luaL_setmetatable(L, NB_UDP_MT);
  nu->tmo = -1;
  r = nio__udp_open(S->e, bound ? &a : NULL, reuseaddr, broadcast, udp_cb, nu,
                    &u);
  if (r < 0) return nio__bind_fail(L, r);
  nu->u = u;
  nu->S = S;
  nio__list_push_front(&S->udps, &nu->link);
  return 1;
}

void nio__bind_udp_open(lua_State *L) {
  static const luaL_Reg methods[] = {{"sendto", l_udp_sendto},
                                     {"recvfrom", l_udp_recvfrom},
                                     {"connect", l_udp_connect},
                                     {"send", l_udp_send},
                                     {"recv", l_udp_recv},
                                     {"getsockname", l_udp_getsockname},
                                     {"getpeername", l_udp_getpeername},
                                     {"setoption", l_udp_setoption},
                                     {"settimeout", l_udp_settimeout},
                                     {"close", l_udp_close},
                                     {NULL, NULL}};
  static const luaL_Reg meta[] = {{"__gc", l_udp_gc},
                                  {"__close", l_udp_gc},
                                  {"__tostring", l_udp_tostring},
                                  {NULL, NULL}};
  nio__bind_class(L, NB_UDP_MT, methods, meta);
}
