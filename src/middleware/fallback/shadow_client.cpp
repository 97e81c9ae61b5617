#include "middleware/fallback/shadow_client.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <cstdlib>
#include <memory>

#include "core/http_message.hpp"
#include "sluice/http.hpp"

namespace sluice::middleware {
namespace {

namespace asio = boost::asio;
namespace http = boost::beast::http;
using tcp = asio::ip::tcp;

bool hop_by_hop(std::string_view name) {
  for (std::string_view h : {"connection", "keep-alive", "proxy-connection", "te", "trailer",
                             "transfer-encoding", "upgrade", "content-length", "host"}) {
    if (name.size() == h.size() &&
        std::equal(name.begin(), name.end(), h.begin(),
                   [](char a, char b) { return std::tolower(static_cast<unsigned char>(a)) == b; }))
      return true;
  }
  return false;
}

// One call's state; every handler runs on the io_context's thread.
struct Call : std::enable_shared_from_this<Call> {
  Call(asio::io_context& io, std::function<void(ShadowResult)> done)
      : resolver(io), socket(io), timer(io), done(std::move(done)) {}

  void finish(ShadowResult r) {
    if (!done) return;
    auto d = std::move(done);
    done = nullptr;
    timer.cancel();
    boost::system::error_code ignored;
    socket.close(ignored);
    resolver.cancel();
    d(std::move(r));
  }
  void fail(std::string why) {
    ShadowResult r;
    r.timed_out = timed_out;
    r.error = timed_out ? "timed out" : std::move(why);
    finish(std::move(r));
  }

  void start(const ShadowEndpoint& to, std::chrono::milliseconds timeout) {
    auto self = shared_from_this();
    timer.expires_after(timeout);
    timer.async_wait([self](boost::system::error_code ec) {
      if (ec) return;
      self->timed_out = true;
      self->fail("timed out");
    });
    resolver.async_resolve(
        to.host, to.port, [self](boost::system::error_code ec, tcp::resolver::results_type rs) {
          if (ec) return self->fail("resolve: " + ec.message());
          asio::async_connect(self->socket, rs,
                              [self](boost::system::error_code ec2, const tcp::endpoint&) {
                                if (ec2) return self->fail("connect: " + ec2.message());
                                self->write();
                              });
        });
  }
  void write() {
    auto self = shared_from_this();
    http::async_write(socket, request, [self](boost::system::error_code ec, std::size_t) {
      if (ec) return self->fail("write: " + ec.message());
      self->parser.body_limit(8 * 1024 * 1024);
      http::async_read(self->socket, self->buffer, self->parser,
                       [self](boost::system::error_code ec2, std::size_t) {
                         if (ec2) return self->fail("read: " + ec2.message());
                         ShadowResult r;
                         r.ok = true;
                         auto& msg = self->parser.get();
                         r.status = static_cast<int>(msg.result_int());
                         for (const auto& f : msg) {
                           if (!hop_by_hop(f.name_string()))
                             r.headers.emplace_back(f.name_string(), f.value());
                         }
                         r.body = std::move(msg.body());
                         self->finish(std::move(r));
                       });
    });
  }

  tcp::resolver resolver;
  tcp::socket socket;
  asio::steady_timer timer;
  std::function<void(ShadowResult)> done;
  http::request<http::string_body> request;
  http::response_parser<http::string_body> parser;
  boost::beast::flat_buffer buffer;
  bool timed_out = false;
};

}  // namespace

std::function<void()> start_shadow_call(asio::io_context& io, const ShadowEndpoint& to,
                                        const Request& request, std::chrono::milliseconds timeout,
                                        std::function<void(ShadowResult)> done) {
  auto call = std::make_shared<Call>(io, std::move(done));
  auto& out = call->request;
  const auto& in = request.native();
  out.method_string(in.method_string());
  out.target(in.target());
  out.version(11);
  for (const auto& f : in)
    if (!hop_by_hop(f.name_string())) out.insert(f.name_string(), f.value());
  out.set(http::field::host, to.host + ":" + to.port);
  out.keep_alive(false);
  out.body() = in.body();
  out.prepare_payload();
  call->start(to, timeout);
  std::weak_ptr<Call> weak = call;
  return [weak] {
    if (auto c = weak.lock()) c->fail("cancelled");
  };
}

}  // namespace sluice::middleware
