{#- Person-level models rebuilt only for the people whose inputs changed.

    Such a model is incremental on its key, with merge_removing on `written_at is null`, and
    stamps each row it writes with written_at (macro written_at: when its build wrote, later
    than every stamp of the models it reads in the same run). An incremental run reads `since`,
    the newest written_at it holds, and works out again every person whose inputs changed
    after it (macro people_changed_since), from all of that person's inputs; a person who is
    gone (merged into another, or erased) gets an empty row, which deletes theirs. A run that
    wrote nothing keeps the older `since`, so the next run works out more people than it must,
    never fewer. A full refresh and the first build work out everyone, as does the first run on
    a table built before it held written_at (counted from the epoch).

    dbt records a model's dependencies while it parses, when is_incremental() is false, so such
    a model also renders its incremental branch then (`{% if not execute %}{% do ... %}`): the
    relations that branch reads are its dependencies too. -#}

{#- The newest `columns[0]` (a timestamp) of the model's rows, as a literal; the epoch when
    the table lacks any of `columns` (built before they existed): everyone has changed since. -#}
{% macro changed_since(columns=['written_at']) -%}
    {%- if holds_columns(columns) -%}
        {{ newest_held(columns[0]) }}
    {%- else -%}
        cast('1970-01-01' as {{ dbt.type_timestamp() }})
    {%- endif %}
{%- endmacro %}

{#- The CTEs `affected` (the person ids to write) and `affected_identifiers` (their rows of
    int_identity__persons_assigned, read in place of it), with a comma after them: the people
    whose `inputs` (see people_changed_since) changed after `since` (by default the model's
    newest written_at, macro changed_since), the people of `also` (a select of person ids, or
    none) and the people the model holds who are gone. Both are materialized: each is read more
    than once. -#}
{% macro affected_people(inputs, since=none, also=none) -%}
affected as materialized (
    {{ people_changed_since(since or changed_since(), inputs) }}
    {%- if also %}

    union

    {{ also }}
    {%- endif %}

    union

    select person_id
    from {{ this }}
    where person_id not in (
        select person_id from {{ ref('int_identity__persons_assigned') }}
    )
),

affected_identifiers as materialized (
    select *
    from {{ ref('int_identity__persons_assigned') }}
    where person_id in (select person_id from affected)
),
{%- endmacro %}

{#- True when the model's table (`this`) has every one of `columns`. -#}
{% macro holds_columns(columns) -%}
    {%- set held = false %}
    {%- if execute %}
        {%- set names = adapter.get_columns_in_relation(this) | map(attribute='name') | list %}
        {%- set held = columns | reject('in', names) | list | length == 0 %}
    {%- endif %}
    {{- return(held) }}
{%- endmacro %}

{#- The people (their current person ids) with an input written after `since` (a timestamp
    literal), one select. Always the people with an identifier resolved again after it (a
    merge, a split, a new identifier or link: int_identity__components_resolved resolves a
    changed component's every identifier again); and the people with an identifier that one of
    `inputs` names, a list of:
      * 'web': the user and anonymous ids of the profile events (identify, cart, order) built
        after it, and of every completed order of the same order id (which person holds it can
        change);
      * 'web_emails': the addresses parsed web events built after it named (identify traits,
        Mixpanel's $email), which rank their people's addresses;
      * 'esp': the addresses of the ESP events built after it;
      * 'crm': the ids and addresses of the HubSpot contacts and Salesforce contacts and leads
        extracted after it;
      * 'shop': the ids and addresses of the shop customers extracted after it, the customers
        any version of a shop order extracted after it names, and the web ids of every completed
        order of its id.
    An event's user id and its anonymous id both count, though only one of them decides whose
    the event is: a few more people than changed, never fewer. Extracts are read in the lake,
    every version: a new version that changes nothing marks its person all the same. The persons
    are read once, against the changed identifiers (a semi join: those are few). -#}
{% macro people_changed_since(since, inputs) -%}
{%- set extracted = "strftime(" ~ since ~ ", '%Y%m%dT%H%M%S%fZ')" %}
{#- Events naming an address (relation, column), and extracts (lake table, id type, id column). #}
{%- set events_naming_emails = [] %}
{%- if 'web_emails' in inputs %}
    {%- do events_naming_emails.append((ref('int_web__events_parsed'), 'traits_email')) %}
{%- endif %}
{%- if 'esp' in inputs %}
    {%- do events_naming_emails.append((ref('stg_esp__events'), 'email')) %}
{%- endif %}
{%- set extracts = [] %}
{%- if 'crm' in inputs %}
    {%- do extracts.append(('hubspot_contacts', 'hubspot_id', 'contact_id')) %}
    {%- do extracts.append(('salesforce_contacts', 'salesforce_id', 'record_id')) %}
    {%- do extracts.append(('salesforce_leads', 'salesforce_id', 'record_id')) %}
{%- endif %}
{%- if 'shop' in inputs %}
    {%- do extracts.append(('shop_customers', 'customer_id', 'customer_id')) %}
{%- endif %}
    select person_id
    from {{ ref('int_identity__components_resolved') }}
    where resolved_at > {{ since }} and person_id is not null

    union all

    select persons.person_id
    from {{ ref('int_identity__persons_assigned') }} as persons
    semi join (
        select null as identifier_type, null as identifier_value where false
        {%- if 'web' in inputs or 'shop' in inputs %}
        {%- for column in ['user_id', 'anonymous_id'] %}
        union all
        select '{{ column }}', {{ column }}
        from {{ ref('int_web__profile_events') }}
        where {{ column }} is not null
            and (
                {%- if 'web' in inputs %}
                built_at > {{ since }}
                or
                {%- endif %}
                (event_name = 'Order Completed' and order_id in (
                    {%- if 'web' in inputs %}
                    select order_id
                    from {{ ref('int_web__profile_events') }}
                    where built_at > {{ since }} and event_name = 'Order Completed'
                    {%- endif %}
                    {%- if 'web' in inputs and 'shop' in inputs %}
                    union all
                    {%- endif %}
                    {%- if 'shop' in inputs %}
                    select order_id
                    from {{ source('lake', 'shop_orders') }}
                    where extracted_at > {{ extracted }}
                    {%- endif %}
                ))
            )
        {%- endfor %}
        {%- endif %}
        {%- for relation, column in events_naming_emails %}
        union all
        select 'email', {{ column }} from {{ relation }} where built_at > {{ since }}
        {%- endfor %}
        {%- for name, id_type, id_column in extracts %}
        union all
        select '{{ id_type }}', cast({{ id_column }} as {{ dbt.type_string() }})
        from {{ source('lake', name) }}
        where extracted_at > {{ extracted }}
        union all
        select 'email', email from {{ source('lake', name) }} where extracted_at > {{ extracted }}
        {%- endfor %}
        {%- if 'shop' in inputs %}
        union all
        select 'customer_id', cast(customer_id as {{ dbt.type_string() }})
        from {{ source('lake', 'shop_orders') }}
        where order_id in (
            select order_id
            from {{ source('lake', 'shop_orders') }}
            where extracted_at > {{ extracted }}
        )
        {%- endif %}
    ) as changed
        on changed.identifier_type = persons.identifier_type
        and changed.identifier_value = persons.identifier_value
{%- endmacro %}

{#- The rows a person-level model writes from `computed` (a CTE with one row per person_id):
    every row stamped with written_at, and in an incremental run one row per affected person,
    empty (written_at null: the merge deletes the held row) for a person `computed` has no row
    for. -#}
{% macro person_rows(computed) -%}
    {%- if is_incremental() %}
    select
        affected.person_id,
        {{ computed }}.* exclude (person_id),
        case when {{ computed }}.person_id is not null then {{ written_at() }} end as written_at
    from affected
    left join {{ computed }} using (person_id)
    {%- else %}
    select *, {{ written_at() }} as written_at from {{ computed }}
    {%- endif %}
{%- endmacro %}

{#- int_identity__persons_assigned, or in an incremental run the affected people's rows. -#}
{% macro person_identifiers() -%}
    {{- 'affected_identifiers' if is_incremental() else ref('int_identity__persons_assigned') }}
{%- endmacro %}

{#- The config of a person-level model incremental by person (see above). -#}
{% macro person_incremental_config() -%}
    {{- return({
        'materialized': 'incremental',
        'unique_key': 'person_id',
        'incremental_strategy': 'merge',
        'merge_clauses': merge_removing('DBT_INTERNAL_SOURCE.written_at is null'),
        'on_schema_change': 'sync_all_columns',
    }) }}
{%- endmacro %}

{#- The web events of `events` (a relation) with their person_id, by the rule of
    web_events_attributed (the user id decides when it is some person's, else the anonymous
    id; that macro itself for everyone), keeping only the events of the people in `persons`: the relation
    int_identity__persons_assigned, or the name of a CTE of some of its rows (in an incremental
    run, affected_identifiers). -#}
{% macro web_events_of(events, persons) -%}
    {%- if persons is string %}
    select
        events.*,
        coalesce(by_user.person_id, by_device.person_id) as person_id
    from (
        select *
        from {{ events }}
        where user_id in (
                select identifier_value from {{ persons }} where identifier_type = 'user_id'
            )
            or anonymous_id in (
                select identifier_value from {{ persons }} where identifier_type = 'anonymous_id'
            )
    ) as events
    {{ web_event_person_joins('events', persons) }}
    -- A user id that is someone's decides, whether or not that someone is in `persons`.
    left join {{ ref('int_identity__persons_assigned') }} as known_user
        on known_user.identifier_type = 'user_id'
        and known_user.identifier_value = events.user_id
    where by_user.person_id is not null
        or (by_device.person_id is not null and known_user.person_id is null)
    {%- else %}
    {{ web_events_attributed(events) }}
    {%- endif %}
{%- endmacro %}

{#- When the model's build is writing (its transaction began), after every model it reads was
    built: a later stamp than any of theirs in the same run. -#}
{% macro written_at() -%}
    cast(get_current_timestamp() as {{ dbt.type_timestamp() }})
{%- endmacro %}
