// Per-request cost of the chain runner with N no-op middlewares, and the cost of a chain edit.
#include <benchmark/benchmark.h>

#include "sluice/chain.hpp"
#include "sluice/exchange.hpp"
#include "sluice/exchange_driver.hpp"
#include "support/manual_host.hpp"

namespace {
using namespace sluice;

class Noop final : public Middleware {
 public:
  explicit Noop(std::string n) : name_(std::move(n)) {}
  std::string_view name() const override { return name_; }
  Decision pre_handle(Exchange&) override { return Decision::next(); }
  void post_handle(Exchange&, std::chrono::nanoseconds) override {}

 private:
  std::string name_;
};

class Ok final : public Handler {
 public:
  std::string_view kind() const override { return "ok"; }
  Decision handle(Exchange&) override { return Decision::respond(); }
};

void BM_ChainRun(benchmark::State& state) {
  Chain chain("bench");
  for (int i = 0; i < state.range(0); ++i)
    chain.use(std::make_shared<Noop>("m" + std::to_string(i)));
  auto host = std::make_shared<testing::ManualHost>();
  Exchange& ex = host->exchange("GET", "/");
  Ok handler;
  int done = 0;
  for (auto _ : state) {
    auto lease = chain.acquire();
    ExchangeDriver(ex).run(*lease, handler, [&done] { ++done; });
  }
  benchmark::DoNotOptimize(done);
}
BENCHMARK(BM_ChainRun)->Arg(0)->Arg(1)->Arg(5)->Arg(10);

void BM_ChainEdit(benchmark::State& state) {
  Chain chain("bench");
  for (int i = 0; i < 5; ++i)
    chain.use(std::make_shared<Noop>("m" + std::to_string(i)));
  bool enabled = false;
  for (auto _ : state) {
    if (enabled)
      chain.enable("m2");
    else
      chain.disable("m2");
    enabled = !enabled;
  }
}
BENCHMARK(BM_ChainEdit);
}  // namespace
