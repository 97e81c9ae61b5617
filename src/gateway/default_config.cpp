#include "gateway/config.hpp"

namespace sluice::gateway {

const std::string& default_config_text() {
  static const std::string text =
      R"(# sluice's embedded default config: works with nothing else running.
listen: 127.0.0.1:8080
admin:
  listen: 127.0.0.1:9901
routes:
  - name: echo
    match: { prefix: /echo }
    middlewares:
      - type: request_id
    handler: { type: echo }
  - name: hello
    match: { prefix: / }
    middlewares:
      - type: request_id
    handler:
      type: respond
      status: 200
      headers: { content-type: text/plain; charset=utf-8 }
      body: "hello from sluice\n"
)";
  return text;
}

}  // namespace sluice::gateway
