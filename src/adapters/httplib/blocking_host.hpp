// BlockingHost — the ExchangeHost of one request on a thread-per-connection server (cpp-httplib):
// post() and post_after() feed a queue that the request's own thread drains until the exchange
// is done, so every hook, resume and timer of the request runs on that thread (snapshot leases
// are per-thread), and a waiting hook parks only that thread.
//
//   auto host = std::make_shared<BlockingHost>();
//   ExchangeDriver(host->exchange()).run(chain, handler, [&] { done = true; });
//   host->run_until(done);   // then host->close()
#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <mutex>

#include "core/http_message.hpp"
#include "sluice/exchange_driver.hpp"

namespace sluice::httplib_adapter {

class BlockingHost final : public ExchangeHost {
 public:
  BlockingHost();

  detail::RequestMessage& request() { return request_; }
  detail::ResponseMessage& response() { return response_; }
  Exchange& exchange() { return exchange_; }

  // Thread-safe; after close() the function is dropped (the request is gone).
  void post(std::function<void()> fn) override;
  void post_after(std::chrono::nanoseconds delay, std::function<void()> fn) override;

  // Runs posted work and due timers on the calling thread until `done` becomes true (it is set
  // by work that runs here). Sleeps on a condition variable while nothing is due.
  void run_until(const bool& done);
  // Drops pending work and timers (they may hold Resumes that point back here) and refuses
  // new work. Called by the request's thread once the response is final.
  void close();

 private:
  using Clock = std::chrono::steady_clock;

  detail::RequestMessage request_;
  detail::ResponseMessage response_;
  Exchange exchange_;

  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<std::function<void()>> queue_;
  std::multimap<Clock::time_point, std::function<void()>> timers_;
  bool closed_ = false;
};

}  // namespace sluice::httplib_adapter
