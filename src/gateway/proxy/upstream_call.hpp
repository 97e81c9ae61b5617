// UpstreamCall — one proxied request on its worker's io_context: pick an endpoint, take a pooled
// connection or connect, write the request, read the answer, retry when allowed, and answer the
// client (the upstream's response, or a JSON 502/504). Lives in a shared_ptr held by its pending
// I/O; the client going away (Exchange::on_cancel) closes its connection, which is never pooled.
//
//   auto call = std::make_shared<UpstreamCall>(route, ex, ex.defer(),
//   *server::current_io_context()); call->start(); return Decision::wait();
//
// One try:   pick --fault?--> [refused | black hole | status]
//              |--pooled--> write --> read --> answer / retry on status
//              '--connect--^   (connect error or timeout: retry or 502/504)
// A pooled connection that fails before any byte of the answer arrived is retried once on a
// fresh connection (the upstream closed it between our check and the write).
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>
#include <memory>
#include <optional>

#include "gateway/proxy/cluster.hpp"
#include "gateway/proxy/forwarding.hpp"
#include "sluice/exchange.hpp"

namespace sluice::chaos {
class UpstreamFaults;
}

namespace sluice::gateway::proxy {

// What a `proxy` handler routes to; shared by the handler and its calls in flight.
struct ProxyRoute {
  std::shared_ptr<Cluster> cluster;
  ForwardingPolicy forwarding;
  std::chrono::milliseconds timeout{15'000};  // the whole request, all tries; 0: none
  chaos::UpstreamFaults* faults = nullptr;
};

class UpstreamCall : public std::enable_shared_from_this<UpstreamCall> {
 public:
  UpstreamCall(std::shared_ptr<const ProxyRoute> route, Exchange& ex, Resume resume,
               boost::asio::io_context& io);
  ~UpstreamCall();
  void start();

 private:
  using error_code = boost::system::error_code;
  enum class Wait { kNone, kConnect, kTry, kBlackHole };

  void try_once(int avoid);
  void connect_fresh();
  void on_connected(error_code ec);
  void send();
  void on_written(error_code ec);
  void read();
  void on_read(error_code ec);
  void on_timer(error_code ec);
  void on_timeout();
  void on_connect_failure(const char* why);
  void on_io_error(error_code ec);
  void on_response();
  void on_cancel();

  void arm(std::optional<SteadyTime> until, Wait what);
  bool may_retry(bool nothing_sent);
  void retry();
  bool reusable() const;
  void end_try(bool keep_connection);
  void deliver();
  void fail(int status, std::string_view error, std::string message);
  void finish();
  bool idempotent() const;

  std::shared_ptr<const ProxyRoute> route_;
  Cluster& cluster_;
  Exchange* ex_;
  Resume resume_;
  boost::asio::io_context& io_;
  boost::asio::steady_timer timer_;
  UpstreamRequest request_;
  std::string head_;              // request_'s serialized head for the current try
  std::string_view client_host_;  // in the client request, which outlives every try
  std::shared_ptr<UpstreamConnection> conn_;
  std::optional<boost::beast::http::response_parser<boost::beast::http::string_body>> parser_;
  SteadyTime started_;
  std::optional<SteadyTime> deadline_;      // the whole request
  std::optional<SteadyTime> try_deadline_;  // this try
  Wait waiting_ = Wait::kNone;
  std::uint64_t timer_generation_ = 0;
  int endpoint_ = -1;
  int retries_ = 0;
  bool holds_retry_slot_ = false;
  bool reused_ = false;
  bool fresh_retry_done_ = false;
  bool timed_out_ = false;
  bool done_ = false;
};

}  // namespace sluice::gateway::proxy
