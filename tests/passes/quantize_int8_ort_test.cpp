// The int8 artifacts of stories260K run in ONNX Runtime, and ORT's logits match ours. Our
// Session fuses both patterns into one integer step (dynamic: DynamicQuantizeMatMul; static
// QDQ: MatMulIntegerToFloat); ORT applies its own optimizer to the same files.
#include <catch2/catch.hpp>
#include <cmath>

#include "formats/npy.h"
#include "formats/onnx_format.h"
#include "passes/registry.h"
#include "runtime/decoder.h"
#include "tests/support/pass_fixtures.h"
#include "tests/support/test_data.h"

using namespace llmc;
using namespace llmc::testing;

TEST_CASE("int8-dynamic and int8-static stories260K: ONNX Runtime logits equal ours within 1e-3 relative",
          "[passes][quantize][ort]") {
  StoriesFixture s;
  if (!load_stories(s, 4, 64)) return;
  const std::string py = venv_python();
  if (py.empty()) return;
  for (const char* pass_name : {"quantize-int8-dynamic", "quantize-int8-static"}) {
    INFO(pass_name);
    Model m = s.model;
    const PassOptions options = cpu_has_vnni() ? PassOptions{} : PassOptions{{"reduce-range", "true"}};
    REQUIRE(run_named_pass(pass_name, m, options, &s.calib.samples).is_ok());
    const std::string dir = scratch_dir(std::string("int8_ort_") + pass_name);
    REQUIRE(write_onnx(m, dir + "/q.onnx").is_ok());

    std::vector<int32_t> tokens{1, 403, 407, 261, 378, 300, 281, 400, 290, 330, 350, 270, 411, 262, 299, 500, 17, 42};
    auto session = rt::Session::create(std::make_shared<const Model>(std::move(m)), {2});
    REQUIRE(session.is_ok());
    auto decoder = rt::Decoder::create(std::shared_ptr<rt::Session>(std::move(session).value()));
    REQUIRE(decoder.is_ok());
    auto ours = decoder.value()->forward_fresh(tokens);
    REQUIRE(ours.is_ok());

    std::vector<int64_t> ids(tokens.begin(), tokens.end());
    REQUIRE(write_npy(dir + "/ids.npy", Tensor::from_vector("ids", DType::kI64, {1, int64_t(ids.size())}, ids)).is_ok());
    REQUIRE(write_npy(dir + "/past.npy", Tensor::zeros("p", DType::kF32, {1, 4, 0, 8})).is_ok());
    std::string cmd = shell_quote(py) + " " + shell_quote(std::string(LLMC_SOURCE_DIR) + "/scripts/ort_run.py") + " " +
                      shell_quote(dir + "/q.onnx") + " --output-dir " + shell_quote(dir + "/out") + " --input input_ids=" +
                      shell_quote(dir + "/ids.npy");
    for (int l = 0; l < 5; ++l)
      for (const char* kv : {"key", "value"})
        cmd += " --input past_key_values." + std::to_string(l) + "." + kv + "=" + shell_quote(dir + "/past.npy");
    auto r = run_shell(cmd);
    INFO(r.errors);
    REQUIRE(r.exit_code == 0);
    auto theirs = read_npy(dir + "/out/logits.npy", "logits");
    REQUIRE(theirs.is_ok());
    REQUIRE(theirs->numel() == ours->numel());
    double worst = 0, peak = 0;
    for (int64_t i = 0; i < ours->numel(); ++i) {
      worst = std::max(worst, double(std::fabs(ours->data<float>()[i] - theirs->data_as<float>()[i])));
      peak = std::max(peak, double(std::fabs(theirs->data_as<float>()[i])));
    }
    INFO("max |ours - ORT| = " << worst << ", max |ORT| = " << peak);
    CHECK(worst / peak < 1e-3);
  }
}
