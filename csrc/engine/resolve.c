/*
** resolve.c: host name resolution off the loop -- nio__addr_resolve
** (getaddrinfo, which blocks) on a small pool of helper threads per
** engine, each result delivered back with nio__engine_call.
*/
#include <stdlib.h>
#include <string.h>
#include "internal.h"
#include "../util/log.h"

/* At most this many lookups of one engine run at once; at most
** RESOLVE_QUEUE_MAX more wait for a thread (then nio__resolve answers
** NIO_EBUSY). */
#define RESOLVE_THREADS 4
#define RESOLVE_QUEUE_MAX 1024

enum {
  RQ_QUEUED,  /* in the pool's queue */
  RQ_RUNNING, /* a helper thread looks it up */
  RQ_HANDED,  /* an inbox call carries it to the worker */
  RQ_LOST     /* the hand-off failed (no memory): only the list has it */
};

/*
** A resolution: allocated by nio__resolve, linked in e->resolving (worker
** only) until its callback ran. Who frees it follows its state, which
** changes under the pool's mu: QUEUED and LOST, the worker (delivery is
** impossible); RUNNING, the helper thread, if the engine canceled it
** meanwhile; HANDED, resolve_deliver on the worker (a call the inbox
** accepted always runs, even as the engine ends).
*/
struct nio_resolve_req {
  nio_link link;  /* in e->resolving: worker only */
  nio_link qlink; /* in the pool's queue: under mu */
  nio_resolve_cb cb;
  void *arg;
  int state;    /* under mu (the worker alone once HANDED) */
  int canceled; /* under mu: its callback already ran with NIO_ECANCELED */
  /* Written by the helper before the hand-off, read by the worker in the
  ** call (the inbox lock orders them). */
  int res; /* the count of addrs, or NIO_E* */
  int port;
  nio_addr *addrs; /* malloc'ed by the helper; freed with the request */
  char host[];
};

static void resolve_req_free(nio_resolve_req *q) {
  free(q->addrs);
  free(q);
}

/*
** The engine's pool of lookup threads: made by the first nio__resolve,
** stopped by nio__resolve_cancel_all as the engine ends. Shared by the
** worker and the threads, so counted (refs, under mu): one reference for
** the engine, one per thread, the last frees it. Threads start when a
** lookup is queued and no thread is idle, up to RESOLVE_THREADS, and wait
** for more work until the stop. Then an idle thread ends at once and a
** busy one when its getaddrinfo returns (it cannot be interrupted): the
** engine does not wait for it, and the result is dropped.
*/
struct nio_resolver {
  nio_mutex mu;
  nio_cond cv; /* work queued, or the stop (broadcast) */
  /* Set at creation. e: for hand-offs, made under mu while !stop, so
  ** before the engine ends. */
  nio_engine *e;
  uint64_t delay_ns; /* NETIO_TEST_RESOLVE_DELAY: tests of slow lookups */
  char *inject;      /* NETIO_TEST_RESOLVE (a copy), or NULL */
  /* Under mu. */
  nio_list queue; /* of nio_resolve_req.qlink */
  int nqueued, nthreads, idle, refs, stop;
  /* Worker only: the threads started, detached at the stop. */
  nio_thread *threads[RESOLVE_THREADS];
};

static void resolver_unref(nio_resolver *p) {
  int n;
  nio__mutex_lock(&p->mu);
  n = --p->refs;
  nio__mutex_unlock(&p->mu);
  if (n == 0) {
    nio__cond_destroy(&p->cv);
    nio__mutex_destroy(&p->mu);
    free(p->inject);
    free(p);
  }
}

static void resolve_unlink(nio_engine *e, nio_resolve_req *q) {
  nio__list_remove(&e->resolving, &q->link);
}

/* On the worker: the result, unless the engine canceled the request after
** the hand-off (then its callback already ran). */
static void resolve_deliver(nio_engine *e, void *arg) {
  nio_resolve_req *q = arg;
  if (!q->canceled) {
    resolve_unlink(e, q);
    if (q->res > 0)
      q->cb(q->arg, 0, q->addrs, q->res);
    else
      q->cb(q->arg, q->res, NULL, 0);
  }
  resolve_req_free(q);
}

/* The test switch's answer for host: its addresses parsed into out, or
** NIO_EAI_NONAME when the switch does not name host (then look it up). */
static int resolve_injected(const char *spec, const char *host, int port,
                            nio_addr *out, int max) {
  size_t hn = strlen(host);
  const char *p = spec;
  while (p && *p) {
    const char *end = strchr(p, ';'), *eq = strchr(p, '=');
    if (end == NULL) end = p + strlen(p);
    if (eq && eq < end && (size_t)(eq - p) == hn && memcmp(p, host, hn) == 0) {
      int n = 0;
      for (const char *ip = eq + 1; ip < end && n < max;) {
        const char *ipend = memchr(ip, ',', (size_t)(end - ip));
        char lit[64];
        size_t len;
        if (ipend == NULL) ipend = end;
        len = (size_t)(ipend - ip);
        if (len > 0 && len < sizeof lit) {
          memcpy(lit, ip, len);
          lit[len] = '\0';
          if (nio__addr_numeric(lit, port, &out[n]) == 0) n++;
        }
        ip = ipend + 1;
      }
      return n > 0 ? n : NIO_EAI_NONAME;
    }
    p = *end ? end + 1 : NULL;
  }
  return NIO_EAI_NONAME;
}

/* On a helper thread, without mu: the addresses of q->host into a new
** array (q->addrs), duplicates removed. Returns their count or NIO_E*. */
static int resolve_lookup(nio_resolver *p, nio_resolve_req *q) {
  nio_addr buf[NIO_RESOLVE_MAX];
  int n = NIO_EAI_NONAME;
  if (p->inject)
    n = resolve_injected(p->inject, q->host, q->port, buf, NIO_RESOLVE_MAX);
  if (n == NIO_EAI_NONAME)
    n = nio__addr_resolve(q->host, q->port, buf, NIO_RESOLVE_MAX);
  if (n <= 0) return n < 0 ? n : NIO_EAI_NONAME;
  n = nio__addr_dedup(buf, n);
  if ((q->addrs = malloc((size_t)n * sizeof *q->addrs)) == NULL)
    return NIO_ENOMEM;
  memcpy(q->addrs, buf, (size_t)n * sizeof *q->addrs);
  return n;
}

/* The test switch: lookups take this long first (an interruptible wait,
** ended early by the stop). Called with mu held. */
static void resolver_delay(nio_resolver *p) {
  uint64_t end = nio__now_ns() + p->delay_ns, now;
  while (!p->stop && (now = nio__now_ns()) < end)
    nio__cond_wait(&p->cv, &p->mu, (int64_t)(end - now));
}

static void resolver_thread(void *arg) {
  nio_resolver *p = arg;
  nio_resolve_req *q;
  int res;
  nio__mutex_lock(&p->mu);
  for (;;) {
    while (!p->stop && nio__list_empty(&p->queue)) {
      p->idle++;
      nio__cond_wait(&p->cv, &p->mu, -1);
      p->idle--;
    }
    if (p->stop) break; /* the worker took back what was queued */
    q = nio__list_item(nio__list_pop_front(&p->queue), nio_resolve_req, qlink);
    p->nqueued--;
    q->state = RQ_RUNNING;
    if (p->delay_ns) resolver_delay(p);
    if (p->stop) {
      res = NIO_ECANCELED;
    } else {
      nio__mutex_unlock(&p->mu);
      res = resolve_lookup(p, q);
      nio__mutex_lock(&p->mu);
    }
    q->res = res;
    if (q->canceled) {
      resolve_req_free(q);
      continue;
    }
    /* Before the call: the worker may run it, and free q, at once. */
    q->state = RQ_HANDED;
    if ((res = nio__engine_call(p->e, resolve_deliver, q)) < 0) {
      /* Only NIO_ENOMEM (the engine's end cancels before it refuses
      ** calls). Its task waits until its own timeout or the end. */
      q->state = RQ_LOST;
      nio__log(NIO_LOG_ERROR, "netio: the lookup of %s was lost: %s", q->host,
               nio_strerror(res));
    }
  }
  nio__mutex_unlock(&p->mu);
  resolver_unref(p);
}

static int resolver_new(nio_engine *e, nio_resolver **out) {
  nio_resolver *p = calloc(1, sizeof *p);
  const char *d = getenv("NETIO_TEST_RESOLVE_DELAY");
  const char *inj = getenv("NETIO_TEST_RESOLVE");
  int r;
  if (p == NULL) return NIO_ENOMEM;
  if ((r = nio__mutex_init(&p->mu)) < 0) {
    free(p);
    return r;
  }
  if ((r = nio__cond_init(&p->cv)) < 0) {
    nio__mutex_destroy(&p->mu);
    free(p);
    return r;
  }
  p->e = e;
  p->refs = 1;
  if (inj && *inj && (p->inject = malloc(strlen(inj) + 1)) == NULL) {
    nio__cond_destroy(&p->cv);
    nio__mutex_destroy(&p->mu);
    free(p);
    return NIO_ENOMEM;
  }
  if (p->inject) memcpy(p->inject, inj, strlen(inj) + 1);
  if (d && *d) {
    double s = atof(d);
    if (s > 0 && s < 1e6) p->delay_ns = (uint64_t)(s * 1e9);
  }
  *out = p;
  return 0;
}

/* Queue q (worker, mu held) and see that a thread will take it. */
static int resolver_queue(nio_resolver *p, nio_resolve_req *q) {
  int r;
  if (p->nqueued >= RESOLVE_QUEUE_MAX) return NIO_EBUSY;
  if (p->nqueued + 1 > p->idle && p->nthreads < RESOLVE_THREADS) {
    p->refs++; /* the thread's */
    r = nio__thread_start(&p->threads[p->nthreads], resolver_thread, p);
    if (r < 0) {
      p->refs--;
      if (p->nthreads == 0) return r; /* nobody would ever take it */
    } else {
      p->nthreads++;
    }
  }
  q->state = RQ_QUEUED;
  nio__list_push_back(&p->queue, &q->qlink);
  p->nqueued++;
  nio__cond_signal(&p->cv);
  return 0;
}

int nio__resolve(nio_engine *e, const char *host, int port, nio_resolve_cb cb,
                 void *arg) {
  nio_resolve_req *q;
  nio_resolver *p;
  size_t n;
  int r;
  if (host == NULL || cb == NULL || port < 0 || port > 65535) return NIO_EINVAL;
  if ((n = strlen(host)) == 0 || n > 1024) return NIO_EBADADDR;
  if (e->ending) return NIO_ECLOSED;
  if (e->resolver == NULL && (r = resolver_new(e, &e->resolver)) < 0) return r;
  p = e->resolver;
  if ((q = calloc(1, sizeof *q + n + 1)) == NULL) return NIO_ENOMEM;
  memcpy(q->host, host, n + 1);
  q->port = port;
  q->cb = cb;
  q->arg = arg;
  nio__mutex_lock(&p->mu);
  r = resolver_queue(p, q);
  nio__mutex_unlock(&p->mu);
  if (r < 0) {
    free(q);
    return r;
  }
  nio__list_push_front(&e->resolving, &q->link);
  return 0;
}

void nio__resolve_cancel_all(nio_engine *e) {
  nio_resolver *p = e->resolver;
  nio_resolve_req *q;
  if (p == NULL) return;
  e->resolver = NULL;
  /* Under mu throughout: a helper frees a canceled RUNNING request as
  ** soon as it sees the flag, so the worker may not touch it after. */
  nio__mutex_lock(&p->mu);
  p->stop = 1;
  p->queue.first = p->queue.last = NULL; /* the worker frees these below */
  p->nqueued = 0;
  while ((q = nio__list_item(e->resolving.first, nio_resolve_req, link))) {
    resolve_unlink(e, q);
    q->canceled = 1;
    q->cb(q->arg, NIO_ECANCELED, NULL, 0);
    if (q->state == RQ_QUEUED || q->state == RQ_LOST) resolve_req_free(q);
  }
  nio__cond_broadcast(&p->cv);
  nio__mutex_unlock(&p->mu);
  /* Threads start only before the stop, so the records are all here. */
  for (int i = 0; i < RESOLVE_THREADS && p->threads[i]; i++)
    nio__thread_detach(p->threads[i]);
  resolver_unref(p);
}
