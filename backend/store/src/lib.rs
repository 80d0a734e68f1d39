//! Persistence of Syncline: one interface over SQLite and PostgreSQL.
