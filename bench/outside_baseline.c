/*
** outside_baseline.c: the raw C baseline of the outside-threads benchmark
** (bench/outside.sh): what nio_send() is measured against.
**
**   outside_baseline -a ip:port [-c conns] [-t threads] [-r rate]
**                    [-l send_limit] [-q queue_limit] [-b backoff_us]
**
** It listens, prints "ready", accepts `conns` connections, then starts
** `threads` sender threads (outside_common.h: 64-byte messages,
** round-robin over the connections, flat out, or `rate` messages per
** second in all) while the main thread is the plain epoll writer of
** outside_bq.h: a mutex-protected vector + eventfd wake-up, per-connection
** output buffers, with nio_send()'s bounds (send_limit per connection,
** queue_limit in all). A sender that hears "busy" pauses `backoff_us` and
** retries, as the nio_send and netio.send senders do. When the reader goes
** away the writes fail, the senders hear "closed", and the program prints
** the senders' counts and exits.
*/
#define _GNU_SOURCE
#include <signal.h>
#include "outside_bq.h"

static int nthreads;
static atomic_int senders_done;

static void *sender_main(void *arg) {
  om_sender_run(arg);
  /* The last sender out stops the writer. */
  if (atomic_fetch_add(&senders_done, 1) + 1 == nthreads) bq_stop();
  return NULL;
}

int main(int argc, char **argv) {
  om_opts oo;
  int lfd;
  om_sender *snd;
  pthread_t *th;

  if (om_parse_opts(argc, argv, "outside_baseline", &oo) != 0) return 2;
  nthreads = oo.nthreads;
  signal(SIGPIPE, SIG_IGN);
  if ((lfd = bq_listen(oo.addr)) < 0) {
    if (errno == EINVAL) {
      fprintf(stderr, "outside_baseline: bad arguments\n");
      return 2;
    }
    bq_die("listen");
  }
  printf("ready\n");
  fflush(stdout);
  if (bq_accept(lfd, oo.nconn, oo.send_limit, oo.queue_limit) != 0)
    bq_die("accept");

  snd = calloc((size_t)nthreads, sizeof *snd);
  th = calloc((size_t)nthreads, sizeof *th);
  if (!snd || !th) bq_die("calloc");
  for (int t = 0; t < nthreads; t++) {
    snd[t] = (om_sender){.send = bq_push,
                         .tid = t,
                         .nthreads = nthreads,
                         .nconn = oo.nconn,
                         .rate = oo.rate / nthreads,
                         .backoff_ns = oo.backoff_ns};
    if (pthread_create(&th[t], NULL, sender_main, &snd[t]) != 0)
      bq_die("pthread_create");
  }
  bq_run();
  for (int t = 0; t < nthreads; t++) pthread_join(th[t], NULL);
  {
    uint64_t sent = 0, busy = 0;
    for (int t = 0; t < nthreads; t++) sent += snd[t].sent, busy += snd[t].busy;
    printf("senders=%d sent=%llu busy=%llu\n", nthreads,
           (unsigned long long)sent, (unsigned long long)busy);
  }
  free(snd);
  free(th);
  return 0;
}
