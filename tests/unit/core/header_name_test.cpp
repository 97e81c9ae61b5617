// HeaderName edits (core/header_name.hpp) against Beast's own set / erase / insert on the same
// messages: the headers and request_id middlewares switched to them, and users must see the
// same fields, in the same order, with the same field codes.
#include "core/header_name.hpp"

#include <gtest/gtest.h>

#include <string>
#include <tuple>
#include <vector>

namespace sluice::detail {
namespace {

using Field = std::tuple<std::string, std::string, http::field>;

std::vector<Field> fields_of(const Fields& f) {
  std::vector<Field> out;
  for (const auto& e : f)
    out.emplace_back(std::string(e.name_string()), std::string(e.value()), e.name());
  return out;
}

// The message a test starts from: known and unknown names, a repeated one, mixed case.
RequestMessage start() {
  RequestMessage m;
  m.insert("Host", "example");
  m.insert("x-env", "one");
  m.insert("Accept", "*/*");
  m.insert("X-ENV", "two");
  m.insert("Cookie", "a=1");
  return m;
}

TEST(HeaderName, ResolvesKnownNamesToTheirFieldCode) {
  EXPECT_EQ(HeaderName("Content-Type").code, http::field::content_type);
  EXPECT_EQ(HeaderName("x-request-id").code, http::string_to_field("X-Request-Id"));
  EXPECT_EQ(HeaderName("X-Bench").code, http::field::unknown);
}

TEST(HeaderName, SetReplacesEveryFieldOfThatNameAsBeastDoes) {
  for (const std::string name : {"X-Env", "x-env", "Host", "Cookie", "X-New", "Content-Type"}) {
    RequestMessage ours = start();
    RequestMessage beasts = start();
    set_field(ours, HeaderName(name), "v");
    beasts.set(name, "v");
    EXPECT_EQ(fields_of(ours), fields_of(beasts)) << name;
    EXPECT_EQ(ours[name], "v") << name;
    EXPECT_EQ(ours.count(name), 1u) << name;
  }
}

TEST(HeaderName, RemoveAndAddMatchBeastsEraseAndInsert) {
  for (const std::string name : {"X-ENV", "accept", "Missing"}) {
    RequestMessage ours = start();
    RequestMessage beasts = start();
    remove_fields(ours, name);
    beasts.erase(name);
    EXPECT_EQ(fields_of(ours), fields_of(beasts)) << name;
    add_field(ours, HeaderName(name), "added");
    beasts.insert(name, "added");
    EXPECT_EQ(fields_of(ours), fields_of(beasts)) << name;
    // Beast's own lookup (its tree) finds the added field by either case.
    EXPECT_NE(ours.find(name), ours.end()) << name;
  }
}

}  // namespace
}  // namespace sluice::detail
