// ConfigErrors — collects every error of one config load, each with file:line:column, so
// `sluice check` can print them all at once. Also makes the Settings views over YAML nodes.
#pragma once

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "sluice/settings.hpp"

namespace sluice {

class ConfigErrors {
 public:
  explicit ConfigErrors(std::string file) : file_(std::move(file)) {}

  void add(const YAML::Mark& mark, std::string_view path, std::string_view message);
  void add(const YAML::Node& node, std::string_view path, std::string_view message) {
    add(node.Mark(), path, message);
  }
  void add_plain(std::string message) { errors_.push_back({-1, -1, std::move(message)}); }
  // Every error, in file order.
  std::vector<std::string> all() const;
  bool empty() const { return errors_.empty(); }
  std::size_t count() const { return errors_.size(); }
  const std::string& file() const { return file_; }

  // A Settings view over a YAML map at `path`; its unread keys are reported by finish().
  Settings settings(const YAML::Node& node, std::string path);
  // Reports unknown keys of every Settings made so far (call once, after all factories ran).
  void finish();

 private:
  std::string file_;
  struct Entry {
    int line;
    int column;
    std::string text;
  };
  std::vector<Entry> errors_;
  std::vector<std::shared_ptr<Settings::State>> states_;
  std::set<std::size_t> maps_checked_;  // positions of maps checked for duplicate keys
};

struct Settings::State {
  YAML::Node node;
  std::string path;
  ConfigErrors* errors = nullptr;
  std::set<std::string, std::less<>> known;
  // Keys only tested with has(): present but never read, they had no effect — an error too.
  std::set<std::string, std::less<>> tested;
  YAML::Mark mark;  // where the map (or the key that should hold it) is
  bool accept_all = false;
  // A list where a map was expected; an error at finish() unless items() read it.
  YAML::Node list;
  bool has_list = false;
  bool list_read = false;
};

// The closest candidate within a small edit distance, or empty: for "did you mean ...?".
std::string closest_match(std::string_view word, const std::vector<std::string>& candidates);
std::string did_you_mean(std::string_view word, const std::vector<std::string>& candidates);

}  // namespace sluice
