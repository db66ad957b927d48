/*
** thread.c: the "netio.thread" class -- a Lua function run in an OS thread
** of its own, on a fresh Lua state in which `require "netio"` gives the
** thread-side module (send, post, receive, log, now). Values cross between
** the states as copies (copy.c): the arguments and results, the messages
** of thread:post (to the thread's mailbox) and netio.post (to the engine).
*/
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <lualib.h>
#include "binding.h"
#include "util/log.h"

/* The most bytes of messages waiting in one thread's mailbox. */
#define THREAD_MAIL_LIMIT ((size_t)64 << 20)
/* Registry field of a netio thread's state: its nb_thread. */
#define THREAD_KEY "netio.thread"

typedef struct nb_mail {
  struct nb_mail *next;
  size_t len;
  char data[]; /* an encoding (copy.c) */
} nb_mail;

/* A C loader of package.preload, carried into the thread's state. */
typedef struct nb_loader {
  char *name;
  lua_CFunction fn;
  char *up; /* its upvalues, encoded */
  size_t uplen;
} nb_loader;

enum { TH_RUNNING, TH_DONE, TH_FAILED };

/*
** Shared by the engine side and the OS thread. Allocated by netio.thread;
** references: the handle userdata (until __gc), the OS thread (until it
** ended), the run's list (until the run ended), and a done-call in flight.
** Freed at the last.
*/
struct nb_thread {
  atomic_int refs;
  nio_engine *e; /* referenced by the OS thread until it ends */
  nio_mutex mu;
  /* Signalled when mail arrives or the mailbox closes (the thread waits
  ** in receive) and when the thread ends (the end of the run waits). */
  nio_cond cv;
  nb_mail *mhead, *mtail; /* under mu */
  size_t mbytes;          /* under mu */
  int mclosed;            /* under mu */
  int state;              /* under mu: TH_* */
  char *res;              /* encoded results, or the error message */
  size_t reslen;
  /* What the OS thread starts from; freed with the struct. */
  char *code;
  size_t codelen;
  int is_source;
  char *args;
  size_t argslen;
  char *path, *cpath;
  nb_loader *loaders;
  int nloaders;
  /* Worker thread only. */
  nio_thread *os; /* joined once it ended (or let go at the end of its run),
                  ** so that no thread is still exiting when the process
                  ** does */
  nb_state *S;    /* the run, NULL once it ended */
  nio_link link;  /* in S->threads while S is set */
  nb_waitq joiners;
  /* The done-call ran: everything the thread sent or posted before it
  ** ended has reached the engine (they were queued ahead of the call), so
  ** a join that returns now is ordered after them. */
  int reaped;
};

/* The handle: the payload of a "netio.thread" userdata. */
typedef struct nb_handle {
  nb_thread *th; /* NULL until started */
} nb_handle;

static void thread_unref(nb_thread *th) {
  nb_mail *m, *next;
  if (atomic_fetch_sub(&th->refs, 1) != 1) return;
  for (m = th->mhead; m; m = next) {
    next = m->next;
    free(m);
  }
  for (int i = 0; i < th->nloaders; i++) {
    free(th->loaders[i].name);
    free(th->loaders[i].up);
  }
  free(th->loaders);
  free(th->res);
  free(th->code);
  free(th->args);
  free(th->path);
  free(th->cpath);
  nio__cond_destroy(&th->cv);
  nio__mutex_destroy(&th->mu);
  free(th);
}

static char *dup_bytes(const char *p, size_t len) {
  char *q = malloc(len ? len : 1);
  if (q && len) memcpy(q, p, len);
  return q;
}

/* ---- the OS thread ---------------------------------------------------- */

int nio__bind_in_thread(lua_State *L) {
  int r = lua_getfield(L, LUA_REGISTRYINDEX, THREAD_KEY) == LUA_TLIGHTUSERDATA;
  lua_pop(L, 1);
  return r;
}

static nb_thread *thread_self(lua_State *L) {
  nb_thread *th;
  lua_getfield(L, LUA_REGISTRYINDEX, THREAD_KEY);
  th = lua_touserdata(L, -1);
  lua_pop(L, 1);
  return th;
}

static int thread_msgh(lua_State *L) {
  const char *msg = lua_tostring(L, 1);
  if (msg == NULL)
    msg =
        lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
  luaL_traceback(L, L, msg, 1);
  return 1;
}

/* What the OS thread found, kept apart from the shared struct until it is
** published under the lock. */
typedef struct thread_out {
  nb_thread *th;
  int state; /* TH_DONE or TH_FAILED once set */
  char *res;
  size_t reslen;
} thread_out;

static int out_set(thread_out *o, int state, const char *p, size_t len) {
  free(o->res);
  o->res = dup_bytes(p, len);
  o->reslen = len;
  o->state = state;
  return o->res != NULL;
}

/* In a protected call on the thread's state: set it up, run the function,
** keep its results. */
static int thread_pmain(lua_State *L) {
  thread_out *o = lua_touserdata(L, 1);
  nb_thread *th = o->th;
  int base, n, r;
  size_t len;
  const char *p;
  luaL_openlibs(L);
  lua_pushlightuserdata(L, th);
  lua_setfield(L, LUA_REGISTRYINDEX, THREAD_KEY);
  /* Where `require "netio"` finds what the starting state found. */
  lua_getglobal(L, "package");
  if (th->path) {
    lua_pushstring(L, th->path);
    lua_setfield(L, -2, "path");
  }
  if (th->cpath) {
    lua_pushstring(L, th->cpath);
    lua_setfield(L, -2, "cpath");
  }
  lua_pop(L, 1);
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
  for (int i = 0; i < th->nloaders; i++) {
    nb_loader *ld = &th->loaders[i];
    int nup = nio__bind_decode(L, ld->up, ld->uplen);
    lua_pushcclosure(L, ld->fn, nup);
    lua_setfield(L, -2, ld->name);
  }
  lua_pop(L, 1);
  nio__bind_preload(L);

  lua_pushcfunction(L, thread_msgh);
  base = lua_gettop(L);
  r = luaL_loadbufferx(L, th->code, th->codelen, "=(thread)",
                       th->is_source ? "t" : "b");
  if (r != LUA_OK) return lua_error(L);
  n = nio__bind_decode(L, th->args, th->argslen);
  if (lua_pcall(L, n, LUA_MULTRET, base) != LUA_OK) {
    if ((p = lua_tolstring(L, -1, &len)) == NULL)
      p = "(error object is not a string)", len = strlen(p);
    if (!out_set(o, TH_FAILED, p, len))
      return luaL_error(L, "not enough memory");
    return 0;
  }
  nio__bind_encode(L, base + 1, lua_gettop(L) - base, "thread results", 0);
  p = lua_tolstring(L, -1, &len);
  if (!out_set(o, TH_DONE, p, len)) return luaL_error(L, "not enough memory");
  return 0;
}

/* On the worker: the thread ended; wake the tasks joining it, and let the
** run forget it (nothing is left to wait for at the end). */
static void thread_done_call(nio_engine *e, void *arg) {
  nb_thread *th = arg;
  nb_state *S = th->S;
  (void)e;
  th->reaped = 1;
  if (th->os) {
    nio__thread_join(th->os); /* it is past its last use of the engine */
    th->os = NULL;
  }
  if (S) {
    nio__bind_waitq_wake_all(&th->joiners);
    nio__list_remove(&S->threads, &th->link);
    th->S = NULL;
    thread_unref(th); /* the run's reference */
  }
  thread_unref(th);
}

static void thread_main(void *arg) {
  nb_thread *th = arg;
  nio_engine *e = th->e;
  lua_State *L = luaL_newstate();
  thread_out o = {th, 0, NULL, 0};
  nio__thread_block_signals();
  if (L == NULL) {
    out_set(&o, TH_FAILED, "not enough memory", 17);
  } else {
    lua_pushcfunction(L, thread_pmain);
    lua_pushlightuserdata(L, &o);
    if (lua_pcall(L, 1, 0, 0) != LUA_OK) {
      size_t len;
      const char *msg = lua_tolstring(L, -1, &len);
      if (msg == NULL) msg = "not enough memory", len = strlen(msg);
      out_set(&o, TH_FAILED, msg, len);
    }
    lua_close(L);
  }
  if (o.state == 0) o.state = TH_FAILED; /* out_set itself ran out */
  nio__mutex_lock(&th->mu);
  th->res = o.res;
  th->reslen = o.res ? o.reslen : 0;
  th->state = o.state;
  th->mclosed = 1; /* nobody reads it any more */
  nio__cond_broadcast(&th->cv);
  nio__mutex_unlock(&th->mu);
  atomic_fetch_add(&th->refs, 1); /* the done-call's */
  if (nio__engine_call(e, thread_done_call, th) != 0) thread_unref(th);
  nio__engine_unref(e);
  thread_unref(th);
}

/* ---- the thread-side module ------------------------------------------ */

static int thread_l_post(lua_State *L) {
  nb_thread *th = thread_self(L);
  const char *p;
  size_t len;
  luaL_checkany(L, 1);
  nio__bind_encode(L, 1, lua_gettop(L), "post", 1);
  p = lua_tolstring(L, -1, &len);
  return nio__bind_push_result(
      L, nio__engine_post(th->e, NIO_POST_VALUES, p, len));
}

typedef struct mail_box {
  nb_mail *m;
} mail_box;

static int mail_box_gc(lua_State *L) {
  mail_box *b = lua_touserdata(L, 1);
  free(b->m);
  b->m = NULL;
  return 0;
}

static int thread_l_receive(lua_State *L) {
  nb_thread *th = thread_self(L);
  int64_t tmo = nio__bind_opt_timeout(L, 1, -1);
  uint64_t deadline = tmo >= 0 ? nio__now_ns() + (uint64_t)tmo : 0;
  mail_box *b;
  nb_mail *m;
  int n;
  lua_settop(L, 0);
  /* The box first (it may raise), then the mail into it. */
  b = lua_newuserdatauv(L, sizeof *b, 0);
  b->m = NULL;
  if (luaL_newmetatable(L, "netio.mailbox")) {
    lua_pushcfunction(L, mail_box_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_setmetatable(L, -2);
  nio__mutex_lock(&th->mu);
  while ((m = th->mhead) == NULL && !th->mclosed) {
    int64_t left = -1;
    if (tmo >= 0) {
      uint64_t now = nio__now_ns();
      if (now >= deadline) break;
      left = (int64_t)(deadline - now);
    }
    nio__cond_wait(&th->cv, &th->mu, left);
  }
  if (m) {
    th->mhead = m->next;
    if (th->mhead == NULL) th->mtail = NULL;
    th->mbytes -= m->len;
  }
  nio__mutex_unlock(&th->mu);
  if (m == NULL) {
    lua_pushnil(L);
    if (tmo >= 0 && nio__now_ns() >= deadline)
      lua_pushliteral(L, "timeout");
    else
      lua_pushliteral(L, "closed");
    return 2;
  }
  b->m = m;
  n = nio__bind_decode(L, m->data, m->len);
  free(m);
  b->m = NULL;
  return n;
}

static int thread_l_now(lua_State *L) {
  lua_pushnumber(L, (lua_Number)nio__now_ns() / 1e9);
  return 1;
}

static int thread_l_false(lua_State *L) {
  lua_pushboolean(L, 0);
  return 1;
}

/* What only a task may call. */
static int thread_l_task_only(lua_State *L) {
  /* No position prefix: the message is the rule, as in a run. */
  lua_pushfstring(L, "netio: %s must be called from a netio task",
                  lua_tostring(L, lua_upvalueindex(1)));
  return lua_error(L);
}

int nio__bind_thread_module(lua_State *L) {
  static const char *const task_only[] = {
      "run",    "spawn", "sleep", "stop",    "listen", "connect",
      "thread", "stdin", "stats", "backend", NULL};
  static const luaL_Reg funcs[] = {
      {"send", nio__bind_l_send},    {"post", thread_l_post},
      {"receive", thread_l_receive}, {"now", thread_l_now},
      {"intask", thread_l_false},    {NULL, NULL}};
  luaL_newlib(L, funcs);
  for (int i = 0; task_only[i]; i++) {
    lua_pushstring(L, task_only[i]);
    lua_pushcclosure(L, thread_l_task_only, 1);
    lua_setfield(L, -2, task_only[i]);
  }
  nio__bind_log_push(L);
  lua_setfield(L, -2, "log");
  lua_pushliteral(L, NIO_VERSION);
  lua_setfield(L, -2, "_VERSION");
  lua_pushboolean(L, 1); /* lua/netio/init.lua: the thread-side module */
  lua_setfield(L, -2, "_THREAD");
  return 1;
}

/* ---- starting --------------------------------------------------------- */

/* As string.dump: the buffer starts at the first write, once lua_dump
** has taken the function from the top of the stack. */
typedef struct dump_state {
  int init;
  luaL_Buffer b;
} dump_state;

static int dump_writer(lua_State *L, const void *p, size_t sz, void *ud) {
  dump_state *d = ud;
  if (!d->init) {
    d->init = 1;
    luaL_buffinit(L, &d->b);
  }
  luaL_addlstring(&d->b, p, sz);
  return 0;
}

/* Push the code the thread runs (a dump, or the source) after checking it
** here, where a mistake is the caller's. */
static void thread_code(lua_State *L, int *is_source) {
  if (lua_type(L, 1) == LUA_TSTRING) {
    size_t len;
    const char *src = lua_tolstring(L, 1, &len);
    if (luaL_loadbufferx(L, src, len, "=(thread)", "t") != LUA_OK)
      luaL_argerror(L, 1, lua_tostring(L, -1));
    lua_pop(L, 1);
    lua_pushvalue(L, 1);
    *is_source = 1;
    return;
  }
  luaL_argexpected(L, lua_type(L, 1) == LUA_TFUNCTION, 1, "function or string");
  if (lua_iscfunction(L, 1))
    luaL_argerror(L, 1, "a C function cannot run in a thread");
  for (int i = 1;; i++) {
    const char *name = lua_getupvalue(L, 1, i);
    if (name == NULL) break;
    lua_pop(L, 1);
    /* _ENV becomes the thread's own globals. */
    if (strcmp(name, "_ENV") != 0) {
      lua_pushfstring(L,
                      "the function uses the upvalue '%s': upvalues are not "
                      "carried into a thread (pass values as arguments)",
                      name[0] ? name : "?");
      luaL_argerror(L, 1, lua_tostring(L, -1));
    }
  }
  {
    dump_state d;
    d.init = 0;
    lua_pushvalue(L, 1);
    if (lua_dump(L, dump_writer, &d, 0) != 0 || !d.init)
      luaL_argerror(L, 1, "the function cannot be dumped");
    luaL_pushresult(&d.b);
    lua_remove(L, -2);
  }
  *is_source = 0;
}

/* Copy the C loaders of package.preload (the host's embedded modules) and
** package.path/cpath. Returns 0 or NIO_ENOMEM. */
static int thread_packages(lua_State *L, nb_thread *th) {
  int n = 0, cap = 0;
  if (lua_getglobal(L, "package") == LUA_TTABLE) {
    if (lua_getfield(L, -1, "path") == LUA_TSTRING &&
        (th->path = dup_bytes(lua_tostring(L, -1), lua_rawlen(L, -1) + 1)) ==
            NULL)
      return NIO_ENOMEM;
    lua_pop(L, 1);
    if (lua_getfield(L, -1, "cpath") == LUA_TSTRING &&
        (th->cpath = dup_bytes(lua_tostring(L, -1), lua_rawlen(L, -1) + 1)) ==
            NULL)
      return NIO_ENOMEM;
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
  lua_pushnil(L);
  while (lua_next(L, -2) != 0) {
    lua_CFunction fn;
    int nup = 0, ok = 1;
    if (lua_type(L, -2) != LUA_TSTRING ||
        (fn = lua_tocfunction(L, -1)) == NULL) {
      lua_pop(L, 1);
      continue;
    }
    while (lua_getupvalue(L, -1 - nup, nup + 1) != NULL) {
      int tp = lua_type(L, -1);
      if (tp != LUA_TNUMBER && tp != LUA_TSTRING && tp != LUA_TBOOLEAN &&
          tp != LUA_TNIL)
        ok = 0;
      nup++;
    }
    if (ok) {
      size_t len;
      const char *p;
      nb_loader *ld;
      nio__bind_encode(L, -nup, nup, "thread", 0);
      p = lua_tolstring(L, -1, &len);
      if (n == cap) {
        nb_loader *t;
        cap = cap ? cap * 2 : 8;
        if ((t = realloc(th->loaders, (size_t)cap * sizeof *t)) == NULL)
          return NIO_ENOMEM;
        th->loaders = t;
      }
      ld = &th->loaders[n];
      ld->fn = fn;
      ld->name =
          dup_bytes(lua_tostring(L, -3 - nup), lua_rawlen(L, -3 - nup) + 1);
      ld->up = dup_bytes(p, len);
      ld->uplen = len;
      th->nloaders = ++n;
      if (ld->name == NULL || ld->up == NULL) return NIO_ENOMEM;
      lua_pop(L, 1);
    }
    lua_pop(L, nup + 1);
  }
  lua_pop(L, 1);
  return 0;
}

static nb_handle *handle_check(lua_State *L) {
  return luaL_checkudata(L, 1, NB_THREAD_MT);
}

/* netio.thread(fn_or_source, ...) */
int nio__bind_l_thread(lua_State *L) {
  nb_state *S = nio__bind_current(L);
  nb_handle *h;
  nb_thread *th;
  int is_source, r, nargs = lua_gettop(L) - 1, top;
  size_t len;
  const char *p;
  if (S == NULL || S->e == NULL) {
    lua_pushliteral(L, "netio: thread must be called from a netio task");
    return lua_error(L);
  }
  if (nargs < 0) luaL_typeerror(L, 1, "function or string");
  nio__bind_encode(L, 2, nargs, "thread", 2); /* the arguments */
  thread_code(L, &is_source);                 /* the code */
  h = lua_newuserdatauv(L, sizeof *h, 0);
  h->th = NULL;
  luaL_setmetatable(L, NB_THREAD_MT);
  top = lua_gettop(L);
  if ((th = calloc(1, sizeof *th)) == NULL)
    return luaL_error(L, "not enough memory");
  if (nio__mutex_init(&th->mu) < 0) {
    free(th);
    return luaL_error(L, "netio: cannot make a mutex");
  }
  if (nio__cond_init(&th->cv) < 0) {
    nio__mutex_destroy(&th->mu);
    free(th);
    return luaL_error(L, "netio: cannot make a condition variable");
  }
  atomic_init(&th->refs, 1);
  h->th = th; /* from here, __gc frees it */
  p = lua_tolstring(L, top - 1, &len);
  th->code = dup_bytes(p, len);
  th->codelen = len;
  th->is_source = is_source;
  p = lua_tolstring(L, top - 2, &len);
  th->args = dup_bytes(p, len);
  th->argslen = len;
  if (th->code == NULL || th->args == NULL || thread_packages(L, th) < 0)
    return luaL_error(L, "not enough memory");
  lua_settop(L, top);
  th->e = S->e;
  nio__engine_ref(S->e);
  th->state = TH_RUNNING;
  atomic_fetch_add(&th->refs, 2); /* the OS thread's and the run's */
  if ((r = nio__thread_start(&th->os, thread_main, th)) < 0) {
    nio__engine_unref(S->e);
    atomic_fetch_sub(&th->refs, 2);
    th->state = TH_FAILED;
    return nio__bind_fail(L, r);
  }
  th->S = S;
  nio__list_push_front(&S->threads, &th->link);
  return 1;
}

/* ---- the handle -------------------------------------------------------- */

static int thread_state(nb_thread *th) {
  int st;
  nio__mutex_lock(&th->mu);
  st = th->state;
  nio__mutex_unlock(&th->mu);
  return st;
}

/* true, results | nil, error of an ended thread (the results stay, so a
** second join gives them again). */
static int join_results(lua_State *L, nb_thread *th, int st) {
  if (st == TH_FAILED) {
    lua_pushnil(L);
    lua_pushlstring(L, th->res ? th->res : "?", th->res ? th->reslen : 1);
    return 2;
  }
  lua_pushboolean(L, 1);
  return 1 + nio__bind_decode(L, th->res ? th->res : "", th->reslen);
}

static int join_k(lua_State *L, int status, lua_KContext ctx) {
  nb_thread *th = (nb_thread *)ctx;
  nb_task *t;
  int st;
  (void)status;
  NB_K_GUARD(t, L, th->S, ctx, join_k);
  if (th->reaped && (st = thread_state(th)) != TH_RUNNING) {
    nio__bind_waitq_remove(t);
    nio__bind_wait_end(t);
    lua_settop(L, 1);
    return join_results(L, th, st);
  }
  if (t->timedout) {
    nio__bind_waitq_remove(t);
    nio__bind_wait_end(t);
    lua_pushnil(L);
    lua_pushliteral(L, "timeout");
    return 2;
  }
  return nio__bind_yield(L, t, ctx, join_k);
}

static int l_thread_join(lua_State *L) {
  nb_handle *h = handle_check(L);
  nb_thread *th = h->th;
  int64_t tmo = nio__bind_opt_timeout(L, 2, -1);
  nb_task *t;
  int st;
  lua_settop(L, 1);
  if (th == NULL) {
    lua_pushnil(L);
    lua_pushliteral(L, "closed");
    return 2;
  }
  /* Ended, but its sends may still be in the inbox: a task waits for the
  ** done-call (unless the run ended, and with it the inbox). */
  if ((st = thread_state(th)) != TH_RUNNING &&
      (th->reaped || th->S == NULL || nio__bind_k_task(L, th->S) == NULL))
    return join_results(L, th, st);
  t = nio__bind_task(L, th->S, "join");
  if (th->S == NULL || th->S != t->S) {
    /* Its run ended: nothing will tell this one when it ends. */
    lua_pushnil(L);
    lua_pushliteral(L, "closed");
    return 2;
  }
  if (nio__bind_wait_begin(t, tmo) < 0) return nio__bind_nomem(L);
  nio__bind_waitq_add(&th->joiners, t);
  return nio__bind_yield(L, t, (lua_KContext)th, join_k);
}

static int l_thread_post(lua_State *L) {
  nb_handle *h = handle_check(L);
  nb_thread *th = h->th;
  nb_mail *m;
  const char *p;
  size_t len;
  int r = 0;
  luaL_checkany(L, 2);
  nio__bind_encode(L, 2, lua_gettop(L) - 1, "post", 1);
  p = lua_tolstring(L, -1, &len);
  if (th == NULL) return nio__bind_push_result(L, NIO_ECLOSED);
  if ((m = malloc(sizeof *m + len)) == NULL)
    return luaL_error(L, "not enough memory");
  m->next = NULL;
  m->len = len;
  memcpy(m->data, p, len);
  nio__mutex_lock(&th->mu);
  if (th->mclosed)
    r = NIO_ECLOSED;
  else if (th->mbytes > 0 && th->mbytes + len > THREAD_MAIL_LIMIT)
    r = NIO_EBUSY;
  if (r == 0) {
    if (th->mtail)
      th->mtail->next = m;
    else
      th->mhead = m;
    th->mtail = m;
    th->mbytes += len;
    nio__cond_broadcast(&th->cv);
    m = NULL;
  }
  nio__mutex_unlock(&th->mu);
  free(m);
  return nio__bind_push_result(L, r);
}

static int l_thread_status(lua_State *L) {
  static const char *const names[] = {"running", "done", "failed"};
  nb_handle *h = handle_check(L);
  lua_pushstring(L, h->th ? names[thread_state(h->th)] : "failed");
  return 1;
}

static void mail_close(nb_thread *th) {
  nio__mutex_lock(&th->mu);
  th->mclosed = 1;
  nio__cond_broadcast(&th->cv);
  nio__mutex_unlock(&th->mu);
}

static int l_thread_gc(lua_State *L) {
  nb_handle *h = handle_check(L);
  if (h->th) {
    /* No more posts can come: a receive waiting in the thread gets
    ** "closed" once the mailbox is empty. */
    mail_close(h->th);
    thread_unref(h->th);
    h->th = NULL;
  }
  return 0;
}

static int l_thread_tostring(lua_State *L) {
  nb_handle *h = handle_check(L);
  lua_pushfstring(L, "netio.thread (%p)", (void *)h->th);
  return 1;
}

void nio__bind_thread_open(lua_State *L) {
  static const luaL_Reg methods[] = {{"join", l_thread_join},
                                     {"post", l_thread_post},
                                     {"status", l_thread_status},
                                     {NULL, NULL}};
  static const luaL_Reg meta[] = {
      {"__gc", l_thread_gc}, {"__tostring", l_thread_tostring}, {NULL, NULL}};
  nio__bind_class(L, NB_THREAD_MT, methods, meta);
}

/* ---- the end of a run -------------------------------------------------- */

void nio__bind_threads_close_mail(nb_state *S) {
  for (nio_link *k = S->threads.first; k; k = k->next)
    mail_close(nio__list_item(k, nb_thread, link));
}

void nio__bind_threads_end(nb_state *S) {
  uint64_t deadline = nio__now_ns() + NB_STOP_GRACE_NS;
  nio_link *k;
  int st;
  while ((k = nio__list_pop_front(&S->threads)) != NULL) {
    nb_thread *th = nio__list_item(k, nb_thread, link);
    mail_close(th);
    nio__mutex_lock(&th->mu);
    while (th->state == TH_RUNNING) {
      uint64_t now = nio__now_ns();
      if (now >= deadline) break;
      nio__cond_wait(&th->cv, &th->mu, (int64_t)(deadline - now));
    }
    st = th->state;
    nio__mutex_unlock(&th->mu);
    if (st == TH_RUNNING) {
      nio__log(NIO_LOG_WARN,
               "netio: a thread was still running %.1f s after its run "
               "ended; it goes on alone (its netio.post now fails)",
               (double)NB_STOP_GRACE_NS / 1e9);
      nio__thread_detach(th->os);
    } else {
      nio__thread_join(th->os); /* ended: only its last steps are left */
    }
    th->os = NULL;
    nio__bind_waitq_clear(&th->joiners);
    th->S = NULL;
    thread_unref(th); /* the run's reference */
  }
}
