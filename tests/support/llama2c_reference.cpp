#include "tests/support/llama2c_reference.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

namespace llmc::testing {

namespace {
using Vec = std::vector<double>;

Vec to_double(const float* p, size_t n) { return Vec(p, p + n); }

// run.c rmsnorm(): o = weight * x / sqrt(mean(x^2) + 1e-5).
Vec rmsnorm(const Vec& x, const double* weight) {
  double ss = 0;
  for (double v : x) ss += v * v;
  ss = 1.0 / std::sqrt(ss / static_cast<double>(x.size()) + 1e-5);
  Vec o(x.size());
  for (size_t j = 0; j < x.size(); ++j) o[j] = weight[j] * (ss * x[j]);
  return o;
}

// run.c matmul(): W is row-major [d][n], returns W @ x.
Vec matmul(const double* w, const Vec& x, size_t d) {
  const size_t n = x.size();
  Vec o(d);
  for (size_t i = 0; i < d; ++i) {
    double s = 0;
    for (size_t j = 0; j < n; ++j) s += w[i * n + j] * x[j];
    o[i] = s;
  }
  return o;
}

void softmax(Vec& x) {
  double mx = x[0];
  for (double v : x) mx = std::max(mx, v);
  double sum = 0;
  for (double& v : x) {
    v = std::exp(v - mx);
    sum += v;
  }
  for (double& v : x) v /= sum;
}
}  // namespace

Llama2cReference::Llama2cReference(const Llama2cCheckpoint& ck) : config_(ck.config) {
  const size_t dim = config_.dim, hidden = config_.hidden_dim, kv = config_.kv_dim();
  const size_t vocab = config_.vocab_size;
  token_embedding_ = to_double(ck.token_embedding, vocab * dim);
  rms_final_ = to_double(ck.rms_final, dim);
  classifier_ = to_double(ck.classifier, vocab * dim);
  for (int l = 0; l < config_.n_layers; ++l) {
    Layer L;
    L.rms_att = to_double(ck.rms_att + l * dim, dim);
    L.wq = to_double(ck.wq + l * dim * dim, dim * dim);
    L.wk = to_double(ck.wk + l * kv * dim, kv * dim);
    L.wv = to_double(ck.wv + l * kv * dim, kv * dim);
    L.wo = to_double(ck.wo + l * dim * dim, dim * dim);
    L.rms_ffn = to_double(ck.rms_ffn + l * dim, dim);
    L.w1 = to_double(ck.w1 + l * hidden * dim, hidden * dim);
    L.w2 = to_double(ck.w2 + l * dim * hidden, dim * hidden);
    L.w3 = to_double(ck.w3 + l * hidden * dim, hidden * dim);
    layers_.push_back(std::move(L));
  }
  reset();
}

void Llama2cReference::reset() {
  key_cache_.assign(config_.n_layers, {});
  value_cache_.assign(config_.n_layers, {});
}

std::vector<double> Llama2cReference::forward(int token, int pos) {
  const Llama2cConfig& c = config_;
  if (token < 0 || token >= c.vocab_size)
    throw std::invalid_argument("Llama2cReference: token " + std::to_string(token) +
                                " outside [0, " + std::to_string(c.vocab_size) + ")");
  if (pos != positions() || pos >= c.seq_len)
    throw std::invalid_argument("Llama2cReference: pos " + std::to_string(pos) + " but " +
                                std::to_string(positions()) + " tokens are cached (seq_len " +
                                std::to_string(c.seq_len) + ")");
  const size_t dim = c.dim, hidden = c.hidden_dim, kv_dim = c.kv_dim();
  const int head_size = c.head_size();
  const int kv_mul = c.n_heads / c.n_kv_heads;  // query heads sharing one kv head

  Vec x(token_embedding_.begin() + token * dim, token_embedding_.begin() + (token + 1) * dim);

  for (int l = 0; l < c.n_layers; ++l) {
    const Layer& L = layers_[l];
    // Attention block.
    Vec xb = rmsnorm(x, L.rms_att.data());
    Vec q = matmul(L.wq.data(), xb, dim);
    Vec k = matmul(L.wk.data(), xb, kv_dim);
    Vec v = matmul(L.wv.data(), xb, kv_dim);

    // RoPE exactly as run.c: rotate adjacent pairs (i, i+1) across the whole vector, the angle
    // depending on the index within the head; k only has kv_dim entries.
    for (size_t i = 0; i < dim; i += 2) {
      const int head_dim = static_cast<int>(i) % head_size;
      const double freq = 1.0 / std::pow(10000.0, head_dim / static_cast<double>(head_size));
      const double val = pos * freq;
      const double fcr = std::cos(val), fci = std::sin(val);
      const int rotn = i < kv_dim ? 2 : 1;
      for (int r = 0; r < rotn; ++r) {
        Vec& vec = r == 0 ? q : k;
        const double v0 = vec[i], v1 = vec[i + 1];
        vec[i] = v0 * fcr - v1 * fci;
        vec[i + 1] = v0 * fci + v1 * fcr;
      }
    }
    key_cache_[l].push_back(k);
    value_cache_[l].push_back(v);

    // Causal multi-head attention over positions 0..pos (all cached), grouped kv heads.
    Vec att_out(dim, 0.0);
    const double scale = 1.0 / std::sqrt(static_cast<double>(head_size));
    for (int h = 0; h < c.n_heads; ++h) {
      const double* qh = q.data() + h * head_size;
      const size_t kv_off = static_cast<size_t>(h / kv_mul) * head_size;
      Vec att(pos + 1);
      for (int t = 0; t <= pos; ++t) {
        const double* kt = key_cache_[l][t].data() + kv_off;
        double score = 0;
        for (int i = 0; i < head_size; ++i) score += qh[i] * kt[i];
        att[t] = score * scale;
      }
      softmax(att);
      double* out = att_out.data() + h * head_size;
      for (int t = 0; t <= pos; ++t) {
        const double* vt = value_cache_[l][t].data() + kv_off;
        for (int i = 0; i < head_size; ++i) out[i] += att[t] * vt[i];
      }
    }
    Vec attn = matmul(L.wo.data(), att_out, dim);
    for (size_t i = 0; i < dim; ++i) x[i] += attn[i];

    // SwiGLU feed-forward: w2(silu(w1 x) * w3 x).
    xb = rmsnorm(x, L.rms_ffn.data());
    Vec hb = matmul(L.w1.data(), xb, hidden);
    Vec hb2 = matmul(L.w3.data(), xb, hidden);
    for (size_t i = 0; i < hidden; ++i) {
      const double silu = hb[i] / (1.0 + std::exp(-hb[i]));
      hb[i] = silu * hb2[i];
    }
    Vec ffn = matmul(L.w2.data(), hb, dim);
    for (size_t i = 0; i < dim; ++i) x[i] += ffn[i];
  }

  x = rmsnorm(x, rms_final_.data());
  return matmul(classifier_.data(), x, c.vocab_size);
}

std::vector<std::vector<double>> logits_for_sequence(const Llama2cCheckpoint& checkpoint,
                                                     const std::vector<int>& tokens) {
  Llama2cReference ref(checkpoint);
  std::vector<std::vector<double>> out;
  out.reserve(tokens.size());
  for (size_t pos = 0; pos < tokens.size(); ++pos)
    out.push_back(ref.forward(tokens[pos], static_cast<int>(pos)));
  return out;
}

}  // namespace llmc::testing
