# Sourced by the benchmark scripts after their own option parsing (they set `root`, `bench_name`
# and `eval_tokens`): installs and builds, then sets bin, py, data, models, text (the TinyStories
# prefix), work (build/$bench_name, created) and two helpers:
#   ppl MODEL     perplexity over the first $eval_tokens tokens of the text (llmcompress eval)
#   secs CMD...   wall seconds of a command, its output dropped
"$root/scripts/setup.sh"
"$root/scripts/build.sh" >/dev/null
bin="$root/build/llmcompress"
py="$root/.venv/bin/python"
data=${LLMC_DATA:-$(cd "$root/../shared/data" && pwd)}
models=${LLMC_MODELS:-${XDG_CACHE_HOME:-$HOME/.cache}/llmcompress/models}
text="$data/corpora/tinystories_val_prefix.txt"
work="$root/build/$bench_name"
mkdir -p "$work"
ppl() { "$bin" eval "$1" --text "$text" --limit "$eval_tokens" | awk '/^perplexity/ {print $2}'; }
secs() { local t0 t1; t0=$(date +%s.%N); "$@" >/dev/null 2>&1; t1=$(date +%s.%N); echo "$t1 - $t0" | bc; }
