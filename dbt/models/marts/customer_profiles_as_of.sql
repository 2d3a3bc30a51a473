{{ config(materialized='view') }}
-- The profiles with what depends on the moment they are read at: days since the last cart
-- event, email engagement and order, and the lifetime value percentile, tier and RFM scores
-- (macro profiles_as_of). Read time, not the build's: `as_of` is when the view is queried.
{{ profiles_as_of(ref('customer_profiles'), 'cast(' ~ dbt.current_timestamp() ~ ' as ' ~ dbt.type_timestamp() ~ ')') }}
