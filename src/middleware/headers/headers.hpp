// headers — sets, adds and removes request and response headers.
//
//   - type: headers
//     request:  { set: { X-Env: prod }, remove: [X-Debug] }
//     response: { add: { Cache-Control: no-store } }
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "core/header_name.hpp"
#include "sluice/exchange.hpp"

namespace sluice::middleware {

// Names resolved to Beast's field codes when the config is read (core/header_name.hpp).
struct HeaderEdits {
  std::vector<std::pair<detail::HeaderName, std::string>> set;
  std::vector<std::pair<detail::HeaderName, std::string>> add;
  std::vector<std::string> remove;
  bool empty() const { return set.empty() && add.empty() && remove.empty(); }
};

class HeadersMiddleware final : public Middleware {
 public:
  HeadersMiddleware(std::string name, HeaderEdits request, HeaderEdits response)
      : name_(std::move(name)),
        request_(std::move(request)),
        response_(std::move(response)),
        edits_request_(!request_.empty()),
        edits_response_(!response_.empty()) {
    // Most instances edit one side: the chain then neither calls nor times the other hook.
    skip_hooks(!edits_request_, !edits_response_);
  }

  std::string_view name() const override { return name_; }
  std::string_view type() const override { return "headers"; }
  Decision pre_handle(Exchange& ex) override;
  void post_handle(Exchange& ex, std::chrono::nanoseconds elapsed) override;

 private:
  std::string name_;
  HeaderEdits request_;
  HeaderEdits response_;
  bool edits_request_;
  bool edits_response_;
};

}  // namespace sluice::middleware
