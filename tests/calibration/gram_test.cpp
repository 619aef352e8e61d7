// Float64 Gram accumulation (calibration/gram.h) on seeded random rows: the same bits as a
// naive float64 loop over the rows in order, for channel counts that fill no tile, part of a
// tile or many tiles, row counts across the 256-row blocks, and 1, 2 or 3 threads.
#include <catch2/catch.hpp>
#include <cstring>
#include <random>
#include <vector>

#include "calibration/gram.h"

using namespace llmc;
using namespace llmc::calib;

namespace {

std::vector<float> random_rows(int64_t rows, int64_t channels, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal(0.f, 1.f);
  std::vector<float> x(static_cast<size_t>(rows * channels));
  for (float& v : x) v = normal(rng);
  for (size_t i = 0; i < x.size(); i += 37) x[i] *= 1000.f;  // outliers: a wide range of magnitudes
  return x;
}

}  // namespace

TEST_CASE("gram accumulation equals a naive float64 loop bit for bit", "[calibration][gram]") {
  for (int64_t channels : {1, 3, 8, 13, 64, 172}) {
    for (int64_t rows : {1, 7, 256, 600}) {
      INFO("channels " << channels << " rows " << rows);
      const auto x1 = random_rows(rows, channels, 1000 + channels * 7 + rows);
      const auto x2 = random_rows(rows / 2 + 1, channels, 2000 + channels);
      std::vector<double> ref(static_cast<size_t>(channels * channels), 0.0);
      for (const auto* x : {&x1, &x2})
        for (int64_t r = 0; r < static_cast<int64_t>(x->size()) / channels; ++r)
          for (int64_t i = 0; i < channels; ++i)
            for (int64_t j = 0; j < channels; ++j)
              ref[i * channels + j] += static_cast<double>((*x)[r * channels + i]) * (*x)[r * channels + j];
      for (int threads : {1, 2, 3}) {
        INFO("threads " << threads);
        rt::ThreadPool pool(threads);
        std::vector<double> g(ref.size(), 0.0), scratch;
        accumulate_gram(g.data(), channels, x1.data(), rows, scratch, &pool);  // two calls: two samples
        accumulate_gram(g.data(), channels, x2.data(), static_cast<int64_t>(x2.size()) / channels, scratch, &pool);
        symmetrize_gram(g.data(), channels);
        CHECK(std::memcmp(g.data(), ref.data(), g.size() * sizeof(double)) == 0);
      }
    }
  }
}

TEST_CASE("gram accumulation without a pool and with nothing to add", "[calibration][gram]") {
  const int64_t channels = 20, rows = 300;
  const auto x = random_rows(rows, channels, 5);
  std::vector<double> a(channels * channels, 0.0), b(channels * channels, 0.0), scratch;
  rt::ThreadPool pool(2);
  accumulate_gram(a.data(), channels, x.data(), rows, scratch, nullptr);
  accumulate_gram(b.data(), channels, x.data(), rows, scratch, &pool);
  accumulate_gram(b.data(), channels, x.data(), 0, scratch, &pool);  // no rows: no change
  CHECK(std::memcmp(a.data(), b.data(), a.size() * sizeof(double)) == 0);
  symmetrize_gram(a.data(), channels);
  for (int64_t i = 0; i < channels; ++i) {
    CHECK(a[i * channels + i] > 0);
    for (int64_t j = 0; j < i; ++j) CHECK(a[i * channels + j] == a[j * channels + i]);
  }
}
