{#- Where a node is built.

    The transform builds every snapshot aside, in schemas of its own: it passes the build's name as
    --vars '{"build_schema_prefix": "b_<12 hex of the snapshot>_<8 hex>"}' and the models of staging/,
    intermediate/ and marts/ land in <build>_staging, <build>_intermediate and <build>_marts. The stable
    names people read (marts.sellout_quarterly, ...) are views the transform points at a build only once
    it passed every test and gate (DESIGN.md section 5, Publication).

    Without the var (an operator's or a test's plain `dbt build`) custom schemas are used verbatim
    (staging, intermediate, marts) instead of dbt's default <target_schema>_<custom_schema>; nodes
    without one land in target.schema. The var goes in --vars, not an env var: the schema of every node is
    decided while parsing, and dbt does not notice an env var read here change. A changed var would make dbt
    parse the whole project again on every build, so the transform's warm runner parses once with a
    placeholder build (b_000000000000_00000000) and gives dbt, for each build, a copy of that manifest whose
    nodes name the build's schemas (services/transform/.../dbt_runner.py, manifest_for_build). -#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- set build = var('build_schema_prefix', '') | string | trim -%}
    {%- set schema = target.schema if custom_schema_name is none else custom_schema_name | trim -%}
    {%- if build == '' -%}
        {{ schema }}
    {%- elif modules.re.match('^b_[0-9a-f]{12}_[0-9a-f]{8}$', build) -%}
        {{ build }}_{{ schema }}
    {%- else -%}
        {{ exceptions.raise_compiler_error("build_schema_prefix must look like b_<12 hex>_<8 hex>, got '" ~ build ~ "'") }}
    {%- endif -%}
{%- endmacro %}
