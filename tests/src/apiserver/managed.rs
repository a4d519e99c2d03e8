//! Server-side apply: field ownership per manager (metadata.managedFields), apply and conflicts.
