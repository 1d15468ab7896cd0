"""What the Azure Functions bindings call. Kept light on import: the SDKs load only when a pass runs."""
