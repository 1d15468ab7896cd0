"""Service releases: ACA changed what a GET shows while keeping the api-version, and the recordings,
made between November 2023 and October 2024, show when. The stand-in behaves as the service does
now unless told a date (`PUT /_admin/config {"serviceDate": "2024-04-22"}`), which the conformance
replay sets to each recording's date so that the one stand-in answers recordings of every age.

Each change: the first date the stand-in applies it, chosen between the last recording without it
and the first with it (dates from the recordings' systemData.createdAt)."""

from __future__ import annotations

import re

# maxInactiveRevisions is 100 on create (null before): last without test_containerapp_up_source_with_
# bullseye_buildpack_e2e 2024-02-05, first with test_containerapp_up_source_with_default_registry_image
# 2024-03-05.
MAX_INACTIVE_REVISIONS_DEFAULT = "2024-03-01"
# properties.delegatedIdentities: [] on apps: last without 2024-03-05 (same), first with
# test_containerapp_anonymous_registry 2024-04-22.
DELEGATED_IDENTITIES = "2024-04-01"
# configuration.identitySettings: [] at 2024-02-02-preview: last without test_containerapp_up_mooncake
# 2024-04-25, first with test_container_acr 2024-05-06.
IDENTITY_SETTINGS = "2024-05-01"
# A job container's ephemeralStorage: sized by cpu like an app's (test_containerappjob_preview_
# environment_type 2024-02-04), then "" on create and left out after an update
# (test_containerapp_eventjob_defaults_e2e 2024-04-23 ... test_containerappjob_identity_registry_
# env_msi 2024-09-11), then sized by cpu again (test_containerapp_job_custom_executionstest_e2e
# 2024-09-19).
# containers[].imageType at 2024-02-02-preview: last without test_containerappjob_preview_environment_
# type 2024-02-04, first with test_containerapp_env_certificate_e2e 2024-04-22.
IMAGE_TYPE = "2024-04-01"
# properties.patchingMode at 2024-02-02-preview reached the canary regions first: "North Central US
# (Stage)" and "Central US EUAP" show it on 2024-04-22/23 (test_containerapp_compose_*,
# test_containerapp_patch_list_*), East US and North Europe not yet on those days
# (test_containerapp_env_certificate_e2e, test_containerapp_create_enable_dedicated_gpu), everywhere
# by 2024-05-06 (test_containerapp_identity_user, East US).
PATCHING_MODE_CANARY = "2024-04-01"
PATCHING_MODE = "2024-05-01"
JOB_EPHEMERAL_BLANK_FROM = "2024-03-01"
JOB_EPHEMERAL_BLANK_UNTIL = "2024-09-15"


def check(date: str | None) -> str | None:
    if date is not None and not re.fullmatch(r"\d{4}-\d{2}-\d{2}", date):
        raise ValueError(f"serviceDate must be YYYY-MM-DD, not {date!r}")
    return date


def since(date: str | None, change: str) -> bool:
    """Whether the service as of `date` (None: now) has `change`."""
    return date is None or date >= change


def patching_mode(date: str | None, location: str) -> bool:
    canary = "(stage)" in location.lower() or "euap" in location.lower()
    return since(date, PATCHING_MODE_CANARY if canary else PATCHING_MODE)


def job_ephemeral_blank(date: str | None) -> bool:
    return date is not None and JOB_EPHEMERAL_BLANK_FROM <= date < JOB_EPHEMERAL_BLANK_UNTIL
