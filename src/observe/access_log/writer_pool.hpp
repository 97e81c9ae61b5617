// WriterPool: the process's access-log writers across reloads, and their metrics. A reload with
// the same path and queue limits keeps the same writer; a replaced writer is retired when the
// last config using it is released, and flushed/closed on the control-plane thread at the next
// load or at exit — never on a worker. Counters include retired writers, so they never go back.
//
//   auto& pool = WriterPool::of(services);
//   auto writer = pool.get(options);    // shared; SIGUSR1 hooks call writer->reopen()
#pragma once

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "gateway/services.hpp"
#include "observe/access_log/access_log_observer.hpp"
#include "observe/access_log_writer.hpp"

namespace prometheus {
struct MetricFamily;
}

namespace sluice::observe {

class WriterPool : public std::enable_shared_from_this<WriterPool> {
 public:
  static WriterPool& of(GatewayServices& services);

  WriterPool() = default;
  ~WriterPool();
  WriterPool(const WriterPool&) = delete;
  WriterPool& operator=(const WriterPool&) = delete;

  std::shared_ptr<AccessLogWriter> get(const AccessLogWriter::Options& options);
  void reap();
  std::vector<prometheus::MetricFamily> collect() const;
  RouteLatencies& latencies() { return latencies_; }

 private:
  struct Totals {
    double written = 0, dropped = 0, errors = 0, reopens = 0, queued = 0;
    void add(const AccessLogWriter& w, bool with_queue);
  };
  void retire(AccessLogWriter* writer);

  mutable std::mutex mu_;
  std::vector<std::pair<std::string, std::weak_ptr<AccessLogWriter>>> live_;
  std::vector<std::unique_ptr<AccessLogWriter>> retired_;
  Totals finished_;
  RouteLatencies latencies_{1024};
};

}  // namespace sluice::observe
