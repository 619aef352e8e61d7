// Pipeline recipes (YAML): parse and validate.
#include "fuzz/fuzz_support.h"
#include "tools/recipe.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto recipe = llmc::cli::parse_recipe_file(llmc::fuzz::write_input(data, size, ".yaml"));
  if (recipe.is_ok()) (void)llmc::cli::validate_recipe(*recipe);
  return 0;
}
