"""Pure domain rules: no I/O, no HTTP, no SQL. Tested in microseconds."""
