/* LD_PRELOAD'ed by bench/load/allocs_proxy.sh: counts heap calls (malloc, calloc, realloc, the
 * aligned ones, free) and the bytes asked for, per thread, into a file another process reads
 * while the server runs (ALLOC_COUNT_FILE, suffixed with the pid). Counts, not times: the figure
 * per request is (counts after a loaded interval - counts after an idle one of the same length)
 * / requests, whatever else the machine does. operator new/delete reach malloc/free through
 * libstdc++, so they are counted too. The real allocator is glibc's own __libc_* entry points
 * (no dlsym, which allocates itself).
 * The file: kSlots records of struct slot (below), one per thread in the order threads first
 * allocated; a reader (bench/load/alloc_read.py) prints each thread's name from /proc. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

extern void* __libc_malloc(size_t);
extern void* __libc_calloc(size_t, size_t);
extern void* __libc_realloc(void*, size_t);
extern void* __libc_memalign(size_t, size_t);
extern void __libc_free(void*);

enum { kSlots = 64 };
struct slot {            /* 64 bytes: one line per thread, no sharing between threads */
  uint64_t tid;          /* 0 = free slot */
  uint64_t allocs;       /* malloc + calloc + aligned + realloc(NULL, n) */
  uint64_t reallocs;     /* realloc of a live block */
  uint64_t frees;        /* free of a non-null pointer (realloc(p, 0) too) */
  uint64_t bytes;        /* bytes asked for by allocs and reallocs */
  uint64_t small;        /* allocs of <= 1024 bytes */
  uint64_t pad[2];
};
static struct slot fallback[kSlots];
static struct slot* slots = fallback;
static __thread struct slot* mine __attribute__((tls_model("initial-exec")));

static struct slot* self(void) {
  if (mine) return mine;
  uint64_t tid = (uint64_t)syscall(SYS_gettid);
  for (int i = 0; i < kSlots; ++i) {
    uint64_t expected = 0;
    if (__atomic_compare_exchange_n(&slots[i].tid, &expected, tid, 0, __ATOMIC_RELAXED,
                                    __ATOMIC_RELAXED))
      return mine = &slots[i];
  }
  return mine = &slots[kSlots - 1]; /* more threads than slots: the last one takes the rest */
}

static void count_alloc(size_t n) {
  struct slot* s = self();
  __atomic_fetch_add(&s->allocs, 1, __ATOMIC_RELAXED);
  __atomic_fetch_add(&s->bytes, n, __ATOMIC_RELAXED);
  if (n <= 1024) __atomic_fetch_add(&s->small, 1, __ATOMIC_RELAXED);
}

__attribute__((constructor)) static void open_counts(void) {
  const char* base = getenv("ALLOC_COUNT_FILE");
  if (!base) return;
  char path[512];
  snprintf(path, sizeof path, "%s.%d", base, (int)getpid());
  int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
  if (fd < 0 || ftruncate(fd, sizeof fallback) != 0) return;
  void* map = mmap(0, sizeof fallback, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  close(fd);
  if (map == MAP_FAILED) return;
  /* Start-up is single-threaded: the counts so far move over, then every thread uses the file. */
  memcpy(map, fallback, sizeof fallback);
  slots = (struct slot*)map;
  mine = 0;
}

void* malloc(size_t n) {
  count_alloc(n);
  return __libc_malloc(n);
}
void* calloc(size_t a, size_t b) {
  count_alloc(a * b);
  return __libc_calloc(a, b);
}
void* realloc(void* p, size_t n) {
  if (!p) {
    count_alloc(n);
  } else if (n == 0) {
    __atomic_fetch_add(&self()->frees, 1, __ATOMIC_RELAXED);
  } else {
    struct slot* s = self();
    __atomic_fetch_add(&s->reallocs, 1, __ATOMIC_RELAXED);
    __atomic_fetch_add(&s->bytes, n, __ATOMIC_RELAXED);
  }
  return __libc_realloc(p, n);
}
void free(void* p) {
  if (p) __atomic_fetch_add(&self()->frees, 1, __ATOMIC_RELAXED);
  __libc_free(p);
}
void* memalign(size_t a, size_t n) {
  count_alloc(n);
  return __libc_memalign(a, n);
}
void* aligned_alloc(size_t a, size_t n) {
  count_alloc(n);
  return __libc_memalign(a, n);
}
int posix_memalign(void** out, size_t a, size_t n) {
  count_alloc(n);
  void* p = __libc_memalign(a, n);
  if (!p) return 12; /* ENOMEM */
  *out = p;
  return 0;
}
