// llmcompress run MODEL --input NAME=FILE.npy ... --output-dir DIR     (one inference)
// llmcompress run MODEL --prompt TEXT --tokens N [sampling options]    (KV-cache generation)
// llmcompress run MODEL --prompt-ids 1,2,3 --tokens N                   (the same on token ids)
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <limits>

#include "formats/model_loader.h"
#include "formats/npy.h"
#include "runtime/session.h"
#include "tools/recipe.h"
#include "tools/cli_common.h"
#include "tools/commands.h"
#include "tools/model_session.h"

namespace llmc::cli {

namespace {
struct RunArgs {
  std::string model;
  std::vector<std::string> inputs;
  std::string output_dir;
  std::string prompt;
  std::vector<int64_t> prompt_ids;  // generation from token ids: no tokenizer, ids printed
  std::string tokenizer;
  int tokens = 0;
  int threads = 0;
  rt::SamplingOptions sampling;
};

// An output name as a file name: '/', ':', '\\' and '%' percent-encoded, so distinct names stay
// distinct files ("a/b" -> a%2Fb.npy, "a:b" -> a%3Ab.npy) and none leaves the output directory.
std::string file_safe(const std::string& name) {
  static const char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (const unsigned char c : name) {
    if (c == '/' || c == ':' || c == '\\' || c == '%' || c < 0x20) {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    } else {
      out += static_cast<char>(c);
    }
  }
  return out == "." || out == ".." ? "%2E" + out.substr(1) : out;
}

Status run_once(const RunArgs& a, const LoadedModel& m) {
  std::map<std::string, rt::Value> feeds;
  for (const auto& spec : a.inputs) {
    const size_t eq = spec.find('=');
    if (eq == std::string::npos || eq == 0) return invalid_input("--input '", spec, "' must be NAME=FILE.npy");
    const std::string name = spec.substr(0, eq), file = spec.substr(eq + 1);
    LLMC_ASSIGN_OR_RETURN(Tensor t, read_npy(file, name));
    // A feed that does not fit is the .npy's fault, not the model's: name the file.
    const ValueInfo* info = nullptr;
    for (const auto& in : m.model->graph.inputs)
      if (in.name == name) info = &in;
    if (!info) return invalid_input("--input '", spec, "': ", m.path, " has no input named '", name, "'");
    rt::Value v = rt::Value::copy_of(t);
    LLMC_RETURN_IF_ERROR(m.session->check_feed(*info, v).with_context(file + " (for " + m.path + ")"));
    feeds[name] = std::move(v);
  }
  auto outputs = m.session->run(feeds);
  if (!outputs.is_ok()) return outputs.status().with_context(m.path);
  std::error_code ec;
  std::filesystem::create_directories(a.output_dir, ec);
  if (ec) return io_error(a.output_dir, ": cannot create directory: ", ec.message());
  // All or nothing: every output is written and flushed to its temporary before any replaces
  // its target, so a full disk halfway leaves the folder as it was.
  const auto& infos = m.session->outputs();
  std::vector<AtomicFile> files;
  files.reserve(infos.size());
  for (size_t i = 0; i < infos.size(); ++i) {
    LLMC_ASSIGN_OR_RETURN(auto f, AtomicFile::create(a.output_dir + "/" + file_safe(infos[i].name) + ".npy"));
    files.push_back(std::move(f));
    LLMC_RETURN_IF_ERROR(write_npy(files.back(), outputs.value()[i].to_tensor(infos[i].name)));
    LLMC_RETURN_IF_ERROR(files.back().finish());
  }
  for (size_t i = 0; i < infos.size(); ++i) {
    LLMC_RETURN_IF_ERROR(files[i].commit());
    std::printf("%s %s %s\n", files[i].path().c_str(), dtype_name(outputs.value()[i].dtype()).c_str(),
                shape_str(outputs.value()[i].shape()).c_str());
  }
  return Status::ok();
}

Status generate(const RunArgs& a, const LoadedModel& m) {
  if (a.tokens < 1) return invalid_input("--tokens must be at least 1");
  LLMC_ASSIGN_OR_RETURN(auto tok, model_tokenizer(*m.model, m.path, a.tokenizer));
  LLMC_ASSIGN_OR_RETURN(auto decoder, open_decoder(m));
  std::vector<int32_t> prompt = tok->encode(a.prompt, tok->adds_bos(), false);
  if (prompt.empty()) return invalid_input("--prompt: empty prompt and the model adds no BOS token");
  std::mt19937_64 rng(a.sampling.seed);
  const auto t0 = std::chrono::steady_clock::now();
  LLMC_ASSIGN_OR_RETURN(rt::Value logits, decoder->forward(prompt));
  const int64_t vocab = logits.dim(1);
  // Echo the prompt as llama2.c does, then stream the continuation.
  for (size_t i = 0; i < prompt.size(); ++i)
    std::fputs(tok->decode_piece(i ? prompt[i - 1] : -1, prompt[i]).c_str(), stdout);
  int32_t prev = prompt.back();
  int32_t next = rt::sample_token(logits.data<float>() + (logits.dim(0) - 1) * vocab, vocab, a.sampling, rng);
  int generated = 0;
  // A tokenizer smaller than the model's vocabulary cannot spell every id the model samples:
  // stop with an error naming both sizes rather than print a guess.
  const std::string tok_source = a.tokenizer.empty() ? m.path + " (its tokenizer)" : a.tokenizer;
  for (; generated < a.tokens; ++generated) {
    if (next == tok->bos_id() || next == tok->eos_id()) break;
    if (next < 0 || next >= tok->vocab_size())
      return invalid_input(tok_source, ": the model (vocabulary ", vocab, ") sampled token id ", next,
                           ", which the tokenizer (", tok->vocab_size(), " tokens) does not have");
    std::fputs(tok->decode_piece(prev, next).c_str(), stdout);
    std::fflush(stdout);
    if (generated + 1 == a.tokens) {
      ++generated;
      break;
    }
    LLMC_ASSIGN_OR_RETURN(rt::Value step, decoder->forward({next}));
    prev = next;
    next = rt::sample_token(step.data<float>(), vocab, a.sampling, rng);
  }
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("\n");
  std::fprintf(stderr, "%d tokens in %.3f s (%.1f tok/s, %d threads)\n", generated, s, generated / s,
               m.session->threads());
  return Status::ok();
}

// Generation from token ids, for models without a tokenizer (exports of Hugging Face modelling
// code): the continuation's ids on one line, space-separated; no end-of-text stop.
Status generate_ids(const RunArgs& a, const LoadedModel& m) {
  LLMC_ASSIGN_OR_RETURN(auto decoder, open_decoder(m));
  std::vector<int32_t> prompt;
  for (int64_t id : a.prompt_ids) {
    if (id < 0 || id > std::numeric_limits<int32_t>::max()) return invalid_input("--prompt-ids: token id ", id, " is out of range");
    prompt.push_back(static_cast<int32_t>(id));
  }
  std::mt19937_64 rng(a.sampling.seed);
  LLMC_ASSIGN_OR_RETURN(rt::Value logits, decoder->forward(prompt));
  const int64_t vocab = logits.dim(1);
  int32_t next = rt::sample_token(logits.data<float>() + (logits.dim(0) - 1) * vocab, vocab, a.sampling, rng);
  for (int generated = 1;; ++generated) {
    std::printf(generated > 1 ? " %d" : "%d", next);
    if (generated == a.tokens) break;
    LLMC_ASSIGN_OR_RETURN(rt::Value step, decoder->forward({next}));
    next = rt::sample_token(step.data<float>(), vocab, a.sampling, rng);
  }
  std::printf("\n");
  return Status::ok();
}

Status run_command(const RunArgs& a) {
  const int modes = !a.output_dir.empty() + !a.prompt.empty() + !a.prompt_ids.empty();
  if (modes != 1)
    return invalid_input("give one of --output-dir DIR [--input NAME=FILE.npy ...] (one inference), --prompt TEXT "
                         "or --prompt-ids ID,ID,... (generation)");
  if (!a.inputs.empty() && a.output_dir.empty()) return invalid_input("--input needs --output-dir");
  LLMC_ASSIGN_OR_RETURN(auto m, open_model(a.model, a.threads));
  if (!a.prompt_ids.empty()) return generate_ids(a, m);
  return a.prompt.empty() ? run_once(a, m) : generate(a, m);
}
}  // namespace

void add_run_command(CLI::App& app, int& exit_code) {
  auto a = std::make_shared<RunArgs>();
  CLI::App* cmd = app.add_subcommand("run", "Run a model once on .npy inputs, or generate text with the KV cache");
  cmd->footer(memory_limits_help());
  cmd->add_option("model", a->model, "ONNX model, llama2.c checkpoint or GGUF file")->required();
  cmd->add_option("--input", a->inputs, "NAME=FILE.npy (repeat for each graph input)");
  cmd->add_option("--output-dir", a->output_dir, "write each graph output as DIR/<name>.npy ('/', ':', '\\', '%' in names as %2F %3A %5C %25)");
  cmd->add_option("--prompt", a->prompt, "generate a continuation of this text");
  cmd->add_option("--prompt-ids", a->prompt_ids, "generate from these token ids (comma-separated); prints the ids generated")
      ->delimiter(',');
  cmd->add_option("--tokens", a->tokens, "number of tokens to generate")->capture_default_str()->check(CLI::Range(1, int{kMaxSequence}));
  cmd->add_option("--temperature", a->sampling.temperature, "0 = greedy")->capture_default_str();
  cmd->add_option("--top-k", a->sampling.top_k, "sample from the k most likely (0 = all)")->capture_default_str();
  cmd->add_option("--top-p", a->sampling.top_p, "nucleus sampling mass")->capture_default_str();
  cmd->add_option("--seed", a->sampling.seed, "sampling seed")->capture_default_str();
  cmd->add_option("--tokenizer", a->tokenizer, "tokenizer file (default: the one inside the model)");
  cmd->add_option("--threads", a->threads, "threads (0 = all cores)")->capture_default_str()->check(CLI::Range(0, rt::kMaxThreads));
  cmd->callback([a, &exit_code] { exit_code = report("run", run_command(*a)); });
}

}  // namespace llmc::cli
