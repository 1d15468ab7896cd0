"""ARM answers a resource's `location` with the region's display name whatever form the request used:
"eastus" comes back "East US", "northcentralusstage" "North Central US (Stage)"
(test_containerapp_create_with_yaml, test_container_app_mount_azurefile_e2e recordings)."""

from __future__ import annotations

import re

DISPLAY_NAMES = [
    "East US", "East US 2", "Central US", "North Central US", "South Central US", "West Central US",
    "West US", "West US 2", "West US 3", "Canada Central", "Canada East", "Brazil South",
    "Brazil Southeast", "Mexico Central", "North Europe", "West Europe", "UK South", "UK West",
    "France Central", "France South", "Germany West Central", "Germany North", "Switzerland North",
    "Switzerland West", "Norway East", "Norway West", "Sweden Central", "Sweden South",
    "Poland Central", "Italy North", "Spain Central", "Israel Central", "Qatar Central", "UAE North",
    "UAE Central", "South Africa North", "South Africa West", "Central India", "South India",
    "West India", "Japan East", "Japan West", "Korea Central", "Korea South", "East Asia",
    "Southeast Asia", "Australia East", "Australia Southeast", "Australia Central",
    "Australia Central 2", "New Zealand North", "China East", "China East 2", "China East 3",
    "China North", "China North 2", "China North 3", "Central US EUAP", "East US 2 EUAP",
    "North Central US (Stage)", "East US 2 (Stage)", "West US (Stage)",
]  # fmt: skip


def _key(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


_BY_KEY = {_key(n): n for n in DISPLAY_NAMES}


def display_name(location: str) -> str:
    """The display name of a known region; an unknown one as given."""
    return _BY_KEY.get(_key(location), location)
