"""ARM `Microsoft.App` stand-in: container apps (with revisions), jobs (with executions), managed
environments (read), long-running operations and listSecrets, answering like live Azure as recorded
in tests/fixtures/aca-recordings (replayed by tests/integration/test_arm_conformance.py; the figure
and the remaining differences are in docs/arm-conformance.md).

What a GET shows is ACA's, not the request's: server defaults, the server's enum casing, `null` for
every property the api-version knows and the request left unset, secret values left out, registries
and scale rules reshaped, `identity: {type: None}`; each GET is rendered for the api-version asked
(shapes.py: request -> stored body; versions.py: stored body -> api-version). PUT replaces the whole
body, PATCH is a JSON merge patch of it; both answer 201/202 with a long-running operation. A new
revision only when the template changes; 409 while an operation runs; 400 on invalid cpu/memory
totals. Shapes beyond the recordings follow tests/fixtures/aca-examples/2026-07-01.

ARM-specific admin API (besides the base's reset/calls/faults/latency):
  PUT  /_admin/config           {"provisioningDelay": s, "executionDuration": s, "pageSize": n}
  POST /_admin/apps             {"name", "resourceGroup"?, "envelope": <PUT body>}: seed through the
                                normal rules, settled
  POST /_admin/jobs             same for jobs
  POST /_admin/raw/apps         {"name", "body": <a GET body as recorded>, "resourceGroup"?,
                                "environment"?}: store the body verbatim as the app's GET answer,
                                with only its id, name, subscription, resource group and environment
                                ids rewritten to the stand-in's; it then lists, GETs, PATCHes and PUTs
                                like any other app (a write applies the normal rules to it)
  POST /_admin/raw/jobs         same for jobs
  PATCH /_admin/apps/{name}     JSON merge patch of the stored app (drift made out of band)
  PATCH /_admin/jobs/{name}     same for jobs
  POST /_admin/crashing-images  {"image", "crashing": true}: revisions of it fail, never become ready
  POST /_admin/failing-jobs     {"job"?, "image"?}: executions of it end Failed
  POST /_admin/images           {"image", "command": [...], "env"?, "cwd"?}: executions of that image
                                run the command locally (images.py); GET lists them
  POST /_admin/lro-failures     {"method", "path" (regex), "count", "code", "message"}: the next
                                matching long-running operations end Failed
  POST /_admin/environments     {"name", "resourceGroup"?, "subscription"?, "kind"?: managedEnvironments |
                                connectedEnvironments}; a new subscription is served from then on
  POST /_admin/resource-groups  {"name"}: the group exists (requests scoped to a group that has no
                                environment, resource or declaration answer 404 ResourceGroupNotFound)
  Several subscriptions: every ARM path names its own; seeds and drift take "subscription"? (default:
  the stand-in's own), and keys, ids, listings and operation URLs are per subscription.
  GET  /_admin/state            everything, for debugging
"""

from emulators.arm.emulator import ArmEmulator
from emulators.arm.model import API_VERSION, merge_patch

__all__ = ["API_VERSION", "ArmEmulator", "merge_patch"]
