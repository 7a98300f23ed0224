"""Deployment tooling for Custody's S3 store: provisioning and a local SeaweedFS for development."""
