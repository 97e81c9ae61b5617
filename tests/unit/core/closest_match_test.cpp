// closest_match (core/config_errors.hpp), the "did you mean ...?" of config errors: the
// closest candidate within max(2, length / 3) edits, the first of equally close ones, or none.
// Its edit distance stops early once a candidate cannot beat the best so far (a length
// difference, or a row of the table already too far); the answers are checked here against the
// full table on random words, including long ones and ones of other lengths.
#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "core/config_errors.hpp"

namespace sluice {
namespace {

// The full Levenshtein table, no shortcut.
std::size_t full_distance(std::string_view a, std::string_view b) {
  std::vector<std::vector<std::size_t>> t(a.size() + 1, std::vector<std::size_t>(b.size() + 1));
  for (std::size_t i = 0; i <= a.size(); ++i)
    t[i][0] = i;
  for (std::size_t j = 0; j <= b.size(); ++j)
    t[0][j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i)
    for (std::size_t j = 1; j <= b.size(); ++j)
      t[i][j] = std::min(
          {t[i - 1][j] + 1, t[i][j - 1] + 1, t[i - 1][j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)});
  return t[a.size()][b.size()];
}

std::string reference_closest(std::string_view word, const std::vector<std::string>& candidates) {
  std::string best;
  std::size_t best_distance = std::max<std::size_t>(2, word.size() / 3) + 1;
  for (const auto& c : candidates) {
    const std::size_t d = full_distance(word, c);
    if (d < best_distance) {
      best_distance = d;
      best = c;
    }
  }
  return best;
}

TEST(ClosestMatch, NamesTheNearestKnownKeyOrNone) {
  const std::vector<std::string> keys{"listen", "workers", "drain_timeout_ms", "routes"};
  EXPECT_EQ(closest_match("lisen", keys), "listen");
  EXPECT_EQ(closest_match("drain_timeout", keys), "drain_timeout_ms");  // 3 edits, limit 5
  EXPECT_EQ(closest_match("wrkers", keys), "workers");
  EXPECT_EQ(closest_match("zzzzzz", keys), "");
  EXPECT_EQ(closest_match("", keys), "");  // every key is more than 2 edits away
  EXPECT_EQ(closest_match(std::string(5000, 'r'), keys), "");
  // Equally close: the first wins.
  EXPECT_EQ(closest_match("ab", {"xb", "ay"}), "xb");
  EXPECT_EQ(did_you_mean("lisen", keys), " (did you mean \"listen\"?)");
  EXPECT_EQ(did_you_mean("zzzzzz", keys), "");
}

TEST(ClosestMatch, AgreesWithTheFullTableOnRandomWords) {
  std::mt19937 rng(16);
  auto word = [&](std::size_t max_len) {
    std::string w(std::uniform_int_distribution<std::size_t>(0, max_len)(rng), 'a');
    for (auto& ch : w)
      ch = "abcde_"[std::uniform_int_distribution<int>(0, 5)(rng)];  // small alphabet: near words
    return w;
  };
  for (int round = 0; round < 3000; ++round) {
    std::vector<std::string> candidates;
    const int n = std::uniform_int_distribution<int>(0, 12)(rng);
    for (int i = 0; i < n; ++i)
      candidates.push_back(word(round % 3 == 0 ? 40 : 10));
    // A word near one candidate (a few edits) as often as an unrelated one.
    std::string w = word(round % 5 == 0 ? 60 : 12);
    if (!candidates.empty() && round % 2 == 0) {
      w = candidates[static_cast<std::size_t>(round) % candidates.size()];
      for (int e = std::uniform_int_distribution<int>(0, 4)(rng); e > 0 && !w.empty(); --e)
        w[std::uniform_int_distribution<std::size_t>(0, w.size() - 1)(rng)] = 'x';
    }
    ASSERT_EQ(closest_match(w, candidates), reference_closest(w, candidates))
        << "word \"" << w << "\", round " << round;
  }
}

}  // namespace
}  // namespace sluice
