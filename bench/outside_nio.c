/*
** outside_nio.c: nio_send() from C threads, for the outside-threads
** benchmark (bench/outside.sh).
**
**   outside_nio -a ip:port [-c conns] [-t threads] [-r rate]
**               [-l send_limit] [-q inbox_limit] [-b backoff_us]
**
** An embedded engine (as examples/embed.c does; NETIO_BACKEND picks the
** backend) runs a tiny Lua script that listens, prints "ready", accepts
** `conns` connections and hands each id to C through a registered C
** function. Then `threads` C threads run the same sender loop as
** outside_baseline.c (outside_common.h) with nio_send() as the call:
** NIO_EBUSY is "busy" (pause `backoff_us`, retry, counted), NIO_ECLOSED
** "closed". Limits go to nio_options (send_limit, inbox_limit; 0 = the
** engine's defaults, 4 MiB and 16 MiB). A task per connection waits in
** recv() and closes it at the reader's end: nio_send() answers "closed"
** only once the owner closed the connection (a failed write alone leaves
** it open, its bytes counted as outside_dropped), so the senders stop,
** the program prints their counts and ends the engine.
*/
#include <pthread.h>
#include <unistd.h>
#include <lua.h>
#include <lauxlib.h>
#include "netio.h"
#include "outside_common.h"

static const char server_lua[] =
    "local netio = require 'netio'\n"
    "local addr, n, limit = ...\n"
    "n, limit = tonumber(n), tonumber(limit)\n"
    "local l = assert(netio.listen(addr))\n"
    "io.stdout:write('ready\\n') io.stdout:flush()\n"
    "local conns = {}\n"
    "for i = 1, n do\n"
    "  local c = assert(l:accept())\n"
    "  c:setoption('tcp-nodelay', true)\n"
    "  if limit > 0 then c:setoption('send-limit', limit) end\n"
    "  conns[i] = c\n"
    "  netio.spawn(function() while c:recv() do end c:close() end)\n"
    "  report_id(c:id())\n"
    "end\n"
    "l:close()\n"
    "assert(netio.receive() == 'quit')\n"
    "for _, c in ipairs(conns) do c:close() end\n";

static struct {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  uint64_t *ids;
  int nids, want;
} shared = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, NULL, 0, 0};

static int report_id(lua_State *L) {
  pthread_mutex_lock(&shared.mu);
  if (shared.nids < shared.want)
    shared.ids[shared.nids++] = (uint64_t)luaL_checkinteger(L, 1);
  pthread_cond_broadcast(&shared.cv);
  pthread_mutex_unlock(&shared.mu);
  return 0;
}

static int nio_push(void *ctx, int ci, const unsigned char *msg) {
  int r = nio_send(((uint64_t *)ctx)[ci], msg, OM_SIZE);
  if (r == 0) return 0;
  if (r == NIO_EBUSY) return 1;
  if (r != NIO_ECLOSED)
    fprintf(stderr, "outside_nio: nio_send: %s\n", nio_strerror(r));
  return -1;
}

int main(int argc, char **argv) {
  om_opts oo;
  int nconn, nthreads, r, status;
  double rate;
  uint64_t backoff_ns;
  nio_options o = {0};
  nio_engine *e;
  lua_State *L;
  char nbuf[32], lbuf[32];
  char *targv[4];
  om_sender *snd;
  pthread_t *th;
  nio_stats st;

  if (om_parse_opts(argc, argv, "outside_nio", &oo) != 0) return 2;
  nconn = oo.nconn;
  nthreads = oo.nthreads;
  rate = oo.rate;
  backoff_ns = oo.backoff_ns;
  o.send_limit = oo.send_limit;
  o.inbox_limit = oo.queue_limit;
  shared.want = nconn;
  if ((shared.ids = calloc((size_t)nconn, sizeof *shared.ids)) == NULL)
    return 1;

  if ((r = nio_engine_new(&e, &o)) != 0) {
    fprintf(stderr, "outside_nio: nio_engine_new: %s\n", nio_strerror(r));
    return 1;
  }
  L = nio_engine_state(e);
  if (luaL_loadbuffer(L, server_lua, sizeof server_lua - 1, "=outside_nio") !=
      LUA_OK) {
    fprintf(stderr, "outside_nio: %s\n", lua_tostring(L, -1));
    return 1;
  }
  lua_pushcfunction(L, report_id);
  lua_setglobal(L, "report_id");
  snprintf(nbuf, sizeof nbuf, "%d", nconn);
  snprintf(lbuf, sizeof lbuf, "%zu", o.send_limit);
  targv[0] = "outside_nio";
  targv[1] = (char *)oo.addr;
  targv[2] = nbuf;
  targv[3] = lbuf;
  if ((r = nio_engine_start(e, NULL, 4, targv)) != 0) {
    fprintf(stderr, "outside_nio: nio_engine_start: %s\n", nio_strerror(r));
    return 1;
  }
  pthread_mutex_lock(&shared.mu);
  while (shared.nids < nconn) pthread_cond_wait(&shared.cv, &shared.mu);
  pthread_mutex_unlock(&shared.mu);

  snd = calloc((size_t)nthreads, sizeof *snd);
  th = calloc((size_t)nthreads, sizeof *th);
  if (!snd || !th) return 1;
  for (int t = 0; t < nthreads; t++) {
    snd[t] = (om_sender){.send = nio_push,
                         .ctx = shared.ids,
                         .tid = t,
                         .nthreads = nthreads,
                         .nconn = nconn,
                         .rate = rate / nthreads,
                         .backoff_ns = backoff_ns};
    if (pthread_create(&th[t], NULL, om_sender_run, &snd[t]) != 0) return 1;
  }
  for (int t = 0; t < nthreads; t++) pthread_join(th[t], NULL);

  nio_post(e, "quit", 4);
  r = nio_engine_join(e, &status);
  if (r != 0 || status != 0)
    fprintf(stderr, "outside_nio: engine: %s\n",
            nio_engine_error(e) ? nio_engine_error(e) : nio_strerror(r));
  nio_engine_stats(e, &st);
  nio_engine_free(e);
  {
    uint64_t sent = 0, busy = 0;
    for (int t = 0; t < nthreads; t++) sent += snd[t].sent, busy += snd[t].busy;
    printf("senders=%d sent=%llu busy=%llu outside_dropped=%llu\n", nthreads,
           (unsigned long long)sent, (unsigned long long)busy,
           (unsigned long long)st.outside_dropped);
  }
  return 0;
}
