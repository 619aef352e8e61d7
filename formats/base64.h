// Base64 (RFC 4648, with padding) for binary blobs stored in string metadata.
#pragma once
#include <optional>
#include <string>

namespace llmc {
std::string base64_encode(const std::string& bytes);
// nullopt on malformed input.
std::optional<std::string> base64_decode(const std::string& text);
}  // namespace llmc
