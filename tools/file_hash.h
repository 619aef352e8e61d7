// SHA-256 of files, for the manifest every artifact carries (what exactly it was made from).
#pragma once
#include <string>

#include "ir/status.h"

namespace llmc::cli {

// Lower-case hex digest of the file's bytes; the error names the file.
Result<std::string> sha256_file(const std::string& path);

}  // namespace llmc::cli
