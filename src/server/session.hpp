// Session — one HTTP/1.1 connection: read a request (with the limits), hand it to the
// dispatcher, write the response, repeat while keep-alive holds. Pipelined requests wait in
// the read buffer and are answered in order.
#pragma once

#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/parser.hpp>
#include <optional>
#include <string>

#include "core/http_message.hpp"
#include "server/server.hpp"
#include "sluice/exchange.hpp"

namespace sluice::server {

class Session final : public ExchangeHost {
 public:
  Session(Server& server, int worker, boost::asio::ip::tcp::socket socket);
  ~Session() override;

  void start();
  // Drain: close now when no request is in progress, otherwise after the current response.
  void close_if_idle();

  void post(std::function<void()> fn) override;
  void post_after(std::chrono::nanoseconds delay, std::function<void()> fn) override;

 private:
  using error_code = boost::beast::error_code;
  std::shared_ptr<Session> self() { return std::static_pointer_cast<Session>(shared_from_this()); }

  void wait_for_request();
  void read_header();
  void arm_timer(std::chrono::milliseconds timeout);
  void on_header(error_code ec);
  void read_body();
  void on_body(error_code ec);
  void on_read_error(error_code ec, bool partial);
  // Returns an empty string when the request's framing is acceptable (RFC 9112).
  const char* check_framing() const;
  void dispatch();
  void write_response(bool keep_alive);
  void reject(int status, std::string_view error, std::string_view message);
  void close();

  Server& server_;
  int worker_;
  boost::beast::tcp_stream stream_;
  boost::asio::steady_timer timer_;
  boost::beast::flat_buffer buffer_;
  std::optional<boost::beast::http::request_parser<boost::beast::http::string_body>> parser_;
  detail::RequestMessage request_;
  detail::ResponseMessage response_;
  Exchange exchange_;
  std::unique_ptr<DispatchState> dispatch_state_;
  std::string client_ip_;
  bool busy_ = false;
  bool head_request_ = false;
  bool closing_ = false;
  bool closed_ = false;
  bool timed_out_ = false;
};

}  // namespace sluice::server
