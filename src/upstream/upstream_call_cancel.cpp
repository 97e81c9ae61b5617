// The client going away (Exchange::on_cancel) reaches the call while it tries, without an
// allocation per request. A callback holding a weak_ptr to the call, as it was, is one: a
// weak_ptr is not trivially copyable, so std::function does not keep it in its inline room
// (1 of the 1.07 allocations a proxied request made, docs/PERFORMANCE.md "cache22"). The callback
// holds the exchange instead, a plain pointer, and finds the call in a slot of the request's
// context. The call empties the slot when it stops trying (a cancellation has nothing to do
// after that) or dies, both while its Resume is unfired: the Resume holds the session, so the
// exchange and its context are still there.
#include "upstream/upstream_call.hpp"

namespace sluice::upstream {

// The context's slot: the call trying for this request, or none.
struct UpstreamCall::CancelTarget {
  UpstreamCall* call = nullptr;
};

namespace {

void cancel_target_of(Exchange* ex) {
  if (auto* target = ex->context().get<UpstreamCall::CancelTarget>(); target && target->call)
    target->call->cancel();
}

}  // namespace

void UpstreamCall::become_cancel_target() {
  CancelTarget* target = ex_->context().get<CancelTarget>();
  if (target == nullptr) {
    // The request's first call: its slot, and the one callback that reads it. A later call of
    // the same request (the first one done trying) takes the slot over.
    target = &ex_->context().emplace<CancelTarget>();
    ex_->on_cancel([ex = ex_] { cancel_target_of(ex); });
  }
  if (target->call == nullptr) {
    cancel_target_ = target;
    target->call = this;
    return;
  }
  // Another call already tries for this exchange (a handler making two calls; none does today):
  // this one keeps its own callback, which allocates.
  ex_->on_cancel([weak = weak_from_this()] {
    if (auto self = weak.lock()) self->cancel();
  });
}

// Through the slot's address, kept from become_cancel_target(): the context's list of slots is
// not read again (4 more data cache misses a request with 64 connections, callgrind --cache-sim).
// The value stays at that address for the request, which goes on while the call tries.
void UpstreamCall::leave_cancel_target() {
  if (cancel_target_ != nullptr && cancel_target_->call == this) cancel_target_->call = nullptr;
  cancel_target_ = nullptr;
}

}  // namespace sluice::upstream
