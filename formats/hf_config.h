// A Hugging Face config.json read with typed lookups whose errors name the file and the key:
// "config.json: 'num_attention_heads' is missing", "... is a string, expected an integer".
#pragma once
#include <optional>
#include <string>

#include "formats/json.h"
#include "ir/status.h"

namespace llmc {

class HfConfig {
 public:
  static Result<HfConfig> read(const std::string& path);

  const std::string& path() const { return path_; }
  const JsonValue& json() const { return json_; }
  bool has(const std::string& key) const;  // present and not null

  Result<int64_t> get_int(const std::string& key, int64_t min, int64_t max) const;
  Result<double> get_float(const std::string& key) const;
  Result<bool> get_bool(const std::string& key) const;
  Result<std::string> get_string(const std::string& key) const;
  // The same, or `fallback` when the key is absent or null (the class default in transformers).
  Result<int64_t> get_int_or(const std::string& key, int64_t min, int64_t max, int64_t fallback) const;
  Result<double> get_float_or(const std::string& key, double fallback) const;
  Result<bool> get_bool_or(const std::string& key, bool fallback) const;
  // architectures[0] ("LlamaForCausalLM", "BertModel", ...).
  Result<std::string> architecture() const;

 private:
  std::string path_;
  JsonValue json_;
};

}  // namespace llmc
