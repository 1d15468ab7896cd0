"""Where desired state comes from: a GitHub App (PyGithub) or a local folder / git repository.
Each yields a `Snapshot` and knows which files changed since a revision."""
