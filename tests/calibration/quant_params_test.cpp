// Scale and zero point vs values computed by hand with ONNX Runtime's compute_scale_zp and
// get_qmin_qmax_for_qType (quant_utils.py).
#include <catch2/catch.hpp>
#include <cmath>

#include "calibration/quant_params.h"

using namespace llmc;
using namespace llmc::calib;

TEST_CASE("uint8 asymmetric scale and zero point match ORT", "[calibration][quant_params]") {
  // compute_scale_zp(-1.0, 2.0, 0, 255) -> [85, 0.011764706]
  QuantParams p = uint8_asymmetric_params({-1.f, 2.f});
  CHECK(p.scale == static_cast<float>(3.0 / 255.0));
  CHECK(p.zero_point == 85);
  // The range is extended to include 0: positive-only -> zp 0, negative-only -> zp 255.
  p = uint8_asymmetric_params({0.5f, 2.f});
  CHECK(p.scale == static_cast<float>(2.0 / 255.0));
  CHECK(p.zero_point == 0);
  p = uint8_asymmetric_params({-3.f, -1.f});
  CHECK(p.scale == static_cast<float>(3.0 / 255.0));
  CHECK(p.zero_point == 255);
  // numpy.round is half-to-even: -rmin/scale = 0.5 -> 0, 1.5 -> 2.
  CHECK(uint8_asymmetric_params({-1.f, 509.f}).zero_point == 0);
  CHECK(uint8_asymmetric_params({-3.f, 507.f}).zero_point == 2);
  // 0.0 is exactly representable (it is the zero point) and the range ends fit in [0, 255].
  p = uint8_asymmetric_params({-0.37f, 5.91f});
  CHECK(p.zero_point == 15);  // round(0.37 / (6.28 / 255)) = round(15.02)
  CHECK(std::nearbyint(-0.37f / p.scale) + p.zero_point >= 0);
  CHECK(std::nearbyint(5.91f / p.scale) + p.zero_point <= 255);
}

TEST_CASE("int8 symmetric scale and zero point match ORT", "[calibration][quant_params]") {
  // symmetric int8 uses [-127, 127]: scale = absmax * 2 / 254.
  QuantParams p = int8_symmetric_params({-1.f, 2.f});
  CHECK(p.scale == static_cast<float>(4.0 / 254.0));
  CHECK(p.zero_point == 0);
  p = int8_symmetric_params({-6.f, 0.5f});
  CHECK(p.scale == static_cast<float>(12.0 / 254.0));
  CHECK(p.zero_point == 0);
  // uint8 symmetric: [0, 254], zero point round(127) = 127.
  auto u = quant_params({-1.f, 2.f}, DType::kU8, /*symmetric=*/true);
  REQUIRE(u.is_ok());
  CHECK(u->scale == static_cast<float>(4.0 / 254.0));
  CHECK(u->zero_point == 127);
  // int8 asymmetric: [-128, 127], zp = round(-128 + 85) = -43.
  auto a = quant_params({-1.f, 2.f}, DType::kI8, /*symmetric=*/false);
  REQUIRE(a.is_ok());
  CHECK(a->scale == static_cast<float>(3.0 / 255.0));
  CHECK(a->zero_point == -43);
}

TEST_CASE("degenerate ranges, limits and unsupported types", "[calibration][quant_params]") {
  // An all-zero range gives scale 1, zero point 0 (ORT's tiny-scale rule), symmetric or not.
  for (bool sym : {false, true}) {
    auto p = quant_params({0.f, 0.f}, DType::kU8, sym);
    REQUIRE(p.is_ok());
    CHECK(p->scale == 1.f);
    CHECK(p->zero_point == 0);
  }
  auto lim = quant_limits(DType::kI8, true, /*reduce_range=*/true);
  REQUIRE(lim.is_ok());
  CHECK(lim->qmin == -64);
  CHECK(lim->qmax == 64);
  CHECK(quant_limits(DType::kU8, false, true)->qmax == 127);
  CHECK(quant_limits(DType::kI16, true)->qmin == -32767);
  CHECK(quant_limits(DType::kU16, false)->qmax == 65535);
  CHECK(quant_limits(DType::kI4, true)->qmin == -8);  // int4 has no symmetric table in ORT
  CHECK(quant_limits(DType::kU4, false, true)->qmax == 7);
  auto bad = quant_limits(DType::kF32, false);
  REQUIRE(!bad.is_ok());
  CHECK(bad.status().message().find("f32") != std::string::npos);
}
