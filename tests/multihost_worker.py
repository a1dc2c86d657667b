"""One process of a two-process CPU training run (see test_multihost.py).

    python tests/multihost_worker.py PORT PROCESS_ID DATA_DIR WORKDIR STEPS
"""

import json
import os
import sys

os.environ['XLA_FLAGS'] = '--xla_force_host_platform_device_count=2'
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax  # noqa: E402

port, process_id, data_dir, workdir, steps = sys.argv[1:6]
jax.config.update('jax_cpu_collectives_implementation', 'gloo')
jax.distributed.initialize(f'127.0.0.1:{port}', num_processes=2, process_id=int(process_id))

from configs import test as test_config  # noqa: E402
from unet_flax import train  # noqa: E402

config = test_config.get_config()
config.dataset.data_dir = data_dir
config.num_train_steps = int(steps)
config.eval_every_steps = config.checkpoint_every_steps = 2
result = train.train_and_evaluate(config, workdir)
print('RESULT ' + json.dumps({'process': jax.process_index(), 'devices': jax.device_count(), **result}))
