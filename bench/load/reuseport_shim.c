/* LD_PRELOAD'ed by bench/load/workers_quota.sh (set-up 2ps, SHARED=1): sets SO_REUSEPORT on
 * every TCP socket before bind(), so two one-worker sluice processes can listen on one port
 * (sluice itself refuses a port that is taken: its first bind is a probe without SO_REUSEPORT).
 * The kernel then spreads the clients' connections over the two processes exactly as it spreads
 * them over the acceptors of one 2-worker process: each client talks to both servers, as with
 * `workers: 2`, instead of one client per process as in set-up 2p. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <sys/socket.h>

int bind(int fd, const struct sockaddr* addr, socklen_t len) {
  static int (*real_bind)(int, const struct sockaddr*, socklen_t);
  if (!real_bind)
    real_bind = (int (*)(int, const struct sockaddr*, socklen_t))dlsym(RTLD_NEXT, "bind");
  int type = 0;
  socklen_t tl = sizeof(type);
  if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tl) == 0 && type == SOCK_STREAM) {
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
  }
  return real_bind(fd, addr, len);
}
