// scripts/check_layering.sh (ctest layering_check) on small trees: it must flag an include that
// DESIGN.md's folder table forbids, so a broken pattern cannot pass silently on the real tree.
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>

#include "tests/support/test_data.h"

using namespace llmc::testing;

namespace {

void write(const std::string& path, const std::string& text) {
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  std::ofstream(path) << text;
}

CommandResult check(const std::string& root) {
  return run_shell(shell_quote(std::string(LLMC_SOURCE_DIR) + "/scripts/check_layering.sh") + " " + shell_quote(root));
}

}  // namespace

TEST_CASE("layering check flags includes the folder table forbids", "[scripts][layering]") {
  const std::string root = scratch_dir("layering");
  write(root + "/calibration/a.cpp", "#include \"calibration/a.h\"\n#include \"runtime/value.h\"\n#include \"ir/graph.h\"\n");
  write(root + "/passes/p.cpp", "#include \"calibration/a.h\"\n");
  write(root + "/formats/f.cpp", "#include \"ir/tensor.h\"\n");
  write(root + "/tools/t.cpp", "#include \"formats/npz.h\"\n#include \"runtime/session.h\"\n");  // tools/ may use all
  auto ok = check(root);
  INFO(ok.output << ok.errors);
  CHECK(ok.exit_code == 0);

  write(root + "/calibration/b.cpp", "#include <vector>\n  #  include \"formats/npz.h\"\n");
  write(root + "/formats/g.h", "#include \"../runtime/value.h\"\n");
  write(root + "/passes/q.cpp", "#include \"formats/onnx_format.h\"\n");
  auto bad = check(root);
  INFO(bad.output << bad.errors);
  CHECK(bad.exit_code == 1);
  CHECK(bad.output.find("calibration/ may not include formats/") != std::string::npos);
  CHECK(bad.output.find("calibration/b.cpp:2:") != std::string::npos);
  CHECK(bad.output.find("formats/ may not include runtime/") != std::string::npos);
  CHECK(bad.output.find("passes/ may not include formats/") != std::string::npos);
}
