"""A small KMS v2 plugin (`kubegate kms-plugin`): AES-GCM key encryption with local keys, for tests and for
clusters without a KMS."""
