// Passes measuring through a shared activation-statistics service (PassContext::statistics,
// run by the PassManager, which drops the cache after a step changed the graph) write the model
// they write with calibration samples only (a service of their own); without samples they say so.
#include <catch2/catch.hpp>
#include <cstring>

#include "calibration/activation_statistics.h"
#include "passes/pass_manager.h"
#include "passes/registry.h"
#include "tests/support/pass_fixtures.h"

using namespace llmc;
using namespace llmc::testing;

namespace {

void check_same_model(const Model& a, const Model& b) {
  REQUIRE(a.graph.nodes.size() == b.graph.nodes.size());
  for (size_t i = 0; i < a.graph.nodes.size(); ++i) {
    CHECK(a.graph.nodes[i].op_type == b.graph.nodes[i].op_type);
    CHECK(a.graph.nodes[i].inputs == b.graph.nodes[i].inputs);
    CHECK(a.graph.nodes[i].outputs == b.graph.nodes[i].outputs);
  }
  REQUIRE(a.graph.initializers.size() == b.graph.initializers.size());
  for (size_t i = 0; i < a.graph.initializers.size(); ++i) {
    const Tensor& x = a.graph.initializers[i];
    const Tensor& y = b.graph.initializers[i];
    INFO(x.name());
    CHECK(x.name() == y.name());
    REQUIRE(x.nbytes() == y.nbytes());
    CHECK(std::memcmp(x.data(), y.data(), x.nbytes()) == 0);
  }
}

}  // namespace

TEST_CASE("smooth-quant and int8-static through a shared statistics service write the same model", "[passes][statistics][llama2c]") {
  StoriesFixture s;
  if (!load_stories(s, 4, 64)) return;
  const PassOptions smooth{{"alpha", "0.5"}}, quant{{"method", "entropy"}};

  Model own = s.model;  // each pass with a service of its own over the samples
  PassContext own_context;
  own_context.calibration = &s.calib.samples;
  own_context.threads = 2;
  auto own_smooth = run_pass("smooth-quant", own, smooth, own_context);
  REQUIRE(own_smooth.is_ok());
  auto own_quant = run_pass("quantize-int8-static", own, quant, own_context);
  REQUIRE(own_quant.is_ok());

  // The same steps through the PassManager with one shared service: each pass streams once,
  // and the manager's on_graph_changed drops the cache after smooth-quant.
  Model shared = s.model;
  calib::ActivationStatistics service(&s.calib, 2);
  PassContext shared_context;
  shared_context.statistics = &service;  // no samples besides the service's
  shared_context.threads = 2;
  size_t changes = 0;
  shared_context.on_graph_changed = [&] {
    ++changes;
    service.invalidate();
  };
  auto steps = parse_pass_list("smooth-quant{alpha=0.5},quantize-int8-static{method=entropy}");
  REQUIRE(steps.is_ok());
  REQUIRE(resolve_steps(*steps).is_ok());
  auto records = PassManager().run(shared, *steps, shared_context);
  REQUIRE(records.is_ok());
  REQUIRE(records->size() == 2);
  CHECK(changes == 2);
  CHECK(service.streams() == 2);
  const PassResult* shared_smooth = &(*records)[0].result;
  const PassResult* shared_quant = &(*records)[1].result;

  CHECK(shared_smooth->summary == own_smooth->summary);
  CHECK(shared_quant->summary == own_quant->summary);
  check_same_model(own, shared);
}

TEST_CASE("passes with an empty shared statistics service say they need calibration data", "[passes][statistics]") {
  StoriesFixture s;
  if (!load_stories(s, 1, 16)) return;
  const calib::CalibrationSet empty;
  calib::ActivationStatistics service(&empty, 1);
  PassContext context;
  context.statistics = &service;
  for (const char* name : {"smooth-quant", "quantize-int8-static"}) {
    INFO(name);
    Model m = s.model;
    auto r = run_pass(name, m, {}, context);
    REQUIRE(!r.is_ok());
    CHECK(r.status().message().find("needs --calib DATA") != std::string::npos);
    CHECK(r.status().message().find("empty") != std::string::npos);
  }
}
