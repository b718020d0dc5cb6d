"""Wheels for the GPU machine: what `bench.gpu` needs there and its image lacks.

The device machine (see bench/README.md, gpu) has Python 3.12 with torch, pandas,
pyarrow, numpy, rich, click, PyYAML, matplotlib and scikit-learn, reaches no package
registry, and takes at most 64 MiB of carried files. Ray's wheel alone is 79 MB, so this
downloads the wheels for Python 3.12 on x86-64 into `.whl/` (ignored by git) and repacks
Ray's without the parts a sweep never imports (the Java jars, RLlib, Serve, Ray LLM and
the dashboard's web client), then checks the total fits.

    python -m bench.device_wheels            # here, with the dev install; then
    # device `run`, carry [".whl"]:  bash bench/device_gpu.sh
"""

from __future__ import annotations

import argparse
import importlib.metadata
import subprocess
import sys
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CARRY_LIMIT = 64 * 2**20
# the image's own packages cover the rest (KINDS.md lists them); ray's core needs
# jsonschema, the orchestrator pydantic
MISSING_THERE = ["ray", "pydantic", "pydantic-core", "annotated-types", "typing-inspection",
                 "typing-extensions", "jsonschema", "jsonschema-specifications",
                 "referencing", "rpds-py"]
RAY_PARTS_UNUSED = ("ray/jars/", "ray/rllib/", "ray/serve/", "ray/llm/",
                    "ray/dashboard/client/")
PLATFORMS = ["manylinux_2_28_x86_64", "manylinux_2_27_x86_64", "manylinux_2_17_x86_64",
             "manylinux2014_x86_64", "manylinux1_x86_64"]


def download(folder: Path, python_version: str) -> None:
    """The versions installed here, so the device runs what the suite tested."""
    pins = [f"{name}=={importlib.metadata.version(name)}" for name in MISSING_THERE]
    platform_args = [arg for p in PLATFORMS for arg in ("--platform", p)]
    subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
                    "--only-binary=:all:", "--python-version", python_version,
                    "--implementation", "cp", *platform_args, "-d", str(folder), *pins],
                   check=True)


def without(wheel: Path, prefixes: tuple[str, ...]) -> None:
    """Rewrite `wheel` in place without the files under `prefixes` (RECORD follows)."""
    repacked = wheel.with_suffix(".tmp")
    with zipfile.ZipFile(wheel) as src, zipfile.ZipFile(repacked, "w",
                                                        zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            if info.filename.startswith(prefixes):
                continue
            data = src.read(info)
            if info.filename.endswith(".dist-info/RECORD"):
                lines = data.decode().splitlines(keepends=True)
                data = "".join(x for x in lines if not x.startswith(prefixes)).encode()
            dst.writestr(info, data)
    repacked.replace(wheel)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--to", type=Path, default=REPO / ".whl")
    parser.add_argument("--python-version", default="3.12", help="the device's Python")
    args = parser.parse_args()
    args.to.mkdir(exist_ok=True)
    download(args.to, args.python_version)
    for ray_wheel in args.to.glob("ray-*.whl"):
        without(ray_wheel, RAY_PARTS_UNUSED)
    wheels = sorted(args.to.glob("*.whl"))
    total = sum(w.stat().st_size for w in wheels)
    for w in wheels:
        print(f"{w.stat().st_size / 2**20:7.1f} MiB  {w.name}")
    print(f"{total / 2**20:7.1f} MiB in {args.to} (the device carries at most 64 MiB in all)")
    if total > CARRY_LIMIT:
        sys.exit("too large to carry")


if __name__ == "__main__":
    main()
