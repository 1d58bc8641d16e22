"""One GPU per run under make -j N: python -m extensions.multigpu.claim_gpu COMMAND [ARGS ...]

Takes the first GPU that no other run holds (a lock file per GPU, parallel.claim_gpu), waits while
all are taken, makes it the only GPU the command sees (CUDA_VISIBLE_DEVICES) and runs the command,
holding the lock until it ends. The Makefile puts it in front of train.py when a machine has more
than one GPU, so `make -j 4 cifar10` trains four runs at once, one per GPU.
"""

import os
import subprocess
import sys

from . import parallel


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    ids = parallel.gpu_ids()
    if len(ids) < 2:  # nothing to share out
        return subprocess.call(argv)
    index = parallel.claim_gpu(ids)
    visible = os.environ.get('CUDA_VISIBLE_DEVICES')
    names = visible.split(',') if visible else [str(i) for i in range(len(ids))]
    return subprocess.call(argv, env=os.environ | {'CUDA_VISIBLE_DEVICES': names[index]})


if __name__ == '__main__':
    sys.exit(main())
