"""One process of tests/test_multiprocess.py (also the launch recipe of docs/lm-heads.md).

Run as ``python tests/multiprocess_worker.py PROCESS_ID NUM_PROCESSES PORT OUT.npz`` with
``XLA_FLAGS=--xla_force_host_platform_device_count=4`` (4 CPU devices per process). The processes
join through ``jax.distributed.initialize`` (CPU collectives over gloo), build one global mesh
("data", "vocab") of all their devices, and run the vocab-parallel fused log-probabilities with
a data-parallel ``mean_parts`` reduction; process 0 writes the results to OUT.npz.
"""

from __future__ import annotations

import sys

import jax

jax.config.update("jax_enable_x64", True)
jax.config.update("jax_cpu_collectives_implementation", "gloo")


def main(process_id: int, num_processes: int, port: int, out: str) -> None:
    jax.distributed.initialize(coordinator_address=f"127.0.0.1:{port}",
                               num_processes=num_processes, process_id=process_id)
    import numpy as np
    from jax.experimental import multihost_utils
    from jax.sharding import Mesh, NamedSharding
    from jax.sharding import PartitionSpec as P

    import jaxloss
    from jaxloss.fused import vocab_parallel_linear_log_probs
    from tests.multiprocess_data import IGNORE, data

    x, w, b, y, c = data()
    devices = np.array(jax.devices()).reshape(num_processes, -1)  # one data shard per process
    mesh = Mesh(devices, ("data", "vocab"))

    def put(a, spec):
        sharding = NamedSharding(mesh, spec)
        return jax.make_array_from_callback(a.shape, sharding, lambda idx: a[idx])

    def local(x, w, b, y, c):
        lp, h = vocab_parallel_linear_log_probs(x, w, y, axis_name="vocab", bias=b,
                                                temperature=1.5, ignore_index=IGNORE,
                                                block_size=4, return_entropy=True)
        kept = y != IGNORE
        nll = jaxloss.mean_parts(-lp, weights=c, where=kept)
        ent = jaxloss.mean_parts(h, where=kept)
        return jax.lax.psum((nll, ent), "data"), lp, h

    f = jax.shard_map(local, mesh=mesh,
                      in_specs=(P("data"), P(None, "vocab"), P("vocab"), P("data"), P("data")),
                      out_specs=(P(), P("data"), P("data")))

    def objective(x, w, b, y, c):
        (nll, ent), lp, h = f(x, w, b, y, c)
        return nll.value() + 0.1 * ent.value(), (nll.value(), ent.value(), lp, h)

    args = (put(x, P("data")), put(w, P(None, "vocab")), put(b, P("vocab")), put(y, P("data")),
            put(c, P("data")))
    (total, (nll, ent, lp, h)), grads = jax.jit(
        jax.value_and_grad(objective, (0, 1, 2), has_aux=True))(*args)
    gathered = multihost_utils.process_allgather(
        {"lp": lp, "h": h, "dx": grads[0], "dw": grads[1], "db": grads[2]}, tiled=True)
    if process_id == 0:
        np.savez(out, total=np.asarray(total), nll=np.asarray(nll), ent=np.asarray(ent),
                 devices=jax.device_count(), processes=jax.process_count(),
                 **{k: np.asarray(v) for k, v in gathered.items()})
    jax.distributed.shutdown()


if __name__ == "__main__":
    main(int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4])
