// From a calibrated range to a scale and zero point, exactly as ONNX Runtime's quantization tools
// compute them (quant_utils.py get_qmin_qmax_for_qType + compute_scale_zp):
//   the range is first extended to include 0 (so 0.0 is exactly representable);
//   symmetric:  range -> [-absmax, absmax], scale = 2*absmax / (qmax - qmin),
//               zero point = round((qmin + qmax) / 2)  (int8: 0, uint8: 127 with [0, 254]);
//   asymmetric: scale = (max - min) / (qmax - qmin), zero point = round(qmin - min / scale);
//   a scale below FLT_MIN (an all-zero range) becomes scale 1, zero point 0.
// The division happens in float64 and the scale is then rounded to float32, rounding is
// half-to-even (numpy.round), as in ORT. val_fp32 = scale * (val_q - zero_point).
#pragma once
#include <cstdint>
#include <string>

#include "ir/dtype.h"
#include "ir/status.h"

namespace llmc::calib {

struct QuantRange {
  float min = 0.f;
  float max = 0.f;
};

struct QuantParams {
  float scale = 1.f;
  int32_t zero_point = 0;
};

struct QuantLimits {
  int32_t qmin = 0;
  int32_t qmax = 0;
};

// ORT's integer ranges: int8 [-128, 127], uint8 [0, 255], int16, uint16, int4 [-8, 7],
// uint4 [0, 15]. symmetric: int8 [-127, 127], uint8 [0, 254], int16 [-32767, 32767],
// uint16 [0, 65534] (int4/uint4 keep their full range). reduce_range (7-bit weights for U8S8 on
// non-VNNI x86) wins over symmetric: int8 [-64, 64], uint8 [0, 127], int16 [-16384, 16384],
// uint16 [0, 32767], int4 [-4, 3], uint4 [0, 7]. Other types are an error.
Result<QuantLimits> quant_limits(DType type, bool symmetric, bool reduce_range = false);

// compute_scale_zp for the given limits.
QuantParams compute_scale_zero_point(QuantRange range, QuantLimits limits, bool symmetric);

// Both in one: quant_limits then compute_scale_zero_point.
Result<QuantParams> quant_params(QuantRange range, DType type, bool symmetric, bool reduce_range = false);

// The ORT defaults for activations: int8 symmetric (S8S8, scale = absmax / 127, zero point 0)
// and uint8 asymmetric (U8, scale = (max - min) / 255 with 0 inside the range).
QuantParams int8_symmetric_params(QuantRange range);
QuantParams uint8_asymmetric_params(QuantRange range);

}  // namespace llmc::calib
