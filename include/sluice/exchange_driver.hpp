// sluice::ExchangeHost and sluice::ExchangeDriver — the host's side of an Exchange: what a
// server, an adapter or a test harness implements (ExchangeHost: where the request's work runs)
// and does (ExchangeDriver: reset, run, cancel, plug in streams). A middleware never needs this
// header; sluice/exchange.hpp is its whole view of a request.
//
//   ExchangeDriver drive(exchange);                  // owned by the host, e.g. a session member
//   drive.reset(steady_clock::now(), system_clock::now());
//   drive.run(*lease, handler, [&] { write(exchange.response()); });
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <utility>

#include "sluice/exchange.hpp"

namespace sluice {

// Where an exchange runs: the server session or adapter that owns it. `post` runs a function
// on the request's own executor (its worker thread); `post_after` does so after a delay.
class ExchangeHost : public std::enable_shared_from_this<ExchangeHost> {
 public:
  virtual ~ExchangeHost() = default;
  virtual void post(std::function<void()> fn) = 0;
  virtual void post_after(std::chrono::nanoseconds delay, std::function<void()> fn) = 0;
  // A hook of the exchange started waiting: a host that can notice the client going away
  // meanwhile starts watching for it now and then calls ExchangeDriver::cancel(). Requests that
  // never wait pay nothing for this.
  virtual void on_wait() {}
  // True when the caller runs on this host's executor right now: a Resume called there may
  // continue the exchange at once instead of posting (one scheduler round trip less).
  virtual bool in_own_thread() const { return false; }
  // The clock the exchange times its hooks with and shares with them (Exchange::hook_time); it
  // must be the clock of the start time given to ExchangeDriver::reset. nullptr, the default,
  // is the real steady clock (system_steady_clock(), read inline); a test host sets a FakeClock.
  const Clock* clock() const { return clock_; }

 protected:
  void set_clock(const Clock* clock) { clock_ = clock; }

 private:
  const Clock* clock_ = nullptr;
};

// Drives one Exchange through its requests. A copyable handle (one pointer); every function is
// an inline call of the Exchange's private counterpart, so driving costs what calling the
// Exchange directly did. Use it on the request's executor only.
class ExchangeDriver {
 public:
  explicit ExchangeDriver(Exchange& exchange) : ex_(&exchange) {}
  Exchange& exchange() const { return *ex_; }

  // Resets the per-request state for the next request; `steady_now` is its start time.
  // `connection_ip`, the connection's address, is the request's client_ip() and peer_ip() until
  // something sets them; it is not copied, so it must stay valid until the next reset() (a
  // session passes its own member).
  void reset(SteadyTime steady_now, std::chrono::system_clock::time_point wall_now,
             std::string_view connection_ip = {}) const {
    ex_->reset(steady_now, wall_now, connection_ip);
  }
  // What observers and middlewares read as ex.route(); set before run(). May be null.
  void set_route(const RouteInfo* route) const { ex_->route_ = route; }
  // The request's size on the wire as far as read (a streamed body adds as it arrives).
  void set_bytes_in(std::size_t n) const { ex_->bytes_in_ = n; }
  // Runs the chain and the handler; `done` (anything an Exchange::DoneFn is made from) is called
  // once, on the host's executor, when the response is final. The snapshot must outlive the
  // exchange's run. Forwarded, so the DoneFn is built once, where Exchange::run takes it.
  template <class Done>
  void run(const ChainSnapshot& chain, Handler& handler, Done&& done) const {
    ex_->run(chain, handler, std::forward<Done>(done));
  }
  // The client went away: cancel what this request waits on, then finish it (status 499).
  void cancel() const { ex_->cancel(); }
  // Between run() and `done`.
  bool running() const { return ex_->running(); }

  // A request body larger than the server buffers, as a stream (Exchange::request_body_stream).
  void set_request_body_stream(std::shared_ptr<BodyStream> stream) const {
    ex_->request_stream_ = std::move(stream);
  }
  // The client's bytes after an upgrade request (Exchange::upgrade_stream).
  void set_upgrade_stream(std::shared_ptr<BodyStream> stream) const {
    ex_->upgrade_stream_ = std::move(stream);
  }
  // The response body stream a handler set, for the host to write; the exchange lets go of it.
  std::shared_ptr<BodyStream> take_response_body_stream() const {
    return std::move(ex_->response_stream_);
  }

 private:
  Exchange* ex_;
};

}  // namespace sluice
