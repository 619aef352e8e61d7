// A mutated small model loaded and run once: every graph input fed a small tensor (symbolic
// dims 2, known dims up to 64; integer inputs 0..3 so ids and indices stay mostly valid, floats
// 0.5), with 64 MB / 256 MB memory limits. Whatever the graph says, the runtime must return a
// result or an error; libFuzzer's -malloc_limit_mb turns any allocation past it into a finding.
#include <map>

#include "formats/onnx_format.h"
#include "fuzz/fuzz_support.h"
#include "runtime/session.h"

namespace {

bool small_input(const llmc::ValueInfo& in, std::vector<int64_t>& shape) {
  if (in.type.kind != llmc::ValueType::Kind::kTensor || in.type.dims.size() > 6) return false;
  int64_t numel = 1;
  for (const auto& d : in.type.dims) {
    const int64_t n = d.has_value() ? d.value : 2;
    if (n > 64) return false;
    shape.push_back(n);
    numel *= n;
  }
  return numel <= 4096;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto model = llmc::read_onnx(llmc::fuzz::write_input(data, size, ".onnx"));
  if (!model.is_ok()) return 0;
  auto shared = std::make_shared<const llmc::Model>(std::move(*model));
  llmc::rt::SessionOptions options(1);
  options.limits.max_tensor_bytes = 64 << 20;  // far below -malloc_limit_mb: a bigger tensor must be refused
  options.limits.max_total_bytes = 256 << 20;
  auto session = llmc::rt::Session::create(shared, options);
  if (!session.is_ok()) return 0;
  std::map<std::string, llmc::rt::Value> feeds;
  for (const auto& in : shared->graph.inputs) {
    if (shared->graph.find_initializer(in.name)) continue;  // an input with a default
    std::vector<int64_t> shape;
    if (!small_input(in, shape)) return 0;
    llmc::rt::Value v = llmc::rt::Value::allocate(in.type.elem, shape);
    const int64_t n = v.numel();
    switch (in.type.elem) {
      case llmc::DType::kF32:
        for (int64_t i = 0; i < n; ++i) v.mutable_data<float>()[i] = 0.5f;
        break;
      case llmc::DType::kI64:
        for (int64_t i = 0; i < n; ++i) v.mutable_data<int64_t>()[i] = i % 4;
        break;
      case llmc::DType::kI32:
        for (int64_t i = 0; i < n; ++i) v.mutable_data<int32_t>()[i] = static_cast<int32_t>(i % 4);
        break;
      default:
        return 0;
    }
    feeds.emplace(in.name, std::move(v));
  }
  (void)(*session)->run(feeds);
  return 0;
}
