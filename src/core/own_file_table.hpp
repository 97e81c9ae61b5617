// leave_shared_file_table(): gives a background thread a file table of its own, holding only
// descriptors 0, 1 and 2. Every thread that pthread_create makes shares the process's table
// (CLONE_FILES), and while more than one thread uses a table the kernel takes and drops a
// reference on the file for every socket call of every thread (fdget's slow path, an atomic get
// and put per call). With `workers: 1` that cost the worker ≈ 0.26 µs per proxied request
// (≈ 2 % of CPU), paid only because the access log writer and the OTLP exporter run beside it.
//
//   void Exporter::run() {
//     detail::leave_shared_file_table("OTLP exporter");  // first thing on the thread
//     ...  // then open, use and close only descriptors of its own
//   }
//
// After the call the thread may use only 0, 1, 2 (as they were when it left: a dup2 onto 1 made
// later by another thread is not seen here) and descriptors it opens itself, which no other
// thread sees: it closes them itself (a close() of that number on another thread would close
// another file). It must not act on a descriptor of the process by number either: an Asio
// io_context made on another thread (its epoll and eventfd), a pipe or a log file opened
// elsewhere; nor post to one: asio::post wakes the target's reactor with epoll_ctl on its epoll
// fd and eventfd, by number. The admin listener leaves (gateway/admin/admin_thread.hpp: it makes
// its io_context after, and hands what touches the workers to the main thread). That rules out,
// as they are: the Redis client's thread (workers post commands to its io_context, its replies
// resume requests with a post to the worker's) and the store-and-forward queue's thread (workers
// post to it; the worker appends to the segment files the replayer marks done).
#pragma once

#include <string_view>

namespace sluice::detail {

// Moves the calling thread to a table of its own in one step (close_range(3, ~0U,
// CLOSE_RANGE_UNSHARE)): the process's other descriptors are not in it, so none of the worker's
// sockets is kept open by this thread (a listener the main thread closes stops accepting, an
// upstream connection the worker closes sends its FIN). Also blocks the asynchronous signals on
// this thread: a handler running here would write to the process's descriptors by number (Asio's
// signal_set writes to its pipe), into the wrong table.
//
// True when the thread has its own table. False when it keeps the shared one, which stays
// correct, only slower: the kernel refused (Linux < 5.9, a seccomp filter; logged once per
// process, with `thread` named), or a ThreadSanitizer build (it tracks descriptors by number for
// the whole process, and two tables would use the same numbers for different files).
bool leave_shared_file_table(std::string_view thread);

}  // namespace sluice::detail
