/*
** echo_engine.c: an echo server in C on the engine API (csrc/engine/engine.h)
** with no Lua -- set beside examples/echo_server.lua it isolates what the
** Lua binding costs; set beside echo_uring/echo_epoll, what the engine does.
**   echo_engine ip:port     (serves until killed; NETIO_BACKEND picks the
**                            backend as for netio)
**
** Each read event echoes all buffered input (copied into the output queue,
** as the binding does with a Lua string), then consumes it.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "engine/engine.h"

static nio_addr ee_addr;

static void ee_conn_cb(nio_conn *c, int events) {
  size_t len;
  const char *p;
  (void)events;
  if (c->err || c->eof) {
    nio__conn_close(c, 0);
    return;
  }
  p = nio__conn_input(c, &len);
  if (len == 0) return;
  if (nio__conn_write(c, p, len, NULL, NULL) < 0) {
    nio__conn_close(c, 0);
    return;
  }
  nio__conn_consume(c, len);
}

static void ee_listener_cb(nio_listener *l, int events) {
  nio_conn *c;
  (void)events;
  while ((c = nio__listener_accept(l, ee_conn_cb, NULL)) != NULL)
    nio__conn_setopt(c, "tcp-nodelay", 1);
}

static int ee_start(nio_engine *e, void *arg) {
  nio_listener *l;
  int r = nio__listen(e, &ee_addr, 4096, 0, 0, ee_listener_cb, NULL, &l);
  (void)arg;
  if (r < 0) {
    fprintf(stderr, "echo_engine: listen: %s\n", nio_strerror(r));
    return r;
  }
  fprintf(stderr, "echo_engine: backend %s\n", nio__engine_backend(e));
  return 0;
}

int main(int argc, char **argv) {
  nio_engine_hooks hooks;
  nio_engine *e;
  char host[64];
  int port, r;
  if (argc < 2 || nio__addr_split(argv[1], host, sizeof host, &port) < 0 ||
      nio__addr_numeric(host, port, &ee_addr) < 0) {
    fprintf(stderr, "usage: echo_engine ip:port\n");
    return 2;
  }
  if ((r = nio__engine_new(&e, NULL)) < 0) {
    fprintf(stderr, "echo_engine: %s\n", nio_strerror(r));
    return 1;
  }
  memset(&hooks, 0, sizeof hooks);
  hooks.start = ee_start;
  if ((r = nio__engine_start(e, &hooks)) < 0 || (r = nio__engine_join(e)) < 0)
    fprintf(stderr, "echo_engine: %s\n", nio_strerror(r));
  nio__engine_free(e);
  return r < 0 ? 1 : 0;
}
