//! Structural-schema behaviour of custom resources: defaulting, pruning and validation.
