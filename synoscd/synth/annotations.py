"""Eno's annotations under SynosCD's prefix, and the names the protocol puts on items. Pure."""

from __future__ import annotations

PREFIX = "synoscd.io/"
INPUT_KEY = "synoscd.io/input-key"  # on each input item: which binding it came from
REVISION = "synoscd.io/revision"  # on input items: synthesis waits until all carry the same value
IGNORE_SIDE_EFFECTS = "synoscd.io/ignore-side-effects"  # on a Composition: only its spec re-synthesises
COMPOSITION_LABEL = "synoscd.io/composition"  # on every output item: the composition that made it
COMPOSITION_TAG = "synoscd-composition"  # on every Azure resource a composition produced
ANNOTATIONS = (INPUT_KEY, REVISION)
