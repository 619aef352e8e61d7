#include "passes/factorize_svd.h"

namespace llmc {

std::unique_ptr<Pass> make_factorize_svd() { return std::make_unique<FactorizeSvd>(); }

}  // namespace llmc
