#!/usr/bin/env bash
# Build the two real test hosts (ComfyUI 0.3.64, AUTOMATIC1111 1.10.1) from the source tarballs in
# shared/hosts, following the recipe in shared/hosts/README.md: each host gets its own venv layered over
# $PY (--system-site-packages plus a .pth line), so torch is installed once and pinned by a constraints file.
#
# usage: tools/setup_hosts.sh HOSTS_SRC HOSTS_DIR
#   HOSTS_SRC  folder holding ComfyUI-0.3.64.tar.gz and stable-diffusion-webui-1.10.1.tar.gz
#   HOSTS_DIR  where to build (outside the repository); reused as is when a previous build finished
# $PY (default: python) is the interpreter that already has torch==2.14.1 and torchvision==0.29.1.
set -euo pipefail

HOSTS_SRC=$(cd "${1:?usage: setup_hosts.sh HOSTS_SRC HOSTS_DIR}" && pwd)
HOSTS=${2:?usage: setup_hosts.sh HOSTS_SRC HOSTS_DIR}
PY=${PY:-python}
DONE_MARK=.setup-complete   # written last: a half-built folder is rebuilt, a finished one reused

if [[ -f "$HOSTS/$DONE_MARK" ]]; then
  echo "setup_hosts: reusing the hosts already built in $HOSTS"
  exit 0
fi
if [[ -n "$(ls -A "$HOSTS" 2>/dev/null)" && ! -f "$HOSTS/torch-pins.txt" ]]; then
  echo "setup_hosts: $HOSTS is not empty and holds no unfinished host build; pick an empty folder" >&2
  exit 1
fi
rm -rf "$HOSTS"  # an unfinished build of ours (or nothing): start again
mkdir -p "$HOSTS"
cd "$HOSTS"

mkvenv() {  # a venv that sees $PY's packages (torch); its own installs shadow them
  "$PY" -m venv --system-site-packages "$1"
  "$PY" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])' \
    > "$("$1/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/_host_base.pth"
}

printf 'torch==2.14.1\ntorchvision==0.29.1\n' > torch-pins.txt
printf 'torch==2.14.1\ntorchvision==0.29.1\nsetuptools==80.10.2\n' > a1111-pins.txt

# ComfyUI (torchaudio has no build for torch 2.14.1: skipped, only the audio nodes are lost)
tar xzf "$HOSTS_SRC/ComfyUI-0.3.64.tar.gz"
mkvenv comfy-venv
grep -vE '^(torch|torchvision|torchaudio)[[:space:]]*$' ComfyUI/requirements.txt > comfy-req.txt
comfy-venv/bin/python -m pip install -q -c torch-pins.txt -r comfy-req.txt requests  # requests: used, not listed

# AUTOMATIC1111 (setuptools must stay < 81: CLIP, lightning and A1111 import pkg_resources)
tar xzf "$HOSTS_SRC/stable-diffusion-webui-1.10.1.tar.gz"
mkvenv a1111-venv
a1111-venv/bin/python -m pip install -q -c a1111-pins.txt setuptools==80.10.2
grep -vE '^(torch|setuptools)([^A-Za-z0-9_.-]|$)' stable-diffusion-webui/requirements_versions.txt > a1111-req.txt
a1111-venv/bin/python -m pip install -q -c a1111-pins.txt -r a1111-req.txt
a1111-venv/bin/python -m pip install -q -c a1111-pins.txt --no-build-isolation ./CLIP

# torch must come from $PY, not from a host venv
for v in comfy-venv a1111-venv; do
  $v/bin/python -c "import sys, torch; assert torch.__version__.startswith('2.14.1'); \
assert not torch.__file__.startswith(sys.prefix), torch.__file__"
done
touch "$DONE_MARK"
echo "setup_hosts: both hosts built in $HOSTS"
