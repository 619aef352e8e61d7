// .npy and .npz readers: the first input byte picks which one the rest is.
#include "formats/npy.h"
#include "formats/npz.h"
#include "fuzz/fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  if (data[0] & 1) {
    auto arrays = llmc::read_npz(llmc::fuzz::write_input(data + 1, size - 1, ".npz"));
    if (arrays.is_ok())
      for (const auto& t : *arrays) (void)t.data();
    return 0;
  }
  auto t = llmc::read_npy(llmc::fuzz::write_input(data + 1, size - 1, ".npy"), "x");
  if (t.is_ok()) (void)t->data();
  return 0;
}
