/*
** echo_uring.c: the raw liburing echo server in C, one thread -- the limit
** netio's uring backend is measured against.
**   echo_uring ip:port      (serves until killed)
**
** Multishot accept; a provided-buffer ring with one multishot recv per
** socket; each received buffer is sent back as it is (no copy) and returns
** to the ring when its send completes. TCP_NODELAY on every connection.
** SINGLE_ISSUER | DEFER_TASKRUN, one io_uring_enter per loop turn.
**
** user_data: op in the low byte; for sends the buffer id above it (a buffer
** is in at most one send, so per-buffer arrays hold the send's state); for
** recvs the socket.
*/
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>
#include <liburing.h>

#define BUF_SIZE (64 * 1024) /* as netio's ring: a 16 KiB message fits */
#define NBUFS 4096           /* power of two; address space, touched as used */
#define BGID 0

enum { OP_ACCEPT = 1, OP_RECV = 2, OP_SEND = 3, OP_CLOSE = 4 };

static struct io_uring ring;
static struct io_uring_buf_ring *br;
static char *bufs;
static int lfd;
/* The send of buffer bid: its socket, length and bytes already sent. */
static int send_fd[NBUFS];
static unsigned send_len[NBUFS], send_off[NBUFS];

static struct io_uring_sqe *get_sqe(void) {
  struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);
  if (sqe == NULL) {
    io_uring_submit(&ring);
    sqe = io_uring_get_sqe(&ring);
  }
  if (sqe == NULL) {
    fprintf(stderr, "echo_uring: no SQE\n");
    exit(1);
  }
  return sqe;
}

static void arm_accept(void) {
  struct io_uring_sqe *sqe = get_sqe();
  io_uring_prep_multishot_accept(sqe, lfd, NULL, NULL, 0);
  io_uring_sqe_set_data64(sqe, OP_ACCEPT);
}

static void arm_recv(int fd) {
  struct io_uring_sqe *sqe = get_sqe();
  io_uring_prep_recv_multishot(sqe, fd, NULL, 0, 0);
  sqe->flags |= IOSQE_BUFFER_SELECT;
  sqe->buf_group = BGID;
  io_uring_sqe_set_data64(sqe, OP_RECV | (uint64_t)fd << 8);
}

static void arm_send(unsigned bid) {
  struct io_uring_sqe *sqe = get_sqe();
  io_uring_prep_send(sqe, send_fd[bid],
                     bufs + (size_t)bid * BUF_SIZE + send_off[bid],
                     send_len[bid] - send_off[bid], MSG_NOSIGNAL);
  io_uring_sqe_set_data64(sqe, OP_SEND | (uint64_t)bid << 8);
}

static void close_fd(int fd) {
  struct io_uring_sqe *sqe = get_sqe();
  io_uring_prep_close(sqe, fd);
  io_uring_sqe_set_data64(sqe, OP_CLOSE);
}

static void give_back(unsigned bid) {
  io_uring_buf_ring_add(br, bufs + (size_t)bid * BUF_SIZE, BUF_SIZE,
                        (unsigned short)bid, io_uring_buf_ring_mask(NBUFS), 0);
  io_uring_buf_ring_advance(br, 1);
}

static void on_cqe(uint64_t ud, int res, unsigned flags) {
  unsigned bid;
  int fd, one = 1;
  switch (ud & 0xff) {
  case OP_ACCEPT:
    if (res >= 0) {
      setsockopt(res, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      arm_recv(res);
    }
    if (!(flags & IORING_CQE_F_MORE)) arm_accept();
    break;
  case OP_RECV:
    fd = (int)(ud >> 8);
    if (res > 0) {
      bid = flags >> IORING_CQE_BUFFER_SHIFT;
      send_fd[bid] = fd;
      send_len[bid] = (unsigned)res;
      send_off[bid] = 0;
      arm_send(bid);
      if (!(flags & IORING_CQE_F_MORE)) arm_recv(fd);
    } else if (res == -ENOBUFS) {
      if (!(flags & IORING_CQE_F_MORE)) arm_recv(fd);
    } else if (!(flags & IORING_CQE_F_MORE)) {
      close_fd(fd); /* EOF or error: the multishot recv has ended */
    }
    break;
  case OP_SEND:
    bid = (unsigned)(ud >> 8);
    if (res > 0 && send_off[bid] + (unsigned)res < send_len[bid]) {
      send_off[bid] += (unsigned)res; /* short send: the rest */
      arm_send(bid);
    } else {
      give_back(bid); /* sent, or failed: the recv side sees the error */
    }
    break;
  default:
    break;
  }
}

static int setup_buffers(void) {
  struct io_uring_buf_reg reg;
  size_t brsize = NBUFS * sizeof(struct io_uring_buf);
  br = mmap(NULL, brsize, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
            -1, 0);
  bufs = mmap(NULL, (size_t)NBUFS * BUF_SIZE, PROT_READ | PROT_WRITE,
              MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (br == MAP_FAILED || bufs == MAP_FAILED) return -ENOMEM;
  memset(&reg, 0, sizeof reg);
  reg.ring_addr = (uint64_t)(uintptr_t)br;
  reg.ring_entries = NBUFS;
  reg.bgid = BGID;
  int r = io_uring_register_buf_ring(&ring, &reg, 0);
  if (r != 0) return r;
  io_uring_buf_ring_init(br);
  for (unsigned i = 0; i < NBUFS; i++)
    io_uring_buf_ring_add(br, bufs + (size_t)i * BUF_SIZE, BUF_SIZE,
                          (unsigned short)i, io_uring_buf_ring_mask(NBUFS),
                          (int)i);
  io_uring_buf_ring_advance(br, NBUFS);
  return 0;
}

int main(int argc, char **argv) {
  struct sockaddr_in sa = {.sin_family = AF_INET};
  struct io_uring_params prm;
  char host[64];
  const char *a = argc > 1 ? argv[1] : "127.0.0.1:7000", *c = strrchr(a, ':');
  int one = 1, r;
  if (!c || (size_t)(c - a) >= sizeof host) {
    fprintf(stderr, "usage: echo_uring ip:port\n");
    return 2;
  }
  memcpy(host, a, (size_t)(c - a));
  host[c - a] = '\0';
  if (inet_pton(AF_INET, host, &sa.sin_addr) != 1) {
    fprintf(stderr, "echo_uring: bad address %s\n", a);
    return 2;
  }
  sa.sin_port = htons((unsigned short)atoi(c + 1));
  lfd = socket(AF_INET, SOCK_STREAM, 0);
  setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (bind(lfd, (struct sockaddr *)&sa, sizeof sa) || listen(lfd, 4096)) {
    perror("echo_uring: listen");
    return 1;
  }
  memset(&prm, 0, sizeof prm);
  prm.flags = IORING_SETUP_SUBMIT_ALL | IORING_SETUP_SINGLE_ISSUER |
              IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_CQSIZE;
  prm.cq_entries = 16384;
  if ((r = io_uring_queue_init_params(4096, &ring, &prm)) < 0) {
    fprintf(stderr, "echo_uring: io_uring setup: %s\n", strerror(-r));
    return 1;
  }
  io_uring_register_ring_fd(&ring);
  if ((r = setup_buffers()) < 0) {
    fprintf(stderr, "echo_uring: buffer ring: %s\n", strerror(-r));
    return 1;
  }
  arm_accept();
  for (;;) {
    struct io_uring_cqe *cqe;
    unsigned head, n = 0;
    r = io_uring_submit_and_wait(&ring, 1);
    if (r < 0 && r != -EINTR && r != -ETIME && r != -EBUSY) {
      fprintf(stderr, "echo_uring: wait: %s\n", strerror(-r));
      return 1;
    }
    io_uring_for_each_cqe(&ring, head, cqe) {
      on_cqe(cqe->user_data, cqe->res, cqe->flags);
      n++;
    }
    io_uring_cq_advance(&ring, n);
  }
}
