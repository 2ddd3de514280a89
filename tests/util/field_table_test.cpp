// Tests of the table of fields (src/util/field_table.h) on a small configuration of its own: one
// table reads, writes, lists, sets, compares and diffs every field, and every error names the key.
#include "util/field_table.h"

#include "support/test_support.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

namespace {

using pyramidion::detail::FieldTable;
using pyramidion::detail::json;
using pyramidion_test::error_of;

enum class Color { red, green };

struct Toy {
  int64_t count = 3;
  double rate = 0.5;
  bool on = true;
  std::string name = "toy";
  std::vector<int64_t> sizes = {1, 2};
  Color color = Color::red;
  uint64_t seed = 7;
};

const FieldTable<Toy>& table() {
  static const pyramidion::detail::EnumNames<Color> colors = {{Color::red, "red"}, {Color::green, "green"}};
  static const auto t = FieldTable<Toy>("Toy")
                            .add("count", &Toy::count, "how many", pyramidion::detail::kContinuation)
                            .add("rate", &Toy::rate, "how fast")
                            .add("on", &Toy::on, "whether")
                            .add("name", &Toy::name, "what", pyramidion::detail::kPathField)
                            .add("sizes", &Toy::sizes, "how big")
                            .add("color", &Toy::color, colors, "which", pyramidion::detail::kContinuation)
                            .add("seed", &Toy::seed, "from where");
  return t;
}

TEST(FieldTable, WritesEveryFieldInOrderAndReadsItBack) {
  Toy toy;
  toy.count = 9;
  toy.color = Color::green;
  toy.sizes = {};
  const auto written = table().write(toy);
  EXPECT_EQ(written.dump(), R"({"count":9,"rate":0.5,"on":true,"name":"toy","sizes":[],"color":"green","seed":7})");
  Toy back;
  table().read(json::parse(written.dump()), back);
  EXPECT_TRUE(table().equal(back, toy));
  EXPECT_FALSE(table().equal(back, Toy{}));
  Toy partial;  // absent keys keep their values
  table().read(json::parse(R"({"rate": 2})"), partial);
  EXPECT_EQ(partial.rate, 2);
  EXPECT_EQ(partial.count, 3);
}

TEST(FieldTable, ReadErrorsNameTheKey) {
  Toy toy;
  const auto read = [&](const std::string& text) {
    return error_of<std::invalid_argument>([&] { table().read(json::parse(text), toy); });
  };
  EXPECT_EQ(read(R"({"cuont": 1})"),
            "Toy: unknown key 'cuont' (did you mean 'count'?); known keys: count rate on name sizes color seed");
  EXPECT_EQ(read(R"({"count": 1.5})"), "Toy.count must be an integer, got 1.5 (number)");
  EXPECT_EQ(read(R"({"color": "blue"})"), "Toy.color = \"blue\" must be one of \"red\", \"green\"");
  EXPECT_EQ(read(R"({"seed": -1})"), "Toy.seed = -1 must be >= 0");
  EXPECT_EQ(read(R"([1])"), "Toy: the JSON must be an object of fields, got [1] (array)");
  EXPECT_EQ(error_of<std::invalid_argument>([&] {
              table().read(json::parse(R"({"x": 1})"), toy, "", {}, "Other");
            }).rfind("Other: unknown key 'x'", 0),
            0u);
}

TEST(FieldTable, SetTakesTextAsTheFieldsTypeSays) {
  Toy toy;
  table().set(toy, "name", "2024");  // a textual field keeps the text, though it looks like a number
  EXPECT_EQ(toy.name, "2024");
  table().set(toy, "count", "12");
  table().set(toy, "sizes", "[4, 5]");
  table().set(toy, "color", "green");
  EXPECT_EQ(toy.count, 12);
  EXPECT_EQ(toy.sizes, (std::vector<int64_t>{4, 5}));
  EXPECT_EQ(toy.color, Color::green);
  EXPECT_EQ(error_of<std::invalid_argument>([&] { table().set(toy, "rate", "fast"); }),
            "Toy.rate must be a number, got \"fast\" (string) (from 'rate=fast')");
}

TEST(FieldTable, HelpListsEveryFieldWithItsDefault) {
  const auto help = table().help(Toy{}, 20);
  // "  count = 3" padded to column 20, then two spaces and the help.
  EXPECT_EQ(help.substr(0, help.find('\n')), "  count = 3" + std::string(20 - 11 + 2, ' ') + "how many");
  for (const auto& name : table().names()) EXPECT_NE(help.find("  " + name + " = "), std::string::npos) << name;
  EXPECT_EQ(std::count(help.begin(), help.end(), '\n'), 7);
}

TEST(FieldTable, ChangesListOnlyTheFlaggedFieldsThatDiffer) {
  Toy before, after;
  after.count = 4;
  after.rate = 9;  // not flagged
  after.color = Color::green;
  const auto changes = table().changes(json::parse(table().write(before).dump()),
                                       json::parse(table().write(after).dump()), pyramidion::detail::kContinuation);
  EXPECT_EQ(changes, "count 3 -> 4, color \"red\" -> \"green\"");
  EXPECT_EQ(
      table().changes(json::parse("{}"), json::parse(table().write(after).dump()), pyramidion::detail::kContinuation),
      "")
      << "fields an older writer did not record are not compared";
}

}  // namespace
