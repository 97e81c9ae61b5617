#include <algorithm>
#include <charconv>
#include <map>

#include "core/config_errors.hpp"

namespace sluice {

// ---- ConfigErrors ---------------------------------------------------------------------------

void ConfigErrors::add(const YAML::Mark& mark, std::string_view path, std::string_view message) {
  std::string line = file_;
  if (!mark.is_null()) {
    line += ":" + std::to_string(mark.line + 1) + ":" + std::to_string(mark.column + 1);
  }
  line += ": ";
  if (!path.empty()) line += std::string(path) + ": ";
  line += message;
  errors_.push_back(
      {mark.is_null() ? -1 : mark.line, mark.is_null() ? -1 : mark.column, std::move(line)});
}

std::vector<std::string> ConfigErrors::all() const {
  auto sorted = errors_;
  std::stable_sort(sorted.begin(), sorted.end(), [](const Entry& a, const Entry& b) {
    return std::tie(a.line, a.column) < std::tie(b.line, b.column);
  });
  std::vector<std::string> out;
  for (auto& e : sorted)
    out.push_back(std::move(e.text));
  return out;
}

Settings ConfigErrors::settings(const YAML::Node& node, std::string path) {
  auto state = std::make_shared<Settings::State>();
  state->node = node;
  state->path = std::move(path);
  state->errors = this;
  state->mark = node.Mark();
  if (node.IsSequence()) {
    // reset(), not operator=: assigning a YAML::Node writes through to the node it refers to.
    state->list.reset(node);  // a list section reads it through items(); see finish()
    state->has_list = true;
    state->node.reset(YAML::Node(YAML::NodeType::Map));
  } else if (node.IsDefined() && !node.IsNull() && !node.IsMap()) {
    add(node, state->path, "must be a map of settings");
    // reset(): operator= wrote the empty map into the document, so a second view of the same
    // key (a duplicate key) found a map without a position (a config fuzz target finding).
    state->node.reset(YAML::Node(YAML::NodeType::Map));
  } else if (node.IsMap() && !node.Mark().is_null() &&
             maps_checked_.insert(node.Mark().pos).second) {
    // yaml-cpp keeps both of `a: 1` and `a: 2` and lookups find the first: say so instead.
    std::map<std::string, YAML::Mark, std::less<>> seen;
    for (const auto& kv : node) {
      if (!kv.first.IsScalar()) continue;
      auto [it, fresh] = seen.emplace(kv.first.Scalar(), kv.first.Mark());
      if (!fresh) {
        add(kv.first, state->path,
            "duplicate key \"" + kv.first.Scalar() + "\" (first at line " +
                std::to_string(it->second.line + 1) + "; only that one is used)");
      }
    }
  }
  states_.push_back(state);
  return Settings(state);
}

void ConfigErrors::finish() {
  for (const auto& s : states_) {
    if (s->has_list && !s->list_read) add(s->list, s->path, "must be a map of settings");
    if (!s->node.IsMap() || s->accept_all) continue;
    std::vector<std::string> known(s->known.begin(), s->known.end());
    for (const auto& kv : s->node) {
      auto key = kv.first.as<std::string>("");
      if (s->known.count(key) != 0) continue;
      if (s->tested.count(key) != 0) {
        // Looked for, then not used with the other settings given: silently accepting it would
        // let the file say something sluice does not do.
        add(kv.first, s->path.empty() ? key : s->path + "." + key,
            "has no effect with the other settings here");
        continue;
      }
      add(kv.first, s->path, "unknown key \"" + key + "\"" + did_you_mean(key, known));
    }
  }
  states_.clear();
}

namespace {
// The edit distance of a and b when it is below `limit`, else `limit`. Two bounds make it cheap
// where the answer cannot be a match (a long or unknown key checked against every known key, as
// every unknown key of a config is): the distance is at least the difference of the lengths, and
// the smallest entry of a row of the table never decreases in the rows below it.
std::size_t edit_distance_below(std::string_view a, std::string_view b, std::size_t limit) {
  const std::size_t gap = a.size() > b.size() ? a.size() - b.size() : b.size() - a.size();
  if (gap >= limit) return limit;
  std::vector<std::size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j)
    prev[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    std::size_t row_min = cur[0];
    for (std::size_t j = 1; j <= b.size(); ++j) {
      std::size_t sub = prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1);
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, sub});
      row_min = std::min(row_min, cur[j]);
    }
    if (row_min >= limit) return limit;
    std::swap(prev, cur);
  }
  return std::min(prev[b.size()], limit);
}
}  // namespace

std::string closest_match(std::string_view word, const std::vector<std::string>& candidates) {
  std::string best;
  std::size_t best_distance = std::max<std::size_t>(2, word.size() / 3) + 1;
  for (const auto& c : candidates) {
    std::size_t d = edit_distance_below(word, c, best_distance);
    if (d < best_distance) {
      best_distance = d;
      best = c;
    }
  }
  return best;
}

std::string did_you_mean(std::string_view word, const std::vector<std::string>& candidates) {
  auto best = closest_match(word, candidates);
  return best.empty() ? std::string{} : " (did you mean \"" + best + "\"?)";
}

// ---- Settings -------------------------------------------------------------------------------

namespace {
YAML::Node lookup(Settings::State& s, std::string_view key) {
  s.known.emplace(key);
  if (!s.node.IsMap()) return YAML::Node();
  const YAML::Node& map = s.node;
  return map[std::string(key)];
}

bool present(const YAML::Node& n) {
  return n.IsDefined() && !n.IsNull();
}

std::string key_path(const Settings::State& s, std::string_view key) {
  return s.path.empty() ? std::string(key) : s.path + "." + std::string(key);
}

std::optional<std::chrono::milliseconds> parse_duration(const std::string& text) {
  std::size_t i = 0;
  while (i < text.size() && (std::isdigit(static_cast<unsigned char>(text[i])) || text[i] == '.'))
    ++i;
  if (i == 0) return std::nullopt;
  double value = 0;
  try {
    value = std::stod(text.substr(0, i));
  } catch (...) {
    return std::nullopt;
  }
  std::string unit = text.substr(i);
  double ms = 0;
  if (unit.empty() || unit == "ms")
    ms = value;
  else if (unit == "s")
    ms = value * 1000;
  else if (unit == "m")
    ms = value * 60'000;
  else if (unit == "us")
    ms = value / 1000;
  else
    return std::nullopt;
  // Beyond ~31,000 years (or NaN) is not a duration: the cast to an integer would be undefined
  // (the config fuzz target found "2e24s").
  if (!(ms > -1e15 && ms < 1e15)) return std::nullopt;
  return std::chrono::milliseconds(static_cast<std::int64_t>(ms));
}
}  // namespace

// Not a read: a key that is only tested, never read, is reported at finish() (see `tested`).
bool Settings::has(std::string_view key) const {
  state_->tested.emplace(key);
  if (!state_->node.IsMap()) return false;
  const YAML::Node& map = state_->node;
  return present(map[std::string(key)]);
}

void Settings::mark_read(std::string_view key) const {
  state_->known.emplace(key);
}

std::string Settings::string(std::string_view key, std::string fallback) const {
  auto v = optional_string(key);
  return v ? *v : fallback;
}

std::optional<std::string> Settings::optional_string(std::string_view key) const {
  auto n = lookup(*state_, key);
  if (!present(n)) return std::nullopt;
  if (!n.IsScalar()) {
    state_->errors->add(n, key_path(*state_, key), "must be a string");
    return std::nullopt;
  }
  return n.Scalar();
}

std::int64_t Settings::integer(std::string_view key, std::int64_t fallback, std::int64_t min,
                               std::int64_t max) const {
  auto n = lookup(*state_, key);
  if (!present(n)) return fallback;
  std::int64_t v = 0;
  const std::string& text = n.IsScalar() ? n.Scalar() : std::string();
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (text.empty() || ec != std::errc() || ptr != text.data() + text.size()) {
    state_->errors->add(n, key_path(*state_, key), "must be an integer");
    return fallback;
  }
  if (v < min || v > max) {
    state_->errors->add(n, key_path(*state_, key),
                        "must be between " + std::to_string(min) + " and " + std::to_string(max));
    return fallback;
  }
  return v;
}

double Settings::number(std::string_view key, double fallback, double min, double max) const {
  auto n = lookup(*state_, key);
  if (!present(n)) return fallback;
  double v = 0;
  try {
    v = n.as<double>();
  } catch (const YAML::Exception&) {
    state_->errors->add(n, key_path(*state_, key), "must be a number");
    return fallback;
  }
  if (v < min || v > max) {
    state_->errors->add(n, key_path(*state_, key), "is out of range");
    return fallback;
  }
  return v;
}

bool Settings::boolean(std::string_view key, bool fallback) const {
  auto n = lookup(*state_, key);
  if (!present(n)) return fallback;
  try {
    return n.as<bool>();
  } catch (const YAML::Exception&) {
    state_->errors->add(n, key_path(*state_, key), "must be true or false");
    return fallback;
  }
}

std::chrono::milliseconds Settings::millis(std::string_view key,
                                           std::chrono::milliseconds fallback) const {
  auto n = lookup(*state_, key);
  if (!present(n)) return fallback;
  auto d = n.IsScalar() ? parse_duration(n.Scalar()) : std::nullopt;
  if (!d || d->count() < 0) {
    state_->errors->add(n, key_path(*state_, key),
                        "must be a duration in milliseconds (e.g. 250, \"250ms\", \"2s\")");
    return fallback;
  }
  return *d;
}

std::string Settings::choice(std::string_view key, const std::vector<std::string>& allowed,
                             std::string fallback) const {
  auto n = lookup(*state_, key);
  auto v = optional_string(key);
  if (!v) return fallback;
  if (std::find(allowed.begin(), allowed.end(), *v) == allowed.end()) {
    std::string list;
    for (const auto& a : allowed)
      list += (list.empty() ? "" : ", ") + a;
    state_->errors->add(
        n, key_path(*state_, key),
        "unknown value \"" + *v + "\"" + did_you_mean(*v, allowed) + "; expected one of: " + list);
    return fallback;
  }
  return *v;
}

std::vector<std::string> Settings::strings(std::string_view key) const {
  auto n = lookup(*state_, key);
  std::vector<std::string> out;
  if (!present(n)) return out;
  if (n.IsScalar()) return {n.Scalar()};
  if (!n.IsSequence()) {
    state_->errors->add(n, key_path(*state_, key), "must be a list of strings");
    return out;
  }
  for (const auto& item : n) {
    if (!item.IsScalar()) {
      state_->errors->add(item, key_path(*state_, key), "must be a list of strings");
      continue;
    }
    out.push_back(item.Scalar());
  }
  return out;
}

std::vector<std::int64_t> Settings::integers(std::string_view key) const {
  std::vector<std::int64_t> out;
  auto n = lookup(*state_, key);
  for (const auto& s : strings(key)) {
    try {
      out.push_back(std::stoll(s));
    } catch (...) {
      state_->errors->add(n, key_path(*state_, key), "must be a list of integers");
    }
  }
  return out;
}

std::vector<std::pair<std::string, std::string>> Settings::string_map(std::string_view key) const {
  auto n = lookup(*state_, key);
  std::vector<std::pair<std::string, std::string>> out;
  if (!present(n)) return out;
  if (!n.IsMap()) {
    state_->errors->add(n, key_path(*state_, key), "must be a map of strings");
    return out;
  }
  for (const auto& kv : n) {
    if (!kv.second.IsScalar()) {
      state_->errors->add(kv.second, key_path(*state_, key), "values must be strings");
      continue;
    }
    out.emplace_back(kv.first.as<std::string>(""), kv.second.Scalar());
  }
  return out;
}

Settings Settings::child(std::string_view key) const {
  auto n = lookup(*state_, key);
  auto s = state_->errors->settings(present(n) ? n : YAML::Node(YAML::NodeType::Map),
                                    key_path(*state_, key));
  // A missing section has no node of its own, so no mark: its errors point at the map that
  // lacks it (before, "routes[0].handler.type: missing handler type" had no position; a config
  // fuzz target finding).
  if (!present(n)) s.state_->mark = state_->mark;
  return s;
}

std::vector<Settings> Settings::children(std::string_view key) const {
  auto n = lookup(*state_, key);
  std::vector<Settings> out;
  if (!present(n)) return out;
  if (!n.IsSequence()) {
    state_->errors->add(n, key_path(*state_, key), "must be a list");
    return out;
  }
  for (std::size_t i = 0; i < n.size(); ++i) {
    out.push_back(
        state_->errors->settings(n[i], key_path(*state_, key) + "[" + std::to_string(i) + "]"));
  }
  return out;
}

std::vector<Settings> Settings::items() const {
  std::vector<Settings> out;
  if (!state_->has_list) {
    if (state_->node.size() != 0) state_->errors->add(state_->mark, state_->path, "must be a list");
    return out;
  }
  state_->list_read = true;
  const YAML::Node& n = state_->list;
  for (std::size_t i = 0; i < n.size(); ++i) {
    out.push_back(state_->errors->settings(n[i], state_->path + "[" + std::to_string(i) + "]"));
  }
  return out;
}

void Settings::error(std::string_view key, std::string_view message) const {
  if (key.empty()) {
    state_->errors->add(state_->mark, state_->path, message);
    return;
  }
  auto n = lookup(*state_, key);
  state_->errors->add(present(n) ? n.Mark() : state_->mark, key_path(*state_, key), message);
}

std::string Settings::path() const {
  return state_->path;
}
bool Settings::ok() const {
  return state_->errors->empty();
}
void Settings::accept_all() const {
  state_->accept_all = true;
}

std::string Settings::canonical() const {
  YAML::Emitter out;
  out.SetMapFormat(YAML::Flow);
  out.SetSeqFormat(YAML::Flow);
  out << state_->node;
  return out.c_str();
}

}  // namespace sluice
