// The tracing observer through a real Chain: trace context in (valid, invalid, unsampled),
// traceparent/tracestate rewritten for the upstream, and the exported SERVER span decoded from
// a test OTLP collector: ids, parent link, semconv attributes, error status, middleware spans.
#include <gtest/gtest.h>

#include <cstring>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "observe/tracing/tracing_observer.hpp"
#include "observe/tracing/tracing_options.hpp"
#include "sluice/chain.hpp"
#include "sluice/exchange_driver.hpp"
#include "support/manual_host.hpp"
#include "support/otlp_collector.hpp"

namespace sluice::observe {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;

class Gate final : public Middleware {
 public:
  std::string_view name() const override { return "gate"; }
  Decision pre_handle(Exchange& ex) override {
    if (ex.request().path() == "/closed") return ex.answer_error(503, "circuit_open", "open");
    if (ex.request().path() == "/who") {  // as an authentication middleware would
      ex.context().set_user("alice");
      ex.context().set_tier("vip");
    }
    return Decision::next();
  }
};

// Returns what an upstream would see: the request's trace headers.
class HeaderEcho final : public Handler {
 public:
  std::string_view kind() const override { return "echo"; }
  Decision handle(Exchange& ex) override {
    traceparent = std::string(ex.request().header("traceparent"));
    tracestate = std::string(ex.request().header("tracestate"));
    return ex.answer(200, "text/plain", "ok");
  }
  std::string traceparent, tracestate;
};

struct Fixture {
  explicit Fixture(Sampler sampler = Sampler::parent_based(Sampler::always_on()),
                   bool middleware_spans = false) {
    OtlpConfig config;
    config.endpoint = collector.url();
    config.schedule_delay = 20ms;
    exporter = std::make_shared<OtlpExporter>(
        config, [](const std::string& e) { ADD_FAILURE() << "exporter: " << e; });
    chain = std::make_unique<Chain>(
        "api", std::vector<std::shared_ptr<Observer>>{
                   std::make_shared<TracingObserver>(sampler, exporter, middleware_spans)});
    EXPECT_TRUE(chain->use(std::make_shared<Gate>()).ok());
  }
  Exchange& run(std::string_view path, std::vector<std::pair<std::string, std::string>> headers) {
    auto& ex = host->exchange("GET", path);
    for (auto& [k, v] : headers)
      ex.request().add_header(k, v);
    ex.context().set_client_ip("10.1.2.3");
    ExchangeDriver(ex).set_route(&info);
    auto lease = chain->acquire();
    ExchangeDriver(ex).run(*lease, handler, [] {});
    host->run_all();
    return ex;
  }
  std::vector<json> exported(std::size_t n) {
    EXPECT_TRUE(exporter->flush(5s));
    EXPECT_EQ(exporter->exported_total(), n) << "dropped " << exporter->dropped_total();
    auto s = collector.spans();
    EXPECT_EQ(s.size(), n);
    return s;
  }

  testing::OtlpCollector collector;
  std::shared_ptr<OtlpExporter> exporter;
  std::unique_ptr<Chain> chain;
  RouteInfo info{"api"};
  HeaderEcho handler;
  std::shared_ptr<testing::ManualHost> host = std::make_shared<testing::ManualHost>();
};

const std::string kTrace = "4bf92f3577b34da6a3ce929d0e0e4736";
const std::string kParent = "00f067aa0ba902b7";

TEST(TracingObserver, ContinuesAValidTraceAndExportsTheServerSpan) {
  Fixture f;
  auto& ex = f.run("/users/7", {{"traceparent", "00-" + kTrace + "-" + kParent + "-01"},
                                {"tracestate", "congo=t61rcWkgMzE"},
                                {"tracestate", "rojo=00f067aa0ba902b7"},
                                {"Host", "example.com:8443"},
                                {"User-Agent", "curl/8.0"}});
  const auto& slot = ex.context().trace();
  ASSERT_TRUE(slot.valid);
  auto hex = [](const uint8_t* p, std::size_t n) {
    std::string out(2 * n, '0');
    to_hex(p, n, out.data());
    return out;
  };
  EXPECT_EQ(hex(slot.trace_id.data(), 16), kTrace);
  EXPECT_EQ(hex(slot.parent_span_id.data(), 8), kParent);
  const std::string span_id = hex(slot.span_id.data(), 8);
  EXPECT_NE(span_id, kParent);
  EXPECT_EQ(f.handler.traceparent, "00-" + kTrace + "-" + span_id + "-01");
  EXPECT_EQ(f.handler.tracestate, "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7");

  auto spans = f.exported(1);
  ASSERT_EQ(spans.size(), 1u);
  const json& s = spans[0];
  EXPECT_EQ(s["traceId"], kTrace);
  EXPECT_EQ(s["spanId"], span_id);
  EXPECT_EQ(s["parentSpanId"], kParent);
  EXPECT_EQ(s["kind"], 2);
  EXPECT_EQ(s["name"], "GET api");
  EXPECT_EQ(s["traceState"], "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7");
  EXPECT_EQ(testing::span_attribute(s, "http.request.method")["stringValue"], "GET");
  EXPECT_EQ(testing::span_attribute(s, "url.path")["stringValue"], "/users/7");
  EXPECT_EQ(testing::span_attribute(s, "http.route")["stringValue"], "api");
  EXPECT_EQ(testing::span_attribute(s, "http.response.status_code")["intValue"], "200");
  EXPECT_EQ(testing::span_attribute(s, "server.address")["stringValue"], "example.com");
  EXPECT_EQ(testing::span_attribute(s, "server.port")["intValue"], "8443");
  EXPECT_EQ(testing::span_attribute(s, "client.address")["stringValue"], "10.1.2.3");
  EXPECT_EQ(testing::span_attribute(s, "user_agent.original")["stringValue"], "curl/8.0");
  EXPECT_TRUE(!s.contains("status") || s["status"].value("code", 0) == 0);
}

TEST(TracingObserver, TheAuthenticatedUserAndTierAreSpanAttributes) {
  Fixture f;
  f.run("/who", {});
  f.run("/anonymous", {{"X-User", "mallory"}});
  auto spans = f.exported(2);
  ASSERT_EQ(spans.size(), 2u);
  const json& who =
      spans[0]["attributes"].dump().find("alice") != std::string::npos ? spans[0] : spans[1];
  const json& anonymous = &who == &spans[0] ? spans[1] : spans[0];
  EXPECT_EQ(testing::span_attribute(who, "enduser.id")["stringValue"], "alice");
  EXPECT_EQ(testing::span_attribute(who, "sluice.user_tier")["stringValue"], "vip");
  EXPECT_EQ(anonymous["attributes"].dump().find("enduser.id"), std::string::npos);
  EXPECT_EQ(anonymous["attributes"].dump().find("sluice.user_tier"), std::string::npos);
}

TEST(TracingObserver, InvalidTraceparentStartsANewTraceAndDropsTracestate) {
  Fixture f;
  auto& ex = f.run("/x", {{"traceparent", "00-" + std::string(32, 'A') + "-" + kParent + "-01"},
                          {"tracestate", "congo=t61rcWkgMzE"}});
  EXPECT_EQ(ex.response().status(), 200);
  ASSERT_TRUE(ex.context().trace().valid);
  EXPECT_EQ(ex.context().trace().parent_span_id, (std::array<uint8_t, 8>{}));
  EXPECT_EQ(f.handler.tracestate, "");
  auto tp = parse_traceparent(f.handler.traceparent);
  ASSERT_TRUE(tp);
  EXPECT_TRUE(tp->sampled());
  auto spans = f.exported(1);
  ASSERT_EQ(spans.size(), 1u);
  EXPECT_EQ(spans[0]["traceId"], to_hex(tp->trace_id));
  EXPECT_TRUE(!spans[0].contains("parentSpanId") || spans[0]["parentSpanId"] == "");
}

// traceparent is a single field (Trace Context Level 2 §3.2.2): two fields, even equal ones,
// are invalid, and an invalid traceparent restarts the trace and drops tracestate (§4.1.2).
TEST(TracingObserver, SeveralTraceparentFieldsStartANewTrace) {
  const std::string other = "12345678901234567890123456789012";
  for (const auto& second : {other, kTrace}) {
    Fixture f;
    auto& ex = f.run("/x", {{"traceparent", "00-" + kTrace + "-" + kParent + "-01"},
                            {"TraceParent", "00-" + second + "-" + kParent + "-01"},
                            {"tracestate", "congo=t61rcWkgMzE"}});
    EXPECT_EQ(ex.response().status(), 200);
    EXPECT_EQ(ex.context().trace().parent_span_id, (std::array<uint8_t, 8>{}));
    auto tp = parse_traceparent(f.handler.traceparent);
    ASSERT_TRUE(tp) << f.handler.traceparent;
    EXPECT_NE(to_hex(tp->trace_id), kTrace);
    EXPECT_NE(to_hex(tp->trace_id), other);
    EXPECT_EQ(f.handler.tracestate, "");
    auto spans = f.exported(1);
    ASSERT_EQ(spans.size(), 1u);
    EXPECT_EQ(spans[0]["traceId"], to_hex(tp->trace_id));
    EXPECT_TRUE(!spans[0].contains("parentSpanId") || spans[0]["parentSpanId"] == "");
  }
}

// §3.3: "failure to parse tracestate MUST NOT affect the parsing of traceparent".
TEST(TracingObserver, ADiscardedTracestateStillContinuesTheTrace) {
  std::string many;
  for (int i = 0; i < 33; ++i)
    many += (i ? ",k" : "k") + std::to_string(i) + "=v";
  Fixture f;
  auto& ex =
      f.run("/x", {{"traceparent", "00-" + kTrace + "-" + kParent + "-01"}, {"tracestate", many}});
  auto tp = parse_traceparent(f.handler.traceparent);
  ASSERT_TRUE(tp);
  EXPECT_EQ(to_hex(tp->trace_id), kTrace);
  SpanId continued;
  std::memcpy(continued.b, ex.context().trace().parent_span_id.data(), 8);
  EXPECT_EQ(to_hex(continued), kParent);
  EXPECT_FALSE(ex.request().has_header("tracestate"));
  auto spans = f.exported(1);
  ASSERT_EQ(spans.size(), 1u);
  EXPECT_EQ(spans[0]["parentSpanId"], kParent);
  EXPECT_TRUE(!spans[0].contains("traceState") || spans[0]["traceState"] == "");
}

// §3.3.3 one entry per key, §3.5 a vendor MAY discard duplicates: the header is kept without the
// later duplicate, also when the duplicate comes in a second tracestate field; invalid members
// are dropped one by one (§4.1.2 step 3).
TEST(TracingObserver, TracestateKeepsTheHeaderAndDropsOnlyBadOrRepeatedMembers) {
  const std::string parent = "00-" + kTrace + "-" + kParent + "-01";
  Fixture f;
  f.run("/x", {{"traceparent", parent}, {"tracestate", "foo=1,foo=1"}});
  EXPECT_EQ(f.handler.tracestate, "foo=1");
  f.run("/x", {{"traceparent", parent}, {"tracestate", "foo=1"}, {"tracestate", "foo=2"}});
  EXPECT_EQ(f.handler.tracestate, "foo=1");
  f.run("/x", {{"traceparent", parent}, {"tracestate", "foo@=1,@foo=2,bar=3"}});
  EXPECT_EQ(f.handler.tracestate, "foo@=1,bar=3");
}

// §3.2.2.5.2: the random-trace-id flag is kept as received (set or unset) when the trace is
// continued and set on a trace sluice starts; §3.2.2.5.3: reserved bits go out as zero.
TEST(TracingObserver, RandomTraceIdFlagIsPropagated) {
  Fixture f;
  auto flags_sent = [&](std::vector<std::pair<std::string, std::string>> headers) {
    f.run("/x", std::move(headers));
    return f.handler.traceparent.substr(53);
  };
  EXPECT_EQ(flags_sent({{"traceparent", "00-" + kTrace + "-" + kParent + "-03"}}), "03");
  EXPECT_EQ(flags_sent({{"traceparent", "00-" + kTrace + "-" + kParent + "-01"}}), "01");
  EXPECT_EQ(flags_sent({{"traceparent", "00-" + kTrace + "-" + kParent + "-ff"}}), "03");
  EXPECT_EQ(flags_sent({{"traceparent", "00-" + kTrace + "-" + kParent + "-02"}}), "02");
  EXPECT_EQ(flags_sent({}), "03");
}

TEST(TracingObserver, UnsampledParentIsFollowedAndNothingIsExported) {
  Fixture f;
  f.run("/x", {{"traceparent", "00-" + kTrace + "-" + kParent + "-00"}});
  auto tp = parse_traceparent(f.handler.traceparent);
  ASSERT_TRUE(tp);
  EXPECT_EQ(to_hex(tp->trace_id), kTrace);
  EXPECT_FALSE(tp->sampled());
  f.exported(0);
}

TEST(TracingObserver, EarlyAnswer5xxIsAnErrorSpanWithTheAnsweringMiddleware) {
  Fixture f;
  f.run("/closed", {});
  auto spans = f.exported(1);
  ASSERT_EQ(spans.size(), 1u);
  EXPECT_EQ(spans[0]["status"]["code"], 2);
  EXPECT_EQ(testing::span_attribute(spans[0], "http.response.status_code")["intValue"], "503");
  EXPECT_EQ(testing::span_attribute(spans[0], "error.type")["stringValue"], "503");
  EXPECT_EQ(testing::span_attribute(spans[0], "sluice.answered_by")["stringValue"], "gate");
  EXPECT_EQ(testing::span_attribute(spans[0], "sluice.detail")["stringValue"], "circuit_open");
}

TEST(TracingObserver, RatioZeroRootSamplerSamplesNoRootSpan) {
  Fixture f(Sampler::parent_based(Sampler::trace_id_ratio(0)));
  for (int i = 0; i < 5; ++i)
    f.run("/x", {});
  f.exported(0);
}

TEST(TracingObserver, OptionalChildSpanPerMiddleware) {
  Fixture f(Sampler::always_on(), true);
  f.run("/x", {});
  auto spans = f.exported(2);
  ASSERT_EQ(spans.size(), 2u);
  const json& child = spans[0]["kind"] == 1 ? spans[0] : spans[1];
  const json& server = spans[0]["kind"] == 1 ? spans[1] : spans[0];
  EXPECT_EQ(child["name"], "gate");
  EXPECT_EQ(child["parentSpanId"], server["spanId"]);
  EXPECT_EQ(child["traceId"], server["traceId"]);
}

}  // namespace
}  // namespace sluice::observe
