// WriterPool: the process's access-log writers across reloads, and their metrics. A reload with
// the same path and queue limits keeps the same writer; a replaced writer is retired when the
// last config using it is released, and flushed/closed on the control-plane thread at the next
// load or at exit — never on a worker. Counters include retired writers, so they never go back.
//
//   auto& pool = WriterPool::of(services);
//   auto writer = pool.get(options);    // shared; SIGUSR1 hooks call writer->reopen()
#pragma once

#include <memory>
#include <vector>

#include "observe/access_log/access_log_observer.hpp"
#include "observe/access_log/access_log_writer.hpp"
#include "observe/retiring_pool.hpp"
#include "sluice/services.hpp"

namespace prometheus {
struct MetricFamily;
}

namespace sluice::observe {

struct AccessLogTotals {
  double written = 0, dropped = 0, errors = 0, reopens = 0, queued = 0;
  void add(const AccessLogWriter& w, bool with_queue);
};

class WriterPool : public RetiringPool<AccessLogWriter, AccessLogTotals> {
 public:
  static WriterPool& of(GatewayServices& services);

  std::shared_ptr<AccessLogWriter> get(const AccessLogWriter::Options& options);
  std::vector<prometheus::MetricFamily> collect() const;
  RouteLatencies& latencies() { return latencies_; }

 private:
  RouteLatencies latencies_{1024};
};

}  // namespace sluice::observe
