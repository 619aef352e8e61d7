// Seeded random Llama-shaped models in the same graph form as the llama2.c import, for speed
// work on realistic sizes without downloading weights.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "formats/llama2c_checkpoint.h"
#include "ir/graph.h"

namespace llmc {

struct SynthPreset {
  std::string name;
  Llama2cConfig config;
};
// "llama-110m" (dim 768, 12 layers, 12 heads, hidden 2048, vocab 32000, seq 1024),
// "llama-42m", "llama-15m", "llama-tiny".
const std::vector<SynthPreset>& synth_presets();
Result<Llama2cConfig> synth_preset(const std::string& name);

// Weights ~ N(0, 0.02) (norm weights 1), from a seeded generator: same seed, same model.
Result<Model> synth_llama(const Llama2cConfig& config, uint64_t seed);

}  // namespace llmc
