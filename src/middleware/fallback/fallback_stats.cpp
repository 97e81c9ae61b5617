#include "middleware/fallback/fallback_stats.hpp"

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

namespace sluice::middleware {
namespace {

prometheus::Family<prometheus::Counter>& fallback_family(prometheus::Registry& registry) {
  return prometheus::BuildCounter()
      .Name("sluice_fallback_total")
      .Help("Fallback attempts by fallback and result")
      .Register(registry);
}

}  // namespace

FallbackStats fallback_stats(prometheus::Registry* registry, const std::string& route,
                             const std::string& fallback) {
  if (registry == nullptr) return {};
  auto& family = fallback_family(*registry);
  FallbackStats s;
  s.served = &family.Add({{"route", route}, {"fallback", fallback}, {"result", "served"}});
  s.failed = &family.Add({{"route", route}, {"fallback", fallback}, {"result", "failed"}});
  s.timed_out = &family.Add({{"route", route}, {"fallback", fallback}, {"result", "timed_out"}});
  s.hedged = &family.Add({{"route", route}, {"fallback", fallback}, {"result", "hedged"}});
  return s;
}

FallbackHedgeStats fallback_hedge_stats(prometheus::Registry* registry, const std::string& route,
                                        const std::string& middleware) {
  if (registry == nullptr) return {};
  auto& family = fallback_family(*registry);
  const std::string label = middleware + ":hedge";
  return {&family.Add({{"route", route}, {"fallback", label}, {"result", "refreshed"}}),
          &family.Add({{"route", route}, {"fallback", label}, {"result", "over_cap"}})};
}

queue::QueueMetrics fallback_queue_stats(prometheus::Registry* registry, const std::string& name) {
  queue::QueueMetrics m;
  if (registry == nullptr) return m;
  const prometheus::Labels q{{"queue", name}};
  auto gauge = [&](const char* metric, const char* help) {
    return &prometheus::BuildGauge().Name(metric).Help(help).Register(*registry).Add(q);
  };
  m.depth = gauge("sluice_queue_depth", "Writes stored and not yet delivered");
  m.oldest_age = gauge("sluice_queue_oldest_age_seconds", "Age of the oldest undelivered write");
  m.bytes = gauge("sluice_queue_bytes", "Bytes of the queue's segment files on disk");
  m.dead_letters = gauge("sluice_queue_dead_letters", "Dead letters kept (requeue or drop them)");
  m.backend_up = gauge("sluice_queue_backend_up", "1 while the queue's storage answers (redis)");
  m.enqueued = &prometheus::BuildCounter()
                    .Name("sluice_queue_enqueued_total")
                    .Help("Writes stored by a queue fallback")
                    .Register(*registry)
                    .Add(q);
  auto& replayed = prometheus::BuildCounter()
                       .Name("sluice_queue_replayed_total")
                       .Help("Replays by result: done, retry, unreachable, dead")
                       .Register(*registry);
  m.replayed_done = &replayed.Add({{"queue", name}, {"result", "done"}});
  m.replayed_retry = &replayed.Add({{"queue", name}, {"result", "retry"}});
  m.replayed_unreachable = &replayed.Add({{"queue", name}, {"result", "unreachable"}});
  m.replayed_dead = &replayed.Add({{"queue", name}, {"result", "dead"}});
  m.drain_seconds = &prometheus::BuildHistogram()
                         .Name("sluice_queue_drain_duration_seconds")
                         .Help("From the first delivered replay to an empty queue")
                         .Register(*registry)
                         .Add(q, prometheus::Histogram::BucketBoundaries{0.1, 0.25, 0.5, 1, 2.5, 5,
                                                                         10, 30, 60, 300});
  return m;
}

queue::RedisQueueMetrics fallback_queue_redis_stats(prometheus::Registry* registry,
                                                    const std::string& name) {
  if (registry == nullptr) return {};
  auto& family = prometheus::BuildCounter()
                     .Name("sluice_queue_redis_down_total")
                     .Help("Writes that met Redis down: kept locally, or rejected (503)")
                     .Register(*registry);
  queue::RedisQueueMetrics m;
  m.down_local = &family.Add({{"queue", name}, {"result", "local"}});
  m.down_rejected = &family.Add({{"queue", name}, {"result", "rejected"}});
  auto& dropped = prometheus::BuildCounter()
                      .Name("sluice_queue_dead_letters_dropped_total")
                      .Help(
                          "Dead letters dropped by the dead-letter stream's retention "
                          "(dead_max_length, dead_max_age_ms), each also logged")
                      .Register(*registry);
  m.dead_dropped_count = &dropped.Add({{"queue", name}, {"bound", "length"}});
  m.dead_dropped_age = &dropped.Add({{"queue", name}, {"bound", "age"}});
  m.spill_moved = &prometheus::BuildCounter()
                       .Name("sluice_queue_spill_moved_total")
                       .Help("Writes kept locally while Redis was down, moved into the stream")
                       .Register(*registry)
                       .Add({{"queue", name}});
  m.partitions_owned = &prometheus::BuildGauge()
                            .Name("sluice_queue_partitions_owned")
                            .Help("Partitions of a Redis queue this instance holds the lease of")
                            .Register(*registry)
                            .Add({{"queue", name}});
  return m;
}

}  // namespace sluice::middleware
