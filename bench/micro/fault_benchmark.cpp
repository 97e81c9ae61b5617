// Cost of the `fault` middleware when no fault applies — the common case, since it stays
// configured in every environment: pre_handle + post_handle per request, in ns.
//   range(0): configured faults (all enabled, none matching the request)
//   range(1): 1 = header-driven faults enabled (the request carries no fault header)
// BM_FaultDisabled: the same faults switched off at run time (the admin API's state).
#include <benchmark/benchmark.h>

#include "middleware/fault/fault_board.hpp"
#include "middleware/fault/fault_middleware.hpp"
#include "support/manual_host.hpp"

namespace {
using namespace sluice;

middleware::FaultMiddlewareConfig config_with(int faults, bool headers) {
  middleware::FaultMiddlewareConfig c;
  c.seed = 1;
  c.headers.enabled = headers;
  for (int i = 0; i < faults; ++i) {
    middleware::fault::FaultSpec f;
    f.name = "f" + std::to_string(i);
    f.kind =
        i % 2 == 0 ? middleware::fault::FaultKind::kDelay : middleware::fault::FaultKind::kAbort;
    f.delay.fixed = std::chrono::milliseconds(100);
    f.match.prefix = "/api/v" + std::to_string(i);  // the request is for /api/users
    f.match.methods = {"POST"};
    c.faults.push_back(f);
  }
  return c;
}

void run(benchmark::State& state, middleware::FaultMiddleware& m) {
  auto host = std::make_shared<testing::ManualHost>();
  Exchange& ex = host->exchange("GET", "/api/users?page=2");
  ex.request().set_header("User-Agent", "bench");
  ex.request().set_header("Accept", "*/*");
  for (auto _ : state) {
    benchmark::DoNotOptimize(m.pre_handle(ex));
    m.post_handle(ex, std::chrono::nanoseconds(0));
  }
}

void BM_FaultNoMatch(benchmark::State& state) {
  middleware::fault::FaultBoard board(nullptr, nullptr);
  middleware::FaultMiddleware m(
      "fault", config_with(static_cast<int>(state.range(0)), state.range(1) != 0), board);
  run(state, m);
}
BENCHMARK(BM_FaultNoMatch)->Args({1, 0})->Args({4, 0})->Args({16, 0})->Args({4, 1});

void BM_FaultDisabled(benchmark::State& state) {
  middleware::fault::FaultBoard board(nullptr, nullptr);
  auto c = config_with(4, false);
  for (auto& f : c.faults)
    f.match = {};  // would match everything...
  middleware::FaultMiddleware m("fault", c, board);
  for (const auto& f : c.faults)
    board.set_enabled(f.name, false, "bench");  // ...but is off
  run(state, m);
}
BENCHMARK(BM_FaultDisabled);
}  // namespace
