#include "resilience/redis/redis_connection.hpp"

#include <hiredis/async.h>

#include <spdlog/spdlog.h>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/post.hpp>
#include <deque>

namespace sluice::resilience::redis {
namespace {

using SteadyClock = std::chrono::steady_clock;

// One command written to the context and not answered yet. hiredis answers a connection's
// commands in the order they were sent, so the front of the queue is always the next reply.
struct Pending {
  ReplyCallback done;  // empty once timed out: the late reply is dropped
  SteadyClock::time_point sent;
  SteadyClock::time_point deadline;
  bool handshake = false;  // AUTH/SELECT/setup: bounded by the connect timeout instead
};

}  // namespace

// Everything tied to one redisAsyncContext. Shared with the asio handlers that wait on its fd,
// so a handler that fires after hiredis freed the context finds `ac == nullptr` and stops.
struct RedisConnection::Session : std::enable_shared_from_this<Session> {
  Session(RedisConnection& o, boost::asio::io_context& io)
      : owner(&o), fd(io), expiry(io), connect_timer(io) {}

  RedisConnection* owner;  // null once the connection let go of this session
  redisAsyncContext* ac = nullptr;
  boost::asio::posix::stream_descriptor fd;
  bool want_read = false;
  bool want_write = false;
  bool reading = false;
  bool writing = false;
  bool error_reported = false;
  std::size_t handshake_left = 0;
  std::deque<Pending> pending;
  std::size_t next_to_expire = 0;  // entries before it are handshakes or already timed out
  boost::asio::steady_timer expiry;
  bool expiry_armed = false;
  boost::asio::steady_timer connect_timer;

  void arm_read() {
    if (reading || ac == nullptr) return;
    reading = true;
    fd.async_wait(boost::asio::posix::stream_descriptor::wait_read,
                  [self = shared_from_this()](const boost::system::error_code& ec) {
                    self->reading = false;
                    if (ec || self->ac == nullptr || !self->want_read) return;
                    redisAsyncHandleRead(self->ac);  // may free the context
                    if (self->ac != nullptr && self->want_read) self->arm_read();
                  });
  }

  void arm_write() {
    if (writing || ac == nullptr) return;
    writing = true;
    fd.async_wait(boost::asio::posix::stream_descriptor::wait_write,
                  [self = shared_from_this()](const boost::system::error_code& ec) {
                    self->writing = false;
                    if (ec || self->ac == nullptr || !self->want_write) return;
                    redisAsyncHandleWrite(self->ac);  // may free the context
                    if (self->ac != nullptr && self->want_write) self->arm_write();
                  });
  }

  void arm_expiry() {
    if (expiry_armed || ac == nullptr) return;
    while (next_to_expire < pending.size() &&
           (pending[next_to_expire].handshake || !pending[next_to_expire].done)) {
      ++next_to_expire;
    }
    if (next_to_expire >= pending.size()) return;
    expiry_armed = true;
    expiry.expires_at(pending[next_to_expire].deadline);
    expiry.async_wait([self = shared_from_this()](const boost::system::error_code& ec) {
      self->expiry_armed = false;
      if (ec || self->ac == nullptr) return;
      self->sweep();
    });
  }

  // Commands share one timeout and are sent in order, so deadlines grow along the queue: stop
  // at the first one still in time.
  void sweep() {
    const auto now = SteadyClock::now();
    while (next_to_expire < pending.size()) {
      Pending& p = pending[next_to_expire];
      if (p.handshake || !p.done) {
        ++next_to_expire;
        continue;
      }
      if (p.deadline > now) break;
      ReplyCallback done = std::move(p.done);
      p.done = nullptr;
      ++next_to_expire;
      done(RedisReply::failure_of(RedisFailure::kTimeout, "redis command timed out"));
    }
    if (!pending.empty() && !pending.front().handshake && !pending.front().done && owner &&
        now - pending.front().sent > owner->options_.wedged_after) {
      owner->fail("redis did not answer for " +
                  std::to_string(owner->options_.wedged_after.count()) + " ms; reconnecting");
      error_reported = true;
      free_context();
      return;
    }
    arm_expiry();
  }

  // hiredis event hooks (ev.data is the Session). They must be idempotent.
  static void on_add_read(void* p) {
    auto* s = static_cast<Session*>(p);
    s->want_read = true;
    s->arm_read();
  }
  static void on_del_read(void* p) { static_cast<Session*>(p)->want_read = false; }
  static void on_add_write(void* p) {
    auto* s = static_cast<Session*>(p);
    s->want_write = true;
    s->arm_write();
  }
  static void on_del_write(void* p) { static_cast<Session*>(p)->want_write = false; }

  // hiredis is freeing the context and closes the fd itself, so asio must let go of it first.
  static void on_cleanup(void* p) {
    auto* s = static_cast<Session*>(p);
    std::string why = s->ac != nullptr && s->ac->err != 0 && s->ac->errstr != nullptr
                          ? std::string(s->ac->errstr)
                          : std::string();
    s->fd.release();  // cancels the pending waits; their handlers see ac == nullptr
    s->expiry.cancel();
    s->connect_timer.cancel();
    s->ac = nullptr;
    if (s->owner != nullptr) s->owner->on_session_closed(*s, why);
  }

  static void on_connect(const redisAsyncContext* ac, int status) {
    auto* s = static_cast<Session*>(ac->data);
    if (s->owner == nullptr) return;
    if (status != REDIS_OK) {
      s->owner->fail(s->owner->address() +
                     ": connect failed: " + (ac->errstr != nullptr ? ac->errstr : "unknown error"));
      s->error_reported = true;
      return;  // hiredis frees the context next; on_cleanup schedules the reconnect
    }
    if (s->handshake_left == 0) s->owner->on_ready(*s);
  }

  static void on_reply(redisAsyncContext* ac, void* r, void* privdata) {
    auto* s = static_cast<Session*>(privdata);
    if (s->pending.empty()) return;
    Pending p = std::move(s->pending.front());
    s->pending.pop_front();
    if (s->next_to_expire > 0) --s->next_to_expire;
    if (!p.done) return;  // timed out earlier: drop the late reply
    if (r == nullptr) {
      // The context is going away (error, EOF or our free): every pending command fails.
      std::string why = ac->err != 0 && ac->errstr != nullptr ? ac->errstr : "connection closed";
      p.done(RedisReply::failure_of(RedisFailure::kConnection, "redis connection lost: " + why));
      return;
    }
    if (s->owner != nullptr && s->owner->hooks_.on_rtt) {
      s->owner->hooks_.on_rtt(std::chrono::duration<double>(SteadyClock::now() - p.sent).count());
    }
    p.done(RedisReply::from_hiredis(*static_cast<redisReply*>(r)));
  }

  // Inside a hiredis callback hiredis defers the free until the callback returns.
  void free_context() {
    if (ac != nullptr) redisAsyncFree(ac);
  }
};

RedisConnection::RedisConnection(boost::asio::io_context& io, RedisConnectionOptions options,
                                 RedisConnectionHooks hooks)
    : io_(io),
      options_(std::move(options)),
      hooks_(std::move(hooks)),
      reconnect_timer_(io),
      backoff_(options_.reconnect_min),
      jitter_(static_cast<unsigned>(std::chrono::steady_clock::now().time_since_epoch().count())) {}

RedisConnection::~RedisConnection() {
  close();
}

std::string RedisConnection::address() const {
  return "redis " + options_.host + ":" + std::to_string(options_.port);
}

std::size_t RedisConnection::in_flight() const {
  return session_ ? session_->pending.size() : 0;
}

void RedisConnection::start() {
  if (state_ == State::kBackoff && !session_) connect();
}

void RedisConnection::close() {
  if (state_ == State::kClosed) return;
  state_ = State::kClosed;
  reconnect_timer_.cancel();
  if (session_) session_->free_context();
}

void RedisConnection::fail(const std::string& why) {
  // Logged once per distinct error, so an outage does not flood the log at every retry.
  if (why != last_error_) spdlog::warn("{}", why);
  last_error_ = why;
  if (hooks_.on_error) hooks_.on_error(why);
}

void RedisConnection::connect() {
  redisAsyncContext* ac = redisAsyncConnect(options_.host.c_str(), options_.port);
  if (ac == nullptr) {
    fail(address() + ": cannot allocate a hiredis context");
    schedule_reconnect();
    return;
  }
  if (ac->err != 0) {
    std::string why = ac->errstr != nullptr ? ac->errstr : "unknown error";
    redisAsyncFree(ac);  // no hooks attached yet
    fail(address() + ": connect failed: " + why);
    schedule_reconnect();
    return;
  }
  limit_reply_size(ac->c.reader);
  auto s = std::make_shared<Session>(*this, io_);
  boost::system::error_code ec;
  s->fd.assign(ac->c.fd, ec);
  if (ec) {
    redisAsyncFree(ac);
    fail(address() + ": cannot watch the socket: " + ec.message());
    schedule_reconnect();
    return;
  }
  s->ac = ac;
  ac->data = s.get();
  ac->ev.data = s.get();
  ac->ev.addRead = &Session::on_add_read;
  ac->ev.delRead = &Session::on_del_read;
  ac->ev.addWrite = &Session::on_add_write;
  ac->ev.delWrite = &Session::on_del_write;
  ac->ev.cleanup = &Session::on_cleanup;
  session_ = s;
  state_ = State::kConnecting;
  // Setting the connect callback asks for the first write event, which completes connect(2).
  redisAsyncSetConnectCallback(ac, &Session::on_connect);

  s->connect_timer.expires_after(options_.connect_timeout);
  s->connect_timer.async_wait([s](const boost::system::error_code& e) {
    if (e || s->ac == nullptr || s->owner == nullptr) return;
    if (s->owner->state_ == State::kReady) return;
    s->owner->fail(s->owner->address() + ": connect timed out after " +
                   std::to_string(s->owner->options_.connect_timeout.count()) + " ms");
    s->error_reported = true;
    s->free_context();
  });

  std::vector<std::pair<std::string, std::vector<std::string>>> handshake;
  if (!options_.password.empty()) {
    if (options_.username.empty()) {
      handshake.push_back({"AUTH", {"AUTH", options_.password}});
    } else {
      handshake.push_back({"AUTH", {"AUTH", options_.username, options_.password}});
    }
  }
  if (options_.db != 0) handshake.push_back({"SELECT", {"SELECT", std::to_string(options_.db)}});
  for (const auto& cmd : options_.setup)
    handshake.push_back({cmd.empty() ? "" : cmd[0], cmd});

  for (auto& [what, argv] : handshake) {
    std::vector<const char*> args;
    std::vector<std::size_t> lens;
    for (const auto& a : argv) {
      args.push_back(a.data());
      lens.push_back(a.size());
    }
    Session* raw = s.get();
    if (redisAsyncCommandArgv(ac, &Session::on_reply, raw, static_cast<int>(args.size()),
                              args.data(), lens.data()) != REDIS_OK) {
      continue;  // the context is already failing; on_cleanup handles it
    }
    ++s->handshake_left;
    const auto now = SteadyClock::now();
    s->pending.push_back(Pending{[raw, what = what](RedisReply reply) {
                                   if (raw->owner != nullptr)
                                     raw->owner->on_handshake_reply(*raw, reply, what);
                                 },
                                 now, SteadyClock::time_point::max(), true});
  }
}

void RedisConnection::on_handshake_reply(Session& s, const RedisReply& reply,
                                         const std::string& what) {
  if (&s != session_.get()) return;
  if (reply.failed()) return;  // the context is going away; on_cleanup reports it
  if (!reply.ok()) {
    // A wrong password or a broken setup script will not fix itself; keep retrying with
    // backoff (the operator may fix Redis), but say exactly what failed.
    fail(address() + ": " + what + " failed: " + reply.str);
    s.error_reported = true;
    s.free_context();
    return;
  }
  if (s.handshake_left > 0 && --s.handshake_left == 0) on_ready(s);
}

void RedisConnection::on_ready(Session& s) {
  if (&s != session_.get() || state_ != State::kConnecting) return;
  state_ = State::kReady;
  s.connect_timer.cancel();
  backoff_ = options_.reconnect_min;
  if (!last_error_.empty()) spdlog::info("{}: connected", address());
  last_error_.clear();
  if (hooks_.on_ready) hooks_.on_ready();
}

void RedisConnection::on_session_closed(Session& s, const std::string& why) {
  s.owner = nullptr;
  if (&s != session_.get()) return;
  if (!s.error_reported && state_ != State::kClosed) {
    fail(address() + ": connection lost: " + (why.empty() ? "closed" : why));
  }
  // hiredis still runs on this context after the cleanup hook: destroy the session later.
  boost::asio::post(io_, [keep = std::move(session_)] {});
  if (state_ == State::kClosed) return;
  state_ = State::kBackoff;
  schedule_reconnect();
}

void RedisConnection::schedule_reconnect() {
  if (state_ == State::kClosed) return;
  state_ = State::kBackoff;
  // Full jitter on the upper half, so many instances do not reconnect in lock step.
  std::uniform_int_distribution<long> pick(backoff_.count() / 2, backoff_.count());
  reconnect_timer_.expires_after(std::chrono::milliseconds(pick(jitter_)));
  backoff_ = std::min(backoff_ * 2, options_.reconnect_max);
  reconnect_timer_.async_wait([this](const boost::system::error_code& ec) {
    if (ec) return;  // cancelled: `this` may be gone
    if (state_ == State::kBackoff) connect();
  });
}

void RedisConnection::send(const std::vector<std::string>& argv, ReplyCallback done) {
  if (!can_send() || !session_ || session_->ac == nullptr) {
    done(RedisReply::failure_of(
        RedisFailure::kConnection,
        "not connected to " + address() + (last_error_.empty() ? "" : " (" + last_error_ + ")")));
    return;
  }
  std::vector<const char*> args;
  std::vector<std::size_t> lens;
  args.reserve(argv.size());
  lens.reserve(argv.size());
  for (const auto& a : argv) {
    args.push_back(a.data());
    lens.push_back(a.size());
  }
  Session& s = *session_;
  if (redisAsyncCommandArgv(s.ac, &Session::on_reply, &s, static_cast<int>(args.size()),
                            args.data(), lens.data()) != REDIS_OK) {
    done(RedisReply::failure_of(RedisFailure::kConnection, address() + ": context is closing"));
    return;
  }
  const auto now = SteadyClock::now();
  s.pending.push_back(Pending{std::move(done), now, now + options_.command_timeout, false});
  s.arm_expiry();
}

}  // namespace sluice::resilience::redis
