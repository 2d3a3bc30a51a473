{#- Values that trackers send when they have no real identifier; they must never link people. -#}
{% macro junk_identifier_values() -%}
    {{ return(['null', 'undefined', 'anonymous', '0', 'none', 'nil', 'nan', 'unknown', 'n/a',
               '[object object]', '00000000-0000-0000-0000-000000000000']) }}
{%- endmacro %}

{#- Whether a value is no identifier at all. DuckDB plans an IN list this long as a join
    against the list, one per call: on every web event and every collected link that was most of
    the parse's and the links' time. A list lookup is a plain function. -#}
{% macro is_junk_identifier(column) -%}
    ({{ column }} is null
     or trim({{ column }}) = ''
     or list_contains([
        {%- for value in junk_identifier_values() %}'{{ value }}'{{ ', ' if not loop.last }}{% endfor -%}
     ], lower(trim({{ column }}))))
{%- endmacro %}

{#- The moment the run evaluates segments and audiences at (var as_of, an ISO timestamp;
    default now). Profiles hold all that has landed and do not read it. -#}
{% macro as_of() -%}
    {%- set value = var('as_of', none) -%}
    {%- if value -%}
        cast('{{ value }}' as {{ dbt.type_timestamp() }})
    {%- else -%}
        cast({{ dbt.current_timestamp() }} as {{ dbt.type_timestamp() }})
    {%- endif -%}
{%- endmacro %}

{#- The received dates of a lake event table an incremental run reads (its window): the days
    whose lake partition was written since the models reading them were last built, new or
    landed again, as Dagster names them for the run (assets/warehouse.py): `web_events` (var
    web_received_dates: the days of every web analytics source, macro web_sources) or
    `esp_events` (var esp_received_dates), each a list of ISO dates. None when the run names
    none (dbt run by hand): the models then read every day. -#}
{% macro received_dates(source='web_events') -%}
    {%- set name = {'web_events': 'web_received_dates', 'esp_events': 'esp_received_dates'}[source] -%}
    {{ return(var(name, none)) }}
{%- endmacro %}

{#- The lake tables of the web analytics sources, as an SQL list: one stream of web events in
    the warehouse (macro web_events_renamed). -#}
{% macro web_sources() -%}
    ('web_events', 'ga4_events', 'mixpanel_events')
{%- endmacro %}

{#- The sources of links read whole every run (the CRMs' and the shop's extracts, and the
    identity overrides), as the items of an SQL list: a held link of theirs that is no longer
    extracted is deleted. -#}
{% macro crm_and_shop_sources() -%}
    'hubspot_contacts', 'salesforce_contacts', 'salesforce_leads', 'shop_customers',
    'shop_orders', 'identity_overrides'
{%- endmacro %}

{#- Whether a web event's address is its sender's: a Segment identify's traits, or any Mixpanel
    event's `$email` / `email` property (a Segment track or group may name another's). -#}
{% macro names_its_email(message_type, source) -%}
    ({{ message_type }} = 'identify' or {{ source }} = 'mixpanel_events')
{%- endmacro %}

{#- Fractional days from `earlier` to `later`; null when either is null. -#}
{% macro days_between(earlier, later) -%}
    ((epoch({{ later }}) - epoch({{ earlier }})) / 86400.0)
{%- endmacro %}

{#- The lookups that find a web event's person: `by_user` (its user id's row in `persons`) and
    `by_device` (its anonymous id's). The user id decides when the event has one (a shared
    device's events go to whoever was logged in), else the anonymous id. -#}
{% macro web_event_person_joins(events, persons) -%}
    left join {{ persons }} as by_user
        on by_user.identifier_type = 'user_id' and by_user.identifier_value = {{ events }}.user_id
    left join {{ persons }} as by_device
        on by_device.identifier_type = 'anonymous_id'
        and by_device.identifier_value = {{ events }}.anonymous_id
{%- endmacro %}

{#- `events` (a relation of web events), each with the person it belongs to by
    web_event_person_joins; events that belong to no one are left out. (The persons are joined
    by name: through a CTE read twice, DuckDB materialized every identifier first, where each
    join's identifier type filter now reaches the table scan.) -#}
{% macro web_events_attributed(events) -%}
with final as (
    select
        events.*,
        coalesce(by_user.person_id, by_device.person_id) as person_id
    from {{ events }} as events
    {{ web_event_person_joins('events', ref('int_identity__persons_assigned')) }}
)

select * from final
where person_id is not null
{%- endmacro %}

{#- True for the web events the person-level models read one by one (int_web__profile_events):
    identify calls, products added to a cart and completed orders; false, never null, for the
    rest. `relation` names the row's relation where the columns need it. -#}
{% macro is_profile_event(relation=none) -%}
    {%- set prefix = relation ~ '.' if relation else '' -%}
    coalesce(
        {{ prefix }}message_type = 'identify'
        or {{ prefix }}event_name in ('Product Added', 'Order Completed'),
        false
    )
{%- endmacro %}
