#include "upstream/health_checker.hpp"

#include <pthread.h>
#include <spdlog/spdlog.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>

#include "core/own_file_table.hpp"
#include "upstream/cluster.hpp"

namespace sluice::upstream {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;

HealthChecker::HealthChecker(Cluster& cluster)
    : cluster_(cluster),
      fails_(cluster.endpoints().size(), 0),
      passes_(cluster.endpoints().size(), 0),
      thread_([this] { run(); }) {}

HealthChecker::~HealthChecker() {
  {
    std::lock_guard lock(mutex_);
    stop_ = true;
  }
  wake_.notify_all();
  thread_.join();
}

void HealthChecker::run() {
  pthread_setname_np(pthread_self(), "sluice-health");
  // Each check makes its io_context and socket here: no descriptor of the process is needed, and
  // a table of its own spares the workers a file reference per socket call.
  detail::leave_shared_file_table("health check");
  const auto& policy = cluster_.config().health_check;
  std::unique_lock lock(mutex_);
  while (!stop_) {
    lock.unlock();
    for (std::size_t i = 0; i < cluster_.endpoints().size(); ++i) {
      auto& ep = *cluster_.endpoints()[i];
      if (check_once(i)) {
        fails_[i] = 0;
        if (++passes_[i] >= policy.healthy_threshold && !ep.health.check_passing()) {
          ep.health.set_check_passing(true);
          spdlog::info("upstream {}: endpoint {} passes its health check again", cluster_.name(),
                       ep.text);
        }
      } else {
        passes_[i] = 0;
        if (++fails_[i] >= policy.unhealthy_threshold && ep.health.check_passing()) {
          ep.health.set_check_passing(false);
          spdlog::warn("upstream {}: endpoint {} fails its health check ({} in a row)",
                       cluster_.name(), ep.text, fails_[i]);
        }
      }
    }
    lock.lock();
    wake_.wait_for(lock, policy.interval, [this] { return stop_; });
  }
}

bool HealthChecker::check_once(std::size_t endpoint) {
  const auto& policy = cluster_.config().health_check;
  const auto& ep = *cluster_.endpoints()[endpoint];
  asio::io_context io(1);
  beast::tcp_stream stream(io);
  beast::flat_buffer buffer;
  http::request<http::empty_body> req{http::verb::get, policy.path, 11};
  req.set(http::field::host, ep.host_header);
  req.set(http::field::user_agent, "sluice-health-check");
  req.keep_alive(false);
  http::response<http::string_body> res;
  bool passed = false;
  auto exchange = [&](auto& s) {
    http::async_write(s, req, [&](beast::error_code wec, std::size_t) {
      if (wec) return;
      http::async_read(s, buffer, res, [&](beast::error_code rec, std::size_t) {
        passed = !rec && res.result_int() >= 200 && res.result_int() < 300;
      });
    });
  };
  // A TLS cluster is checked over TLS, verified as requests are (a certificate the proxy would
  // refuse fails the check too). The timeout covers connect, handshake and answer.
  std::optional<asio::ssl::stream<beast::tcp_stream&>> tls;
  if (const auto* t = cluster_.tls()) {
    tls.emplace(stream, t->context());
    t->prepare(tls->native_handle(), endpoint);
  }
  stream.expires_after(policy.timeout);
  stream.async_connect(ep.address, [&](beast::error_code ec) {
    if (ec) return;
    if (!tls) return exchange(stream);
    tls->async_handshake(asio::ssl::stream_base::client, [&](beast::error_code hec) {
      if (hec) {
        spdlog::debug("upstream {}: health check of {}: TLS handshake failed: {}", cluster_.name(),
                      ep.text, upstream_tls_failure_detail(tls->native_handle(), hec));
        return;
      }
      exchange(*tls);
    });
  });
  io.run();
  return passed;
}

}  // namespace sluice::upstream
