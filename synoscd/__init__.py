"""SynosCD: GitOps for Azure Container Apps, run serverless on Azure Functions."""

__version__ = "0.1.0"
