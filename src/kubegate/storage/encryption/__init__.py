"""Encryption at rest: EncryptionConfiguration, the providers, and the store wrapper applying them."""
