// ByteBuffer: a growable byte buffer whose appends are inline (a capacity check and a memcpy),
// for the observers' hot paths: span and access-log records on request threads, JSON on the
// background threads. std::string's append is an out-of-line call with more checks, and its
// resize() zero-fills; at a dozen appends per field and ~50 fields per request that showed up.
//
//   ByteBuffer out;
//   out += "{\"n\":";
//   out.append(digits, n);
//   write(fd, out.data(), out.size());
//   out.clear();                        // keeps the capacity for the next batch
#pragma once

#include <cstddef>
#include <cstring>
#include <memory>
#include <string_view>
#include <utility>

namespace sluice::observe {

class ByteBuffer {
 public:
  ByteBuffer() = default;
  ByteBuffer(ByteBuffer&& other) noexcept
      : data_(std::move(other.data_)),
        size_(std::exchange(other.size_, 0)),
        capacity_(std::exchange(other.capacity_, 0)) {}
  ByteBuffer& operator=(ByteBuffer&& other) noexcept {
    swap(other);
    return *this;
  }

  char* data() { return data_.get(); }
  const char* data() const { return data_.get(); }
  std::size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  std::size_t capacity() const { return capacity_; }
  std::string_view view() const { return {data_.get(), size_}; }

  void clear() { size_ = 0; }
  // Frees the memory (after a burst, so that one spike does not pin it forever).
  void release() {
    data_.reset();
    size_ = capacity_ = 0;
  }
  void reserve(std::size_t n) {
    if (n > capacity_) grow(n - size_);
  }
  // Shrinks to n <= size() bytes (drops what extend() over-reserved).
  void truncate(std::size_t n) { size_ = n; }
  // Appends n uninitialized bytes and returns where they start.
  char* extend(std::size_t n) {
    if (capacity_ - size_ < n) grow(n);
    char* p = data_.get() + size_;
    size_ += n;
    return p;
  }

  void append(const char* p, std::size_t n) {
    if (n != 0) std::memcpy(extend(n), p, n);
  }
  void append(std::string_view s) { append(s.data(), s.size()); }
  void push_back(char c) {
    if (size_ == capacity_) grow(1);
    data_[size_++] = c;
  }
  ByteBuffer& operator+=(char c) {
    push_back(c);
    return *this;
  }
  ByteBuffer& operator+=(std::string_view s) {
    append(s);
    return *this;
  }

  void swap(ByteBuffer& other) noexcept {
    std::swap(data_, other.data_);
    std::swap(size_, other.size_);
    std::swap(capacity_, other.capacity_);
  }

 private:
  // Room for `more` bytes after size_: at least doubles. Kept out of the inline fast paths.
  [[gnu::noinline]] void grow(std::size_t more) {
    std::size_t cap = capacity_ < 256 ? 256 : capacity_ * 2;
    while (cap - size_ < more)
      cap *= 2;
    auto fresh = std::make_unique_for_overwrite<char[]>(cap);
    if (size_ != 0) std::memcpy(fresh.get(), data_.get(), size_);
    data_ = std::move(fresh);
    capacity_ = cap;
  }

  std::unique_ptr<char[]> data_;
  std::size_t size_ = 0;
  std::size_t capacity_ = 0;
};

}  // namespace sluice::observe
