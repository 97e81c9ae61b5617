/* LD_PRELOAD'ed by bench/load/workers_quota.sh (set-up 2pt): starts one thread that only sleeps,
 * so a one-worker sluice runs as a multi-threaded process (glibc's and libstdc++'s single-thread
 * shortcuts off, the file table shared, so the kernel counts a reference per socket call) while
 * sharing nothing with anything. Two such processes against one 2-worker process separate what
 * being multi-threaded costs from what sharing between the workers would. */
#include <pthread.h>
#include <unistd.h>

static void* idle(void* arg) {
  (void)arg;
  for (;;) pause();
  return 0;
}

__attribute__((constructor)) static void start_idle_thread(void) {
  pthread_t t;
  if (pthread_create(&t, 0, idle, 0) == 0) pthread_detach(t);
}
