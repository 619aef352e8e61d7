// ONNX reader: any bytes give a Model or an error, never a crash or an unbounded allocation.
#include "formats/onnx_format.h"
#include "fuzz/fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = llmc::fuzz::write_input(data, size, ".onnx");
  auto model = llmc::read_onnx(path);
  if (model.is_ok())
    for (const auto& t : model->graph.initializers) (void)t.data();
  return 0;
}
