// ServedUpstream — serves an httplib::Server the test has configured, on a free loopback port,
// from its own thread; stops and joins it when it goes out of scope. A failed ASSERT that
// leaves the test early then neither leaves a joinable thread behind (std::terminate) nor a
// port open, and the accept loop is running before the constructor returns (httplib's stop()
// before listen_after_bind() starts its loop would leave that loop running forever).
//
//   httplib::Server server;
//   server.Get("/x", [](const httplib::Request&, httplib::Response& res) { res.set_content("ok",
//   "text/plain"); }); ServedUpstream up(server);      // declared after the server: stopped before
//   it is destroyed config += "127.0.0.1:" + std::to_string(up.port());
#pragma once

#include <httplib.h>

#include <chrono>
#include <stdexcept>
#include <thread>

namespace sluice::testing {

class ServedUpstream {
 public:
  explicit ServedUpstream(httplib::Server& server) : server_(server) {
    port_ = server_.bind_to_any_port("127.0.0.1");
    if (port_ <= 0) throw std::runtime_error("ServedUpstream: no loopback port to bind");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    while (!server_.is_running())
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ~ServedUpstream() {
    server_.stop();
    thread_.join();
  }
  ServedUpstream(const ServedUpstream&) = delete;
  ServedUpstream& operator=(const ServedUpstream&) = delete;

  int port() const { return port_; }

 private:
  httplib::Server& server_;
  int port_ = 0;
  std::thread thread_;
};

}  // namespace sluice::testing
