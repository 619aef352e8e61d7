// ONNX protobuf -> ir::Model.
#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>
#include <google/protobuf/unknown_field_set.h>

#include <algorithm>
#include <climits>
#include <filesystem>
#include <map>
#include <set>

#include <sys/mman.h>
#include <unistd.h>

#include "formats/mapped_file.h"
#include "formats/onnx_skeleton.h"
#include "formats/onnx_format.h"
#include "ir/checked_math.h"
#include "ir/graph_utils.h"
#include "onnx/onnx_pb.h"

namespace llmc {

namespace {

namespace fs = std::filesystem;

// Maps each external data file once; tensors view into it.
class ExternalFiles {
 public:
  std::vector<std::string> paths() const {
    std::vector<std::string> out;
    for (const auto& [path, file] : files_) out.push_back(path);
    return out;
  }
  explicit ExternalFiles(std::string model_path)
      : model_path_(model_path), base_dir_(fs::path(model_path).parent_path().string()) {}

  // A location may not leave the model's folder through a symlink (file or folder) either: a
  // shared model with "weights -> ~/.ssh/id_rsa" would copy the key into our output. The folder
  // is the model path's, or the real file's when the model is itself a symlink (a Hugging Face
  // cache links snapshots/REV/model.onnx and its data to blobs/, side by side).
  Status check_contained(const std::string& full) const {
    std::error_code ec;
    const fs::path real = fs::canonical(full, ec);
    if (ec) return Status::ok();  // missing: MappedFile::open names it
    const auto inside = [&](const fs::path& dir) {
      std::error_code e;
      const fs::path d = fs::canonical(dir.empty() ? fs::path(".") : dir, e);
      if (e) return false;
      const auto rel = real.lexically_relative(d);
      return !rel.empty() && *rel.begin() != "..";
    };
    if (inside(base_dir_)) return Status::ok();
    const fs::path real_model = fs::canonical(model_path_, ec);
    if (!ec && inside(real_model.parent_path())) return Status::ok();
    return invalid_input("external data file ", full, " resolves to ", real.string(),
                         ", outside the model's folder (through a symlink); copy the file there");
  }

  Result<Tensor> view(const onnx::TensorProto& tp, DType dtype, std::vector<int64_t> dims) {
    std::string location;
    uint64_t offset = 0, length = 0;
    bool has_length = false;
    for (const auto& kv : tp.external_data()) {
      if (kv.key() == "location") {
        location = kv.value();
        continue;
      }
      if (kv.key() != "offset" && kv.key() != "length") continue;
      // The whole value must be a non-negative decimal: "12abc" is not 12, "-7" is not "unset".
      auto v = parse_u64(kv.value());
      if (!v)
        return invalid_input("tensor '", tp.name(), "': external data ", kv.key(), " '", kv.value(),
                             "' is not a non-negative integer");
      if (kv.key() == "offset") offset = *v;
      else length = *v, has_length = true;
    }
    if (location.empty())
      return invalid_input("tensor '", tp.name(), "' is marked external but has no location");
    const fs::path loc(location);
    if (loc.is_absolute() || location.find("..") != std::string::npos)
      return invalid_input("tensor '", tp.name(), "': external data location '", location,
                           "' must be a relative path inside the model's directory");
    const std::string full = (fs::path(base_dir_.empty() ? "." : base_dir_) / loc).string();
    auto it = files_.find(full);
    if (it == files_.end()) {
      LLMC_RETURN_IF_ERROR(check_contained(full).with_context("tensor '" + tp.name() + "'"));
      auto mf = MappedFile::open(full);
      if (!mf.is_ok())
        return invalid_input("tensor '", tp.name(), "': cannot open external data file: ",
                             mf.status().message());
      it = files_.emplace(full, std::move(mf).value()).first;
    }
    const auto& file = it->second;
    const size_t expected = dtype_storage_bytes(dtype, shape_numel(dims));  // checked by tensor()
    if (!has_length) length = expected;
    if (length != expected)
      return invalid_input("tensor '", tp.name(), "': external data length ", length,
                           " does not match shape ", shape_str(dims), " of ", dtype_name(dtype),
                           " (", expected, " bytes)");
    if (offset > file->size() || length > file->size() - offset)
      return invalid_input("tensor '", tp.name(), "': external data file ", full, " is ",
                           file->size(), " bytes, too short for offset ", offset, " + length ",
                           length);
    return Tensor::view(tp.name(), dtype, std::move(dims), file, file->data() + offset,
                        static_cast<size_t>(length));
  }

 private:
  std::string model_path_, base_dir_;
  std::map<std::string, std::shared_ptr<const MappedFile>> files_;
};

// Fields our protobuf schema (ONNX 1.12) does not know, as bytes to write back later.
std::string unknown_fields(const google::protobuf::Message& msg) {
  std::string bytes;
  msg.GetReflection()->GetUnknownFields(msg).SerializeToString(&bytes);
  return bytes;
}

template <typename Dst, typename Src>
std::string pack_as(const Src& values) {
  std::string bytes(values.size() * sizeof(Dst), '\0');
  Dst* out = reinterpret_cast<Dst*>(bytes.data());
  for (int i = 0; i < values.size(); ++i) out[i] = static_cast<Dst>(values.Get(i));
  return bytes;
}

// Typed-field storage (float_data, int32_data, ...) -> little-endian raw bytes, per the rules
// in onnx.proto: narrow ints, bool, f16/bf16/f8 and packed 4-bit bytes live in int32_data.
Result<std::string> typed_fields_to_bytes(const onnx::TensorProto& tp, DType dtype) {
  switch (dtype) {
    case DType::kF32: case DType::kComplex64: return pack_as<float>(tp.float_data());
    case DType::kF64: case DType::kComplex128: return pack_as<double>(tp.double_data());
    case DType::kI64: return pack_as<int64_t>(tp.int64_data());
    case DType::kI32: return pack_as<int32_t>(tp.int32_data());
    case DType::kU32: return pack_as<uint32_t>(tp.uint64_data());
    case DType::kU64: return pack_as<uint64_t>(tp.uint64_data());
    case DType::kI16: return pack_as<int16_t>(tp.int32_data());
    case DType::kU16: case DType::kF16: case DType::kBF16: return pack_as<uint16_t>(tp.int32_data());
    case DType::kI8: return pack_as<int8_t>(tp.int32_data());
    case DType::kU8: case DType::kBool: case DType::kF8E4M3FN: case DType::kF8E4M3FNUZ:
    case DType::kF8E5M2: case DType::kF8E5M2FNUZ: case DType::kF8E8M0:
    case DType::kI4: case DType::kU4: case DType::kF4E2M1: case DType::kI2: case DType::kU2:
      return pack_as<uint8_t>(tp.int32_data());
    default:
      return unsupported("tensor '", tp.name(), "' has dtype ", dtype_name(dtype),
                         " stored in typed fields, which is not supported");
  }
}

// The bytes of an inline initializer, found by split_onnx_skeleton: viewed in the mapped file
// when element-aligned (x86 tolerates less, but vectorised loops assume element alignment),
// else copied once into aligned memory and the file pages handed back to the kernel, so the
// resident set holds each weight once either way.
Tensor inline_weights(const onnx::TensorProto& tp, DType dtype, std::vector<int64_t> dims,
                      const std::shared_ptr<const MappedFile>& file, const RawSpan& span) {
  const uint8_t* p = file->data() + span.offset;
  const size_t align = std::max(1, dtype_bits(dtype) / 8);
  if (span.offset % align == 0) return Tensor::view(tp.name(), dtype, std::move(dims), file, p, span.size);
  Tensor t = Tensor::from_bytes(tp.name(), dtype, std::move(dims), p, span.size);
  const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  const size_t first = (span.offset + page - 1) / page * page, last = (span.offset + span.size) / page * page;
  if (last > first) madvise(const_cast<uint8_t*>(file->data()) + first, last - first, MADV_DONTNEED);
  return t;
}

class Reader {
 public:
  std::vector<std::string> external_paths() const { return external_.paths(); }
  explicit Reader(const std::string& path, std::shared_ptr<const MappedFile> file = nullptr,
                  const std::vector<RawSpan>* spans = nullptr)
      : external_(path), file_(std::move(file)), spans_(spans) {}

  Result<Tensor> tensor(onnx::TensorProto& tp, const RawSpan* span = nullptr) {
    if (!dtype_is_known(tp.data_type()))
      return unsupported("tensor '", tp.name(), "' has unknown data type ", tp.data_type());
    const DType dtype = static_cast<DType>(tp.data_type());
    std::vector<int64_t> dims(tp.dims().begin(), tp.dims().end());
    for (int64_t d : dims)
      if (d < 0) return invalid_input("tensor '", tp.name(), "' has negative dim ", d);
    // Checked before any byte count is compared: a product that wraps would match empty data.
    if (!checked_shape_bytes(dtype, dims))
      return invalid_input("tensor '", tp.name(), "' has shape ", shape_str(dims), " of ", dtype_name(dtype),
                           ", whose size overflows 64 bits");
    if (tp.has_segment()) return unsupported("tensor '", tp.name(), "' is segmented");
    Tensor t;
    if (dtype == DType::kString) {
      t = Tensor::strings(tp.name(), dims, {tp.string_data().begin(), tp.string_data().end()});
      if (static_cast<int64_t>(t.string_values().size()) != t.numel())
        return invalid_input("tensor '", tp.name(), "' has ", t.string_values().size(),
                             " strings but shape ", shape_str(dims));
    } else if (tp.data_location() == onnx::TensorProto::EXTERNAL) {
      LLMC_ASSIGN_OR_RETURN(t, external_.view(tp, dtype, dims));
    } else if (span && span->present) {
      t = inline_weights(tp, dtype, dims, file_, *span);
    } else if (tp.has_raw_data()) {
      // Moving the bytes out of the message avoids copying the weights.
      t = Tensor::from_string_bytes(tp.name(), dtype, dims, std::move(*tp.mutable_raw_data()));
    } else {
      LLMC_ASSIGN_OR_RETURN(auto bytes, typed_fields_to_bytes(tp, dtype));
      t = Tensor::from_string_bytes(tp.name(), dtype, dims, std::move(bytes));
    }
    if (dtype != DType::kString && t.nbytes() != t.expected_nbytes())
      return invalid_input("tensor '", tp.name(), "' holds ", t.nbytes(), " bytes but shape ",
                           shape_str(dims), " of ", dtype_name(dtype), " needs ",
                           t.expected_nbytes());
    t.set_doc_string(tp.doc_string());
    return t;
  }

  ValueType type(const onnx::TypeProto& tp) {
    ValueType vt;
    if (!tp.has_tensor_type()) {
      if (tp.value_case() != onnx::TypeProto::VALUE_NOT_SET || tp.has_denotation()) {
        vt.kind = ValueType::Kind::kOpaque;
        vt.opaque = tp.SerializeAsString();
      }
      return vt;
    }
    const auto& tt = tp.tensor_type();
    vt.kind = ValueType::Kind::kTensor;
    vt.elem = static_cast<DType>(tt.elem_type());
    vt.denotation = tp.denotation();
    vt.has_shape = tt.has_shape();
    for (const auto& d : tt.shape().dim()) {
      Dim dim;
      if (d.has_dim_value()) dim.value = d.dim_value();
      if (d.has_dim_param()) dim.param = d.dim_param();
      dim.denotation = d.denotation();
      vt.dims.push_back(std::move(dim));
    }
    return vt;
  }

  ValueInfo value_info(const onnx::ValueInfoProto& v) {
    return ValueInfo{v.name(), v.has_type() ? type(v.type()) : ValueType{}, v.doc_string(),
                     unknown_fields(v)};
  }

  Result<Attribute> attribute(onnx::AttributeProto& ap, std::set<std::string>& outer_refs) {
    Attribute a;
    a.name = ap.name();
    a.ref_attr_name = ap.ref_attr_name();
    a.doc_string = ap.doc_string();
    a.extra_fields = unknown_fields(ap);
    auto kind = static_cast<AttrKind>(ap.type());
    if (kind == AttrKind::kUndefined) kind = infer_kind(ap);  // very old models omit `type`
    a.kind = kind;
    switch (kind) {
      case AttrKind::kFloat: a.f = ap.f(); break;
      case AttrKind::kInt: a.i = ap.i(); break;
      case AttrKind::kString: a.s = ap.s(); break;
      case AttrKind::kFloats: a.floats.assign(ap.floats().begin(), ap.floats().end()); break;
      case AttrKind::kInts: a.ints.assign(ap.ints().begin(), ap.ints().end()); break;
      case AttrKind::kStrings: a.strings.assign(ap.strings().begin(), ap.strings().end()); break;
      case AttrKind::kTensor: {
        LLMC_ASSIGN_OR_RETURN(auto t, tensor(*ap.mutable_t()));
        a.tensors.push_back(std::move(t));
        break;
      }
      case AttrKind::kTensors:
        for (auto& tp : *ap.mutable_tensors()) {
          LLMC_ASSIGN_OR_RETURN(auto t, tensor(tp));
          a.tensors.push_back(std::move(t));
        }
        break;
      case AttrKind::kGraph:
        collect_outer_refs(ap.g(), outer_refs);
        a.opaque.push_back(ap.g().SerializeAsString());
        break;
      case AttrKind::kGraphs:
        for (const auto& g : ap.graphs()) {
          collect_outer_refs(g, outer_refs);
          a.opaque.push_back(g.SerializeAsString());
        }
        break;
      case AttrKind::kSparseTensor: a.opaque.push_back(ap.sparse_tensor().SerializeAsString()); break;
      case AttrKind::kSparseTensors:
        for (const auto& s : ap.sparse_tensors()) a.opaque.push_back(s.SerializeAsString());
        break;
      case AttrKind::kTypeProto: a.opaque.push_back(ap.tp().SerializeAsString()); break;
      case AttrKind::kTypeProtos:
        for (const auto& t : ap.type_protos()) a.opaque.push_back(t.SerializeAsString());
        break;
      default:
        return invalid_input("attribute '", ap.name(), "' has unknown type ", ap.type());
    }
    return a;
  }

  Result<Graph> graph(onnx::GraphProto& gp) {
    Graph g;
    g.name = gp.name();
    g.doc_string = gp.doc_string();
    for (const auto& v : gp.input()) g.inputs.push_back(value_info(v));
    for (const auto& v : gp.output()) g.outputs.push_back(value_info(v));
    for (const auto& v : gp.value_info()) g.value_info.push_back(value_info(v));
    if (spans_ && spans_->size() != static_cast<size_t>(gp.initializer_size()))
      return internal_error("skeleton found ", spans_->size(), " initializers, protobuf ", gp.initializer_size());
    for (int k = 0; k < gp.initializer_size(); ++k) {
      auto& tp = *gp.mutable_initializer(k);
      auto t = tensor(tp, spans_ ? &(*spans_)[k] : nullptr);
      if (!t.is_ok()) return t.status().with_context("initializer '" + tp.name() + "'");
      g.initializers.push_back(std::move(t).value());
    }
    for (const auto& s : gp.sparse_initializer()) {
      g.sparse_initializers.push_back(s.SerializeAsString());
      g.sparse_initializer_names.push_back(s.values().name());
    }
    for (const auto& q : gp.quantization_annotation())
      g.quantization_annotation.push_back(q.SerializeAsString());
    g.extra_fields = unknown_fields(gp);
    g.nodes.reserve(gp.node_size());
    for (auto& np : *gp.mutable_node()) {
      Node n;
      n.name = np.name();
      n.op_type = np.op_type();
      n.domain = np.domain();
      n.doc_string = np.doc_string();
      n.inputs.assign(np.input().begin(), np.input().end());
      n.outputs.assign(np.output().begin(), np.output().end());
      n.extra_fields = unknown_fields(np);
      std::set<std::string> outer_refs;
      for (auto& ap : *np.mutable_attribute()) {
        auto a = attribute(ap, outer_refs);
        if (!a.is_ok())
          return a.status().with_context("node '" + np.name() + "' (" + np.op_type() + ")");
        n.attributes.push_back(std::move(a).value());
      }
      n.implicit_inputs.assign(outer_refs.begin(), outer_refs.end());
      g.nodes.push_back(std::move(n));
    }
    return g;
  }

 private:
  static AttrKind infer_kind(const onnx::AttributeProto& ap) {
    if (ap.has_f()) return AttrKind::kFloat;
    if (ap.has_i()) return AttrKind::kInt;
    if (ap.has_s()) return AttrKind::kString;
    if (ap.has_t()) return AttrKind::kTensor;
    if (ap.has_g()) return AttrKind::kGraph;
    if (ap.floats_size()) return AttrKind::kFloats;
    if (ap.ints_size()) return AttrKind::kInts;
    if (ap.strings_size()) return AttrKind::kStrings;
    if (ap.tensors_size()) return AttrKind::kTensors;
    if (ap.graphs_size()) return AttrKind::kGraphs;
    return AttrKind::kUndefined;
  }

  // Names a subgraph reads from enclosing scopes (defined neither inside it nor by its inputs).
  static void collect_outer_refs(const onnx::GraphProto& g, std::set<std::string>& refs) {
    std::set<std::string> local;
    for (const auto& v : g.input()) local.insert(v.name());
    for (const auto& t : g.initializer()) local.insert(t.name());
    for (const auto& s : g.sparse_initializer()) local.insert(s.values().name());
    for (const auto& n : g.node())
      for (const auto& o : n.output()) local.insert(o);
    auto note = [&](const std::string& name) {
      if (!name.empty() && !local.count(name)) refs.insert(name);
    };
    for (const auto& n : g.node()) {
      for (const auto& in : n.input()) note(in);
      for (const auto& a : n.attribute()) {
        std::set<std::string> inner;
        if (a.has_g()) collect_outer_refs(a.g(), inner);
        for (const auto& sg : a.graphs()) collect_outer_refs(sg, inner);
        for (const auto& name : inner) note(name);
      }
    }
    for (const auto& o : g.output()) note(o.name());
  }

  ExternalFiles external_;
  std::shared_ptr<const MappedFile> file_;
  const std::vector<RawSpan>* spans_;
};

// Some exporters (PyTorch 1.6's gpt2_past.onnx) emit several Constant nodes with one output
// name. ONNX Runtime turns Constants into initializers and keeps the last one in file order
// ("the model will use the latest encountered initializer"); we do the same by dropping the
// earlier definitions, so the graph is valid SSA and computes what ONNX Runtime computes.
// Duplicates involving any other op stay an error (reported by topological_sort).
void keep_last_constant_definitions(Graph& g) {
  std::map<std::string, int> last_constant;
  for (int i = 0; i < static_cast<int>(g.nodes.size()); ++i) {
    const Node& n = g.nodes[i];
    if (n.op_type == "Constant" && n.domain.empty() && n.outputs.size() == 1)
      last_constant[n.outputs[0]] = i;
  }
  std::map<std::string, int> definitions;
  for (const auto& t : g.initializers) ++definitions[t.name()];
  for (const auto& n : g.nodes)
    for (const auto& o : n.outputs) ++definitions[o];
  std::vector<Node> kept;
  for (int i = 0; i < static_cast<int>(g.nodes.size()); ++i) {
    const Node& n = g.nodes[i];
    const bool shadowed = n.op_type == "Constant" && n.domain.empty() && n.outputs.size() == 1 &&
                          last_constant[n.outputs[0]] != i && definitions[n.outputs[0]] > 1;
    if (!shadowed) kept.push_back(std::move(g.nodes[i]));
  }
  g.nodes = std::move(kept);
  std::vector<Tensor> inits;
  for (auto& t : g.initializers)
    if (!last_constant.count(t.name())) inits.push_back(std::move(t));
  g.initializers = std::move(inits);
}

}  // namespace

Result<Tensor> read_tensor_proto_file(const std::string& path) {
  LLMC_ASSIGN_OR_RETURN(auto file, MappedFile::open(path));
  if (file->size() == 0) return invalid_input(path, ": file is empty");
  onnx::TensorProto tp;
  if (!tp.ParseFromArray(file->data(), static_cast<int>(file->size())))
    return invalid_input(path, ": not a valid TensorProto");
  Reader reader(path);
  auto t = reader.tensor(tp);
  if (!t.is_ok()) return t.status().with_context(path);
  return t;
}

Result<Model> read_onnx(const std::string& path, std::vector<std::string>* external_files) {
  LLMC_ASSIGN_OR_RETURN(auto file, MappedFile::open(path));
  if (file->size() == 0) return invalid_input(path, ": file is empty");
  if (file->size() > static_cast<size_t>(INT_MAX))
    return unsupported(path, ": ONNX protobuf files over 2 GB are not valid; weights that large "
                             "belong in external data");
  auto skeleton = split_onnx_skeleton(file->data(), file->size());
  if (!skeleton.is_ok()) return skeleton.status().with_context(path);
  onnx::ModelProto mp;
  {
    const std::string& bytes = skeleton->bytes;
    google::protobuf::io::ArrayInputStream raw(bytes.data(), static_cast<int>(bytes.size()));
    google::protobuf::io::CodedInputStream coded(&raw);
    coded.SetTotalBytesLimit(INT_MAX);
    if (!mp.ParseFromCodedStream(&coded) || !coded.ConsumedEntireMessage())
      return invalid_input(path, ": not a valid ONNX model (protobuf parse failed: the file is "
                                 "truncated or not ONNX)");
  }
  if (!mp.has_graph() || mp.ir_version() <= 0)
    return invalid_input(path, ": not an ONNX model (", mp.has_graph() ? "no ir_version" : "no graph",
                         ")");
  Model m;
  m.ir_version = mp.ir_version();
  for (const auto& o : mp.opset_import()) m.opset_imports.push_back({o.domain(), o.version()});
  m.producer_name = mp.producer_name();
  m.producer_version = mp.producer_version();
  m.domain = mp.domain();
  m.model_version = mp.model_version();
  m.doc_string = mp.doc_string();
  for (const auto& kv : mp.metadata_props()) m.metadata_props.emplace_back(kv.key(), kv.value());
  for (const auto& f : mp.functions()) m.functions.push_back(f.SerializeAsString());
  for (const auto& t : mp.training_info()) m.training_info.push_back(t.SerializeAsString());
  m.extra_fields = unknown_fields(mp);
  Reader reader(path, file, &skeleton->initializer_raw);
  auto graph = reader.graph(*mp.mutable_graph());
  if (!graph.is_ok()) return graph.status().with_context(path);
  m.graph = std::move(graph).value();
  if (external_files) *external_files = reader.external_paths();
  keep_last_constant_definitions(m.graph);
  LLMC_RETURN_IF_ERROR(topological_sort(m.graph).with_context(path));
  LLMC_RETURN_IF_ERROR(verify(m.graph).with_context(path));
  return m;
}

}  // namespace llmc
