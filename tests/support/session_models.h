// Small graphs for the Session fold tests (session_fold_test.cpp, session_group_test.cpp):
// nodes, random int8 weights, float32/float16 values, a two-thread session.
#pragma once
#include <catch2/catch.hpp>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "runtime/kernels/hgemm.h"
#include "runtime/session.h"
#include "tests/support/run_node.h"

namespace llmc::testing {

inline Tensor random_int8(const std::string& name, std::vector<int64_t> dims, std::mt19937& rng) {
  std::uniform_int_distribution<int> u(-128, 127);
  std::vector<int8_t> v(static_cast<size_t>(shape_numel(dims)));
  for (auto& x : v) x = static_cast<int8_t>(u(rng));
  return Tensor::from_vector(name, DType::kI8, std::move(dims), v);
}

inline Node node(const std::string& name, const std::string& op, std::vector<std::string> in,
                 std::vector<std::string> out, const std::string& domain = "") {
  Node n;
  n.name = name;
  n.op_type = op;
  n.domain = domain;
  n.inputs = std::move(in);
  n.outputs = std::move(out);
  return n;
}

// `f` as a float32 value, or rounded to float16; and any such value back as floats.
inline rt::Value float_value(DType dt, const std::vector<int64_t>& shape, const std::vector<float>& f) {
  if (dt == DType::kF32) return make_value(DType::kF32, shape, f);
  std::vector<uint16_t> h(f.size());
  rt::floats_to_halfs(f.data(), h.data(), static_cast<int64_t>(f.size()));
  return make_value(DType::kF16, shape, h);
}
inline std::vector<float> floats_of(const rt::Value& v) {
  std::vector<float> out(static_cast<size_t>(v.numel()));
  if (v.dtype() == DType::kF32) std::copy(v.data<float>(), v.data<float>() + v.numel(), out.begin());
  else rt::halfs_to_floats(v.data<uint16_t>(), out.data(), v.numel());
  return out;
}

inline std::unique_ptr<rt::Session> session_for(const Model& m) {
  auto s = rt::Session::create(std::make_shared<const Model>(m), {2});
  REQUIRE(s.is_ok());
  return std::move(s).value();
}

}  // namespace llmc::testing
