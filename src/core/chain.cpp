#include "sluice/chain.hpp"

#include <algorithm>
#include <atomic>

namespace sluice {

ChainSnapshot::ChainSnapshot(std::vector<ChainEntry> entries,
                             std::vector<std::shared_ptr<Observer>> observers,
                             std::uint64_t version)
    : entries_(std::move(entries)), observers_(std::move(observers)), version_(version) {
  static std::atomic<std::uint64_t> next_id{1};
  id_ = next_id.fetch_add(1, std::memory_order_relaxed);
  for (auto& e : entries_)
    if (e.enabled) active_.push_back(e.middleware.get());
  for (auto& o : observers_) {
    observer_ptrs_.push_back(o.get());
    times_middlewares_ = times_middlewares_ || o->wants_middleware_times();
  }
}

Chain::Chain(std::string name, std::vector<std::shared_ptr<Observer>> observers)
    : name_(std::move(name)),
      observers_(std::move(observers)),
      cell_(std::make_shared<const ChainSnapshot>(std::vector<ChainEntry>{}, observers_, 0)) {}

namespace {
using Entries = std::vector<ChainEntry>;

Entries::iterator find(Entries& entries, std::string_view name) {
  return std::find_if(entries.begin(), entries.end(),
                      [&](const ChainEntry& e) { return e.middleware->name() == name; });
}

std::string not_found(std::string_view name) {
  return "no middleware named \"" + std::string(name) + "\" in the chain";
}

std::string check_new(const Entries& entries, const std::shared_ptr<Middleware>& m,
                      std::string_view except = {}) {
  if (!m) return "middleware is null";
  for (const auto& e : entries)
    if (e.middleware->name() == m->name() && e.middleware->name() != except)
      return "a middleware named \"" + std::string(m->name()) + "\" is already in the chain";
  auto r = m->init();
  if (!r.ok()) return std::string(m->name()) + ": init failed: " + r.error;
  return {};
}
}  // namespace

template <class Edit>
EditResult Chain::edit(Edit&& change) {
  std::lock_guard lock(edit_mutex_);
  Entries entries = cell_.current()->entries();
  std::string error = change(entries);
  if (!error.empty()) return {std::move(error)};
  cell_.publish(
      std::make_shared<const ChainSnapshot>(std::move(entries), observers_, next_version_++));
  return {};
}

EditResult Chain::assign(std::vector<ChainEntry> list) {
  return edit([&](Entries& entries) -> std::string {
    Entries fresh;
    for (auto& e : list) {
      auto error = check_new(fresh, e.middleware);
      if (!error.empty()) return error;
      fresh.push_back(e);
    }
    entries = std::move(fresh);
    return {};
  });
}

EditResult Chain::use(std::shared_ptr<Middleware> m) {
  return edit([&](Entries& entries) -> std::string {
    auto error = check_new(entries, m);
    if (error.empty()) entries.push_back({std::move(m), true});
    return error;
  });
}

EditResult Chain::insert_before(std::string_view existing, std::shared_ptr<Middleware> m) {
  return edit([&](Entries& entries) -> std::string {
    auto it = find(entries, existing);
    if (it == entries.end()) return not_found(existing);
    auto error = check_new(entries, m);
    if (error.empty()) entries.insert(it, {std::move(m), true});
    return error;
  });
}

EditResult Chain::insert_after(std::string_view existing, std::shared_ptr<Middleware> m) {
  return edit([&](Entries& entries) -> std::string {
    auto it = find(entries, existing);
    if (it == entries.end()) return not_found(existing);
    auto error = check_new(entries, m);
    if (error.empty()) entries.insert(it + 1, {std::move(m), true});
    return error;
  });
}

EditResult Chain::remove(std::string_view existing) {
  return edit([&](Entries& entries) -> std::string {
    auto it = find(entries, existing);
    if (it == entries.end()) return not_found(existing);
    entries.erase(it);
    return {};
  });
}

EditResult Chain::replace(std::string_view existing, std::shared_ptr<Middleware> m) {
  return edit([&](Entries& entries) -> std::string {
    auto it = find(entries, existing);
    if (it == entries.end()) return not_found(existing);
    auto error = check_new(entries, m, existing);
    if (error.empty()) *it = {std::move(m), it->enabled};
    return error;
  });
}

EditResult Chain::enable(std::string_view existing) {
  return edit([&](Entries& entries) -> std::string {
    auto it = find(entries, existing);
    if (it == entries.end()) return not_found(existing);
    it->enabled = true;
    return {};
  });
}

EditResult Chain::disable(std::string_view existing) {
  return edit([&](Entries& entries) -> std::string {
    auto it = find(entries, existing);
    if (it == entries.end()) return not_found(existing);
    it->enabled = false;
    return {};
  });
}

void Chain::set_observers(std::vector<std::shared_ptr<Observer>> observers) {
  edit([&](Entries&) -> std::string {
    observers_ = std::move(observers);
    return {};
  });
}

}  // namespace sluice
