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
          "  -l mod    require library 'mod' into global 'mod'\n"
          "  -l g=mod  require library 'mod' into global 'g'\n"
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
          "when every task has ended. Without a script, -e or -l, it runs\n"
          "stdin when stdin is not a terminal.\n",
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

/* ---- options --------------------------------------------------------- */

typedef struct host_opts {
  int script;  /* index of the script in argv, 0 if none */
  int has_e;   /* -e or -l seen */
  int version; /* -v */
  int help;    /* -h */
  int stdin_;  /* "-" */
  int run_script;
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
    case 'h':
      if (a[2] != '\0') goto bad;
      o->help = 1;
      break;
    case 'e':
    case 'l':
    case 'b':
      if (a[1] != 'b') o->has_e = 1;
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
** arguments, negative ones the interpreter and options. */
static void host_create_arg(lua_State *L, char **argv, int argc, int script) {
  int i, narg;
  if (script == 0) script = argc; /* no script: everything is negative */
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
** The first task: run the -l and -e options in order, then the script
** with its arguments. Written in Lua so that the script's top level can
** yield (a C function calling it would be a C-call boundary).
*/
static const char host_task_src[] =
    "local ops, chunk = ...\n"
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
    "  if chunk then return chunk(...) end\n"
    "end\n";

/* In a protected call on the engine's state: `arg`, then the first task's
** function left on the stack -- or an exit status (a number) when a chunk
** does not load. */
static int pmain(lua_State *L) {
  host_opts *o = lua_touserdata(L, 1);
  int argc = (int)lua_tointeger(L, 2);
  char **argv = lua_touserdata(L, 3);
  int i, nops = 0;
  luaL_checkversion(L);
  host_create_arg(L, argv, argc, o->script);
  /* The task function, made from the options (ops) and the script. */
  if (luaL_loadbuffer(L, host_task_src, sizeof host_task_src - 1, "=netio") !=
      LUA_OK)
    return lua_error(L);
  lua_newtable(L); /* ops: kind, value, kind, value... */
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
  lua_call(L, 2, 1); /* -> the task function */
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
  if (!o.run_script && !o.has_e) {
    if (o.version || o.help) return 0;
    if (nio__sys_stdin_is_tty()) {
      host_usage(stderr);
      return HOST_USAGE_STATUS;
    }
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
