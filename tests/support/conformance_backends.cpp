#include "support/conformance_backends.hpp"
#include "sluice/exchange_driver.hpp"

#include <httplib.h>

#include <stdexcept>
#include <thread>

#include "server/server.hpp"
#include "server/worker_pool.hpp"
#include "sluice/adapters/httplib.hpp"

namespace sluice::testing {

std::string Trail::joined() const {
  std::string out;
  for (const auto& s : steps) {
    if (!out.empty()) out += ' ';
    out += s;
  }
  return out;
}

void add_step(Exchange& ex, std::string step) {
  auto* trail = ex.context().get<Trail>();
  if (trail == nullptr) trail = &ex.context().emplace<Trail>();
  trail->steps.push_back(std::move(step));
}

namespace {

// ---- sluice's own server --------------------------------------------------------------------

class NativeEnd final : public Handler {
 public:
  explicit NativeEnd(const EndBehavior& b) : behavior_(b) {}
  std::string_view kind() const override { return "conformance"; }
  Decision handle(Exchange& ex) override {
    add_step(ex, "handler");
    if (behavior_.throws) throw std::runtime_error("the handler failed");
    const std::string seen(ex.request().header("X-From-Pre"));
    ex.answer(200, "text/plain", "ok");
    ex.response().set_header("X-End-Request-Id", ex.context().request_id());
    ex.response().set_header("X-Client-Ip", ex.context().client_ip());
    ex.response().set_header("X-Seen-From-Pre", seen);
    return Decision::respond();
  }

 private:
  const EndBehavior& behavior_;
};

class ChainDispatcher final : public server::Dispatcher {
  struct State final : server::DispatchState {
    Chain::Lease lease;
    std::function<void()> done;
  };

 public:
  ChainDispatcher(std::shared_ptr<Chain> chain, const EndBehavior& b)
      : chain_(std::move(chain)), end_(b) {}
  std::unique_ptr<server::DispatchState> make_state() override { return std::make_unique<State>(); }
  void dispatch(Exchange& ex, server::DispatchState* state, std::function<void()> done) override {
    auto& st = *static_cast<State*>(state);
    st.done = std::move(done);
    st.lease = chain_->acquire();
    ExchangeDriver(ex).set_route(&route_);
    ExchangeDriver(ex).run(*st.lease, end_, [&st] {
      auto d = std::move(st.done);
      st.done = nullptr;
      d();
      st.lease.release();
    });
  }

 private:
  std::shared_ptr<Chain> chain_;
  NativeEnd end_;
  RouteInfo route_{"conformance"};
};

class NativeBackend final : public Backend {
 public:
  ~NativeBackend() override {
    if (server_) {
      // Like the gateway: close idle connections, wait for them, then stop the workers; the
      // server (its acceptors) goes before the io_contexts it uses.
      server_->begin_drain();
      const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(2);
      while (server_->connections() > 0 && std::chrono::steady_clock::now() < until) {
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
      }
    }
    pool_->stop();
    server_.reset();
    pool_.reset();
  }
  void start(std::shared_ptr<Chain> chain) override {
    server_ = std::make_unique<server::Server>(
        *pool_, server::ServerLimits{}, std::make_shared<ChainDispatcher>(std::move(chain), end),
        "conformance");
    auto error = server_->listen("127.0.0.1", 0);
    if (!error.empty()) throw std::runtime_error(error);
    server_->start();
    pool_->start();
  }
  int port() const override { return server_->port(); }

 private:
  std::unique_ptr<server::Server> server_;
  std::unique_ptr<server::WorkerPool> pool_ =
      std::make_unique<server::WorkerPool>(2, "conformance");
};

// ---- cpp-httplib ----------------------------------------------------------------------------

class HttplibBackend final : public Backend {
 public:
  ~HttplibBackend() override {
    server_.stop();
    if (thread_.joinable()) thread_.join();
  }
  void start(std::shared_ptr<Chain> chain) override {
    httplib_adapter::ChainRunner runner(std::move(chain), "conformance");
    const EndBehavior& b = end;
    server_.Get(".*", runner.wrap([&b](const httplib::Request& req, httplib::Response& res) {
      Exchange& ex = *httplib_adapter::current_exchange();
      add_step(ex, "handler");
      if (b.throws) throw std::runtime_error("the handler failed");
      res.set_content("ok", "text/plain");
      res.set_header("X-End-Request-Id", std::string(ex.context().request_id()));
      res.set_header("X-Client-Ip", std::string(ex.context().client_ip()));
      res.set_header("X-Seen-From-Pre", req.get_header_value("X-From-Pre"));
    }));
    port_ = server_.bind_to_any_port("127.0.0.1");
    if (port_ <= 0) throw std::runtime_error("httplib: cannot bind");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    while (!server_.is_running())
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  int port() const override { return port_; }

 private:
  httplib::Server server_;
  std::thread thread_;
  int port_ = 0;
};

}  // namespace

std::unique_ptr<Backend> make_native_backend() {
  return std::make_unique<NativeBackend>();
}
std::unique_ptr<Backend> make_httplib_backend() {
  return std::make_unique<HttplibBackend>();
}

}  // namespace sluice::testing
