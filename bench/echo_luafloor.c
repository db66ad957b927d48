/*
** echo_luafloor.c: the least a Lua coroutine per connection costs, on the
** engine API (csrc/engine/engine.h) -- the floor under netio's Lua echo.
**   echo_luafloor ip:port   (serves until killed; NETIO_BACKEND picks the
**                            backend as for netio)
**
** Each connection gets a coroutine running this Lua loop:
**   while true do local s = c:recv(); if not s then break end; c:send(s) end
** where c is a full userdata with a metatable whose __index holds recv and
** send: the socket API's shape, with nothing else. recv returns what has
** arrived as a new Lua string (consumed from the engine's input), or
** yields until the connection's next read event resumes the coroutine;
** send copies up to 4 KiB into the output queue and references longer
** strings (anchored until the engine frees them), as netio's binding does.
** A read event queues the connection (the output's drain events do not);
** the engine's turn hook resumes the queued ones once the turn's
** completions are in, as netio does.
** Left out, everything netio adds to that: argument and self checks,
** timeouts, water marks, task bookkeeping, error values, close handling
** beyond the end of the loop. The Lua state has netio's settings: an
** allocator that keeps freed small blocks by exact size (up to twice the
** heap in use, at least 256 KiB), and the GC pause
** at 300; the process has the heap settings of netio's host (glibc keeps
** freed memory at the top of the heap: without that, each GC sweep of the
** received 16 KiB strings handed pages back and the next strings faulted
** them in again, ~0.8 page faults a message).
**
** Set beside echo_engine (the same engine, no Lua) and netio's
** examples/echo_server.lua it splits netio's cost over raw liburing into
** what any coroutine-per-connection Lua API pays and what netio adds.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <lua.h>
#include <lauxlib.h>
#include "engine/engine.h"
#include "port/sys.h"

#define LF_COPY_MAX 4096 /* longer strings are referenced, not copied */
/* The allocator keeps freed blocks up to LF_KEEP_MAX bytes, as many as
** twice the heap in use and at least LF_KEEP_BYTES (netio's rule). */
#define LF_KEEP_MAX 256
#define LF_KEEP_BYTES ((size_t)1 << 18)

static nio_addr lf_addr;
static lua_State *lf_L; /* the main thread; its stack slot 1: the anchors */

/* A connection's Lua side: the userdata's payload. */
typedef struct lf_conn {
  nio_conn *c; /* NULL once closed */
  lua_State *co;
  struct lf_conn *next; /* on the ready list */
  int coref;            /* the coroutine's anchor in the registry */
  int queued;
} lf_conn;

/* Connections with an event, resumed at the turn after the engine
** delivered every completion (as netio runs its tasks): a resume sees all
** the input of the turn at once. */
static lf_conn *lf_ready;

/* ---- allocator: libc's, plus free lists by exact block size ---------- */

static struct {
  size_t kept, used;
  void *lists[LF_KEEP_MAX + 1];
} lf_heap;

#define LF_CAP()                                                               \
  (lf_heap.used > LF_KEEP_BYTES / 2 ? 2 * lf_heap.used : LF_KEEP_BYTES)

static void *lf_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
  void *b;
  (void)ud;
  if (ptr != NULL)
    lf_heap.used = lf_heap.used > osize ? lf_heap.used - osize : 0;
  if (nsize == 0) {
    if (ptr != NULL && osize >= sizeof(void *) && osize <= LF_KEEP_MAX &&
        lf_heap.kept + osize <= LF_CAP()) {
      *(void **)ptr = lf_heap.lists[osize];
      lf_heap.lists[osize] = ptr;
      lf_heap.kept += osize;
    } else {
      free(ptr);
    }
    return NULL;
  }
  if (ptr == NULL) {
    lf_heap.used += nsize;
    if (nsize >= sizeof(void *) && nsize <= LF_KEEP_MAX &&
        (b = lf_heap.lists[nsize]) != NULL) {
      lf_heap.lists[nsize] = *(void **)b;
      lf_heap.kept -= nsize;
      return b;
    }
    return malloc(nsize);
  }
  b = nsize == osize ? ptr : realloc(ptr, nsize);
  lf_heap.used += b ? nsize : osize;
  return b;
}

/* At each turn, as netio's: what the lists keep beyond the cap goes back. */
static void lf_trim(void) {
  void *b;
  for (size_t n = LF_KEEP_MAX; lf_heap.kept > LF_CAP() && n >= sizeof(void *);
       n--)
    while (lf_heap.kept > LF_CAP() && (b = lf_heap.lists[n]) != NULL) {
      lf_heap.lists[n] = *(void **)b;
      lf_heap.kept -= n;
      free(b);
    }
}

/* ---- the two methods ------------------------------------------------- */

static int lf_recv_k(lua_State *L, int status, lua_KContext ctx);

/* c:recv(): what has arrived, or nil at the end; yields while none. */
static int lf_recv(lua_State *L) {
  return lf_recv_k(L, LUA_OK, 0);
}

static int lf_recv_k(lua_State *L, int status, lua_KContext ctx) {
  lf_conn *lc = lua_touserdata(L, 1);
  size_t len = 0;
  const char *p;
  (void)status;
  (void)ctx;
  if (lc->c == NULL) return 0;
  p = nio__conn_input(lc->c, &len);
  if (len > 0) {
    lua_pushlstring(L, p, len);
    nio__conn_consume(lc->c, len);
    return 1;
  }
  if (lc->c->err || lc->c->eof) return 0;
  return lua_yieldk(L, 0, 0, lf_recv_k);
}

static void lf_unanchor(void *ud, const void *p, size_t len) {
  (void)p;
  (void)len;
  luaL_unref(lf_L, 1, (int)(intptr_t)ud);
}

/* c:send(s): queue s; true, or nil once the connection failed. */
static int lf_send(lua_State *L) {
  lf_conn *lc = lua_touserdata(L, 1);
  size_t len;
  const char *p = lua_tolstring(L, 2, &len);
  int r;
  if (lc->c == NULL || p == NULL) return 0;
  if (len <= LF_COPY_MAX) {
    r = nio__conn_write(lc->c, p, len, NULL, NULL);
  } else {
    lua_pushvalue(L, 2);
    lua_xmove(L, lf_L, 1);
    r = nio__conn_write(lc->c, p, len, lf_unanchor,
                        (void *)(intptr_t)luaL_ref(lf_L, 1));
  }
  lua_pushboolean(L, r == 0);
  return 1;
}

/* ---- connections --------------------------------------------------- */

static void lf_end(lf_conn *lc) {
  if (lc->c != NULL) nio__conn_close(lc->c, 0);
  lc->c = NULL;
  luaL_unref(lf_L, LUA_REGISTRYINDEX, lc->coref); /* the coroutine, then
                                                  ** the userdata, go */
}

static void lf_resume(lf_conn *lc, int nargs) {
  int nres, st = lua_resume(lc->co, NULL, nargs, &nres);
  if (st == LUA_YIELD) return;
  if (st != LUA_OK)
    fprintf(stderr, "echo_luafloor: %s\n", lua_tostring(lc->co, -1));
  lf_end(lc);
}

static void lf_conn_cb(nio_conn *c, int events) {
  lf_conn *lc = c->udata;
  /* Only input (or the end of the stream) resumes the reader: the engine
  ** also reports each time the output drained (NIO_EV_WRITE). */
  if (lc->queued || !(events & NIO_EV_READ || c->err || c->eof)) return;
  lc->queued = 1;
  lc->next = lf_ready;
  lf_ready = lc;
}

static int lf_turn(nio_engine *e, void *arg) {
  lf_conn *lc;
  (void)e;
  (void)arg;
  lf_trim();
  while ((lc = lf_ready) != NULL) {
    lf_ready = lc->next;
    lc->queued = 0;
    lf_resume(lc, 0);
  }
  return 0;
}

static void lf_listener_cb(nio_listener *l, int events) {
  nio_conn *c;
  lf_conn *lc;
  lua_State *co;
  (void)events;
  while ((c = nio__listener_accept(l, lf_conn_cb, NULL)) != NULL) {
    nio__conn_setopt(c, "tcp-nodelay", 1);
    co = lua_newthread(lf_L);
    lc = lua_newuserdatauv(lf_L, sizeof *lc, 0);
    lc->c = c;
    lc->co = co;
    c->udata = lc;
    luaL_setmetatable(lf_L, "lf.conn");
    lua_pushvalue(lf_L, 2); /* the loop function */
    lua_pushvalue(lf_L, -2);
    lua_xmove(lf_L, co, 2); /* co: loop, conn */
    lua_pop(lf_L, 1);       /* the userdata lives on co's stack */
    lc->coref = luaL_ref(lf_L, LUA_REGISTRYINDEX);
    lf_resume(lc, 1);
  }
}

static const char lf_loop[] = "return function(c)\n"
                              "  while true do\n"
                              "    local s = c:recv()\n"
                              "    if not s then break end\n"
                              "    c:send(s)\n"
                              "  end\n"
                              "end\n";

static int lf_start(nio_engine *e, void *arg) {
  nio_listener *l;
  int r = nio__listen(e, &lf_addr, 4096, 0, 0, lf_listener_cb, NULL, &l);
  (void)arg;
  if (r < 0) {
    fprintf(stderr, "echo_luafloor: listen: %s\n", nio_strerror(r));
    return r;
  }
  fprintf(stderr, "echo_luafloor: backend %s\n", nio__engine_backend(e));
  return 0;
}

int main(int argc, char **argv) {
  static const luaL_Reg methods[] = {
      {"recv", lf_recv}, {"send", lf_send}, {NULL, NULL}};
  nio_engine_hooks hooks;
  nio_engine *e;
  char host[64];
  int port, r;
  if (argc < 2 || nio__addr_split(argv[1], host, sizeof host, &port) < 0 ||
      nio__addr_numeric(host, port, &lf_addr) < 0) {
    fprintf(stderr, "usage: echo_luafloor ip:port\n");
    return 2;
  }
  nio__sys_tune_heap(); /* as netio's host does first */
  lf_L = lua_newstate(lf_alloc, NULL);
  if (lf_L == NULL) return 1;
  lua_gc(lf_L, LUA_GCINC, 300, 0, 0);
  lua_newtable(lf_L); /* slot 1: anchors of referenced strings */
  luaL_newmetatable(lf_L, "lf.conn");
  luaL_newlib(lf_L, methods);
  lua_setfield(lf_L, -2, "__index");
  lua_pop(lf_L, 1);
  if (luaL_loadstring(lf_L, lf_loop) != LUA_OK ||
      lua_pcall(lf_L, 0, 1, 0) != LUA_OK) { /* slot 2: the loop function */
    fprintf(stderr, "echo_luafloor: %s\n", lua_tostring(lf_L, -1));
    return 1;
  }
  if ((r = nio__engine_new(&e, NULL)) < 0) {
    fprintf(stderr, "echo_luafloor: %s\n", nio_strerror(r));
    return 1;
  }
  memset(&hooks, 0, sizeof hooks);
  hooks.start = lf_start;
  hooks.turn = lf_turn;
  if ((r = nio__engine_start(e, &hooks)) < 0 || (r = nio__engine_join(e)) < 0)
    fprintf(stderr, "echo_luafloor: %s\n", nio_strerror(r));
  nio__engine_free(e);
  lua_close(lf_L);
  return r < 0 ? 1 : 0;
}
