#include "calibration/histogram.h"

#include <algorithm>
#include <functional>
#include <limits>
#include <thread>
#include <vector>

#include "ir/status.h"

namespace llmc::calib {

namespace {

// The smallest power of two >= x (x > 0, finite), exactly.
double next_pow2(double x) {
  int e = 0;
  const double m = std::frexp(x, &e);  // x = m * 2^e, m in [0.5, 1)
  return m == 0.5 ? x : std::ldexp(1.0, e);
}

// One past the last non-empty bin.
int used_bins(const Histogram& h) {
  const auto& c = h.counts();
  int m = static_cast<int>(c.size());
  while (m > 0 && c[m - 1] == 0) --m;
  return m;
}

// Integral over [a, b] of (x - s*round(x/s))^2, via its antiderivative from -s/2: each whole
// period contributes s^3/12, the partial one (r^3 + s^3/8)/3.
double rounding_error_integral(double a, double b, double s) {
  auto antiderivative = [s](double x) {
    const double q = std::floor(x / s + 0.5);
    const double r = x - q * s;
    return q * s * s * s / 12 + (r * r * r + s * s * s / 8) / 3;
  };
  return antiderivative(b) - antiderivative(a);
}

// Integral over [a, b] of (x - t)^2.
double clipping_error_integral(double a, double b, double t) {
  return ((b - t) * (b - t) * (b - t) - (a - t) * (a - t) * (a - t)) / 3;
}

}  // namespace

Histogram::Histogram(int num_bins, Mode mode) : mode_(mode), counts_(static_cast<size_t>(num_bins), 0) {
  LLMC_CHECK(num_bins >= 8 && num_bins % 4 == 0, "histogram bins must be a multiple of 4, >= 8; got ", num_bins);
}

void Histogram::extend(double absmax) {
  if (!(absmax > range_)) return;
  if (range_ == 0) {
    // Values added so far were zeros: bin 0 (|x|) or the bin starting at 0 (x), whatever R is.
    range_ = next_pow2(absmax);
  } else {
    const int n = num_bins();
    while (range_ < absmax) {
      std::vector<uint64_t> merged(counts_.size(), 0);
      // Old bin k starts at (k + offset) * w from the new origin, offset = n/2 for [-R, R]
      // (R = n/2 old bins) and 0 for [0, R]; new bins are 2w wide.
      const int offset = mode_ == Mode::kAbs ? 0 : n / 2;
      for (int k = 0; k < n; ++k) merged[(k + offset) / 2] += counts_[k];
      counts_.swap(merged);
      range_ *= 2;
    }
  }
  inv_width_ = 1.0 / bin_width();
}

double histogram_quantile(const Histogram& h, double fraction) {
  if (h.total() == 0) return 0;
  const auto& c = h.counts();
  const double target = std::clamp(fraction, 0.0, 1.0) * static_cast<double>(h.total());
  const double w = h.bin_width();
  double acc = 0;
  int last = 0;
  for (int k = 0; k < h.num_bins(); ++k) {
    if (c[k] == 0) continue;
    last = k;
    const double ck = static_cast<double>(c[k]);
    // The slack keeps a target like 0.005 * 4000 = 20.000000000000004 at the 20th value.
    if (acc + ck + 1e-9 * static_cast<double>(h.total()) >= target) return h.lower_edge(k) + w * std::clamp((target - acc) / ck, 0.0, 1.0);
    acc += ck;
  }
  return h.lower_edge(last) + w;
}

double entropy_threshold(const Histogram& abs_hist, int num_quantized_bins) {
  const auto& c = abs_hist.counts();
  const int m = used_bins(abs_hist);
  const double w = abs_hist.bin_width();
  const int nq = num_quantized_bins;
  if (m <= nq) return m * w;
  std::vector<double> prefix(m + 1, 0);
  for (int j = 0; j < m; ++j) prefix[j + 1] = prefix[j] + static_cast<double>(c[j]);
  const double total = prefix[m];
  // Candidates are independent: the cores take every slices-th one (interleaved, since the work
  // grows with i). Each keeps its minimum, and the merge takes the smallest KL and, on ties,
  // the largest i, as one sequential pass with `<=` does: the same threshold bit for bit
  // whatever the thread count.
  auto kl_of = [&](int i) {
    const double outliers = total - prefix[i];
    const double sum_q = prefix[i];
    double kl = sum_q > 0 ? 0 : std::numeric_limits<double>::infinity();
    // Group g holds the bins j < i with floor(j * nq / i) == g.
    for (int g = 0; g < nq && std::isfinite(kl); ++g) {
      const int start = static_cast<int>((static_cast<int64_t>(g) * i + nq - 1) / nq);
      const int end = static_cast<int>((static_cast<int64_t>(g + 1) * i + nq - 1) / nq);
      double group_sum = 0;
      int nonzero = 0;
      for (int j = start; j < end; ++j) {
        group_sum += static_cast<double>(c[j]);
        nonzero += c[j] != 0;
      }
      for (int j = start; j < end; ++j) {
        const double p = static_cast<double>(c[j]) + (j == i - 1 ? outliers : 0);
        if (p == 0) continue;
        if (c[j] == 0) {  // P has mass where Q has none: infinite divergence
          kl = std::numeric_limits<double>::infinity();
          break;
        }
        const double pn = p / total, qn = group_sum / nonzero / sum_q;
        kl += pn * std::log(pn / qn);
      }
    }
    return kl;
  };
  struct Best {
    double kl = std::numeric_limits<double>::infinity();
    int i = -1;
  };
  auto scan = [&](int first, int stride, Best& b) {
    for (int i = first; i <= m; i += stride) {
      const double kl = kl_of(i);
      if (kl <= b.kl) b = {kl, i};
    }
  };
  const int candidates = m - nq + 1;
  const int slices = std::clamp<int>(static_cast<int>(std::thread::hardware_concurrency()), 1, std::max(1, candidates / 256));
  std::vector<Best> best(static_cast<size_t>(slices));
  std::vector<std::thread> workers;
  for (int t = 1; t < slices; ++t) workers.emplace_back(scan, nq + t, slices, std::ref(best[t]));
  scan(nq, slices, best[0]);
  for (auto& w : workers) w.join();
  Best all;
  for (const Best& b : best)
    if (b.i >= 0 && (b.kl < all.kl || (b.kl == all.kl && b.i > all.i))) all = b;
  return (all.i >= 0 ? all.i : m) * w;
}

double histogram_quantization_mse(const Histogram& abs_hist, double t, int bits) {
  if (abs_hist.total() == 0) return 0;
  const auto& c = abs_hist.counts();
  const int m = used_bins(abs_hist);
  const double w = abs_hist.bin_width();
  if (w == 0) return 0;  // only zeros
  const double levels = std::ldexp(1.0, bits - 1) - 1;
  const double s = t / levels;
  double err = 0;
  for (int j = 0; j < m; ++j) {
    if (c[j] == 0) continue;
    const double a = j * w, b = a + w;
    double integral = 0;
    if (t <= 0) {
      integral = clipping_error_integral(a, b, 0);
    } else if (b <= t) {
      integral = rounding_error_integral(a, b, s);
    } else if (a >= t) {
      integral = clipping_error_integral(a, b, t);
    } else {
      integral = rounding_error_integral(a, t, s) + clipping_error_integral(t, b, t);
    }
    err += static_cast<double>(c[j]) * integral / w;
  }
  return err / static_cast<double>(abs_hist.total());
}

double mse_threshold(const Histogram& abs_hist, int bits) {
  const int m = used_bins(abs_hist);
  const double w = abs_hist.bin_width();
  if (m == 0 || w == 0) return 0;
  double best = std::numeric_limits<double>::infinity();
  int best_k = m;
  for (int k = 1; k <= m; ++k) {
    const double e = histogram_quantization_mse(abs_hist, k * w, bits);
    if (e < best) {
      best = e;
      best_k = k;
    }
  }
  return best_k * w;
}

}  // namespace llmc::calib
