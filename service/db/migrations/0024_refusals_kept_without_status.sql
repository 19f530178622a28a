-- A refusal kept for replay keeps its problem (code, title, detail in both languages), not
-- its HTTP status: the domain knows no HTTP, and the API gives a replayed problem its
-- status from its code, as it does every problem (service/api/problems.py). Rows kept
-- before this keep their number, which is the same the code gives.
ALTER TABLE idempotency_keys ALTER COLUMN response_status DROP NOT NULL;
