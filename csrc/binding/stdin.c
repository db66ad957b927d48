/*
** stdin.c: netio.stdin() -- the process's standard input as a read-only
** stream with the recv patterns of a connection, read without blocking
** the engine.
**
** One reader thread per process reads standard input (blocking) and writes
** what it read into the writer end of a socket pair; the other end is an
** ordinary connection of the run that asked, so recv, its patterns and its
** timeouts work as on any socket, on every backend, and the pair's buffer
** is the back-pressure: the reader stops reading while nobody reads the
** stream. A run that ends closes its end; bytes the reader holds then go
** to the stream of the next run that asks.
*/
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include "binding.h"

#define STDIN_CHUNK 65536

/* Process-wide, made by the first netio.stdin() (init_lock guards that). */
static atomic_flag stdin_init_lock = ATOMIC_FLAG_INIT;
static struct {
  int ready;
  nio_mutex mu;
  nio_cond cv;      /* a writer end was installed */
  nio_sock out;     /* the current stream's writer end, or NIO_BAD_SOCK */
  nio_sock sending; /* the end the reader is sending on, or NIO_BAD_SOCK */
  int eof;          /* standard input ended */
} stdin_g;

/* The reader owns every writer end it was given: it closes one when a
** newer one replaced it and it is done with it. */
static void stdin_deliver(const char *p, size_t n) {
  while (n > 0) {
    nio_sock s;
    long r;
    nio__mutex_lock(&stdin_g.mu);
    while (stdin_g.out == NIO_BAD_SOCK)
      nio__cond_wait(&stdin_g.cv, &stdin_g.mu, -1);
    s = stdin_g.sending = stdin_g.out;
    nio__mutex_unlock(&stdin_g.mu);
    r = nio__sock_send(s, p, n);
    nio__mutex_lock(&stdin_g.mu);
    stdin_g.sending = NIO_BAD_SOCK;
    if (r < 0 && stdin_g.out == s)
      stdin_g.out = NIO_BAD_SOCK; /* its run closed it */
    if (stdin_g.out != s) nio__sock_close(s);
    nio__mutex_unlock(&stdin_g.mu);
    if (r > 0) {
      p += r;
      n -= (size_t)r;
    }
  }
}

static void stdin_reader(void *arg) {
  char *buf = malloc(STDIN_CHUNK);
  long n;
  (void)arg;
  nio__thread_block_signals();
  for (;;) {
    n = buf ? nio__sys_read_stdin(buf, STDIN_CHUNK) : 0;
    if (n <= 0) break;
    stdin_deliver(buf, (size_t)n);
  }
  free(buf);
  nio__mutex_lock(&stdin_g.mu);
  stdin_g.eof = 1;
  if (stdin_g.out != NIO_BAD_SOCK) {
    nio__sock_close(stdin_g.out); /* the stream sees the end */
    stdin_g.out = NIO_BAD_SOCK;
  }
  nio__mutex_unlock(&stdin_g.mu);
}

static int stdin_start(void) {
  int r = 0;
  while (atomic_flag_test_and_set(&stdin_init_lock))
    ;
  if (!stdin_g.ready) {
    stdin_g.out = stdin_g.sending = NIO_BAD_SOCK;
    if ((r = nio__mutex_init(&stdin_g.mu)) == 0) {
      if ((r = nio__cond_init(&stdin_g.cv)) != 0)
        nio__mutex_destroy(&stdin_g.mu);
      else if ((r = nio__thread_detach_start(stdin_reader, NULL)) != 0) {
        nio__cond_destroy(&stdin_g.cv);
        nio__mutex_destroy(&stdin_g.mu);
      } else {
        stdin_g.ready = 1;
      }
    }
  }
  atomic_flag_clear(&stdin_init_lock);
  return r;
}

/* Give the reader a new writer end. */
static void stdin_install(nio_sock w) {
  nio_sock old;
  nio__mutex_lock(&stdin_g.mu);
  if (stdin_g.eof) {
    nio__mutex_unlock(&stdin_g.mu);
    nio__sock_close(w); /* the stream sees the end at once */
    return;
  }
  old = stdin_g.out;
  stdin_g.out = w;
  if (old != NIO_BAD_SOCK && old != stdin_g.sending) nio__sock_close(old);
  nio__cond_broadcast(&stdin_g.cv);
  nio__mutex_unlock(&stdin_g.mu);
}

/* netio.stdin(): the run's stream (made at the first call, and again
** after it was closed). */
int nio__bind_l_stdin(lua_State *L) {
  nb_state *S = nio__bind_current(L);
  nb_conn *nb;
  nio_conn *c;
  nio_sock e, w;
  int r;
  if (S == NULL || S->e == NULL) {
    lua_pushliteral(L, "netio: stdin must be called from a netio task");
    return lua_error(L);
  }
  nio__bind_state_table(L, S);
  if (lua_getfield(L, -1, "stdin") == LUA_TUSERDATA &&
      ((nb_conn *)lua_touserdata(L, -1))->c != NULL)
    return 1;
  lua_pop(L, 1);
  if ((r = stdin_start()) != 0) return nio__bind_fail(L, r);
  nb = nio__bind_conn_new(L, S, 0);
  nb->readonly = 1;
  nb->connected = 1;
  if ((r = nio__sock_pair(&e, &w)) != 0) return nio__bind_fail(L, r);
  if ((r = nio__conn_adopt(S->e, e, nio__bind_conn_cb, NULL, &c)) != 0) {
    nio__sock_close(e);
    nio__sock_close(w);
    return nio__bind_fail(L, r);
  }
  nio__bind_conn_attach(nb, c);
  stdin_install(w);
  lua_pushvalue(L, -1);
  lua_setfield(L, -3, "stdin");
  return 1;
}
