#include "runtime/session.h"

#include <algorithm>
#include <chrono>
#include <set>

#include "runtime/kernels/register.h"

namespace llmc::rt {

namespace {
// How far ahead idle workers read the weights of the next streaming steps: well within the L3
// cache (32 MB here), which also holds the KV cache the attention steps between them read.
constexpr size_t kReadAheadBytes = size_t(8) << 20;

std::string describe(const Node& n) {
  return str_cat("node '", n.name, "' (", n.domain.empty() ? "" : n.domain + "::", n.op_type, ")");
}
// Kernels that take padded Values (Value::dense) as they are; every other kernel gets dense copies.
bool handles_padded(const Node& n) {
  if (n.domain == kRuntimeDomain) return n.op_type == "RepeatedKvShape";
  return n.domain.empty() && (n.op_type == "Concat" || n.op_type == "MatMul" || n.op_type == "Shape");
}
}  // namespace

Session::Session(std::shared_ptr<const Model> model, std::shared_ptr<ThreadPool> pool)
    : model_(std::move(model)), pool_(std::move(pool)) {}

Result<std::unique_ptr<Session>> Session::create(std::shared_ptr<const Model> model,
                                                 const SessionOptions& options) {
  if (options.threads < 0 || options.threads > kMaxThreads)
    return invalid_input("threads must be between 0 (one per core) and ", kMaxThreads, ", got ", options.threads);
  if (options.limits.max_tensor_bytes == 0 || options.limits.max_total_bytes == 0)
    return invalid_input("memory limits must be positive");
  auto pool = options.pool ? options.pool : std::make_shared<ThreadPool>(options.threads);
  std::unique_ptr<Session> s(new Session(std::move(model), std::move(pool)));
  s->limits_ = options.limits;
  LLMC_RETURN_IF_ERROR(s->plan());
  return s;
}

size_t Session::streaming_bytes() const {
  size_t n = 0;
  for (const Step& st : steps_)
    for (const auto& r : st.streams) n += r.bytes;
  return n;
}

Status Session::plan() {
  const Graph& g = model_->graph;
  auto slot = [&](const std::string& name) {
    auto [it, inserted] = slot_of_.emplace(name, static_cast<int>(slot_of_.size()));
    return it->second;
  };
  for (const auto& t : g.initializers) {
    const int s = slot(t.name());
    constants_.resize(slot_of_.size());
    if (t.dtype() == DType::kString) return unsupported("initializer '", t.name(), "' is a string tensor");
    constants_[s] = Value::borrow(t);
  }
  // Sequences, maps, optionals and strings are not runtime values: refuse them up front.
  for (const auto* list : {&g.inputs, &g.outputs}) {
    for (const auto& v : *list) {
      if (v.type.kind == ValueType::Kind::kOpaque)
        return unsupported("graph input/output '", v.name, "' is not a tensor (sequence, map or optional)");
      if (v.type.kind == ValueType::Kind::kTensor && v.type.elem == DType::kString)
        return unsupported("graph input/output '", v.name, "' is a string tensor");
    }
  }
  for (const auto& in : g.inputs) {
    slot(in.name);
    if (!g.find_initializer(in.name)) inputs_.push_back(in);
  }
  // Every unsupported op is reported at once, before anything runs.
  std::vector<std::string> missing;
  std::set<std::string> missing_ops;
  const KernelRegistry& registry = builtin_kernels();
  for (const auto& n : g.nodes) {
    Step st;
    st.node = &n;
    st.kernel = registry.find(n.domain, n.op_type);
    if (!st.kernel) {
      const std::string op = (n.domain.empty() ? "" : n.domain + "::") + n.op_type;
      if (missing_ops.insert(op).second) missing.push_back(op + " (first at " + describe(n) + ")");
      continue;
    }
    st.opset = model_->opset(n.domain);
    for (const auto& in : n.inputs) st.inputs.push_back(in.empty() ? -1 : slot(in));
    for (const auto& out : n.outputs) st.outputs.push_back(out.empty() ? -1 : slot(out));
    if (!n.implicit_inputs.empty())
      return unsupported(describe(n), " has subgraphs, which the runtime does not run");
    steps_.push_back(std::move(st));
  }
  if (!missing.empty()) {
    std::string list;
    for (const auto& m : missing) list += (list.empty() ? "" : ", ") + m;
    return unsupported("the runtime has no kernel for: ", list);
  }
  constants_.resize(slot_of_.size());
  for (const auto& o : g.outputs) {
    auto it = slot_of_.find(o.name);
    if (it == slot_of_.end()) return invalid_input("graph output '", o.name, "' is never produced");
    output_slots_.push_back(it->second);
  }
  fixed_constant_.assign(slot_of_.size(), false);
  for (size_t sl = 0; sl < fixed_constant_.size(); ++sl) fixed_constant_[sl] = !constants_[sl].empty();
  for (const auto& in : g.inputs) fixed_constant_[slot_of_.at(in.name)] = false;
  fold_constant_steps();
  fold_transposes_into_matmul();
  fold_grouped_kv();
  fold_dynamic_quant_matmul();
  fold_qdq_matmul();
  fold_rmsnorm();
  fold_rotary();
  fold_silu();
  fold_dynamic_quant_matmul_groups();
  fold_lowrank_pairs();
  fold_matmul_groups();
  fold_nm_sparse_groups();
  fold_nbits_groups();
  mark_kv_appends();
  for (Step& st : steps_) {
    for (int sl : st.inputs) st.constant_inputs.push_back(fixed_constant(sl));
    st.takes_padded = handles_padded(*st.node);
  }
  // Last reader of each slot; graph outputs and constants are never released.
  std::vector<int> last(slot_of_.size(), -1);
  for (int i = 0; i < static_cast<int>(steps_.size()); ++i)
    for (int s : steps_[i].inputs)
      if (s >= 0) last[s] = i;
  std::set<int> keep(output_slots_.begin(), output_slots_.end());
  for (int s = 0; s < static_cast<int>(last.size()); ++s)
    if (last[s] >= 0 && !keep.count(s) && constants_[s].empty()) steps_[last[s]].release.push_back(s);
  return Status::ok();
}

Session::Links Session::links() const {
  Links l;
  l.readers.assign(slot_of_.size(), 0);
  for (size_t i = 0; i < steps_.size(); ++i) {
    for (int sl : steps_[i].inputs)
      if (sl >= 0) ++l.readers[sl];
    for (int sl : steps_[i].outputs)
      if (sl >= 0) l.producer[sl] = i;
  }
  l.graph_outputs.insert(output_slots_.begin(), output_slots_.end());
  return l;
}

void Session::rewrite_step(size_t at, Node fused, const KernelFn* kernel, std::vector<int> inputs) {
  rewritten_.push_back(std::move(fused));
  Step& st = steps_[at];
  st.node = &rewritten_.back();
  st.kernel = kernel;
  st.opset = 1;
  st.inputs = std::move(inputs);
}

void Session::merge_steps(const std::vector<size_t>& group, Node fused, const KernelFn* kernel, std::vector<int> inputs,
                          std::vector<int> outputs, std::vector<bool>& drop) {
  rewrite_step(group[0], std::move(fused), kernel, std::move(inputs));
  steps_[group[0]].outputs = std::move(outputs);
  for (size_t j = 1; j < group.size(); ++j) {
    steps_[group[j]].outputs.clear();  // now produced by the merged step: not folded away
    drop[group[j]] = true;
  }
}

void Session::merge_product_group(const std::vector<size_t>& group, const std::string& op, const std::string& domain,
                                  size_t per_member, std::vector<Attribute> attributes, const KernelFn* kernel,
                                  std::vector<bool>& drop) {
  Node fused;
  fused.name = steps_[group[0]].node->name + "_group";
  fused.op_type = op;
  fused.domain = domain;
  fused.attributes = std::move(attributes);
  fused.inputs = {steps_[group[0]].node->inputs[0]};
  std::vector<int> ins{steps_[group[0]].inputs[0]}, outs;
  for (size_t m : group) {
    const Step& st = steps_[m];
    for (size_t i = 1; i <= per_member; ++i) {
      ins.push_back(i < st.inputs.size() ? st.inputs[i] : -1);
      fused.inputs.push_back(i < st.node->inputs.size() ? st.node->inputs[i] : "");
    }
    outs.push_back(st.outputs[0]);
    fused.outputs.push_back(st.node->outputs[0]);
  }
  merge_steps(group, std::move(fused), kernel, std::move(ins), std::move(outs), drop);
}

long Session::sole_reader(const Links& l, int slot, const char* op) const {
  if (slot < 0 || l.readers[slot] != 1 || l.graph_outputs.count(slot)) return -1;
  // Node arity is checked when a kernel runs, after the folds: a hostile graph's Mul may have
  // one input or no output. The folds index inputs[0..1] of binary ops and outputs[0].
  static const std::set<std::string> binary = {"Add", "Sub", "Mul", "Div", "Pow"};
  for (size_t i = 0; i < steps_.size(); ++i)
    for (int in : steps_[i].inputs)
      if (in == slot) {
        const Step& st = steps_[i];
        if (st.node->op_type != op || !st.node->domain.empty() || st.outputs.empty() || st.outputs[0] < 0) return -1;
        return binary.count(op) && st.inputs.size() != 2 ? -1 : long(i);
      }
  return -1;
}

// Concat(past graph input, new rows) -> present graph output, read only by steps that handle
// padded Values: marked kKvAppend, so the cache grows in place across decode steps instead of
// being copied whole every step (for 12 layers at 160 positions, ~13 MB a token).
void Session::mark_kv_appends() {
  std::set<int> graph_inputs, graph_outputs(output_slots_.begin(), output_slots_.end());
  for (const auto& in : model_->graph.inputs) graph_inputs.insert(slot_of_.at(in.name));
  for (Step& st : steps_) {
    const Node& n = *st.node;
    if (n.op_type != "Concat" || !n.domain.empty() || st.inputs.size() != 2 || st.outputs.size() != 1) continue;
    if (!graph_inputs.count(st.inputs[0]) || !constants_[st.inputs[0]].empty() || st.inputs[1] < 0) continue;
    const int out = st.outputs[0];
    if (out < 0 || !graph_outputs.count(out)) continue;
    bool readers_ok = true;
    for (const Step& r : steps_)
      for (int in : r.inputs)
        if (in == out && !handles_padded(*r.node)) readers_ok = false;
    if (!readers_ok) continue;
    rewritten_.push_back(n);
    rewritten_.back().attributes.push_back(Attribute::make_int(kKvAppend, 1));
    st.node = &rewritten_.back();
  }
}

void Session::remove_folded_steps(const std::vector<bool>& drop) {
  std::vector<Step> kept;
  for (size_t i = 0; i < steps_.size(); ++i) {
    if (!drop[i]) {
      kept.push_back(std::move(steps_[i]));
    } else {
      for (int o : steps_[i].outputs)
        if (o >= 0) folded_.insert(o);
    }
  }
  steps_ = std::move(kept);
}

Status Session::check_feed(const ValueInfo& info, const Value& v) const {
  if (info.type.kind != ValueType::Kind::kTensor) return Status::ok();
  if (info.type.elem != v.dtype())
    return invalid_input("input '", info.name, "' must be ", dtype_name(info.type.elem), ", got ",
                         dtype_name(v.dtype()));
  if (!info.type.has_shape) return Status::ok();
  if (static_cast<int>(info.type.dims.size()) != v.rank())
    return invalid_input("input '", info.name, "' must have rank ", info.type.dims.size(), ", got shape ",
                         shape_str(v.shape()));
  for (int d = 0; d < v.rank(); ++d)
    if (info.type.dims[d].has_value() && info.type.dims[d].value != v.dim(d))
      return invalid_input("input '", info.name, "' dim ", d, " must be ", info.type.dims[d].value,
                           ", got shape ", shape_str(v.shape()));
  return Status::ok();
}

Result<std::vector<Value>> Session::run(const std::map<std::string, Value>& feeds,
                                        const std::vector<std::string>& outputs, bool keep_padded) {
  // Slots hold what this run produced or was fed; constants are read from constants_ (copying
  // every slot's Value per run cost ~50 us a decoded token). A feed overrides an initializer.
  std::vector<Value> slots(constants_.size());
  auto value_at = [&](int s) -> const Value* {
    if (s < 0) return nullptr;
    if (!slots[s].empty()) return &slots[s];
    return constants_[s].empty() ? nullptr : &constants_[s];
  };
  for (const auto& [name, v] : feeds) {
    auto it = slot_of_.find(name);
    const ValueInfo* info = nullptr;
    for (const auto& in : model_->graph.inputs)
      if (in.name == name) info = &in;
    if (it == slot_of_.end() || !info) return invalid_input("the model has no input named '", name, "'");
    LLMC_RETURN_IF_ERROR(check_feed(*info, v));
    slots[it->second] = v;
  }
  for (const auto& in : inputs_)
    if (slots[slot_of_.at(in.name)].empty()) return invalid_input("input '", in.name, "' was not given");
  // Requested taps must survive until the end.
  std::vector<int> want = output_slots_;
  if (!outputs.empty()) {
    want.clear();
    for (const auto& name : outputs) {
      auto it = slot_of_.find(name);
      if (it == slot_of_.end()) return invalid_input("no value named '", name, "' in the model");
      if (folded_.count(it->second))
        return invalid_input("value '", name, "' is an intermediate the runtime fuses away (a Transpose folded into ",
                             "its MatMul, or a step of an int8 MatMul pattern), so it is never materialised");
      want.push_back(it->second);
    }
  }
  // Taps of folded grouped-query repeats are computed after the steps, from their inputs.
  std::vector<int> repeats;
  for (int s : want)
    if (repeated_kv_.count(s)) repeats.push_back(s);
  std::set<int> pinned(want.begin(), want.end());
  for (int s : repeats)
    for (int in : repeated_kv_.at(s)) pinned.insert(in);
  // Asked for taps: run only the steps they depend on. Calibration asks for the inputs of the
  // weight MatMuls and never for the logits, so the LM head (a fifth of a small LLM's compute)
  // and the KV-cache outputs are skipped.
  std::vector<char> needed;
  if (!outputs.empty()) {
    std::vector<char> slot_needed(constants_.size(), 0);
    for (int s : pinned) slot_needed[s] = 1;
    needed.assign(steps_.size(), 0);
    for (size_t i = steps_.size(); i-- > 0;) {
      for (int s : steps_[i].outputs) needed[i] = needed[i] || (s >= 0 && slot_needed[s]);
      if (needed[i])
        for (int s : steps_[i].inputs)
          if (s >= 0) slot_needed[s] = 1;
    }
  }
  // While the small steps between two weight-streaming steps run on this thread, idle workers
  // read the next streaming step's weights into the caches (ThreadPool::prefetch).
  auto read_ahead = [&](long next) {
    std::vector<ThreadPool::Range> ranges;
    size_t bytes = 0;
    for (; next >= 0 && bytes < kReadAheadBytes; next = next_streaming_[next])
      for (const auto& r : steps_[next].streams) {
        const size_t take = std::min(r.bytes, kReadAheadBytes - bytes);
        if (take == 0) break;
        ranges.push_back({r.data, take});
        bytes += take;
      }
    if (!ranges.empty()) pool_->prefetch(ranges.data(), ranges.size());
  };
  read_ahead(first_streaming_);
  // However the run ends (errors included), no worker reads this session's weights after it:
  // the pool may be shared and outlive the session.
  // The reused step vectors are emptied too, so no value outlives the run in them.
  struct EndOfRun {
    Session& s;
    ~EndOfRun() {
      s.pool_->stop_prefetch();
      s.step_inputs_.clear();
      s.step_outputs_.clear();
    }
  } end_of_run{*this};
  bool new_streams = false;
  for (size_t si = 0; si < steps_.size(); ++si) {
    if (!needed.empty() && !needed[si]) continue;  // its values are freed when the run ends
    Step& st = steps_[si];
    if (!st.streams.empty()) pool_->prefetch(nullptr, 0);  // its own loop streams them now
    std::vector<const Value*>& ins = step_inputs_;  // reused: no allocation per step
    ins.clear();
    for (int s : st.inputs) ins.push_back(value_at(s));
    // Padded inputs of kernels that need dense ones (allocated only when there are any: this
    // loop runs ~600 times a decoded token).
    std::vector<Value> dense_copies;
    if (!st.takes_padded && std::any_of(ins.begin(), ins.end(), [](const Value* p) { return p && !p->dense(); })) {
      dense_copies.reserve(ins.size());  // pointers into it must stay valid
      for (auto& p : ins)
        if (p && !p->dense()) p = &dense_copies.emplace_back(p->densified(&buffers_));
    }
    KernelContext ctx(*st.node, st.opset, ins, step_outputs_, *pool_, &buffers_);
    ctx.set_session_state(&st.constant_inputs, &st.cache, &arena_, &st.streams);
    ctx.set_limits(limits_);
    const size_t streams_before = st.streams.size();
    const auto t0 = profiling_ ? std::chrono::steady_clock::now() : std::chrono::steady_clock::time_point{};
    Status status = (*st.kernel)(ctx);
    if (profiling_) {
      // Products of two activations (attention's scores and values: the KV cache) apart from
      // those with a weight: they read different memory and scale differently.
      const bool activations = st.node->op_type == "MatMul" && st.constant_inputs.size() > 1 && !st.constant_inputs[1];
      auto& p = profile_[activations ? "MatMul (activations)" : st.node->op_type];
      p.ms += std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
      ++p.calls;
    }
    if (!status.is_ok()) return status.with_context(describe(*st.node));
    auto& produced = ctx.outputs();
    for (size_t i = 0; i < st.outputs.size(); ++i) {
      if (st.outputs[i] < 0) continue;
      // The model's fault, not ours: the node declares more outputs than its op defines.
      if (produced[i].empty())
        return invalid_input(describe(*st.node), " declares output ", i, " ('", st.node->outputs[i],
                             "'), which its kernel does not produce (the op defines fewer outputs)");
      slots[st.outputs[i]] = std::move(produced[i]);
    }
    for (int s : st.release)
      if (!pinned.count(s)) slots[s] = Value();
    new_streams = new_streams || st.streams.size() != streams_before;  // packed in this run
    if (!st.streams.empty() && si < next_streaming_.size()) read_ahead(next_streaming_[si]);
  }
  if (new_streams) {  // the first run declared them: index the next streaming step
    next_streaming_.assign(steps_.size(), -1);
    long next = -1;
    for (long i = static_cast<long>(steps_.size()) - 1; i >= 0; --i) {
      next_streaming_[i] = next;
      if (!steps_[i].streams.empty()) next = i;
    }
    first_streaming_ = next;
  }
  for (int s : repeats) {
    const auto& [x, e, r] = repeated_kv_.at(s);
    const Value *xv = value_at(x), *ev = value_at(e), *rv = value_at(r);
    if (!xv || !ev || !rv) return internal_error("the inputs of a folded grouped-query repeat were not kept");
    LLMC_ASSIGN_OR_RETURN(slots[s], repeat_kv(*xv, *ev, *rv, *pool_, "repeated key/value"));
  }
  std::vector<Value> result;
  for (int s : want) {
    const Value* v = value_at(s);
    result.push_back(!v ? Value() : keep_padded ? *v : v->densified());
  }
  return result;
}

}  // namespace llmc::rt
