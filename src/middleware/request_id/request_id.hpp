// request_id — gives every request an id: a valid incoming X-Request-Id is kept, otherwise one
// is generated. The id goes into the Context, the upstream request and the response.
//
//   middlewares:
//     - type: request_id
//       header: X-Request-Id     # default
//       trust_incoming: true     # default; false always generates
#pragma once

#include <string>

#include "core/header_name.hpp"
#include "sluice/exchange.hpp"

namespace sluice::middleware {

class RequestIdMiddleware final : public Middleware {
 public:
  RequestIdMiddleware(std::string name, std::string header, bool trust_incoming)
      : name_(std::move(name)), header_(std::move(header)), trust_incoming_(trust_incoming) {}

  std::string_view name() const override { return name_; }
  std::string_view type() const override { return "request_id"; }
  Decision pre_handle(Exchange& ex) override;
  void post_handle(Exchange& ex, std::chrono::nanoseconds elapsed) override;

 private:
  std::string name_;
  detail::HeaderName header_;  // resolved once: no string_to_field per request
  bool trust_incoming_;
};

}  // namespace sluice::middleware
