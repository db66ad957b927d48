/*
** copy.c: Lua values copied between Lua states (thread arguments and
** results, messages) as a byte encoding: nil, booleans, numbers, strings,
** and tables of those. Anything else -- functions, userdata, coroutines,
** a table that contains itself -- is refused with a message saying what.
**
** Encoding: a sequence of values, each a tag byte and its payload:
**   'n' nil, 'f' false, 't' true, 'i' integer (8 bytes), 'd' float (8),
**   's' string (varint length, bytes), '{' table (pairs of values, '}').
** Integers and floats are kept apart, as Lua 5.4 keeps them. The bytes
** never leave the process, so numbers are in the machine's own order.
*/
#include <stdlib.h>
#include <string.h>
#include "binding.h"

#define COPY_DEPTH_MAX 100
#define COPY_BOX_MT "netio.copybuf"

/* The buffer being built, in a userdata so that an error raised halfway
** (a value that cannot be copied, no memory) frees it with the box. */
typedef struct copy_box {
  char *p;
  size_t len, cap;
} copy_box;

static int box_gc(lua_State *L) {
  copy_box *b = lua_touserdata(L, 1);
  free(b->p);
  b->p = NULL;
  return 0;
}

typedef struct encoder {
  lua_State *L;
  copy_box *b;
  int seen;  /* stack index of the tables on the current path, 0: none */
  int depth; /* tables open */
  const char *fname;
  int argn; /* the argument being encoded, 0 when not arguments */
} encoder;

static void enc_grow(encoder *E, size_t n) {
  copy_box *b = E->b;
  size_t cap;
  char *p;
  if (b->cap - b->len >= n) return;
  cap = b->cap ? b->cap : 64;
  while (cap - b->len < n) {
    if (cap > SIZE_MAX / 2) luaL_error(E->L, "netio: value too large to copy");
    cap *= 2;
  }
  if ((p = realloc(b->p, cap)) == NULL) luaL_error(E->L, "not enough memory");
  b->p = p;
  b->cap = cap;
}

static void enc_put(encoder *E, const void *p, size_t n) {
  enc_grow(E, n);
  memcpy(E->b->p + E->b->len, p, n);
  E->b->len += n;
}

static void enc_byte(encoder *E, char c) {
  enc_put(E, &c, 1);
}

static void enc_varint(encoder *E, size_t v) {
  char buf[10];
  size_t n = 0;
  do {
    buf[n++] = (char)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
    v >>= 7;
  } while (v);
  enc_put(E, buf, n);
}

static void enc_refuse(encoder *E, const char *what) {
  lua_State *L = E->L;
  const char *where = E->depth > 0 ? " (in a table)" : "";
  if (E->argn > 0)
    luaL_error(L, "bad argument #%d to '%s' (cannot copy %s%s)", E->argn,
               E->fname, what, where);
  luaL_error(L, "netio: %s: cannot copy %s%s", E->fname, what, where);
  abort(); /* not reached */
}

static void enc_value(encoder *E, int idx);

static void enc_table(encoder *E, int idx) {
  lua_State *L = E->L;
  if (E->depth >= COPY_DEPTH_MAX) {
    E->depth = 0; /* the message says where already */
    enc_refuse(E, "a table nested more than 100 deep");
  }
  if (!lua_checkstack(L, 6)) luaL_error(L, "netio: value too deep to copy");
  if (E->seen == 0) {
    lua_newtable(L);
    E->seen = lua_gettop(L);
    /* Keep the slot balanced for the caller: the set stays until the end
    ** of nio__bind_encode. */
  }
  lua_pushvalue(L, idx);
  if (lua_rawget(L, E->seen) != LUA_TNIL) {
    E->depth = 0; /* the message says where already */
    enc_refuse(E, "a table that contains itself");
  }
  lua_pop(L, 1);
  lua_pushvalue(L, idx);
  lua_pushboolean(L, 1);
  lua_rawset(L, E->seen);
  enc_byte(E, '{');
  E->depth++;
  lua_pushnil(L);
  while (lua_next(L, idx) != 0) {
    int top = lua_gettop(L);
    enc_value(E, top - 1);
    enc_value(E, top);
    lua_pop(L, 1);
  }
  E->depth--;
  enc_byte(E, '}');
  lua_pushvalue(L, idx);
  lua_pushnil(L);
  lua_rawset(L, E->seen);
}

static void enc_value(encoder *E, int idx) {
  lua_State *L = E->L;
  switch (lua_type(L, idx)) {
  case LUA_TNIL:
    enc_byte(E, 'n');
    break;
  case LUA_TBOOLEAN:
    enc_byte(E, lua_toboolean(L, idx) ? 't' : 'f');
    break;
  case LUA_TNUMBER:
    if (lua_isinteger(L, idx)) {
      lua_Integer i = lua_tointeger(L, idx);
      enc_byte(E, 'i');
      enc_put(E, &i, sizeof i);
    } else {
      lua_Number d = lua_tonumber(L, idx);
      enc_byte(E, 'd');
      enc_put(E, &d, sizeof d);
    }
    break;
  case LUA_TSTRING: {
    size_t len;
    const char *s = lua_tolstring(L, idx, &len);
    enc_byte(E, 's');
    enc_varint(E, len);
    enc_put(E, s, len);
    break;
  }
  case LUA_TTABLE:
    enc_table(E, lua_absindex(L, idx));
    break;
  case LUA_TFUNCTION:
    enc_refuse(E, "a function");
    break;
  case LUA_TTHREAD:
    enc_refuse(E, "a coroutine");
    break;
  default:
    enc_refuse(E, "a userdata");
  }
}

void nio__bind_encode(lua_State *L, int idx, int n, const char *fname,
                      int argn) {
  encoder E;
  int top;
  idx = lua_absindex(L, idx);
  luaL_checkstack(L, 4, NULL);
  E.L = L;
  E.b = lua_newuserdatauv(L, sizeof *E.b, 0);
  memset(E.b, 0, sizeof *E.b);
  if (luaL_newmetatable(L, COPY_BOX_MT)) {
    lua_pushcfunction(L, box_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_setmetatable(L, -2);
  top = lua_gettop(L); /* the box */
  E.seen = 0;
  E.depth = 0;
  E.fname = fname;
  for (int i = 0; i < n; i++) {
    E.argn = argn > 0 ? argn + i : 0;
    enc_value(&E, idx + i);
  }
  lua_settop(L, top);
  lua_pushlstring(L, E.b->p ? E.b->p : "", E.b->len);
  free(E.b->p);
  E.b->p = NULL;
  lua_remove(L, top);
}

/* ---- decoding --------------------------------------------------------- */

typedef struct decoder {
  lua_State *L;
  const char *p, *end;
  int depth;
} decoder;

static void dec_bad(decoder *D) {
  luaL_error(D->L, "netio: malformed message");
  abort(); /* not reached */
}

static void dec_take(decoder *D, void *out, size_t n) {
  if ((size_t)(D->end - D->p) < n) dec_bad(D);
  memcpy(out, D->p, n);
  D->p += n;
}

static size_t dec_varint(decoder *D) {
  size_t v = 0;
  int shift = 0;
  for (;;) {
    unsigned char c;
    if (D->p >= D->end || shift > 63) dec_bad(D);
    c = (unsigned char)*D->p++;
    v |= (size_t)(c & 0x7f) << shift;
    if (!(c & 0x80)) return v;
    shift += 7;
  }
}

/* Push one value; returns 0 at a table's end marker (nothing pushed). */
static int dec_value(decoder *D) {
  lua_State *L = D->L;
  char tag;
  if (!lua_checkstack(L, 4)) luaL_error(L, "netio: message too deep");
  dec_take(D, &tag, 1);
  switch (tag) {
  case 'n':
    lua_pushnil(L);
    break;
  case 'f':
  case 't':
    lua_pushboolean(L, tag == 't');
    break;
  case 'i': {
    lua_Integer i;
    dec_take(D, &i, sizeof i);
    lua_pushinteger(L, i);
    break;
  }
  case 'd': {
    lua_Number d;
    dec_take(D, &d, sizeof d);
    lua_pushnumber(L, d);
    break;
  }
  case 's': {
    size_t len = dec_varint(D);
    if ((size_t)(D->end - D->p) < len) dec_bad(D);
    lua_pushlstring(L, D->p, len);
    D->p += len;
    break;
  }
  case '{':
    if (++D->depth > COPY_DEPTH_MAX) dec_bad(D);
    lua_newtable(L);
    for (;;) {
      if (!dec_value(D)) break;
      /* A nil key cannot have been encoded; a bad one is refused. */
      if (lua_isnil(L, -1) || !dec_value(D)) dec_bad(D);
      lua_rawset(L, -3);
    }
    D->depth--;
    break;
  case '}':
    if (D->depth == 0) dec_bad(D);
    return 0;
  default:
    dec_bad(D);
  }
  return 1;
}

int nio__bind_decode(lua_State *L, const char *p, size_t len) {
  decoder D;
  int n = 0;
  D.L = L;
  D.p = p;
  D.end = p + len;
  D.depth = 0;
  while (D.p < D.end) {
    if (!lua_checkstack(L, 1)) luaL_error(L, "netio: too many values");
    if (!dec_value(&D)) dec_bad(&D);
    n++;
  }
  return n;
}
