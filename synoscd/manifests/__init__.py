"""Manifests: the App, Job and Project schema, bounded YAML loading with file:line, validation and rendering.

Pure (no environment, no network) except `read_tree`, which reads a local folder.
"""

from .desired import DesiredSet, Resource, load_desired, validation_report
from .errors import ManifestError, format_path
from .schema import API_VERSION, App, Job, Manifest, Project, json_schema
from .tree import read_tree
from .yaml_loader import DEFAULT_MAX_FILE_BYTES, LoadedDocument, load_documents

__all__ = [
    "API_VERSION",
    "DEFAULT_MAX_FILE_BYTES",
    "App",
    "DesiredSet",
    "Job",
    "LoadedDocument",
    "Manifest",
    "ManifestError",
    "Project",
    "Resource",
    "format_path",
    "json_schema",
    "load_desired",
    "load_documents",
    "read_tree",
    "validation_report",
]
