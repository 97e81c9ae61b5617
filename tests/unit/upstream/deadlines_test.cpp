// Deadlines: entries fire in deadline order on the io_context, removed ones never, an entry may
// add itself again from its fire, the Asio timer moves only for an earlier deadline, and the
// io_context's end unlinks what is left.
#include "upstream/deadlines.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

namespace sluice::upstream {
namespace {

using namespace std::chrono_literals;

struct Probe {
  Deadlines::Entry entry;
  std::string name;
  std::vector<std::string>* fired = nullptr;
  int again = 0;  // times to add itself again from its fire, 5 ms later
  int* drops = nullptr;
  Deadlines* list = nullptr;
  Probe(std::string n, std::vector<std::string>& log, Deadlines& d)
      : name(std::move(n)), fired(&log), list(&d) {
    entry.owner = this;
    entry.fire = [](Deadlines::Entry& e) {
      auto* p = static_cast<Probe*>(e.owner);
      EXPECT_FALSE(e.linked) << "an entry leaves the list before it fires";
      p->fired->push_back(p->name);
      if (p->again-- > 0) p->list->add(e, detail::steady_now() + 5ms);
    };
  }
};

TEST(Deadlines, FireInDeadlineOrderAndRemovedOnesNever) {
  boost::asio::io_context io(1);
  Deadlines& d = Deadlines::of(io);
  std::vector<std::string> fired;
  Probe a("a", fired, d), b("b", fired, d), c("c", fired, d), e("e", fired, d),
      gone("gone", fired, d);
  const auto t0 = detail::steady_now();
  d.add(c.entry, t0 + 30ms);
  d.add(a.entry, t0 + 10ms);
  d.add(gone.entry, t0 + 15ms);
  d.add(b.entry, t0 + 20ms);
  d.add(e.entry, t0 + 20ms);  // equal deadlines: in the order added
  d.remove(gone.entry);
  d.remove(gone.entry);  // removing twice is harmless
  io.run_for(1s);
  EXPECT_EQ(fired, (std::vector<std::string>{"a", "b", "e", "c"}));
  EXPECT_GE(detail::steady_now() - t0, 30ms);
  EXPECT_TRUE(d.empty());
}

TEST(Deadlines, AnEntryDueNowOrInThePastFiresAtOnce) {
  boost::asio::io_context io(1);
  Deadlines& d = Deadlines::of(io);
  std::vector<std::string> fired;
  Probe p("past", fired, d);
  d.add(p.entry, detail::steady_now() - 1s);
  io.run_for(200ms);
  EXPECT_EQ(fired, std::vector<std::string>{"past"});
}

TEST(Deadlines, LaterDeadlinesLeaveTheTimerAndAnEarlierOneMovesIt) {
  boost::asio::io_context io(1);
  Deadlines& d = Deadlines::of(io);
  std::vector<std::string> fired;
  std::vector<std::unique_ptr<Probe>> probes;
  const auto t0 = detail::steady_now();
  // As requests do: each one's deadline a little later than the last, most removed early.
  for (int i = 0; i < 100; ++i) {
    probes.push_back(std::make_unique<Probe>("p" + std::to_string(i), fired, d));
    d.add(probes.back()->entry, t0 + 60ms + std::chrono::microseconds(i));
    if (i % 10 != 9) d.remove(probes.back()->entry);
  }
  EXPECT_EQ(d.arms(), 1u) << "only the first deadline set the Asio timer";
  Probe early("early", fired, d);
  d.add(early.entry, t0 + 20ms);
  EXPECT_EQ(d.arms(), 2u);
  io.run_for(1s);
  ASSERT_EQ(fired.size(), 11u);
  EXPECT_EQ(fired.front(), "early");
  EXPECT_EQ(fired[1], "p9");
  EXPECT_EQ(fired.back(), "p99");
}

TEST(Deadlines, AnEntryMayAddItselfAgainFromItsFire) {
  boost::asio::io_context io(1);
  Deadlines& d = Deadlines::of(io);
  std::vector<std::string> fired;
  Probe p("p", fired, d);
  p.again = 2;
  d.add(p.entry, detail::steady_now() + 5ms);
  io.run_for(1s);
  EXPECT_EQ(fired.size(), 3u);
  EXPECT_FALSE(p.entry.linked);
}

TEST(Deadlines, TheIoContextsEndUnlinksWhatIsLeft) {
  std::vector<std::string> fired;
  auto io = std::make_unique<boost::asio::io_context>(1);
  Deadlines& d = Deadlines::of(*io);
  Probe p("p", fired, d), q("q", fired, d);
  d.add(p.entry, detail::steady_now() + 1h);
  d.add(q.entry, detail::steady_now() + 2h);
  int dropped = 0;
  p.entry.drop = [](Deadlines::Entry& e) { ++*static_cast<Probe*>(e.owner)->drops; };
  p.drops = &dropped;
  io.reset();
  EXPECT_FALSE(p.entry.linked);
  EXPECT_FALSE(q.entry.linked);
  EXPECT_TRUE(fired.empty());
  EXPECT_EQ(dropped, 1) << "an entry left at the end is handed to its owner's drop, once";
  // Another io_context on this thread gets its own list (the per-thread lookup is not stale).
  boost::asio::io_context other(1);
  Deadlines& d2 = Deadlines::of(other);
  Probe r("r", fired, d2);
  d2.add(r.entry, detail::steady_now());
  other.run_for(200ms);
  EXPECT_EQ(fired, std::vector<std::string>{"r"});
}

}  // namespace
}  // namespace sluice::upstream
