"""Synthesizers: KRM functions that generate Apps and Jobs from a Composition's inputs.

protocol.py (the ResourceList in and out, pure), inputs.py (bindings -> input items, revisions),
validate.py (manifest rules), executors.py (exec: a subprocess; job: an ACA Job execution with the
ResourceList in a blob), cache.py (keys and what changed), rollout.py (deferred, health-gated steps,
pure), pipeline.py (the synthesize step of a pass), state.py (compositions and the rollout in Table
Storage)."""
