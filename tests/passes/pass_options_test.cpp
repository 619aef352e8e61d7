// Declared pass options: what resolve_options accepts, how it spells values canonically, and
// the errors users see (unknown option with the nearest name, wrong type, out of range).
#include "passes/pass_options.h"

#include <catch2/catch.hpp>

#include "passes/registry.h"

namespace llmc {
namespace {

std::vector<OptionSpec> specs() {
  return {bool_option("per-tensor", false, "h"), int_option("bits", 4, 2, 8, "h"),
          float_option("alpha", "0.5", 0, 1, "h"), float_option("ratio", "", 0, 1, "h", /*min_open=*/true),
          choice_option("method", "rtn", {"rtn", "gptq"}, "h"), list_option("op-types", "MatMul", {"MatMul", "Gemm"}, "h"),
          string_option("exclude", "", "h")};
}

std::string error_of(const PassOptions& given) {
  auto r = resolve_options("demo", specs(), given);
  REQUIRE_FALSE(r.is_ok());
  return r.status().message();
}

TEST_CASE("resolve_options fills defaults and spells values one way", "[passes][options]") {
  auto r = resolve_options("demo", specs(), {{"alpha", ".50"}, {"per-tensor", "yes"}, {"op-types", " Gemm ,MatMul,Gemm"}});
  REQUIRE(r.is_ok());
  const PassOptions& o = *r;
  CHECK(o.at("alpha") == "0.5");
  CHECK(o.at("per-tensor") == "true");
  CHECK(o.at("op-types") == "Gemm,MatMul");
  CHECK(o.at("bits") == "4");
  CHECK(o.at("method") == "rtn");
  CHECK(o.count("ratio") == 0);    // no default: unset unless given
  CHECK(o.count("exclude") == 0);
  CHECK(option_double(o, "alpha", 0) == 0.5);
  CHECK(option_int(o, "bits", 0) == 4);
  CHECK(option_flag(o, "per-tensor"));
  // The same settings spelled differently resolve to the same bytes.
  CHECK(resolve_options("demo", specs(), {{"alpha", "5e-1"}, {"per-tensor", "1"}, {"op-types", "Gemm,MatMul"}}).value() == o);
}

TEST_CASE("resolve_options names the option and what it accepts", "[passes][options]") {
  CHECK(error_of({{"alpah", "1"}}) ==
        "pass 'demo': unknown option 'alpah' (did you mean 'alpha'?); options: per-tensor, bits, alpha, ratio, method, "
        "op-types, exclude");
  CHECK(error_of({{"zzzzzzzzzz", "1"}}).find("did you mean") == std::string::npos);
  CHECK(error_of({{"alpha", "1.5"}}) == "pass 'demo': option 'alpha' must be a number in [0, 1], got '1.5'");
  CHECK(error_of({{"alpha", "nan"}}).find("must be a number") != std::string::npos);
  CHECK(error_of({{"alpha", "0.5x"}}).find("must be a number") != std::string::npos);
  CHECK(error_of({{"ratio", "0"}}) == "pass 'demo': option 'ratio' must be a number in (0, 1], got '0'");
  CHECK(error_of({{"bits", "3.5"}}) == "pass 'demo': option 'bits' must be an integer in [2, 8], got '3.5'");
  CHECK(error_of({{"bits", "99999999999999999999"}}).find("integer") != std::string::npos);
  CHECK(error_of({{"per-tensor", "maybe"}}) == "pass 'demo': option 'per-tensor' must be a boolean (true or false), got 'maybe'");
  CHECK(error_of({{"method", "awq"}}) == "pass 'demo': option 'method' must be one of rtn|gptq, got 'awq'");
  CHECK(error_of({{"op-types", "MatMul,Conv"}}) == "pass 'demo': option 'op-types': 'Conv' is not one of MatMul, Gemm");
}

TEST_CASE("every registered pass declares valid defaults", "[passes][options]") {
  for (const auto& info : pass_catalog()) {
    INFO(info.name);
    auto r = resolve_pass_options(info.name, {});
    REQUIRE(r.is_ok());
    // Defaults are already canonical: resolving the resolved options changes nothing.
    CHECK(resolve_pass_options(info.name, *r).value() == *r);
    CHECK_FALSE(info.summary.empty());
    for (const auto& o : info.options) CHECK_FALSE(o.help.empty());
  }
  auto unknown = make_pass("smooth-quantt");
  REQUIRE_FALSE(unknown.is_ok());
  CHECK(unknown.status().message().find("did you mean 'smooth-quant'?") != std::string::npos);
}

}  // namespace
}  // namespace llmc
