-- Holder imports run as jobs (docs/api.md): POST /v1/holders/import answers 202 with one of
-- these rows, GET /v1/holder-imports/{id} shows its progress. The rows being imported
-- wait in a temporary table of the job's own connection, so no holder of the file is
-- visible until the job's last transaction commits, and a job cut short (crash,
-- SIGKILL, shutdown) leaves nothing behind but its row, marked failed.

CREATE TABLE holder_imports (
    id          text PRIMARY KEY,
    status      text NOT NULL DEFAULT 'running'
                  CHECK (status IN ('running', 'completed', 'failed')),
    rows        integer NOT NULL CHECK (rows >= 0),
    done        integer NOT NULL DEFAULT 0 CHECK (done BETWEEN 0 AND rows),
    created     integer NOT NULL DEFAULT 0 CHECK (created >= 0),
    updated     integer NOT NULL DEFAULT 0 CHECK (updated >= 0),
    -- Why a job failed, in words a bureau clerk can act on.
    detail      text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz,
    CHECK ((status = 'running') = (finished_at IS NULL))
);
-- One import at a time, whichever process runs it. The job's session advisory lock is
-- what tells a live job from one whose process died; this index makes two live rows
-- impossible even so.
CREATE UNIQUE INDEX holder_imports_one_running ON holder_imports ((true)) WHERE status = 'running';
