// Session — one HTTP/1.1 connection: read a request (with the limits), hand it to the
// dispatcher, write the response, repeat while keep-alive holds. Pipelined requests wait in
// the read buffer and are answered in order.
//
// The hot path is written by hand on a plain socket rather than with Beast's composed
// operations: the parser is fed with put() from one read buffer, the response head is
// serialized into a reused string and written with the body in one gather write, and deadlines
// are checked by a per-worker sweep (Server) instead of a timer armed per read. Callgrind showed
// Beast's serializer and type-erased executors costing more than the rest of the request.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/parser.hpp>
#include <optional>
#include <string>

#include "core/http_message.hpp"
#include "server/server.hpp"
#include "sluice/exchange.hpp"

namespace sluice::server {

class Session final : public ExchangeHost {
 public:
  using Socket = boost::asio::basic_stream_socket<boost::asio::ip::tcp,
                                                  boost::asio::io_context::executor_type>;

  Session(Server& server, int worker, Socket socket);
  ~Session() override;

  void start();
  // Drain: close now when no request is in progress, otherwise after the current response.
  void close_if_idle();
  // Called by the worker's sweep: cancels a read whose deadline passed.
  void check_deadline(SteadyTime now);

  void post(std::function<void()> fn) override;
  void post_after(std::chrono::nanoseconds delay, std::function<void()> fn) override;
  void on_wait() override;

 private:
  using error_code = boost::system::error_code;
  std::shared_ptr<Session> self() { return std::static_pointer_cast<Session>(shared_from_this()); }

  void begin_request();
  void read();
  void on_read(error_code ec, std::size_t n);
  void parse();
  bool on_header_complete();  // false when the request was rejected
  void on_read_error(error_code ec);
  const char* check_framing() const;
  void dispatch();
  void write_response(bool keep_alive);
  void serialize_head(bool keep_alive, bool with_body);
  void reject(int status, std::string_view error, std::string_view message);
  void close();
  void reset();

  Server& server_;
  int worker_;
  Socket socket_;
  boost::beast::flat_buffer buffer_;
  std::optional<boost::beast::http::request_parser<boost::beast::http::string_body>> parser_;
  detail::RequestMessage request_;
  detail::ResponseMessage response_;
  Exchange exchange_;
  std::unique_ptr<DispatchState> dispatch_state_;
  std::string client_ip_;
  std::string head_;  // the serialized response head, reused
  SteadyTime deadline_ = SteadyTime::max();
  bool reading_ = false;
  bool request_started_ = false;  // bytes of the current request have arrived
  bool header_checked_ = false;
  bool busy_ = false;
  bool head_request_ = false;
  bool closing_ = false;
  bool closed_ = false;
  bool timed_out_ = false;
  bool watching_ = false;  // waiting for the client to close while a request waits
};

}  // namespace sluice::server
