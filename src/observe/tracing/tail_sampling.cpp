#include "observe/tracing/tail_sampling.hpp"

#include <prometheus/metric_family.h>

#include <algorithm>
#include <charconv>
#include <optional>

#include "observe/metrics/metrics_registry.hpp"

namespace sluice::observe {

namespace {

// "5xx" (a class), "429" (one status), "500-504" (a range); nullopt for anything else.
std::optional<StatusRange> parse_status(std::string_view s) {
  auto number = [](std::string_view t) -> std::optional<int> {
    int v = 0;
    const auto [p, ec] = std::from_chars(t.data(), t.data() + t.size(), v);
    if (ec != std::errc() || p != t.data() + t.size() || v < 100 || v > 599) return std::nullopt;
    return v;
  };
  if (s.size() == 3 && s[0] >= '1' && s[0] <= '5' && (s[1] == 'x' || s[1] == 'X') &&
      (s[2] == 'x' || s[2] == 'X')) {
    const int lo = (s[0] - '0') * 100;
    return StatusRange{lo, lo + 99};
  }
  if (const auto dash = s.find('-'); dash != std::string_view::npos) {
    auto lo = number(s.substr(0, dash)), hi = number(s.substr(dash + 1));
    if (!lo || !hi || *lo > *hi) return std::nullopt;
    return StatusRange{*lo, *hi};
  }
  if (auto v = number(s)) return StatusRange{*v, *v};
  return std::nullopt;
}

prometheus::MetricFamily counters(const SamplingStats& stats) {
  prometheus::MetricFamily f{"sluice_traces_sampled_total",
                             "Requests by tracing decision: kept (error, slow, parent, ratio) or "
                             "not (dropped; overflow: beyond tail_sampling.max_pending, head "
                             "decision only).",
                             prometheus::MetricType::Counter,
                             {}};
  for (int i = 0; i < kSampleReasons; ++i) {
    prometheus::ClientMetric m;
    m.label = {{"reason", reason_label(static_cast<SampleReason>(i))}};
    m.counter.value = static_cast<double>(stats.total(static_cast<SampleReason>(i)));
    f.metric.push_back(std::move(m));
  }
  return f;
}

}  // namespace

const char* reason_label(SampleReason r) {
  switch (r) {
    case SampleReason::kError:
      return "error";
    case SampleReason::kSlow:
      return "slow";
    case SampleReason::kParent:
      return "parent";
    case SampleReason::kRatio:
      return "ratio";
    case SampleReason::kDropped:
      return "dropped";
    case SampleReason::kOverflow:
      return "overflow";
  }
  return "dropped";
}

TailSamplingOptions read_tail_sampling(const Settings& parent) {
  TailSamplingOptions o;
  if (!parent.has("tail_sampling")) return o;
  const Settings s = parent.child("tail_sampling");
  o.enabled = true;
  bool bad = false;
  if (s.has("errors")) {
    o.errors.clear();
    for (const auto& text : s.strings("errors")) {
      if (auto r = parse_status(text)) {
        o.errors.push_back(*r);
        continue;
      }
      bad = true;
      s.error("errors", "\"" + text +
                            "\" is not a status: expected a class (5xx), a code (429) or a "
                            "range (500-504) between 100 and 599");
    }
  }
  if (s.has("slow_ms")) {
    o.slow = s.millis("slow_ms", std::chrono::milliseconds(0));
    if (o.slow.count() <= 0)
      s.error("slow_ms", "must be greater than 0 (leave it out: no slow rule)");
  }
  o.max_pending = s.integer("max_pending", o.max_pending, 1, int64_t{1} << 30);
  if (!bad && o.errors.empty() && o.slow.count() == 0) {
    s.error("",
            "keeps nothing beyond the head sampler: set errors or slow_ms (or remove "
            "tail_sampling)");
  }
  return o;
}

std::vector<prometheus::MetricFamily> SamplingStats::collect() const {
  std::vector<prometheus::MetricFamily> out;
  out.push_back(counters(*this));
  out.push_back(gauge_family("sluice_traces_pending",
                             "Requests in flight whose tracing decision waits for their end.",
                             static_cast<double>(pending_now())));
  return out;
}

bool TailSampler::admit() {
  if (!options_.enabled) return false;
  auto& pending = stats_->pending();
  if (pending.fetch_add(1, std::memory_order_relaxed) >= options_.max_pending) {
    pending.fetch_sub(1, std::memory_order_relaxed);
    return false;
  }
  return true;
}

SampleReason TailSampler::decide(bool deferred, bool head_sampled, bool from_parent, int status,
                                 std::chrono::nanoseconds elapsed) {
  SampleReason r;
  if (deferred) {
    stats_->pending().fetch_sub(1, std::memory_order_relaxed);
  }
  const auto head = [&] {
    if (head_sampled) return from_parent ? SampleReason::kParent : SampleReason::kRatio;
    return deferred || !options_.enabled ? SampleReason::kDropped : SampleReason::kOverflow;
  };
  if (!deferred) {
    r = head();
  } else if (std::any_of(options_.errors.begin(), options_.errors.end(),
                         [&](const StatusRange& e) { return e.contains(status); })) {
    r = SampleReason::kError;
  } else if (options_.slow.count() > 0 && elapsed >= options_.slow) {
    r = SampleReason::kSlow;
  } else {
    r = head();
  }
  stats_->count(r);
  return r;
}

std::string TailSampler::description() const {
  if (!options_.enabled) return "none";
  std::string out = "tail{errors:[";
  for (std::size_t i = 0; i < options_.errors.size(); ++i) {
    const auto& e = options_.errors[i];
    if (i) out += ',';
    out += std::to_string(e.lo);
    if (e.hi != e.lo) out += "-" + std::to_string(e.hi);
  }
  out += "]";
  if (options_.slow.count() > 0) {
    out += ",slow:" +
           std::to_string(
               std::chrono::duration_cast<std::chrono::milliseconds>(options_.slow).count()) +
           "ms";
  }
  out += ",max_pending:" + std::to_string(options_.max_pending) + "}";
  return out;
}

}  // namespace sluice::observe
