"""Azure adapters: credentials, ARM (azure-mgmt-appcontainers), Key Vault; translation between
manifests and ARM bodies and normalisation of live state."""
