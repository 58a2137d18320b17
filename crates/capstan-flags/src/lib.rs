//! Capstan's flag engine. See ARCHITECTURE.md.
