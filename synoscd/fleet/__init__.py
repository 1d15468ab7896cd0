"""One SynosCD for a fleet of environments (docs/fleet.md): targets (`targets.py`, pure), the
catalog of declared targets (`catalog.py`), the fan-out of passes over the Storage Queue
(`fanout.py`) and the ARM write budget shared per subscription (`writes.py`)."""
