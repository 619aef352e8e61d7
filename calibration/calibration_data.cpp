#include "calibration/calibration_data.h"

#include <algorithm>
#include <memory>
#include <random>

#include "ir/metadata_keys.h"

namespace llmc::calib {

namespace {

// Graph inputs that need a feed (no initializer of the same name).
std::vector<const ValueInfo*> data_inputs(const Graph& g) {
  std::vector<const ValueInfo*> out;
  for (const auto& in : g.inputs)
    if (!g.find_initializer(in.name)) out.push_back(&in);
  return out;
}

const ValueInfo* find_input(const Graph& g, const std::string& name) {
  for (const ValueInfo* in : data_inputs(g))
    if (in->name == name) return in;
  return nullptr;
}

std::string input_list(const Graph& g) {
  std::string s;
  for (const ValueInfo* in : data_inputs(g)) s += (s.empty() ? "" : ", ") + in->name;
  return s.empty() ? "none" : s;
}

// An integer [1, n] input filled by f(i).
template <typename F>
Result<rt::Value> int_row(const ValueInfo& info, int64_t n, F f) {
  const DType t = info.type.elem;
  if (t != DType::kI64 && t != DType::kI32)
    return unsupported("input '", info.name, "' is ", dtype_name(t), "; token data fills only i32/i64 inputs");
  if (info.type.has_shape && info.type.dims.size() != 2)
    return invalid_input("input '", info.name, "' has rank ", info.type.dims.size(), ", expected [batch, sequence]");
  if (info.type.has_shape && info.type.dims[1].has_value() && info.type.dims[1].value != n)
    return invalid_input("input '", info.name, "' has a fixed length of ", info.type.dims[1].value,
                         ", the windows are ", n, " tokens");
  rt::Value v = rt::Value::allocate(t, {1, n});
  for (int64_t i = 0; i < n; ++i) {
    if (t == DType::kI64) v.mutable_data<int64_t>()[i] = f(i);
    else v.mutable_data<int32_t>()[i] = static_cast<int32_t>(f(i));
  }
  return v;
}

// Fills attention_mask, position_ids and empty past_key_values.* for a window of `seq` tokens;
// any other input missing from `feeds` is an error.
Status fill_standard_inputs(const Graph& g, Feeds& feeds, int64_t seq) {
  for (const ValueInfo* in : data_inputs(g)) {
    if (feeds.count(in->name)) continue;
    if (in->name == "attention_mask") {
      LLMC_ASSIGN_OR_RETURN(feeds[in->name], int_row(*in, seq, [](int64_t) { return int64_t{1}; }));
    } else if (in->name == "position_ids") {
      LLMC_ASSIGN_OR_RETURN(feeds[in->name], int_row(*in, seq, [](int64_t i) { return i; }));
    } else if (in->name.rfind("past_key_values.", 0) == 0) {
      const auto& d = in->type.dims;
      if (!in->type.has_shape || d.size() != 4 || !d[1].has_value() || !d[3].has_value())
        return invalid_input("input '", in->name, "' must be 4-D [batch, heads, past, head_dim] with fixed heads and head_dim");
      feeds[in->name] = rt::Value::allocate(in->type.elem, {1, d[1].value, 0, d[3].value});
    } else {
      return invalid_input("the model input '", in->name, "' cannot be derived from tokens; give an .npz with an array named '",
                           in->name, "'");
    }
  }
  return Status::ok();
}

int64_t vocab_size(const Graph& g) {
  for (const auto& o : g.outputs)
    if (o.name == "logits" && o.type.has_shape && o.type.dims.size() == 3 && o.type.dims[2].has_value())
      return o.type.dims[2].value;
  return 0;
}

int64_t max_sequence_length(const Model& m) {
  const std::string* v = m.find_metadata(kMetaMaxSequenceLength);
  if (!v) return 0;
  int64_t n = 0;
  for (char c : *v) {
    if (c < '0' || c > '9' || n > (int64_t{1} << 40)) return 0;
    n = n * 10 + (c - '0');
  }
  return n;
}

}  // namespace

Result<std::vector<int64_t>> window_offsets(int64_t num_tokens, const CalibrationOptions& o) {
  if (o.num_samples <= 0) return invalid_input("the number of calibration samples must be positive, got ", o.num_samples);
  if (o.seq_len <= 0) return invalid_input("the sequence length must be positive, got ", o.seq_len);
  if (num_tokens == 0) return invalid_input("no tokens (the data is empty)");
  if (num_tokens < o.seq_len)
    return invalid_input("only ", num_tokens, " tokens, fewer than the sequence length ", o.seq_len);
  const int64_t span = num_tokens - o.seq_len;  // the last valid start
  std::vector<int64_t> offsets(o.num_samples);
  if (o.placement == WindowPlacement::kEvenlySpaced) {
    for (int64_t i = 0; i < o.num_samples; ++i)
      offsets[i] = o.num_samples == 1 ? 0 : i * span / (o.num_samples - 1);
  } else {
    std::mt19937_64 rng(o.seed);  // the engine's output is fixed by the standard; % keeps it portable
    for (auto& off : offsets) off = static_cast<int64_t>(rng() % static_cast<uint64_t>(span + 1));
  }
  return offsets;
}

Result<Feeds> token_feeds(const Model& model, const int32_t* tokens, int64_t n) {
  const Graph& g = model.graph;
  const ValueInfo* ids = find_input(g, "input_ids");
  if (!ids)
    return invalid_input("the model has no 'input_ids' input, so token data cannot feed it (inputs: ", input_list(g),
                         "); give tensors in an .npz keyed by input name");
  Feeds feeds;
  LLMC_ASSIGN_OR_RETURN(feeds["input_ids"], int_row(*ids, n, [&](int64_t i) { return int64_t{tokens[i]}; }));
  LLMC_RETURN_IF_ERROR(fill_standard_inputs(g, feeds, n));
  return feeds;
}

Result<CalibrationSet> calibration_from_tokens(const Model& model, const std::vector<int32_t>& tokens,
                                               const CalibrationOptions& options, const std::string& source) {
  auto fail = [&](const Status& s) { return s.with_context(source); };
  const int64_t max_len = max_sequence_length(model);
  if (max_len > 0 && options.seq_len > max_len)
    return fail(invalid_input("sequence length ", options.seq_len, " exceeds the model's maximum of ", max_len));
  const int64_t vocab = vocab_size(model.graph);
  for (size_t i = 0; i < tokens.size(); ++i)
    if (tokens[i] < 0 || (vocab > 0 && tokens[i] >= vocab))
      return fail(invalid_input("token ", i, " is ", tokens[i], ", outside the vocabulary [0, ", vocab, ")"));
  auto offsets = window_offsets(static_cast<int64_t>(tokens.size()), options);
  if (!offsets.is_ok()) return fail(offsets.status());
  CalibrationSet set;
  for (int64_t off : *offsets) {
    auto feeds = token_feeds(model, tokens.data() + off, options.seq_len);
    if (!feeds.is_ok()) return fail(feeds.status());
    set.samples.push_back(std::move(feeds).value());
  }
  set.source = str_cat(source, ": ", set.size(), " windows of ", options.seq_len, " tokens from ", tokens.size(), " (",
                       options.placement == WindowPlacement::kEvenlySpaced ? "evenly spaced" : "seed ",
                       options.placement == WindowPlacement::kEvenlySpaced ? std::string() : std::to_string(options.seed),
                       ")");
  return set;
}

Result<std::string> lone_array_input(const Model& model, const CalibrationOptions& options) {
  const Graph& g = model.graph;
  if (!options.input_name.empty()) return options.input_name;
  const auto inputs = data_inputs(g);
  if (inputs.size() == 1) return inputs[0]->name;
  if (find_input(g, "input_ids")) return std::string("input_ids");
  return invalid_input("the model has ", inputs.size(), " inputs (", input_list(g),
                       "); name the one this .npy holds, or use an .npz keyed by input name");
}

Result<CalibrationSet> calibration_from_tensors(const Model& model, const std::vector<Tensor>& arrays,
                                                const CalibrationOptions& options, const std::string& source) {
  const Graph& g = model.graph;
  auto fail = [&](const Status& s) { return s.with_context(source); };
  if (options.num_samples <= 0)
    return fail(invalid_input("the number of calibration samples must be positive, got ", options.num_samples));
  if (arrays.empty()) return fail(invalid_input("the archive holds no arrays"));
  int64_t count = -1;
  for (const Tensor& t : arrays) {
    const ValueInfo* in = find_input(g, t.name());
    if (!in) return fail(invalid_input("array '", t.name(), "' matches no model input (inputs: ", input_list(g), ")"));
    if (t.dtype() != in->type.elem)
      return fail(invalid_input("array '", t.name(), "' is ", dtype_name(t.dtype()), ", the model input is ",
                                dtype_name(in->type.elem)));
    const size_t rank = in->type.dims.size();
    if (in->type.has_shape && t.dims().size() != rank + 1 && t.dims().size() != rank)
      return fail(invalid_input("array '", t.name(), "' has shape ", shape_str(t.dims()), "; the model input has rank ",
                                rank, ", so expected rank ", rank + 1, " (samples first) or ", rank, " (rows as samples)"));
    if (t.dims().empty()) return fail(invalid_input("array '", t.name(), "' is a scalar; expected a leading sample dimension"));
    if (count >= 0 && t.dims()[0] != count)
      return fail(invalid_input("array '", t.name(), "' has ", t.dims()[0], " samples, an earlier array has ", count));
    count = t.dims()[0];
  }
  if (count == 0) return fail(invalid_input("the arrays hold no samples (leading dimension 0)"));
  CalibrationSet set;
  const int64_t n = std::min(count, options.num_samples);
  for (int64_t i = 0; i < n; ++i) {
    Feeds feeds;
    for (const Tensor& t : arrays) {
      const ValueInfo* in = find_input(g, t.name());
      std::vector<int64_t> shape(t.dims().begin() + 1, t.dims().end());
      if (in->type.has_shape && t.dims().size() == in->type.dims.size()) shape.insert(shape.begin(), 1);
      for (size_t d = 0; in->type.has_shape && d < shape.size(); ++d)
        if (in->type.dims[d].has_value() && in->type.dims[d].value != shape[d])
          return fail(invalid_input("array '", t.name(), "' gives samples of shape ", shape_str(shape),
                                    ", the model input needs dim ", d, " = ", in->type.dims[d].value));
      const size_t bytes = dtype_storage_bytes(t.dtype(), shape_numel(shape));
      auto owner = std::make_shared<Tensor>(t);
      feeds[t.name()] = rt::Value::borrow(Tensor::view(t.name(), t.dtype(), shape, owner, t.data() + i * bytes, bytes));
    }
    auto ids = feeds.find("input_ids");
    if (ids != feeds.end() && ids->second.rank() == 2) {
      Status s = fill_standard_inputs(g, feeds, ids->second.dim(1));
      if (!s.is_ok()) return fail(s);
    }
    for (const ValueInfo* in : data_inputs(g))
      if (!feeds.count(in->name)) return fail(invalid_input("no array for the model input '", in->name, "'"));
    set.samples.push_back(std::move(feeds));
  }
  set.source = str_cat(source, ": ", set.size(), " of ", count, " samples");
  return set;
}

}  // namespace llmc::calib
