// RetiringPool<T, Totals> — objects with a background thread (OTLP exporters, access-log
// writers) shared across reloads by a settings key. A reload with unchanged settings gets the
// same object (no lost queue, no new thread); a replaced one is retired when the last config
// using it is released, and shut down (flushing) by reap() on the control-plane thread at the
// next config load or at exit — never on a worker. Totals adds up every object's counters,
// retired ones included, so metrics built from it never go backwards.
//
//   class ExporterPool : public RetiringPool<OtlpExporter, ExporterTotals> { ... };
//   auto e = pool.get(key, [&] { return new OtlpExporter(config); });
//   pool.reap();  // at the next load
//
// T needs shutdown() (idempotent; its destructor shuts down too); Totals needs
// add(const T&, bool with_queue).
#pragma once

#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace sluice::observe {

template <class T, class Totals>
class RetiringPool : public std::enable_shared_from_this<RetiringPool<T, Totals>> {
 public:
  RetiringPool() = default;
  RetiringPool(const RetiringPool&) = delete;
  RetiringPool& operator=(const RetiringPool&) = delete;
  virtual ~RetiringPool() { reap(); }

  // The live object for `key`, or a new one from make() (which returns a T*).
  template <class Make>
  std::shared_ptr<T> get(const std::string& key, Make make) {
    std::lock_guard lock(mu_);
    std::erase_if(live_, [](const auto& kv) { return kv.second.expired(); });
    for (const auto& [k, weak] : live_) {
      if (k != key) continue;
      if (auto found = weak.lock()) return found;
    }
    std::weak_ptr<RetiringPool> self = this->weak_from_this();
    std::shared_ptr<T> object(make(), [self](T* raw) {
      if (auto pool = self.lock()) {
        pool->retire(raw);
      } else {
        delete raw;  // the destructor shuts down (flushes) on its own
      }
    });
    live_.emplace_back(key, object);
    return object;
  }

  // Shuts down and frees retired objects; blocks up to their shutdown timeouts.
  void reap() {
    std::vector<std::unique_ptr<T>> done;
    {
      std::lock_guard lock(mu_);
      done.swap(retired_);
    }
    for (auto& object : done)
      object->shutdown();
    std::lock_guard lock(mu_);
    for (auto& object : done)
      finished_.add(*object, false);
  }

  // Counters of every object so far: finished, live and retired (queues only of the last two).
  Totals totals() const {
    std::lock_guard lock(mu_);
    Totals t = finished_;
    for (const auto& [key, weak] : live_) {
      if (auto object = weak.lock()) t.add(*object, true);
    }
    for (const auto& object : retired_)
      t.add(*object, true);
    return t;
  }

 private:
  void retire(T* object) {
    std::lock_guard lock(mu_);
    retired_.emplace_back(object);
  }

  mutable std::mutex mu_;
  std::vector<std::pair<std::string, std::weak_ptr<T>>> live_;
  std::vector<std::unique_ptr<T>> retired_;
  Totals finished_;  // objects already shut down
};

}  // namespace sluice::observe
