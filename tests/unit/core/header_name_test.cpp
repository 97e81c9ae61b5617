// HeaderName edits (core/header_name.hpp) against Beast's own set / erase / insert on the same
// messages: the headers and request_id middlewares and Request/Response::set_header use them,
// keeping new fields beside Beast's (core/extra_fields.hpp), and users must see the same fields,
// in the same order, with the same field codes — through the views, on the wire and in Beast.
#include "core/header_name.hpp"

#include <gtest/gtest.h>

#include <random>
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
std::vector<Field> fields_of(RequestMessage& m) {
  flush_extra_fields(m);
  return fields_of(static_cast<const Fields&>(m));
}

// What a reader of the view sees (names and values in order), without flushing.
std::vector<std::pair<std::string, std::string>> visited(RequestMessage& m) {
  std::vector<std::pair<std::string, std::string>> out;
  Request(m).visit_headers([&](std::string_view n, std::string_view v) {
    out.emplace_back(std::string(n), std::string(v));
  });
  return out;
}
std::vector<std::pair<std::string, std::string>> visited(const Fields& f) {
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& e : f)
    out.emplace_back(std::string(e.name_string()), std::string(e.value()));
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

// Random sequences of set / add / remove, through the edits and through the Request view, with
// names that Beast knows and names it does not (kept as extra fields, as Content-Type is), values
// with blanks to trim and long ones that do not fit the extra fields: after every step the view
// sees what Beast's own message shows, and Beast's fields after a flush are the same, in the same
// order.
TEST(HeaderName, RandomEditsMatchBeastThroughTheViewAndAfterAFlush) {
  const std::vector<std::string> names = {
      "X-Env", "x-env", "X-Request-Id", "Accept", "Host", "X-A", "x-b",          "X-C",
      "X-D",   "X-E",   "X-F",          "X-G",    "X-H",  "X-I", "Content-Type", "content-type"};
  const std::vector<std::string> values = {"v", " padded\t", "", std::string(200, 'l'),
                                           "a-request-id-0123456789abcdef"};
  std::mt19937 rng(20);
  for (int round = 0; round < 300; ++round) {
    RequestMessage ours = start();
    RequestMessage beasts = start();
    for (int step = 0; step < 20; ++step) {
      const std::string& name = names[rng() % names.size()];
      const std::string& value = values[rng() % values.size()];
      const auto op = rng() % 6;
      Request view(ours);
      switch (op) {
        case 0:
          set_field(ours, HeaderName(name), value);
          break;
        case 1:
          view.set_header(name, value);
          break;
        case 2:
          add_field(ours, HeaderName(name), value);
          break;
        case 3:
          view.add_header(name, value);
          break;
        case 4:
          remove_fields(ours, name);
          break;
        default:
          view.remove_header(name);
          break;
      }
      if (op < 2)
        beasts.set(name, value);
      else if (op < 4)
        beasts.insert(name, value);
      else
        beasts.erase(name);
      ASSERT_EQ(visited(ours), visited(static_cast<const Fields&>(beasts)))
          << "round " << round << " step " << step;
      for (const auto& n : names) {  // the first value in arrival order, as the view promises
        std::string first;
        bool found = false;
        for (const auto& e : beasts)
          if (!found && boost::beast::iequals(e.name_string(), n)) {
            first = std::string(e.value());
            found = true;
          }
        ASSERT_EQ(view.has_header(n), found) << n;
        ASSERT_EQ(view.header(n), first) << n;
      }
    }
    ASSERT_EQ(fields_of(ours), fields_of(beasts)) << "round " << round;
    EXPECT_TRUE(ours.extra.empty());
  }
}

TEST(HeaderName, NewUnknownNamesWaitBesideBeastsFieldsUntilFlushed) {
  RequestMessage m = start();
  Request view(m);
  set_field(view, HeaderName("X-Request-Id"), "abc");
  set_field(view, HeaderName("X-Bench"), " 1 ");
  EXPECT_EQ(m.extra.size(), 2u);  // not in Beast's tree yet
  EXPECT_EQ(m.find("X-Bench"), m.end());
  EXPECT_EQ(view.header("x-bench"), "1");               // trimmed, as Beast trims
  set_field(view, HeaderName("Accept"), "text/plain");  // a known name: Beast, after them
  EXPECT_TRUE(m.extra.empty());
  ASSERT_NE(m.find("X-Bench"), m.end());
  EXPECT_EQ(fields_of(m).back(), Field("Accept", "text/plain", http::field::accept));
}

// Spaces and tabs come off either end, one end alone included; other bytes at or below ' '
// (the fast path's test) stay, as in Beast.
TEST(HeaderName, TrimTakesSpacesAndTabsOffEitherEndOnly) {
  EXPECT_EQ(trim_value("1"), "1");
  EXPECT_EQ(trim_value(" 1"), "1");
  EXPECT_EQ(trim_value("1\t"), "1");
  EXPECT_EQ(trim_value("\t 1 2 \t"), "1 2");
  EXPECT_EQ(trim_value(" \t "), "");
  EXPECT_EQ(trim_value(""), "");
  EXPECT_EQ(trim_value("\r1\x01"), "\r1\x01");
  EXPECT_EQ(trim_value(" \x01 "), "\x01");
}

// An empty value (a default string_view: null data) is a field with an empty value, as in Beast.
// Under the sanitizer build this also checks that no null pointer reaches memcpy.
TEST(HeaderName, AnEmptyValueIsKeptAsAnEmptyField) {
  RequestMessage m = start();
  Request view(m);
  set_field(view, HeaderName("X-Empty"), std::string_view());
  EXPECT_TRUE(view.has_header("x-empty"));
  EXPECT_EQ(view.header("x-empty"), "");
  flush_extra_fields(m);
  ASSERT_NE(m.find("X-Empty"), m.end());
  EXPECT_EQ(m.find("X-Empty")->value(), "");
}

// Response::set_body sets Content-Type beside Beast's fields too: same order and values as
// Beast's set, through the view and after a flush.
TEST(HeaderName, SetBodyPutsContentTypeWhereBeastWould) {
  ResponseMessage ours;
  ResponseMessage beasts;
  Response view(ours);
  view.set_header("X-A", "1");
  beasts.set("X-A", "1");
  view.set_body("body", "text/plain");
  beasts.set(http::field::content_type, "text/plain");
  view.add_header("X-A", "2");
  beasts.insert("X-A", "2");
  view.set_body("json", " application/json ");
  beasts.set(http::field::content_type, " application/json ");
  std::vector<std::pair<std::string, std::string>> seen;
  view.visit_headers([&](std::string_view n, std::string_view v) {
    seen.emplace_back(std::string(n), std::string(v));
  });
  EXPECT_EQ(seen, (std::vector<std::pair<std::string, std::string>>{
                      {"X-A", "1"}, {"X-A", "2"}, {"Content-Type", "application/json"}}));
  EXPECT_EQ(view.header("content-type"), "application/json");
  flush_extra_fields(ours);
  std::vector<Field> a;
  std::vector<Field> b;
  for (const auto& e : ours)
    a.emplace_back(std::string(e.name_string()), std::string(e.value()), e.name());
  for (const auto& e : beasts)
    b.emplace_back(std::string(e.name_string()), std::string(e.value()), e.name());
  EXPECT_EQ(a, b);
  EXPECT_EQ(ours[http::field::content_type], "application/json");
}

}  // namespace
}  // namespace sluice::detail
