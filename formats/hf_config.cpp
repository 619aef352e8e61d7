#include "formats/hf_config.h"

#include "formats/mapped_file.h"

namespace llmc {

namespace {
const char* type_name(JsonValue::Type t) {
  switch (t) {
    case JsonValue::Type::kNull: return "null";
    case JsonValue::Type::kBool: return "a bool";
    case JsonValue::Type::kNumber: return "a number";
    case JsonValue::Type::kString: return "a string";
    case JsonValue::Type::kArray: return "an array";
    case JsonValue::Type::kObject: return "an object";
  }
  return "?";
}
}  // namespace

Result<HfConfig> HfConfig::read(const std::string& path) {
  LLMC_ASSIGN_OR_RETURN(auto file, MappedFile::open(path));
  HfConfig c;
  c.path_ = path;
  LLMC_ASSIGN_OR_RETURN(c.json_, parse_json(std::string_view(reinterpret_cast<const char*>(file->data()),
                                                             file->size()), path));
  if (!c.json_.is_object()) return invalid_input(path, ": expected a JSON object");
  return c;
}

bool HfConfig::has(const std::string& key) const {
  const JsonValue* v = json_.find(key);
  return v && !v->is_null();
}

Result<int64_t> HfConfig::get_int(const std::string& key, int64_t min, int64_t max) const {
  const JsonValue* v = json_.find(key);
  if (!v || v->is_null()) return invalid_input(path_, ": '", key, "' is missing");
  const auto i = v->as_int();
  if (!v->is_number() || !i) return invalid_input(path_, ": '", key, "' is ", type_name(v->type()), ", expected an integer");
  if (*i < min || *i > max) return invalid_input(path_, ": '", key, "' = ", *i, " is outside [", min, ", ", max, "]");
  return *i;
}

Result<double> HfConfig::get_float(const std::string& key) const {
  const JsonValue* v = json_.find(key);
  if (!v || v->is_null()) return invalid_input(path_, ": '", key, "' is missing");
  if (!v->is_number()) return invalid_input(path_, ": '", key, "' is ", type_name(v->type()), ", expected a number");
  return v->as_double();
}

Result<bool> HfConfig::get_bool(const std::string& key) const {
  const JsonValue* v = json_.find(key);
  if (!v || v->is_null()) return invalid_input(path_, ": '", key, "' is missing");
  if (!v->is_bool()) return invalid_input(path_, ": '", key, "' is ", type_name(v->type()), ", expected true or false");
  return v->as_bool();
}

Result<std::string> HfConfig::get_string(const std::string& key) const {
  const JsonValue* v = json_.find(key);
  if (!v || v->is_null()) return invalid_input(path_, ": '", key, "' is missing");
  if (!v->is_string()) return invalid_input(path_, ": '", key, "' is ", type_name(v->type()), ", expected a string");
  return v->as_string();
}

Result<int64_t> HfConfig::get_int_or(const std::string& key, int64_t min, int64_t max, int64_t fallback) const {
  return has(key) ? get_int(key, min, max) : Result<int64_t>(fallback);
}
Result<double> HfConfig::get_float_or(const std::string& key, double fallback) const {
  return has(key) ? get_float(key) : Result<double>(fallback);
}
Result<bool> HfConfig::get_bool_or(const std::string& key, bool fallback) const {
  return has(key) ? get_bool(key) : Result<bool>(fallback);
}

Result<std::string> HfConfig::architecture() const {
  const JsonValue* a = json_.find("architectures");
  if (!a || !a->is_array() || a->as_array().empty() || !a->as_array()[0].is_string())
    return invalid_input(path_, ": 'architectures' is missing (expected e.g. [\"LlamaForCausalLM\"])");
  return a->as_array()[0].as_string();
}

}  // namespace llmc
