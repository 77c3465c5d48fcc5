"""Storage, with no Airflow inside and no gateway: report tables and the send ledger over SQL.

* :mod:`~airflow_provider_smsend.sql.dialect` - the one map from a connection type to a dialect
  (types, identifiers, parameter markers, upserts);
* :mod:`~airflow_provider_smsend.sql.layouts` - the report tables' layouts;
* :mod:`~airflow_provider_smsend.sql.loader` - pandas frames into those tables, one transaction
  per load (ADBC bulk ingest for PostgreSQL and SQLite, ``DataFrame.to_sql`` elsewhere);
* :mod:`~airflow_provider_smsend.sql.ledger` - the send ledger's SQL storage;
* :mod:`~airflow_provider_smsend.sql.cursor` - the inbound events' cursor table;
* :mod:`~airflow_provider_smsend.sql.suppression` - the suppression list (opt-outs);
* :mod:`~airflow_provider_smsend.sql.transaction` - one transaction at a time over a DB-API
  connection, for the three above.

:mod:`airflow_provider_smsend.client` never imports this package.
"""
