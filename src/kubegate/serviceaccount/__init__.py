"""Service-account tokens (upstream pkg/serviceaccount): keys, claims, the JWT authenticators for
legacy Secret-based and bound TokenRequest tokens, and issuer discovery documents."""
