"""The reconcile engine: plan, diff and health are pure functions over plain data; execute does the
I/O; reconcile tells the story of one pass."""
