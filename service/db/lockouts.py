"""The SQL templates for counting failed sign-ins on a row and locking it, clearing them
and forgetting them: holders' cards, unknown card numbers, staff accounts and unknown
emails share them."""

from __future__ import annotations


def count_failure_sql(table: str, key: str, counter: str) -> str:
    """Count one failure on the row of `table` whose `key` = $1, in the columns
    `{counter}_count` and `{counter}_window_started_at`. $2 is the window, $3 the lock
    duration, $4 the failures that lock; answers the count and locked_until."""
    return f"""
        WITH counted AS (
            SELECT CASE
                     WHEN {counter}_window_started_at IS NULL
                       OR {counter}_window_started_at <= now() - $2::interval THEN 1
                     ELSE {counter}_count + 1
                   END AS attempts,
                   CASE
                     WHEN {counter}_window_started_at IS NULL
                       OR {counter}_window_started_at <= now() - $2::interval THEN now()
                     ELSE {counter}_window_started_at
                   END AS window_start
            FROM {table} WHERE {key} = $1
        )
        UPDATE {table} SET
            {counter}_count = counted.attempts,
            {counter}_window_started_at = counted.window_start,
            -- The $4-th failure in the window locks the row, whoever asks.
            locked_until = CASE WHEN counted.attempts >= $4
                                THEN now() + $3::interval ELSE locked_until END
        FROM counted
        WHERE {table}.{key} = $1
        RETURNING {counter}_count, locked_until
    """


def clear_failures_sql(table: str, counter: str) -> str:
    """Clear the failures and the lock of the row of `table` whose id = $1 (a sign-in that
    succeeded); a row with nothing to clear is not written."""
    return f"""
        UPDATE {table} SET {counter}_count = 0, {counter}_window_started_at = NULL,
                           locked_until = NULL
        WHERE id = $1 AND ({counter}_count <> 0 OR locked_until IS NOT NULL)
    """


def forget_expired_sql(table: str, counter: str) -> str:
    """Housekeeping: delete the rows of `table` whose window ($1) and lock are both over;
    they count for nothing."""
    return f"""
        DELETE FROM {table}
        WHERE (locked_until IS NULL OR locked_until < now())
          AND ({counter}_window_started_at IS NULL
               OR {counter}_window_started_at < now() - $1::interval)
    """
