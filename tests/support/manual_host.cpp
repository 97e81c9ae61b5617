#include "support/manual_host.hpp"

#include <gtest/gtest.h>

#include <mutex>
#include <set>

namespace sluice::testing {

namespace {
struct LiveHosts {
  std::mutex mutex;
  std::set<ManualHost*> hosts;
};
LiveHosts& live_hosts() {
  static LiveHosts* live = new LiveHosts;  // never destroyed: hosts may outlive static teardown
  return *live;
}

bool is_live(ManualHost* host) {
  std::lock_guard lock(live_hosts().mutex);
  return live_hosts().hosts.count(host) != 0;
}

class DrainHostsAtExit : public ::testing::Environment {
 public:
  void TearDown() override {
    std::set<ManualHost*> hosts;
    {
      std::lock_guard lock(live_hosts().mutex);
      hosts = live_hosts().hosts;
    }
    for (ManualHost* h : hosts) {
      if (is_live(h)) h->drop_pending();  // may destroy other hosts of the set
    }
  }
};
[[maybe_unused]] ::testing::Environment* const drain_environment =
    ::testing::AddGlobalTestEnvironment(new DrainHostsAtExit);
}  // namespace

ManualHost::ManualHost()
    : exchange_(std::make_unique<Exchange>(*this, Request(request_), Response(response_))) {
  std::lock_guard lock(live_hosts().mutex);
  live_hosts().hosts.insert(this);
}

ManualHost::~ManualHost() {
  std::lock_guard lock(live_hosts().mutex);
  live_hosts().hosts.erase(this);
}

void ManualHost::drop_pending() {
  // Keep this host alive while its own queue (which may hold the last references) is dropped.
  auto self = weak_from_this().lock();
  while (!queue_.empty() || !timers_.empty()) {
    auto queue = std::move(queue_);
    queue_.clear();
    auto timers = std::move(timers_);
    timers_.clear();
  }  // dropping an uncalled Resume posts once more; the loop drops that too
}

Exchange& ManualHost::exchange(std::string_view method, std::string_view target) {
  request_ = detail::RequestMessage{};
  request_.method_string({method.data(), method.size()});
  request_.target({target.data(), target.size()});
  request_.version(11);
  response_ = detail::ResponseMessage{};
  response_.version(11);
  ExchangeDriver(*exchange_)
      .reset(clock() != nullptr ? clock()->now() : std::chrono::steady_clock::now(),
             std::chrono::system_clock::now());
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
