// Finding the safetensors files of a Hugging Face checkpoint: a sharded one through
// model.safetensors.index.json's "weight_map", else a single model.safetensors.
#include <filesystem>

#include "formats/json.h"
#include "formats/mapped_file.h"
#include "formats/safetensors.h"

namespace llmc {

namespace {

namespace fs = std::filesystem;

constexpr const char* kIndexName = "model.safetensors.index.json";
constexpr const char* kSingleName = "model.safetensors";

bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

// Shard names are paths relative to the index's directory; an absolute path or a ".." step
// would read a file the checkpoint does not own.
bool is_relative_inside(const std::string& name) {
  const fs::path p(name);
  if (name.empty() || p.is_absolute()) return false;
  for (const fs::path& part : p)
    if (part == "..") return false;
  return true;
}

struct WeightMap {
  std::vector<std::pair<std::string, std::string>> entries;  // tensor -> shard, in file order
  std::vector<std::string> shards;                           // distinct, first-named first
};

Result<WeightMap> read_weight_map(const std::string& index_path) {
  LLMC_ASSIGN_OR_RETURN(std::shared_ptr<const MappedFile> file, MappedFile::open(index_path));
  const std::string_view text(reinterpret_cast<const char*>(file->data()), file->size());
  LLMC_ASSIGN_OR_RETURN(JsonValue index, parse_json(text, index_path));
  const JsonValue* map = index.find("weight_map");
  if (!map || !map->is_object())
    return invalid_input(index_path, ": no \"weight_map\" object mapping tensor names to shards");
  WeightMap result;
  for (const auto& [tensor, shard] : map->as_object()) {
    if (!shard.is_string() || !is_relative_inside(shard.as_string()))
      return invalid_input(index_path, ": weight_map entry for tensor ", json_quote(tensor),
                           " is not a shard file name relative to the index");
    result.entries.emplace_back(tensor, shard.as_string());
    bool seen = false;
    for (const std::string& s : result.shards) seen = seen || s == shard.as_string();
    if (!seen) result.shards.push_back(shard.as_string());
  }
  if (result.shards.empty()) return invalid_input(index_path, ": weight_map names no shards");
  return result;
}

}  // namespace

Result<SafetensorsCheckpoint> read_sharded_safetensors(const std::string& index_path) {
  LLMC_ASSIGN_OR_RETURN(WeightMap map, read_weight_map(index_path));
  const fs::path dir = fs::path(index_path).parent_path();
  SafetensorsCheckpoint checkpoint;
  for (const std::string& shard : map.shards) {
    const std::string path = (dir / shard).string();
    std::error_code ec;
    if (!fs::exists(path, ec))
      return invalid_input(index_path, ": weight_map names shard ", shard, ", but ", path,
                           " does not exist");
    LLMC_ASSIGN_OR_RETURN(SafetensorsCheckpoint one, read_safetensors_file(path));
    LLMC_RETURN_IF_ERROR(checkpoint.append(std::move(one)).with_context(index_path));
  }
  // The index must agree with the shards about where each tensor lives.
  for (const auto& [tensor, shard] : map.entries) {
    const std::string path = (dir / shard).string();
    if (checkpoint.file_of(tensor) != path)
      return invalid_input(index_path, ": weight_map places tensor ", json_quote(tensor), " in ",
                           shard, ", but ", path, " does not hold it");
  }
  return checkpoint;
}

Result<SafetensorsCheckpoint> open_safetensors_checkpoint(const std::string& dir_or_file) {
  std::error_code ec;
  if (fs::is_directory(dir_or_file, ec)) {
    const fs::path dir(dir_or_file);
    if (fs::exists(dir / kIndexName, ec)) return read_sharded_safetensors((dir / kIndexName).string());
    if (fs::exists(dir / kSingleName, ec)) return read_safetensors_file((dir / kSingleName).string());
    return invalid_input(dir_or_file, ": holds neither ", kIndexName, " nor ", kSingleName);
  }
  if (ends_with(dir_or_file, ".json")) return read_sharded_safetensors(dir_or_file);
  return read_safetensors_file(dir_or_file);
}

}  // namespace llmc
