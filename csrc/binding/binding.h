/*
** binding.h: private declarations shared by the files of the Lua C module
** netio.core (core.c, state.c, task.c, conn.c, listener.c, tcp.c,
** copy.c, message.c, thread.c, stdin.c, log.c, waitq.c, receive.c) and of
** the public C API (embed.c).
**
** Threading: a Lua state is used by one thread at a time. netio.run() and
** nio_engine_start() prepare everything on the calling thread and start
** the engine's worker thread; from then on only the worker touches the Lua
** state, until nio__engine_join() returns. The thread create/join pair
** orders the two. A netio thread (thread.c) has a Lua state of its own.
*/
#ifndef NIO_BINDING_H
#define NIO_BINDING_H

#include <lua.h>
#include <lauxlib.h>
#include "engine/engine.h"
#include "util/list.h"

#define NB_TASK_MT "netio.task"
#define NB_CONN_MT "netio.conn"
#define NB_LISTENER_MT "netio.listener"
#define NB_THREAD_MT "netio.thread"
#define NB_UDP_MT "netio.udp"

/* Output water marks of conn:send. */
#define NB_SEND_HIGH (1u << 20)
#define NB_SEND_LOW (256u << 10)
/* Strings up to this size are copied into the output queue; longer ones
** are referenced (anchored in the state's table) until sent. */
#define NB_SEND_COPY_MAX (4u << 10)
/* recv(): the "whatever has arrived" size, the line-length limit of "*l",
** and the size above which recv(n) collects in the reader's own buffer. */
#define NB_RECV_ANY_MAX (64u << 10)
#define NB_LINE_MAX (1u << 20)
#define NB_RECV_DIRECT_MAX (1u << 20)
/* The default of what one recv may gather (n bytes, "*a") before it fails
** with "too large": a peer must not choose the server's memory through a
** length header. Per connection: setoption("max-input"). */
#define NB_MAX_INPUT ((size_t)16 << 20)
/* After netio.stop() (or a signal): how long tasks get to finish before
** the connections left are closed and the run ends. Those with output
** queued are closed after flush: it gets the engine's own grace
** (NETIO_GRACE) after the run, and what is left then is dropped and
** counted. */
#define NB_STOP_GRACE_NS (2000000000ull)
/* Coroutines of ended tasks kept for new ones (task.c): about 1 KiB each
** (its lua_State, 45-slot stack and CallInfos). */
#define NB_SPARE_MAX 128

typedef struct nb_state nb_state;
typedef struct nb_task nb_task;
typedef struct nb_conn nb_conn;
typedef struct nb_listener nb_listener;
typedef struct nb_udp nb_udp;
typedef struct nb_thread nb_thread;
typedef struct nb_wq nb_wq;

/* A FIFO of tasks waiting for one event (joiners, acceptors, receivers):
** woken in the order they began to wait. A circular list through head
** (head.next the first, head.prev the last; NULL or &head when empty, so
** that a zeroed waitq is an empty one): a task leaves it without knowing
** which queue it is in, so nb_task needs no pointer to its queue. */
typedef struct nb_waitq {
  nio_link head; /* of nb_task.wlink */
} nb_waitq;

/*
** A task: a coroutine run by the loop. The struct is the payload of a
** "netio.task" userdata whose user value 1 is the coroutine. Once the
** task ended its results (NB_T_DONE), or its error value (NB_T_FAILED,
** one value on top), are on the coroutine's stack. While the task has not
** ended, the userdata is anchored in the array part of the state's
** table T, at T[t->anchor] (1..S->ntasks, dense: the cheapest anchor Lua
** has, one TValue per task); the anchor is removed exactly once, when the
** task ends or the run ends (the last task moves into its place), after
** which the userdata lives as long as Lua references it.
*/
enum {
  NB_T_READY = 0, /* queued or running */
  NB_T_WAIT,      /* yielded inside a netio call, waiting to be woken */
  NB_T_DONE,      /* returned; results on the coroutine's stack */
  NB_T_FAILED,    /* raised; error value on top of the coroutine's stack */
  NB_T_ABANDONED, /* the run ended before the task did */
  NB_T_CANCELED   /* ended after task:cancel() */
};

/* netio.wait(t1, t2, ...): one node per target, in the target's list of
** watchers, held by the waiting task (a userdata on its stack). target is
** cleared when the target ends (its list goes away with its side struct). */
typedef struct nb_watch {
  nb_task *waiter, *target;
  nio_link link; /* in target->x->watchers */
} nb_watch;
/* What few tasks use: a task's side struct, allocated by task.c at its
** first need (a timed wait, a joiner, a watcher, a nested coroutine) and
** freed when the task ends or is abandoned. Owned by the task. Keeping
** these out of nb_task makes the idle connection's task smaller. */
typedef struct nb_task_x {
  nio_timer timer; /* the timeout of the current wait */
  nb_waitq joiners;
  nio_list watchers; /* of nb_watch.link: netio.wait()s for its end */
  /* A plain coroutine inside the task that is in a netio call (netio's
  ** coroutine.resume passes the wait up to the task), or NULL. */
  lua_State *nested;
} nb_task_x;
struct nb_task {
  lua_State *co;  /* NULL once it ended and its coroutine became a spare */
  nb_state *S;    /* NULL once the run ended */
  nb_task *next;  /* ready list */
  nio_link wlink; /* in a wait queue while wlink.next is set */
  nb_task **slot; /* the conn reader/writer slot it holds */
  nb_task_x *x;   /* side struct, or NULL (owned) */
  /* What the current wait must undo besides the generic (slot, wait
  ** queue, timer) when the task is canceled in it; cleared by wait_end. */
  void (*cancel_fn)(nb_task *t, void *arg);
  void *cancel_arg;
  uint32_t anchor; /* its index in T while it has not ended, else 0 */
  /* Arguments for the first resume, then results (NB_T_DONE): fewer than
  ** LUAI_MAXSTACK (1,000,000), so 21 bits do. */
  unsigned n : 21;
  unsigned status : 3;
  unsigned queued : 1;   /* on the ready list */
  unsigned started : 1;  /* resumed at least once */
  unsigned timedout : 1; /* the wait's timer fired */
  unsigned is_main : 1;  /* the first task of netio.run: its error ends it */
  unsigned joined : 1;   /* somebody waits for it: do not log its error */
  unsigned canceled : 1; /* task:cancel(): its next wait raises "canceled" */
};

/*
** A connection as Lua sees it: the payload of a "netio.conn" userdata.
** c is the engine's connection, NULL once closed (either side: a closed
** conn stays a valid object whose methods return nil, "closed"). The
** engine's c->udata points back here until we close c, and the engine
** delivers no callback after that, so the pointer never dangles.
** User value 1, only in those made by netio.connect (no user value in
** the others): the name of the pool conn:setkeepalive() puts it in.
*/
struct nb_conn {
  uintptr_t tag; /* its address ^ NB_CONN_KEY: nio__bind_conn_check */
  nio_conn *c;
  nb_state *S; /* NULL once the run ended */
  /* S->conns holds every conn userdata of the run, open or closed, until
  ** it is collected: the end of the run clears S in all of them. */
  nio_link link; /* in S->conns */
  uint64_t id;
  nb_task *reader; /* the task waiting in recv (or connect) */
  nb_task *writer; /* the task waiting in send (water mark) or flush */
  int64_t tmo_connect, tmo_send, tmo_read; /* ns, -1 = no limit */
  unsigned connected : 1; /* connect completed (NIO_EV_CONNECT seen) */
  unsigned readonly : 1;  /* netio.stdin(): send, flush, shutdown refused */
  uint32_t reused;        /* times taken from a pool (keepalive.c) */
  size_t want;            /* input wanted, when raised above the default */
  size_t max_input;       /* the most one recv may gather (NB_MAX_INPUT) */
  /* Reader state kept across yields of one recv call. */
  size_t scan; /* "*l": input bytes already searched for LF */
  char *acc;   /* large recv(n) and "*a": bytes collected so far */
  size_t acclen, acccap;
};

/* A listener: the payload of a "netio.listener" userdata. */
struct nb_listener {
  nio_listener *l; /* NULL once closed */
  nb_state *S;
  nio_link link; /* in S->listeners while S is set */
  nb_waitq acceptors;
};

/*
** A datagram socket as Lua sees it: the payload of a "netio.udp"
** userdata. u is the engine's socket, NULL once closed (then methods
** return nil, "closed"); u->udata points back here until we close u, and
** the engine delivers no callback after that.
*/
struct nb_udp {
  nio_udp *u;
  nb_state *S;      /* NULL once the run ended */
  nio_link link;    /* in S->udps while S is set */
  nb_waitq readers; /* tasks in recvfrom/recv, FIFO */
  nb_task *rturn;   /* the reader woken for a datagram, until it runs */
  nb_waitq writers; /* tasks waiting for the send in the port to end */
  nb_task *swait;   /* the task whose send is in the port, or NULL */
  int sres;         /* that send's result, once sdone */
  uint8_t sdone;
  int64_t tmo; /* recv timeout in ns (settimeout), -1 = none */
};

/* A large string queued by send, anchored in T until the engine frees it. */
typedef struct nb_sendref {
  nb_state *S;
  struct nb_sendref *next; /* S->unrefs, once freed by the engine */
} nb_sendref;

/*
** The state of one run: the engine's udata. A "netio.state" userdata
** anchored in the run's table T = registry[light S] (T.state), so it lives
** off any C stack: from nio__bind_state_new() until nio__bind_state_free()
** drops T. T also anchors the tasks, the strings queued by send, and the
** loop thread.
*/
#define NB_MAGIC 0x6e62696eu
struct nb_state {
  unsigned magic;
  nio_engine *e;
  lua_State *L;    /* the loop's own thread: used by hooks and callbacks */
  lua_State *main; /* the main thread of this Lua state */
  nb_task *ready_head, *ready_tail;
  nb_task *current; /* the task being resumed */
  nb_task *main_task;
  size_t ntasks;      /* tasks not ended: anchored at T[1..ntasks] */
  uint32_t nspare;    /* spare coroutines (task.c), in T[&nspare] */
  nio_list conns;     /* of nb_conn.link (see nb_conn) */
  nio_list listeners; /* of nb_listener.link */
  nio_list udps;      /* of nb_udp.link */
  nb_sendref *unrefs; /* strings the engine no longer needs */
  /* The run's Lua allocator (embed.c; NULL: the state has another) and
  ** the bytes its free lists keep; with trim, after giving back to libc
  ** what they keep beyond their cap (the heap shrank since they filled):
  ** at each turn. */
  void *heap;
  size_t (*heap_kept)(void *heap, int trim);
  /* Messages posted to the engine, waiting for netio.receive in a task. */
  nio_msg *mhead, *mtail;
  nb_waitq receivers;
  nio_list threads; /* of nb_thread.link: netio.thread()s of this run */
  nio_list wqs;     /* of nb_wq.link: the run's waitqs (closed at the stop) */
  nio_list pools;   /* of nb_pool.link: conn:setkeepalive's pools */
  nio_timer grace;  /* the stop's deadline */
  uint8_t stopping; /* netio.stop() or a signal */
  uint8_t draining; /* every task ended: the loop is ending */
  uint8_t forced;   /* the stop grace passed: quit at the next turn */
  uint8_t failed;   /* the main task raised */
  uint8_t ended;    /* the run is over (hook_finish ran) */
};

/* ---- core.c ---------------------------------------------------------- */

/* The state of the engine running on this thread, if it runs this Lua
** state; else NULL. */
nb_state *nio__bind_current(lua_State *L);
/* The task running L, or raise "netio: <name> must be called from a netio
** task". hint: a state to try first (the fast path, inline: every conn
** method asks, twice a message on an echo path); the rest is
** nio__bind_task_find. */
nb_task *nio__bind_task_find(lua_State *L, const char *name);
static inline nb_task *nio__bind_task(lua_State *L, nb_state *hint,
                                      const char *name) {
  if (hint && hint->current && hint->current->co == L) return hint->current;
  return nio__bind_task_find(L, name);
}
/* A timeout argument: nil/none → dflt, number ≥ 0 → ns; else argerror. */
int64_t nio__bind_opt_timeout(lua_State *L, int arg, int64_t dflt);
/* Raise "bad argument #idx to 'f' (unknown option 'x')" for a key of the
** options table at idx that is not in the NULL-terminated known. */
void nio__bind_check_opts(lua_State *L, int idx, const char *const *known);
/* Make the class tname (its metatable, if not made yet): __index holds
** methods, meta the metamethods, and every one of them has the metatable
** as its upvalue 1, so nio__bind_check knows self by identity. Leaves
** nothing on the stack. */
void nio__bind_class(lua_State *L, const char *tname, const luaL_Reg *methods,
                     const luaL_Reg *meta);
/* Argument idx when it is a userdata of class tname, else raise "bad
** argument #idx to 'f' (tname expected, got <type>)". Called from a
** function of nio__bind_class: its metatable is compared with upvalue 1 --
** identity, which no other userdata, table or forged bytes can pass, and
** cheaper than luaL_checkudata's registry lookup by name (methods run
** several times per message). From any other function it falls back to
** luaL_checkudata. */
static inline void *nio__bind_check(lua_State *L, int idx, const char *tname) {
  void *p = lua_touserdata(L, idx);
  if (p != NULL && lua_getmetatable(L, idx)) {
    int same = lua_rawequal(L, -1, lua_upvalueindex(1));
    lua_pop(L, 1);
    if (same) return p;
  }
  return luaL_checkudata(L, idx, tname);
}
/* A conn argument, checked by a tag rather than by metatable: conn methods
** run twice a message, and pushing, comparing and popping the metatable
** cost ~150 instructions a call (a third of what the binding added to an
** echo's message). A conn's payload starts with its own address xor
** NB_CONN_KEY (nio__bind_conn_new): a userdata of exactly a conn's size
** holding that word at its start is one. Lua code cannot write chosen
** bytes into a userdata, and no C structure holds its own address xor
** this odd constant by accident. Every other value fails the tag and gets
** luaL_checkudata, and its error. */
#define NB_CONN_KEY ((uintptr_t)0x9e3779b97f4a7c15u)
static inline nb_conn *nio__bind_conn_check(lua_State *L, int idx) {
  nb_conn *nb = lua_touserdata(L, idx);
  /* rawlen first: a smaller userdata (or a light one, length 0) is not
  ** read. */
  if (nb != NULL && lua_rawlen(L, idx) == sizeof *nb &&
      nb->tag == ((uintptr_t)nb ^ NB_CONN_KEY))
    return nb;
  return luaL_checkudata(L, idx, NB_CONN_MT);
}
/* Push nil, message, code for a NIO_E* error; returns 3. */
int nio__bind_fail(lua_State *L, int err);
/* Release the strings the engine freed (loop thread context). */
void nio__bind_release_refs(nb_state *S);
/* Put netio.core into L's package.preload (netio threads' states; the
** library adds the Lua files of netio in embed.c). */
void nio__bind_preload(lua_State *L);

/* ---- state.c --------------------------------------------------------- */

/* A new run state on L (raises on memory errors). Then the caller makes
** S->e (nio__bind_state_engine), spawns the main task and starts it. */
nb_state *nio__bind_state_new(lua_State *L);
int nio__bind_state_engine(nb_state *S, const nio_options *o);
/* Start the worker thread with the binding's hooks. */
int nio__bind_state_start(nb_state *S);
/* After the engine was joined (or never started): free the engine, drop
** the anchors. S is invalid after. */
void nio__bind_state_free(nb_state *S);
/* The run's table T on top of L's stack. */
void nio__bind_state_table(lua_State *L, nb_state *S);
/* netio.run */
int nio__bind_l_run(lua_State *L);
/* Engine-wide closes at the end of a run. */
void nio__bind_state_drain(nb_state *S);

/* ---- copy.c ---------------------------------------------------------- */

/* Encode the n values at idx.. for another Lua state: nil, booleans,
** numbers, strings and tables of those (copied; a table met twice on one
** path is a cycle). On a value it cannot copy it raises, naming what
** (e.g. "cannot copy a function") as a bad argument of fname numbered
** from argn, or as a plain error when argn is 0. Pushes the encoding as a
** string. */
void nio__bind_encode(lua_State *L, int idx, int n, const char *fname,
                      int argn);
/* Push the values of an encoding; returns their number. Raises on an
** encoding it did not make. */
int nio__bind_decode(lua_State *L, const char *p, size_t len);

/* ---- message.c ------------------------------------------------------- */

/* The engine hook for posted messages. */
void nio__bind_message_hook(nio_engine *e, void *arg, nio_msg *m);
/* Free the messages of a run that ended and wake its receivers. */
void nio__bind_messages_end(nb_state *S);
/* Push a post as values (a raw post from C is one string); frees m.
** Returns the number of values. */
int nio__bind_push_message(lua_State *L, nio_engine *e, nio_msg *m);
int nio__bind_l_send(lua_State *L);
int nio__bind_l_post(lua_State *L);
int nio__bind_l_receive(lua_State *L);
/* The bytes netio.send(id, data) sends: a string, a number or an array of
** them (concatenated). Leaves them on top; p/len point into it. */
void nio__bind_send_data(lua_State *L, int idx, const char **p, size_t *len);
/* nil, message for a NIO_E* result of nio_send/nio_post ("closed", "busy"),
** or true. */
int nio__bind_push_result(lua_State *L, int r);

/* ---- thread.c -------------------------------------------------------- */

void nio__bind_thread_open(lua_State *L);
int nio__bind_l_thread(lua_State *L);
/* The end of a run: close the threads' mailboxes, wait for them until the
** stop grace, report those still running. */
void nio__bind_threads_end(nb_state *S);
/* Close the threads' mailboxes (their receive gets nil, "closed"). */
void nio__bind_threads_close_mail(nb_state *S);
/* luaopen_netio_core in a netio thread's state: the thread-side module. */
int nio__bind_thread_module(lua_State *L);
/* Whether L is a netio thread's state. */
int nio__bind_in_thread(lua_State *L);

/* ---- waitq.c --------------------------------------------------------- */

void nio__bind_waitq_open(lua_State *L);
int nio__bind_l_waitq(lua_State *L);
void nio__bind_close_waitqs(nb_state *S, int detach);

/* ---- log.c ----------------------------------------------------------- */

/* Push the netio.log table. */
void nio__bind_log_push(lua_State *L);

/* ---- stdin.c --------------------------------------------------------- */

int nio__bind_l_stdin(lua_State *L);

/* ---- task.c ------------------------------------------------------------ */

void nio__bind_task_open(lua_State *L);
/* Create a task running the function at index fidx with the values above
** it as arguments (they are moved); pushes the task. */
nb_task *nio__bind_spawn(lua_State *L, nb_state *S, int fidx);
/* Wake a waiting task: put it on the ready list (idempotent). */
void nio__bind_wake(nb_task *t);
/* Prepare t to wait: arm the timeout (ns, < 0 none). Then the caller
** returns lua_yieldk(L, 0, ctx, k); the continuation checks its condition
** and, once the wait is over, calls nio__bind_wait_end(). Returns 0, or
** NIO_ENOMEM when the timeout cannot be armed (never with no timeout):
** then t is not waiting, and the call must fail ("not enough memory")
** rather than wait without its deadline. Call it before putting t in a
** wait queue or a slot, so a failure has nothing to undo. */
int nio__bind_wait_arm(nb_task *t, int64_t timeout_ns);
static inline int nio__bind_wait_begin(nb_task *t, int64_t timeout_ns) {
  /* The usual wait: no deadline, and no timer left from an earlier one. */
  if (timeout_ns < 0 && t->x == NULL) {
    t->timedout = 0;
    t->status = NB_T_WAIT;
    return 0;
  }
  return nio__bind_wait_arm(t, timeout_ns);
}
/* A wait whose timeout could not be armed: returns nil, "not enough
** memory" (the calls whose failures are nil, message). */
int nio__bind_nomem(lua_State *L);
/* Mark t waiting and yield with continuation k (also to wait again after a
** wake-up that did not end the wait). Call as a return expression. */
int nio__bind_yield_x(lua_State *L, nb_task *t, lua_KContext ctx,
                      lua_KFunction k);
static inline int nio__bind_yield(lua_State *L, nb_task *t, lua_KContext ctx,
                                  lua_KFunction k) {
  /* The usual: the task's own coroutine, not canceled. */
  if (!t->canceled && L == t->co) {
    t->status = NB_T_WAIT;
    return lua_yieldk(L, 0, ctx, k);
  }
  return nio__bind_yield_x(L, t, ctx, k);
}
/* The wait is over: its timer stopped, its cancel hook cleared. */
void nio__bind_wait_stop(nb_task *t);
static inline void nio__bind_wait_end(nb_task *t) {
  if (t->x) nio__bind_wait_stop(t);
  t->timedout = 0;
  t->cancel_fn = NULL;
  t->cancel_arg = NULL;
}
/* Undo t's current wait (slot, wait queue, timer, its cancel_fn) without
** raising; t is running again. */
void nio__bind_undo_wait(nb_task *t);
/* What a netio call in a plain coroutine yields to netio's
** coroutine.resume, which passes the wait up to the task. */
extern const char nio__bind_nested_mark;
/* Register the undo of the current wait for a cancellation. */
static inline void
nio__bind_on_cancel(nb_task *t, void (*fn)(nb_task *, void *), void *arg) {
  t->cancel_fn = fn;
  t->cancel_arg = arg;
}
/* t was canceled: undo its wait and raise "canceled" in L. */
int nio__bind_canceled(lua_State *L, nb_task *t);
/* A conn's reader/writer slot: taken by a waiting task, given back when
** the wait ends -- or when the task ends or the conn is collected, so
** neither side keeps a dangling pointer to the other. */
static inline void nio__bind_occupy(nb_task **slot, nb_task *t) {
  *slot = t;
  t->slot = slot;
}
static inline void nio__bind_vacate(nb_task **slot) {
  if (*slot) (*slot)->slot = NULL;
  *slot = NULL;
}
/* In a continuation: the task L runs, or NULL when L was resumed by
** something else than the loop (coroutine.resume on a task's coroutine);
** the continuation then yields again and the wait goes on. */
nb_task *nio__bind_k_task_find(lua_State *L, nb_state *hint);
static inline nb_task *nio__bind_k_task(lua_State *L, nb_state *hint) {
  if (hint && hint->current && hint->current->co == L) return hint->current;
  return nio__bind_k_task_find(L, hint);
}
#define NB_K_GUARD(t, L, hint, ctx, k)                                         \
  if (((t) = nio__bind_k_task((L), (hint))) == NULL)                           \
  return lua_yieldk((L), 0, (ctx), (k))
/* Wait queues. */
static inline int nio__bind_waitq_empty(const nb_waitq *q) {
  return q->head.next == NULL || q->head.next == &q->head;
}
/* The first link of q, or the one after k; NULL at the end. */
static inline nio_link *nio__bind_waitq_next(nb_waitq *q, nio_link *k) {
  k = k ? k->next : q->head.next;
  return k == &q->head ? NULL : k;
}
/* Whether t is in a wait queue. */
static inline int nio__bind_in_waitq(const nb_task *t) {
  return t->wlink.next != NULL;
}
void nio__bind_waitq_add(nb_waitq *q, nb_task *t);
/* Put t first (it was woken for an event another task took meanwhile). */
void nio__bind_waitq_add_first(nb_waitq *q, nb_task *t);
void nio__bind_waitq_remove(nb_task *t);
void nio__bind_waitq_wake_all(nb_waitq *q);
/* Wake the first task; returns it, or NULL. */
nb_task *nio__bind_waitq_wake_one(nb_waitq *q);
/* Forget every waiter without waking it (the run ended). */
void nio__bind_waitq_clear(nb_waitq *q);
/* Run the ready tasks (one batch). Returns 1 if tasks are ready again. */
int nio__bind_run_ready(nb_state *S);
/* The run ended: forget every task that did not end. */
void nio__bind_abandon_tasks(nb_state *S);
/* join for the run-in-a-task path: push the results of a finished t. */
int nio__bind_task_results(lua_State *L, nb_task *t);
/* Push the error value of a task that failed (NB_T_FAILED). */
void nio__bind_task_error(lua_State *L, nb_task *t);
/* A plain coroutine L inside task t is in a netio call. Returns 0, or
** NIO_ENOMEM when t's side struct cannot be allocated. */
int nio__bind_task_nested(nb_task *t, lua_State *L);
/* Whether L is t's coroutine or the plain coroutine inside it. */
static inline int nio__bind_task_owns(const nb_task *t, const lua_State *L) {
  return t && (t->co == L || (t->x && t->x->nested == L));
}
/* netio.spawn, netio.wait */
int nio__bind_l_spawn(lua_State *L);
int nio__bind_l_wait(lua_State *L);
/* Yield in task t until target ends or the timeout; the continuation
** pushes the results (as join). */
int nio__bind_join_wait(lua_State *L, nb_task *t, nb_task *target,
                        int64_t timeout_ns, int raise);

/* ---- conn.c ------------------------------------------------------------ */

void nio__bind_conn_open(lua_State *L);
/* Push a new "netio.conn" userdata (no connection yet). pooled: it may be
** put in a pool (made by netio.connect): it has the pool's user value. */
nb_conn *nio__bind_conn_new(lua_State *L, nb_state *S, int pooled);
/* Attach an engine connection to a conn userdata. */
void nio__bind_conn_attach(nb_conn *nb, nio_conn *c);
/* Close nb's connection (flush: after queued output is sent) and wake
** the tasks waiting on it; no-op once closed. */
void nio__bind_conn_close(nb_conn *nb, int flush);
/* The engine callback for connections made by the binding. */
void nio__bind_conn_cb(nio_conn *c, int events);
/* Close every connection (the end of the run or a forced stop). flush:
** close after flush when output is queued. detach: the run ends, forget
** the state in every conn userdata. */
void nio__bind_close_conns(nb_state *S, int flush, int detach);

/* What recv shares with receive.c: the reader's buffer and its failures
** (conn.c's recv_* functions, see there). */
void nio__bind_recv_want(nb_conn *nb, size_t n);
int nio__bind_recv_fail(lua_State *L, nb_conn *nb, const char *msg);
int nio__bind_recv_too_large(lua_State *L, nb_conn *nb);
ptrdiff_t nio__bind_recv_gather(nb_conn *nb, const char *p, size_t n);
void nio__bind_recv_cancel(nb_task *t, void *arg);
const char *nio__bind_conn_errmsg(int err);

/* ---- receive.c --------------------------------------------------------- */

/* conn:receiveuntil */
int nio__bind_l_receiveuntil(lua_State *L);

/* ---- keepalive.c ------------------------------------------------------- */

/* Add conn:setkeepalive() and conn:getreusedtimes() to the conn class. */
void nio__bind_keepalive_open(lua_State *L);
/* netio.connect: the name of the pool for a connection to the address at
** stack index addr (opts.pool, bind: NULL when not given) -- take an idle
** connection from it: pushes it as a new conn and returns 1, or returns 0
** with the stack as it was (then connect). */
int nio__bind_pool_take(lua_State *L, nb_state *S, int addr, const char *pool,
                        const char *bind);
/* Name on the conn at idx the pool setkeepalive puts it in (same args). */
void nio__bind_pool_tag(lua_State *L, int idx, int addr, const char *pool,
                        const char *bind);
/* Close every idle pooled connection of the run (the end of the run, or a
** forced stop); detach: the run ends, free the pools too. */
void nio__bind_pools_close(nb_state *S, int detach);

/* ---- listener.c -------------------------------------------------------- */

void nio__bind_listener_open(lua_State *L);
nb_listener *nio__bind_listener_new(lua_State *L, nb_state *S);
void nio__bind_listener_cb(nio_listener *l, int events);
void nio__bind_close_listeners(nb_state *S, int detach);

/* ---- udp.c ------------------------------------------------------------- */

void nio__bind_udp_open(lua_State *L);
int nio__bind_l_udp(lua_State *L);
/* Close every datagram socket (waking their tasks with "closed");
** detach: the run ends, forget the state in each. */
void nio__bind_close_udps(nb_state *S, int detach);

/* ---- tcp.c ------------------------------------------------------------- */

int nio__bind_l_listen(lua_State *L);
int nio__bind_l_connect(lua_State *L);
int nio__bind_l_resolve(lua_State *L);
int nio__bind_l_dial(lua_State *L);
int nio__bind_l_detached(lua_State *L);

/* The message of a failed connection's error (its TLS reason if any). */
const char *nio__bind_conn_cerr(nio_conn *c);
/* ---- tls.c ------------------------------------------------------------- */
/* Push netio.tls (nil when built without TLS). */
void nio__bind_tls_push(lua_State *L);
/* The context a `tls` option at idx names (a context, or true: the
** default client context); raises on anything else, or when built without
** TLS. */
nio_tls_ctx *nio__bind_tls_opt(lua_State *L, int idx);
int nio__bind_l_starttls(lua_State *L);
int nio__bind_l_tlsinfo(lua_State *L);
#ifdef NIO_HAVE_TLS
/* nil, message, code for a failed TLS connection (its TLS reason when it
** has one). */
int nio__bind_tls_fail(lua_State *L, nio_conn *c, int err);
/* One step of a handshake a task waits for: 0 done, 1 wait on, or minus
** the number of results pushed for a failure (the connection closed). */
int nio__bind_tls_step(lua_State *L, nb_task *t, nb_conn *nb);
/* Start the client handshake of a connection netio.connect made: SNI and
** the name check by servername, else by host (a name), else host is the
** IP address the certificate must carry. verify: -1 the context's. */
int nio__bind_tls_connect(nb_conn *nb, nio_tls_ctx *ctx, const char *host,
                          int host_is_name, const char *servername, int verify);
#endif

#endif /* NIO_BINDING_H */
