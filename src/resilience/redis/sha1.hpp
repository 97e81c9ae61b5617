// sha1_hex — SHA-1 of a byte string as 40 lowercase hex digits; Redis names scripts by it, so
// EVALSHA can be sent before SCRIPT LOAD has answered.
//
//   std::string sha = sha1_hex("return 1");
//   client.execute({"EVALSHA", sha, "0"}, on_reply);
//   assert(sha == "e0e1f9fabfc9d4800c877a703b823ac0578ff8db");
#pragma once

#include <string>
#include <string_view>

namespace sluice::resilience::redis {

std::string sha1_hex(std::string_view data);

}  // namespace sluice::resilience::redis
