// The int8 artifacts of stories260K run in ONNX Runtime, and ORT's logits match ours. Our
// Session fuses both patterns into one integer step (dynamic: DynamicQuantizeMatMul; static
// QDQ: MatMulIntegerToFloat); ORT applies its own optimizer to the same files.
#include <catch2/catch.hpp>

#include "passes/registry.h"
#include "tests/support/pass_fixtures.h"
#include "tests/support/test_data.h"

using namespace llmc;
using namespace llmc::testing;

TEST_CASE("int8-dynamic and int8-static stories260K: ONNX Runtime logits equal ours within 1e-3 relative",
          "[passes][quantize][ort]") {
  StoriesFixture s;
  if (!load_stories(s, 4, 64)) return;
  for (const char* pass_name : {"quantize-int8-dynamic", "quantize-int8-static"}) {
    INFO(pass_name);
    Model m = s.model;
    const PassOptions options = cpu_has_vnni() ? PassOptions{} : PassOptions{{"reduce-range", "true"}};
    REQUIRE(run_named_pass(pass_name, m, options, &s.calib.samples).is_ok());
    const double gap = ort_relative_gap(m, std::string("int8_ort_") + pass_name);
    if (gap < 0) return;
    CHECK(gap < 1e-3);
  }
}
