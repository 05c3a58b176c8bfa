"""Resources (keys): envelope encryption under a KEK, versions, policy bindings."""
