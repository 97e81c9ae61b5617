// ManualHost — an ExchangeHost for unit tests and benchmarks: posted work waits in a queue
// until the test runs it, timers fire when the test advances time. No threads, no sleeping.
//
//   auto host = std::make_shared<ManualHost>();
//   auto& ex = host->exchange("GET", "/x");
//   ExchangeDriver(ex).run(*snapshot, handler, [&] { done = true; });
//   host->run_all();
#pragma once

#include <chrono>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "core/http_message.hpp"
#include "sluice/exchange_driver.hpp"

namespace sluice::testing {

class ManualHost final : public ExchangeHost {
 public:
  ManualHost();
  ~ManualHost() override;
  // Drops queued work and timers without running them. Pending work holds Resumes, and a Resume
  // holds its host: a test that ends with work still queued would otherwise leak the host in a
  // cycle. Every live host is drained like this after the last test (a gtest environment).
  void drop_pending();
  Exchange& exchange(std::string_view method, std::string_view target);
  // With the fields the chain added moved into Beast's (core/extra_fields.hpp), as native() does.
  detail::RequestMessage& request() {
    detail::flush_extra_fields(request_);
    return request_;
  }
  detail::ResponseMessage& response() {
    detail::flush_extra_fields(response_);
    return response_;
  }

  // The clock the exchange's start, its hook times and Exchange::hook_time read (a FakeClock);
  // set before exchange(). Without one, the real steady clock.
  using ExchangeHost::set_clock;

  void post(std::function<void()> fn) override { queue_.push_back(std::move(fn)); }
  void post_after(std::chrono::nanoseconds delay, std::function<void()> fn) override;

  // Runs queued work until the queue is empty. Returns how many functions ran.
  int run_all();
  // Moves time forward and queues the timers that are due, then runs everything.
  void advance(std::chrono::nanoseconds d);
  std::size_t pending_timers() const { return timers_.size(); }

 private:
  detail::RequestMessage request_;
  detail::ResponseMessage response_;
  std::unique_ptr<Exchange> exchange_;
  std::deque<std::function<void()>> queue_;
  std::chrono::nanoseconds now_{0};
  std::multimap<std::chrono::nanoseconds, std::function<void()>> timers_;
};

}  // namespace sluice::testing
