// QueuedRequest, DeadLetter — what the store-and-forward queue keeps of a write, and of a write
// that will not be delivered, with their byte encodings for the segment log.
//
//   QueuedRequest r{.method = "POST", .target = "/orders", .body = "{...}",
//                   .idempotency_key = "k-1"};
//   std::string bytes = encode(r);
//   std::optional<QueuedRequest> back = decode_request(bytes);
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace sluice::queue {

struct QueuedRequest {
  std::string method;
  std::string target;
  std::vector<std::pair<std::string, std::string>> headers;  // end-to-end ones, as received
  std::string body;
  std::string idempotency_key;  // sent as Idempotency-Key on every replay
  std::string order_key;        // records with the same non-empty key are delivered in order
  std::int64_t enqueued_unix_ms = 0;
};

struct DeadLetter {
  QueuedRequest request;
  std::uint64_t queued_id = 0;  // its id in the queue when it died
  std::string reason;           // "rejected" (a final 4xx), "max_attempts", "expired"
  int status = 0;               // the last answer's status (0: none, e.g. unreachable)
  std::string answer;           // the last answer's body (up to 4 KiB), or the error
  int attempts = 0;
  std::int64_t dead_unix_ms = 0;
};

std::string encode(const QueuedRequest& r);
std::optional<QueuedRequest> decode_request(std::string_view bytes);
std::string encode(const DeadLetter& d);
std::optional<DeadLetter> decode_dead_letter(std::string_view bytes);

}  // namespace sluice::queue
