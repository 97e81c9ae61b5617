// examples/middleware/api_key_lookup/api_key_lookup.cpp
#include "api_key_lookup/api_key_lookup.hpp"

#include <prometheus/counter.h>

namespace sluice::examples {

namespace {
constexpr std::string_view kNoKey = "a valid X-Api-Key is required";

void count(prometheus::Counter* counter) {
  if (counter != nullptr) counter->Increment();
}
}  // namespace

Decision ApiKeyLookupMiddleware::pre_handle(Exchange& ex) {
  std::string key(ex.request().header("X-Api-Key"));
  if (key.empty()) {
    count(stats_.missing);
    return ex.answer_error(401, "unauthorized", kNoKey);  // nothing to look up
  }
  // The request waits, the worker does not. std::function wants a copyable callable, and a
  // Resume is move-only: share it.
  auto resume = std::make_shared<Resume>(ex.defer());
  directory_->lookup(std::move(key), [resume, stats = stats_](std::optional<std::string> client) {
    // Any thread: never touch the exchange here. The Resume runs the rest of the hook on the
    // request's own worker, where the answer is written.
    count(client ? stats.known : stats.unknown);
    if (!client) {
      resume->answer_error(401, "unauthorized", kNoKey);
      return;
    }
    resume->with([client = std::move(*client)](Exchange& ex) {
      ex.context().set_user(client);
      ex.request().remove_header("X-Api-Key");  // the upstream does not need the secret
      ex.request().set_header("X-Client", client);
      return Decision::next();
    });
  });
  return Decision::wait();
}

}  // namespace sluice::examples
