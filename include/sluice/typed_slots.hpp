// sluice::TypedSlots — one value per C++ type: a private type is a private key. Used by the
// request Context (the seed's context.WithValue with an unexported key type) and by the
// gateway's shared services.
//
//   struct BreakerRegistry { ... };              // the type is the key
//   auto& r = slots.emplace<BreakerRegistry>();
//   if (auto* found = slots.get<BreakerRegistry>()) use(*found);
#pragma once

#include <utility>
#include <vector>

namespace sluice {

class TypedSlots {
 public:
  TypedSlots() = default;
  TypedSlots(const TypedSlots&) = delete;
  TypedSlots& operator=(const TypedSlots&) = delete;
  ~TypedSlots() { clear(); }

  template <class T>
  T* get() const {
    for (const auto& s : slots_)
      if (s.key == key_of<T>()) return static_cast<T*>(s.value);
    return nullptr;
  }
  template <class T, class... Args>
  T& emplace(Args&&... args) {
    erase<T>();
    T* value = new T(std::forward<Args>(args)...);
    slots_.push_back(Slot{key_of<T>(), value, [](void* p) { delete static_cast<T*>(p); }});
    return *value;
  }
  // The existing value, or a new one built from `args`.
  template <class T, class... Args>
  T& get_or_emplace(Args&&... args) {
    if (T* found = get<T>()) return *found;
    return emplace<T>(std::forward<Args>(args)...);
  }
  template <class T>
  void erase() {
    for (auto it = slots_.begin(); it != slots_.end(); ++it) {
      if (it->key == key_of<T>()) {
        it->destroy(it->value);
        slots_.erase(it);
        return;
      }
    }
  }
  void clear() {
    for (auto it = slots_.rbegin(); it != slots_.rend(); ++it)
      it->destroy(it->value);
    slots_.clear();
  }

 private:
  struct Slot {
    const void* key;
    void* value;
    void (*destroy)(void*);
  };
  template <class T>
  static const void* key_of() {
    static const char key = 0;  // one address per type: the type is the key
    return &key;
  }
  std::vector<Slot> slots_;
};

}  // namespace sluice
