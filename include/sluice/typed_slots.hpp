// sluice::TypedSlots — one value per C++ type: a private type is a private key. Used by the
// request Context (the seed's context.WithValue with an unexported key type) and by the
// gateway's shared services.
//
//   struct BreakerRegistry { ... };              // the type is the key
//   auto& r = slots.emplace<BreakerRegistry>();
//   if (auto* found = slots.get<BreakerRegistry>()) use(*found);
//
// A value's memory outlives the value: erase() and clear() destroy values but keep each type's
// block, and the next emplace of that type builds its value there. A request Context is cleared
// for every request of a connection, and the requests of a route emplace the same types each
// time (a rate limiter's and a breaker's per-request state), so after the first request they cost
// no allocation (≈ 200 instructions each for new and delete, callgrind). The blocks are freed
// with the slots: at most one per type ever stored here.
#pragma once

#include <cstddef>
#include <new>
#include <utility>
#include <vector>

namespace sluice {

class TypedSlots {
 public:
  TypedSlots() = default;
  TypedSlots(const TypedSlots&) = delete;
  TypedSlots& operator=(const TypedSlots&) = delete;
  ~TypedSlots() {
    clear();
    for (const Slot& s : slots_)
      s.release(s.block);
  }

  template <class T>
  T* get() const {
    for (const auto& s : slots_)
      if (s.key == key_of<T>()) return s.live ? static_cast<T*>(s.block) : nullptr;
    return nullptr;
  }
  template <class T, class... Args>
  T& emplace(Args&&... args) {
    Slot& s = slot_of<T>();
    if (s.live) {
      s.live = false;
      static_cast<T*>(s.block)->~T();
    }
    T* value = ::new (s.block) T(std::forward<Args>(args)...);  // throws: the slot stays empty
    s.live = true;
    s.order = ++emplaced_;
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
    for (auto& s : slots_) {
      if (s.key == key_of<T>()) {
        if (s.live) {
          s.live = false;
          s.destroy(s.block);
        }
        return;
      }
    }
  }
  // Destroys every value, the latest emplaced first (as a stack of values would).
  void clear() {
    while (true) {
      Slot* latest = nullptr;
      for (auto& s : slots_)
        if (s.live && (latest == nullptr || s.order > latest->order)) latest = &s;
      if (latest == nullptr) break;
      latest->live = false;
      latest->destroy(latest->block);
    }
    emplaced_ = 0;
  }

 private:
  struct Slot {
    const void* key;
    void* block;             // room for one value of the key's type
    void (*destroy)(void*);  // the value's destructor, the block stays
    void (*release)(void*);  // frees the block
    bool live;               // the block holds a value
    std::size_t order;       // when it was emplaced: clear() goes latest first
  };
  template <class T>
  static const void* key_of() {
    static const char key = 0;  // one address per type: the type is the key
    return &key;
  }
  // The slot of T, with a block allocated the first time.
  template <class T>
  Slot& slot_of() {
    for (auto& s : slots_)
      if (s.key == key_of<T>()) return s;
    void* block = ::operator new(sizeof(T), std::align_val_t(alignof(T)));
    try {
      slots_.push_back(Slot{key_of<T>(), block, [](void* p) { static_cast<T*>(p)->~T(); },
                            [](void* p) { ::operator delete(p, std::align_val_t(alignof(T))); },
                            false, 0});
    } catch (...) {
      ::operator delete(block, std::align_val_t(alignof(T)));
      throw;
    }
    return slots_.back();
  }
  std::vector<Slot> slots_;
  std::size_t emplaced_ = 0;
};

}  // namespace sluice
