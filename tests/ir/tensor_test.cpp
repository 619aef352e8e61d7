#include "ir/tensor.h"

#include <catch2/catch.hpp>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "ir/dtype.h"

namespace llmc {
namespace {

struct DTypeCase {
  DType dtype;
  int bits;
};

const std::vector<DTypeCase>& all_dtypes() {
  static const std::vector<DTypeCase> cases = {
      {DType::kUndefined, 0},   {DType::kF32, 32},         {DType::kU8, 8},
      {DType::kI8, 8},          {DType::kU16, 16},         {DType::kI16, 16},
      {DType::kI32, 32},        {DType::kI64, 64},         {DType::kString, 0},
      {DType::kBool, 8},        {DType::kF16, 16},         {DType::kF64, 64},
      {DType::kU32, 32},        {DType::kU64, 64},         {DType::kComplex64, 64},
      {DType::kComplex128, 128}, {DType::kBF16, 16},       {DType::kF8E4M3FN, 8},
      {DType::kF8E4M3FNUZ, 8},  {DType::kF8E5M2, 8},       {DType::kF8E5M2FNUZ, 8},
      {DType::kU4, 4},          {DType::kI4, 4},           {DType::kF4E2M1, 4},
      {DType::kF8E8M0, 8},      {DType::kU2, 2},           {DType::kI2, 2},
  };
  return cases;
}

TEST_CASE("dtype_bits covers every known dtype code", "[ir][dtype]") {
  REQUIRE(all_dtypes().size() == static_cast<size_t>(kMaxDTypeCode) + 1);
  for (size_t code = 0; code < all_dtypes().size(); ++code) {
    const DTypeCase& c = all_dtypes()[code];
    INFO("dtype " << dtype_name(c.dtype));
    CHECK(static_cast<size_t>(c.dtype) == code);
    CHECK(dtype_bits(c.dtype) == c.bits);
    CHECK(dtype_is_known(static_cast<int32_t>(code)) == (code != 0));
    // Every known dtype has a proper short name, not the "dtype(N)" fallback.
    CHECK(dtype_name(c.dtype).rfind("dtype(", 0) == std::string::npos);
  }
  CHECK_FALSE(dtype_is_known(kMaxDTypeCode + 1));
  CHECK_FALSE(dtype_is_known(-1));
  CHECK(dtype_name(DType::kI4) == "i4");
  CHECK(dtype_name(DType::kBool) == "bool");
  CHECK(dtype_name(DType::kF32) == "f32");
}

TEST_CASE("dtype_storage_bytes for whole-byte dtypes is numel * size", "[ir][dtype]") {
  for (const DTypeCase& c : all_dtypes()) {
    if (c.bits < 8) continue;
    INFO("dtype " << dtype_name(c.dtype));
    for (int64_t n : {0, 1, 2, 3, 7, 1000}) {
      CHECK(dtype_storage_bytes(c.dtype, n) == static_cast<size_t>(n) * (c.bits / 8));
    }
  }
  CHECK(dtype_storage_bytes(DType::kString, 10) == 0);
  CHECK(dtype_storage_bytes(DType::kUndefined, 10) == 0);
}

TEST_CASE("dtype_storage_bytes rounds packed 4-bit and 2-bit dtypes up", "[ir][dtype]") {
  for (DType t : {DType::kU4, DType::kI4, DType::kF4E2M1}) {
    INFO("dtype " << dtype_name(t));
    CHECK(dtype_storage_bytes(t, 0) == 0);
    CHECK(dtype_storage_bytes(t, 1) == 1);
    CHECK(dtype_storage_bytes(t, 2) == 1);
    CHECK(dtype_storage_bytes(t, 3) == 2);
    CHECK(dtype_storage_bytes(t, 4) == 2);
    CHECK(dtype_storage_bytes(t, 5) == 3);
    CHECK(dtype_storage_bytes(t, 4097) == 2049);
  }
  for (DType t : {DType::kU2, DType::kI2}) {
    INFO("dtype " << dtype_name(t));
    CHECK(dtype_storage_bytes(t, 0) == 0);
    CHECK(dtype_storage_bytes(t, 1) == 1);
    CHECK(dtype_storage_bytes(t, 4) == 1);
    CHECK(dtype_storage_bytes(t, 5) == 2);
    CHECK(dtype_storage_bytes(t, 8) == 2);
    CHECK(dtype_storage_bytes(t, 9) == 3);
  }
}

TEST_CASE("shape_numel and shape_str", "[ir][tensor]") {
  CHECK(shape_numel({}) == 1);
  CHECK(shape_numel({0, 5}) == 0);
  CHECK(shape_numel({2, 3, 4}) == 24);
  CHECK(shape_str({}) == "[]");
  CHECK(shape_str({2, 3}) == "[2,3]");
}

TEST_CASE("Tensor::from_bytes owns a copy of its bytes", "[ir][tensor]") {
  std::vector<uint8_t> src = {1, 2, 3, 4, 5, 6};
  Tensor t = Tensor::from_bytes("w", DType::kU8, {2, 3}, src.data(), src.size());
  src[0] = 99;
  src[5] = 42;
  REQUIRE(t.nbytes() == 6);
  CHECK(t.data() != src.data());
  CHECK(t.data()[0] == 1);
  CHECK(t.data()[5] == 6);
  CHECK_FALSE(t.is_view());
  CHECK(t.name() == "w");
  CHECK(t.numel() == 6);
  CHECK(t.expected_nbytes() == 6);
  // Owned bytes are 64-byte aligned.
  CHECK(reinterpret_cast<uintptr_t>(t.data()) % 64 == 0);
}

TEST_CASE("Tensor::from_vector and zeros", "[ir][tensor]") {
  Tensor f = Tensor::from_vector("f", DType::kF32, {3}, std::vector<float>{1.5f, -2.f, 3.f});
  REQUIRE(f.nbytes() == 12);
  CHECK(f.data_as<float>()[1] == -2.f);
  Tensor z = Tensor::zeros("z", DType::kI4, {3, 3});
  CHECK(z.nbytes() == 5);
  for (size_t i = 0; i < z.nbytes(); ++i) CHECK(z.data()[i] == 0);
  Tensor s = Tensor::strings("s", {2}, {"a", "bc"});
  CHECK(s.dtype() == DType::kString);
  CHECK(s.string_values() == std::vector<std::string>{"a", "bc"});
  CHECK(s.expected_nbytes() == 0);
}

TEST_CASE("Tensor::view keeps its owner alive", "[ir][tensor]") {
  auto owner = std::make_shared<std::vector<float>>(std::vector<float>{1.f, 2.f, 3.f, 4.f});
  std::weak_ptr<std::vector<float>> weak = owner;
  const float* raw = owner->data() + 1;
  Tensor t = Tensor::view("v", DType::kF32, {3}, owner, raw, 3 * sizeof(float));
  CHECK(t.is_view());
  CHECK(owner.use_count() == 2);
  owner.reset();
  REQUIRE_FALSE(weak.expired());
  CHECK(weak.use_count() == 1);
  CHECK(t.data_as<float>() == raw);
  CHECK(t.data_as<float>()[0] == 2.f);
  CHECK(t.data_as<float>()[2] == 4.f);
  {
    Tensor copy = t;  // copying shares, never copies, the bytes
    CHECK(copy.data() == t.data());
    CHECK(weak.use_count() == 2);
  }
  CHECK(weak.use_count() == 1);
  t = Tensor();
  CHECK(weak.expired());
}

TEST_CASE("mutable_data on a view copies first", "[ir][tensor]") {
  auto owner = std::make_shared<std::vector<uint8_t>>(std::vector<uint8_t>{10, 20, 30, 40});
  Tensor t = Tensor::view("v", DType::kU8, {4}, owner, owner->data(), owner->size());
  REQUIRE(t.is_view());
  uint8_t* p = t.mutable_data();
  CHECK_FALSE(t.is_view());
  CHECK(p != owner->data());
  CHECK(p[0] == 10);
  CHECK(p[3] == 40);
  p[0] = 77;
  CHECK((*owner)[0] == 10);  // the viewed buffer is unchanged
  CHECK(t.data()[0] == 77);
  CHECK(t.nbytes() == 4);
  // The copy no longer holds the owner.
  CHECK(owner.use_count() == 1);
  // A second call does not copy again.
  CHECK(t.mutable_data() == p);
}

TEST_CASE("mutable_data on a Tensor sharing bytes copies first", "[ir][tensor]") {
  const std::vector<uint8_t> src = {1, 2, 3};
  Tensor a = Tensor::from_bytes("a", DType::kU8, {3}, src.data(), src.size());
  Tensor b = a;
  REQUIRE(b.data() == a.data());
  uint8_t* pb = b.mutable_data();
  CHECK(pb != a.data());
  pb[1] = 200;
  CHECK(a.data()[1] == 2);
  CHECK(b.data()[1] == 200);
  // `a` is now the sole holder of its bytes: writing in place does not copy.
  const uint8_t* before = a.data();
  CHECK(a.mutable_data() == before);
}

TEST_CASE("mutable_data on from_string_bytes writes in place when unshared", "[ir][tensor]") {
  Tensor t = Tensor::from_string_bytes("s", DType::kU8, {3}, std::string("\x01\x02\x03", 3));
  const uint8_t* before = t.data();
  uint8_t* p = t.mutable_data();
  CHECK(p == before);
  p[2] = 9;
  CHECK(t.data()[2] == 9);
}

TEST_CASE("identical_to compares name, dtype, dims and bytes", "[ir][tensor]") {
  const std::vector<uint8_t> bytes = {1, 2, 3, 4, 5, 6, 7, 8};
  Tensor a = Tensor::from_bytes("a", DType::kU8, {2, 4}, bytes.data(), bytes.size());
  Tensor same = Tensor::from_bytes("a", DType::kU8, {2, 4}, bytes.data(), bytes.size());
  CHECK(a.identical_to(same));
  CHECK(a.identical_to(a));

  SECTION("one byte differs") {
    same.mutable_data()[7] ^= 1;
    CHECK_FALSE(a.identical_to(same));
    CHECK_FALSE(same.identical_to(a));
  }
  SECTION("dims differ") {
    Tensor d = Tensor::from_bytes("a", DType::kU8, {4, 2}, bytes.data(), bytes.size());
    CHECK_FALSE(a.identical_to(d));
  }
  SECTION("name differs") {
    same.set_name("b");
    CHECK_FALSE(a.identical_to(same));
  }
  SECTION("dtype differs") {
    Tensor d = Tensor::from_bytes("a", DType::kI8, {2, 4}, bytes.data(), bytes.size());
    CHECK_FALSE(a.identical_to(d));
  }
  SECTION("byte count differs") {
    Tensor d = Tensor::from_bytes("a", DType::kU8, {2, 4}, bytes.data(), bytes.size() - 1);
    CHECK_FALSE(a.identical_to(d));
  }
  SECTION("a view of equal bytes is identical") {
    auto owner = std::make_shared<std::vector<uint8_t>>(bytes);
    Tensor v = Tensor::view("a", DType::kU8, {2, 4}, owner, owner->data(), owner->size());
    CHECK(a.identical_to(v));
  }
  SECTION("string tensors compare their values") {
    Tensor s1 = Tensor::strings("s", {2}, {"x", "y"});
    Tensor s2 = Tensor::strings("s", {2}, {"x", "z"});
    CHECK(s1.identical_to(Tensor::strings("s", {2}, {"x", "y"})));
    CHECK_FALSE(s1.identical_to(s2));
  }
}

TEST_CASE("Tensor::deferred produces its bytes once, on first use, shared by copies", "[ir][tensor]") {
  auto calls = std::make_shared<int>(0);
  Tensor t = Tensor::deferred("w", DType::kF32, {2, 3}, [calls](uint8_t* dst) {
    ++*calls;
    float* f = reinterpret_cast<float*>(dst);
    for (int i = 0; i < 6; ++i) f[i] = static_cast<float>(i) * 0.5f;
  });
  CHECK(t.is_deferred());
  CHECK(t.nbytes() == 24);
  // produce_into: straight into the caller's buffer, nothing kept.
  float streamed[6] = {};
  t.produce_into(reinterpret_cast<uint8_t*>(streamed));
  CHECK(streamed[5] == 2.5f);
  CHECK(*calls == 1);
  Tensor copy = t;
  CHECK(t.data_as<float>()[4] == 2.0f);  // produced and kept
  CHECK(copy.data() == t.data());        // the copy shares them
  CHECK(*calls == 2);
  float again[6] = {};
  t.produce_into(reinterpret_cast<uint8_t*>(again));  // now a copy of the kept bytes
  CHECK(again[1] == 0.5f);
  CHECK(*calls == 2);
  // Writing one copy leaves the other's bytes alone.
  reinterpret_cast<float*>(copy.mutable_data())[0] = 7.0f;
  CHECK_FALSE(copy.is_deferred());
  CHECK(t.data_as<float>()[0] == 0.0f);
  CHECK(copy.data_as<float>()[0] == 7.0f);
  CHECK(*calls == 2);
}

}  // namespace
}  // namespace llmc
