/*
** log.h: the leveled, thread-safe logger shared by every layer (C and the
** Lua netio.log). One line per call: time, level, pid, tid, message.
** Its state is process-wide mutable state: the logger is shared by every
** engine and thread, by design.
*/
#ifndef NIO_LOG_H
#define NIO_LOG_H

#include <stdarg.h>

enum { NIO_LOG_ERROR = 0, NIO_LOG_WARN, NIO_LOG_INFO, NIO_LOG_DEBUG };

/* Current level; messages above it are dropped. Default: NIO_LOG_INFO,
** or the level named by the environment variable NETIO_LOG
** ("error", "warn", "info", "debug"). */
int nio__log_level(void);
void nio__log_set_level(int level);
/* Each level can also be switched off on its own (all are on at start):
** a line is written when its level is at or below the current level and
** switched on. nio__log_switch: on 1 / 0 switches level on / off, -1 only
** reads; returns whether it was on. */
int nio__log_enabled(int level);
int nio__log_switch(int level, int on);
/* Level by name, or -1. */
int nio__log_level_by_name(const char *name);
const char *nio__log_level_name(int level);
/* Where lines go: path (appended) and/or the standard streams in flags.
** path NULL: stderr only (flags ignored). Returns 0 or NIO_E* (the file
** cannot be opened: nothing changes). */
enum { NIO_LOG_STDERR = 1, NIO_LOG_STDOUT = 2 };
int nio__log_open(const char *path, int flags);
void nio__log(int level, const char *fmt, ...)
#ifdef __GNUC__
    __attribute__((format(printf, 2, 3)))
#endif
    ;
void nio__logv(int level, const char *fmt, va_list ap);
/* Log once per process for a given key (a string literal). */
void nio__log_once(int level, const char *key, const char *fmt, ...)
#ifdef __GNUC__
    __attribute__((format(printf, 3, 4)))
#endif
    ;

#endif /* NIO_LOG_H */
