"""The admin API: ES256-signed short-lived tokens from registered keys; roles scoped to a tenant."""
