/*
** udp_echo_c.c: the raw C baseline of the UDP echo benchmark
** (bench/udp_echo.sh): one thread, one blocking socket, a plain
** recvfrom -> sendto loop. No recvmmsg/sendmmsg, no poll: one receive and
** one send system call per datagram, as the servers it is compared with.
**
**   udp_echo_c ip:port        ("127.0.0.1:7000", "[::1]:7000")
**
** Prints "ready" once bound; runs until killed.
*/
#define _GNU_SOURCE
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static unsigned char buf[65536]; /* any datagram fits: never truncated */

int main(int argc, char **argv) {
  const char *addr = argc > 1 ? argv[1] : "127.0.0.1:7000";
  char host[64];
  const char *colon = strrchr(addr, ':'), *h = addr;
  size_t hl;
  struct addrinfo hints, *ai;
  int fd;

  if (!colon) goto bad;
  hl = (size_t)(colon - addr);
  if (hl >= 2 && addr[0] == '[' && addr[hl - 1] == ']') h = addr + 1, hl -= 2;
  if (hl >= sizeof host) goto bad;
  memcpy(host, h, hl);
  host[hl] = '\0';
  memset(&hints, 0, sizeof hints);
  hints.ai_socktype = SOCK_DGRAM;
  hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV | AI_PASSIVE;
  if (getaddrinfo(host, colon + 1, &hints, &ai) != 0) goto bad;
  fd = socket(ai->ai_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0 || bind(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
    perror("udp_echo_c: socket/bind");
    return 1;
  }
  freeaddrinfo(ai);
  printf("ready\n");
  fflush(stdout);
  for (;;) {
    struct sockaddr_storage peer;
    socklen_t plen = sizeof peer;
    ssize_t n =
        recvfrom(fd, buf, sizeof buf, 0, (struct sockaddr *)&peer, &plen);
    if (n < 0) {
      if (errno == EINTR) continue;
      perror("udp_echo_c: recvfrom");
      return 1;
    }
    /* A full send buffer blocks here; a refused or unreachable peer
    ** (ICMP on an earlier datagram) loses this one, as UDP may. */
    if (sendto(fd, buf, (size_t)n, 0, (struct sockaddr *)&peer, plen) < 0 &&
        errno != EINTR && errno != ECONNREFUSED && errno != ENOBUFS &&
        errno != EHOSTUNREACH && errno != ENETUNREACH) {
      perror("udp_echo_c: sendto");
      return 1;
    }
  }
bad:
  fprintf(stderr,
          "udp_echo_c: address must be numeric ip:port or "
          "[v6]:port, not %s\n",
          addr);
  return 2;
}
