// llmcompress inspect MODEL [--json]: opsets, inputs/outputs, op histogram, parameters per
// dtype, largest initializers, metadata.
#include <algorithm>
#include <cstdio>
#include <map>

#include "formats/model_loader.h"
#include "ir/tensor.h"
#include "tools/cli_common.h"
#include "tools/commands.h"

namespace llmc::cli {

namespace {
struct InspectArgs {
  std::string model;
  bool json = false;
  int top = 10;
};

std::string dim_str(const Dim& d) {
  if (d.has_value()) return std::to_string(d.value);
  return d.param.empty() ? "?" : d.param;
}

std::string type_str(const ValueType& t) {
  if (t.kind == ValueType::Kind::kOpaque) return "(non-tensor type)";
  if (t.kind == ValueType::Kind::kNone) return "(no type)";
  std::string s = dtype_name(t.elem);
  if (!t.has_shape) return s + " (unknown rank)";
  s += " [";
  for (size_t i = 0; i < t.dims.size(); ++i) s += (i ? ", " : "") + dim_str(t.dims[i]);
  return s + "]";
}

struct DTypeStats {
  int64_t tensors = 0, params = 0;
  size_t bytes = 0;
};

std::string op_key(const Node& n) { return n.domain.empty() ? n.op_type : n.domain + "::" + n.op_type; }

void print_values(Json& j, const std::vector<ValueInfo>& values) {
  j.begin_array();
  for (const auto& v : values) {
    j.begin_object().field("name", v.name);
    if (v.type.kind == ValueType::Kind::kTensor) {
      j.field("dtype", dtype_name(v.type.elem));
      if (v.type.has_shape) {
        j.key("shape").begin_array();
        for (const auto& d : v.type.dims) d.has_value() ? j.value(d.value) : j.value(dim_str(d));
        j.end_array();
      }
    }
    j.end_object();
  }
  j.end_array();
}

std::string metadata_display(const std::string& key, const std::string& value) {
  if (key.rfind(tokenizer_metadata_key(""), 0) == 0) return "(" + std::to_string(value.size()) + " chars of base64)";
  if (key == kMetaManifest || key == kMetaChatTemplate) return value;  // shown whole
  return value.size() > 120 ? value.substr(0, 117) + "..." : value;
}

Status run_inspect(const InspectArgs& a) {
  LLMC_ASSIGN_OR_RETURN(auto format, detect_model_format(a.model));
  LLMC_ASSIGN_OR_RETURN(Model m, load_model(a.model));
  const Graph& g = m.graph;
  std::map<std::string, int> ops;
  for (const auto& n : g.nodes) ++ops[op_key(n)];
  std::vector<std::pair<std::string, int>> op_list(ops.begin(), ops.end());
  std::stable_sort(op_list.begin(), op_list.end(),
                   [](const auto& x, const auto& y) { return x.second > y.second; });
  std::map<std::string, DTypeStats> per_dtype;
  int64_t params = 0;
  size_t bytes = 0;
  for (const auto& t : g.initializers) {
    auto& s = per_dtype[dtype_name(t.dtype())];
    ++s.tensors;
    s.params += t.numel();
    s.bytes += t.nbytes();
    params += t.numel();
    bytes += t.nbytes();
  }
  std::vector<const Tensor*> largest;
  for (const auto& t : g.initializers) largest.push_back(&t);
  std::stable_sort(largest.begin(), largest.end(),
                   [](const Tensor* x, const Tensor* y) { return x->nbytes() > y->nbytes(); });
  if (largest.size() > static_cast<size_t>(a.top)) largest.resize(a.top);
  const char* format_name = format == ModelFormat::kLlama2c ? "llama2.c checkpoint"
                            : format == ModelFormat::kGguf  ? "gguf"
                            : format == ModelFormat::kHuggingFace ? "Hugging Face checkpoint"
                                                            : "onnx";
  // The tokenizer it carries, if any (a broken one is reported, not fatal: inspect still shows the rest).
  std::string tokenizer = "none";
  if (auto tok = model_tokenizer(m, a.model, ""); tok.is_ok())
    tokenizer = str_cat((*tok)->kind(), ", ", (*tok)->vocab_size(), " tokens, bos ", (*tok)->bos_id(), ", eos ",
                        (*tok)->eos_id(), (*tok)->adds_bos() ? ", adds bos" : "");
  else if (m.find_metadata(kMetaTokenizer) || m.find_metadata(tokenizer_metadata_key("bpe")) ||
           m.find_metadata(tokenizer_metadata_key("wordpiece")))
    tokenizer = "unreadable: " + tok.status().message();

  if (a.json) {
    Json j;
    j.begin_object().field("file", a.model).field("format", format_name);
    j.field("ir_version", m.ir_version).field("producer", m.producer_name + " " + m.producer_version);
    j.key("opsets").begin_object();
    for (const auto& o : m.opset_imports) j.field(o.domain.empty() ? "ai.onnx" : o.domain, o.version);
    j.end_object();
    j.key("inputs");
    print_values(j, g.inputs);
    j.key("outputs");
    print_values(j, g.outputs);
    j.field("tokenizer", tokenizer);
    j.field("nodes", g.nodes.size());
    j.key("ops").begin_object();
    for (const auto& [op, count] : op_list) j.field(op, count);
    j.end_object();
    j.field("parameters", params).field("weight_bytes", bytes).field("initializers", g.initializers.size());
    j.key("by_dtype").begin_object();
    for (const auto& [name, s] : per_dtype)
      j.key(name).begin_object().field("tensors", s.tensors).field("parameters", s.params)
          .field("bytes", s.bytes).end_object();
    j.end_object();
    j.key("largest_initializers").begin_array();
    for (const Tensor* t : largest) {
      j.begin_object().field("name", t->name()).field("dtype", dtype_name(t->dtype()));
      j.key("shape").begin_array();
      for (int64_t d : t->dims()) j.value(d);
      j.end_array().field("bytes", t->nbytes()).end_object();
    }
    j.end_array();
    j.key("metadata").begin_object();
    for (const auto& [k, v] : m.metadata_props) j.field(k, metadata_display(k, v));
    j.end_object().end_object();
    std::printf("%s\n", j.str().c_str());
    return Status::ok();
  }

  std::printf("%s (%s)\n", a.model.c_str(), format_name);
  std::printf("ir_version %lld, producer %s %s, opsets:", static_cast<long long>(m.ir_version),
              m.producer_name.empty() ? "?" : m.producer_name.c_str(), m.producer_version.c_str());
  for (const auto& o : m.opset_imports)
    std::printf(" %s=%lld", o.domain.empty() ? "ai.onnx" : o.domain.c_str(),
                static_cast<long long>(o.version));
  std::printf("\ninputs (%zu):\n", g.inputs.size());
  for (const auto& v : g.inputs) std::printf("  %-40s %s\n", v.name.c_str(), type_str(v.type).c_str());
  std::printf("outputs (%zu):\n", g.outputs.size());
  for (const auto& v : g.outputs) std::printf("  %-40s %s\n", v.name.c_str(), type_str(v.type).c_str());
  std::printf("tokenizer: %s\n", tokenizer.c_str());
  std::printf("ops (%zu nodes):\n", g.nodes.size());
  for (const auto& [op, count] : op_list) std::printf("  %-32s %6d\n", op.c_str(), count);
  std::printf("parameters: %lld in %zu initializers, %.3f MB\n", static_cast<long long>(params),
              g.initializers.size(), bytes / 1e6);
  for (const auto& [name, s] : per_dtype)
    std::printf("  %-6s %6lld tensors %14lld params %14zu bytes\n", name.c_str(),
                static_cast<long long>(s.tensors), static_cast<long long>(s.params), s.bytes);
  std::printf("largest initializers:\n");
  for (const Tensor* t : largest)
    std::printf("  %-48s %-5s %-18s %12zu bytes\n", t->name().c_str(), dtype_name(t->dtype()).c_str(),
                shape_str(t->dims()).c_str(), t->nbytes());
  if (!m.metadata_props.empty()) std::printf("metadata:\n");
  for (const auto& [k, v] : m.metadata_props)
    std::printf("  %s = %s\n", k.c_str(), metadata_display(k, v).c_str());
  return Status::ok();
}
}  // namespace

void add_inspect_command(CLI::App& app, int& exit_code) {
  auto args = std::make_shared<InspectArgs>();
  CLI::App* cmd = app.add_subcommand("inspect", "Summarise a model: IO, ops, parameters, metadata");
  cmd->add_option("model", args->model, "ONNX model, llama2.c checkpoint or GGUF file")->required();
  cmd->add_flag("--json", args->json, "print JSON");
  cmd->add_option("--top", args->top, "how many of the largest initializers to list")
      ->capture_default_str();
  cmd->callback([args, &exit_code] { exit_code = report("inspect", run_inspect(*args)); });
}

}  // namespace llmc::cli
