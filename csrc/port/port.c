/*
** port.c: backend selection. The only place that knows which backends
** exist; everything else goes through the ops table.
*/
#include <stdlib.h>
#include <string.h>
#include "port.h"
#include "log.h"

static const nio_port_ops *const port_backends[] = {
#ifdef _WIN32
    &nio__iocp_ops,
#else
    &nio__uring_ops, &nio__epoll_ops,
#endif
    NULL};

static const nio_port_ops *port_find(const char *name) {
  for (int i = 0; port_backends[i]; i++)
    if (strcmp(port_backends[i]->name, name) == 0) return port_backends[i];
  return NULL;
}

int nio__port_open(nio_port **out, const char *backend) {
  const nio_port_ops *ops;
  int r = NIO_ENOSYS;
  *out = NULL;
  if (backend == NULL || backend[0] == '\0') backend = getenv("NETIO_BACKEND");
  if (backend != NULL && backend[0] != '\0') {
    if ((ops = port_find(backend)) == NULL) return NIO_EINVAL;
    return ops->open(out);
  }
  /* The best available: the first that opens. */
  for (int i = 0; port_backends[i]; i++) {
    r = port_backends[i]->open(out);
    if (r == 0) return 0;
    if (port_backends[i + 1] != NULL)
      nio__log_once(NIO_LOG_DEBUG, port_backends[i]->name,
                    "netio: %s backend unavailable (%s), using %s",
                    port_backends[i]->name, nio_strerror(r),
                    port_backends[i + 1]->name);
  }
  return r;
}

void nio__port_close(nio_port *p) {
  if (p) p->ops->close(p);
}

const char *nio__port_backend(const nio_port *p) {
  return p->ops->name;
}

int nio__port_available(const char *backend) {
  const nio_port_ops *ops = port_find(backend);
  nio_port *p;
  if (ops == NULL || ops->open(&p) != 0) return 0;
  ops->close(p);
  return 1;
}

int nio__port_add(nio_port *p, nio_sock fd) {
  return p->ops->add(p, fd);
}

void nio__port_remove(nio_port *p, nio_sock fd) {
  p->ops->remove(p, fd);
}

int nio__port_submit(nio_port *p, nio_req *r) {
  return p->ops->submit(p, r);
}

int nio__port_cancel(nio_port *p, nio_req *r) {
  return p->ops->cancel(p, r);
}

int nio__port_keep(nio_port *p, nio_req *r, const char *data) {
  return p->ops->keep ? p->ops->keep(p, r, data) : NIO_ENOBUFS;
}

void nio__port_release(nio_port *p, const char *data) {
  if (p->ops->release) p->ops->release(p, data);
}

int nio__port_wait(nio_port *p, int timeout_ms) {
  return p->ops->wait(p, timeout_ms);
}

int nio__port_post(nio_port *p) {
  return p->ops->post(p);
}
