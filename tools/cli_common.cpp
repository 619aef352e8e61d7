#include "tools/cli_common.h"

#include <cmath>
#include <cstdio>
#include <sstream>

namespace llmc::cli {

int exit_code_for(const Status& status) {
  switch (status.code()) {
    case StatusCode::kOk: return 0;
    case StatusCode::kCheckFailed: return 1;
    case StatusCode::kInternal: return 3;
    default: return 2;
  }
}

int report(const std::string& command, const Status& status) {
  if (!status.is_ok())
    std::fprintf(stderr, "llmcompress %s: error: %s\n", command.c_str(), status.message().c_str());
  return exit_code_for(status);
}

std::string json_escape(const std::string& s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  return out + "\"";
}

void Json::comma() {
  if (after_key_) {
    after_key_ = false;
    return;
  }
  if (!first_.empty()) {
    if (!first_.back()) out_ += ",";
    first_.back() = false;
  }
}

Json& Json::begin_object() { comma(); out_ += "{"; first_.push_back(true); return *this; }
Json& Json::end_object() { out_ += "}"; first_.pop_back(); return *this; }
Json& Json::begin_array() { comma(); out_ += "["; first_.push_back(true); return *this; }
Json& Json::end_array() { out_ += "]"; first_.pop_back(); return *this; }
Json& Json::key(const std::string& k) {
  comma();
  out_ += json_escape(k) + ":";
  after_key_ = true;
  return *this;
}
Json& Json::value(const std::string& v) { comma(); out_ += json_escape(v); return *this; }
Json& Json::value(int64_t v) { comma(); out_ += std::to_string(v); return *this; }
Json& Json::value(double v) {
  comma();
  if (!std::isfinite(v)) {
    out_ += "null";
  } else {
    std::ostringstream os;
    os.precision(10);
    os << v;
    out_ += os.str();
  }
  return *this;
}
Json& Json::value(bool v) { comma(); out_ += v ? "true" : "false"; return *this; }
Json& Json::null() { comma(); out_ += "null"; return *this; }
Json& Json::raw(const std::string& json) { comma(); out_ += json; return *this; }

}  // namespace llmc::cli
