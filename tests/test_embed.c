/*
** test_embed.c: the public embedding API of netio.h -- an engine started on
** a script returns at once; C threads push bytes to its connections with
** nio_send and messages to its tasks with nio_post; stop, join and free in
** every order; start errors reported; 100 engines in a row (leaks show
** under ASan).
*/
#include <stdatomic.h>
#include <string.h>
#include <lua.h>
#include <lauxlib.h>
#include "helpers.h"
#include "netio.h"

/* What the script tells C, through the C function `report`. */
typedef struct embed {
  nio_mutex mu;
  nio_cond cv;
  int port;
  uint64_t id;
  char said[128];
} embed;

static int l_report(lua_State *L) {
  embed *x = lua_touserdata(L, lua_upvalueindex(1));
  const char *what = luaL_checkstring(L, 1);
  nio__mutex_lock(&x->mu);
  if (strcmp(what, "port") == 0)
    x->port = (int)luaL_checkinteger(L, 2);
  else if (strcmp(what, "id") == 0)
    x->id = (uint64_t)luaL_checkinteger(L, 2);
  else
    snprintf(x->said, sizeof x->said, "%s", luaL_checkstring(L, 2));
  nio__cond_broadcast(&x->cv);
  nio__mutex_unlock(&x->mu);
  return 0;
}

/* A server of one client: reports its port and the client's id, then
** waits for "quit" (nio_post), reports what it got, and closes (flushing). */
static const char server_lua[] =
    "local netio = require 'netio'\n"
    "local l = assert(netio.listen('127.0.0.1:0'))\n"
    "report('port', select(2, l:getsockname()))\n"
    "local c = assert(l:accept(10))\n"
    "report('id', c:id())\n"
    "local msg = netio.receive(10)\n"
    "report('said', tostring(msg))\n"
    "c:close()\n";

static nio_engine *embed_new(embed *x, const char *src) {
  nio_engine *e;
  lua_State *L;
  memset(x, 0, sizeof *x);
  assert_int_equal(nio__mutex_init(&x->mu), 0);
  assert_int_equal(nio__cond_init(&x->cv), 0);
  assert_int_equal(nio_engine_new(&e, NULL), 0);
  L = nio_engine_state(e);
  assert_non_null(L);
  lua_pushlightuserdata(L, x);
  lua_pushcclosure(L, l_report, 1);
  lua_setglobal(L, "report");
  if (src) {
    if (luaL_loadbuffer(L, src, strlen(src), "=test") != LUA_OK)
      th_fail("the test script does not load: %s", lua_tostring(L, -1));
  }
  return e;
}

static void embed_done(embed *x) {
  nio__cond_destroy(&x->cv);
  nio__mutex_destroy(&x->mu);
}

/* Wait (bounded) until *field is set by the script. */
static int wait_for(embed *x, const void *field, size_t size) {
  static const char zero[8] = {0};
  int64_t deadline = th_now_ms() + 10000;
  int ok;
  nio__mutex_lock(&x->mu);
  while (!(ok = memcmp(field, zero, size) != 0) && th_now_ms() < deadline)
    nio__cond_wait(&x->cv, &x->mu, 100000000);
  nio__mutex_unlock(&x->mu);
  return ok;
}

typedef struct pusher {
  uint64_t id;
  int idx, lines;
} pusher;

static void pusher_thread(void *arg) {
  pusher *p = arg;
  char line[32];
  for (int k = 0; k < p->lines; k++) {
    int n = snprintf(line, sizeof line, "%d %d\n", p->idx, k), r;
    while ((r = nio_send(p->id, line, (size_t)n)) == NIO_EBUSY) th_usleep(100);
    if (r != 0) return;
  }
}

/* One engine: a client connects, two C threads send it lines, a post
** ends the script; the client checks every line. */
static void one_engine(int lines) {
  embed x;
  nio_engine *e = embed_new(&x, server_lua);
  nio_addr a;
  nio_thread *th[2];
  pusher p[2];
  int fd, status = -1, next[2] = {0, 0}, t, k;
  char buf[4096], line[32];
  size_t ll = 0;
  long n;
  assert_int_equal(nio_engine_start(e, NULL, 0, NULL), 0);
  if (!wait_for(&x, &x.port, sizeof x.port))
    th_fail("the script did not report its port");
  th_addr_loopback(&a, x.port);
  fd = th_client(&a);
  if (!wait_for(&x, &x.id, sizeof x.id))
    th_fail("the script did not report the client's id");
  for (int i = 0; i < 2; i++) {
    p[i].id = x.id;
    p[i].idx = i;
    p[i].lines = lines;
    assert_int_equal(nio__thread_start(&th[i], pusher_thread, &p[i]), 0);
  }
  for (int i = 0; i < 2; i++) nio__thread_join(th[i]);
  assert_int_equal(nio_post(e, "quit", 4), 0);
  while ((n = th_recv(fd, buf, sizeof buf)) > 0)
    for (long i = 0; i < n; i++) {
      if (buf[i] != '\n') {
        if (ll + 1 >= sizeof line) th_fail("a line longer than expected");
        line[ll++] = buf[i];
        continue;
      }
      line[ll] = '\0';
      ll = 0;
      if (sscanf(line, "%d %d", &t, &k) != 2 || t < 0 || t > 1 || k != next[t])
        th_fail("expected the next line of a sender, got \"%s\"", line);
      next[t]++;
    }
  th_close(fd);
  if (n < 0) th_fail("reading the lines: %s", nio_strerror((int)n));
  if (next[0] != lines || next[1] != lines)
    th_fail("expected %d lines from each sender, got %d and %d", lines, next[0],
            next[1]);
  assert_int_equal(nio_engine_join(e, &status), 0);
  if (status != 0) th_fail("script failed: %s", nio_engine_error(e));
  if (strcmp(x.said, "quit") != 0)
    th_fail("expected the script to receive \"quit\", got \"%s\"", x.said);
  /* After the end: the id is dead, posts are refused. */
  assert_int_equal(nio_send(x.id, "x", 1), NIO_ECLOSED);
  assert_int_equal(nio_post(e, "x", 1), NIO_ECLOSED);
  nio_engine_free(e);
  assert_int_equal(nio_send(x.id, "x", 1), NIO_ECLOSED);
  embed_done(&x);
}

static void engine_runs_while_c_threads_send(void **state) {
  (void)state;
  one_engine(20000);
}

static void hundred_engines_in_a_row(void **state) {
  (void)state;
  for (int i = 0; i < 100; i++) one_engine(50);
}

static void start_reports_script_errors(void **state) {
  embed x;
  nio_engine *e;
  const char *msg;
  char path[] = "/nonexistent/netio-test-script.lua";
  (void)state;
  /* No such file. */
  e = embed_new(&x, NULL);
  assert_int_equal(nio_engine_start(e, path, 1, NULL), NIO_ENOENT);
  msg = nio_engine_error(e);
  if (msg == NULL || strstr(msg, "netio-test-script.lua") == NULL)
    th_fail("expected an error naming the script, got %s", msg ? msg : "NULL");
  nio_engine_free(e);
  embed_done(&x);
  /* Nothing to run. */
  e = embed_new(&x, NULL);
  assert_int_equal(nio_engine_start(e, NULL, 0, NULL), NIO_EINVAL);
  assert_non_null(nio_engine_error(e));
  nio_engine_free(e);
  embed_done(&x);
  /* Started twice. */
  e = embed_new(&x, "return 1");
  assert_int_equal(nio_engine_start(e, NULL, 0, NULL), 0);
  assert_int_equal(nio_engine_start(e, "-", 0, NULL), NIO_EINVAL);
  assert_int_equal(nio_engine_join(e, NULL), 0);
  nio_engine_free(e);
  embed_done(&x);
}

static void script_error_gives_status_1_and_traceback(void **state) {
  embed x;
  nio_engine *e = embed_new(&x, "local function f() error('boom') end f()");
  const char *msg;
  int status = -1;
  (void)state;
  assert_int_equal(nio_engine_start(e, NULL, 0, NULL), 0);
  assert_int_equal(nio_engine_join(e, &status), 0);
  assert_int_equal(status, 1);
  msg = nio_engine_error(e);
  if (msg == NULL || strstr(msg, "boom") == NULL ||
      strstr(msg, "stack traceback") == NULL)
    th_fail("expected the error with a traceback, got %s", msg ? msg : "NULL");
  nio_engine_free(e);
  embed_done(&x);
}

static void arguments_reach_the_script(void **state) {
  embed x;
  char *argv[] = {"prog", "a", "bb", NULL};
  nio_engine *e = embed_new(
      &x, "local a, b = ... report('said', arg[0] .. ',' .. a .. ',' .. b)");
  int status;
  (void)state;
  assert_int_equal(nio_engine_start(e, NULL, 3, argv), 0);
  assert_int_equal(nio_engine_join(e, &status), 0);
  assert_int_equal(status, 0);
  assert_string_equal(x.said, "prog,a,bb");
  nio_engine_free(e);
  embed_done(&x);
}

/* A server that would run forever: stop from this thread ends it within
** the stop's grace; free of a running engine stops and joins it. */
static const char forever_lua[] =
    "local netio = require 'netio'\n"
    "local l = assert(netio.listen('127.0.0.1:0'))\n"
    "report('port', select(2, l:getsockname()))\n"
    "while l:accept() do end\n";

static void stop_and_free_a_running_engine(void **state) {
  embed x;
  nio_engine *e;
  int status = -1;
  int64_t t0;
  (void)state;
  e = embed_new(&x, forever_lua);
  assert_int_equal(nio_engine_start(e, NULL, 0, NULL), 0);
  assert_true(wait_for(&x, &x.port, sizeof x.port));
  t0 = th_now_ms();
  nio_engine_stop(e);
  assert_int_equal(nio_engine_join(e, &status), 0);
  assert_int_equal(status, 0);
  if (th_now_ms() - t0 > 5000)
    th_fail("expected the stop within the grace, took %lld ms",
            (long long)(th_now_ms() - t0));
  nio_engine_free(e);
  embed_done(&x);
  /* Free without stop or join. */
  e = embed_new(&x, forever_lua);
  assert_int_equal(nio_engine_start(e, NULL, 0, NULL), 0);
  assert_true(wait_for(&x, &x.port, sizeof x.port));
  nio_engine_free(e);
  embed_done(&x);
  /* Free without a start. */
  e = embed_new(&x, NULL);
  nio_engine_free(e);
  embed_done(&x);
}

static void unknown_backend_fails_at_join(void **state) {
  nio_engine *e;
  nio_options o;
  lua_State *L;
  int status = -1, r;
  (void)state;
  memset(&o, 0, sizeof o);
  o.backend = "bogus";
  assert_int_equal(nio_engine_new(&e, &o), 0);
  L = nio_engine_state(e);
  assert_int_equal(luaL_loadstring(L, "return 1"), LUA_OK);
  assert_int_equal(nio_engine_start(e, NULL, 0, NULL), 0);
  r = nio_engine_join(e, &status);
  assert_int_equal(r, NIO_EINVAL);
  assert_int_equal(status, 1);
  if (nio_engine_error(e) == NULL ||
      strstr(nio_engine_error(e), "bogus") == NULL)
    th_fail("expected an error naming the backend, got %s",
            nio_engine_error(e) ? nio_engine_error(e) : "NULL");
  nio_engine_free(e);
}

/* forge(u): a new userdata with u's bytes and no metatable -- what another
** C library's userdata could look like by chance. */
static int l_forge(lua_State *L) {
  size_t n = lua_rawlen(L, 1);
  void *p = lua_touserdata(L, 1), *q;
  luaL_argcheck(L, p != NULL && n > 0, 1, "full userdata expected");
  q = lua_newuserdatauv(L, n, 0);
  memcpy(q, p, n);
  return 1;
}

/* A conn method knows its self by the class's metatable, not by its
** bytes: a byte-for-byte copy of a conn is refused. */
static void conn_methods_refuse_a_forged_conn(void **state) {
  static const char src[] =
      "local netio = require 'netio'\n"
      "local l = assert(netio.listen('127.0.0.1:0'))\n"
      "local c = assert(netio.connect('127.0.0.1:' .. "
      "select(2, l:getsockname())))\n"
      "local ok, err = pcall(function() return c.id(forge(c)) end)\n"
      "report('said', ok and 'the forged conn was taken' or tostring(err))\n"
      "c:close() l:close()\n";
  const char *want = "bad argument #1 to 'id' (netio.conn expected, got "
                     "userdata)";
  embed x;
  nio_engine *e = embed_new(&x, src);
  int status = -1;
  (void)state;
  lua_register(nio_engine_state(e), "forge", l_forge);
  assert_int_equal(nio_engine_start(e, NULL, 0, NULL), 0);
  assert_int_equal(nio_engine_join(e, &status), 0);
  if (status != 0) th_fail("script failed: %s", nio_engine_error(e));
  if (strstr(x.said, want) == NULL)
    th_fail("expected \"%s\", got \"%s\"", want, x.said);
  nio_engine_free(e);
  embed_done(&x);
}

/* nio_backend_name lists this build's backends, best first, each one a
** name the engine accepts, and the first that can run is the one a run
** without a backend name picks. */
static void backend_names_list_this_builds_backends(void **state) {
#ifdef _WIN32
  static const char *const want[] = {"iocp", NULL};
#elif defined(NIO_HAVE_URING)
  static const char *const want[] = {"uring", "epoll", NULL};
#else /* a Linux build without liburing: epoll only */
  static const char *const want[] = {"epoll", NULL};
#endif
  const char *name, *best = NULL;
  int i;
  (void)state;
  for (i = 0; (name = nio_backend_name(i)) != NULL; i++) {
    if (want[i] == NULL || strcmp(name, want[i]) != 0)
      th_fail("backend %d: expected %s, got %s", i, want[i] ? want[i] : "NULL",
              name);
    if (best == NULL && nio_backend_available(name)) best = name;
  }
  if (want[i] != NULL) th_fail("backend %d (%s) missing", i, want[i]);
  assert_null(nio_backend_name(-1));
  assert_null(nio_backend_name(i + 1));
  if (best == NULL) th_fail("no backend of this build can run here");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(engine_runs_while_c_threads_send),
      cmocka_unit_test(hundred_engines_in_a_row),
      cmocka_unit_test(start_reports_script_errors),
      cmocka_unit_test(script_error_gives_status_1_and_traceback),
      cmocka_unit_test(arguments_reach_the_script),
      cmocka_unit_test(stop_and_free_a_running_engine),
      cmocka_unit_test(unknown_backend_fails_at_join),
      cmocka_unit_test(backend_names_list_this_builds_backends),
      cmocka_unit_test(conn_methods_refuse_a_forged_conn),
  };
  th_init(0);
  return cmocka_run_group_tests(tests, NULL, NULL);
}
