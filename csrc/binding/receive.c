/*
** receive.c: conn:receiveuntil(pattern[, opts]) -- a reader function that
** reads the stream up to a byte pattern, as OpenResty's cosocket iterator.
**
** The search is Knuth-Morris-Pratt over the connection's input, so a
** pattern split across receives, or one with repeated prefixes
** ("--abc--abd"), is found without looking back: between the waits of one
** call the input holds only the bytes that may still start the pattern (at
** most its length - 1); the bytes before them cannot be part of it and are
** moved into the reader's buffer (nb->acc), counted against max-input.
*/
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "binding.h"

/* The longest pattern: its failure table is 4 bytes a pattern byte. */
#define RU_PATTERN_MAX (64u << 10)

/*
** A reader's pattern: the payload of a userdata, upvalue 2 of the reader
** closure (upvalue 1 is the conn userdata). fail[k] is the length of the
** longest proper prefix of pat[0..k] that is also its suffix; the pattern
** bytes follow the table. Freed with the closure by Lua.
*/
typedef struct ru_pat {
  uint32_t len;
  uint8_t inclusive;
  /* A sized call returned the last piece and consumed the pattern: the
  ** next call returns nil, nil (the end of this search) and the one after
  ** starts the next search. */
  uint8_t done;
  uint32_t fail[];
} ru_pat;

static const unsigned char *ru_bytes(const ru_pat *pt) {
  return (const unsigned char *)(pt->fail + pt->len);
}

static void ru_prepare(ru_pat *pt, const char *pat, size_t len) {
  unsigned char *q = (unsigned char *)(pt->fail + len);
  uint32_t k = 0;
  memcpy(q, pat, len);
  pt->len = (uint32_t)len;
  pt->fail[0] = 0;
  for (uint32_t i = 1; i < len; i++) {
    while (k > 0 && q[i] != q[k]) k = pt->fail[k - 1];
    if (q[i] == q[k]) k++;
    pt->fail[i] = k;
  }
}

/* Scan p[*pi..len) with *pj pattern bytes matched so far, until the
** pattern is complete (returns 1, *pi just past it) or the bytes known to
** come before any match (*pi - *pj) reach lim (returns 0), or the input
** ends (returns 0, *pi == len). */
static int ru_scan(const ru_pat *pt, const char *p, size_t len, size_t *pi,
                   size_t *pj, size_t lim) {
  const unsigned char *s = (const unsigned char *)p, *pat = ru_bytes(pt);
  size_t i = *pi, j = *pj, m = pt->len;
  int found = 0;
  while (i < len && i - j < lim) {
    if (j == 0) {
      /* Nothing matched: jump to the next candidate first byte. */
      size_t end = len < lim ? len : lim;
      const unsigned char *q = memchr(s + i, pat[0], end - i);
      if (q == NULL) {
        i = end;
        break;
      }
      i = (size_t)(q - s) + 1;
      j = 1;
    } else {
      while (j > 0 && s[i] != pat[j]) j = pt->fail[j - 1];
      if (s[i] == pat[j]) j++;
      i++;
    }
    if (j == m) {
      found = 1;
      break;
    }
  }
  *pi = i;
  *pj = j;
  return found;
}

/* Push the reader's buffer followed by p[0..n). */
static void ru_push(lua_State *L, nb_conn *nb, const char *p, size_t n) {
  if (nb->acclen == 0) {
    lua_pushlstring(L, p, n);
  } else {
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    luaL_addlstring(&b, nb->acc, nb->acclen);
    luaL_addlstring(&b, p, n);
    luaL_pushresult(&b);
  }
}

static void ru_reset(nb_conn *nb) {
  /* The buffer is dropped, not kept: an idle connection holds none. */
  free(nb->acc);
  nb->acc = NULL;
  nb->acclen = nb->acccap = 0;
  nio__bind_recv_want(nb, 0);
}

/* One attempt: cap is the size argument (0: none), *pj the pattern bytes
** matched at the front of the input. Returns the results pushed, or -1
** to wait for more input. */
static int ru_step(lua_State *L, nb_conn *nb, ru_pat *pt, size_t cap,
                   size_t *pj) {
  nio_conn *c = nb->c;
  size_t len, i = *pj, max = nb->max_input, stop, lim;
  const char *p = nio__conn_input(c, &len);
  /* A piece of cap bytes is returned once they are known; otherwise the
  ** call fails once the data before the pattern passes max-input. */
  int piece = cap != 0 && cap <= max;
  stop = piece ? cap : max + 1;
  /* max-input lowered under the waiting call: it fails with what it
  ** holds (as recv does). */
  if (nb->acclen >= stop) return nio__bind_recv_too_large(L, nb);
  lim = stop - nb->acclen;
  if (ru_scan(pt, p, len, &i, pj, lim)) {
    size_t d = i - pt->len; /* the data before the pattern, in the input */
    if (cap != 0 && nb->acclen + d == 0 && !pt->inclusive) {
      /* The pattern right away: the end of a sized search. */
      nio__conn_consume(c, i);
      ru_reset(nb);
      lua_pushnil(L);
      lua_pushnil(L);
      return 2;
    }
    ru_push(L, nb, p, pt->inclusive ? i : d);
    nio__conn_consume(c, i);
    ru_reset(nb);
    if (cap != 0) pt->done = 1;
    return 1;
  }
  if (i - *pj >= lim) {
    if (piece) {
      ru_push(L, nb, p, lim);
      nio__conn_consume(c, lim);
      ru_reset(nb);
      return 1;
    }
    if (nio__bind_recv_gather(nb, p, max - nb->acclen) < 0)
      return nio__bind_recv_fail(L, nb, "not enough memory");
    return nio__bind_recv_too_large(L, nb);
  }
  /* Keep in the input only the bytes that may start the pattern. */
  if (len > *pj && nio__bind_recv_gather(nb, p, len - *pj) < 0)
    return nio__bind_recv_fail(L, nb, "not enough memory");
  /* Room for a long pattern's prefix and the bytes that complete it. */
  nio__bind_recv_want(
      nb, pt->len > NB_RECV_ANY_MAX / 2 ? pt->len + NB_RECV_ANY_MAX : 0);
  if (c->err) return nio__bind_recv_fail(L, nb, nio__bind_conn_cerr(c));
  if (c->eof) return nio__bind_recv_fail(L, nb, "closed");
  return -1;
}

/* The size argument of a reader call: 0 when none. */
static size_t ru_size(lua_State *L) {
  lua_Integer n;
  int isint;
  if (lua_isnoneornil(L, 1)) return 0;
  luaL_argexpected(L, lua_type(L, 1) == LUA_TNUMBER, 1, "number");
  n = lua_tointegerx(L, 1, &isint);
  luaL_argcheck(L, isint, 1, "number has no integer representation");
  luaL_argcheck(L, n > 0, 1, "size must be positive");
  return (size_t)n;
}

static int reader_k(lua_State *L, int status, lua_KContext ctx) {
  nb_conn *nb = lua_touserdata(L, lua_upvalueindex(1));
  ru_pat *pt = lua_touserdata(L, lua_upvalueindex(2));
  size_t j = (size_t)ctx;
  nb_task *t;
  int r;
  (void)status;
  NB_K_GUARD(t, L, nb->S, ctx, reader_k);
  nio__bind_vacate(&nb->reader);
  if (nb->c == NULL) {
    nio__bind_wait_end(t);
    return nio__bind_recv_fail(L, nb, "closed");
  }
  if ((r = ru_step(L, nb, pt, (size_t)lua_tointeger(L, 1), &j)) >= 0) {
    nio__bind_wait_end(t);
    return r;
  }
  if (t->timedout) {
    nio__bind_wait_end(t);
    return nio__bind_recv_fail(L, nb, "timeout");
  }
  nio__bind_occupy(&nb->reader, t);
  return nio__bind_yield(L, t, (lua_KContext)j, reader_k);
}

/* reader([size]) -> data | nil, nil | nil, err, partial */
static int l_reader(lua_State *L) {
  nb_conn *nb = lua_touserdata(L, lua_upvalueindex(1));
  ru_pat *pt = lua_touserdata(L, lua_upvalueindex(2));
  size_t cap = ru_size(L), j = 0;
  nb_task *t = nio__bind_task(L, nb->S, "reader");
  int r;
  if (pt->done) {
    pt->done = 0;
    lua_pushnil(L);
    lua_pushnil(L);
    return 2;
  }
  if (nb->c == NULL) return nio__bind_recv_fail(L, nb, "closed");
  if (nb->reader) {
    lua_pushnil(L);
    lua_pushliteral(L, "busy");
    lua_pushliteral(L, "");
    return 3;
  }
  lua_settop(L, 1);
  lua_pushinteger(L, (lua_Integer)cap);
  lua_replace(L, 1);
  if ((r = ru_step(L, nb, pt, cap, &j)) >= 0) return r;
  if (nio__bind_wait_begin(t, nb->tmo_read) < 0)
    return nio__bind_recv_fail(L, nb, nio_strerror(NIO_ENOMEM));
  nio__bind_occupy(&nb->reader, t);
  nio__bind_on_cancel(t, nio__bind_recv_cancel, nb);
  return nio__bind_yield(L, t, (lua_KContext)j, reader_k);
}

int nio__bind_l_receiveuntil(lua_State *L) {
  static const char *const known[] = {"inclusive", NULL};
  nb_conn *nb = nio__bind_conn_check(L, 1);
  size_t len;
  const char *pat;
  int inclusive = 0;
  ru_pat *pt;
  luaL_argexpected(L, lua_type(L, 2) == LUA_TSTRING, 2, "string");
  pat = lua_tolstring(L, 2, &len);
  luaL_argcheck(L, len > 0, 2, "empty pattern");
  luaL_argcheck(L, len <= RU_PATTERN_MAX, 2, "pattern longer than 64 KiB");
  if (!lua_isnoneornil(L, 3)) {
    luaL_checktype(L, 3, LUA_TTABLE);
    nio__bind_check_opts(L, 3, known);
    lua_getfield(L, 3, "inclusive");
    inclusive = lua_toboolean(L, -1);
    lua_pop(L, 1);
  }
  if (nb->c == NULL) {
    lua_pushnil(L);
    lua_pushliteral(L, "closed");
    return 2;
  }
  /* The closure's upvalues: the conn, then the pattern (the string stays
  ** at 2 while it is copied). */
  lua_pushvalue(L, 1);
  pt = lua_newuserdatauv(L, sizeof *pt + len * (sizeof(uint32_t) + 1), 0);
  pt->inclusive = (uint8_t)inclusive;
  pt->done = 0;
  ru_prepare(pt, pat, len);
  lua_pushcclosure(L, l_reader, 2);
  return 1;
}
