// Shared by the CLI's commands: turning a Status into one stderr line and an exit code, and
// a small JSON writer for --json output.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "ir/status.h"

namespace llmc::cli {

// 0 ok, 1 a gate/check failed, 2 bad input or usage.
int exit_code_for(const Status& status);
// Prints "llmcompress <command>: error: <message>" to stderr; returns the exit code.
int report(const std::string& command, const Status& status);

// Builds compact JSON text. Callers open/close objects and arrays in order; commas are automatic.
class Json {
 public:
  Json& begin_object();
  Json& end_object();
  Json& begin_array();
  Json& end_array();
  Json& key(const std::string& k);
  Json& value(const std::string& v);
  Json& value(const char* v) { return value(std::string(v)); }
  Json& value(int64_t v);
  Json& value(int v) { return value(static_cast<int64_t>(v)); }
  Json& value(size_t v) { return value(static_cast<int64_t>(v)); }
  Json& value(double v);
  Json& value(bool v);
  Json& null();
  // Already-serialised JSON (a nested document built elsewhere), inserted as one value.
  Json& raw(const std::string& json);
  template <typename T>
  Json& field(const std::string& k, const T& v) { return key(k).value(v); }
  const std::string& str() const { return out_; }

 private:
  void comma();
  std::string out_;
  std::vector<bool> first_;  // per open container: no element written yet
  bool after_key_ = false;
};

std::string json_escape(const std::string& s);

}  // namespace llmc::cli
