/*
** resolve.c: host name resolution off the loop -- nio__addr_resolve
** (getaddrinfo) on a detached helper thread, the result delivered back
** with nio__engine_call.
*/
#include <stdlib.h>
#include <string.h>
#include "internal.h"

/*
** A resolution in flight. Shared by the worker and one helper thread, so
** it is reference counted (refs, under mu): one reference for the engine's
** list (dropped when the result is delivered or the engine cancels), one
** for the helper thread (handed to the inbox call when it delivers). The
** engine may end while getaddrinfo still runs: it then sets e to NULL
** under mu, and the thread, which touches the engine only under mu and
** only while e is set, drops its result.
*/
struct nio_resolve_req {
  nio_mutex mu;
  nio_engine *e; /* under mu; NULL once the engine gave up on it */
  int refs;      /* under mu */
  /* Worker only. */
  nio_resolve_req *prev, *next;
  nio_resolve_cb cb;
  void *arg;
  unsigned linked : 1;
  /* Written by the thread before its inbox call, read by the worker in it
  ** (the inbox lock orders them). */
  int res;
  int port;
  nio_addr addr;
  char host[];
};

static void resolve_unref(nio_resolve_req *q) {
  int n;
  nio__mutex_lock(&q->mu);
  n = --q->refs;
  nio__mutex_unlock(&q->mu);
  if (n == 0) {
    nio__mutex_destroy(&q->mu);
    free(q);
  }
}

static void resolve_unlink(nio_engine *e, nio_resolve_req *q) {
  if (q->prev)
    q->prev->next = q->next;
  else
    e->resolving = q->next;
  if (q->next) q->next->prev = q->prev;
  q->prev = q->next = NULL;
  q->linked = 0;
}

/* On the worker: hand the result to the caller unless the engine already
** cancelled the request. Drops the thread's reference. */
static void resolve_deliver(nio_engine *e, void *arg) {
  nio_resolve_req *q = arg;
  if (q->linked) {
    resolve_unlink(e, q);
    q->cb(q->arg, q->res, q->res == 0 ? &q->addr : NULL);
    resolve_unref(q); /* the list's */
  }
  resolve_unref(q); /* the thread's, carried by this call */
}

static void resolve_thread(void *arg) {
  nio_resolve_req *q = arg;
  int handed = 0;
  q->res = nio__addr_resolve(q->host, q->port, &q->addr);
  nio__mutex_lock(&q->mu);
  if (q->e && nio__engine_call(q->e, resolve_deliver, q) == 0) handed = 1;
  nio__mutex_unlock(&q->mu);
  if (!handed) resolve_unref(q);
}

int nio__resolve(nio_engine *e, const char *host, int port, nio_resolve_cb cb,
                 void *arg) {
  nio_resolve_req *q;
  size_t n;
  int r;
  if (host == NULL || cb == NULL || port < 0 || port > 65535) return NIO_EINVAL;
  if ((n = strlen(host)) == 0 || n > 1024) return NIO_EBADADDR;
  if (e->ending) return NIO_ECLOSED;
  if ((q = calloc(1, sizeof *q + n + 1)) == NULL) return NIO_ENOMEM;
  if ((r = nio__mutex_init(&q->mu)) < 0) {
    free(q);
    return r;
  }
  memcpy(q->host, host, n + 1);
  q->port = port;
  q->cb = cb;
  q->arg = arg;
  q->e = e;
  q->refs = 2;
  q->linked = 1;
  q->next = e->resolving;
  if (q->next) q->next->prev = q;
  e->resolving = q;
  if ((r = nio__thread_detach_start(resolve_thread, q)) < 0) {
    resolve_unlink(e, q);
    nio__mutex_destroy(&q->mu);
    free(q);
    return r;
  }
  return 0;
}

void nio__resolve_cancel_all(nio_engine *e) {
  nio_resolve_req *q;
  while ((q = e->resolving) != NULL) {
    nio__mutex_lock(&q->mu);
    q->e = NULL;
    nio__mutex_unlock(&q->mu);
    resolve_unlink(e, q);
    q->cb(q->arg, NIO_ECANCELED, NULL);
    resolve_unref(q);
  }
}
