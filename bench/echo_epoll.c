/*
** echo_epoll.c: the raw epoll echo server in C, one thread, edge-triggered:
** the limit the netio epoll backend is compared against.
**   echo_epoll ip:port
*/
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

int main(int argc, char **argv) {
  struct sockaddr_in sa = {.sin_family = AF_INET};
  char buf[65536], host[64] = "127.0.0.1";
  const char *a = argc > 1 ? argv[1] : "127.0.0.1:7000", *c = strrchr(a, ':');
  int one = 1, lfd, ep;
  struct epoll_event ev, evs[512];
  if (!c || (size_t)(c - a) >= sizeof host) return 2;
  memcpy(host, a, (size_t)(c - a));
  host[c - a] = '\0';
  inet_pton(AF_INET, host, &sa.sin_addr);
  sa.sin_port = htons((unsigned short)atoi(c + 1));
  lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (bind(lfd, (struct sockaddr *)&sa, sizeof sa) || listen(lfd, 4096)) {
    perror("listen");
    return 1;
  }
  ep = epoll_create1(0);
  ev.events = EPOLLIN;
  ev.data.fd = lfd;
  epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
  for (;;) {
    int n = epoll_wait(ep, evs, 512, -1);
    for (int i = 0; i < n; i++) {
      int fd = evs[i].data.fd;
      if (fd == lfd) {
        int cfd;
        while ((cfd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
          setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
          ev.events = EPOLLIN | EPOLLET;
          ev.data.fd = cfd;
          epoll_ctl(ep, EPOLL_CTL_ADD, cfd, &ev);
        }
        continue;
      }
      for (;;) {
        ssize_t r = recv(fd, buf, sizeof buf, 0);
        if (r > 0) {
          /* Echo servers in this bench assume the reply fits the socket
          ** buffer (ping-pong); a short write closes the connection. */
          if (send(fd, buf, (size_t)r, MSG_NOSIGNAL) != r) {
            close(fd);
            break;
          }
          continue;
        }
        if (r == 0 || errno != EAGAIN) close(fd);
        break;
      }
    }
  }
}
