// The cpp-httplib adapter: one request runs the whole chain on the httplib connection thread
// that received it, through a BlockingHost that owns the request's exchange.
#include <httplib.h>

#include "adapters/httplib/blocking_host.hpp"
#include "adapters/httplib/convert.hpp"
#include "sluice/adapters/httplib.hpp"
#include "sluice/exchange_driver.hpp"

namespace sluice::httplib_adapter {

namespace {
thread_local Exchange* t_current = nullptr;

// The end of the chain: calls the application's httplib handler.
class HttplibEnd final : public Handler {
 public:
  HttplibEnd(const HttplibHandler& handler, const httplib::Request& original)
      : handler_(handler), original_(original) {}
  std::string_view kind() const override { return "httplib"; }

  Decision handle(Exchange& ex) override {
    httplib::Request request = original_;
    auto& in = ex.request().native();
    detail::flush_extra_fields(in);  // the fields the chain added (core/extra_fields.hpp)
    apply_message(in, request);
    httplib::Response response;
    Exchange* outer = std::exchange(t_current, &ex);
    struct Restore {
      Exchange* previous;
      ~Restore() { t_current = previous; }
    } restore{outer};
    handler_(request, response);
    from_httplib(response, ex.response().native());
    return Decision::respond();
  }

 private:
  const HttplibHandler& handler_;
  const httplib::Request& original_;
};
}  // namespace

Exchange* current_exchange() {
  return t_current;
}

ChainRunner::ChainRunner(std::shared_ptr<Chain> chain, std::string route_name)
    : chain_(std::move(chain)),
      route_(std::make_shared<RouteInfo>(RouteInfo{std::move(route_name)})) {}

HttplibHandler ChainRunner::wrap(HttplibHandler handler) const {
  return [runner = *this, handler = std::move(handler)](const httplib::Request& req,
                                                        httplib::Response& res) {
    HttplibEnd end(handler, req);
    runner.run(req, res, end);
  };
}

void ChainRunner::run(const httplib::Request& req, httplib::Response& res, Handler& handler) const {
  auto host = std::make_shared<BlockingHost>();
  to_message(req, host->request());
  host->response().version(host->request().version());
  ExchangeDriver drive(host->exchange());
  drive.reset(std::chrono::steady_clock::now(), std::chrono::system_clock::now());
  drive.exchange().context().set_client_ip(req.remote_addr);
  drive.exchange().context().set_peer_ip(req.remote_addr);
  drive.set_bytes_in(req.body.size());
  drive.set_route(route_.get());
  // Acquired and released on this thread: snapshot leases are per-thread.
  auto lease = chain_->acquire();
  bool done = false;
  drive.run(*lease, handler, [&done] { done = true; });
  host->run_until(done);
  to_httplib(host->response(), res);
  host->close();
  lease.release();
}

}  // namespace sluice::httplib_adapter
