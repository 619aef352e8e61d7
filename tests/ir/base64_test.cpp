#include "formats/base64.h"

#include <catch2/catch.hpp>
#include <optional>
#include <random>
#include <string>

namespace llmc {
namespace {

TEST_CASE("base64 RFC 4648 test vectors", "[base64]") {
  const std::pair<std::string, std::string> vectors[] = {
      {"", ""},         {"f", "Zg=="},         {"fo", "Zm8="},         {"foo", "Zm9v"},
      {"foob", "Zm9vYg=="}, {"fooba", "Zm9vYmE="}, {"foobar", "Zm9vYmFy"},
  };
  for (const auto& [plain, encoded] : vectors) {
    INFO("plain '" << plain << "'");
    CHECK(base64_encode(plain) == encoded);
    const auto decoded = base64_decode(encoded);
    REQUIRE(decoded.has_value());
    CHECK(*decoded == plain);
  }
}

TEST_CASE("base64 round trips every byte value", "[base64]") {
  std::string all;
  for (int b = 0; b < 256; ++b) all += static_cast<char>(b);
  const std::string enc = base64_encode(all);
  CHECK(enc.size() == (all.size() + 2) / 3 * 4);
  const auto dec = base64_decode(enc);
  REQUIRE(dec.has_value());
  CHECK(*dec == all);
  // High bytes alone, as one-, two- and three-byte tails.
  for (const std::string& s : {std::string("\xff"), std::string("\xff\xfe"),
                              std::string("\xff\xfe\xfd"), std::string("\0\0", 2)}) {
    const auto d = base64_decode(base64_encode(s));
    REQUIRE(d.has_value());
    CHECK(*d == s);
  }
  CHECK(base64_encode(std::string("\xff\xff\xff")) == "////");
  CHECK(base64_encode(std::string("\xfb\xef\xbe")) == "++++");
}

TEST_CASE("base64 round trips lengths 0..10 (every padding case)", "[base64]") {
  std::mt19937 rng(1234);
  for (size_t len = 0; len <= 10; ++len) {
    for (int rep = 0; rep < 20; ++rep) {
      std::string s(len, '\0');
      for (auto& c : s) c = static_cast<char>(rng() & 0xff);
      const std::string enc = base64_encode(s);
      INFO("length " << len << " encoded '" << enc << "'");
      CHECK(enc.size() % 4 == 0);
      CHECK(enc.size() == (len + 2) / 3 * 4);
      const size_t pad = (3 - len % 3) % 3;
      size_t trailing = 0;
      while (trailing < enc.size() && enc[enc.size() - 1 - trailing] == '=') ++trailing;
      CHECK(trailing == pad);
      const auto dec = base64_decode(enc);
      REQUIRE(dec.has_value());
      CHECK(*dec == s);
    }
  }
}

TEST_CASE("base64_decode rejects malformed input", "[base64]") {
  SECTION("bad length") {
    CHECK_FALSE(base64_decode("Z").has_value());
    CHECK_FALSE(base64_decode("Zg").has_value());
    CHECK_FALSE(base64_decode("Zg=").has_value());
    CHECK_FALSE(base64_decode("Zm9vY").has_value());
    CHECK_FALSE(base64_decode("Zm9vYmFy=").has_value());
  }
  SECTION("bad character") {
    CHECK_FALSE(base64_decode("Zm9v!mFy").has_value());
    CHECK_FALSE(base64_decode("Zm9 ").has_value());
    CHECK_FALSE(base64_decode("Zm9\n").has_value());
    CHECK_FALSE(base64_decode("Zm-_").has_value());  // URL-safe alphabet is not accepted
    CHECK_FALSE(base64_decode(std::string("Zm9\0", 4)).has_value());
    CHECK_FALSE(base64_decode("Zm9\xc3").has_value());
  }
  SECTION("'=' in the middle") {
    CHECK_FALSE(base64_decode("Zg==Zm9v").has_value());
    CHECK_FALSE(base64_decode("Zm8=Zm9v").has_value());
    CHECK_FALSE(base64_decode("Zg=v").has_value());
    CHECK_FALSE(base64_decode("Z=9v").has_value());
    CHECK_FALSE(base64_decode("=m9v").has_value());
  }
  SECTION("too much padding") {
    CHECK_FALSE(base64_decode("Z===").has_value());
    CHECK_FALSE(base64_decode("====").has_value());
  }
}

}  // namespace
}  // namespace llmc
