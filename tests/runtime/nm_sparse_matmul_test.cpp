// com.llmcompress NMSparseMatMul against the dense product on random shapes: float32 and float16
// against a float64 reference (stated tolerances), the AVX-512 panel loops bit for bit against
// the portable ones, int8 bit for bit against the dense DynamicQuantizeMatMul; the file-form
// codec round trip; and hostile packed tensors refused with a message.
#include <catch2/catch.hpp>
#include <cmath>
#include <cstring>
#include <optional>
#include <random>

#include "ir/nm_sparse.h"
#include "runtime/kernels/kernel_util.h"
#include "runtime/kernels/nm_sparse.h"
#include "tests/support/run_node.h"

using namespace llmc;
using namespace llmc::rt;
using namespace llmc::testing;

namespace {

// A dense [K, N] weight of `t` with at most n nonzeros in every four rows of each column (some
// groups with fewer, to exercise the padding), values uniform in [-1, 1) or int8 [-127, 127].
Tensor random_nm(DType t, int64_t K, int64_t N, int n, std::mt19937& rng) {
  Tensor w = Tensor::zeros("w", t, {K, N});
  uint8_t* d = w.mutable_data();
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  std::uniform_int_distribution<int> pos(0, 3), q(-127, 127), skip(0, 5);
  for (int64_t g = 0; g < K / 4; ++g)
    for (int64_t c = 0; c < N; ++c) {
      bool used[4] = {};
      for (int s = 0; s < n; ++s) {
        int p = pos(rng);
        while (used[p]) p = (p + 1) % 4;
        used[p] = true;
        if (skip(rng) == 0) continue;  // a group with fewer nonzeros
        const int64_t i = (4 * g + p) * N + c;
        const float v = u(rng);
        if (t == DType::kF32) std::memcpy(d + 4 * i, &v, 4);
        else if (t == DType::kF16) {
          const uint16_t h = float_to_half(v);
          std::memcpy(d + 2 * i, &h, 2);
        } else {
          d[i] = static_cast<uint8_t>(static_cast<int8_t>(q(rng)));
        }
      }
    }
  return w;
}

double elem(const Tensor& w, int64_t i) {
  switch (w.dtype()) {
    case DType::kF32: return w.data_as<float>()[i];
    case DType::kF16: return half_to_float(w.data_as<uint16_t>()[i]);
    default: return static_cast<int8_t>(w.data()[i]);
  }
}

// The dense form back from the packed one (the format's definition, read plainly).
std::vector<uint8_t> unpack(const NMSparseTensors& p, const NMSparseShape& s, size_t es) {
  std::vector<uint8_t> dense(static_cast<size_t>(s.K * s.N) * es, 0);
  for (int64_t row = 0; row < s.rows; ++row)
    for (int64_t c = 0; c < s.N; ++c) {
      const int64_t k = row / s.n * 4 + nm_index(p.indices.data(), s.index_cols, row, c);
      std::memcpy(dense.data() + (k * s.N + c) * es, p.values.data() + (row * s.N + c) * es, es);
    }
  return dense;
}

Node sparse_node(int n, size_t inputs) {
  return make_node(kNMSparseMatMul, inputs, 1, {Attribute::make_int("n", n)}, kLlmcDomain);
}

struct Shape {
  int64_t K, N;
  int n;
};
const Shape kShapes[] = {{4, 1, 2}, {8, 5, 1}, {64, 33, 2}, {100, 64, 2}, {132, 70, 1}, {768, 130, 2}, {256, 200, 1}};

// Runs the node with the fast loops (when the CPU has them) and the portable ones.
std::pair<Value, Value> run_both(const Node& node, const std::vector<Value>& in) {
  nm_force_portable(true);
  auto slow = run_node(builtin_kernels(), node, in, 1);
  nm_force_portable(false);
  auto fast = run_node(builtin_kernels(), node, in, 1);
  REQUIRE(slow.is_ok());
  REQUIRE(fast.is_ok());
  return {std::move(slow.value()[0]), std::move(fast.value()[0])};
}

}  // namespace

TEST_CASE("n:4 packed form: round trip, canonical positions, refusals", "[ir][nm_sparse]") {
  std::mt19937 rng(3);
  for (DType t : {DType::kF32, DType::kF16, DType::kI8})
    for (const Shape& s : kShapes) {
      const Tensor w = random_nm(t, s.K, s.N, s.n, rng);
      REQUIRE(check_nm_sparse(w, s.n).is_ok());
      auto p = pack_nm_sparse(w, s.n, "w");
      REQUIRE(p.is_ok());
      CHECK(p->values.dims() == std::vector<int64_t>{s.K / 4 * s.n, s.N});
      CHECK(p->indices.dims() == std::vector<int64_t>{s.K / 4 * s.n, (s.N + 3) / 4});
      auto shape = nm_sparse_shape(s.K, s.N, s.n);
      REQUIRE(shape.is_ok());
      const std::vector<uint8_t> back = unpack(*p, *shape, dtype_storage_bytes(t, 1));
      REQUIRE(back.size() == w.nbytes());
      REQUIRE(std::memcmp(back.data(), w.data(), w.nbytes()) == 0);
      // Positions of one group and column ascend strictly.
      for (int64_t g = 0; g < s.K / 4 && s.n == 2; ++g)
        for (int64_t c = 0; c < s.N; ++c)
          REQUIRE(nm_index(p->indices.data(), shape->index_cols, 2 * g, c) <
                  nm_index(p->indices.data(), shape->index_cols, 2 * g + 1, c));
    }
  // A dense weight is not 2:4, and the message names the rows and column.
  Tensor dense = Tensor::from_vector<float>("dense", DType::kF32, {4, 2}, {1, 1, 1, 0, 1, 0, 0, 0});
  auto bad = check_nm_sparse(dense, 2);
  REQUIRE(!bad.is_ok());
  CHECK(bad.message().find("rows 0..3 of column 0 hold 3 nonzeros") != std::string::npos);
  CHECK(check_nm_sparse(dense, 1).message().find("column 0") != std::string::npos);
  CHECK(!nm_sparse_shape(6, 2, 2).is_ok());   // K not a multiple of 4
  CHECK(!nm_sparse_shape(8, 2, 3).is_ok());   // 3:4 is not a packed pattern
  CHECK(!nm_sparse_shape(8, 0, 2).is_ok());
  CHECK(!nm_sparse_shape(int64_t{1} << 62, int64_t{1} << 40, 2).is_ok());  // overflow
}

TEST_CASE("NMSparseMatMul float32 and float16 match the dense product", "[runtime][nm_sparse]") {
  std::mt19937 rng(11);
  for (DType t : {DType::kF32, DType::kF16})
    for (const Shape& s : kShapes)
      for (int64_t M : {1, 3, 9}) {
        INFO(dtype_name(t) << " K=" << s.K << " N=" << s.N << " n=" << s.n << " M=" << M);
        const Tensor w = random_nm(t, s.K, s.N, s.n, rng);
        auto p = pack_nm_sparse(w, s.n, "w");
        REQUIRE(p.is_ok());
        const std::vector<float> af = random_floats(M * s.K, rng);
        Value a = Value::allocate(t, {M, s.K});
        std::vector<double> ad(af.size());
        for (size_t i = 0; i < af.size(); ++i) {
          if (t == DType::kF32) a.mutable_data<float>()[i] = af[i];
          else a.mutable_data<uint16_t>()[i] = float_to_half(af[i]);
          ad[i] = t == DType::kF32 ? af[i] : half_to_float(a.data<uint16_t>()[i]);
        }
        const Value vals = Value::borrow(p->values), idx = Value::borrow(p->indices);
        auto [slow, fast] = run_both(sparse_node(s.n, 3), {a, vals, idx});
        REQUIRE(fast.shape() == std::vector<int64_t>{M, s.N});
        if (M <= 4) {
          REQUIRE(std::memcmp(slow.raw(), fast.raw(), fast.nbytes()) == 0);  // decode: fast loops = portable, bit for bit
        } else if (nm_fast_available()) {
          // Prefill (the sparse GEMM): every row as that row decoded alone, bit for bit.
          const size_t es = t == DType::kF32 ? 4 : 2;
          for (int64_t m = 0; m < M; ++m) {
            Value row = Value::allocate(t, {1, s.K});
            std::memcpy(row.mutable_data<uint8_t>(), a.data<uint8_t>() + m * s.K * es, s.K * es);
            const Value one = run1(sparse_node(s.n, 3), {row, vals, idx}, 1);
            REQUIRE(std::memcmp(one.raw(), fast.data<uint8_t>() + m * s.N * es, s.N * es) == 0);
          }
        }
        for (int64_t m = 0; m < M; ++m)
          for (int64_t c = 0; c < s.N; ++c) {
            double ref = 0, mag = 0;
            for (int64_t k = 0; k < s.K; ++k) {
              ref += ad[m * s.K + k] * elem(w, k * s.N + c);
              mag += std::fabs(ad[m * s.K + k] * elem(w, k * s.N + c));
            }
            // float32 accumulation: a few ulps of the magnitude summed; float16 output: half an ulp more.
            const double tol = 1e-6 * mag + (t == DType::kF16 ? std::ldexp(std::fabs(ref), -11) + 1e-7 : 1e-7);
            for (const Value* y : {&fast, &slow}) {  // the portable prefill widens B and runs sgemm
              const double got = t == DType::kF32 ? y->data<float>()[m * s.N + c]
                                                  : half_to_float(y->data<uint16_t>()[m * s.N + c]);
              REQUIRE(std::fabs(got - ref) <= tol);
            }
          }
      }
}

TEST_CASE("NMSparseMatMul int8 equals the dense DynamicQuantizeMatMul bit for bit", "[runtime][nm_sparse]") {
  std::mt19937 rng(5);
  for (const Shape& s : kShapes)
    for (int64_t M : {1, 4, 9})
      for (bool per_col : {true, false}) {
        INFO("K=" << s.K << " N=" << s.N << " n=" << s.n << " M=" << M << " per_col=" << per_col);
        const Tensor w = random_nm(DType::kI8, s.K, s.N, s.n, rng);
        auto p = pack_nm_sparse(w, s.n, "w");
        REQUIRE(p.is_ok());
        const Value a = make_value<float>(DType::kF32, {M, s.K}, random_floats(M * s.K, rng, -3.f, 2.f));
        std::vector<float> sc(per_col ? s.N : 1);
        for (auto& x : sc) x = std::uniform_real_distribution<float>(0.001f, 0.05f)(rng);
        const Value scales = make_value<float>(DType::kF32, {int64_t(sc.size())}, sc);
        auto [slow, fast] =
            run_both(sparse_node(s.n, 4), {a, Value::borrow(p->values), Value::borrow(p->indices), scales});
        auto dense = run_node(builtin_kernels(), make_node("DynamicQuantizeMatMul", 3, 1, {}, "com.microsoft"),
                              {a, Value::borrow(w), scales}, 1);
        REQUIRE(dense.is_ok());
        REQUIRE(fast.shape() == dense.value()[0].shape());
        REQUIRE(std::memcmp(slow.raw(), dense.value()[0].raw(), fast.nbytes()) == 0);
        REQUIRE(std::memcmp(fast.raw(), dense.value()[0].raw(), fast.nbytes()) == 0);
      }
}

TEST_CASE("NMSparseMatMul refuses malformed packed weights", "[runtime][nm_sparse][hostile]") {
  std::mt19937 rng(2);
  const Tensor w = random_nm(DType::kF32, 16, 8, 2, rng);
  auto p = pack_nm_sparse(w, 2, "w");
  REQUIRE(p.is_ok());
  const Value a = make_value<float>(DType::kF32, {1, 16}, random_floats(16, rng));
  const Value vals = Value::borrow(p->values), idx = Value::borrow(p->indices);
  auto msg = [&](const Node& node, const std::vector<Value>& in) {
    auto r = run_node(builtin_kernels(), node, in, 1);
    return r.is_ok() ? std::string() : r.status().message();
  };
  CHECK(msg(sparse_node(2, 3), {a, vals, idx}).empty());
  CHECK(msg(sparse_node(3, 3), {a, vals, idx}).find("n must be 1 or 2") != std::string::npos);
  CHECK(msg(sparse_node(1, 3), {a, vals, idx}).find("needs") != std::string::npos);  // rows for 1:4 differ
  const Value a12 = make_value<float>(DType::kF32, {1, 12}, random_floats(12, rng));
  CHECK(!msg(sparse_node(2, 3), {a12, vals, idx}).empty());
  const Value a16h = Value::allocate(DType::kF16, {1, 16});
  CHECK(msg(sparse_node(2, 3), {a16h, vals, idx}).find("float16") != std::string::npos);
  const Value idx_short = make_value<uint8_t>(DType::kU8, {8, 1}, std::vector<uint8_t>(8, 0));
  CHECK(msg(sparse_node(2, 3), {a, vals, idx_short}).find("indices shape") != std::string::npos);
  // Two kept slots at one position: the dense form has no place for both.
  Value dup = Value::copy_of(p->indices);
  dup.mutable_data<uint8_t>()[0] = 0;                  // slot 0 of group 0: columns 0..3 at position 0
  dup.mutable_data<uint8_t>()[idx.dim(1)] = 0;         // slot 1 of group 0: the same
  CHECK(msg(sparse_node(2, 3), {a, vals, dup}).find("repeat a position") != std::string::npos);
  // A narrow weight packs to many times its file size (columns padded to 64, kept rows to fours):
  // the panels count against the session's per-tensor limit like an output would.
  auto tall = nm_sparse_shape(4096, 1, 1);
  REQUIRE(tall.is_ok());
  CHECK(nm_packed_bytes(DType::kI8, *tall) == std::optional<uint64_t>(256 * 320));  // 1024 kept rows, 1 column
  CHECK(nm_packed_bytes(DType::kF32, *tall) == std::optional<uint64_t>(1024 * (32 * 4 + 8)));
  {
    const Tensor wt = random_nm(DType::kI8, 4096, 1, 1, rng);
    auto pt = pack_nm_sparse(wt, 1, "tall");
    REQUIRE(pt.is_ok());
    const Value at = make_value<float>(DType::kF32, {1, 4096}, random_floats(4096, rng));
    const Value vt = Value::borrow(pt->values), it = Value::borrow(pt->indices);
    const Value st = make_value<float>(DType::kF32, {1}, {0.01f});
    const Node node = sparse_node(1, 4);
    ThreadPool pool(1);
    KernelContext ctx(node, 1, std::vector<const Value*>{&at, &vt, &it, &st}, pool, nullptr);
    ctx.set_limits(MemoryLimits{64 * 1024, 1 << 30});  // 80 KB of panels from a 1 KB weight: over
    const Status s = (*builtin_kernels().find(kLlmcDomain, kNMSparseMatMul))(ctx);
    REQUIRE(!s.is_ok());
    CHECK(s.message().find("over the limit") != std::string::npos);
  }
  // int8 values need the scales.
  const Tensor w8 = random_nm(DType::kI8, 16, 8, 2, rng);
  auto p8 = pack_nm_sparse(w8, 2, "w8");
  REQUIRE(p8.is_ok());
  CHECK(msg(sparse_node(2, 3), {a, Value::borrow(p8->values), Value::borrow(p8->indices)}).find("scales") !=
        std::string::npos);
}
