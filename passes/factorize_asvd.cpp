#include "passes/factorize_asvd.h"

namespace llmc {

std::unique_ptr<Pass> make_factorize_asvd() { return std::make_unique<FactorizeAsvd>(); }

}  // namespace llmc
