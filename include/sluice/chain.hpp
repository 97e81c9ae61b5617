// sluice::Chain — an ordered list of middlewares, published as immutable snapshots. Edits build
// a new snapshot and swap it in atomically; a request finishes on the snapshot it started on.
//
//   sluice::Chain chain("api");
//   chain.use(std::make_shared<RequestId>());
//   chain.insert_after("request_id", limiter);   // new snapshot; in-flight requests unaffected
//   auto snapshot = chain.acquire();             // per request, lock-free
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "sluice/middleware.hpp"
#include "sluice/snapshot_cell.hpp"

namespace sluice {

struct ChainEntry {
  std::shared_ptr<Middleware> middleware;
  bool enabled = true;
};

// One immutable version of a chain. `active()` is what the runner walks: the enabled
// middlewares as raw pointers (the snapshot owns them through `entries()`).
class ChainSnapshot {
 public:
  ChainSnapshot(std::vector<ChainEntry> entries, std::vector<std::shared_ptr<Observer>> observers,
                std::uint64_t version);

  const std::vector<ChainEntry>& entries() const { return entries_; }
  const std::vector<Middleware*>& active() const { return active_; }
  const std::vector<Observer*>& observers() const { return observer_ptrs_; }
  const std::vector<std::shared_ptr<Observer>>& observer_handles() const { return observers_; }
  bool times_middlewares() const { return times_middlewares_; }
  std::uint64_t version() const { return version_; }
  // Unique in the process (never reused, unlike the address): a key for per-snapshot caches,
  // e.g. the metrics observer's series of this chain's middlewares.
  std::uint64_t id() const { return id_; }

 private:
  std::vector<ChainEntry> entries_;
  std::vector<Middleware*> active_;
  std::vector<std::shared_ptr<Observer>> observers_;
  std::vector<Observer*> observer_ptrs_;
  bool times_middlewares_ = false;
  std::uint64_t version_;
  std::uint64_t id_;
};

// The result of a chain edit: empty error means it was published.
struct EditResult {
  std::string error;
  bool ok() const { return error.empty(); }
};

class Chain {
 public:
  explicit Chain(std::string name, std::vector<std::shared_ptr<Observer>> observers = {});
  Chain(const Chain&) = delete;
  Chain& operator=(const Chain&) = delete;

  const std::string& name() const { return name_; }

  // Builds a chain from a list in one step: init() runs for every middleware; on failure
  // nothing is published.
  EditResult assign(std::vector<ChainEntry> entries);

  EditResult use(std::shared_ptr<Middleware> middleware);
  EditResult insert_before(std::string_view existing, std::shared_ptr<Middleware> middleware);
  EditResult insert_after(std::string_view existing, std::shared_ptr<Middleware> middleware);
  EditResult remove(std::string_view existing);
  EditResult replace(std::string_view existing, std::shared_ptr<Middleware> middleware);
  EditResult enable(std::string_view existing);
  EditResult disable(std::string_view existing);
  void set_observers(std::vector<std::shared_ptr<Observer>> observers);

  using Lease = SnapshotCell<ChainSnapshot>::Lease;
  Lease acquire() const { return cell_.acquire(); }
  std::shared_ptr<const ChainSnapshot> current() const { return cell_.current(); }

 private:
  template <class Edit>
  EditResult edit(Edit&& change);

  std::string name_;
  std::mutex edit_mutex_;  // serializes writers; readers never take it
  std::vector<std::shared_ptr<Observer>> observers_;
  std::uint64_t next_version_ = 1;
  SnapshotCell<ChainSnapshot> cell_;
};

}  // namespace sluice
