/*
** resolve.c: host name resolution off the loop -- getaddrinfo on a
** detached helper thread, the result delivered back with nio__engine_call.
*/
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <netdb.h>
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

static int resolve_error(int eai) {
  switch (eai) {
  case EAI_NONAME:
#ifdef EAI_NODATA
  case EAI_NODATA:
#endif
  case EAI_SERVICE:
    return NIO_EAI_NONAME;
  case EAI_AGAIN:
    return NIO_EAI_AGAIN;
  case EAI_MEMORY:
    return NIO_ENOMEM;
  case EAI_FAMILY:
    return NIO_EAFNOSUPPORT;
  case EAI_SYSTEM:
    return errno ? nio_translate_sys_error(errno) : NIO_EAI_FAIL;
  default:
    return NIO_EAI_FAIL;
  }
}

static int resolve_lookup(const char *host, int port, nio_addr *a) {
  struct addrinfo hints, *res = NULL;
  int r;
  memset(&hints, 0, sizeof hints);
  /* No AI_ADDRCONFIG: it hides loopback addresses on a host with no
  ** configured address of that family, and "localhost" must work. */
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_protocol = IPPROTO_TCP;
  if ((r = getaddrinfo(host, NULL, &hints, &res)) != 0) return resolve_error(r);
  r = NIO_EAI_NONAME;
  for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
    if (ai->ai_addrlen > sizeof a->ss) continue;
    if (ai->ai_family == AF_INET) {
      memset(a, 0, sizeof *a);
      memcpy(&a->ss, ai->ai_addr, ai->ai_addrlen);
      ((struct sockaddr_in *)&a->ss)->sin_port = htons((uint16_t)port);
    } else if (ai->ai_family == AF_INET6) {
      memset(a, 0, sizeof *a);
      memcpy(&a->ss, ai->ai_addr, ai->ai_addrlen);
      ((struct sockaddr_in6 *)&a->ss)->sin6_port = htons((uint16_t)port);
    } else {
      continue;
    }
    a->len = (uint32_t)ai->ai_addrlen;
    r = 0;
    break; /* the first result: the resolver's preferred order */
  }
  freeaddrinfo(res);
  return r;
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
  q->res = resolve_lookup(q->host, q->port, &q->addr);
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
