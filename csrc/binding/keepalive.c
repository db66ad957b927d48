/*
** keepalive.c: the connection pool, as OpenResty's cosockets have it --
** conn:setkeepalive() puts a connection made by netio.connect into the
** pool named by its address (or by connect's `pool` option) instead of
** closing it, and a later netio.connect to that name takes it back.
**
** A pooled connection belongs to its pool, not to a conn userdata: its
** engine callback is pool_conn_cb and its udata the nb_idle. The engine
** keeps a receive armed on it as on any connection (conn_in.c), so the
** peer's FIN, a reset or bytes nobody asked for arrive as NIO_EV_READ and
** close it at once; its timer closes it after its idle time. Taking one
** checks once more (nio__conn_quiet) for news the port has not delivered
** yet, so a connection known dead is never handed out. Nothing here holds
** a task: pooled connections do not keep a run alive, and the end of the
** run closes them (nio__bind_pools_close).
*/
#include <stdlib.h>
#include <string.h>
#include "binding.h"

/* OpenResty's defaults: lua_socket_pool_size, lua_socket_keepalive_timeout. */
#define KA_SIZE 30
#define KA_IDLE_NS (60 * (int64_t)1000000000)

/*
** One pool: the idle connections put under one name. Allocated by the
** first setkeepalive for its name, listed in S->pools and found by name in
** the run's table (T.pools[name] = light userdata); freed when the run
** ends. Its size is the one given when it was made (as in OpenResty).
*/
typedef struct nb_pool {
  nio_list idle; /* of nb_idle.link: the most recently put first */
  size_t n;      /* connections in idle */
  size_t size;   /* the most it keeps */
  nb_state *S;
  nio_link link; /* in S->pools */
} nb_pool;

/*
** One idle connection: allocated by setkeepalive, freed when it is taken,
** evicted, or closed (by the peer, by its timer, by the end of the run).
** The engine's c->udata points here while it is in the pool.
*/
typedef struct nb_idle {
  nio_conn *c;
  nb_pool *pool;
  nio_link link;   /* in pool->idle */
  nio_timer timer; /* its idle time; not armed when it has none */
  uint32_t reused; /* conn:getreusedtimes() of the last owner */
} nb_idle;

/* ---- the pools ------------------------------------------------------- */

/* Out of its pool, its timer stopped; the connection is the caller's. */
static void idle_unlink(nb_idle *it) {
  nb_pool *p = it->pool;
  nio__list_remove(&p->idle, &it->link);
  p->n--;
  if (nio__timer_active(&it->timer)) nio__timer_stop(p->S->e, &it->timer);
}

static void idle_close(nb_idle *it) {
  idle_unlink(it);
  it->c->udata = NULL;
  nio__conn_close(it->c, 0);
  free(it);
}

/* Anything that happens to an idle connection ends it: the peer closed or
** reset it, or sent bytes nobody asked for (the next owner would read
** them as the answer to its own request). Output events of an idle
** connection (it has none queued) are nothing. */
static void pool_conn_cb(nio_conn *c, int events) {
  nb_idle *it = c->udata;
  (void)events;
  if (it && (c->err || c->eof || c->wpos != c->rpos)) idle_close(it);
}

static void idle_timer_cb(nio_timer *t) {
  idle_close(t->data);
}

/* Push the name of the pool for a connect to the address at stack index
** addr: the `pool` option, else the address as given (with the local
** address when one is bound, so a connection bound elsewhere is never
** handed out). */
static void push_name(lua_State *L, int addr, const char *pool,
                      const char *bind) {
  if (pool)
    lua_pushstring(L, pool);
  else if (bind)
    lua_pushfstring(L, "%s bind %s", lua_tostring(L, addr), bind);
  else
    lua_pushvalue(L, addr);
}

/* The pool named by the string on top of the stack, or NULL; size > 0
** makes it when missing (raises on memory errors, before anything
** changed). Leaves the stack as it was. */
static nb_pool *pool_find(lua_State *L, nb_state *S, size_t size) {
  nb_pool *p;
  luaL_checkstack(L, 4, NULL);
  nio__bind_state_table(L, S);
  if (lua_getfield(L, -1, "pools") != LUA_TTABLE) {
    lua_pop(L, 1);
    if (size == 0) {
      lua_pop(L, 1);
      return NULL;
    }
    lua_newtable(L);
    lua_pushvalue(L, -1);
    lua_setfield(L, -3, "pools");
  }
  lua_pushvalue(L, -3);
  p = lua_rawget(L, -2) == LUA_TLIGHTUSERDATA ? lua_touserdata(L, -1) : NULL;
  lua_pop(L, 1);
  if (p == NULL && size > 0) {
    lua_pushvalue(L, -3);
    /* The table slot first: a memory error then leaves no pool behind. */
    lua_pushboolean(L, 0);
    lua_rawset(L, -3);
    if ((p = calloc(1, sizeof *p)) == NULL) luaL_error(L, "not enough memory");
    p->size = size;
    p->S = S;
    nio__list_push_back(&S->pools, &p->link);
    lua_pushvalue(L, -3);
    lua_pushlightuserdata(L, p);
    lua_rawset(L, -3);
  }
  lua_pop(L, 2);
  return p;
}

int nio__bind_pool_take(lua_State *L, nb_state *S, int addr, const char *pool,
                        const char *bind) {
  nb_pool *p;
  nio_link *k;
  /* A run that never pooled a connection pays nothing more per connect. */
  if (nio__list_empty(&S->pools)) return 0;
  addr = lua_absindex(L, addr);
  push_name(L, addr, pool, bind);
  if ((p = pool_find(L, S, 0)) != NULL) {
    while ((k = p->idle.first) != NULL) {
      nb_idle *it = nio__list_item(k, nb_idle, link);
      nio_conn *c = it->c;
      nb_conn *nb;
      if (!nio__conn_quiet(c)) {
        idle_close(it);
        continue;
      }
      nb = nio__bind_conn_new(L, S, 1); /* may raise: nothing changed yet */
      idle_unlink(it);
      /* Not nio__bind_conn_attach: the socket keeps the options its
      ** previous owner set, as in OpenResty. */
      nb->c = c;
      nb->id = c->id;
      nb->connected = 1;
      nb->reused = it->reused + 1;
      c->udata = nb;
      c->cb = nio__bind_conn_cb;
      free(it);
      lua_pushvalue(L, -2);
      lua_setiuservalue(L, -2, 1);
      lua_remove(L, -2);
      return 1;
    }
  }
  lua_pop(L, 1);
  return 0;
}

void nio__bind_pool_tag(lua_State *L, int idx, int addr, const char *pool,
                        const char *bind) {
  idx = lua_absindex(L, idx);
  push_name(L, lua_absindex(L, addr), pool, bind);
  lua_setiuservalue(L, idx, 1);
}

void nio__bind_pools_close(nb_state *S, int detach) {
  nio_link *k, *next;
  nio__list_each(&S->pools, k, next) {
    nb_pool *p = nio__list_item(k, nb_pool, link);
    while (p->idle.first)
      idle_close(nio__list_item(p->idle.first, nb_idle, link));
    if (detach) {
      nio__list_remove(&S->pools, k);
      free(p);
    }
  }
}

/* ---- conn:setkeepalive ------------------------------------------------ */

static int ka_fail(lua_State *L, const char *msg) {
  lua_pushnil(L);
  lua_pushstring(L, msg);
  return 2;
}

/* The arguments, checked: idle time in ns (-1: none) and the pool size. */
static void ka_args(lua_State *L, int64_t *idle, size_t *size) {
  lua_Integer n;
  *idle = KA_IDLE_NS;
  if (!lua_isnoneornil(L, 2)) {
    lua_Number s = luaL_checknumber(L, 2);
    luaL_argcheck(L, s >= 0, 2, "idle time must be a non-negative number");
    /* 0 = no limit (OpenResty), and so is a billion seconds or more. */
    *idle = s == 0 || s >= 1e9 ? -1 : (int64_t)(s * 1e9);
    if (*idle == 0) *idle = 1;
  }
  n = luaL_optinteger(L, 3, KA_SIZE);
  luaL_argcheck(L, n > 0, 3, "pool size must be positive");
  *size = (size_t)n;
}

/* Put nb's connection into its pool; nb is closed for its caller. */
static int ka_put(lua_State *L, nb_conn *nb, int64_t idle, size_t size) {
  nb_state *S = nb->S;
  nio_conn *c = nb->c;
  nb_pool *p;
  nb_idle *it;
  lua_getiuservalue(L, 1, 1);
  p = pool_find(L, S, size);
  lua_pop(L, 1);
  if ((it = calloc(1, sizeof *it)) == NULL)
    return ka_fail(L, nio_strerror(NIO_ENOMEM));
  it->timer.data = it;
  if (idle > 0 &&
      nio__timer_start(S->e, &it->timer, (uint64_t)idle, idle_timer_cb) < 0) {
    free(it);
    return ka_fail(L, nio_strerror(NIO_ENOMEM));
  }
  /* Full: the least recently used goes (OpenResty's choice). */
  if (p->n >= p->size) idle_close(nio__list_item(p->idle.last, nb_idle, link));
  nb->c = NULL; /* closed for the caller; conn:id() keeps the old id */
  if (nb->want) nio__conn_want(c, NB_RECV_ANY_MAX);
  nb->want = 0;
  /* Ids are what other threads hold: one sent to the old owner's id
  ** must not land in the next owner's stream. */
  nio__conn_renew_id(c);
  c->udata = it;
  c->cb = pool_conn_cb;
  it->c = c;
  it->pool = p;
  it->reused = nb->reused;
  nio__list_push_front(&p->idle, &it->link);
  p->n++;
  lua_pushboolean(L, 1);
  return 1;
}

/* One look at the connection: the results pushed, or -1 to wait for the
** queued output to reach the kernel. */
static int ka_step(lua_State *L, nb_conn *nb) {
  nio_conn *c = nb->c;
  int64_t idle;
  size_t size, len;
  if (c == NULL) return ka_fail(L, "closed");
  if (c->err) {
    nio__bind_conn_close(nb, 0);
    return ka_fail(L, "closed");
  }
  /* The next owner would read them as its own: refused, and the
  ** connection stays open (read the rest, or close it). */
  nio__conn_input(c, &len);
  if (len > 0) return ka_fail(L, "unread data in buffer");
  if (c->eof || c->shut) {
    nio__bind_conn_close(nb, 1);
    return ka_fail(L, "closed");
  }
  /* As in OpenResty, where send returns once the kernel has the bytes. */
  if (c->queued > 0) return -1;
  ka_args(L, &idle, &size);
  return ka_put(L, nb, idle, size);
}

static int ka_k(lua_State *L, int status, lua_KContext ctx) {
  nb_conn *nb = lua_touserdata(L, 1);
  nb_task *t;
  int r;
  (void)status;
  NB_K_GUARD(t, L, nb->S, ctx, ka_k);
  nio__bind_vacate(&nb->writer);
  if ((r = ka_step(L, nb)) >= 0) {
    nio__bind_wait_end(t);
    return r;
  }
  if (t->timedout) {
    nio__bind_wait_end(t);
    return ka_fail(L, "timeout");
  }
  nio__bind_occupy(&nb->writer, t);
  return nio__bind_yield(L, t, ctx, ka_k);
}

static int l_conn_setkeepalive(lua_State *L) {
  nb_conn *nb = nio__bind_conn_check(L, 1);
  int64_t idle;
  size_t size;
  int r;
  nb_task *t;
  ka_args(L, &idle, &size);
  lua_settop(L, 3);
  if (lua_getiuservalue(L, 1, 1) != LUA_TSTRING)
    return luaL_error(L, "netio: setkeepalive: only connections made by "
                         "netio.connect can be pooled");
  lua_pop(L, 1);
  if (nb->c == NULL) return ka_fail(L, "closed");
  /* Another task waits on it: it is in use. */
  if (nb->reader || nb->writer) return ka_fail(L, "busy");
  if ((r = ka_step(L, nb)) >= 0) return r;
  t = nio__bind_task(L, nb->S, "setkeepalive");
  if (nio__bind_wait_begin(t, nb->tmo_send) < 0) return nio__bind_nomem(L);
  nio__bind_occupy(&nb->writer, t);
  return nio__bind_yield(L, t, 0, ka_k);
}

static int l_conn_getreusedtimes(lua_State *L) {
  nb_conn *nb = nio__bind_conn_check(L, 1);
  if (nb->c == NULL) return ka_fail(L, "closed");
  lua_pushinteger(L, (lua_Integer)nb->reused);
  return 1;
}

void nio__bind_keepalive_open(lua_State *L) {
  static const luaL_Reg methods[] = {{"setkeepalive", l_conn_setkeepalive},
                                     {"getreusedtimes", l_conn_getreusedtimes},
                                     {NULL, NULL}};
  /* Into the class made by conn.c, with its metatable as upvalue 1, as
  ** nio__bind_check expects of the class's own methods. */
  luaL_getmetatable(L, NB_CONN_MT);
  lua_getfield(L, -1, "__index");
  lua_pushvalue(L, -2);
  luaL_setfuncs(L, methods, 1);
  lua_pop(L, 2);
}
