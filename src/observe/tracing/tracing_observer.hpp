// TracingObserver: W3C Trace Context in, one OTLP SERVER span per request out.
// on_request_start continues the caller's trace (or starts one when traceparent is absent or
// invalid — never an error), takes the head sampling decision, fills ex.context().trace() and
// rewrites the request's traceparent/tracestate with sluice's span as the parent, so a proxy
// forwards them upstream (with the head decision as their sampled flag). on_request_end takes
// the final decision (tail_sampling.hpp: errors and slow requests are kept whatever the head
// said), counts it, and for a kept request builds the span (OTel HTTP semantic conventions) and
// hands it to the exporter without blocking.
//
//   auto obs = std::make_shared<TracingObserver>(sampler, exporter, false, tail);  // tail: opt.
//   config.observers.push_back(obs);
#pragma once

#include <memory>

#include "observe/replay_record.hpp"
#include "observe/tracing/otlp_exporter.hpp"
#include "observe/tracing/sampler.hpp"
#include "observe/tracing/tail_sampling.hpp"
#include "sluice/exchange.hpp"

namespace sluice::observe {

class TracingObserver final : public Observer, public ReplayRecorder {
 public:
  // Without `tail`, the head decision is final (and counted in a SamplingStats of its own).
  TracingObserver(Sampler sampler, std::shared_ptr<OtlpExporter> exporter,
                  bool per_middleware_spans, std::shared_ptr<TailSampler> tail = nullptr)
      : sampler_(sampler),
        exporter_(std::move(exporter)),
        per_middleware_spans_(per_middleware_spans),
        tail_(tail ? std::move(tail)
                   : std::make_shared<TailSampler>(TailSamplingOptions{},
                                                   std::make_shared<SamplingStats>())) {}

  void on_request_start(Exchange& ex) override;
  void on_request_end(Exchange& ex) override;
  bool wants_middleware_times() const override { return per_middleware_spans_; }
  // A CLIENT span of its own trace, linked to the original request's span; kept when the
  // original request was sampled, or when the replay failed (as tail sampling keeps errors).
  void on_replay(const ReplayRecord& record) override;

  const Sampler& sampler() const { return sampler_; }

 private:
  const Sampler sampler_;
  const std::shared_ptr<OtlpExporter> exporter_;
  const bool per_middleware_spans_;
  const std::shared_ptr<TailSampler> tail_;
};

}  // namespace sluice::observe
