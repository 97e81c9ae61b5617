// ResetConnection — a Context typed slot that asks the server to drop the connection with a TCP
// reset (SO_LINGER 0) instead of writing the response; the fault middleware's `abort: reset`.
//
//   ex.context().emplace<server::ResetConnection>();
//   return ex.answer_error(444, "fault_reset", "...");  // for observers only; never written
#pragma once

namespace sluice::server {

struct ResetConnection {};

}  // namespace sluice::server
