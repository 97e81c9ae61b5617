// RedisConnection — one hiredis async connection driven by a Boost.Asio io_context: connects
// without blocking, authenticates, selects the database, runs setup commands, pipelines
// commands, times them out and reconnects with exponential backoff. Not thread-safe: every
// call happens on the io_context's thread (RedisClient does the hand-off).
//
//   RedisConnection conn(io, options, {});
//   conn.start();
//   conn.send({"PING"}, [](RedisReply r) { /* on the io thread */ });
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "resilience/redis/redis_reply.hpp"

namespace sluice::resilience::redis {

struct RedisConnectionOptions {
  std::string host = "127.0.0.1";
  int port = 6379;
  std::string username;  // empty: `AUTH password` (or no AUTH when the password is empty too)
  std::string password;
  int db = 0;
  // From the start of connect(2) until AUTH, SELECT and the setup commands have all answered.
  std::chrono::milliseconds connect_timeout{200};
  // From send() until the reply; then the caller gets kTimeout and the late reply is dropped.
  std::chrono::milliseconds command_timeout{50};
  std::chrono::milliseconds reconnect_min{50};
  std::chrono::milliseconds reconnect_max{2000};
  // A timed-out command still unanswered this long means the connection is wedged (peer gone
  // without a FIN): drop it and reconnect.
  std::chrono::milliseconds wedged_after{1000};
  // Sent after AUTH/SELECT on every (re)connect, e.g. SCRIPT LOAD; an error reply fails the
  // handshake like a wrong password does.
  std::vector<std::vector<std::string>> setup;
};

struct RedisConnectionHooks {
  std::function<void(double seconds)> on_rtt;        // every answered command
  std::function<void(const std::string&)> on_error;  // connect/handshake/lost, with the text
  std::function<void()> on_ready;                    // handshake complete
};

class RedisConnection {
 public:
  // kBackoff: no context, waiting to reconnect; sends fail at once with kConnection.
  // kConnecting: context exists, handshake in flight; sends queue behind it (pipelined).
  // kReady: handshake done.  kClosed: close() was called; nothing happens any more.
  //
  //   kBackoff ──timer──▶ kConnecting ──handshake ok──▶ kReady
  //       ▲                    │ error/timeout             │ error/EOF/wedged
  //       └────────────────────┴───────────────────────────┘
  enum class State { kBackoff, kConnecting, kReady, kClosed };

  RedisConnection(boost::asio::io_context& io, RedisConnectionOptions options,
                  RedisConnectionHooks hooks);
  ~RedisConnection();
  RedisConnection(const RedisConnection&) = delete;
  RedisConnection& operator=(const RedisConnection&) = delete;

  void start();
  // Frees the context: pending commands complete with kConnection. Idempotent.
  void close();

  State state() const { return state_; }
  bool can_send() const { return state_ == State::kConnecting || state_ == State::kReady; }
  const std::string& last_error() const { return last_error_; }
  std::size_t in_flight() const;

  // `done` runs exactly once on the io thread: with the reply, kTimeout, or kConnection.
  void send(const std::vector<std::string>& argv, ReplyCallback done);

 private:
  struct Session;

  void connect();
  void on_ready(Session& s);
  void on_session_closed(Session& s, const std::string& why);
  std::string address() const;
  void on_handshake_reply(Session& s, const RedisReply& reply, const std::string& what);
  void schedule_reconnect();
  void fail(const std::string& why);

  boost::asio::io_context& io_;
  RedisConnectionOptions options_;
  RedisConnectionHooks hooks_;
  State state_ = State::kBackoff;
  std::shared_ptr<Session> session_;
  boost::asio::steady_timer reconnect_timer_;
  std::chrono::milliseconds backoff_;
  std::minstd_rand jitter_;
  std::string last_error_;
};

}  // namespace sluice::resilience::redis
