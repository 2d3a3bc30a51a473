-- One row per segment: its definition and how many people are in it, as of the run.
with definitions as (
    {% for segment in var('segments') %}
    select
        '{{ segment.id }}' as segment_id,
        '{{ segment.description | replace("'", "''") }}' as description,
        '{{ segment.rule | replace("'", "''") }}' as rule
    {% if not loop.last %}union all{% endif %}
    {% endfor %}
),

counts as (
    select segment_id, count(*) as member_count
    from {{ ref('segment_memberships') }}
    group by segment_id
),

final as (
    select
        definitions.segment_id,
        definitions.description,
        definitions.rule,
        coalesce(counts.member_count, 0) as member_count,
        {{ as_of() }} as as_of
    from definitions
    left join counts using (segment_id)
)

select * from final
