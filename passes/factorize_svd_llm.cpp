#include "passes/factorize_svd_llm.h"

namespace llmc {

std::unique_ptr<Pass> make_factorize_svd_llm() { return std::make_unique<FactorizeSvdLlm>(); }

}  // namespace llmc
