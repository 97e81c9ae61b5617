// Tail sampling: whether a request's spans are kept is decided when the request ends, from its
// outcome — every error, every request slower than a threshold — and, for the rest, from the
// head decision taken at its start (the incoming traceparent's sampled flag, or the ratio).
//
//   tracing:
//     sampler: parentbased_traceidratio
//     ratio: 0.01                  # the head ratio: 1 % of the ordinary requests
//     tail_sampling:
//       errors: [5xx, 429]         # statuses always kept (default [5xx])
//       slow_ms: 800               # requests at least this slow are always kept
//       max_pending: 10000         # deferred decisions in flight; beyond: head decision only
//
//   TailSampler t(options, stats);
//   bool deferred = t.admit();                                 // at the start
//   SampleReason why = t.decide(deferred, head_sampled, from_parent, status, elapsed);
//   bool keep = kept(why);
//
// Order of the rules: error, slow, then the head decision (parent or ratio). A request admitted
// beyond max_pending gets no tail rule: its head decision alone ("overflow" when that drops it).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "observe/metrics/sharded.hpp"
#include "sluice/settings.hpp"

namespace prometheus {
struct MetricFamily;
}

namespace sluice::observe {

// The label values of sluice_traces_sampled_total{reason}.
enum class SampleReason : uint8_t { kError, kSlow, kParent, kRatio, kDropped, kOverflow };
inline constexpr int kSampleReasons = 6;
const char* reason_label(SampleReason r);
inline bool kept(SampleReason r) {
  return r != SampleReason::kDropped && r != SampleReason::kOverflow;
}

struct StatusRange {
  int lo = 500, hi = 599;
  bool contains(int status) const { return status >= lo && status <= hi; }
};

struct TailSamplingOptions {
  bool enabled = false;
  std::vector<StatusRange> errors{{500, 599}};
  std::chrono::nanoseconds slow{0};  // 0: no slow rule
  int64_t max_pending = 10000;
};

// Reads `tail_sampling:` (absent: disabled). Errors go through `s`, with the key's position.
TailSamplingOptions read_tail_sampling(const Settings& s);

// Process-wide counters (they survive reloads: a config's sampler adds to the same totals) and
// the number of deferred decisions in flight, shared by every config's sampler.
class SamplingStats {
 public:
  // Every request counts one, on its worker: per-worker shards (metrics/sharded.hpp), so no
  // worker writes a line another worker writes; a read sums them.
  void count(SampleReason r) { counts_[static_cast<int>(r)].add(); }
  uint64_t total(SampleReason r) const { return counts_[static_cast<int>(r)].value(); }
  std::atomic<int64_t>& pending() { return pending_; }
  int64_t pending_now() const { return pending_.load(std::memory_order_relaxed); }
  std::vector<prometheus::MetricFamily> collect() const;

 private:
  ShardedCounter counts_[kSampleReasons];
  std::atomic<int64_t> pending_{0};
};

class TailSampler {
 public:
  TailSampler(TailSamplingOptions options, std::shared_ptr<SamplingStats> stats)
      : options_(std::move(options)), stats_(std::move(stats)) {}

  bool enabled() const { return options_.enabled; }
  // Reserves a pending decision; false when max_pending are already in flight (or disabled).
  bool admit();
  // Takes the decision, counts it, and releases the reservation when `deferred`.
  SampleReason decide(bool deferred, bool head_sampled, bool from_parent, int status,
                      std::chrono::nanoseconds elapsed);
  const TailSamplingOptions& options() const { return options_; }
  // e.g. "tail{errors:[5xx,429],slow:800ms,max_pending:10000}", for the start-up log line.
  std::string description() const;

 private:
  const TailSamplingOptions options_;
  const std::shared_ptr<SamplingStats> stats_;
};

}  // namespace sluice::observe
