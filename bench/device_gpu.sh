#!/usr/bin/env bash
# bench.gpu_oom, then bench.gpu, on the GPU machine, in one device `run` (carry [".whl"],
# timeout_s 540). Prepare here first: `python -m bench.device_wheels` (Ray and the few
# packages the machine's image lacks, as wheels for its Python). Everything printed also
# goes to $OUT/gpu.log, so a run cut short still brings back what it finished.
set -uo pipefail
OUT=${OUT:-bench/results}
mkdir -p "$OUT"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site PYTHONUNBUFFERED=1
{
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
    python3 -c "import torch, ray, pydantic; print('torch', torch.__version__, 'cuda',
torch.cuda.is_available(), 'ray', ray.__version__, 'pydantic', pydantic.VERSION)"
    # a batch that does not fit in a trial's 2 GiB of the GPU: halved until it does
    # (a real torch.cuda.OutOfMemoryError); about a minute, most of it Ray's start
    timeout 120 python3 -m bench.gpu_oom --out "$OUT"
    # 1, 2, 4 and 8 trials per GPU; ~2 minutes on an H100 by the sizing in bench/gpu.py
    timeout 360 python3 -m bench.gpu --out "$OUT" "$@"
} 2>&1 | tee "$OUT/gpu.log"
