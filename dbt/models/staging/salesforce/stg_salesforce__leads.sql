-- One row per Salesforce Lead, its latest version; a Lead whose latest version is deleted
-- (queryAll's IsDeleted) is dropped. A converted Lead names the Contact it became.
with source as (
    select * from {{ source('lake', 'salesforce_leads') }}
),

renamed as (
    select
        record_id as lead_id,
        email,
        nullif(trim(first_name), '') as first_name,
        nullif(trim(last_name), '') as last_name,
        nullif(trim(city), '') as city,
        nullif(trim(country), '') as country,
        has_opted_out_of_email,
        nullif(trim(lead_source), '') as lead_source,
        nullif(trim(status), '') as lead_status,
        is_converted,
        nullif(trim(converted_contact_id), '') as converted_contact_id,
        is_deleted,
        cast(created_at as {{ dbt.type_timestamp() }}) as created_at,
        cast(system_modstamp as {{ dbt.type_timestamp() }}) as updated_at,
        extracted_at,
        _source_file as source_file,
        _line as source_line
    from source
),

latest_version as (
    {{ deduplicate('renamed', 'lead_id', 'updated_at desc, extracted_at desc, source_file desc, source_line desc') }}
),

final as (
    select * exclude (is_deleted) from latest_version where not is_deleted
)

select * from final
