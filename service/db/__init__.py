"""Everything that talks to PostgreSQL: the pool, the embedded server, migrations, and one
module of SQL per aggregate."""
