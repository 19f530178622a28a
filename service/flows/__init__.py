"""The service layer: each flow runs one use case in one transaction, calling the pure
domain rules and the SQL of each aggregate. Handlers call flows; flows know no HTTP."""
