// sluice::Context — what one request carries through the chain: its id, times, deadline,
// user, trace identity, and typed slots keyed by C++ type (a private type is a private key).
//
//   struct TenantKey { std::string tenant; };           // private to your middleware
//   ctx.emplace<TenantKey>(TenantKey{"acme"});
//   if (auto* t = ctx.get<TenantKey>()) use(t->tenant);
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "sluice/clock.hpp"
#include "sluice/typed_slots.hpp"

namespace sluice {

// The trace identity of the request, filled by the tracing observer (or left invalid).
struct TraceSlot {
  std::array<std::uint8_t, 16> trace_id{};
  std::array<std::uint8_t, 8> span_id{};         // sluice's server span
  std::array<std::uint8_t, 8> parent_span_id{};  // from the incoming traceparent; zero = root
  std::uint8_t flags = 0;                        // bit 0: sampled
  std::string trace_state;                       // validated incoming tracestate
  bool valid = false;
  std::uint8_t sampling = 0;  // the tracing observer's own bits (tail sampling)
};

class Context {
 public:
  Context() = default;
  Context(const Context&) = delete;
  Context& operator=(const Context&) = delete;

  // Starts a new request: clears everything and stamps both clocks. `connection_ip` is what
  // client_ip() and peer_ip() return until set: the caller keeps it alive until the next begin()
  // (a host passes its connection's address through ExchangeDriver::reset).
  void begin(SteadyTime steady_now, std::chrono::system_clock::time_point wall_now,
             std::string_view connection_ip = {});

  std::string_view request_id() const { return request_id_; }
  void set_request_id(std::string_view id) { request_id_.assign(id); }
  // A fresh generated id (as generate_request_id()), written in place: no allocation once the
  // context's string has grown to an id's length.
  void set_new_request_id();

  SteadyTime start_steady() const { return start_steady_; }
  std::chrono::system_clock::time_point start_wall() const { return start_wall_; }

  // The deadline only moves earlier: a route timeout cannot extend a caller's deadline.
  std::optional<SteadyTime> deadline() const { return deadline_; }
  void tighten_deadline(SteadyTime t) {
    if (!deadline_ || t < *deadline_) deadline_ = t;
  }

  // Who made the request, as an authentication middleware established it (jwt, basic_auth,
  // ext_auth); empty when nobody did. Never taken from a client-sent header as such.
  const std::string& user() const { return user_; }
  void set_user(std::string user) { user_ = std::move(user); }
  // The user's service tier ("vip", "free"), from the same middlewares; empty when unknown.
  const std::string& tier() const { return tier_; }
  void set_tier(std::string tier) { tier_ = std::move(tier); }

  // The client's address: the connection's peer, or, behind trusted proxies, the address they
  // vouch for (the gateway's `real_ip:`). Rate-limit keys, logs and spans use this one.
  std::string_view client_ip() const { return client_ip_; }
  void set_client_ip(std::string_view ip) {
    client_ip_text_.assign(ip);
    client_ip_ = client_ip_text_;
  }
  // The connection's other end: the socket peer, or the source a PROXY protocol header named.
  // The proxy appends this one to X-Forwarded-For, as each hop appends the address it saw.
  std::string_view peer_ip() const { return peer_ip_; }
  void set_peer_ip(std::string_view ip) {
    peer_ip_text_.assign(ip);
    peer_ip_ = peer_ip_text_;
  }
  // The connection is TLS (a `tls:` listener).
  bool tls() const { return tls_; }
  // The client certificate a TLS listener verified (mTLS), else empty: its subject in RFC 2253
  // form ("CN=client,O=Example") and its subjectAltNames ("DNS:a.example,URI:spiffe://x/y").
  std::string_view client_cert_subject() const { return client_cert_subject_; }
  std::string_view client_cert_san() const { return client_cert_san_; }
  void set_tls(bool tls, std::string_view cert_subject = {}, std::string_view cert_san = {}) {
    tls_ = tls;
    client_cert_subject_.assign(cert_subject);
    client_cert_san_.assign(cert_san);
  }

  // The middlewares that stepped aside for this request, "name:reason" comma-separated (e.g.
  // "auth:breaker_open,canary:rollout"); shown by the access log and the server span.
  std::string_view skipped() const { return skipped_; }
  void mark_skipped(std::string_view middleware, std::string_view reason) {
    if (!skipped_.empty()) skipped_ += ',';
    skipped_.append(middleware).append(1, ':').append(reason);
  }

  TraceSlot& trace() { return trace_; }
  const TraceSlot& trace() const { return trace_; }

  // Typed slots: one value per type T (see typed_slots.hpp).
  TypedSlots& slots() { return slots_; }
  template <class T>
  T* get() const {
    return slots_.get<T>();
  }
  template <class T, class... Args>
  T& emplace(Args&&... args) {
    return slots_.emplace<T>(std::forward<Args>(args)...);
  }
  template <class T>
  void erase() {
    slots_.erase<T>();
  }

 private:
  std::string request_id_;
  SteadyTime start_steady_{};
  std::chrono::system_clock::time_point start_wall_{};
  std::optional<SteadyTime> deadline_;
  std::string user_;
  std::string tier_;
  // Both views start as the host's connection address (Exchange::reset: the session's own
  // string, which outlives the request), so a request costs no copy of it; set_client_ip and
  // set_peer_ip copy into the context's own text and point there.
  std::string_view client_ip_;
  std::string_view peer_ip_;
  std::string client_ip_text_;
  std::string peer_ip_text_;
  bool tls_ = false;
  std::string client_cert_subject_;
  std::string client_cert_san_;
  std::string skipped_;
  TraceSlot trace_;
  TypedSlots slots_;
};

// Request ids: a valid incoming id is kept; otherwise one is generated without a lock.
bool is_valid_request_id(std::string_view id);
std::string generate_request_id();

}  // namespace sluice
