with source as (
    select * from {{ source('lake', 'enrichment') }}
),

renamed as (
    select
        provider || ':' || email as enrichment_id,
        provider,
        email,
        attributes,
        _source_file as source_file,
        _line as source_line
    from source
    where email is not null
),

deduplicated as (
    {{ deduplicate('renamed', 'enrichment_id', 'source_line desc') }}
),

final as (
    select * from deduplicated
)

select * from final
