"""How many CPU threads a job should compute with: the CPUs it may really use.

``explicit`` (``generator.options.threads``) wins; otherwise the CPUs of this process's
affinity mask (``os.sched_getaffinity``: what ``taskset``, cgroups cpusets and SLURM's
binding leave it), capped by ``SLURM_CPUS_PER_TASK`` inside a SLURM job. More threads than
CPUs makes torch's threads wait on each other when the machine is busy.
"""

from __future__ import annotations

import logging
import os

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
