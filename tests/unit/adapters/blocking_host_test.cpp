// BlockingHost (the cpp-httplib adapter's per-request host): work posted from another thread
// may be the last thing the request waits for, so the host can end while post() returns.
#include <gtest/gtest.h>

#include <memory>
#include <thread>

#include "adapters/httplib/blocking_host.hpp"

namespace sluice::httplib_adapter {
namespace {

// A hook resumed from another thread: the request's thread runs the posted work, finishes and
// destroys its host at once. post() notified the condition variable after releasing the lock,
// so the notification could reach a destroyed host; ThreadSanitizer reported it (a race between
// pthread_cond_signal and pthread_cond_destroy) in the conformance tests on cpp-httplib. Under
// TSan this test reports that race on its first rounds; under ASan it can show as a
// use-after-free; in a plain build it checks only that every round ends.
TEST(BlockingHost, WorkPostedFromAnotherThreadMayEndTheHostAtOnce) {
  for (int round = 0; round < 2000; ++round) {
    auto host = std::make_shared<BlockingHost>();
    BlockingHost* target = host.get();  // the resumer's view: the host, not this shared_ptr
    bool done = false;
    std::thread resumer([target, &done] { target->post([&done] { done = true; }); });
    host->run_until(done);
    host->close();
    host.reset();  // the request's thread ends the host while post() may still be returning
    resumer.join();
  }
}

TEST(BlockingHost, WorkPostedWithADelayFromAnotherThreadMayEndTheHostAtOnce) {
  for (int round = 0; round < 500; ++round) {
    auto host = std::make_shared<BlockingHost>();
    BlockingHost* target = host.get();
    bool done = false;
    std::thread resumer([target, &done] {
      target->post_after(std::chrono::nanoseconds(0), [&done] { done = true; });
    });
    host->run_until(done);
    host->close();
    host.reset();
    resumer.join();
  }
}

}  // namespace
}  // namespace sluice::httplib_adapter
