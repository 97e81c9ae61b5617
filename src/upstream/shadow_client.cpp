#include "upstream/shadow_client.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <memory>
#include <optional>

#include "core/http_message.hpp"
#include "sluice/http.hpp"
#include "upstream/cluster.hpp"
#include "upstream/forwarding.hpp"
#include "upstream/tls/upstream_tls.hpp"

namespace sluice::upstream {
namespace {

namespace asio = boost::asio;
namespace http = boost::beast::http;
using tcp = asio::ip::tcp;

// One call's state; every handler runs on the io_context's thread.
struct Call : std::enable_shared_from_this<Call> {
  Call(asio::io_context& io, ShadowEndpoint to, std::function<void(ShadowResult)> done)
      : io(io), to(std::move(to)), resolver(io), timer(io), done(std::move(done)) {}

  void finish(ShadowResult r) {
    if (!done) return;
    auto d = std::move(done);
    done = nullptr;
    timer.cancel();
    resolver.cancel();
    if (conn) {  // not given back to the pool: never reused
      boost::system::error_code ignored;
      conn->socket.close(ignored);
    }
    d(std::move(r));
  }
  // `endpoint_fault`: a connect or I/O error, counted by the endpoint's passive health (a
  // timeout or a cancelled call is not).
  void fail(std::string why, bool endpoint_fault = true) {
    if (to.cluster && endpoint_fault && !timed_out && done) {
      to.cluster->record_failure(static_cast<std::size_t>(to.endpoint), to.cluster->clock().now());
    }
    ShadowResult r;
    r.timed_out = timed_out;
    r.error = timed_out ? "timed out" : std::move(why);
    finish(std::move(r));
  }

  void start(std::chrono::milliseconds timeout) {
    auto self = shared_from_this();
    timer.expires_after(timeout);
    timer.async_wait([self](boost::system::error_code ec) {
      if (ec) return;
      self->timed_out = true;
      self->fail("timed out", false);
    });
    if (to.cluster) {
      if (auto* pool = to.cluster->pool()) {
        conn = pool->take(static_cast<std::size_t>(to.endpoint), to.cluster->clock().now());
        if (conn) {
          reused = true;
          return write();
        }
      }
      return connect({to.cluster->endpoints()[static_cast<std::size_t>(to.endpoint)]->address});
    }
    resolver.async_resolve(to.host, to.port,
                           [self](boost::system::error_code ec, tcp::resolver::results_type rs) {
                             if (ec) return self->fail("resolve: " + ec.message());
                             self->connect(std::vector<tcp::endpoint>(rs.begin(), rs.end()));
                           });
  }
  void connect(const std::vector<tcp::endpoint>& addresses) {
    auto self = shared_from_this();
    reused = false;
    conn = std::make_shared<UpstreamConnection>(
        io, static_cast<std::size_t>(to.endpoint < 0 ? 0 : to.endpoint));
    asio::async_connect(conn->socket, addresses,
                        [self](boost::system::error_code ec, const tcp::endpoint&) {
                          if (ec) return self->fail("connect: " + ec.message());
                          self->handshake();
                        });
  }
  // A cluster with `tls:` is spoken to over TLS, as the proxy does (verification, SNI, session
  // resumption per endpoint); a fixed `endpoint:` is plain HTTP.
  void handshake() {
    if (!to.cluster || to.cluster->tls() == nullptr) return write();
    to.cluster->tls_handshake(*conn, [self = shared_from_this()](boost::system::error_code ec) {
      if (!self->done) return;
      if (auto failure = self->to.cluster->tls_handshake_done(*self->conn, ec))
        return self->fail("TLS handshake: " + failure->detail);
      self->write();
    });
  }
  // A pooled connection that the upstream closed meanwhile fails before any byte: once, fresh.
  void on_error(const char* what, boost::system::error_code ec) {
    if (reused && !parser->got_some() && done) {
      boost::system::error_code ignored;
      conn->socket.close(ignored);
      parser.emplace();
      return connect({to.cluster->endpoints()[static_cast<std::size_t>(to.endpoint)]->address});
    }
    fail(std::string(what) + ec.message());
  }
  void write() {
    if (conn->tls)
      exchange(*conn->tls);
    else
      exchange(conn->socket);
  }
  template <class Stream>
  void exchange(Stream& stream) {
    auto self = shared_from_this();
    http::async_write(stream, request, [self, &stream](boost::system::error_code ec, std::size_t) {
      if (!self->done) return;
      if (ec) return self->on_error("write: ", ec);
      self->parser->body_limit(8 * 1024 * 1024);
      http::async_read(stream, self->conn->buffer, *self->parser,
                       [self](boost::system::error_code ec2, std::size_t) {
                         if (!self->done) return;
                         if (ec2) return self->on_error("read: ", ec2);
                         self->answered();
                       });
    });
  }
  void answered() {
    auto& msg = parser->get();
    ShadowResult r;
    r.ok = true;
    r.status = static_cast<int>(msg.result_int());
    if (to.cluster) {
      const auto now = to.cluster->clock().now();
      const auto endpoint = static_cast<std::size_t>(to.endpoint);
      if (r.status >= 500)
        to.cluster->record_failure(endpoint, now);
      else
        to.cluster->record_success(endpoint);
      auto* pool = to.cluster->pool();
      if (pool != nullptr && msg.keep_alive() && !parser->need_eof() && conn->buffer.size() == 0) {
        ++conn->uses;
        pool->put(std::move(conn), now);
      }
    }
    strip_hop_by_hop(msg);
    for (const auto& f : msg) {
      if (f.name() != http::field::content_length)
        r.headers.emplace_back(f.name_string(), f.value());
    }
    r.body = std::move(msg.body());
    finish(std::move(r));
  }

  asio::io_context& io;
  ShadowEndpoint to;
  tcp::resolver resolver;
  asio::steady_timer timer;
  std::function<void(ShadowResult)> done;
  std::shared_ptr<UpstreamConnection> conn;
  bool reused = false;
  http::request<http::string_body> request;
  std::optional<http::response_parser<http::string_body>> parser{std::in_place};
  bool timed_out = false;
};

// Starts the call; the returned function aborts it (on the io_context's thread).
std::function<void()> start(const std::shared_ptr<Call>& call, std::chrono::milliseconds timeout) {
  call->start(timeout);
  std::weak_ptr<Call> weak = call;
  return [weak] {
    if (auto c = weak.lock()) c->fail("cancelled", false);
  };
}

}  // namespace

std::function<void()> start_shadow_call(asio::io_context& io, const ShadowEndpoint& to,
                                        const Request& request, std::chrono::milliseconds timeout,
                                        std::function<void(ShadowResult)> done) {
  auto call = std::make_shared<Call>(io, to, std::move(done));
  auto& out = call->request;
  const auto& in = request.native();
  out.method_string(in.method_string());
  out.target(in.target());
  out.version(11);
  for (const auto& f : in)
    out.insert(f.name(), f.name_string(), f.value());
  for (std::size_t i = 0; i < in.extra.size(); ++i) {  // the chain's (core/extra_fields.hpp)
    const auto name = in.extra.name(i);
    const auto value = in.extra.value(i);
    out.insert(in.extra.code(i), {name.data(), name.size()}, {value.data(), value.size()});
  }
  strip_hop_by_hop(out);  // Connection and what it names, Proxy-*, TE, ...
  out.erase(http::field::content_length);
  out.set(http::field::host, to.host + ":" + to.port);
  out.keep_alive(to.cluster != nullptr);  // pooled connections stay open
  out.body() = in.body();
  out.prepare_payload();
  return start(call, timeout);
}

std::function<void()> start_http_call(asio::io_context& io, const ShadowEndpoint& to,
                                      const OutgoingRequest& request,
                                      std::chrono::milliseconds timeout,
                                      std::function<void(ShadowResult)> done) {
  auto call = std::make_shared<Call>(io, to, std::move(done));
  auto& out = call->request;
  out.method_string(request.method);
  out.target(request.target);
  out.version(11);
  for (const auto& [name, value] : request.headers)
    out.insert(name, value);
  out.set(http::field::host, to.host + ":" + to.port);
  out.keep_alive(to.cluster != nullptr);
  out.prepare_payload();
  return start(call, timeout);
}

}  // namespace sluice::upstream
