#include "support/manual_host.hpp"

namespace sluice::testing {

ManualHost::ManualHost()
    : exchange_(std::make_unique<Exchange>(*this, Request(request_), Response(response_))) {}

Exchange& ManualHost::exchange(std::string_view method, std::string_view target) {
  request_ = detail::RequestMessage{};
  request_.method_string({method.data(), method.size()});
  request_.target({target.data(), target.size()});
  request_.version(11);
  response_ = detail::ResponseMessage{};
  response_.version(11);
  exchange_->reset(std::chrono::steady_clock::now(), std::chrono::system_clock::now());
  return *exchange_;
}

void ManualHost::post_after(std::chrono::nanoseconds delay, std::function<void()> fn) {
  timers_.emplace(now_ + delay, std::move(fn));
}

int ManualHost::run_all() {
  int n = 0;
  while (!queue_.empty()) {
    auto fn = std::move(queue_.front());
    queue_.pop_front();
    fn();
    ++n;
  }
  return n;
}

void ManualHost::advance(std::chrono::nanoseconds d) {
  now_ += d;
  while (!timers_.empty() && timers_.begin()->first <= now_) {
    queue_.push_back(std::move(timers_.begin()->second));
    timers_.erase(timers_.begin());
  }
  run_all();
}

}  // namespace sluice::testing
