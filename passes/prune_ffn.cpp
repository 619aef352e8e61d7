#include "passes/prune_ffn.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <set>

#include "ir/graph_utils.h"
#include "passes/pass_statistics.h"
#include "passes/weight_slices.h"

namespace llmc {

namespace {

// Element-wise ops a neuron's value may pass through between the up and down projections.
const std::set<std::string> kUnary = {"Sigmoid", "Tanh", "Relu", "Gelu", "Erf", "Neg", "Exp", "Softplus",
                                      "Identity", "Abs", "Sqrt", "HardSigmoid", "LeakyRelu", "Elu", "Selu"};
const std::set<std::string> kBinary = {"Mul", "Add", "Sub", "Div", "Pow"};

struct FfnBlock {
  int down = -1;                      // node index of the down projection
  std::vector<int> ups;               // MatMuls whose weight columns are the neurons
  std::vector<std::string> biases;    // initializers [F] added per neuron
  std::set<std::string> values;       // every value from the ups' outputs to the down input
  int64_t F = 0, D = 0;               // neurons, output width
};

bool float_matrix(const Tensor* t) { return t && t->dtype() == DType::kF32 && t->dims().size() == 2; }

// A one-element constant: an initializer, or a Constant node's value (as PyTorch exports the
// 0.5, 1 and sqrt(2) of GELU).
bool scalar_constant(const Graph& g, const GraphIndex& index, const std::string& v) {
  if (const Tensor* c = g.find_initializer(v)) return c->numel() == 1;
  const int p = index.producer(v);
  if (p < 0 || g.nodes[p].op_type != "Constant") return false;
  const Attribute* value = g.nodes[p].find_attr("value");
  if (value && value->tensors.size() == 1) return value->tensors[0].numel() == 1;
  const Attribute* f = g.nodes[p].find_attr("value_float");
  return f != nullptr;
}

// Traces node `down`'s activation input back to its up projections; "" and `block` filled when
// the neurons are independent, else the reason they are not.
std::string trace_block(const Graph& g, const GraphIndex& index, int down, FfnBlock& block) {
  const Node& d = g.nodes[down];
  const Tensor* wd = g.find_initializer(d.inputs[1]);
  block.down = down;
  block.F = wd->dims()[0];
  block.D = wd->dims()[1];
  std::vector<std::string> work{d.inputs[0]};
  std::set<int> inside{down};
  while (!work.empty()) {
    const std::string v = work.back();
    work.pop_back();
    if (!block.values.insert(v).second) continue;
    const int p = index.producer(v);
    if (p < 0) return "its input '" + v + "' is not computed from up projections";
    const Node& n = g.nodes[p];
    inside.insert(p);
    if (n.op_type == "MatMul" && n.domain.empty()) {
      // A hostile MatMul may have one input: node arity is only checked when a kernel runs.
      const Tensor* w = n.inputs.size() == 2 ? g.find_initializer(n.inputs[1]) : nullptr;
      if (!float_matrix(w) || w->dims()[1] != block.F)
        return "MatMul '" + n.name + "' feeding it has no float32 [D, " + std::to_string(block.F) + "] weight";
      if (index.consumers(n.inputs[1]).size() != 1) return "the weight of '" + n.name + "' is shared";
      block.ups.push_back(p);
      continue;
    }
    if (!n.domain.empty() || !(kUnary.count(n.op_type) || kBinary.count(n.op_type)))
      return "op " + n.op_type + " ('" + n.name + "') between the projections is not element-wise";
    for (size_t i = 0; i < n.inputs.size(); ++i) {
      const std::string& in = n.inputs[i];
      if (in.empty()) continue;
      if (i > 0 && kUnary.count(n.op_type)) {
        return "op " + n.op_type + " ('" + n.name + "') has extra inputs";
      }
      if (scalar_constant(g, index, in)) continue;  // a scalar acts on every neuron alike
      if (const Tensor* c = g.find_initializer(in)) {
        if (n.op_type == "Add" && c->dims().size() == 1 && c->dims()[0] == block.F &&
            c->dtype() == DType::kF32 && index.consumers(in).size() == 1) {
          block.biases.push_back(in);
          continue;
        }
        return "constant '" + in + "' of '" + n.name + "' is neither a scalar nor a per-neuron bias";
      }
      if (g.is_graph_input(in)) return "'" + n.name + "' reads graph input '" + in + "'";
      work.push_back(in);
    }
  }
  if (block.ups.empty()) return "no up projection found";
  for (const std::string& v : block.values) {
    if (index.is_graph_output(v)) return "value '" + v + "' is a graph output";
    for (int c : index.consumers(v))
      if (!inside.count(c)) return "value '" + v + "' is also read by '" + g.nodes[c].name + "'";
  }
  return "";
}

// Value shapes recorded with the old neuron count on their last axis get the new one.
void resize_value_infos(Graph& g, const std::set<std::string>& values, int64_t F, int64_t kept) {
  for (auto* list : {&g.value_info, &g.outputs})
    for (ValueInfo& vi : *list)
      if (values.count(vi.name) && vi.type.has_shape && !vi.type.dims.empty() && vi.type.dims.back().value == F)
        vi.type.dims.back().value = kept;
}

}  // namespace

std::vector<OptionSpec> PruneFfn::options() const {
  return {
      float_option("ratio", "0.25", 0, 1, "fraction of every block's feed-forward neurons removed", true, true),
      int_option("multiple-of", 1, 1, 1 << 16, "round the kept neuron count down to a multiple of this (SIMD widths)"),
  };
}

std::unique_ptr<Pass> make_prune_ffn() { return std::make_unique<PruneFfn>(); }

Result<PassResult> PruneFfn::run(Model& model, const PassOptions& options, PassContext& context) {
  const double ratio = option_double(options, "ratio", 0.25);
  const int64_t multiple = option_int(options, "multiple-of", 1);
  PassResult result;
  result.bytes_before = initializer_bytes(model);
  Graph& g = model.graph;
  const GraphIndex index(g);
  std::vector<FfnBlock> blocks;
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    const Node& n = g.nodes[i];
    if (n.op_type != "MatMul" || !n.domain.empty() || n.inputs.size() != 2) continue;
    if (!float_matrix(g.find_initializer(n.inputs[1]))) continue;
    FfnBlock block;
    const std::string why = trace_block(g, index, static_cast<int>(i), block);
    if (!why.empty()) {
      result.decisions.push_back({n.name, n.op_type, "skipped", "not a feed-forward down projection: " + why});
      continue;
    }
    blocks.push_back(std::move(block));
  }
  if (blocks.empty()) {
    // Name the last candidate (an LM head or down projection, usually) and why it failed.
    const std::string last = result.decisions.empty() ? std::string("no MatMul with a float32 weight")
                                                      : result.decisions.back().node + ": " + result.decisions.back().reason;
    return invalid_input(context.model_path, ": prune-ffn found no feed-forward block (MatMul -> element-wise -> ",
                         "MatMul with float32 weights, neurons independent); last candidate ", last);
  }
  PassStatistics stats(context);
  calib::StatisticsRequest request;
  request.kinds = calib::kL2Norm;
  for (const FfnBlock& b : blocks) request.values.push_back(g.nodes[b.down].inputs[0]);
  LLMC_ASSIGN_OR_RETURN(auto measured, stats.require(model, request, "prune-ffn", "each neuron's activation norm"));
  for (const FfnBlock& b : blocks) {
    const Node& down = g.nodes[b.down];
    const calib::ChannelStatistics* s = measured.at(down.inputs[0]);
    if (s->channels != b.F)
      return invalid_input("node '", down.name, "': activation has ", s->channels, " channels, the weight ", b.F, " rows");
    int64_t kept = b.F - static_cast<int64_t>(std::floor(ratio * double(b.F)));
    kept = std::max<int64_t>(kept / multiple * multiple, std::min<int64_t>(multiple, b.F));
    if (kept >= b.F) {
      result.decisions.push_back({down.name, down.op_type, "skipped", str_cat("ratio removes no neuron of ", b.F)});
      continue;
    }
    const float* wd = g.find_initializer(down.inputs[1])->data_as<float>();
    std::vector<double> score(static_cast<size_t>(b.F));
    for (int64_t j = 0; j < b.F; ++j) {
      double row = 0;
      for (int64_t c = 0; c < b.D; ++c) row += double(wd[j * b.D + c]) * wd[j * b.D + c];
      score[j] = s->l2_norm[j] * std::sqrt(row);
    }
    std::vector<int64_t> order(static_cast<size_t>(b.F));
    std::iota(order.begin(), order.end(), 0);
    // Highest scores kept; ties to the lower index, so the choice is deterministic.
    std::stable_sort(order.begin(), order.end(), [&](int64_t x, int64_t y) { return score[x] > score[y]; });
    std::vector<int64_t> keep(order.begin(), order.begin() + kept);
    std::sort(keep.begin(), keep.end());
    for (int up : b.ups) keep_slices(g, g.nodes[up].inputs[1], keep, 1);
    for (const std::string& bias : b.biases) keep_slices(g, bias, keep, 0);
    keep_slices(g, down.inputs[1], keep, 0);
    resize_value_infos(g, b.values, b.F, kept);
    int64_t per_neuron = b.D + static_cast<int64_t>(b.biases.size());  // a down row, a bias each
    for (int up : b.ups) per_neuron += g.find_initializer(g.nodes[up].inputs[1])->dims()[0];  // an up column
    const int64_t removed_params = (b.F - kept) * per_neuron;
    result.decisions.push_back({down.name, down.op_type, "pruned",
                                str_cat("kept ", kept, " of ", b.F, " neurons (", b.ups.size(), " up projections",
                                        b.biases.empty() ? "" : str_cat(", ", b.biases.size(), " biases"), "), ",
                                        removed_params, " parameters removed")});
    ++result.rewrites;
  }
  finish_result(model, result);
  result.summary = str_cat("prune-ffn: ", result.rewrites, " feed-forward blocks narrowed by ratio ", ratio,
                           " from ", stats.samples(), " calibration samples");
  return result;
}

}  // namespace llmc
