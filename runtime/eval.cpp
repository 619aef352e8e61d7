#include "runtime/eval.h"

#include <algorithm>
#include <cmath>

namespace llmc::rt {

double PerplexityResult::perplexity() const { return scored ? std::exp(nll_sum / scored) : NAN; }

void log_softmax(const float* logits, int64_t n, std::vector<double>& out) {
  out.resize(n);
  double mx = -INFINITY;
  for (int64_t i = 0; i < n; ++i) mx = std::max(mx, double(logits[i]));
  double sum = 0;
  for (int64_t i = 0; i < n; ++i) sum += std::exp(double(logits[i]) - mx);
  const double lse = mx + std::log(sum);
  for (int64_t i = 0; i < n; ++i) out[i] = logits[i] - lse;
}

Result<std::vector<Window>> plan_windows(int64_t num_tokens, const WindowOptions& o) {
  if (o.ctx < 2) return invalid_input("the window length (--ctx) must be at least 2, got ", o.ctx);
  const int64_t stride = o.stride > 0 ? o.stride : o.ctx;
  if (stride > o.ctx) return invalid_input("--stride ", stride, " is larger than --ctx ", o.ctx);
  const int64_t n = o.limit > 0 ? std::min(o.limit, num_tokens) : num_tokens;
  if (n < 2) return invalid_input("need at least 2 tokens to score, got ", n);
  std::vector<Window> windows;
  int64_t scored_until = 1;  // next target position not yet scored
  for (int64_t begin = 0;; begin += stride) {
    const int64_t end = std::min(begin + o.ctx, n);
    const int64_t first = std::max(scored_until, begin + 1);
    if (first < end) windows.push_back({begin, end, first});
    scored_until = std::max(scored_until, end);
    if (end >= n) break;
  }
  return windows;
}

Result<PerplexityResult> perplexity(Decoder& model, const std::vector<int32_t>& tokens, const WindowOptions& o) {
  LLMC_ASSIGN_OR_RETURN(auto windows, plan_windows(static_cast<int64_t>(tokens.size()), o));
  PerplexityResult r;
  r.tokens = o.limit > 0 ? std::min<int64_t>(o.limit, tokens.size()) : tokens.size();
  std::vector<double> lp;
  for (const Window& w : windows) {
    std::vector<int32_t> slice(tokens.begin() + w.begin, tokens.begin() + w.end);
    LLMC_ASSIGN_OR_RETURN(Value logits, model.forward_fresh(slice));
    const int64_t vocab = logits.dim(1);
    for (int64_t p = w.first_scored; p < w.end; ++p) {
      if (tokens[p] < 0 || tokens[p] >= vocab)
        return invalid_input("token ", p, " is ", tokens[p], ", beyond the model's vocabulary of ", vocab);
      log_softmax(logits.data<float>() + (p - 1 - w.begin) * vocab, vocab, lp);
      r.nll_sum -= lp[tokens[p]];
      ++r.scored;
    }
    ++r.windows;
  }
  return r;
}

Result<CompareResult> compare_models(Decoder& base, Decoder& other, const std::vector<int32_t>& tokens,
                                     const WindowOptions& o) {
  LLMC_ASSIGN_OR_RETURN(auto windows, plan_windows(static_cast<int64_t>(tokens.size()), o));
  CompareResult r;
  r.base_ppl.tokens = r.other_ppl.tokens = o.limit > 0 ? std::min<int64_t>(o.limit, tokens.size()) : tokens.size();
  std::vector<double> la, lb;
  double kl_sum = 0, abs_sum = 0;
  int64_t agree = 0, logits_seen = 0;
  for (const Window& w : windows) {
    std::vector<int32_t> slice(tokens.begin() + w.begin, tokens.begin() + w.end);
    LLMC_ASSIGN_OR_RETURN(Value a, base.forward_fresh(slice));
    LLMC_ASSIGN_OR_RETURN(Value b, other.forward_fresh(slice));
    if (a.shape() != b.shape())
      return invalid_input("the models' logits differ in shape: ", shape_str(a.shape()), " vs ", shape_str(b.shape()));
    const int64_t vocab = a.dim(1);
    for (int64_t p = w.first_scored; p < w.end; ++p) {
      const float* pa = a.data<float>() + (p - 1 - w.begin) * vocab;
      const float* pb = b.data<float>() + (p - 1 - w.begin) * vocab;
      log_softmax(pa, vocab, la);
      log_softmax(pb, vocab, lb);
      double kl = 0;
      for (int64_t v = 0; v < vocab; ++v) {
        kl += std::exp(la[v]) * (la[v] - lb[v]);
        const double e = std::fabs(double(pa[v]) - pb[v]);
        abs_sum += e;
        r.max_abs_logit_error = std::max(r.max_abs_logit_error, e);
      }
      logits_seen += vocab;
      kl_sum += kl;
      agree += (std::max_element(pa, pa + vocab) - pa) == (std::max_element(pb, pb + vocab) - pb);
      r.base_ppl.nll_sum -= la[tokens[p]];
      r.other_ppl.nll_sum -= lb[tokens[p]];
      ++r.positions;
    }
    ++r.base_ppl.windows;
    ++r.other_ppl.windows;
    if (o.progress) o.progress(static_cast<size_t>(r.base_ppl.windows), windows.size());
  }
  r.base_ppl.scored = r.other_ppl.scored = r.positions;
  if (r.positions) {
    r.top1_agreement = double(agree) / r.positions;
    r.mean_kl = kl_sum / r.positions;
    r.mean_abs_logit_error = abs_sum / logits_seen;
  }
  return r;
}

}  // namespace llmc::rt
