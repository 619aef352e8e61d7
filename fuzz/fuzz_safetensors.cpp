// safetensors: header JSON, dtypes, offsets; every tensor read when the file loads.
#include "formats/safetensors.h"
#include "fuzz/fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto ckpt = llmc::read_safetensors_file(llmc::fuzz::write_input(data, size, ".safetensors"));
  if (ckpt.is_ok())
    for (const auto& t : ckpt->tensors()) (void)t.data();
  return 0;
}
