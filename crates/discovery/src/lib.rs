//! Service discovery: the Discoverer trait, the manager and one module per provider.
