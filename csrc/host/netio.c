/*
** netio.c: the `netio` executable -- runs a Lua script as the first task of
** an engine. Written on the public embedding API (netio.h): the engine's
** Lua state carries netio.core and the Lua files of netio, so a script
** runs from any directory with no environment set. Shaped like Lua's own
** lua.c: main -> protected pmain, options collected first, `arg` built
** the same way. It also uses the OS layer (port/sys.h) for signals and
** heap settings, which are the executable's business, not the library's.
*/
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <lua.h>
#include <lualib.h>
#include <lauxlib.h>
#include "netio.h"
#include "port/sys.h"

#define HOST_USAGE_STATUS 2

static const char *progname = "netio";

/* Read by the signal handler; written by the main thread only, which is
** the one thread that takes SIGINT/SIGTERM (the worker and its helper
** threads block them), so the handler never races with the writes. */
static nio_engine *volatile host_engine;
static volatile sig_atomic_t host_signals;

static void host_message(const char *msg) {
  fprintf(stderr, "%s: %s\n", progname, msg);
  fflush(stderr);
}

static void host_usage(FILE *f) {
  const char *name;
  fprintf(f,
          "usage: %s [options] [script [args]]\n"
          "Available options are:\n"
          "  -e stat   execute string 'stat'\n"
          "  -i        enter interactive mode after executing 'script'\n"
          "  -l mod    require library 'mod' into global 'mod'\n"
          "  -l g=mod  require library 'mod' into global 'g'\n"
          "  -E        ignore environment variables (LUA_INIT, LUA_PATH...)\n"
          "  -W        turn warnings on\n"
          "  -b name   force the backend (",
          progname);
  for (int i = 0; (name = nio_backend_name(i)) != NULL; i++)
    fprintf(f, "%s%s", i ? ", " : "", name);
  fprintf(f,
          ")\n"
          "  -v        show version information (netio, Lua, backend)\n"
          "  -h        show this help\n"
          "  --        stop handling options\n"
          "  -         stop handling options and execute stdin\n"
          "The script runs as the first task of the engine; %s returns\n"
          "when every task has ended. Without a script or -e, it runs\n"
          "stdin when stdin is not a terminal, else the interactive mode,\n"
          "where each line runs as a task and Ctrl-D stops the run.\n",
          progname);
  fflush(f);
}

/* ---- signals ------------------------------------------------------- */

/* First SIGINT/SIGTERM: graceful stop (async-signal-safe); second: out. */
static void host_on_signal(int sig) {
  nio_engine *e = host_engine;
  if (host_signals++ > 0 || e == NULL) nio__sys_exit_now(128 + sig);
  nio_engine_stop(e);
}

static void host_set_signal_mask(int block) {
  nio__sys_interrupt_mask(block);
}

/* ---- line editing ---------------------------------------------------- */

#ifdef NETIO_HAVE_READLINE
#include <poll.h>
#include <pthread.h>
#include <unistd.h>
#include <readline/history.h>
#include <readline/readline.h>

/*
** With readline, the interactive mode reads lines on the main thread,
** which is idle during the run anyway: the REPL task asks for a line with
** its prompt (host_rl_ask, from the worker), the main thread edits it with
** readline and posts it to the run (nio_post) as "L<line>", or "E" at the
** end of the input. The main thread waits for an ask, for input, or for the
** run to end (the wake pipe, written by host_rl_done and by the thread that
*joins
** the engine), so a run that ends while a prompt is shown ends the host.
** host_rl_g.prompt is owned here: set by host_rl_ask, freed by the main thread.
*/
static struct {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  char *prompt;
  int done;
  int wake[2];
  nio_engine *e;
  int got; /* the callback took a line */
} host_rl_g = {PTHREAD_MUTEX_INITIALIZER,
               PTHREAD_COND_INITIALIZER,
               NULL,
               0,
               {-1, -1},
               NULL,
               0};

static void host_rl_set_done(void) {
  pthread_mutex_lock(&host_rl_g.mu);
  host_rl_g.done = 1;
  pthread_cond_signal(&host_rl_g.cv);
  pthread_mutex_unlock(&host_rl_g.mu);
  if (write(host_rl_g.wake[1], "x", 1) < 0) {
    /* Full: the main thread has been woken already. */
  }
}

static int host_rl_ask(lua_State *L) {
  char *p = strdup(luaL_checkstring(L, 1));
  if (p == NULL) return luaL_error(L, "not enough memory");
  pthread_mutex_lock(&host_rl_g.mu);
  free(host_rl_g.prompt);
  host_rl_g.prompt = p;
  pthread_cond_signal(&host_rl_g.cv);
  pthread_mutex_unlock(&host_rl_g.mu);
  return 0;
}

static int host_rl_done(lua_State *L) {
  (void)L;
  host_rl_set_done();
  return 0;
}

static void host_rl_on_line(char *line) {
  /* Removed here, before readline would show the prompt again for a line
  ** the REPL has not asked for yet. */
  rl_callback_handler_remove();
  if (line == NULL) {
    nio_post(host_rl_g.e, "E", 1);
  } else {
    size_t n = strlen(line);
    char *m = malloc(n + 1);
    if (*line) add_history(line);
    if (m) {
      m[0] = 'L';
      memcpy(m + 1, line, n);
      nio_post(host_rl_g.e, m, n + 1);
      free(m);
    }
    free(line);
  }
  host_rl_g.got = 1;
}

static void *host_rl_joiner(void *arg) {
  int *st = arg;
  st[1] = nio_engine_join(host_rl_g.e, &st[0]);
  host_rl_set_done();
  return NULL;
}

/* Runs the line editor until the run ends; returns nio_engine_join's. */
static int host_rl_run(nio_engine *e, int *status) {
  pthread_t joiner;
  int st[2] = {0, 0};
  host_rl_g.e = e;
  if (pthread_create(&joiner, NULL, host_rl_joiner, st) != 0)
    return nio_engine_join(e, status);
  rl_catch_signals = 0; /* SIGINT stays the host's: it stops the run */
  for (;;) {
    char *prompt;
    pthread_mutex_lock(&host_rl_g.mu);
    while (host_rl_g.prompt == NULL && !host_rl_g.done)
      pthread_cond_wait(&host_rl_g.cv, &host_rl_g.mu);
    prompt = host_rl_g.prompt;
    host_rl_g.prompt = NULL;
    pthread_mutex_unlock(&host_rl_g.mu);
    if (prompt == NULL) break; /* done */
    host_rl_g.got = 0;
    rl_callback_handler_install(prompt, host_rl_on_line);
    free(prompt);
    while (!host_rl_g.got) {
      struct pollfd fds[2] = {{0, POLLIN, 0}, {host_rl_g.wake[0], POLLIN, 0}};
      if (poll(fds, 2, -1) < 0) continue; /* EINTR: a signal */
      if (fds[1].revents) break;          /* the run ended at the prompt */
      if (fds[0].revents) rl_callback_read_char();
    }
    if (!host_rl_g.got) {
      rl_callback_handler_remove();
      fputc('\n', stdout);
      fflush(stdout);
      break;
    }
  }
  pthread_join(joiner, NULL);
  *status = st[0];
  return st[1];
}
#endif

/* ---- options --------------------------------------------------------- */

typedef struct host_opts {
  int script;      /* index of the script in argv, 0 if none */
  int has_e;       /* -e seen */
  int version;     /* -v */
  int help;        /* -h */
  int interactive; /* -i, or no script nor -e with stdin a terminal */
  int noenv;       /* -E */
  int warnings;    /* -W */
  int stdin_;      /* "-" */
  int run_script;
  int tty; /* stdin is a terminal: the interactive mode prompts */
  const char *backend;
} host_opts;

/* Returns 0, or -1 with the message pushed... on bad usage: prints and
** returns -1. Like lua.c's collectargs. */
static int host_collect(char **argv, host_opts *o) {
  int i;
  for (i = 1; argv[i] != NULL; i++) {
    const char *a = argv[i];
    if (a[0] != '-') { /* the script */
      o->script = i;
      return 0;
    }
    switch (a[1]) {
    case '\0': /* "-": stdin */
      o->stdin_ = 1;
      o->script = i;
      return 0;
    case '-':
      if (a[2] != '\0') goto bad;
      if (argv[i + 1] != NULL) o->script = i + 1;
      return 0;
    case 'v':
      if (a[2] != '\0') goto bad;
      o->version = 1;
      break;
    case 'i':
      if (a[2] != '\0') goto bad;
      o->interactive = 1;
      break;
    case 'E':
      if (a[2] != '\0') goto bad;
      o->noenv = 1;
      break;
    case 'W':
      if (a[2] != '\0') goto bad;
      o->warnings = 1;
      break;
    case 'h':
      if (a[2] != '\0') goto bad;
      o->help = 1;
      break;
    case 'e':
    case 'l':
    case 'b':
      if (a[1] == 'e') o->has_e = 1;
      if (a[2] == '\0') { /* the argument is the next word */
        i++;
        if (argv[i] == NULL || argv[i][0] == '-') {
          fprintf(stderr, "%s: '%s' needs argument\n", progname, a);
          return -1;
        }
        if (a[1] == 'b') o->backend = argv[i];
      } else if (a[1] == 'b') {
        o->backend = a + 2;
      }
      break;
    default:
      goto bad;
    }
  }
  return 0;
bad:
  fprintf(stderr, "%s: unrecognized option '%s'\n", progname, argv[i]);
  return -1;
}

/* arg as lua.c makes it: arg[0] the script, positive indices its
** arguments, negative ones the interpreter and options. Without a script,
** arg[0] is the executable and the options follow at 1, 2... */
static void host_create_arg(lua_State *L, char **argv, int argc, int script) {
  int i, narg;
  narg = argc - (script + 1);
  lua_createtable(L, narg > 0 ? narg : 0, script + 1);
  for (i = 0; i < argc; i++) {
    lua_pushstring(L, argv[i]);
    lua_rawseti(L, -2, i - script);
  }
  lua_setglobal(L, "arg");
}

static const char *host_backend(const char *forced) {
  const char *env = getenv("NETIO_BACKEND"), *name;
  if (forced) return forced;
  if (env && env[0]) return env;
  for (int i = 0; (name = nio_backend_name(i)) != NULL; i++)
    if (nio_backend_available(name)) return name;
  return "none";
}

/* Whether this build has a backend called name. */
static int host_backend_known(const char *name) {
  const char *b;
  for (int i = 0; (b = nio_backend_name(i)) != NULL; i++)
    if (strcmp(b, name) == 0) return 1;
  return 0;
}

/* What -v adds about the build: a Linux build without liburing (CMake
** NETIO_URING found none) has epoll only, and a user asking why io_uring
** is never used should not have to guess. */
static const char *host_build_note(void) {
#ifdef _WIN32
  return "";
#else
  return host_backend_known("uring") ? ""
                                     : " (epoll only: built without liburing)";
#endif
}

/*
** The first task: run LUA_INIT, the -l and -e options in order, then the
** script with its arguments, then the interactive mode if asked. Written
** in Lua so that the script's top level can yield (a C function calling
** it would be a C-call boundary).
**
** The interactive mode reads lines through netio.stdin(), so the run goes
** on (servers started at the prompt keep serving) while it waits for a
** line. As in lua.c, a line is first tried as `return <line>` so that an
** expression prints its values, and a line whose chunk ends too early
** (`<eof>`) continues on the next one. Each chunk runs as a task of its own
** and is joined, so it may call yielding functions and its error is
** reported without ending the session. The prompts (_PROMPT, _PROMPT2) and
** the banner are written only when stdin is a terminal, so that piped
** input gives only the values. The end of the input stops the run, as
** lua.c exits.
*/
static const char host_task_src[] =
    "local ops, chunk, repl = ...\n"
    "local function report(e)\n"
    "  if type(e) ~= 'string' then\n"
    "    local mt = getmetatable(e)\n"
    "    if mt and mt.__tostring then e = tostring(e)\n"
    "    else e = '(error object is a ' .. type(e) .. ' value)' end\n"
    "  end\n"
    "  io.stderr:write(e, '\\n')\n"
    "  io.stderr:flush()\n"
    "end\n"
    "local function interact()\n"
    "  local netio = require 'netio'\n"
    "  local input\n"
    "  if repl.ask then\n"
    "    input = { recv = function()\n"
    "      local m = netio.receive()\n"
    "      if type(m) ~= 'string' or m:sub(1, 1) ~= 'L' then return nil end\n"
    "      return m:sub(2)\n"
    "    end }\n"
    "  else\n"
    "    input = netio.stdin()\n"
    "  end\n"
    "  local function prompt(first)\n"
    "    if not repl.tty then return end\n"
    "    local p = rawget(_G, first and '_PROMPT' or '_PROMPT2')\n"
    "    p = p ~= nil and tostring(p) or (first and '> ' or '>> ')\n"
    "    if repl.ask then return repl.ask(p) end\n"
    "    io.stdout:write(p)\n"
    "    io.stdout:flush()\n"
    "  end\n"
    "  if repl.tty then print(repl.banner) end\n"
    "  while true do\n"
    "    prompt(true)\n"
    "    local line = input:recv('*l')\n"
    "    if not line then break end\n"
    "    local f, err = load('return ' .. line, '=stdin')\n"
    "    if not f then\n"
    "      local src = line\n"
    "      while true do\n"
    "        f, err = load(src, '=stdin')\n"
    "        if f or not err:find('<eof>$') then break end\n"
    "        prompt(false)\n"
    "        local more = input:recv('*l')\n"
    "        if not more then break end\n"
    "        src = src .. '\\n' .. more\n"
    "      end\n"
    "    end\n"
    "    if not f then\n"
    "      report(err)\n"
    "    else\n"
    "      local r = table.pack(netio.spawn(f):join())\n"
    "      if not r[1] then\n"
    "        report(r[2])\n"
    "      elseif r.n > 1 then\n"
    "        local ok, e = pcall(print, table.unpack(r, 2, r.n))\n"
    "        if not ok then report(\"error calling 'print' (\" .. tostring(e) "
    ".. ')') end\n"
    "      end\n"
    "    end\n"
    "  end\n"
    "  if repl.tty and not repl.ask then io.stdout:write('\\n') "
    "io.stdout:flush() end\n"
    "  if repl.done then repl.done() end\n"
    "  netio.stop()\n"
    "end\n"
    "return function(...)\n"
    "  for i = 1, #ops, 2 do\n"
    "    local kind, v = ops[i], ops[i + 1]\n"
    "    if kind == 'l' then\n"
    "      local g, m = v:match('^([^=]+)=(.+)$')\n"
    "      g, m = g or v, m or v\n"
    "      _G[g] = require(m)\n"
    "    else\n"
    "      v()\n"
    "    end\n"
    "  end\n"
    "  if not repl then\n"
    "    if chunk then return chunk(...) end\n"
    "    return\n"
    "  end\n"
    "  if chunk then chunk(...) end\n"
    "  return interact()\n"
    "end\n";

/* -E: what lua.c does by setting LUA_NOENV before opening the libraries,
** done after (the engine opened them): the paths back to their defaults,
** which LUA_PATH and LUA_CPATH had replaced. */
static void host_no_env(lua_State *L) {
  lua_pushboolean(L, 1);
  lua_setfield(L, LUA_REGISTRYINDEX, "LUA_NOENV");
  lua_getglobal(L, "package");
  if (lua_istable(L, -1)) {
    lua_pushstring(L, LUA_PATH_DEFAULT);
    lua_setfield(L, -2, "path");
    lua_pushstring(L, LUA_CPATH_DEFAULT);
    lua_setfield(L, -2, "cpath");
  }
  lua_pop(L, 1);
}

/* LUA_INIT_5_4, else LUA_INIT: a chunk, or "@file". Returns 1 with the
** loaded chunk pushed, 0 when neither is set, -1 with the message pushed
** when it does not load. */
static int host_init_chunk(lua_State *L) {
  const char *name = "=LUA_INIT_5_4", *init = getenv(name + 1);
  int r;
  if (init == NULL) {
    name = "=LUA_INIT";
    init = getenv(name + 1);
  }
  if (init == NULL) return 0;
  if (init[0] == '@')
    r = luaL_loadfile(L, init + 1);
  else
    r = luaL_loadbuffer(L, init, strlen(init), name);
  return r == LUA_OK ? 1 : -1;
}

/* In a protected call on the engine's state: `arg`, then the first task's
** function left on the stack -- or an exit status (a number) when a chunk
** does not load. */
static int pmain(lua_State *L) {
  host_opts *o = lua_touserdata(L, 1);
  int argc = (int)lua_tointeger(L, 2);
  char **argv = lua_touserdata(L, 3);
  int i, nops = 0;
  luaL_checkversion(L);
  if (o->warnings) lua_warning(L, "@on", 0);
  if (o->noenv) host_no_env(L);
  host_create_arg(L, argv, argc, o->script);
  /* The task function, made from the options (ops) and the script. */
  if (luaL_loadbuffer(L, host_task_src, sizeof host_task_src - 1, "=netio") !=
      LUA_OK)
    return lua_error(L);
  lua_newtable(L); /* ops: kind, value, kind, value... */
  if (!o->noenv) {
    int r = host_init_chunk(L);
    if (r < 0) {
      host_message(lua_tostring(L, -1));
      lua_pushinteger(L, 1);
      return 1;
    }
    if (r > 0) {
      lua_pushstring(L, "e");
      lua_rawseti(L, -3, ++nops);
      lua_rawseti(L, -2, ++nops);
    }
  }
  for (i = 1; argv[i] != NULL && (o->script == 0 || i < o->script); i++) {
    const char *a = argv[i], *v;
    if (a[0] != '-' || (a[1] != 'e' && a[1] != 'l' && a[1] != 'b')) continue;
    v = a[2] ? a + 2 : argv[++i];
    if (a[1] == 'b') continue;
    lua_pushstring(L, a[1] == 'e' ? "e" : "l");
    lua_rawseti(L, -2, ++nops);
    if (a[1] == 'e') {
      if (luaL_loadbuffer(L, v, strlen(v), "=(command line)") != LUA_OK) {
        host_message(lua_tostring(L, -1));
        lua_pushinteger(L, 1);
        return 1;
      }
    } else {
      lua_pushstring(L, v);
    }
    lua_rawseti(L, -2, ++nops);
  }
  if (o->run_script) {
    const char *fname = o->stdin_ ? NULL : argv[o->script];
    if (luaL_loadfile(L, fname) != LUA_OK) {
      host_message(lua_tostring(L, -1));
      lua_pushinteger(L, 1);
      return 1;
    }
  } else {
    lua_pushnil(L);
  }
  if (o->interactive) { /* repl: how the interactive mode shows itself */
    lua_createtable(L, 0, 4);
#ifdef NETIO_HAVE_READLINE
    if (o->tty) { /* lines come from host_rl_run, on the main thread */
      lua_pushcfunction(L, host_rl_ask);
      lua_setfield(L, -2, "ask");
      lua_pushcfunction(L, host_rl_done);
      lua_setfield(L, -2, "done");
    }
#endif
    lua_pushboolean(L, o->tty);
    lua_setfield(L, -2, "tty");
    lua_pushfstring(L, "netio %s  %s  backend %s", NIO_VERSION, LUA_RELEASE,
                    host_backend(o->backend));
    lua_setfield(L, -2, "banner");
  } else {
    lua_pushnil(L);
  }
  lua_call(L, 3, 1); /* -> the task function */
  return 1;
}

int main(int argc, char **argv) {
  host_opts o;
  nio_options eo;
  nio_engine *e;
  lua_State *L;
  int r, status = 0, result = 0, sargc = 0;
  char **sargv = argv;
  nio__sys_tune_heap();
  memset(&o, 0, sizeof o);
  if (argv[0] && argv[0][0]) progname = argv[0];
  if (host_collect(argv, &o) < 0) {
    host_usage(stderr);
    return HOST_USAGE_STATUS;
  }
  if (o.backend && !host_backend_known(o.backend)) {
    fprintf(stderr, "%s: unknown backend '%s'\n", progname, o.backend);
    return HOST_USAGE_STATUS;
  }
  if (o.version)
    printf("netio %s  %s  backend %s%s\n", NIO_VERSION, LUA_RELEASE,
           host_backend(o.backend), host_build_note());
  if (o.help) host_usage(stdout);
  fflush(stdout);
  o.run_script = o.script != 0;
  o.tty = nio__sys_stdin_is_tty();
  if (!o.run_script && !o.has_e && !o.interactive) {
    if (o.version || o.help) return 0;
    if (o.tty)
      o.interactive = 1; /* as lua.c: a terminal and nothing to run */
    else
      o.stdin_ = o.run_script = 1;
  }

  memset(&eo, 0, sizeof eo);
  eo.backend = o.backend;
  if ((r = nio_engine_new(&e, &eo)) != 0) {
    fprintf(stderr, "%s: cannot create the engine: %s\n", progname,
            nio_strerror(r));
    return 1;
  }
  L = nio_engine_state(e);
  lua_pushcfunction(L, pmain);
  lua_pushlightuserdata(L, &o);
  lua_pushinteger(L, argc);
  lua_pushlightuserdata(L, argv);
  if (lua_pcall(L, 3, 1, 0) != LUA_OK || !lua_isfunction(L, -1)) {
    if (lua_type(L, -1) == LUA_TNUMBER) {
      result = (int)lua_tointeger(L, -1);
    } else {
      host_message(lua_tostring(L, -1) ? lua_tostring(L, -1) : "?");
      result = 1;
    }
    nio_engine_free(e);
    return result;
  }
  /* The script's arguments: argv[script + 1 ...] ("arg" is set already). */
  if (o.run_script && o.script) {
    sargv = argv + o.script;
    sargc = argc - o.script;
  }
  nio__sys_on_interrupt(host_on_signal);
  host_set_signal_mask(1); /* the worker inherits the blocked mask */
  if ((r = nio_engine_start(e, NULL, sargc, sargv)) == 0) {
    host_engine = e;
    /* The worker keeps the signals blocked; from now on they come to this
    ** thread, which only waits. */
    host_set_signal_mask(0);
#ifdef NETIO_HAVE_READLINE
    if (o.interactive && o.tty && pipe(host_rl_g.wake) == 0)
      r = host_rl_run(e, &status);
    else
#endif
      r = nio_engine_join(e, &status);
    host_set_signal_mask(1);
    host_engine = NULL;
  }
  if (r != 0 || status != 0) {
    const char *msg = nio_engine_error(e);
    host_message(msg ? msg : nio_strerror(r));
    result = 1;
  }
  nio_engine_free(e);
  return result;
}
