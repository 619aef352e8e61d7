// ir::Model -> ONNX protobuf (+ optional external data side file), written atomically.
//
// The file is streamed: protobuf serialises everything but the initializers' raw_data (model
// and graph fields before and after the initializers, each initializer's fields before and
// after raw_data), and the weights go from their own memory (owned, or the input's mapping)
// to the file. The bytes are those protobuf would write for the whole message (known fields in
// field-number order, unknown fields last), without a second in-memory copy of every weight.
#include <algorithm>
#include <climits>
#include <condition_variable>
#include <filesystem>
#include <mutex>
#include <optional>
#include <thread>

#include <google/protobuf/unknown_field_set.h>

#include "formats/atomic_file.h"
#include "formats/onnx_align.h"
#include "formats/onnx_format.h"
#include "onnx/onnx_pb.h"

namespace llmc {

namespace {

namespace fs = std::filesystem;

void restore_unknown_fields(const std::string& bytes, google::protobuf::Message& msg) {
  if (!bytes.empty()) msg.GetReflection()->MutableUnknownFields(&msg)->ParseFromString(bytes);
}

// The bytes of a tensor to write: its own memory, or for a deferred tensor (a GGUF weight still
// to be dequantised) bytes produced into one scratch buffer reused from tensor to tensor, so a
// converted model is never held whole: no second copy of it in memory, and the pages written
// from stay mapped and warm instead of being faulted in fresh for every weight.
class PayloadSource {
 public:
  const void* bytes(const Tensor& t) {
    if (!t.is_deferred()) return t.data();
    if (size_ < t.nbytes()) {
      scratch_.reset();  // the old buffer goes before the bigger one comes
      scratch_.reset(new uint8_t[t.nbytes()]);
      size_ = t.nbytes();
    }
    t.produce_into(scratch_.get());
    return scratch_.get();
  }

 private:
  std::unique_ptr<uint8_t[]> scratch_;
  size_t size_ = 0;
};

// Collects large initializers into the side file as the proto is built.
class ExternalWriter {
 public:
  ExternalWriter(AtomicFile* file, std::string location, size_t threshold)
      : file_(file), location_(std::move(location)), threshold_(threshold) {}

  bool wants(const Tensor& t) const {
    return file_ && t.dtype() != DType::kString && t.nbytes() >= threshold_;
  }

  Status put(const Tensor& t, onnx::TensorProto& tp) {
    // Page-align big tensors so readers can mmap them one by one; 64 bytes is enough for
    // aligned vector loads on the rest and keeps the file compact.
    const size_t align = t.nbytes() >= (size_t(1) << 20) ? 4096 : 64;
    const size_t pad = (align - offset_ % align) % align;
    static const char zeros[4096] = {};
    LLMC_RETURN_IF_ERROR(file_->write(zeros, pad));
    offset_ += pad;
    LLMC_RETURN_IF_ERROR(file_->write(payload_.bytes(t), t.nbytes()));
    tp.set_data_location(onnx::TensorProto::EXTERNAL);
    auto add = [&tp](const char* k, const std::string& v) {
      auto* e = tp.add_external_data();
      e->set_key(k);
      e->set_value(v);
    };
    add("location", location_);
    add("offset", std::to_string(offset_));
    add("length", std::to_string(t.nbytes()));
    offset_ += t.nbytes();
    return Status::ok();
  }

 private:
  AtomicFile* file_;
  std::string location_;
  size_t threshold_;
  size_t offset_ = 0;
  PayloadSource payload_;
};

// An initializer as streamed: its TensorProto's fields before raw_data, the payload (when
// inline), and the fields after it.
struct StreamedTensor {
  std::string head, tail;
  const Tensor* raw = nullptr;
};

class Writer {
 public:
  explicit Writer(ExternalWriter* ext) : ext_(ext) {}

  // The whole TensorProto (attribute tensors: Constant values), raw_data copied in.
  Status tensor(const Tensor& t, onnx::TensorProto& tp, bool allow_external) {
    fields(t, tp, tp);
    if (t.dtype() == DType::kString) {
      for (const auto& s : t.string_values()) tp.add_string_data(s);
    } else if (allow_external && ext_ && ext_->wants(t)) {
      LLMC_RETURN_IF_ERROR(ext_->put(t, tp));
    } else {
      tp.set_raw_data(t.data(), t.nbytes());
    }
    return Status::ok();
  }

  // An initializer: the same fields split around raw_data, the payload left in place.
  Status initializer(const Tensor& t, StreamedTensor& out) {
    onnx::TensorProto head, tail;  // fields 1..8; fields 10 and up
    fields(t, head, tail);
    if (t.dtype() == DType::kString) {
      for (const auto& s : t.string_values()) head.add_string_data(s);
    } else if (ext_ && ext_->wants(t)) {
      LLMC_RETURN_IF_ERROR(ext_->put(t, tail));
    } else {
      out.raw = &t;
    }
    out.head = head.SerializeAsString();
    out.tail = tail.SerializeAsString();
    return Status::ok();
  }

  static void type(const ValueType& vt, onnx::TypeProto& tp) {
    if (vt.kind == ValueType::Kind::kOpaque) {
      tp.ParseFromString(vt.opaque);
      return;
    }
    if (vt.kind != ValueType::Kind::kTensor) return;
    if (!vt.denotation.empty()) tp.set_denotation(vt.denotation);
    auto* tt = tp.mutable_tensor_type();
    tt->set_elem_type(static_cast<int32_t>(vt.elem));
    if (!vt.has_shape) return;
    auto* shape = tt->mutable_shape();
    for (const auto& d : vt.dims) {
      auto* dp = shape->add_dim();
      if (d.has_value()) dp->set_dim_value(d.value);
      if (!d.param.empty()) dp->set_dim_param(d.param);
      if (!d.denotation.empty()) dp->set_denotation(d.denotation);
    }
  }

  static void value_info(const ValueInfo& v, onnx::ValueInfoProto& vp) {
    vp.set_name(v.name);
    if (!v.doc_string.empty()) vp.set_doc_string(v.doc_string);
    if (v.type.kind != ValueType::Kind::kNone) type(v.type, *vp.mutable_type());
    restore_unknown_fields(v.extra_fields, vp);
  }

  Status attribute(const Attribute& a, onnx::AttributeProto& ap) {
    ap.set_name(a.name);
    ap.set_type(static_cast<onnx::AttributeProto::AttributeType>(a.kind));
    if (!a.ref_attr_name.empty()) ap.set_ref_attr_name(a.ref_attr_name);
    if (!a.doc_string.empty()) ap.set_doc_string(a.doc_string);
    restore_unknown_fields(a.extra_fields, ap);
    switch (a.kind) {
      case AttrKind::kFloat: ap.set_f(a.f); break;
      case AttrKind::kInt: ap.set_i(a.i); break;
      case AttrKind::kString: ap.set_s(a.s); break;
      case AttrKind::kFloats: for (float v : a.floats) ap.add_floats(v); break;
      case AttrKind::kInts: for (int64_t v : a.ints) ap.add_ints(v); break;
      case AttrKind::kStrings: for (const auto& v : a.strings) ap.add_strings(v); break;
      case AttrKind::kTensor:
        if (a.tensors.size() != 1)
          return internal_error("attribute '", a.name, "' of kind tensor holds ", a.tensors.size());
        LLMC_RETURN_IF_ERROR(tensor(a.tensors[0], *ap.mutable_t(), false));
        break;
      case AttrKind::kTensors:
        for (const auto& t : a.tensors) LLMC_RETURN_IF_ERROR(tensor(t, *ap.add_tensors(), false));
        break;
      case AttrKind::kGraph: ap.mutable_g()->ParseFromString(a.opaque.at(0)); break;
      case AttrKind::kGraphs: for (const auto& s : a.opaque) ap.add_graphs()->ParseFromString(s); break;
      case AttrKind::kSparseTensor: ap.mutable_sparse_tensor()->ParseFromString(a.opaque.at(0)); break;
      case AttrKind::kSparseTensors:
        for (const auto& s : a.opaque) ap.add_sparse_tensors()->ParseFromString(s);
        break;
      case AttrKind::kTypeProto: ap.mutable_tp()->ParseFromString(a.opaque.at(0)); break;
      case AttrKind::kTypeProtos: for (const auto& s : a.opaque) ap.add_type_protos()->ParseFromString(s); break;
      case AttrKind::kUndefined: ap.clear_type(); break;
    }
    return Status::ok();
  }

  // The graph as two messages around the initializers (field 5): nodes and name before them,
  // everything else after.
  Status graph(const Graph& g, onnx::GraphProto& gp, onnx::GraphProto& tail, std::vector<StreamedTensor>& inits) {
    gp.set_name(g.name);
    if (!g.doc_string.empty()) tail.set_doc_string(g.doc_string);
    for (const auto& n : g.nodes) {
      auto* np = gp.add_node();
      np->set_name(n.name);
      np->set_op_type(n.op_type);
      if (!n.domain.empty()) np->set_domain(n.domain);
      if (!n.doc_string.empty()) np->set_doc_string(n.doc_string);
      for (const auto& in : n.inputs) np->add_input(in);
      for (const auto& out : n.outputs) np->add_output(out);
      for (const auto& a : n.attributes) LLMC_RETURN_IF_ERROR(attribute(a, *np->add_attribute()));
      restore_unknown_fields(n.extra_fields, *np);
    }
    for (const auto& v : g.inputs) value_info(v, *tail.add_input());
    for (const auto& v : g.outputs) value_info(v, *tail.add_output());
    for (const auto& v : g.value_info) value_info(v, *tail.add_value_info());
    inits.resize(g.initializers.size());
    for (size_t i = 0; i < inits.size(); ++i) LLMC_RETURN_IF_ERROR(initializer(g.initializers[i], inits[i]));
    for (const auto& s : g.sparse_initializers) tail.add_sparse_initializer()->ParseFromString(s);
    for (const auto& q : g.quantization_annotation)
      tail.add_quantization_annotation()->ParseFromString(q);
    restore_unknown_fields(g.extra_fields, tail);
    return Status::ok();
  }

 private:
  // Name, type, dims into `head` (fields before raw_data), doc_string into `tail`.
  static void fields(const Tensor& t, onnx::TensorProto& head, onnx::TensorProto& tail) {
    head.set_name(t.name());
    head.set_data_type(static_cast<int32_t>(t.dtype()));
    for (int64_t d : t.dims()) head.add_dims(d);
    if (!t.doc_string().empty()) tail.set_doc_string(t.doc_string());
  }

  ExternalWriter* ext_;
};

// Small pieces gathered into one buffer; large payloads written straight from their memory.
class Sink {
 public:
  explicit Sink(AtomicFile& f) : f_(f) { buf_.reserve(kBuffer); }
  Status put(const void* p, size_t n) {
    if (n >= kDirect) {
      LLMC_RETURN_IF_ERROR(flush());
      return f_.write(p, n);
    }
    if (buf_.size() + n > kBuffer) LLMC_RETURN_IF_ERROR(flush());
    buf_.append(static_cast<const char*>(p), n);
    return Status::ok();
  }
  Status put(const std::string& s) { return put(s.data(), s.size()); }
  Status tag_and_length(uint32_t tag, size_t length) {
    char b[16];
    size_t n = 0;
    for (uint64_t v : {uint64_t(tag), uint64_t(length)}) {
      while (v >= 0x80) b[n++] = static_cast<char>((v & 0x7f) | 0x80), v >>= 7;
      b[n++] = static_cast<char>(v);
    }
    return put(b, n);
  }
  Status flush() {
    if (buf_.empty()) return Status::ok();
    Status s = f_.write(buf_.data(), buf_.size());
    buf_.clear();
    return s;
  }

 private:
  static constexpr size_t kBuffer = size_t(1) << 20, kDirect = size_t(64) << 10;
  AtomicFile& f_;
  std::string buf_;
};

// Wire-format tags (field number << 3 | 2, length-delimited) of the fields streamed by hand.
constexpr uint32_t kModelGraphTag = (7 << 3) | 2, kGraphInitializerTag = (5 << 3) | 2, kTensorRawDataTag = (9 << 3) | 2;

size_t weight_bytes(const Graph& g) {
  size_t total = 0;
  for (const auto& t : g.initializers) total += t.nbytes();
  return total;
}

// Destroys the tensors handed to it on a thread of its own: a written weight's memory goes back
// while the next ones are written (a 268 MB float16 model took ~20 ms to free after the write).
class Releaser {
 public:
  Releaser() : thread_([this] { loop(); }) {}
  ~Releaser() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      done_ = true;
    }
    cv_.notify_one();
    thread_.join();
  }
  void release(Tensor&& t) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      queue_.push_back(std::move(t));
    }
    cv_.notify_one();
  }

 private:
  void loop() {
    for (;;) {
      std::vector<Tensor> batch;
      {
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait(lock, [this] { return done_ || !queue_.empty(); });
        if (queue_.empty()) return;  // done, nothing left
        batch.swap(queue_);
      }
      batch.clear();
    }
  }

  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Tensor> queue_;
  bool done_ = false;
  std::thread thread_;
};

// `owned`: the same model, writable, when the caller gave it up (its weights are released as
// they are written).
Status write_model(const Model& m, const std::string& path, const OnnxWriteOptions& options, Model* owned) {
  const bool external = options.external_data || weight_bytes(m.graph) > kInlineWeightLimit;
  std::optional<AtomicFile> data_file;
  std::optional<ExternalWriter> ext;
  if (external) {
    const std::string location = options.external_file.empty()
                                     ? fs::path(path).filename().string() + ".data"
                                     : options.external_file;
    const fs::path dir = fs::path(path).parent_path();
    LLMC_ASSIGN_OR_RETURN(auto f, AtomicFile::create((dir / location).string()));
    data_file.emplace(std::move(f));
    // Tiny tensors stay inline even when forced external: only the big ones break the limit.
    ext.emplace(&*data_file, location, options.external_data ? options.external_threshold : 1024);
  }
  // ModelProto fields before the graph (1..6); those after it (8 and up, unknown fields) are
  // serialised once the graph is out (late metadata).
  onnx::ModelProto head;
  head.set_ir_version(m.ir_version);
  if (!m.producer_name.empty()) head.set_producer_name(m.producer_name);
  if (!m.producer_version.empty()) head.set_producer_version(m.producer_version);
  if (!m.domain.empty()) head.set_domain(m.domain);
  if (m.model_version) head.set_model_version(m.model_version);
  if (!m.doc_string.empty()) head.set_doc_string(m.doc_string);
  Writer writer(ext ? &*ext : nullptr);
  onnx::GraphProto graph_head, graph_tail;
  std::vector<StreamedTensor> inits;
  LLMC_RETURN_IF_ERROR(writer.graph(m.graph, graph_head, graph_tail, inits).with_context(path));

  ModelLayout layout;
  const std::string model_head = head.SerializeAsString();
  const std::string graph_head_bytes = graph_head.SerializeAsString(), graph_tail_bytes = graph_tail.SerializeAsString();
  layout.model_head = model_head.size();
  layout.graph_head = graph_head_bytes.size();
  layout.graph_tail = graph_tail_bytes.size();
  for (const auto& t : inits)
    layout.initializers.push_back({t.head.size(), t.raw != nullptr, t.raw ? t.raw->nbytes() : 0, t.tail.size()});
  const std::vector<size_t> pad = inline_payload_padding(layout, 64);  // readers use inline weights in place
  const size_t graph_size = graph_message_size(layout, pad);
  const size_t before_tail = model_head.size() + 1 + varint_size(graph_size) + graph_size;
  const auto too_big = [&] { return invalid_input(path, ": model is over the 2 GB protobuf limit even with external data"); };
  if (before_tail > static_cast<size_t>(INT_MAX)) return too_big();

  LLMC_ASSIGN_OR_RETURN(auto out, AtomicFile::create(path));
  std::optional<Releaser> releaser;
  if (owned) releaser.emplace();
  Sink sink(out);
  PayloadSource payload;
  LLMC_RETURN_IF_ERROR(sink.put(model_head));
  LLMC_RETURN_IF_ERROR(sink.tag_and_length(kModelGraphTag, graph_size));
  LLMC_RETURN_IF_ERROR(sink.put(graph_head_bytes));
  for (size_t i = 0; i < inits.size(); ++i) {
    const StreamedTensor& t = inits[i];
    LLMC_RETURN_IF_ERROR(sink.tag_and_length(kGraphInitializerTag, tensor_message_size(layout.initializers[i], pad[i])));
    LLMC_RETURN_IF_ERROR(sink.put(t.head));
    if (t.raw) {
      LLMC_RETURN_IF_ERROR(sink.tag_and_length(kTensorRawDataTag, t.raw->nbytes()));
      LLMC_RETURN_IF_ERROR(sink.put(payload.bytes(*t.raw), t.raw->nbytes()));
    }
    LLMC_RETURN_IF_ERROR(sink.put(t.tail));
    if (pad[i]) LLMC_RETURN_IF_ERROR(sink.put(padding_field(pad[i])));
    // Its bytes are written, or copied into the sink's buffer (small ones): no longer needed.
    if (releaser) releaser->release(std::move(owned->graph.initializers[i]));
  }
  LLMC_RETURN_IF_ERROR(sink.put(graph_tail_bytes));

  StringPairs metadata = m.metadata_props;
  if (options.late_metadata) {
    auto late = options.late_metadata();
    if (!late.is_ok()) return late.status();
    for (auto& entry : *late) {
      const std::string& key = entry.first;  // a named local: C++20 lambdas cannot capture bindings
      auto it = std::find_if(metadata.begin(), metadata.end(), [&](const auto& kv) { return kv.first == key; });
      if (it != metadata.end()) it->second = std::move(entry.second);
      else metadata.emplace_back(key, std::move(entry.second));
    }
  }
  onnx::ModelProto tail;
  for (const auto& o : m.opset_imports) {
    auto* op = tail.add_opset_import();
    op->set_domain(o.domain);
    op->set_version(o.version);
  }
  for (const auto& [k, v] : metadata) {
    auto* e = tail.add_metadata_props();
    e->set_key(k);
    e->set_value(v);
  }
  for (const auto& f : m.functions) tail.add_functions()->ParseFromString(f);
  for (const auto& t : m.training_info) tail.add_training_info()->ParseFromString(t);
  restore_unknown_fields(m.extra_fields, tail);
  const std::string model_tail = tail.SerializeAsString();
  if (before_tail + model_tail.size() > static_cast<size_t>(INT_MAX)) return too_big();
  LLMC_RETURN_IF_ERROR(sink.put(model_tail));
  LLMC_RETURN_IF_ERROR(sink.flush());
  // Both on disk before either replaces its target: a failure leaves the old pair intact.
  if (data_file) LLMC_RETURN_IF_ERROR(data_file->finish());
  LLMC_RETURN_IF_ERROR(out.finish());
  if (data_file) LLMC_RETURN_IF_ERROR(data_file->commit());
  return out.commit();
}

}  // namespace

Status write_onnx(const Model& m, const std::string& path, const OnnxWriteOptions& options) {
  return write_model(m, path, options, nullptr);
}

Status write_onnx(Model&& model, const std::string& path, const OnnxWriteOptions& options) {
  Model m = std::move(model);
  return write_model(m, path, options, &m);
}

}  // namespace llmc
