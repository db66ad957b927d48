/*
** embed.c: a C program that embeds netio. It starts an engine on a Lua
** server script, learns the ids of the clients that connect, and pushes
** numbered lines to every client from two threads of its own with
** nio_send(). Its clients (threads of this program with plain blocking
** sockets) check every byte: each line arrives once, in the order its
** thread sent it. Exit status 0 when every check passed.
**
** Build against an installed netio:
**   cc embed.c $(pkg-config --cflags --libs netio) -o embed
** Run: ./embed [clients] [lines-per-thread-per-client]   (default 4 20000)
*/
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <lua.h>
#include <lauxlib.h>
#include "netio.h"
#ifdef _WIN32 /* MinGW: Winsock, and winpthreads for pthread.h */
#include <winsock2.h>
#include <ws2tcpip.h>
typedef SOCKET sock_t;
#define sock_close closesocket
#define nap_us(us) Sleep((us) / 1000 + 1)
#else
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>
typedef int sock_t;
#define sock_close close
#define nap_us(us) usleep(us)
#endif

#define MAX_CLIENTS 64
#define SENDERS 2

/* The server (the first task; the C functions are globals set below):
** accepts clients and hands their ids to C (report_client). "quit", posted by
*C, closes everything after the
** queued output was sent (close() flushes), and the engine ends. */
static const char server_lua[] =
    "local netio = require 'netio'\n"
    "local report_port, report_client = report_port, report_client\n"
    "local l = assert(netio.listen('127.0.0.1:0'))\n"
    "report_port(select(2, l:getsockname()))\n"
    "local conns = {}\n"
    "netio.spawn(function()\n"
    "  while true do\n"
    "    local c = l:accept()\n"
    "    if not c then return end\n"
    "    conns[#conns + 1] = c\n"
    "    report_client(c:id())\n"
    "  end\n"
    "end)\n"
    "assert(netio.receive() == 'quit')\n"
    "l:close()\n"
    "for _, c in ipairs(conns) do c:close() end\n";

/* What the engine tells the program, under lock. */
static struct {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int port;
  uint64_t ids[MAX_CLIENTS];
  int nids;
} shared = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, {0}, 0};

static int nclients = 4, nlines = 20000;

/* C functions the script calls; they run on the engine's worker thread. */
static int report_port(lua_State *L) {
  pthread_mutex_lock(&shared.mu);
  shared.port = (int)luaL_checkinteger(L, 1);
  pthread_cond_broadcast(&shared.cv);
  pthread_mutex_unlock(&shared.mu);
  return 0;
}

static int report_client(lua_State *L) {
  pthread_mutex_lock(&shared.mu);
  if (shared.nids < MAX_CLIENTS)
    shared.ids[shared.nids++] = (uint64_t)luaL_checkinteger(L, 1);
  pthread_cond_broadcast(&shared.cv);
  pthread_mutex_unlock(&shared.mu);
  return 0;
}

/* A sender: line k of thread t to client c is "t k\n", in order, retrying
** while the engine answers NIO_EBUSY (the client reads slower). */
static void *sender(void *arg) {
  int t = (int)(intptr_t)arg;
  char line[64];
  long busy = 0;
  for (int k = 0; k < nlines; k++)
    for (int c = 0; c < nclients; c++) {
      int n = snprintf(line, sizeof line, "%d %d\n", t, k), r;
      while ((r = nio_send(shared.ids[c], line, (size_t)n)) == NIO_EBUSY) {
        busy++;
        nap_us(100);
      }
      if (r != 0) {
        fprintf(stderr, "embed: sender %d: nio_send: %s\n", t, nio_strerror(r));
        return (void *)1;
      }
    }
  printf("embed: sender %d: %d lines to each of %d clients (%ld EBUSY "
         "retries)\n",
         t, nlines, nclients, busy);
  return NULL;
}

/* A client: reads until the server closes, checks each line. */
static void *client(void *arg) {
  sock_t fd = (sock_t)(intptr_t)arg;
  int next[SENDERS] = {0}, t, k, n;
  char buf[65536], line[64];
  size_t ll = 0;
  while ((n = (int)recv(fd, buf, sizeof buf, 0)) > 0) {
    for (int i = 0; i < n; i++) {
      if (buf[i] != '\n') {
        if (ll + 1 >= sizeof line) return (void *)1;
        line[ll++] = buf[i];
        continue;
      }
      line[ll] = '\0';
      ll = 0;
      if (sscanf(line, "%d %d", &t, &k) != 2 || t < 0 || t >= SENDERS ||
          k != next[t]) {
        fprintf(stderr, "embed: client: unexpected line \"%s\"\n", line);
        return (void *)1;
      }
      next[t]++;
    }
  }
  sock_close(fd);
  for (t = 0; t < SENDERS; t++)
    if (next[t] != nlines) {
      fprintf(stderr, "embed: client: %d of %d lines from sender %d\n", next[t],
              nlines, t);
      return (void *)1;
    }
  return NULL;
}

int main(int argc, char **argv) {
  nio_engine *e;
  lua_State *L;
  pthread_t cl[MAX_CLIENTS], se[SENDERS];
  struct sockaddr_in a;
  void *res;
  int r, status, failed = 0;
  if (argc > 1) nclients = atoi(argv[1]);
  if (argc > 2) nlines = atoi(argv[2]);
  if (nclients < 1 || nclients > MAX_CLIENTS || nlines < 1) {
    fprintf(stderr, "usage: embed [clients (1..%d)] [lines]\n", MAX_CLIENTS);
    return 2;
  }
#ifdef _WIN32
  {
    WSADATA wsa;
    WSAStartup(MAKEWORD(2, 2), &wsa);
  }
#endif

  /* The engine, its script, and two C functions for the script. */
  if ((r = nio_engine_new(&e, NULL)) != 0) {
    fprintf(stderr, "embed: nio_engine_new: %s\n", nio_strerror(r));
    return 1;
  }
  L = nio_engine_state(e);
  if (luaL_loadbuffer(L, server_lua, sizeof server_lua - 1, "=server") !=
      LUA_OK) {
    fprintf(stderr, "embed: %s\n", lua_tostring(L, -1));
    return 1;
  }
  lua_pushcfunction(L, report_port);
  lua_setglobal(L, "report_port");
  lua_pushcfunction(L, report_client);
  lua_setglobal(L, "report_client");
  if ((r = nio_engine_start(e, NULL, 0, NULL)) != 0) {
    fprintf(stderr, "embed: nio_engine_start: %s\n", nio_strerror(r));
    return 1;
  }

  /* Clients connect; the server reports their ids. */
  pthread_mutex_lock(&shared.mu);
  while (shared.port == 0) pthread_cond_wait(&shared.cv, &shared.mu);
  pthread_mutex_unlock(&shared.mu);
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_port = htons((uint16_t)shared.port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  for (int i = 0; i < nclients; i++) {
    sock_t fd = socket(AF_INET, SOCK_STREAM, 0);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
      fprintf(stderr, "embed: cannot connect to the server\n");
      return 1;
    }
    pthread_create(&cl[i], NULL, client, (void *)(intptr_t)fd);
  }
  pthread_mutex_lock(&shared.mu);
  while (shared.nids < nclients) pthread_cond_wait(&shared.cv, &shared.mu);
  pthread_mutex_unlock(&shared.mu);

  /* Two threads of this program push lines to every client. */
  for (int t = 0; t < SENDERS; t++)
    pthread_create(&se[t], NULL, sender, (void *)(intptr_t)t);
  for (int t = 0; t < SENDERS; t++) {
    pthread_join(se[t], &res);
    failed |= res != NULL;
  }

  /* Tell the script to close up; queued lines are still delivered. */
  nio_post(e, "quit", 4);
  for (int i = 0; i < nclients; i++) {
    pthread_join(cl[i], &res);
    failed |= res != NULL;
  }
  r = nio_engine_join(e, &status);
  if (r != 0 || status != 0) {
    fprintf(stderr, "embed: engine: %s\n",
            nio_engine_error(e) ? nio_engine_error(e) : nio_strerror(r));
    failed = 1;
  }
  nio_engine_free(e);
  printf("embed: %s: %d clients got %d lines from each of %d threads, in "
         "order\n",
         failed ? "FAILED" : "ok", nclients, nlines, SENDERS);
  return failed ? 1 : 0;
}
