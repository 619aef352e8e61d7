#include "passes/nbits_common.h"

#include <map>

#include "ir/graph_rewrite.h"
#include "ir/graph_utils.h"
#include "passes/quant_utils.h"
#include "runtime/file_pages.h"

namespace llmc {

std::vector<OptionSpec> nbits_option_specs() {
  return {
      choice_option("bits", "4", {"4", "8"}, "bits per weight (8: the 8-bit form of the same op)"),
      int_option("block-size", 32, 1, 1 << 16, "inputs per block, each with its own scale (a power of two >= 16)"),
      bool_option("symmetric", false, "no zero points (zero point 2^(bits-1)); default asymmetric with uint8 zero points"),
      int_option("accuracy-level", 4, 0, 4,
                 "MatMulNBits accuracy_level: 4 = activations quantised to int8 per block inside the product "
                 "(fast on CPUs), 0/1 = float32 products"),
      choice_option("lm-head", "8", {"4", "8", "float"},
                    "bits of the LM head (the MatMul writing a graph output), or float to leave it alone"),
      string_option("layer-bits", "",
                    "per-layer bits: 'regex=4|8|float' pairs, comma-separated, each matching a whole node or weight name "
                    "as exclude does (first match wins; before lm-head)"),
      string_option("exclude", "", "nodes/weights left float (names or regular expressions, comma-separated)"),
  };
}

Result<NBitsOptions> parse_nbits_options(const PassOptions& o) {
  NBitsOptions p;
  p.format.bits = int(option_int(o, "bits", 4));
  p.format.block = option_int(o, "block-size", 32);
  p.format.symmetric = option_flag(o, "symmetric");
  if (std::string why = block_size_problem(p.format.block); !why.empty()) return invalid_input("block-size: ", why);
  p.accuracy_level = int(option_int(o, "accuracy-level", 4));
  p.lm_head = option_string(o, "lm-head", "8");
  p.exclude = option_string(o, "exclude", "");
  const std::string layer_bits = option_string(o, "layer-bits", "");
  size_t start = 0;
  while (start < layer_bits.size()) {
    size_t end = layer_bits.find(',', start);
    if (end == std::string::npos) end = layer_bits.size();
    const std::string item = layer_bits.substr(start, end - start);
    start = end + 1;
    if (item.empty()) continue;
    const size_t eq = item.rfind('=');
    const std::string bits = eq == std::string::npos ? "" : item.substr(eq + 1);
    if (eq == std::string::npos || eq == 0 || (bits != "4" && bits != "8" && bits != "float"))
      return invalid_input("layer-bits: '", item, "' is not 'regex=4', 'regex=8' or 'regex=float'");
    try {
      p.layer_bits.emplace_back(std::regex(item.substr(0, eq)), bits);
    } catch (const std::regex_error& e) {
      return invalid_input("layer-bits: '", item.substr(0, eq), "' is not a regular expression (", e.what(), ")");
    }
    p.layer_bits_text.push_back(item);
  }
  return p;
}

Result<std::vector<NBitsTarget>> select_nbits_targets(const Model& model, const NBitsOptions& options,
                                                      PassResult& result) {
  const Graph& g = model.graph;
  const GraphIndex idx(g);
  LLMC_ASSIGN_OR_RETURN(NodeFilter exclude, NodeFilter::parse(options.exclude));
  std::vector<NBitsTarget> targets;
  std::map<std::string, size_t> by_weight;
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    const Node& n = g.nodes[i];
    if (!n.domain.empty() || (n.op_type != "MatMul" && n.op_type != "Gemm")) continue;
    auto skip = [&](const std::string& why) { result.decisions.push_back({n.name, n.op_type, "skipped", why}); };
    if (n.op_type == "Gemm") {
      skip("Gemm: weight-only quantisation rewrites MatMul only");
      continue;
    }
    const Tensor* w = nullptr;
    if (n.inputs.size() != 2 || n.outputs.empty()) continue;
    if (std::string why = weight_unsuitable(g, n, 1, &w); !why.empty()) {
      skip(why);
      continue;
    }
    if (g.find_initializer(n.inputs[0])) {
      skip("activation input is a constant");
      continue;
    }
    if (exclude.excluded(n.name, n.inputs[1])) {
      skip("excluded by exclude");
      continue;
    }
    const bool lm_head = idx.is_graph_output(n.outputs[0]);
    std::string bits = lm_head ? options.lm_head : std::to_string(options.format.bits);
    std::string why_bits = lm_head ? "lm-head" : "";
    for (size_t r = 0; r < options.layer_bits.size(); ++r)
      if (std::regex_match(n.name, options.layer_bits[r].first) ||
          std::regex_match(n.inputs[1], options.layer_bits[r].first)) {
        bits = options.layer_bits[r].second;
        why_bits = "layer-bits '" + options.layer_bits_text[r] + "'";
        break;
      }
    if (bits == "float") {
      skip("kept float by " + why_bits);
      continue;
    }
    NBitsFormat format = options.format;
    format.bits = std::stoi(bits);
    if (auto it = by_weight.find(n.inputs[1]); it != by_weight.end()) {
      NBitsTarget& t = targets[it->second];
      if (t.format.bits == format.bits) {
        t.nodes.push_back(i);
        continue;
      }
      skip(str_cat("its weight is quantised to ", t.format.bits, " bits for node '", g.nodes[t.nodes[0]].name,
                   "', this node asks for ", format.bits));
      continue;
    }
    NBitsTarget t;
    t.nodes.push_back(i);
    t.weight = n.inputs[1];
    t.K = w->dims()[0];
    t.N = w->dims()[1];
    t.format = format;
    t.lm_head = lm_head;
    by_weight[t.weight] = targets.size();
    targets.push_back(std::move(t));
  }
  for (const auto& p : exclude.unmatched()) result.warnings.push_back("exclude '" + p + "' matched no node or weight");
  return targets;
}

std::vector<float> weight_rows(const Model& model, const NBitsTarget& t, rt::ThreadPool* pool) {
  const Tensor* w = model.graph.find_initializer(t.weight);
  const float* src = w->data_as<float>();
  std::vector<float> rows(size_t(t.N * t.K));
  constexpr int64_t kTile = 64;  // a [K, N] weight's row n is a column: tile so each page is read once
  auto tiles = [&](int64_t n_tile0, int64_t n_tile1) {
    for (int64_t n0 = n_tile0 * kTile; n0 < std::min(t.N, n_tile1 * kTile); n0 += kTile)
      for (int64_t k0 = 0; k0 < t.K; k0 += kTile)
        for (int64_t k = k0; k < std::min(t.K, k0 + kTile); ++k)
          for (int64_t n = n0; n < std::min(t.N, n0 + kTile); ++n) rows[size_t(n * t.K + k)] = src[k * t.N + n];
  };
  const int64_t n_tiles = (t.N + kTile - 1) / kTile;
  if (pool) pool->parallel_for(n_tiles, 1, tiles);
  else tiles(0, n_tiles);
  rt::release_file_pages(w->data(), w->nbytes());  // read once: peak memory holds the float model once
  return rows;
}

void rewrite_nbits(Model& model, const std::vector<NBitsTarget>& targets, std::vector<NBitsTensors>&& packed,
                   const NBitsOptions& options, const std::string& method, const std::vector<std::string>& notes,
                   PassResult& result) {
  Graph& g = model.graph;
  std::map<size_t, size_t> target_of;  // node index -> target
  for (size_t t = 0; t < targets.size(); ++t)
    for (size_t n : targets[t].nodes) target_of[n] = t;
  int64_t float_bytes = 0, packed_bytes = 0, head_float = 0, head_packed = 0;
  std::vector<std::vector<std::string>> names(targets.size());
  GraphRewrite rw(g);
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    Node& node = g.nodes[i];
    auto it = target_of.find(i);
    if (it == target_of.end()) {
      rw.keep(std::move(node));
      continue;
    }
    const NBitsTarget& t = targets[it->second];
    NBitsTensors& p = packed[it->second];
    auto& ins = names[it->second];
    if (ins.empty()) {
      const int64_t bytes = int64_t(p.b.nbytes() + p.scales.nbytes() + (p.zero_points ? p.zero_points->nbytes() : 0));
      (t.lm_head ? head_float : float_bytes) += t.K * t.N * 4;
      (t.lm_head ? head_packed : packed_bytes) += bytes;
      ins.push_back(rw.initializer(std::move(p.b)));
      ins.push_back(rw.initializer(std::move(p.scales)));
      if (p.zero_points) ins.push_back(rw.initializer(std::move(*p.zero_points)));
    }
    result.decisions.push_back({node.name, node.op_type, "quantized",
                                str_cat(t.format.describe(), " (", method, t.lm_head ? ", LM head" : "", ")",
                                        notes.empty() ? std::string() : notes[it->second])});
    node.op_type = "MatMulNBits";
    node.domain = "com.microsoft";
    node.inputs.resize(1);
    node.inputs.insert(node.inputs.end(), ins.begin(), ins.end());
    node.attributes = {Attribute::make_int("K", t.K), Attribute::make_int("N", t.N),
                       Attribute::make_int("bits", t.format.bits), Attribute::make_int("block_size", t.format.block),
                       Attribute::make_int("accuracy_level", options.accuracy_level)};
    rw.keep(std::move(node));
    ++result.rewrites;
  }
  rw.commit();
  if (result.rewrites > 0 && model.opset("com.microsoft") < 1) model.set_opset("com.microsoft", 1);
  finish_result(model, result);
  auto ratio = [](int64_t a, int64_t b) { return b > 0 ? double(a) / double(b) : 0.0; };
  result.summary = str_cat(result.rewrites, " MatMuls to MatMulNBits (", options.format.describe(), ", ", method,
                           "): their weights ", float_bytes, " -> ", packed_bytes, " bytes (",
                           ratio(packed_bytes, float_bytes), "x)");
  if (head_float > 0)
    result.summary += str_cat(", LM head ", head_float, " -> ", head_packed, " bytes (", ratio(head_packed, head_float), "x)");
}

}  // namespace llmc
