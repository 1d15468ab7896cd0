"""Pull-request previews: what merging a pull request into the followed branch would do to the live
environment, planned as a pass plans (synoscd/engine/plan.py, the runtime settings in force) and
reported as a GitHub check run named `SynosCD preview`. Nothing about a pull request writes to ARM
or to the sync status; a preview never takes the lease.

- events.py   which webhook deliveries ask for a preview (pure)
- plan.py     plan a snapshot or any ref against live (`synos diff --ref`)
- report.py   the check run's conclusion, title, Markdown summary and annotations (pure)
- run.py      a queued preview from start to check run; stale marking; closed pull requests

Each pull request's bookkeeping row (its latest head, check run, base) is synoscd/state/previews.py.
"""
