-- A view: its one reader (a full build of int_person__email_status_decided) aggregates it in
-- one pass, so the millions of signal rows are never written to the warehouse.
{{ config(materialized='view') }}

-- Every consent-relevant signal with its person and time, from the ESP, the CRMs and identify
-- (macro consent_signals).
{{ consent_signals(ref('int_identity__persons_assigned')) }}
