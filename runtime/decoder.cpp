#include "runtime/decoder.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>

namespace llmc::rt {

namespace {
const ValueInfo* find_info(const std::vector<ValueInfo>& list, const std::string& name) {
  for (const auto& v : list)
    if (v.name == name) return &v;
  return nullptr;
}
}  // namespace

Result<std::unique_ptr<Decoder>> Decoder::create(std::shared_ptr<Session> session) {
  std::unique_ptr<Decoder> d(new Decoder(session));
  const auto& inputs = session->model().graph.inputs;
  const auto& outputs = session->model().graph.outputs;
  if (!find_info(inputs, "input_ids"))
    return invalid_input("the model has no 'input_ids' input, so it is not a causal LM export");
  const ValueInfo* logits = find_info(outputs, "logits");
  if (!logits) return invalid_input("the model has no 'logits' output, so it is not a causal LM export");
  if (logits->type.has_shape && logits->type.dims.size() == 3 && logits->type.dims[2].has_value())
    d->vocab_ = logits->type.dims[2].value;
  d->has_mask_ = find_info(inputs, "attention_mask") != nullptr;
  d->has_positions_ = find_info(inputs, "position_ids") != nullptr;
  for (const auto& in : inputs) {
    const std::string prefix = "past_key_values.";
    if (in.name.rfind(prefix, 0) != 0) continue;
    const std::string present = "present." + in.name.substr(prefix.size());
    if (!find_info(outputs, present))
      return invalid_input("input '", in.name, "' has no matching output '", present, "'");
    if (in.type.kind != ValueType::Kind::kTensor || !in.type.has_shape || in.type.dims.size() != 4)
      return invalid_input("input '", in.name, "' must be a 4-D tensor [batch, heads, past, head_dim]");
    std::vector<int64_t> shape{1, 0, 0, 0};
    for (int k : {1, 3}) {
      if (!in.type.dims[k].has_value())
        return invalid_input("input '", in.name, "' dim ", k, " must be a fixed number");
      shape[k] = in.type.dims[k].value;
    }
    d->cache_dtype_ = in.type.elem;
    d->past_names_.push_back(in.name);
    d->present_names_.push_back(present);
    d->past_empty_shapes_.push_back(shape);
  }
  d->reset();
  return d;
}

void Decoder::reset() {
  past_.clear();
  for (const auto& s : past_empty_shapes_) past_.push_back(Value::allocate(cache_dtype_, s));
  past_len_ = 0;
  history_.clear();
}

size_t Decoder::cache_bytes() const {
  size_t n = 0;
  for (const auto& v : past_) n += v.nbytes();
  return n;
}

Result<std::vector<Value>> Decoder::run(const std::vector<int32_t>& tokens, std::vector<Value>& past) {
  if (tokens.empty()) return invalid_input("no tokens to run");
  const int64_t n = static_cast<int64_t>(tokens.size());
  const int64_t past_len = past.empty() ? 0 : past[0].dim(2);
  std::map<std::string, Value> feeds;
  Value ids = Value::allocate(DType::kI64, {1, n});
  for (int64_t i = 0; i < n; ++i) {
    if (tokens[i] < 0 || (vocab_ > 0 && tokens[i] >= vocab_))
      return invalid_input("token id ", tokens[i], " is outside the vocabulary of ", vocab_);
    ids.mutable_data<int64_t>()[i] = tokens[i];
  }
  feeds["input_ids"] = ids;
  if (has_mask_) {
    Value mask = Value::allocate(DType::kI64, {1, past_len + n});
    std::fill_n(mask.mutable_data<int64_t>(), past_len + n, 1);
    feeds["attention_mask"] = mask;
  }
  if (has_positions_) {
    Value pos = Value::allocate(DType::kI64, {1, n});
    std::iota(pos.mutable_data<int64_t>(), pos.mutable_data<int64_t>() + n, past_len);
    feeds["position_ids"] = pos;
  }
  for (size_t i = 0; i < past_names_.size(); ++i) feeds[past_names_[i]] = past[i];
  std::vector<std::string> wanted{"logits"};
  wanted.insert(wanted.end(), present_names_.begin(), present_names_.end());
  return session_->run(feeds, wanted, /*keep_padded=*/true);  // the cache grows in place
}

Result<Value> Decoder::forward(const std::vector<int32_t>& tokens) {
  if (past_names_.empty()) {  // no KV cache in the graph: the whole sequence again, its last rows kept
    history_.insert(history_.end(), tokens.begin(), tokens.end());
    LLMC_ASSIGN_OR_RETURN(auto out, run(history_, past_));
    past_len_ = static_cast<int64_t>(history_.size());
    const Value& all = out[0];
    if (vocab_ == 0) vocab_ = all.dim(-1);
    const int64_t n = static_cast<int64_t>(tokens.size()), total = static_cast<int64_t>(history_.size());
    if (all.dtype() != DType::kF32) return unsupported("'logits' of ", dtype_name(all.dtype()), " in a graph without past inputs");
    if (all.numel() != total * vocab_) return invalid_input("'logits' has shape ", shape_str(all.shape()), " for ", total, " tokens");
    Value last = Value::allocate(DType::kF32, {n, vocab_});
    std::memcpy(last.mutable_data<float>(), all.data<float>() + (total - n) * vocab_, static_cast<size_t>(n * vocab_) * sizeof(float));
    return last;
  }
  LLMC_ASSIGN_OR_RETURN(auto out, run(tokens, past_));
  for (size_t i = 0; i < past_.size(); ++i) past_[i] = out[i + 1];
  past_len_ += static_cast<int64_t>(tokens.size());
  const Value& logits = out[0];
  if (vocab_ == 0) vocab_ = logits.dim(-1);
  return logits.reshaped({static_cast<int64_t>(tokens.size()), logits.dim(-1)});
}

Result<Value> Decoder::forward_fresh(const std::vector<int32_t>& tokens) {
  std::vector<Value> empty;
  for (const auto& s : past_empty_shapes_) empty.push_back(Value::allocate(cache_dtype_, s));
  LLMC_ASSIGN_OR_RETURN(auto out, run(tokens, empty));
  const Value& logits = out[0];
  if (vocab_ == 0) vocab_ = logits.dim(-1);
  return logits.reshaped({static_cast<int64_t>(tokens.size()), logits.dim(-1)});
}

int32_t sample_token(const float* logits, int64_t vocab, const SamplingOptions& o, std::mt19937_64& rng) {
  if (o.temperature <= 0.f) return static_cast<int32_t>(std::max_element(logits, logits + vocab) - logits);
  std::vector<int32_t> idx(vocab);
  std::iota(idx.begin(), idx.end(), 0);
  int64_t k = o.top_k > 0 ? std::min<int64_t>(o.top_k, vocab) : vocab;
  std::partial_sort(idx.begin(), idx.begin() + k, idx.end(),
                    [&](int32_t a, int32_t b) { return logits[a] > logits[b]; });
  idx.resize(k);
  std::vector<double> p(k);
  const double mx = logits[idx[0]];
  double sum = 0;
  for (int64_t i = 0; i < k; ++i) sum += p[i] = std::exp((logits[idx[i]] - mx) / o.temperature);
  // Nucleus: keep the smallest prefix whose mass reaches top_p.
  int64_t keep = k;
  if (o.top_p < 1.f) {
    double acc = 0;
    for (int64_t i = 0; i < k; ++i) {
      acc += p[i] / sum;
      if (acc >= o.top_p) {
        keep = i + 1;
        break;
      }
    }
  }
  std::discrete_distribution<int64_t> dist(p.begin(), p.begin() + keep);
  return idx[dist(rng)];
}

}  // namespace llmc::rt
