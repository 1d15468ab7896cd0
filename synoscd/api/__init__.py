"""The dashboard's read-only JSON API (/api/v1): the shapes `synos ... -o json` prints."""
