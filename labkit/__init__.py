"""labkit: the helper package of the course on pre-training and fine-tuning in NLP.

Each module is one idea, readable top to bottom:

    device    pick cuda/mps/cpu, precision, seeds, environment report
    memory    let freed memory be reused: large CPU tensors without page faults
    progress  progress bars and live curves that stay quiet when headless
    train     fit() and evaluate(): the one training loop every notebook uses
    distributed  the collective pieces fit uses when started by torchrun / accelerate launch
    data      named datasets: bundled offline files and hub sources
    models    named pre-trained checkpoints: offline folders and hub ids
    metrics   accuracy, BLEU, perplexity
    ledger    the results ledger shared by all notebooks
    cli       `labkit run` and `labkit doctor`
"""

__version__ = "0.1.0"

from .memory import reuse_freed_memory as _reuse_freed_memory

_reuse_freed_memory()      # before any tensor is made; LABKIT_MALLOC=system leaves glibc as it is
