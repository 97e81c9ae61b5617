// WriteUpstream — an HTTP upstream for the store-and-forward tests that can be down (its port
// free and closed: connections refused) and come back on the same port, recording every write
// (target, Idempotency-Key, X-Account, X-Sluice-Replay, body, arrival time).
//
//   WriteUpstream up;          // down
//   up.status_for = [](const Received& r) { return r.body == "bad" ? 422 : 200; };
//   up.start();                // listening
//   ASSERT_TRUE(up.wait_for(10, 5s));
#pragma once

#include <arpa/inet.h>
#include <httplib.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace sluice::testing {

struct Received {
  std::string target, key, account, replay, body, traceparent;
  std::chrono::steady_clock::time_point at = std::chrono::steady_clock::now();
};

// An upstream that can go down and come back on the same port, recording every write.
class WriteUpstream {
 public:
  WriteUpstream() {  // a free port, closed: connections to it are refused until start()
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    ::close(fd);
  }
  ~WriteUpstream() { stop(); }
  int port() const { return port_; }
  void start() {
    server_ = std::make_unique<httplib::Server>();
    server_->new_task_queue = [] {
      // More threads than replays in flight: each keep-alive connection holds one.
      return new httplib::ThreadPool(32);
    };
    auto record = [this](const httplib::Request& req, httplib::Response& res) {
      if (delay_ms.load() > 0) std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms));
      Received r{req.target,
                 req.get_header_value("Idempotency-Key"),
                 req.get_header_value("X-Account"),
                 req.get_header_value("X-Sluice-Replay"),
                 req.body,
                 req.get_header_value("traceparent")};
      int status = 200;
      if (status_for) status = status_for(r);
      {
        std::lock_guard lock(mu_);
        if (status < 300) got_.push_back(r);
        all_.push_back(r);
      }
      res.status = status;
      const std::string wait = retry_after_for ? retry_after_for(r) : retry_after;
      if (status >= 500 && !wait.empty()) res.set_header("Retry-After", wait);
      res.set_content(status < 300 ? "stored" : "{\"error\":\"no such account\"}",
                      "application/json");
    };
    server_->Post(".*", record);
    server_->Put(".*", record);
    server_->Delete(".*", record);
    for (int i = 0; i < 200 && !server_->bind_to_port("127.0.0.1", port_); ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    thread_ = std::thread([this] { server_->listen_after_bind(); });
    while (!server_->is_running())
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  void stop() {
    if (!server_) return;
    server_->stop();
    thread_.join();
    server_.reset();
  }
  std::vector<Received> got() {
    std::lock_guard lock(mu_);
    return got_;
  }
  // The distinct Idempotency-Keys of the stored writes (a duplicate counts once).
  std::set<std::string> keys() {
    std::set<std::string> out;
    for (const auto& r : got())
      out.insert(r.key);
    return out;
  }
  std::vector<Received> all() {  // every call, whatever its answer
    std::lock_guard lock(mu_);
    return all_;
  }
  // Waits until `n` writes were stored (true) or the time is up.
  bool wait_for(std::size_t n, std::chrono::milliseconds limit) {
    const auto end = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < end) {
      if (got().size() >= n) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return false;
  }

  std::function<int(const Received&)> status_for;  // set before start()
  std::string retry_after;                         // sent with every answer >= 500 when set
  std::function<std::string(const Received&)> retry_after_for;  // instead, per call (before start)
  std::atomic<int> delay_ms{0};

 private:
  int port_ = 0;
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
  std::mutex mu_;
  std::vector<Received> got_;
  std::vector<Received> all_;
};

}  // namespace sluice::testing
