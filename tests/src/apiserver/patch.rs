//! JSON merge patch, JSON patch and strategic merge patch of stored objects.
