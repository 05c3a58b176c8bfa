"""Check functions: one platform rule applied to claims, each returning CheckResults."""
