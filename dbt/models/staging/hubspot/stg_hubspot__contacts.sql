with source as (
    select * from {{ source('lake', 'hubspot_contacts') }}
),

renamed as (
    select
        contact_id,
        email,
        nullif(trim(first_name), '') as first_name,
        nullif(trim(last_name), '') as last_name,
        nullif(trim(city), '') as city,
        nullif(trim(country), '') as country,
        email_optout,
        lifecycle_stage,
        cast(created_at as {{ dbt.type_timestamp() }}) as created_at,
        cast(updated_at as {{ dbt.type_timestamp() }}) as updated_at,
        archived,
        properties,
        extracted_at,
        _source_file as source_file,
        _line as source_line
    from source
),

latest_version as (
    {{ deduplicate('renamed', 'contact_id', 'updated_at desc, archived desc, extracted_at desc') }}
),

-- An archived contact (deleted in HubSpot) gives no link, name or consent any more.
final as (
    select * from latest_version where not coalesce(archived, false)
)

select * from final
