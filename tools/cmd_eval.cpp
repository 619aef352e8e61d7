// llmcompress eval MODEL --text FILE | --tokens ids.npy [--ctx N --stride S --limit N]
//                  [--compare OTHER]  perplexity, and agreement of two models on the same inputs.
#include <cstdio>

#include "runtime/eval.h"
#include "runtime/session.h"
#include "tools/recipe.h"
#include "tools/cli_common.h"
#include "tools/commands.h"
#include "tools/model_session.h"

namespace llmc::cli {

namespace {
struct EvalArgs {
  std::string model, compare, text, tokens, tokenizer;
  int64_t ctx = 0, stride = 0, limit = 0;
  int threads = 0;
  bool json = false;
};

void ppl_json(Json& j, const std::string& key, const rt::PerplexityResult& p) {
  j.key(key).begin_object().field("perplexity", p.perplexity()).field("nll_sum", p.nll_sum)
      .field("scored_tokens", p.scored).field("windows", p.windows).field("tokens", p.tokens).end_object();
}

Status run_eval(const EvalArgs& a) {
  LLMC_ASSIGN_OR_RETURN(auto m, open_model(a.model, a.threads));
  LLMC_ASSIGN_OR_RETURN(auto tokens, load_tokens(m, a.text, a.tokens, a.tokenizer));
  rt::WindowOptions w;
  w.ctx = a.ctx > 0 ? a.ctx : max_sequence_length(*m.model);
  if (w.ctx <= 0) return invalid_input("the model does not state its maximum sequence length: pass --ctx");
  w.stride = a.stride;
  w.limit = a.limit;
  LLMC_ASSIGN_OR_RETURN(auto base, open_decoder(m));
  Json j;
  j.begin_object().field("model", a.model).field("ctx", w.ctx).field("stride", w.stride > 0 ? w.stride : w.ctx);
  if (a.compare.empty()) {
    auto ran = rt::perplexity(*base, tokens, w);
    if (!ran.is_ok()) return ran.status().with_context(a.model);
    const auto& r = ran.value();
    ppl_json(j, "result", r);
    if (!a.json)
      std::printf("perplexity %.4f over %lld scored tokens (%lld windows of %lld, %lld tokens)\n", r.perplexity(),
                  (long long)r.scored, (long long)r.windows, (long long)w.ctx, (long long)r.tokens);
  } else {
    LLMC_ASSIGN_OR_RETURN(auto other_model, open_model(a.compare, a.threads));
    LLMC_ASSIGN_OR_RETURN(auto other, open_decoder(other_model));
    auto ran = rt::compare_models(*base, *other, tokens, w);
    if (!ran.is_ok()) return ran.status().with_context(a.model + " vs " + a.compare);
    const auto& r = ran.value();
    j.field("compare", a.compare);
    ppl_json(j, "base", r.base_ppl);
    ppl_json(j, "other", r.other_ppl);
    j.field("positions", r.positions).field("top1_agreement", r.top1_agreement).field("mean_kl", r.mean_kl)
        .field("max_abs_logit_error", r.max_abs_logit_error).field("mean_abs_logit_error", r.mean_abs_logit_error);
    if (!a.json)
      std::printf("base perplexity %.4f, other %.4f over %lld positions\n"
                  "top-1 agreement %.4f, mean KL %.6g nats, max |logit error| %.6g, mean %.6g\n",
                  r.base_ppl.perplexity(), r.other_ppl.perplexity(), (long long)r.positions, r.top1_agreement,
                  r.mean_kl, r.max_abs_logit_error, r.mean_abs_logit_error);
  }
  j.end_object();
  if (a.json) std::printf("%s\n", j.str().c_str());
  return Status::ok();
}
}  // namespace

void add_eval_command(CLI::App& app, int& exit_code) {
  auto a = std::make_shared<EvalArgs>();
  CLI::App* cmd = app.add_subcommand("eval", "Perplexity of a causal LM; agreement of two models");
  cmd->footer(memory_limits_help());
  cmd->add_option("model", a->model, "ONNX model, llama2.c checkpoint or GGUF file")->required();
  cmd->add_option("--text", a->text, "text file, tokenized line by line with BOS (as `tokenize --file`)");
  cmd->add_option("--tokens", a->tokens, "1-D int32/int64 .npy token file");
  cmd->add_option("--tokenizer", a->tokenizer, "tokenizer file (default: the one inside the model)");
  cmd->add_option("--ctx", a->ctx, "window length (default: the model's maximum sequence length)")
      ->check(CLI::Range(int64_t{0}, kMaxSequence));
  cmd->add_option("--stride", a->stride, "window step for overlapping windows (default: --ctx)")->check(CLI::Range(int64_t{0}, kMaxSequence));
  cmd->add_option("--limit", a->limit, "score only the first N tokens")->check(CLI::NonNegativeNumber);
  cmd->add_option("--compare", a->compare, "second model: top-1 agreement, KL, logit error vs MODEL");
  cmd->add_option("--threads", a->threads, "threads (0 = all cores)")->check(CLI::Range(0, rt::kMaxThreads));
  cmd->add_flag("--json", a->json, "print JSON");
  cmd->callback([a, &exit_code] { exit_code = report("eval", run_eval(*a)); });
}

}  // namespace llmc::cli
