/*
** log.c: the leveled logger. A mutex makes each line whole when several
** threads write; the line is formatted before the lock is taken.
*/
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "log.h"
#include "../port/sys.h"

#ifdef _WIN32
#include <process.h>
#define log_getpid() ((long)_getpid())
#else
#include <unistd.h>
#define log_getpid() ((long)getpid())
#endif

static const char *const log_names[] = {"error", "warn", "info", "debug"};

/* Wall-clock time for line headers. MSVCRT (MinGW's default runtime) has
** no timespec_get. */
static void log_wallclock(time_t *sec, long *nsec) {
#ifdef _WIN32
  FILETIME ft;
  uint64_t t;
  GetSystemTimeAsFileTime(&ft); /* 100 ns units since 1601 */
  t = ((uint64_t)ft.dwHighDateTime << 32 | ft.dwLowDateTime) -
      116444736000000000ull;
  *sec = (time_t)(t / 10000000u);
  *nsec = (long)(t % 10000000u) * 100;
#else
  struct timespec ts;
  timespec_get(&ts, TIME_UTC);
  *sec = ts.tv_sec;
  *nsec = ts.tv_nsec;
#endif
}

#ifdef _WIN32
#define LOG_LOCK_INIT                                                          \
  { SRWLOCK_INIT }
#else
#define LOG_LOCK_INIT                                                          \
  { PTHREAD_MUTEX_INITIALIZER }
#endif

/* level, off and init are read without the lock on the fast path:
** atomics. off: bit i set when level i is switched off on its own. */
static struct {
  _Atomic int init;
  _Atomic int level;
  _Atomic unsigned off;
  int streams; /* NIO_LOG_STDERR | NIO_LOG_STDOUT */
  FILE *file;
  nio_mutex lock;
  const char *once[32];
  int nonce;
} L = {0, NIO_LOG_INFO, 0, NIO_LOG_STDERR, NULL, LOG_LOCK_INIT, {0}, 0};

/* Reads NETIO_LOG once, under the lock. */
static void log_init(void) {
  const char *env;
  int lvl;
  if (L.init) return;
  nio__mutex_lock(&L.lock);
  if (!L.init) {
    env = getenv("NETIO_LOG");
    if (env && (lvl = nio__log_level_by_name(env)) >= 0) L.level = lvl;
    L.init = 1;
  }
  nio__mutex_unlock(&L.lock);
}

int nio__log_level_by_name(const char *name) {
  for (int i = 0; i < 4; i++)
    if (strcmp(name, log_names[i]) == 0) return i;
  return -1;
}

const char *nio__log_level_name(int level) {
  return level >= 0 && level < 4 ? log_names[level] : "?";
}

int nio__log_level(void) {
  log_init();
  return L.level;
}

void nio__log_set_level(int level) {
  log_init();
  if (level >= NIO_LOG_ERROR && level <= NIO_LOG_DEBUG) L.level = level;
}

int nio__log_enabled(int level) {
  log_init();
  return level >= NIO_LOG_ERROR && level <= L.level && !(L.off & (1u << level));
}

int nio__log_switch(int level, int on) {
  unsigned bit = 1u << level, was;
  log_init();
  if (level < NIO_LOG_ERROR || level > NIO_LOG_DEBUG) return 0;
  if (on < 0) return !(L.off & bit);
  was = on ? atomic_fetch_and(&L.off, ~bit) : atomic_fetch_or(&L.off, bit);
  return !(was & bit);
}

int nio__log_open(const char *path, int flags) {
  FILE *f = NULL;
  log_init();
  if (path && (f = fopen(path, "a")) == NULL)
    return errno == ENOENT ? NIO_ENOENT : NIO_EACCES;
  nio__mutex_lock(&L.lock);
  if (L.file) fclose(L.file);
  L.file = f;
  L.streams = f ? flags : NIO_LOG_STDERR;
  nio__mutex_unlock(&L.lock);
  return 0;
}

void nio__logv(int level, const char *fmt, va_list ap) {
  char line[4096];
  size_t n;
  struct tm tm;
  time_t sec;
  long nsec;
  if (!nio__log_enabled(level)) return;
  log_wallclock(&sec, &nsec);
#ifdef _WIN32
  localtime_s(&tm, &sec);
#else
  localtime_r(&sec, &tm);
#endif
  n = strftime(line, sizeof line, "%Y-%m-%d %H:%M:%S", &tm);
  n += (size_t)snprintf(line + n, sizeof line - n, ".%03d %-5s %ld %llu ",
                        (int)(nsec / 1000000), log_names[level], log_getpid(),
                        (unsigned long long)nio__thread_self_id());
  if (n < sizeof line) vsnprintf(line + n, sizeof line - n, fmt, ap);
  n = strlen(line);
  if (n >= sizeof line - 1) n = sizeof line - 2;
  line[n++] = '\n';
  line[n] = '\0';
  nio__mutex_lock(&L.lock);
  if (L.file) {
    fputs(line, L.file);
    fflush(L.file);
  }
  if (L.streams & NIO_LOG_STDERR) fputs(line, stderr);
  if (L.streams & NIO_LOG_STDOUT) {
    fputs(line, stdout);
    fflush(stdout);
  }
  nio__mutex_unlock(&L.lock);
}

void nio__log(int level, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  nio__logv(level, fmt, ap);
  va_end(ap);
}

void nio__log_once(int level, const char *key, const char *fmt, ...) {
  va_list ap;
  int seen = 0;
  log_init();
  nio__mutex_lock(&L.lock);
  for (int i = 0; i < L.nonce; i++)
    if (strcmp(L.once[i], key) == 0) seen = 1;
  if (!seen && L.nonce < 32) L.once[L.nonce++] = key;
  nio__mutex_unlock(&L.lock);
  if (seen) return;
  va_start(ap, fmt);
  nio__logv(level, fmt, ap);
  va_end(ap);
}
