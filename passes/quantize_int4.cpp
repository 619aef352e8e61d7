#include "passes/quantize_int4.h"

#include "passes/nbits_common.h"

namespace llmc {

std::vector<OptionSpec> QuantizeInt4::options() const { return nbits_option_specs(); }

Status QuantizeInt4::check(const PassOptions& resolved) const { return parse_nbits_options(resolved).status(); }

std::unique_ptr<Pass> make_quantize_int4() { return std::make_unique<QuantizeInt4>(); }

Result<PassResult> QuantizeInt4::run(Model& model, const PassOptions& options, PassContext& context) {
  LLMC_ASSIGN_OR_RETURN(NBitsOptions opt, parse_nbits_options(options));
  PassResult result;
  result.bytes_before = initializer_bytes(model);
  LLMC_ASSIGN_OR_RETURN(auto targets, select_nbits_targets(model, opt, result));
  rt::ThreadPool pool(context.threads);
  std::vector<NBitsTensors> packed;
  for (const auto& t : targets) {
    const std::vector<float> rows = weight_rows(model, t, &pool);
    const NBitsCodes codes = rtn_codes(rows.data(), t.N, t.K, t.format, &pool);
    auto p = pack_nbits(codes, t.weight, &pool);
    if (!p.is_ok()) return p.status().with_context(context.model_path);
    packed.push_back(std::move(p).value());
  }
  rewrite_nbits(model, targets, std::move(packed), opt, "rtn", {}, result);
  return result;
}

}  // namespace llmc
