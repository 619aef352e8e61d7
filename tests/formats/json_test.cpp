#include "formats/json.h"

#include <catch2/catch.hpp>
#include <cmath>
#include <limits>
#include <string>

#include "tests/support/test_data.h"

namespace llmc {
namespace {

JsonValue parse_ok(const std::string& text) {
  auto r = parse_json(text, "doc.json");
  INFO(text);
  if (!r.is_ok()) FAIL(r.status().message());
  return std::move(r).value();
}

// The message of a parse that must fail.
std::string parse_error(const std::string& text) {
  auto r = parse_json(text, "doc.json");
  INFO(text);
  REQUIRE_FALSE(r.is_ok());
  CHECK(r.status().code() == StatusCode::kInvalidInput);
  return r.status().message();
}

// Fails unless parsing `text` reports `what` at exactly line/column.
void expect_error_at(const std::string& text, int line, int column, const std::string& what) {
  const std::string message = parse_error(text);
  INFO(message);
  const std::string where = "doc.json: line " + std::to_string(line) + ", column " +
                            std::to_string(column) + ": ";
  CHECK(message.rfind(where, 0) == 0);
  CHECK(message.find(what) != std::string::npos);
}

TEST_CASE("json parses every kind of value and keeps object members in file order", "[json]") {
  const JsonValue v = parse_ok(
      " {\"name\": \"bert\", \"layers\": 6, \"ratio\": -0.5e1, \"on\": true, \"off\": false,\r\n"
      "\t\"none\": null, \"dims\": [384, [], {}], \"nested\": {\"a\": [1, {\"b\": \"c\"}]}} \n");
  REQUIRE(v.is_object());
  REQUIRE(v.as_object().size() == 8);
  CHECK(v.as_object()[0].first == "name");
  CHECK(v.as_object()[7].first == "nested");
  CHECK(v.find("name")->as_string() == "bert");
  CHECK(v.find("layers")->as_int() == 6);
  CHECK(v.find("ratio")->as_double() == -5.0);
  CHECK(v.find("ratio")->as_int() == std::nullopt);
  CHECK(v.find("on")->as_bool());
  CHECK(v.find("off")->is_bool());
  CHECK_FALSE(v.find("off")->as_bool());
  CHECK(v.find("none")->is_null());
  const auto& dims = v.find("dims")->as_array();
  REQUIRE(dims.size() == 3);
  CHECK(dims[1].is_array());
  CHECK(dims[1].as_array().empty());
  CHECK(dims[2].is_object());
  CHECK(v.find("nested")->find("a")->as_array()[1].find("b")->as_string() == "c");
  CHECK(v.find("missing") == nullptr);
  CHECK(dims[0].find("x") == nullptr);  // not an object

  // Any value may be the whole document (RFC 8259, unlike RFC 4627).
  CHECK(parse_ok("42").as_int() == 42);
  CHECK(parse_ok("\"s\"").as_string() == "s");
  CHECK(parse_ok(" null ").is_null());
}

TEST_CASE("json numbers follow the grammar, keep their text, and convert exactly", "[json]") {
  CHECK(parse_ok("0").as_int() == 0);
  CHECK(parse_ok("-0").as_int() == 0);
  CHECK(parse_ok("1.5").as_double() == 1.5);
  CHECK(parse_ok("1.5").as_int() == std::nullopt);
  CHECK(parse_ok("1E2").as_double() == 100.0);
  CHECK(parse_ok("1e+2").as_int() == std::nullopt);  // written as a float
  CHECK(parse_ok("2.5e-3").as_double() == 0.0025);
  CHECK(parse_ok("0.1").as_double() == 0.1);
  CHECK(parse_ok("1e999").as_double() == std::numeric_limits<double>::infinity());
  CHECK(parse_ok("-1e999").as_double() == -std::numeric_limits<double>::infinity());
  CHECK(parse_ok("1e-999").as_double() == 0.0);

  // Integers at the edges of int64: 2^63 - 1 fits, 2^63 does not, -2^63 does.
  CHECK(parse_ok("9223372036854775807").as_int() == std::numeric_limits<int64_t>::max());
  CHECK(parse_ok("9223372036854775808").as_int() == std::nullopt);
  CHECK(parse_ok("9223372036854775808").as_double() == 9223372036854775808.0);
  CHECK(parse_ok("-9223372036854775808").as_int() == std::numeric_limits<int64_t>::min());
  CHECK(parse_ok("-9223372036854775809").as_int() == std::nullopt);
  CHECK(parse_ok("123456789012345678901234567890").as_int() == std::nullopt);

  // Non-numbers answer with zero values.
  CHECK(parse_ok("\"12\"").as_int() == std::nullopt);
  CHECK(parse_ok("true").as_double() == 0.0);

  for (const char* bad : {"01", "-", "-a", "1.", ".5", "1e", "1e+", "+1", "1.e5", "0x10", "NaN",
                          "Infinity", "-01"}) {
    INFO(bad);
    const std::string message = parse_error(bad);
    CHECK(message.rfind("doc.json: line 1, column ", 0) == 0);
  }
  expect_error_at("[1, 01]", 1, 5, "leading zero");
  expect_error_at("[1.]", 1, 4, "after the decimal point");
}

TEST_CASE("json strings decode every escape and surrogate pair, and lone surrogates fail", "[json]") {
  CHECK(parse_ok(R"("\" \\ \/ \b \f \n \r \t")").as_string() == "\" \\ / \b \f \n \r \t");
  CHECK(parse_ok(R"("\u0041\u00e9\u20AC")").as_string() == "A\xC3\xA9\xE2\x82\xAC");
  CHECK(parse_ok(R"("\u0000")").as_string() == std::string(1, '\0'));
  CHECK(parse_ok(R"("\ud83d\ude00")").as_string() == "\xF0\x9F\x98\x80");  // U+1F600
  CHECK(parse_ok(R"("\uDBFF\uDFFF")").as_string() == "\xF4\x8F\xBF\xBF");  // U+10FFFF
  CHECK(parse_ok("\"\xF0\x9F\x98\x80 raw UTF-8 \xC3\xA9\"").as_string() ==
        "\xF0\x9F\x98\x80 raw UTF-8 \xC3\xA9");

  expect_error_at(R"(["\ud83d"])", 1, 3, "lone high surrogate");
  expect_error_at(R"(["\ud83dx"])", 1, 3, "lone high surrogate");
  expect_error_at(R"(["\ud83d\u0041"])", 1, 3, "lone high surrogate");
  expect_error_at(R"(["ab\ude00"])", 1, 5, "lone low surrogate");
  expect_error_at(R"(["\u12G4"])", 1, 3, "four hex digits");
  expect_error_at(R"(["\x"])", 1, 3, "invalid escape");
}

TEST_CASE("json errors name the source, line and column of each kind of fault", "[json]") {
  SECTION("unexpected end") {
    expect_error_at("", 1, 1, "unexpected end");
    expect_error_at("{\"a\": [1, 2", 1, 12, "unexpected end");
    expect_error_at("{\"a\":\n  \"unterminated", 2, 16, "unexpected end");
    expect_error_at("{\"a\"", 1, 5, "unexpected end");
    expect_error_at("[\"\\u12", 1, 7, "unexpected end");
  }
  SECTION("trailing bytes") {
    expect_error_at("{} x", 1, 4, "trailing bytes");
    expect_error_at("[1]\n\n ]", 3, 2, "trailing bytes");
    expect_error_at("1 2", 1, 3, "trailing bytes");
  }
  SECTION("bad tokens") {
    expect_error_at("[1, @]", 1, 5, "unexpected '@'");
    expect_error_at("[1 2]", 1, 4, "expected ',' or ']'");
    expect_error_at("[1,]", 1, 4, "where a value was expected");
    expect_error_at("{\"a\" 1}", 1, 6, "expected ':'");
    expect_error_at("{\"a\": 1,}", 1, 9, "expected a string key");
    expect_error_at("{'a': 1}", 1, 2, "expected a string key");
    expect_error_at("{\"a\": 1 \"b\": 2}", 1, 9, "expected ',' or '}'");
    expect_error_at("[tru]", 1, 2, "invalid literal");
    expect_error_at("[nul", 1, 2, "invalid literal");
    expect_error_at("\xEF\xBB\xBF{}", 1, 1, "byte 0xef");  // a byte-order mark is not JSON
  }
  SECTION("invalid UTF-8 in strings") {
    expect_error_at("[\"ok\", \"a\xFF\"]", 1, 10, "invalid UTF-8");
    expect_error_at("\"\xC0\xAF\"", 1, 2, "invalid UTF-8");          // overlong '/'
    expect_error_at("\"\xED\xA0\x80\"", 1, 2, "invalid UTF-8");      // encoded surrogate
    expect_error_at("\"\xF4\x90\x80\x80\"", 1, 2, "invalid UTF-8");  // above U+10FFFF
    expect_error_at("\"\xE2\x82\"", 1, 2, "invalid UTF-8");          // truncated sequence
    expect_error_at("\"\x80\"", 1, 2, "invalid UTF-8");              // stray continuation
  }
  SECTION("control characters in strings") {
    expect_error_at("[\n \"a\tb\"]", 2, 4, "control character");
    expect_error_at("\"line\nbreak\"", 1, 6, "control character");
    expect_error_at(std::string("\"nul\0\"", 6), 1, 5, "control character");
  }
  SECTION("nesting deeper than 256") {
    parse_ok(std::string(256, '[') + std::string(256, ']'));
    expect_error_at(std::string(257, '[') + std::string(257, ']'), 1, 257, "deeper than 256");
    std::string objects;
    for (int i = 0; i < 257; ++i) objects += "{\"k\":";
    expect_error_at(objects, 1, 5 * 256 + 1, "deeper than 256");
  }
  SECTION("duplicate keys in one object") {
    expect_error_at("{\"a\": 1,\n \"a\": 2}", 2, 2, "duplicate key \"a\"");
    // Same key in different objects is fine.
    parse_ok("[{\"a\": 1}, {\"a\": 2, \"b\": {\"a\": 3}}]");
    // A large object goes through the hashed check.
    std::string big = "{";
    for (int i = 0; i < 100; ++i) big += "\"k" + std::to_string(i) + "\": " + std::to_string(i) + ",";
    parse_ok(big + "\"last\": 0}");
    expect_error_at(big + "\"k42\": 0}", 1, static_cast<int>(big.size()) + 1, "duplicate key \"k42\"");
    // Keys compare after decoding escapes.
    expect_error_at("{\"a\": 1, \"\\u0061\": 2}", 1, 10, "duplicate key \"a\"");
  }
}

TEST_CASE("json deep-nesting bomb gives an error, not a stack overflow", "[json]") {
  const std::string bomb(100000, '[');
  const std::string message = parse_error(bomb);
  CHECK(message == "doc.json: line 1, column 257: nesting deeper than 256 arrays/objects");
}

TEST_CASE("json_quote escapes what it must and round trips through the parser", "[json]") {
  CHECK(json_quote("plain") == "\"plain\"");
  CHECK(json_quote("a\"b\\c") == R"("a\"b\\c")");
  CHECK(json_quote("\n\t\r\b\f") == R"("\n\t\r\b\f")");
  CHECK(json_quote(std::string("\0\x01\x1f", 3)) == R"("\u0000\u0001\u001f")");
  CHECK(json_quote("caf\xC3\xA9 \xF0\x9F\x98\x80") == "\"caf\xC3\xA9 \xF0\x9F\x98\x80\"");
  // Bytes that are not UTF-8 show as U+00XX, so the output is always valid JSON.
  CHECK(json_quote("a\xFF" "b\xC3") == R"("a\u00ffb\u00c3")");
  CHECK(parse_ok(json_quote("\xFF")).as_string() == "\xC3\xBF");

  std::string every_ascii;
  for (int c = 0; c < 0x80; ++c) every_ascii += static_cast<char>(c);
  for (const std::string& s :
       {every_ascii, std::string(), std::string("\xE2\x82\xAC\xF4\x8F\xBF\xBF\xC2\x80 / \x7F"),
        std::string("{\"key\": [1, 2]}")}) {
    CHECK(parse_ok(json_quote(s)).as_string() == s);
    std::string object = "{";
    object += json_quote(s);
    object += ": 1}";
    CHECK(parse_ok(object).as_object()[0].first == s);
  }
}

TEST_CASE("json parses a multi-megabyte vocabulary in one pass", "[json]") {
  // Shaped like a big BPE tokenizer.json: ~200k keys in one object, then a merges list.
  std::string text = "{\"model\": {\"vocab\": {";
  constexpr int kTokens = 200000;
  for (int i = 0; i < kTokens; ++i)
    text += (i ? ",\"tok" : "\"tok") + std::to_string(i) + "\\u0120\": " + std::to_string(i);
  text += "}, \"merges\": [";
  for (int i = 0; i < kTokens; ++i) text += (i ? ",\"a" : "\"a") + std::to_string(i) + " b\"";
  text += "]}}";
  REQUIRE(text.size() > 5'000'000);
  const JsonValue v = parse_ok(text);
  const auto& vocab = v.find("model")->find("vocab")->as_object();
  REQUIRE(vocab.size() == kTokens);
  CHECK(vocab[123456].first == "tok123456\xC4\xA0");
  CHECK(vocab[123456].second.as_int() == 123456);
  CHECK(v.find("model")->find("merges")->as_array().size() == kTokens);
}

TEST_CASE("json parses the real all-MiniLM-L6-v2 tokenizer.json like Python does", "[json]") {
  const std::string path = testing::model_path(std::string(testing::kMiniLmDir) + "/tokenizer.json");
  if (path.empty()) return;
  const std::string python = testing::venv_python();
  if (python.empty()) return;
  const auto py = testing::run_shell(
      testing::shell_quote(python) + " -c " +
      testing::shell_quote("import json,sys; d=json.load(open(sys.argv[1], encoding='utf-8')); "
                           "v=d['model']['vocab']; print(len(v), v['[UNK]'], v['##ing'])") +
      " " + testing::shell_quote(path));
  REQUIRE(py.exit_code == 0);

  auto parsed = parse_json(testing::read_text(path), path);
  REQUIRE(parsed.is_ok());
  const JsonValue* vocab = parsed->find("model") ? parsed->find("model")->find("vocab") : nullptr;
  REQUIRE(vocab != nullptr);
  REQUIRE(vocab->is_object());
  const auto unk = vocab->find("[UNK]")->as_int();
  const auto ing = vocab->find("##ing")->as_int();
  REQUIRE(unk.has_value());
  REQUIRE(ing.has_value());
  CHECK(py.output == std::to_string(vocab->as_object().size()) + " " + std::to_string(*unk) + " " +
                         std::to_string(*ing) + "\n");
  CHECK(vocab->as_object().size() == 30522);
  CHECK(parsed->find("model")->find("type")->as_string() == "WordPiece");
}

}  // namespace
}  // namespace llmc
