"""How many CPU threads a job should compute with: the CPUs it may really use.

``explicit`` (``generator.options.threads``) wins; otherwise the CPUs of this process's
affinity mask (``os.sched_getaffinity``: what ``taskset``, cgroups cpusets and SLURM's
binding leave it), capped by ``SLURM_CPUS_PER_TASK`` inside a SLURM job.

On a busy machine (other jobs on the same cores) OpenMP threads that wait for each other
by spinning burn the CPU time the others need: measured on 2 shared cores at a load of
about 10, SmolLM2 decoding ran at 4.9 tokens/s with 2 spinning threads and 14.6 with
``OMP_WAIT_POLICY=PASSIVE`` (docs/real-llms.md, "Long runs"). Every command therefore sets
``OMP_WAIT_POLICY=PASSIVE`` before torch loads (:func:`passive_omp_wait`), unless the
user set it.
"""

from __future__ import annotations

import logging
import os
import sys

from pipeline.core.errors import ConfigError

log = logging.getLogger(__name__)


def available_cpus(explicit: int | None = None, environ: dict[str, str] | None = None) -> int:
    """The thread count for this job (at least 1)."""
    if explicit is not None:
        if int(explicit) < 1:
            raise ConfigError(f"generator.options.threads={explicit}: use a positive number "
                              "or null (the CPUs this job may use)")
        return int(explicit)
    env = os.environ if environ is None else environ
    try:
        n = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        n = os.cpu_count() or 1
    slurm = env.get("SLURM_CPUS_PER_TASK", "")
    if slurm.isdigit() and int(slurm) > 0:
        n = min(n, int(slurm))
    return max(n, 1)


def torch_threads(explicit: int | None = None) -> int:
    """Set torch's intra-op thread count to :func:`available_cpus` (once per process, by
    the engine that computes); the count set."""
    import torch

    n = available_cpus(explicit)
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)
    return n


def passive_omp_wait() -> None:
    """Make OpenMP threads sleep instead of spin while they wait (unless the environment
    says otherwise); only effective before torch is imported."""
    if "torch" in sys.modules:
        log.debug("torch already imported: OMP_WAIT_POLICY left as it is")
        return
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
