// Status and Result<T>: how library code reports failure. Library code never prints or exits;
// tools/ turns a failed Status into one stderr line and an exit code.
#pragma once
#include <cassert>
#include <optional>
#include <sstream>
#include <string>
#include <utility>

namespace llmc {

enum class StatusCode {
  kOk = 0,
  kInvalidInput,   // the user's file or arguments are wrong (exit code 2)
  kUnsupported,    // valid input we do not handle (exit code 2)
  kIoError,        // the OS refused a read or write (exit code 2)
  kCheckFailed,    // a gate or comparison failed (exit code 1)
  kInternal,       // a bug of ours
};

class Status {
 public:
  Status() = default;
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}
  static Status ok() { return {}; }
  bool is_ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }
  // Prefixes context ("file.onnx: ") so errors name where they happened.
  Status with_context(const std::string& context) const {
    if (is_ok()) return *this;
    return Status(code_, context + ": " + message_);
  }

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

// Builds a message from streamable pieces: invalid_input("node '", name, "' has ", n, " inputs").
template <typename... Args>
std::string str_cat(const Args&... args) {
  std::ostringstream os;
  (os << ... << args);
  return os.str();
}
template <typename... Args>
Status invalid_input(const Args&... args) {
  return Status(StatusCode::kInvalidInput, str_cat(args...));
}
template <typename... Args>
Status unsupported(const Args&... args) {
  return Status(StatusCode::kUnsupported, str_cat(args...));
}
template <typename... Args>
Status io_error(const Args&... args) {
  return Status(StatusCode::kIoError, str_cat(args...));
}
template <typename... Args>
Status internal_error(const Args&... args) {
  return Status(StatusCode::kInternal, str_cat(args...));
}

template <typename T>
class Result {
 public:
  Result(T value) : value_(std::move(value)) {}  // NOLINT: implicit by design
  Result(Status status) : status_(std::move(status)) { assert(!status_.is_ok()); }  // NOLINT
  bool is_ok() const { return status_.is_ok(); }
  const Status& status() const { return status_; }
  T& value() & { assert(is_ok()); return *value_; }
  const T& value() const& { assert(is_ok()); return *value_; }
  T&& value() && { assert(is_ok()); return std::move(*value_); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }

 private:
  Status status_;
  std::optional<T> value_;
};

}  // namespace llmc

#define LLMC_CONCAT_INNER(a, b) a##b
#define LLMC_CONCAT(a, b) LLMC_CONCAT_INNER(a, b)

// Returns the Status from the enclosing function when `expr` failed.
#define LLMC_RETURN_IF_ERROR(expr)                       \
  do {                                                   \
    ::llmc::Status llmc_status_ = (expr);                \
    if (!llmc_status_.is_ok()) return llmc_status_;      \
  } while (0)

// `LLMC_ASSIGN_OR_RETURN(auto x, f());` unwraps a Result or returns its Status.
#define LLMC_ASSIGN_OR_RETURN(lhs, expr) \
  LLMC_ASSIGN_OR_RETURN_IMPL(LLMC_CONCAT(llmc_result_, __LINE__), lhs, expr)
#define LLMC_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                               \
  if (!tmp.is_ok()) return tmp.status();           \
  lhs = std::move(tmp).value()

// For broken internal invariants only (never for bad user input).
#define LLMC_CHECK(cond, ...)                                                             \
  do {                                                                                    \
    if (!(cond)) ::llmc::detail::check_failed(__FILE__, __LINE__, #cond,                  \
                                              ::llmc::str_cat("" __VA_OPT__(, ) __VA_ARGS__)); \
  } while (0)

namespace llmc::detail {
[[noreturn]] void check_failed(const char* file, int line, const char* cond, const std::string& msg);
}
