"""The `synos` command."""
