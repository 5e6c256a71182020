//! Productive's actions as procedures (`CALL ArchiveProject(42)`) and as
//! functions usable per row (`SELECT archive_project(id) FROM projects`).
