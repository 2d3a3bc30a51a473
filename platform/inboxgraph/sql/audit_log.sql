-- The audit trail: one row per materialization of every asset and partition, and one per
-- erasure; written by the audit asset and `inboxgraph forget`, queried with plain SQL.
create schema if not exists marts;
create table if not exists marts.audit_log (
    audit_id varchar primary key,
    event_type varchar not null,
    asset_key varchar,
    partition varchar,
    run_id varchar,
    job_name varchar,
    occurred_at timestamp not null,
    rows_in bigint,
    rows_out bigint,
    rows_quarantined bigint,
    duration_s double,
    code_version varchar,
    storage_id bigint,
    details varchar
);
