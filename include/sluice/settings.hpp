// sluice::Settings — a middleware's settings from the config file, read by its factory.
// Every read records the key as known; keys nobody read are reported as errors with their
// file:line:column and the likely intended name. has() is not a read: a key that a factory only
// tested for (and then did not read, given the other settings) is reported as having no effect.
//
//   double rate = s.number("rate", 0, /*min=*/0);
//   auto key = s.choice("key", {"client_ip", "header", "route"}, "client_ip");
//   if (rate == 0) s.error("rate", "must be greater than 0");
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sluice {

class ConfigErrors;

class Settings {
 public:
  struct State;
  explicit Settings(std::shared_ptr<State> state) : state_(std::move(state)) {}

  // Whether the key is present. Not a read (see the header comment): read it, or report an
  // error at it, when it is present and meant to be accepted.
  bool has(std::string_view key) const;
  // Records the key as read, for a value the caller reads some other way (the gateway's
  // `listen:`, a string or a list of strings and maps).
  void mark_read(std::string_view key) const;
  std::string string(std::string_view key, std::string fallback = {}) const;
  std::optional<std::string> optional_string(std::string_view key) const;
  std::int64_t integer(std::string_view key, std::int64_t fallback, std::int64_t min = INT64_MIN,
                       std::int64_t max = INT64_MAX) const;
  double number(std::string_view key, double fallback, double min = -1e300,
                double max = 1e300) const;
  bool boolean(std::string_view key, bool fallback) const;
  std::chrono::milliseconds millis(std::string_view key, std::chrono::milliseconds fallback) const;
  std::string choice(std::string_view key, const std::vector<std::string>& allowed,
                     std::string fallback) const;
  std::vector<std::string> strings(std::string_view key) const;
  std::vector<std::int64_t> integers(std::string_view key) const;
  std::vector<std::pair<std::string, std::string>> string_map(std::string_view key) const;
  // A nested map (absent: an empty Settings whose reads return the fallbacks).
  Settings child(std::string_view key) const;
  // A list of maps.
  std::vector<Settings> children(std::string_view key) const;
  // The elements of this node when it is itself a list (a top-level section such as
  // `plugins: [...]`); empty when absent, an error when it is not a list.
  std::vector<Settings> items() const;

  // Reports an error at this map (key empty) or at one of its keys.
  void error(std::string_view key, std::string_view message) const;
  // "routes[0].middlewares[1]" — where this map sits in the file.
  std::string path() const;
  bool ok() const;  // no error reported anywhere in this config so far
  // Marks every key (recursively) as known: for settings validated by an earlier load.
  void accept_all() const;
  // The settings as canonical text: equal text means equal settings (used on reload).
  std::string canonical() const;

 private:
  std::shared_ptr<State> state_;
};

}  // namespace sluice
