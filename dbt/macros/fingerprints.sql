{#- An order-independent fingerprint of a set of text values (an aggregate): equal sets give
    equal fingerprints, so a changed set is found without keeping the set itself. A 64-bit hash
    per value, folded with xor: no sort, no string of the whole set. -#}
{% macro set_fingerprint(expression) -%}
    cast(bit_xor(hash({{ expression }})) as {{ dbt.type_string() }})
{%- endmacro %}
