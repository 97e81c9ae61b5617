// RespondHandler — answers with a fixed status, headers and body (config `handler.type: respond`).
//
//   handler: { type: respond, status: 200, body: "hello\n", headers: { content-type: text/plain } }
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "sluice/exchange.hpp"

namespace sluice::gateway {

class RespondHandler final : public Handler {
 public:
  RespondHandler(int status, std::vector<std::pair<std::string, std::string>> headers,
                 std::string body);
  std::string_view kind() const override { return "respond"; }
  Decision handle(Exchange& ex) override;

 private:
  int status_;
  std::vector<std::pair<std::string, std::string>> headers_;
  std::string body_;
  std::string content_type_;
};

// EchoHandler — answers with the request as JSON (config `handler.type: echo`): method, path,
// query, headers, body, client_ip, peer_ip, request_id. For tests and debugging.
class EchoHandler final : public Handler {
 public:
  std::string_view kind() const override { return "echo"; }
  Decision handle(Exchange& ex) override;
};

}  // namespace sluice::gateway
