#include "tests/support/safetensors_files.h"

#include <fstream>

#include "formats/json.h"

namespace llmc::testing {

std::string safetensors_bytes(const std::string& header, const std::string& data) {
  std::string out;
  uint64_t n = header.size();
  for (int i = 0; i < 8; ++i, n >>= 8) out += static_cast<char>(n & 0xFF);
  return out + header + data;
}

std::string make_safetensors(const std::vector<Tensor>& tensors,
                             const std::vector<std::string>& dtype_names, bool pad_header) {
  std::string header = "{\"__metadata__\": {\"format\": \"pt\"}";
  std::string data;
  for (size_t i = 0; i < tensors.size(); ++i) {
    const Tensor& t = tensors[i];
    header += ", " + json_quote(t.name()) + ": {\"dtype\": \"" + dtype_names[i] + "\", \"shape\": [";
    for (size_t d = 0; d < t.dims().size(); ++d)
      header += (d ? ", " : "") + std::to_string(t.dims()[d]);
    header += "], \"data_offsets\": [" + std::to_string(data.size()) + ", " +
              std::to_string(data.size() + t.nbytes()) + "]}";
    data.append(reinterpret_cast<const char*>(t.data()), t.nbytes());
  }
  header += "}";
  while (pad_header && header.size() % 8 != 0) header += ' ';
  return safetensors_bytes(header, data);
}

std::string write_file_in(const std::string& dir, const std::string& name, const std::string& bytes) {
  const std::string path = dir + "/" + name;
  std::ofstream(path, std::ios::binary) << bytes;
  return path;
}

}  // namespace llmc::testing
